package upstream

import (
	"log/slog"
	"testing"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcp"
)

// TestScreenToolsDropsInvalidBindings: a modern upstream's tool whose x-mcp-header annotations
// are invalid is dropped from its list and the others pass unchanged; a list with nothing to
// drop is passed on as it came; a tool listed again with the same schema keeps its bindings.
func TestScreenToolsDropsInvalidBindings(t *testing.T) {
	m := &modernHTTP{up: &Upstream{name: "up", logger: slog.New(slog.DiscardHandler)},
		bindings: mcp.NewBindingCache(10)}
	good := `{"name":"good","inputSchema":{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"}}}}`
	plain := `{"name":"plain","inputSchema":{"type":"object"}}`
	bad := `{"name":"bad","inputSchema":{"type":"object","properties":{"o":{"type":"object","x-mcp-header":"O"}}}}`

	clean := []byte(`{"tools":[` + good + `,` + plain + `],"ttlMs":5}`)
	if got := m.screenTools(clean); &got[0] != &clean[0] || len(got) != len(clean) {
		t.Errorf("a list with nothing to drop was rewritten: %s", got)
	}
	if b, _ := m.bindings.Get("good"); len(b) != 1 {
		t.Errorf("bindings of good: %+v, want one", b)
	}

	got := m.screenTools([]byte(`{"tools":[` + good + `,` + bad + `,` + plain + `],"ttlMs":5}`))
	tools, _ := jsonrpc.Lookup(got, "tools")
	if want := `[` + good + `,` + plain + `]`; string(tools) != want {
		t.Errorf("tools after screening:\n%s\nwant\n%s", tools, want)
	}
	if ttl, _ := jsonrpc.Lookup(got, "ttlMs"); string(ttl) != "5" {
		t.Errorf("the rest of the result changed: %s", got)
	}
	if _, ok := m.bindings.Get("bad"); ok {
		t.Error("the dropped tool's bindings were kept")
	}
}
