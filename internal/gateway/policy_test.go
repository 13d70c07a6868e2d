package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/demo"
)

// TestFinancePolicy runs the seed's role policy (examples/policies/finance.yaml) in front of the
// demo finance server: lists are filtered per caller, arguments are checked against the
// constraints, deny_tools beats every allow, approval-gated calls are refused while approvals
// do not exist, and an invalid policy written while the gateway runs leaves the old one in force.
func TestFinancePolicy(t *testing.T) {
	example, err := os.ReadFile("../../examples/policies/finance.yaml")
	if err != nil {
		t.Fatal(err)
	}
	policyFile := filepath.Join(t.TempDir(), "finance.yaml")
	writeFile(t, policyFile, example)
	g, url, session := newPolicyGateway(t, policyFile)

	call := func(h map[string]string, tool, args string) (int, map[string]any) {
		st, _, msg := post(t, url, h, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"`+tool+`","arguments":`+args+`}}`)
		return st, msg
	}
	analyst := session(jwt.MapClaims{"sub": "analyst-agent"})

	_, _, list := post(t, url, analyst, `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`)
	var names []string
	for _, tool := range list["result"].(map[string]any)["tools"].([]any) {
		names = append(names, tool.(map[string]any)["name"].(string))
	}
	if got := strings.Join(names, ","); got != "finance.get_market_overview,finance.get_sector_heatmap,finance.get_stock_analysis" {
		t.Errorf("MarketAnalystAI sees tools %s, want exactly its three", got)
	}

	denied := []struct {
		name, tool, args, rule, reason string
	}{
		{"four-letter symbol", "finance.get_stock_analysis", `{"symbol":"AAPL"}`, "role:MarketAnalystAI/permission:0", "symbol"},
		{"region outside the role's enum", "finance.get_sector_heatmap", `{"region":"US"}`, "role:MarketAnalystAI/permission:2", "region"},
		{"deny_tools", "finance.execute_trade_order", `{"client_id":"C1001","symbol":"VNM","side":"buy","quantity":1,"order_type":"market"}`, "role:MarketAnalystAI/deny_tools", ""},
		{"not granted", "finance.get_client_portfolio", `{"client_id":"C1001"}`, "default-deny", ""},
	}
	for _, tt := range denied {
		t.Run(tt.name, func(t *testing.T) {
			st, msg := call(analyst, tt.tool, tt.args)
			e, _ := msg["error"].(map[string]any)
			text := fmt.Sprint(e["message"])
			if st != http.StatusForbidden || errCode(msg) != -31001 || !strings.Contains(text, "denied by policy") || !strings.Contains(text, tt.rule) || !strings.Contains(text, tt.reason) {
				t.Errorf("status %d, error %v; want 403 -31001 denied by policy naming %s", st, e, tt.rule)
			}
		})
	}
	if st, msg := call(analyst, "finance.get_stock_analysis", `{"symbol":"VNM"}`); st != http.StatusOK || !strings.Contains(fmt.Sprint(msg["result"]), "VNM") {
		t.Errorf("VNM for MarketAnalystAI: %d %v", st, msg)
	}
	// A role the token asserts that would allow trading does not beat the analyst's deny_tools.
	both := session(jwt.MapClaims{"sub": "analyst-agent", "roles": []string{"PortfolioManagerAI"}})
	if st, msg := call(both, "finance.execute_trade_order", `{"client_id":"C1001","symbol":"VNM","side":"buy","quantity":1,"order_type":"market"}`); st != http.StatusForbidden || !strings.Contains(fmt.Sprint(msg["error"]), "deny_tools") {
		t.Errorf("deny_tools with an allowing role: %d %v", st, msg)
	}
	// An approval-gated trade is refused, fail closed, while approvals do not exist.
	pm := session(jwt.MapClaims{"sub": "pm-agent", "roles": []string{"PortfolioManagerAI"}})
	if st, msg := call(pm, "finance.execute_trade_order", `{"client_id":"C1001","symbol":"VNM","side":"buy","quantity":1,"order_type":"market"}`); st != http.StatusForbidden || !strings.Contains(fmt.Sprint(msg["error"]), "approval") {
		t.Errorf("approval-gated trade: %d %v", st, msg)
	}
	// Another principal cannot use the analyst's session.
	other := session(jwt.MapClaims{"sub": "someone-else"})
	hijack := map[string]string{"Authorization": other["Authorization"], "Mcp-Session-Id": analyst["Mcp-Session-Id"], "MCP-Protocol-Version": "2025-11-25"}
	if st, _ := call(hijack, "finance.get_stock_analysis", `{"symbol":"VNM"}`); st != http.StatusNotFound {
		t.Errorf("a session used by another principal: status %d, want 404", st)
	}

	// An invalid policy written while the gateway runs is rejected; the old one stays.
	writeFile(t, policyFile, []byte("roles:\n  - role: Broken\n    permissions: [{tool_name: x, constraints: {a: {type: nosuchtype}}}]\n    surprise: 1\n"))
	err = g.ReloadPolicy()
	if err == nil || !strings.Contains(err.Error(), "2 problems") || !strings.Contains(err.Error(), "surprise") || !strings.Contains(err.Error(), "constraints.a") {
		t.Errorf("reloading an invalid policy: %v; want every problem listed", err)
	}
	if st, _ := call(analyst, "finance.get_stock_analysis", `{"symbol":"VNM"}`); st != http.StatusOK {
		t.Errorf("after a rejected reload the last good policy should still allow VNM: status %d", st)
	}
}

// TestPolicyGovernsPromptsAndResources: prompts and resources are decided and listed by the same
// policy as tools, in front of the real demo server — by namespaced prompt name and by URI.
func TestPolicyGovernsPromptsAndResources(t *testing.T) {
	policyFile := filepath.Join(t.TempDir(), "reader.yaml")
	writeFile(t, policyFile, []byte(`
roles:
  - role: Reader
    permissions:
      - tool_name: finance.get_market_overview
      - prompt_name: finance.daily_*
      - resource_uri: "finance://clients/C1001/*"
  - role: Tooler
    permissions:
      - tool_name: finance.get_market_overview
bindings:
  - role: Reader
    principals: [reader]
  - role: Tooler
    principals: [tooler]
`))
	_, url, session := newPolicyGateway(t, policyFile)
	reader, tooler := session(jwt.MapClaims{"sub": "reader"}), session(jwt.MapClaims{"sub": "tooler"})

	listedBy := func(who map[string]string, method, key, field string) string {
		t.Helper()
		st, _, msg := post(t, url, who, `{"jsonrpc":"2.0","id":3,"method":"`+method+`"}`)
		result, _ := msg["result"].(map[string]any)
		if st != http.StatusOK || result == nil {
			t.Fatalf("%s: %d %v", method, st, msg)
		}
		var names []string
		for _, item := range result[key].([]any) {
			names = append(names, item.(map[string]any)[field].(string))
		}
		return strings.Join(names, ",")
	}
	listed := func(method, key, field string) string { t.Helper(); return listedBy(reader, method, key, field) }
	if got := listed("prompts/list", "prompts", "name"); got != "finance.daily_briefing" {
		t.Errorf("prompts/list = %q; want only the granted finance.daily_briefing", got)
	}
	if got := listedBy(tooler, "prompts/list", "prompts", "name"); got != "" {
		t.Errorf("prompts/list for a role without prompts = %q; want nothing", got)
	}
	if st, _, msg := post(t, url, tooler, `{"jsonrpc":"2.0","id":2,"method":"prompts/get","params":{"name":"finance.daily_briefing","arguments":{"region":"Vietnam"}}}`); st != http.StatusForbidden || errCode(msg) != -31001 {
		t.Errorf("prompts/get without a grant: %d %v; want 403 -31001", st, msg)
	}
	// The disclaimer is not granted; the template's URIs for C1001 are.
	if got := listed("resources/list", "resources", "uri"); got != "" {
		t.Errorf("resources/list = %q; want nothing (finance://disclaimer is not granted)", got)
	}

	ask := func(method, params string) (int, map[string]any) {
		st, _, msg := post(t, url, reader, `{"jsonrpc":"2.0","id":2,"method":"`+method+`","params":`+params+`}`)
		return st, msg
	}
	if st, msg := ask("prompts/get", `{"name":"finance.daily_briefing","arguments":{"region":"Vietnam"}}`); st != http.StatusOK || msg["result"] == nil {
		t.Errorf("granted prompt: %d %v", st, msg)
	}
	if st, msg := ask("resources/read", `{"uri":"finance://clients/C1001/summary"}`); st != http.StatusOK || !strings.Contains(fmt.Sprint(msg["result"]), "C1001") {
		t.Errorf("granted resource: %d %v", st, msg)
	}
	for _, tt := range []struct{ method, params string }{
		{"resources/read", `{"uri":"finance://disclaimer"}`},
		{"resources/read", `{"uri":"finance://clients/C2002/summary"}`},
	} {
		st, msg := ask(tt.method, tt.params)
		e, _ := msg["error"].(map[string]any)
		if st != http.StatusForbidden || errCode(msg) != -31001 || !strings.Contains(fmt.Sprint(e["message"]), "denied by policy") {
			t.Errorf("%s %s: %d %v; want 403 -31001 denied by policy", tt.method, tt.params, st, msg)
		}
	}
}

// newPolicyGateway serves the demo finance server behind a gateway with bearer authentication
// and the policy in policyFile. session opens a legacy session for a token with the given
// claims (issuer, audience and expiry added) and returns its request headers.
func newPolicyGateway(t *testing.T, policyFile string) (g *Gateway, url string, session func(jwt.MapClaims) map[string]string) {
	t.Helper()
	upstreamSrv := httptest.NewServer(demo.HTTPHandler(nil))
	t.Cleanup(upstreamSrv.Close)
	iss := newTestIssuer(t)
	const resource, issuer = "http://127.0.0.1/mcp", "https://idp.example.com"
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
listen: 127.0.0.1:0
policy_file: %q
auth: {resource: %q, issuer: %q, jwks_url: %q}
upstreams:
  - name: finance
    http: {url: %q}
`, policyFile, resource, issuer, iss.jwks.URL, upstreamSrv.URL)), "policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g, err = newFromConfig(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.Start(ctx)
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close(); cancel(); g.Close() })
	url = srv.URL + "/mcp"
	session = func(claims jwt.MapClaims) map[string]string {
		claims["iss"], claims["aud"], claims["exp"] = issuer, resource, time.Now().Add(time.Hour).Unix()
		auth := "Bearer " + iss.token(t, claims)
		st, h, msg := post(t, url, map[string]string{"Authorization": auth}, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
		if st != http.StatusOK {
			t.Fatalf("initialize: %d %v", st, msg)
		}
		return map[string]string{"Authorization": auth, "Mcp-Session-Id": h.Get("Mcp-Session-Id"), "MCP-Protocol-Version": "2025-11-25"}
	}
	return g, url, session
}

// TestFinanceQuotas runs the finance example's quotas on execute_trade_order in front of the
// demo server (its approval step taken out, so that the quotas alone decide): a trade before
// reading the client's portfolio is refused naming the sequence quota; after it, trades are
// served until the day's notional would pass 1 000 000, and that trade is refused naming the
// quota and the running total; the refused calls never reach the upstream's order book.
func TestFinanceQuotas(t *testing.T) {
	example, err := os.ReadFile("../../examples/policies/finance.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(example)
	const approval = "        require_approval:\n          approver_role: TradingDesk\n          timeout: 15m\n"
	if !strings.Contains(text, approval) || !strings.Contains(text, "name: daily-notional") {
		t.Fatal("the finance example changed: update this test")
	}
	policyFile := filepath.Join(t.TempDir(), "finance.yaml")
	writeFile(t, policyFile, []byte(strings.Replace(text, approval, "", 1)))
	_, url, session := newPolicyGateway(t, policyFile)
	pm := session(jwt.MapClaims{"sub": "pm-agent", "roles": []string{"PortfolioManagerAI"}})
	call := func(tool, args string) (int, map[string]any) {
		st, _, msg := post(t, url, pm, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"`+tool+`","arguments":`+args+`}}`)
		return st, msg
	}
	trade := func(qty int, price float64) string {
		return fmt.Sprintf(`{"client_id":"C1001","symbol":"VNM","side":"buy","quantity":%d,"order_type":"limit","limit_price":%g}`, qty, price)
	}
	st, msg := call("finance.execute_trade_order", trade(100, 2000))
	if st != http.StatusTooManyRequests || !strings.Contains(fmt.Sprint(msg["error"]), "portfolio-before-trade") {
		t.Fatalf("trade before reading the portfolio: %d %v, want 429 naming portfolio-before-trade", st, msg)
	}
	if st, msg := call("finance.get_client_portfolio", `{"client_id":"C1001"}`); st != http.StatusOK || msg["result"] == nil {
		t.Fatalf("portfolio: %d %v", st, msg)
	}
	for i := range 4 { // 4 × 200 000
		if st, msg := call("finance.execute_trade_order", trade(100, 2000)); st != http.StatusOK || msg["result"] == nil {
			t.Fatalf("trade %d within the day's notional: %d %v", i, st, msg)
		}
	}
	st, msg = call("finance.execute_trade_order", trade(100, 2500)) // 800 000 + 250 000
	text = fmt.Sprint(msg["error"])
	if st != http.StatusTooManyRequests || errCode(msg) != -31002 || !strings.Contains(text, "daily-notional") || !strings.Contains(text, "800") {
		t.Fatalf("the trade past 1 000 000: %d %v, want 429 naming daily-notional and the 800 000 so far", st, msg)
	}
	// Another client's trade needs its own portfolio read.
	if st, msg := call("finance.execute_trade_order", strings.Replace(trade(1, 10), "C1001", "C1002", 1)); st != http.StatusTooManyRequests || !strings.Contains(fmt.Sprint(msg["error"]), "portfolio-before-trade") {
		t.Fatalf("another client's trade: %d %v", st, msg)
	}
	// A small trade still fits.
	if st, msg := call("finance.execute_trade_order", trade(10, 100)); st != http.StatusOK {
		t.Fatalf("a trade that fits: %d %v", st, msg)
	}
}
