package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpguard/mcpguard/cmd/mcpguard/wiring"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/gateway"
	"github.com/mcpguard/mcpguard/internal/mcp"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/transport/streamhttp"
)

// TestSeedRoleAgainstTheDemoServer runs the gateway in front of the demo server with the guide's
// role object pasted as is (examples/policies/seed-role.json: one role, a // comment, the
// server's own tool names) and policy_upstream: finance. An API key holding MarketAnalystAI gets
// 3-letter symbols, is refused "AAPL" and is refused the trade, as the guide says; a key created
// with a misspelt role is warned about.
func TestSeedRoleAgainstTheDemoServer(t *testing.T) {
	dir := t.TempDir()
	seed, err := os.ReadFile("../../examples/policies/seed-role.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "seed-role.json"), seed, 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "mcpguard.yaml")
	yaml := `listen: 127.0.0.1:0
api_keys_database: keys.db
policy_file: seed-role.json
policy_upstream: finance
upstreams:
  - name: finance
    stdio: {command: "@self", args: [demo-server]}
`
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "keys", "create", "--config", cfgPath, "--principal", "typo", "--roles", "MarketAnalystAl")
	if err != nil {
		t.Fatalf("keys create: %v\n%s", err, out)
	}
	if !strings.Contains(out, "warning: the policy "+filepath.Join(dir, "seed-role.json")+" defines no role MarketAnalystAl") {
		t.Errorf("a key with an unknown role was created without a warning:\n%s", out)
	}
	out, err = run(t, "keys", "create", "--config", cfgPath, "--principal", "analyst", "--roles", "MarketAnalystAI")
	if err != nil {
		t.Fatalf("keys create: %v\n%s", err, out)
	}
	if strings.Contains(out, "warning") {
		t.Errorf("a key with the seed's role drew a warning:\n%s", out)
	}
	key := strings.SplitN(out, "\n", 2)[0]

	ctx := t.Context()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	p, err := wiring.Build(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	g.Start(ctx)
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)

	c := streamhttp.New(srv.URL+"/mcp", &streamhttp.Options{Header: http.Header{"Authorization": {"Bearer " + key}}})
	h := http.Header{}
	init, err := rpc(ctx, c, h, 1, "initialize", `{"protocolVersion":"`+mcp.LatestLegacy+`","capabilities":{},"clientInfo":{"name":"t","version":"1"}}`)
	if err != nil || init.Error != nil {
		t.Fatalf("initialize: %v %+v", err, init)
	}
	h.Set(mcp.HeaderProtocolVersion, mcp.LatestLegacy)
	h.Set(mcp.HeaderSessionID, init.header.Get(mcp.HeaderSessionID))
	defer c.Delete(context.WithoutCancel(ctx), h)
	for i, tc := range []struct {
		tool, args string
		status     int
	}{
		{"finance.get_stock_analysis", `{"symbol":"FPT"}`, http.StatusOK},
		{"finance.get_sector_heatmap", `{"region":"Vietnam"}`, http.StatusOK},
		{"finance.get_stock_analysis", `{"symbol":"AAPL"}`, http.StatusForbidden},
		{"finance.execute_trade_order", `{"client_id":"C1001","symbol":"FPT","side":"buy","quantity":10,"order_type":"market"}`, http.StatusForbidden},
	} {
		r, err := rpc(ctx, c, h, 10+i, "tools/call", `{"name":"`+tc.tool+`","arguments":`+tc.args+`}`)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.tool, tc.args, err)
		}
		if r.Status != tc.status {
			t.Errorf("%s %s: HTTP %d (error %+v), want %d", tc.tool, tc.args, r.Status, r.Error, tc.status)
		}
		if tc.status == http.StatusForbidden && (r.Error == nil || r.Error.Code != mcpguard.CodeDeniedByPolicy) {
			t.Errorf("%s %s: error %+v, want %d denied by policy", tc.tool, tc.args, r.Error, mcpguard.CodeDeniedByPolicy)
		}
		if tc.status == http.StatusOK && (r.Error != nil || toolError(r.Result)) {
			t.Errorf("%s %s: error %+v, result %s", tc.tool, tc.args, r.Error, r.Result)
		}
	}
}
