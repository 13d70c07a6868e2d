package ssehttp

import (
	"os"
	"testing"
)

// TestExternalServer runs a session against an HTTP+SSE server named by MCPGUARD_SSE_URL,
// for instance the npm reference server (server-everything sse) at http://127.0.0.1:3001/sse.
func TestExternalServer(t *testing.T) {
	url := os.Getenv("MCPGUARD_SSE_URL")
	if url == "" {
		t.Skip("MCPGUARD_SSE_URL is not set")
	}
	c := dial(t, url, nil)
	send(t, c, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"mcpguard-test","version":"0"}}}`)
	m := recv(t, c)
	if v, _ := field(t, m, "result", "protocolVersion").(string); v == "" {
		t.Fatalf("initialize: %s", m)
	}
	send(t, c, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	send(t, c, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	// The server may send notifications (logging, list changes) before the response.
	for range 20 {
		m = recv(t, c)
		if field(t, m, "id") == 2.0 {
			break
		}
	}
	name, _ := field(t, m, "result", "tools", "name").(string)
	if name == "" {
		t.Fatalf("tools/list: %s", m)
	}
	t.Logf("first tool: %s", name)
}
