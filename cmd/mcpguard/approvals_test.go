package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestApprovalsCLIShowsAndSendsTheDigest: `approvals list` shows each held call's status and
// arguments SHA-256; `approvals approve --digest` sends the digest with the decision and prints
// the one the admin API decided on; the credential comes from the environment.
func TestApprovalsCLIShowsAndSendsTheDigest(t *testing.T) {
	const digest = "7e84cbf0f7a7c92c037058665d66152f8eb8580ab2534e52c877bccceb9cc7bf"
	var mu sync.Mutex
	var got []string // method path auth body
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body bytes.Buffer
		body.ReadFrom(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization")+" "+body.String())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			json.NewEncoder(w).Encode(map[string]any{"approvals": []any{map[string]any{
				"id": "6f1c", "principal": "trading-agent", "tool": "finance.execute_trade", "approver_role": "Desk",
				"status": "pending", "arguments": map[string]any{"amount": 5}, "arguments_sha256": digest,
				"expires": "2026-12-05T09:45:00Z"}}})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"id": "6f1c", "tool": "finance.execute_trade", "principal": "trading-agent",
			"arguments_sha256": digest, "decision": "approved", "by": "alice"})
	}))
	defer srv.Close()
	t.Setenv("MCPGUARD_ADMIN_TOKEN", "mcps_session")
	cli := func(args ...string) string {
		t.Helper()
		cmd := newApprovalsCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetArgs(append(args, "--admin", srv.URL))
		if err := cmd.Execute(); err != nil {
			t.Fatalf("approvals %v: %v", args, err)
		}
		return out.String()
	}
	list := cli("list")
	for _, want := range []string{"ARGUMENTS_SHA256", digest, "pending", "finance.execute_trade", `{"amount":5}`} {
		if !strings.Contains(list, want) {
			t.Errorf("list output lacks %q:\n%s", want, list)
		}
	}
	if out := cli("approve", "6f1c", "--digest", digest, "--reason", "checked"); !strings.Contains(out, "approved 6f1c: finance.execute_trade for trading-agent (arguments sha256 "+digest+")") {
		t.Errorf("approve output: %q", out)
	}
	mu.Lock()
	defer mu.Unlock()
	want := `POST /v1/approvals/6f1c/approve Bearer mcps_session {"reason":"checked","arguments_sha256":"` + digest + `"}`
	if len(got) != 2 || got[1] != want {
		t.Errorf("requests %q, want the decision %q", got, want)
	}
}
