package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/keystore"
)

// TestHumanApproval: a call whose permission requires approval waits until an operator with the
// approver role approves it through the admin API, then runs; a denied or timed-out call never
// reaches the upstream; an operator without the role neither sees nor decides it.
func TestHumanApproval(t *testing.T) {
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.yaml")
	writeFile(t, policyFile, []byte(`
roles:
  - role: Agent
    permissions:
      - tool_name: rec.echo
        require_approval: {approver_role: Desk, timeout: 3s}
`))
	db := filepath.Join(dir, "keys.db")
	tg := newTestGateway(t, fmt.Sprintf("api_keys_database: %q\npolicy_file: %q\nadmin: {listen: \"127.0.0.1:1\"}\n", db, policyFile))
	admin := httptest.NewServer(tg.g.AdminHandler())
	t.Cleanup(admin.Close)
	ctx := context.Background()
	st, err := keystore.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys := authn.NewAPIKeys(st, nil)
	mint := func(who string, roles ...string) string {
		s, _, err := keys.Create(ctx, who, roles, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + s.Reveal()
	}
	agent, alice, bob := mint("trading-agent", "Agent"), mint("alice", "Desk"), mint("bob", "Compliance")
	_, h, _ := post(t, tg.url, map[string]string{"Authorization": agent}, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	sess := map[string]string{"Authorization": agent, "Mcp-Session-Id": h.Get("Mcp-Session-Id"), "MCP-Protocol-Version": "2025-11-25"}

	type result struct {
		status int
		msg    map[string]any
	}
	start := func(text string) chan result {
		ch := make(chan result, 1)
		go func() {
			st, _, msg := post(t, tg.url, sess, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"`+text+`"}}}`)
			ch <- result{st, msg}
		}()
		return ch
	}
	adminDo := func(method, path, auth string) (int, map[string]any) {
		req, _ := http.NewRequest(method, admin.URL+path, strings.NewReader(`{"reason":"test"}`))
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	waitPending := func() string {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			_, out := adminDo(http.MethodGet, "/v1/approvals", alice)
			if list, _ := out["approvals"].([]any); len(list) == 1 {
				a := list[0].(map[string]any)
				if a["tool"] != "rec.echo" || a["principal"] != "trading-agent" {
					t.Fatalf("pending approval %v", a)
				}
				return a["id"].(string)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatal("the call never showed up for approval")
		return ""
	}

	// Approved: the call runs.
	done := start("APPROVED")
	id := waitPending()
	if _, out := adminDo(http.MethodGet, "/v1/approvals", bob); len(out["approvals"].([]any)) != 0 {
		t.Errorf("an operator without the approver role sees %v", out["approvals"])
	}
	if st, _ := adminDo(http.MethodPost, "/v1/approvals/"+id+"/approve", bob); st != http.StatusNotFound {
		t.Errorf("an operator without the role approved: status %d", st)
	}
	if st, _ := adminDo(http.MethodPost, "/v1/approvals/"+id+"/approve", ""); st != http.StatusUnauthorized {
		t.Errorf("an unauthenticated approval: status %d, want 401", st)
	}
	if st, out := adminDo(http.MethodPost, "/v1/approvals/"+id+"/approve", alice); st != http.StatusOK || out["decision"] != "approved" {
		t.Fatalf("approve: %d %v", st, out)
	}
	if r := <-done; r.status != http.StatusOK || !strings.Contains(fmt.Sprint(r.msg["result"]), "echo: APPROVED") {
		t.Fatalf("approved call: %d %v", r.status, r.msg)
	}

	// Denied: refused, never forwarded.
	done = start("DENIED")
	id = waitPending()
	adminDo(http.MethodPost, "/v1/approvals/"+id+"/deny", alice)
	if r := <-done; r.status != http.StatusForbidden || errCode(r.msg) != -31001 || !strings.Contains(fmt.Sprint(r.msg["error"]), "alice refused") {
		t.Fatalf("denied call: %d %v", r.status, r.msg)
	}

	// Timed out: refused, never forwarded.
	done = start("TIMEDOUT")
	waitPending()
	if r := <-done; r.status != http.StatusForbidden || !strings.Contains(fmt.Sprint(r.msg["error"]), "within") {
		t.Fatalf("timed-out call: %d %v", r.status, r.msg)
	}
	rec := readRecord(t, tg.record)
	if !strings.Contains(rec, "APPROVED") || strings.Contains(rec, "DENIED") || strings.Contains(rec, "TIMEDOUT") {
		t.Errorf("the upstream saw:\n%s\nwant only the approved call", rec)
	}
}
