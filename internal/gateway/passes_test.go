package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
)

// The gateway reads a request once: one strict parse of the message, one pass over the params
// and one over their _meta (mcp.ReadParams), one decode of the arguments. The other passes of
// the JSON readers during a call are over bytes the gateway builds for the upstream (the name
// renamed to the upstream's, the _meta a legacy upstream may see, the held-call state a
// stateless client may send back) and over the upstream's reply. This counts them all for a
// legacy and a modern call to a legacy (stdio) upstream, so that a step that reads the request
// again fails here. The budgets are today's counts:
//
//	legacy 7: parse, params, arguments, rename, _meta lookup, upstream id, reply parse
//	modern 11: parse, params, _meta, arguments, rename, requestState lookup, _meta lookup,
//	           _meta stripped of protocol fields, _meta replaced, upstream id, reply parse
func TestToolsCallReadsTheRequestOnce(t *testing.T) {
	tg := newTestGateway(t, "")
	h := tg.initialize(t)
	legacy := func() {
		_, _, res := post(t, tg.url, h, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"hi"}}}`)
		if !strings.Contains(fmt.Sprint(res["result"]), "echo: hi") {
			t.Fatalf("legacy tools/call result = %v, want the echo", res)
		}
	}
	modern := func() {
		status, _, res := post(t, tg.url, modernHeaders("tools/call", "rec.echo"),
			`{"jsonrpc":"2.0","id":"m1","method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"modern"},`+modernMeta+`}}`)
		if status != http.StatusOK || !strings.Contains(fmt.Sprint(res["result"]), "echo: modern") {
			t.Fatalf("modern tools/call: status %d, %v", status, res)
		}
	}
	for _, tc := range []struct {
		name   string
		call   func()
		budget int64
	}{
		{"legacy", legacy, 7},
		{"modern", modern, 11},
	} {
		tc.call() // lists the tools once; the count is of a call on a warm catalog
		stop := jsonrpc.CountPasses()
		tc.call()
		n := stop()
		t.Logf("%s tools/call: %d passes of the JSON readers", tc.name, n)
		if n > tc.budget {
			t.Errorf("%s tools/call made %d passes over JSON, over its budget of %d: a step reads the request again", tc.name, n, tc.budget)
		}
	}
}
