package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/demo"
)

// TestGoSDKClientsThroughEveryUpstreamTransport runs the demo finance server behind the gateway
// over each upstream transport and era — Streamable HTTP detected as modern, Streamable HTTP in
// a legacy session, and the deprecated HTTP+SSE — and drives the gateway with the official
// go-sdk client in both eras.
func TestGoSDKClientsThroughEveryUpstreamTransport(t *testing.T) {
	streamable := httptest.NewServer(demo.HTTPHandler(nil))
	t.Cleanup(streamable.Close)
	sse := httptest.NewServer(mcp.NewSSEHandler(func(_ *http.Request) *mcp.Server { return demo.NewServer(nil) }, nil))
	t.Cleanup(sse.Close)

	yaml := fmt.Sprintf(`
listen: 127.0.0.1:0
upstreams:
  - name: modern
    http: {url: %q}
  - name: legacy
    http: {url: %q, era: legacy}
  - name: sse
    sse: {url: %q}
`, streamable.URL, streamable.URL, sse.URL)
	cfg, err := config.Parse([]byte(yaml), "sdk.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g, err := newFromConfig(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	g.Start(ctx)
	gw := httptest.NewServer(g.Handler())
	t.Cleanup(func() { gw.Close(); g.Close() })

	for _, version := range []string{"2025-11-25", "2026-07-28"} {
		t.Run(version, func(t *testing.T) {
			client := mcp.NewClient(&mcp.Implementation{Name: "sdk-test", Version: "1.0"}, nil)
			cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: gw.URL + "/mcp"}, &mcp.ClientSessionOptions{ProtocolVersion: version})
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			defer cs.Close()
			tools, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatalf("tools/list: %v", err)
			}
			seen := map[string]bool{}
			for _, tool := range tools.Tools {
				seen[tool.Name] = true
			}
			for _, prefix := range []string{"modern", "legacy", "sse"} {
				for _, name := range []string{"get_stock_analysis", "get_sector_heatmap", "get_client_portfolio", "execute_trade_order"} {
					if !seen[prefix+"."+name] {
						t.Errorf("tools/list lacks %s.%s (got %d tools)", prefix, name, len(tools.Tools))
					}
				}
			}
			for _, call := range []struct {
				name string
				args map[string]any
				want string
			}{
				{"modern.get_stock_analysis", map[string]any{"symbol": "VNM"}, `"symbol":"VNM"`},
				{"legacy.get_stock_analysis", map[string]any{"symbol": "FPT"}, `"symbol":"FPT"`},
				{"sse.get_market_overview", map[string]any{"market": "Vietnam"}, "Vietnam"},
				// x-mcp-header: the modern upstream requires Mcp-Param-Region mirrored from the body.
				{"modern.get_sector_heatmap", map[string]any{"region": "Vietnam"}, "Vietnam"},
				{"legacy.get_client_portfolio", map[string]any{"client_id": "C1001"}, "C1001"},
			} {
				res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: call.name, Arguments: call.args})
				if err != nil {
					t.Errorf("%s: %v", call.name, err)
					continue
				}
				text := ""
				for _, c := range res.Content {
					if tc, ok := c.(*mcp.TextContent); ok {
						text += tc.Text
					}
				}
				if res.IsError || !strings.Contains(text, call.want) {
					t.Errorf("%s: isError=%v text=%.200s, want %q", call.name, res.IsError, text, call.want)
				}
			}
			r, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "finance://disclaimer"})
			if err != nil || len(r.Contents) == 0 {
				t.Errorf("resources/read: %v %v", r, err)
			}
			p, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "sse.daily_briefing", Arguments: map[string]string{"region": "Vietnam"}})
			if err != nil || len(p.Messages) == 0 {
				t.Errorf("prompts/get: %v %v", p, err)
			}
		})
	}
}
