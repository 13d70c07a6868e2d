package demo_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestEveryTransportAndEra checks that a client of each protocol version gets the same
// service over each transport: the version it asked for, the six tools, the same tool
// results, the resource and the prompt.
func TestEveryTransportAndEra(t *testing.T) {
	t.Parallel()
	// The reference answer, from the simplest setup.
	ref := connect(t, "memory", modernVersion, optionsAt(fixedNow))
	want := call(t, ref, "get_client_portfolio", map[string]any{"client_id": "C1003"}).StructuredContent

	for _, transport := range []string{"memory", "stdio", "http"} {
		for _, version := range []string{"2025-03-26", "2025-06-18", legacyVersion, modernVersion} {
			t.Run(transport+"/"+version, func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				cs := connect(t, transport, version, optionsAt(fixedNow))

				if got := cs.InitializeResult().ProtocolVersion; got != version {
					t.Errorf("negotiated protocol version = %q, want %q", got, version)
				}
				if got := cs.InitializeResult().ServerInfo; got == nil || got.Name != "mcpguard-demo-finance" {
					t.Errorf("server info = %+v, want name mcpguard-demo-finance", got)
				}
				if transport == "http" {
					// Legacy clients get a real session; 2026-07-28 is sessionless.
					if hasSession := cs.ID() != ""; hasSession != (version < modernVersion) {
						t.Errorf("Mcp-Session-Id present = %v, want %v", hasSession, version < modernVersion)
					}
				}

				tools, err := cs.ListTools(ctx, nil)
				if err != nil {
					t.Fatalf("ListTools: %v", err)
				}
				var names []string
				for _, tool := range tools.Tools {
					names = append(names, tool.Name)
				}
				slices.Sort(names)
				if diff := cmp.Diff(toolNames, names); diff != "" {
					t.Errorf("tool names (-want +got):\n%s", diff)
				}

				got := call(t, cs, "get_client_portfolio", map[string]any{"client_id": "C1003"}).StructuredContent
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("get_client_portfolio differs from the in-memory 2026-07-28 answer (-want +got):\n%s", diff)
				}

				// Over 2026-07-28 HTTP the region travels in an Mcp-Param-Region header too.
				heat := structured[sectorHeatmap](t, cs, "get_sector_heatmap", map[string]any{"region": "Vietnam"})
				if heat.Region != "Vietnam" || len(heat.Sectors) != 11 {
					t.Errorf("get_sector_heatmap(Vietnam) = region %q with %d sectors, want Vietnam with 11", heat.Region, len(heat.Sectors))
				}
				if res := call(t, cs, "get_sector_heatmap", map[string]any{"region": "Mars"}); !res.IsError {
					t.Errorf("get_sector_heatmap(Mars) succeeded, want a tool error")
				}

				rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "finance://clients/C1003/summary"})
				if err != nil {
					t.Fatalf("ReadResource: %v", err)
				}
				if len(rr.Contents) != 1 || !strings.Contains(rr.Contents[0].Text, "Nguyễn Thị Lan") {
					t.Errorf("client summary = %+v, want one text naming Nguyễn Thị Lan", rr.Contents)
				}

				pr, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "daily_briefing", Arguments: map[string]string{"region": "Global"}})
				if err != nil {
					t.Fatalf("GetPrompt: %v", err)
				}
				if len(pr.Messages) != 1 {
					t.Errorf("daily_briefing has %d messages, want 1", len(pr.Messages))
				}
			})
		}
	}
}

// TestStructuredContentIsJSONText checks the text fallback that pre-structured-content
// clients read: it must hold the same JSON as structuredContent.
func TestStructuredContentIsJSONText(t *testing.T) {
	t.Parallel()
	cs := connect(t, "memory", legacyVersion, optionsAt(fixedNow))
	res := call(t, cs, "get_stock_analysis", map[string]any{"symbol": "FPT"})
	var fromText any
	if err := json.Unmarshal([]byte(resultText(res)), &fromText); err != nil {
		t.Fatalf("text content is not JSON: %v", err)
	}
	if diff := cmp.Diff(res.StructuredContent, fromText); diff != "" {
		t.Errorf("text content differs from structuredContent (-structured +text):\n%s", diff)
	}
}
