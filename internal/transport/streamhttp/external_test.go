package streamhttp

import (
	"net/http"
	"os"
	"testing"
)

// TestExternalServer runs a legacy-era session against a Streamable HTTP server named by
// MCPGUARD_STREAMABLE_URL, for instance the npm reference server (server-everything
// streamableHttp) at http://127.0.0.1:3001/mcp.
func TestExternalServer(t *testing.T) {
	url := os.Getenv("MCPGUARD_STREAMABLE_URL")
	if url == "" {
		t.Skip("MCPGUARD_STREAMABLE_URL is not set")
	}
	c := New(url, nil)
	r, msgs := call(t, c, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"mcpguard-test","version":"0"}}}`, "1", nil)
	if len(msgs) == 0 || field(t, msgs[len(msgs)-1], "result.protocolVersion") == nil {
		t.Fatalf("initialize: %q", msgs)
	}
	h := http.Header{"Mcp-Protocol-Version": {"2025-11-25"}}
	if sid := r.Header.Get("Mcp-Session-Id"); sid != "" {
		h.Set("Mcp-Session-Id", sid)
	}
	call(t, c, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, "", h)
	_, msgs = call(t, c, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, "2", h)
	if len(msgs) == 0 || field(t, msgs[len(msgs)-1], "result.tools.name") == nil {
		t.Fatalf("tools/list: %q", msgs)
	}
	t.Logf("first tool: %v", field(t, msgs[len(msgs)-1], "result.tools.name"))
	if h.Get("Mcp-Session-Id") != "" {
		if err := c.Delete(t.Context(), h); err != nil {
			t.Errorf("Delete: %v", err)
		}
	}
}
