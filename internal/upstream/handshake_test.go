package upstream

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
)

// A server that accepts the connection and never answers the handshake must not hold the
// upstream forever: the handshake gives up after the upstream's timeout, the upstream dials
// again, and once the server answers, calls go through.
func TestHandshakeThatNeverAnswersIsRetried(t *testing.T) {
	for _, era := range []mcpguard.Era{mcpguard.EraLegacy, mcpguard.EraUnknown} {
		t.Run(era.String(), func(t *testing.T) {
			h := sdkEchoHandler("slow-start")
			var hung atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost && hung.Add(1) == 1 {
					// The first request is never answered. Reading the body lets the server
					// notice when the client gives up and closes the connection.
					_, _ = io.Copy(io.Discard, r.Body)
					<-r.Context().Done()
					return
				}
				h.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close) // after the upstream's own cleanup, which ends its streams
			up := startUpstream(t, Spec{Name: "slow-start", Timeout: time.Second, HTTP: &HTTPSpec{URL: srv.URL, Era: era}})
			deadline := time.Now().Add(60 * time.Second)
			for {
				resp, err := up.Call(t.Context(), &Request{ID: jsonrpc.IntID(1), Method: "tools/call", Params: []byte(`{"name":"echo","arguments":{"text":"hi"}}`)}, nil)
				if err == nil && resp.Error == nil && strings.Contains(string(resp.Result), `"hi"`) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the upstream never recovered from a handshake that was not answered: %v, %+v", err, resp)
				}
			}
			if hung.Load() < 2 {
				t.Errorf("the server saw %d requests; the handshake was not tried again", hung.Load())
			}
		})
	}
}

// sdkEchoHandler is the go-sdk's Streamable HTTP server with one tool, echo, which answers
// with its text argument.
func sdkEchoHandler(name string) http.Handler {
	s := sdk.NewServer(&sdk.Implementation{Name: name, Version: "1.0.0"}, nil)
	sdk.AddTool(s, &sdk.Tool{Name: "echo"}, func(_ context.Context, _ *sdk.CallToolRequest, args struct {
		Text string `json:"text"`
	}) (*sdk.CallToolResult, any, error) {
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: args.Text}}}, nil, nil
	})
	return sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, nil)
}
