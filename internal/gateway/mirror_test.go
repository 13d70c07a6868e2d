package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/demo"
	"github.com/mcpguard/mcpguard/internal/sse"
)

// TestReplyFormatMirrorsTheUpstream: a client that accepts SSE gets its reply on an SSE stream
// when the upstream answered on one, and as one JSON body when the upstream did — in both
// client eras, for a forwarded call and for an aggregated list — so that what it sees through
// the gateway is what it would see directly (the conformance suite's
// server-sse-streams-functional check looks exactly at this). A client that did not name
// text/event-stream in Accept always gets JSON.
func TestReplyFormatMirrorsTheUpstream(t *testing.T) {
	streams := httptest.NewServer(demo.HTTPHandler(nil)) // the go-sdk's default: SSE replies
	t.Cleanup(streams.Close)
	whole := httptest.NewServer(mcp.NewStreamableHTTPHandler(
		func(*http.Request) *mcp.Server { return demo.NewServer(nil) },
		&mcp.StreamableHTTPOptions{JSONResponse: true}))
	t.Cleanup(whole.Close)

	for _, tc := range []struct {
		name, era, url string
		streamed       bool
	}{
		{"modern upstream answering SSE", "auto", streams.URL, true},
		{"legacy upstream answering SSE", "legacy", streams.URL, true},
		{"legacy upstream answering JSON", "legacy", whole.URL, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := mirrorGateway(t, tc.era, tc.url)
			legacy := legacySession(t, url)
			modern := func(method, name string) map[string]string { return modernHeaders(method, name) }
			call := `"name":"up.get_stock_analysis","arguments":{"symbol":"VNM"}`
			for _, r := range []struct {
				what    string
				headers map[string]string
				body    string
			}{
				{"legacy tools/call", legacy, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{` + call + `}}`},
				{"legacy tools/list", legacy, `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`},
				{"modern tools/call", modern("tools/call", "up.get_stock_analysis"), `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{` + call + `,` + modernMeta + `}}`},
				{"modern tools/list", modern("tools/list", ""), `{"jsonrpc":"2.0","id":5,"method":"tools/list","params":{` + modernMeta + `}}`},
			} {
				for _, accept := range []string{"application/json, text/event-stream", "application/json"} {
					ct, body := postAccept(t, url, r.headers, accept, r.body)
					wantSSE := tc.streamed && strings.Contains(accept, "text/event-stream")
					if gotSSE := strings.HasPrefix(ct, "text/event-stream"); gotSSE != wantSSE {
						t.Errorf("%s, Accept %q: Content-Type %q, want SSE = %v", r.what, accept, ct, wantSSE)
					}
					if !strings.Contains(body, `"result"`) {
						t.Errorf("%s, Accept %q: no result in %.300s", r.what, accept, body)
					}
				}
			}
		})
	}
}

// TestWholeSSEReplyIsOneBody: a legacy call whose upstream answered on an SSE stream, with
// nothing before the response, reaches the client as one body of known length holding what a
// client following the stream would read — the priming event, then the response — and the
// stream stays resumable from the priming event's id.
func TestWholeSSEReplyIsOneBody(t *testing.T) {
	streams := httptest.NewServer(demo.HTTPHandler(nil))
	t.Cleanup(streams.Close)
	url := mirrorGateway(t, "legacy", streams.URL)
	h := legacySession(t, url)
	h["Accept"] = "application/json, text/event-stream"
	resp, raw := exchange(t, http.MethodPost, url, h,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"up.get_stock_analysis","arguments":{"symbol":"VNM"}}}`)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q, want text/event-stream; body %.300s", ct, raw)
	}
	if resp.ContentLength != int64(len(raw)) || len(resp.TransferEncoding) != 0 {
		t.Errorf("Content-Length %d, Transfer-Encoding %v for a body of %d bytes: want one body of known length", resp.ContentLength, resp.TransferEncoding, len(raw))
	}
	evs, err := readEvents(raw)
	if err != nil || len(evs) != 2 {
		t.Fatalf("events %+v (%v), want the priming event and the response", evs, err)
	}
	prime, reply := evs[0], evs[1]
	if !strings.HasSuffix(prime.ID, "_0") || len(prime.Data) != 0 || !prime.HasRetry {
		t.Errorf("first event %+v, want a priming event: id …_0, empty data, a retry", prime)
	}
	if stream := strings.TrimSuffix(prime.ID, "_0"); reply.ID != stream+"_1" || reply.Type != "message" || !strings.Contains(string(reply.Data), `"id":2,"result"`) {
		t.Errorf("second event %+v, want message %s_1 with the response", reply, stream)
	}

	// Resuming from the priming event gives the response again.
	h["Accept"], h["Last-Event-ID"] = "text/event-stream", prime.ID
	_, graw := exchange(t, http.MethodGet, url, h, "")
	if again, _ := readEvents(graw); len(again) == 0 || again[len(again)-1].ID != reply.ID || !bytes.Equal(again[len(again)-1].Data, reply.Data) {
		t.Errorf("resumed from %s: %q, want the response %s again", prime.ID, graw, reply.ID)
	}
}

func readEvents(raw []byte) ([]sse.Event, error) {
	r := sse.NewReader(bytes.NewReader(raw), 0)
	var out []sse.Event
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}

// TestDiscoveryCarriesTheClientsCapabilities: a modern client's server/discover reaches a modern
// upstream with the client's own _meta — its capabilities and clientInfo — not the gateway's
// probe, which spoke for no client (the conformance suite's request-metadata scenario checks
// the roots capability a client declares).
func TestDiscoveryCarriesTheClientsCapabilities(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	inner := demo.HTTPHandler(nil)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			if strings.Contains(string(body), `"server/discover"`) {
				mu.Lock()
				seen = append(seen, string(body))
				mu.Unlock()
			}
			r.Body = io.NopCloser(strings.NewReader(string(body)))
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	url := mirrorGateway(t, "auto", up.URL)

	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"roots":{"listChanged":true}},"io.modelcontextprotocol/clientInfo":{"name":"roots-client","version":"7"}}`
	status, _, res := post(t, url, modernHeaders("server/discover", ""), `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{`+meta+`}}`)
	if status != http.StatusOK || res["result"] == nil {
		t.Fatalf("server/discover: status %d, %v", status, res)
	}
	caps, _ := res["result"].(map[string]any)["capabilities"].(map[string]any)
	if caps["tools"] == nil {
		t.Errorf("server/discover capabilities %v lack the upstream's tools", caps)
	}
	mu.Lock()
	defer mu.Unlock()
	found := false
	for _, b := range seen {
		if strings.Contains(b, `"roots":{"listChanged":true}`) && strings.Contains(b, `"roots-client"`) {
			found = true
		}
	}
	if !found {
		t.Errorf("no server/discover with the client's roots capability and clientInfo reached the upstream; it saw:\n%s", strings.Join(seen, "\n"))
	}
}

// mirrorGateway serves a gateway with one Streamable HTTP upstream, prefix "up", and returns its
// MCP endpoint.
func mirrorGateway(t *testing.T, era, upstreamURL string) string {
	t.Helper()
	cfg, err := config.Parse(fmt.Appendf(nil, `
listen: 127.0.0.1:0
upstreams:
  - name: up
    http: {url: %q, era: %s}
`, upstreamURL, era), "mirror.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	g, err := newFromConfig(ctx, cfg, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	g.Start(ctx)
	gw := httptest.NewServer(g.Handler())
	t.Cleanup(func() { gw.Close(); g.Close(); cancel() })
	return gw.URL + "/mcp"
}

// postAccept POSTs body with the given Accept and returns the reply's Content-Type and body.
func postAccept(t *testing.T, url string, h map[string]string, accept, body string) (string, string) {
	t.Helper()
	hh := map[string]string{"Accept": accept}
	for k, v := range h {
		hh[k] = v
	}
	resp, raw := exchange(t, http.MethodPost, url, hh, body)
	return resp.Header.Get("Content-Type"), string(raw)
}

// exchange sends one request with the headers h (a POST's body as JSON) and returns the
// response with its whole body.
func exchange(t *testing.T, method, url string, h map[string]string, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, raw
}
