package gateway

import (
	"context"
	"testing"

	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
)

// benchGateway is a gateway with four prefixed upstreams that are never started: routing a
// prefixed name needs no connection.
func benchGateway(b *testing.B) *Gateway {
	b.Helper()
	yaml := `
listen: 127.0.0.1:0
upstreams:
  - name: finance
    http: {url: "http://127.0.0.1:9/mcp", era: modern}
  - name: crm
    http: {url: "http://127.0.0.1:9/mcp", era: legacy}
  - name: files
    stdio: {command: /bin/true}
  - name: search
    sse: {url: "http://127.0.0.1:9/sse"}
`
	cfg, err := config.Parse([]byte(yaml), "bench.yaml")
	if err != nil {
		b.Fatal(err)
	}
	g, err := newFromConfig(b.Context(), cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Close() })
	return g
}

// BenchmarkParseAndRoute measures the gateway's per-call envelope work before forwarding: the
// strict parse of a realistic tools/call, reading its name, and routing it to the upstream of
// its prefix.
func BenchmarkParseAndRoute(b *testing.B) {
	cases := []struct {
		name string
		era  mcpguard.Era
		body string
	}{
		{
			name: "legacy",
			era:  mcpguard.EraLegacy,
			body: `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"crm.lookup_customer",` +
				`"arguments":{"customer_id":"C-100234","fields":["name","email","tier","open_tickets"],"include_history":true,"limit":25},` +
				`"_meta":{"progressToken":"tok-42"}}}`,
		},
		{
			name: "modern",
			era:  mcpguard.EraModern,
			body: `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"crm.lookup_customer",` +
				`"arguments":{"customer_id":"C-100234","fields":["name","email","tier","open_tickets"],"include_history":true,"limit":25},` +
				`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","progressToken":"tok-42",` +
				`"io.modelcontextprotocol/clientCapabilities":{"sampling":{},"elicitation":{}},` +
				`"io.modelcontextprotocol/clientInfo":{"name":"agent","version":"1.4.2"}}}}`,
		},
	}
	g := benchGateway(b)
	ctx := context.Background()
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			body := []byte(tc.body)
			c := &caller{era: tc.era}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				msg, err := jsonrpc.Parse(body, g.lim)
				if err != nil {
					b.Fatal(err)
				}
				raw, _ := jsonrpc.Lookup(msg.Params, "name")
				name, _ := jsonrpc.String(raw)
				up, orig, err := g.routeName(ctx, c, kindTools, name)
				if err != nil || up.Name() != "crm" || orig != "lookup_customer" {
					b.Fatalf("routeName(%q) = %v, %q, %v", name, up, orig, err)
				}
			}
		})
	}
}
