package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/cmd/mcpguard/wiring"
	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/demo"
	"github.com/mcpguard/mcpguard/internal/mcp"
)

// pipelineGateway is the demo finance server behind a gateway with a policy and the audit log,
// for an unauthenticated (anonymous) client. The upstream records every request it receives.
type pipelineGateway struct {
	url, db string
	mu      sync.Mutex
	seen    []string // "method target" of every request the upstream received
}

func newPipelineGateway(t *testing.T, policyYAML, extra string) *pipelineGateway {
	t.Helper()
	pg := &pipelineGateway{}
	demoHandler := demo.HTTPHandler(nil)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var msg struct {
				Method string `json:"method"`
				Params struct {
					Name string `json:"name"`
					URI  string `json:"uri"`
				} `json:"params"`
			}
			if json.Unmarshal(body, &msg) == nil && msg.Method != "" {
				pg.mu.Lock()
				pg.seen = append(pg.seen, strings.TrimSpace(msg.Method+" "+msg.Params.Name+msg.Params.URI))
				pg.mu.Unlock()
			}
		}
		demoHandler.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	pg.url, pg.db = startFinanceGateway(t, up.URL, policyYAML, extra, "pipeline.yaml", nil)
	return pg
}

// startFinanceGateway starts a gateway with the policy policyYAML and the audit log in front of
// the finance upstream at upstreamURL, with extra configuration (named name in errors), and
// returns its MCP URL and its audit database.
func startFinanceGateway(t *testing.T, upstreamURL, policyYAML, extra, name string, opts *wiring.Options) (url, db string) {
	t.Helper()
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, policyFile, []byte(policyYAML))
	section, db, _ := auditConfig(t)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
listen: 127.0.0.1:0
policy_file: %q
limits: {request_timeout: 20s}
upstreams:
  - name: finance
    http: {url: %q}
%s
%s`, policyFile, upstreamURL, extra, section)), name)
	if err != nil {
		t.Fatal(err)
	}
	g, err := newFromConfig(t.Context(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.Start(ctx)
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close(); cancel(); g.Close() })
	return srv.URL + "/mcp", db
}

// received reports whether the upstream received a request "method target".
func (pg *pipelineGateway) received(what string) bool {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	return slices.Contains(pg.seen, what)
}

// records returns the audit log's records of a kind.
func (pg *pipelineGateway) records(t *testing.T, kind audit.Kind) []*audit.Record {
	t.Helper()
	return recordsOf(t, pg.db, kind)
}

// legacy opens a legacy session and returns its headers.
func (pg *pipelineGateway) legacy(t *testing.T) map[string]string {
	t.Helper()
	st, h, msg := post(t, pg.url, nil, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	if st != http.StatusOK {
		t.Fatalf("initialize: %d %v", st, msg)
	}
	return map[string]string{"Mcp-Session-Id": h.Get("Mcp-Session-Id"), "MCP-Protocol-Version": "2025-11-25"}
}

// forwardedMethods is every client request that reaches an upstream, with params for the demo
// finance server. upstreamSees is what the upstream receives when the call is forwarded ("" for
// the methods that go to every upstream or none).
var forwardedMethods = []struct{ method, params, upstreamSees string }{
	{mcp.MethodToolsCall, `{"name":"finance.get_market_overview","arguments":{}}`, "tools/call get_market_overview"},
	{mcp.MethodPromptsGet, `{"name":"finance.daily_briefing","arguments":{"region":"Vietnam"}}`, "prompts/get daily_briefing"},
	{mcp.MethodResourcesRead, `{"uri":"finance://disclaimer"}`, "resources/read finance://disclaimer"},
	{mcp.MethodResourcesSubscribe, `{"uri":"finance://disclaimer"}`, "resources/subscribe finance://disclaimer"},
	{mcp.MethodResourcesUnsubscribe, `{"uri":"finance://disclaimer"}`, "resources/unsubscribe finance://disclaimer"},
	{mcp.MethodCompletionComplete, `{"ref":{"type":"ref/prompt","name":"finance.daily_briefing"},"argument":{"name":"region","value":"V"}}`, "completion/complete"},
	{mcp.MethodToolsList, `{}`, ""},
	{mcp.MethodPromptsList, `{}`, ""},
	{mcp.MethodResourcesList, `{}`, ""},
	{mcp.MethodResourcesTemplatesList, `{}`, ""},
	{mcp.MethodLoggingSetLevel, `{"level":"debug"}`, ""},
	{mcp.MethodSkillsList, `{}`, ""},
	{mcp.MethodSkillsGet, `{"uri":"skill://finance/briefing/SKILL.md"}`, ""},
}

// answeredByGateway are the client requests the gateway answers itself, or refuses as methods
// it does not serve (the tasks extension).
var answeredByGateway = []string{
	mcp.MethodInitialize, mcp.MethodPing, mcp.MethodServerDiscover, mcp.MethodSubscriptionsListen,
	mcp.MethodTasksGet, mcp.MethodTasksResult, mcp.MethodTasksList, mcp.MethodTasksCancel, mcp.MethodTasksUpdate,
}

// TestEveryClientMethodIsCovered walks the protocol's method table: every request a client may
// send in either era is either forwarded through the pipeline (and so in forwardedMethods, which
// the tests below drive through every step) or answered by the gateway itself.
func TestEveryClientMethodIsCovered(t *testing.T) {
	for _, v := range []string{mcp.LatestLegacy, mcp.Latest} {
		for _, m := range mcp.MethodsIn(v) {
			if m.Kind != mcp.KindRequest || m.Sender&mcp.SenderClient == 0 {
				continue
			}
			forwarded := slices.ContainsFunc(forwardedMethods, func(f struct{ method, params, upstreamSees string }) bool { return f.method == m.Method })
			if !forwarded && !slices.Contains(answeredByGateway, m.Method) {
				t.Errorf("%s (%s) is neither forwarded through the pipeline nor answered by the gateway: add it to forwardedMethods", m.Method, v)
			}
		}
	}
}

// TestDenyAllRefusesAndAuditsEveryMethod: with a policy that gives the caller no role, every
// forwarded method is refused — by the policy (403, -31001), or by the route step for a target no
// upstream serves — and recorded in the audit log, and none reaches the upstream.
func TestDenyAllRefusesAndAuditsEveryMethod(t *testing.T) {
	pg := newPipelineGateway(t, `
roles:
  - role: Reader
    permissions:
      - tool_name: finance.get_market_overview
`, "")
	h := pg.legacy(t)
	for i, tt := range forwardedMethods {
		st, _, msg := post(t, pg.url, h, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, i+1, tt.method, tt.params))
		code := errCode(msg)
		switch {
		case tt.method == mcp.MethodSkillsGet:
			if code != -32602 {
				t.Errorf("%s: %d %v; want -32602, no upstream serves the skill", tt.method, st, msg)
			}
		case st != http.StatusForbidden || code != -31001:
			t.Errorf("%s: %d %v; want 403 -31001 denied by policy", tt.method, st, msg)
		}
		if tt.upstreamSees != "" && pg.received(tt.upstreamSees) {
			t.Errorf("%s reached the upstream although refused", tt.method)
		}
	}
	denials := pg.records(t, audit.KindPolicyDenial)
	for _, tt := range forwardedMethods {
		if !slices.ContainsFunc(denials, func(r *audit.Record) bool { return r.Method == tt.method && r.Decision == audit.DecisionDeny }) {
			t.Errorf("no denial of %s in the audit log", tt.method)
		}
	}
}

// TestAllowAllForwardsAndAuditsEveryMethod: with a policy that allows everything, every
// forwarded method reaches the upstream (where it has one) and leaves a call record and an
// outcome record.
func TestAllowAllForwardsAndAuditsEveryMethod(t *testing.T) {
	pg := newPipelineGateway(t, `
roles:
  - role: All
    permissions:
      - tool_name: "*"
      - prompt_name: "*"
      - resource_uri: "*"
bindings:
  - role: All
    principals: [anonymous]
`, "")
	h := pg.legacy(t)
	for i, tt := range forwardedMethods {
		st, _, msg := post(t, pg.url, h, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, i+1, tt.method, tt.params))
		switch tt.method {
		case mcp.MethodSkillsGet, mcp.MethodSkillsList:
			continue // the demo server offers no skills: an empty list, an unknown skill
		case mcp.MethodResourcesSubscribe, mcp.MethodResourcesUnsubscribe:
			// The demo server speaks 2026-07-28 to the gateway, where these methods do not
			// exist: its answer is relayed, but the request reached it.
		default:
			if st != http.StatusOK || msg["result"] == nil {
				t.Errorf("%s: %d %v; want a result", tt.method, st, msg)
			}
		}
		if tt.upstreamSees != "" && !pg.received(tt.upstreamSees) {
			t.Errorf("%s was answered but never reached the upstream", tt.method)
		}
	}
	// A W3C traceparent from the client names the trace in the call's records.
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	traced := map[string]string{"Traceparent": "00-" + trace + "-00f067aa0ba902b7-01"}
	for k, v := range h {
		traced[k] = v
	}
	if st, _, msg := post(t, pg.url, traced, `{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"finance.get_market_overview","arguments":{}}}`); st != http.StatusOK {
		t.Fatalf("traced call: %d %v", st, msg)
	}
	calls := pg.records(t, audit.KindToolCall)
	if !slices.ContainsFunc(calls, func(r *audit.Record) bool { return r.TraceID == trace }) {
		t.Error("the traceparent's trace id is in no call record")
	}
	var outcomes []*audit.Record
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if outcomes = pg.records(t, audit.KindOutcome); len(outcomes) >= len(calls) {
			break
		}
	}
	for _, tt := range forwardedMethods {
		if tt.method == mcp.MethodSkillsGet {
			continue
		}
		var id string
		for _, r := range calls {
			if r.Method == tt.method && r.Decision == audit.DecisionAllow {
				id = r.RequestID
			}
		}
		if id == "" {
			t.Errorf("no call record of %s", tt.method)
			continue
		}
		if !slices.ContainsFunc(outcomes, func(r *audit.Record) bool { return r.RequestID == id }) {
			t.Errorf("no outcome record of %s", tt.method)
		}
	}
}

// TestLookAlikeNamesNeverReachTheUpstream: a wildcard policy with deny_tools cannot be bypassed
// by a name that only looks like the denied tool: a case variant, a Cyrillic look-alike, a
// trailing space or a zero-width character is no tool of the upstream, is refused, recorded, and
// never forwarded.
func TestLookAlikeNamesNeverReachTheUpstream(t *testing.T) {
	pg := newPipelineGateway(t, `
roles:
  - role: All
    permissions:
      - tool_name: "*"
    deny_tools: [finance.execute_trade_order]
bindings:
  - role: All
    principals: [anonymous]
`, "")
	h := pg.legacy(t)
	args := `{"client_id":"C1001","symbol":"VNM","side":"buy","quantity":1,"order_type":"market"}`
	for i, name := range []string{
		"finance.EXECUTE_TRADE_ORDER",
		"finance.Execute_Trade_Order",
		"FINANCE.execute_trade_order",
		"finance.ехесute_trade_order", // Cyrillic е, х, с
		"finance.execute_trade_order ",
		"finance.execute_trade_order\u200b",
		"finance.execute\u00adtrade_order",
		"finance.ｅxecute_trade_order", // fullwidth e
	} {
		st, _, msg := post(t, pg.url, h, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":%s}}`, i+1, name, args))
		if errCode(msg) != -32602 || !strings.Contains(errMessage(msg), "unknown tool") {
			t.Errorf("%q: %d %v; want -32602 unknown tool", name, st, msg)
		}
	}
	st, _, msg := post(t, pg.url, h, `{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"finance.execute_trade_order","arguments":`+args+`}}`)
	if st != http.StatusForbidden || !strings.Contains(errMessage(msg), "deny_tools") {
		t.Errorf("the real name: %d %v; want 403 by deny_tools", st, msg)
	}
	if pg.received("tools/call execute_trade_order") {
		t.Fatal("a trade reached the upstream")
	}
	pg.mu.Lock()
	defer pg.mu.Unlock()
	for _, s := range pg.seen {
		if strings.HasPrefix(s, "tools/call") {
			t.Errorf("the upstream received %q", s)
		}
	}
	refused := 0
	for _, r := range pg.records(t, audit.KindPolicyDenial) {
		if r.Rule == "gateway:route" {
			refused++
		}
	}
	if refused != 8 {
		t.Errorf("%d refusals by the route step in the audit log, want 8", refused)
	}
}

// TestLookAlikeArgumentsAreRefused: an argument named like a constrained one except for case or
// Unicode form ({"Symbol":"AAPL"} against a constraint on symbol) would be read as symbol by a
// lenient upstream: it is refused, and never forwarded. So are arguments the tool's own
// inputSchema rejects.
func TestLookAlikeArgumentsAreRefused(t *testing.T) {
	pg := newPipelineGateway(t, `
roles:
  - role: Analyst
    permissions:
      - tool_name: finance.get_stock_analysis
        constraints:
          symbol: {type: string, pattern: "^[A-Z]{3}$"}
        optional_arguments: [symbol]
      - tool_name: finance.get_sector_heatmap
bindings:
  - role: Analyst
    principals: [anonymous]
`, "")
	h := pg.legacy(t)
	for i, args := range []string{`{"Symbol":"AAPL"}`, `{"SYMBOL":"AAPL"}`, `{"ſymbol":"AAPL"}`, `{"symbol\u200b":"AAPL"}`, `{"ｓｙｍｂｏｌ":"AAPL"}`} {
		st, _, msg := post(t, pg.url, h, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"finance.get_stock_analysis","arguments":%s}}`, i+1, args))
		res, _ := msg["result"].(map[string]any)
		if st == http.StatusOK && (res == nil || res["isError"] != true) {
			t.Errorf("%s: %d %v; want it refused", args, st, msg)
		}
		if !strings.Contains(fmt.Sprint(msg), "differ only in case or Unicode form") {
			t.Errorf("%s: %v; want the refusal to say why", args, msg)
		}
	}
	// Outside the tool's own schema: region is one of five values.
	st, _, msg := post(t, pg.url, h, `{"jsonrpc":"2.0","id":20,"method":"tools/call","params":{"name":"finance.get_sector_heatmap","arguments":{"region":"Mars"}}}`)
	res, _ := msg["result"].(map[string]any)
	if st != http.StatusOK || res == nil || res["isError"] != true || !strings.Contains(fmt.Sprint(res), "inputSchema") {
		t.Errorf("region Mars: %d %v; want a tool error naming the inputSchema", st, msg)
	}
	if pg.received("tools/call get_stock_analysis") || pg.received("tools/call get_sector_heatmap") {
		t.Fatal("a refused call reached the upstream")
	}
	// The real name passes.
	if st, _, msg := post(t, pg.url, h, `{"jsonrpc":"2.0","id":21,"method":"tools/call","params":{"name":"finance.get_stock_analysis","arguments":{"symbol":"VNM"}}}`); st != http.StatusOK || !strings.Contains(fmt.Sprint(msg["result"]), "VNM") {
		t.Errorf("symbol VNM: %d %v", st, msg)
	}
}

// TestCompletionIsDecidedByThePolicy: completion/complete is decided like the prompt it completes,
// when: conditions included: outside the condition's hours it is refused and recorded.
func TestCompletionIsDecidedByThePolicy(t *testing.T) {
	pg := newPipelineGateway(t, `
roles:
  - role: Briefer
    permissions:
      - prompt_name: finance.daily_briefing
        when: hour == 25
bindings:
  - role: Briefer
    principals: [anonymous]
`, "")
	h := pg.legacy(t)
	st, _, msg := post(t, pg.url, h, `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"finance.daily_briefing"},"argument":{"name":"region","value":"V"}}}`)
	if st != http.StatusForbidden || errCode(msg) != -31001 || !strings.Contains(errMessage(msg), "condition is false") {
		t.Errorf("completion outside the when: hours: %d %v; want 403 -31001 naming the condition", st, msg)
	}
	if pg.received("completion/complete") {
		t.Error("the refused completion reached the upstream")
	}
	denied := pg.records(t, audit.KindPolicyDenial)
	if !slices.ContainsFunc(denied, func(r *audit.Record) bool {
		return r.Method == mcp.MethodCompletionComplete && r.Tool == "finance.daily_briefing"
	}) {
		t.Errorf("no denial of completion/complete in the audit log: %v", denied)
	}
}

// TestSetLevelAnswersWithAnUpstreamDown: logging/setLevel answers while one upstream is
// unreachable; it never waits for it.
func TestSetLevelAnswersWithAnUpstreamDown(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	pg := newPipelineGateway(t, `
roles:
  - role: All
    permissions:
      - tool_name: "*"
bindings:
  - role: All
    principals: [anonymous]
`, fmt.Sprintf(`  - name: down
    http: {url: %q}`, deadURL))
	h := pg.legacy(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		st, _, msg := post(t, pg.url, h, `{"jsonrpc":"2.0","id":1,"method":"logging/setLevel","params":{"level":"debug"}}`)
		if st != http.StatusOK || msg["result"] == nil {
			t.Errorf("setLevel: %d %v", st, msg)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		t.Fatal("logging/setLevel never answered with an upstream down")
	}
}

func TestTraceID(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", ""},
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", ""},
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", ""},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", ""},
		{"", ""},
	} {
		if got := traceID(tt.in); got != tt.want {
			t.Errorf("traceID(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
