package gateway

import (
	"fmt"
	"net/http"
	"testing"
)

// TestJSONAnsweredCallsAreNotKept checks that a legacy session keeps no buffer for calls
// answered with a plain JSON body: nothing can resume them, and keeping them would hold every
// response (a large tool result) in memory for the session's life.
func TestJSONAnsweredCallsAreNotKept(t *testing.T) {
	tg := newTestGateway(t, "")
	h := tg.initialize(t)
	for i := range 3 {
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"kept?"}}}`, i+10)
		status, _, msg := post(t, tg.url, h, body)
		if status != http.StatusOK || msg["result"] == nil {
			t.Fatalf("call %d: status %d, %v", i, status, msg)
		}
	}
	s := tg.g.sessions.get(h["Mcp-Session-Id"])
	if s == nil {
		t.Fatal("session not found")
	}
	s.mu.Lock()
	streams, order := len(s.streams), len(s.order)
	s.mu.Unlock()
	if streams != 0 || order != 0 {
		t.Errorf("session keeps %d streams (%d ordered) after three calls answered as JSON, want none", streams, order)
	}
}
