package gateway

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/keystore"
	"github.com/mcpguard/mcpguard/internal/testenv"
)

// newRoleKey creates an API key for principal with roles in the identity database db.
func newRoleKey(t testing.TB, db, principal string, roles ...string) string {
	t.Helper()
	st, err := keystore.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	secret, _, err := authn.NewAPIKeys(st, nil).Create(t.Context(), principal, roles, 0)
	if err != nil {
		t.Fatal(err)
	}
	return secret.Reveal()
}

// getMetrics scrapes url (an admin listener's /metrics) with h's headers.
func getMetrics(t *testing.T, url string, h map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range h {
		req.Header.Set(k, v)
	}
	if host := h["Host"]; host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// sample is the value of the series written exactly as series (name{labels sorted by name}) in
// a text exposition; false when there is none.
func sample(text, series string) (float64, bool) {
	for line := range strings.SplitSeq(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// TestMetricsCountCallsRefusalsAndFailures makes calls a user would see counted — served,
// denied by the policy, rate limited, to a tool no upstream has, with a refused credential —
// then scrapes the admin listener's /metrics: each call is counted once with its method,
// upstream, tool, decision and outcome, every step has its time, the gauges read at scrape time
// describe the gateway, a tool name only a client sent is never a label, and promtool accepts
// the scrape.
func TestMetricsCountCallsRefusalsAndFailures(t *testing.T) {
	dir := t.TempDir()
	keysDB := filepath.Join(dir, "keys.db")
	policyFile := filepath.Join(dir, "policy.yaml")
	writeFile(t, policyFile, []byte("roles:\n  - role: Echoer\n    permissions:\n      - tool_name: rec.echo\n"))
	section, _, _ := auditConfig(t)
	tg := newTestGateway(t, fmt.Sprintf(`api_keys_database: %q
policy_file: %q
admin:
  listen: 127.0.0.1:1
  metrics: {}
containment:
  brute_force: {disabled: true}
  rate_limits:
    per_principal: {calls_per_minute: 3, burst: 3}
%s`, keysDB, policyFile, section))
	admin := httptest.NewServer(tg.g.AdminHandler())
	defer admin.Close()

	session := func(key string) map[string]string {
		t.Helper()
		auth := map[string]string{"Authorization": "Bearer " + key}
		st, h, msg := post(t, tg.url, auth, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
		if st != http.StatusOK {
			t.Fatalf("initialize: %d %v", st, msg)
		}
		auth["Mcp-Session-Id"], auth["MCP-Protocol-Version"] = h.Get("Mcp-Session-Id"), "2025-11-25"
		return auth
	}
	call := func(h map[string]string, tool string, want int) {
		t.Helper()
		st, _, msg := post(t, tg.url, h, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"`+tool+`","arguments":{"text":"hi"}}}`)
		if st != want {
			t.Fatalf("call %s: status %d, want %d: %v", tool, st, want, msg)
		}
	}
	alice := session(newRoleKey(t, keysDB, "alice", "Echoer"))
	bob := session(newRoleKey(t, keysDB, "bob", "Echoer"))
	const unknownTool = "rec.no_such_tool_f00d"
	call(alice, "rec.echo", http.StatusOK)
	call(alice, "rec.echo", http.StatusOK)
	call(alice, "rec.leak", http.StatusForbidden) // default deny
	call(alice, unknownTool, http.StatusOK)       // -32602 unknown tool, refused before the policy
	for range 3 {
		call(bob, "rec.echo", http.StatusOK)
	}
	call(bob, "rec.echo", http.StatusTooManyRequests) // his fourth call within the minute
	call(bob, "rec.echo", http.StatusTooManyRequests)
	call(map[string]string{"Authorization": "Bearer mcpg_0123456789abcdef_" + strings.Repeat("A", 43)}, "rec.echo", http.StatusUnauthorized)
	call(map[string]string{}, "rec.echo", http.StatusUnauthorized)

	st, text := getMetrics(t, admin.URL+"/metrics", nil)
	if st != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", st, text)
	}
	want := map[string]float64{
		`mcpguard_calls_total{decision="allow",method="tools/call",outcome="ok",tool="rec.echo",upstream="rec"}`:      5,
		`mcpguard_calls_total{decision="allow",method="tools/call",outcome="limited",tool="rec.echo",upstream="rec"}`: 2,
		`mcpguard_calls_total{decision="deny",method="tools/call",outcome="denied",tool="rec.leak",upstream="rec"}`:   1,
		`mcpguard_calls_total{decision="none",method="tools/call",outcome="refused",tool="",upstream=""}`:             1,
		`mcpguard_call_duration_seconds_count{method="tools/call",upstream="rec"}`:                                    8,
		`mcpguard_containment_refusals_total{kind="rate_limit"}`:                                                      2,
		`mcpguard_auth_failures_total{reason="unknown_api_key"}`:                                                      1,
		`mcpguard_auth_failures_total{reason="missing_credential"}`:                                                   1,
		`mcpguard_step_duration_seconds_count{step="route"}`:                                                          9,
		`mcpguard_step_duration_seconds_count{step="decide"}`:                                                         8,
		`mcpguard_step_duration_seconds_count{step="audit_append"}`:                                                   5,
		`mcpguard_step_duration_seconds_count{step="upstream"}`:                                                       5,
		`mcpguard_step_duration_seconds_count{step="approve"}`:                                                        0,
		`mcpguard_upstream_up{upstream="rec"}`:                                                                        1,
		`mcpguard_sessions_open`:                                                                                      2,
		`mcpguard_streams_open{kind="sse"}`:                                                                           0,
		`mcpguard_approvals_pending`:                                                                                  0,
		`mcpguard_blocks_in_force{kind="address"}`:                                                                    0,
		`mcpguard_audit_verify_status{status="verified"}`:                                                             1,
		`mcpguard_audit_verify_status{status="failed"}`:                                                               0,
	}
	for series, w := range want {
		if got, ok := sample(text, series); !ok || got != w {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, w)
		}
	}
	// Every request that reached authentication was timed: the two initializes and the eleven
	// calls.
	if n, _ := sample(text, `mcpguard_step_duration_seconds_count{step="authenticate"}`); n < 13 {
		t.Errorf("authenticate step observed %v times, want at least 13", n)
	}
	if n, _ := sample(text, `mcpguard_audit_batch_records_count`); n < 1 {
		t.Errorf("no audit batch counted:\n%s", grepLines(text, "mcpguard_audit"))
	}
	if strings.Contains(text, "no_such_tool") {
		t.Errorf("a tool name only a client sent is a label value:\n%s", grepLines(text, "no_such_tool"))
	}
	// Tool labels are names the route step found, nothing else.
	for _, m := range regexp.MustCompile(`tool="([^"]*)"`).FindAllStringSubmatch(text, -1) {
		if m[1] != "" && m[1] != "rec.echo" && m[1] != "rec.leak" {
			t.Errorf("tool label %q was never routed", m[1])
		}
	}
	promtoolCheck(t, text)

	// A scrape taken under load — calls in flight on four connections — is consistent too.
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodPost, tg.url, strings.NewReader(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"load"}}}`))
				for k, v := range bob {
					req.Header.Set(k, v)
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				if resp, err := http.DefaultClient.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		})
	}
	for range 3 {
		if st, text = getMetrics(t, admin.URL+"/metrics", nil); st != http.StatusOK {
			t.Fatalf("GET /metrics under load: %d", st)
		}
	}
	close(done)
	wg.Wait()
	promtoolCheck(t, text)

	// The admin listener's Host check applies to /metrics too.
	if st, _ := getMetrics(t, admin.URL+"/metrics", map[string]string{"Host": "evil.example.com"}); st != http.StatusForbidden {
		t.Errorf("GET /metrics with a foreign Host: %d, want 403", st)
	}
}

// TestMetricsAuthentication: with require_auth a scraper authenticates like any admin client
// (any principal, no role needed); without admin.metrics there is no /metrics and the gateway
// measures nothing.
func TestMetricsAuthentication(t *testing.T) {
	keysDB := filepath.Join(t.TempDir(), "keys.db")
	tg := newTestGateway(t, fmt.Sprintf("api_keys_database: %q\nadmin:\n  listen: 127.0.0.1:1\n  metrics: {require_auth: true}\n", keysDB))
	admin := httptest.NewServer(tg.g.AdminHandler())
	defer admin.Close()
	if st, _ := getMetrics(t, admin.URL+"/metrics", nil); st != http.StatusUnauthorized {
		t.Errorf("GET /metrics without a credential: %d, want 401", st)
	}
	key := newRoleKey(t, keysDB, "prometheus") // no role
	if st, text := getMetrics(t, admin.URL+"/metrics", map[string]string{"Authorization": "Bearer " + key}); st != http.StatusOK || !strings.Contains(text, "mcpguard_upstream_up") {
		t.Errorf("GET /metrics with an API key: %d %.200s", st, text)
	}

	off := newTestGateway(t, fmt.Sprintf("api_keys_database: %q\nadmin: {listen: 127.0.0.1:1}\n", keysDB))
	offAdmin := httptest.NewServer(off.g.AdminHandler())
	defer offAdmin.Close()
	if st, _ := getMetrics(t, offAdmin.URL+"/metrics", nil); st != http.StatusNotFound {
		t.Errorf("GET /metrics without admin.metrics: %d, want 404", st)
	}
	if off.g.metrics != nil {
		t.Error("a gateway without admin.metrics has metrics")
	}
}

// promtoolCheck lints a scrape with promtool check metrics (Debian package prometheus).
func promtoolCheck(t *testing.T, text string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		testenv.Missing(t, "promtool not found: install the Debian package prometheus (apt-get install prometheus) to lint the scrape")
		return
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out.String())
	}
}

// grepLines returns the lines of text that contain s.
func grepLines(text, s string) string {
	var out []string
	for line := range strings.SplitSeq(text, "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
