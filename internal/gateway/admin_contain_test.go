package gateway

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// TestAdminListenerContainment: the admin listener serves only its own networks, and guessing
// credentials there blocks the address on the MCP listener too.
func TestAdminListenerContainment(t *testing.T) {
	keysDB := filepath.Join(t.TempDir(), "keys.db")
	closed := newTestGateway(t, fmt.Sprintf("api_keys_database: %q\nadmin:\n  listen: 127.0.0.1:9\n  allowed_networks: [10.0.0.0/8]\n", keysDB))
	srv := httptest.NewServer(closed.g.AdminHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/approvals")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("loopback client of an admin listener serving 10.0.0.0/8: status %d, want 403", resp.StatusCode)
	}

	open := newTestGateway(t, fmt.Sprintf("api_keys_database: %q\nadmin:\n  listen: 127.0.0.1:9\n", keysDB))
	asrv := httptest.NewServer(open.g.AdminHandler())
	defer asrv.Close()
	good, id := newKey(t, keysDB, "ops-agent")
	wrong := "mcpg_" + id + "_" + strings.Repeat("B", 43)
	for range 5 {
		req, _ := http.NewRequest(http.MethodGet, asrv.URL+"/v1/approvals", nil)
		req.Header.Set("Authorization", "Bearer "+wrong)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("bad key on the admin API: status %d, want 401", resp.StatusCode)
		}
	}
	if st, _, _ := post(t, open.url, map[string]string{"Authorization": "Bearer " + good}, authInitBody); st != http.StatusForbidden {
		t.Fatalf("good key on the MCP listener after five guesses on the admin API: status %d, want 403", st)
	}
}
