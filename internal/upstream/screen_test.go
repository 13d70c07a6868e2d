package upstream

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcp"
	"github.com/mcpguard/mcpguard/internal/testenv"
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

// TestScreenToolsReadsAListOnce: a tools/list sent again byte for byte is answered with what
// its first reading made of it, without reading it again; a changed list is read.
func TestScreenToolsReadsAListOnce(t *testing.T) {
	var logs testenv.Buffer
	m := &modernHTTP{up: &Upstream{name: "up", logger: slog.New(slog.NewTextHandler(&logs, nil))},
		bindings: mcp.NewBindingCache(10)}
	good := `{"name":"good","inputSchema":{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"}}}}`
	bad := `{"name":"bad","inputSchema":{"type":"object","properties":{"o":{"type":"object","x-mcp-header":"O"}}}}`
	list := `{"tools":[` + good + `,` + bad + `]}`
	first := m.screenTools([]byte(list))
	again := m.screenTools([]byte(list)) // the same bytes in another buffer, as a new response is
	if string(again) != string(first) || string(first) != `{"tools":[`+good+`]}` {
		t.Fatalf("screened twice: %s, then %s", first, again)
	}
	if n := strings.Count(logs.String(), "dropping upstream tool"); n != 1 {
		t.Errorf("the list was read %d times, want once:\n%s", n, logs.String())
	}
	changed := `{"tools":[` + bad + `]}`
	if got := m.screenTools([]byte(changed)); string(got) != `{"tools":[]}` {
		t.Errorf("a changed list screened to %s", got)
	}
	if n := strings.Count(logs.String(), "dropping upstream tool"); n != 2 {
		t.Errorf("a changed list was not read again (%d readings)", n)
	}
	clean := []byte(`{"tools":[` + good + `]}`)
	m.screenTools(clean)
	if got := m.screenTools(clean); &got[0] != &clean[0] {
		t.Error("a list with nothing to drop, sent again, was not passed on as it came")
	}
}
