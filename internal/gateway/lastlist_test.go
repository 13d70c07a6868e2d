package gateway

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestUnchangedListIsReadOnce: a tools/list the upstream sends again byte for byte is served
// from what was read the first time; one that differs in a single description is read again,
// and clients see the new description.
func TestUnchangedListIsReadOnce(t *testing.T) {
	desc := filepath.Join(t.TempDir(), "desc")
	if err := os.WriteFile(desc, []byte("First description."), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MCPGUARD_TEST_DESC_FILE", desc)
	tg := newTestGateway(t, "")
	h := tg.initialize(t)
	echoDesc := func(id int) string {
		t.Helper()
		st, _, msg := post(t, tg.url, h, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/list"}`, id))
		if st != http.StatusOK {
			t.Fatalf("tools/list: status %d, %v", st, msg)
		}
		tools, _ := msg["result"].(map[string]any)["tools"].([]any)
		for _, tool := range tools {
			if m := tool.(map[string]any); m["name"] == "rec.echo" {
				d, _ := m["description"].(string)
				return d
			}
		}
		t.Fatalf("tools/list has no rec.echo: %v", msg)
		return ""
	}
	if d := echoDesc(2); d != "First description." {
		t.Fatalf("first list: echo's description %q", d)
	}
	g := tg.g
	g.cat.mu.Lock()
	first := g.cat.last[lastKey{g.ups[0], kindTools.key}]
	g.cat.mu.Unlock()
	if first == nil {
		t.Fatal("a one-page list was not kept")
	}
	if d := echoDesc(3); d != "First description." {
		t.Fatalf("same list again: echo's description %q", d)
	}
	g.cat.mu.Lock()
	again := g.cat.last[lastKey{g.ups[0], kindTools.key}]
	g.cat.mu.Unlock()
	if again != first {
		t.Error("the same list was read again instead of served from the last one")
	}
	if err := os.WriteFile(desc, []byte("Second description."), 0o600); err != nil {
		t.Fatal(err)
	}
	if d := echoDesc(4); d != "Second description." {
		t.Fatalf("changed list: echo's description %q, want the new one", d)
	}
	// The changed list's tools still route.
	if st, _, msg := post(t, tg.url, h, `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"hi"}}}`); st != http.StatusOK || msg["error"] != nil {
		t.Errorf("call after the list changed: status %d, %v", st, msg)
	}
	// The upstream announces a changed list (its tools/list_changed empties the catalog) and then
	// sends the same bytes: the catalog is built again from them, so its tools still route.
	post(t, tg.url, h, `{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"rec.change","arguments":{}}}`)
	for {
		g.cat.mu.Lock()
		_, held := g.cat.names[kindTools.key][g.ups[0]]
		g.cat.mu.Unlock()
		if !held {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if st, _, msg := post(t, tg.url, h, `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"hi"}}}`); st != http.StatusOK || msg["error"] != nil {
		t.Errorf("call after tools/list_changed and the same list again: status %d, %v", st, msg)
	}
}
