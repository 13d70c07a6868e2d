package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func getReadiness(t *testing.T, url string) (int, Readiness) {
	t.Helper()
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rd Readiness
	if err := json.NewDecoder(resp.Body).Decode(&rd); err != nil {
		t.Fatalf("/readyz body: %v", err)
	}
	return resp.StatusCode, rd
}

// TestHealthAndDrain: /healthz is up while the process serves; /readyz follows the upstreams
// and drops to 503 as soon as the instance drains, before anything closes.
func TestHealthAndDrain(t *testing.T) {
	tg := newTestGateway(t, "")
	admin := httptest.NewServer(tg.g.AdminHandler())
	t.Cleanup(admin.Close)

	resp, err := http.Get(admin.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %d, want 200", resp.StatusCode)
	}
	if resp, err := http.Post(admin.URL+"/readyz", "text/plain", nil); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /readyz: %v %v, want 405", resp, err)
	}

	// The stdio upstream connects in the background: ready once it has.
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, rd := getReadiness(t, admin.URL)
		if status == http.StatusOK && rd.Ready && rd.Upstreams["rec"] == "up" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never became ready: %d %+v", status, rd)
		}
		time.Sleep(20 * time.Millisecond)
	}

	tg.g.Drain()
	status, rd := getReadiness(t, admin.URL)
	if status != http.StatusServiceUnavailable || rd.Ready || !rd.Draining || rd.Reason == "" {
		t.Fatalf("after Drain: %d %+v, want 503, draining, with a reason", status, rd)
	}
	// Draining refuses nothing by itself: calls in flight and new ones still pass until the
	// listeners close.
	h := tg.initialize(t)
	if status, _, msg := post(t, tg.url, h, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"x"}}}`); status != http.StatusOK || msg["result"] == nil {
		t.Fatalf("call while draining: %d %v", status, msg)
	}
}

// TestReadinessNoUpstreamReachable: an instance whose every upstream has its circuit open is
// not ready; the body names each upstream's state.
func TestReadinessNoUpstreamReachable(t *testing.T) {
	tg := newTestGateway(t, "")
	for _, up := range tg.g.ups {
		_ = up.Close()
	}
	admin := httptest.NewServer(tg.g.AdminHandler())
	t.Cleanup(admin.Close)
	status, rd := getReadiness(t, admin.URL)
	if status != http.StatusServiceUnavailable || rd.Upstreams["rec"] != "down" || rd.Reason != "no upstream is reachable" {
		t.Fatalf("every upstream closed: %d %+v, want 503 naming rec as down", status, rd)
	}
}
