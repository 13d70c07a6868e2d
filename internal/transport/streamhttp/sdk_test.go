package streamhttp

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// newSDKServer returns a go-sdk server with one tool, add.
func newSDKServer() *sdk.Server {
	s := sdk.NewServer(&sdk.Implementation{Name: "fixture", Version: "1.0.0"}, nil)
	type in struct {
		A int `json:"a"`
		B int `json:"b"`
	}
	type out struct {
		Sum int `json:"sum"`
	}
	sdk.AddTool(s, &sdk.Tool{Name: "add", Description: "Adds two integers."},
		func(_ context.Context, _ *sdk.CallToolRequest, args in) (*sdk.CallToolResult, out, error) {
			return nil, out{Sum: args.A + args.B}, nil
		})
	return s
}

func startSDK(t *testing.T, opts *sdk.StreamableHTTPOptions) *httptest.Server {
	t.Helper()
	s := newSDKServer()
	srv := httptest.NewServer(sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, opts))
	t.Cleanup(srv.Close)
	return srv
}

// call posts msg and returns every message of the reply.
func call(t *testing.T, c *Client, msg string, id string, h http.Header) (*Reply, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var rawID []byte
	if id != "" {
		rawID = []byte(id)
	}
	r, err := c.Post(ctx, []byte(msg), rawID, h)
	if err != nil {
		t.Fatalf("Post %s: %v", msg, err)
	}
	defer r.Close()
	var msgs []string
	for {
		m, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			return r, msgs
		}
		if err != nil {
			t.Fatalf("Next after %s: %v", msg, err)
		}
		msgs = append(msgs, string(m))
	}
}

// field decodes msg and returns the value at the dotted path, or nil.
func field(t *testing.T, msg string, path string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(msg), &v); err != nil {
		t.Fatalf("message %q: %v", msg, err)
	}
	for _, k := range strings.Split(path, ".") {
		if a, ok := v.([]any); ok && len(a) > 0 {
			v = a[0] // a path through an array follows its first element
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func TestLegacySessionAgainstGoSDK(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		json bool
	}{
		{"SSE responses", false},
		{"JSON responses", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startSDK(t, &sdk.StreamableHTTPOptions{JSONResponse: tc.json})
			c := New(srv.URL, nil)

			r, msgs := call(t, c, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"mcpguard-test","version":"0"}}}`, "1", nil)
			if len(msgs) != 1 {
				t.Fatalf("initialize: %d messages, want 1: %q", len(msgs), msgs)
			}
			if got := field(t, msgs[0], "result.protocolVersion"); got != "2025-11-25" {
				t.Errorf("negotiated %v, want 2025-11-25", got)
			}
			sid := r.Header.Get("Mcp-Session-Id")
			if sid == "" {
				t.Fatal("no Mcp-Session-Id in the initialize reply")
			}
			h := http.Header{"Mcp-Session-Id": {sid}, "Mcp-Protocol-Version": {"2025-11-25"}}

			r, msgs = call(t, c, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, "", h)
			if r.Status != http.StatusAccepted || len(msgs) != 0 {
				t.Errorf("notifications/initialized: status %d, messages %q; want 202 and none", r.Status, msgs)
			}

			_, msgs = call(t, c, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, "2", h)
			if len(msgs) != 1 || field(t, msgs[0], "result.tools.name") != "add" {
				t.Errorf("tools/list: %q", msgs)
			}

			_, msgs = call(t, c, `{"jsonrpc":"2.0","id":"call-3","method":"tools/call","params":{"name":"add","arguments":{"a":2,"b":40}}}`, `"call-3"`, h)
			if len(msgs) != 1 || field(t, msgs[0], "id") != "call-3" || field(t, msgs[0], "result.structuredContent.sum") != 42.0 {
				t.Errorf("tools/call: %q", msgs)
			}

			// The standalone GET stream opens.
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			g, err := c.Get(ctx, h)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if g.Status != http.StatusOK {
				t.Errorf("Get status %d", g.Status)
			}
			g.Close()
			if _, err := g.Next(ctx); !errors.Is(err, ErrClosed) {
				t.Errorf("Next after Close = %v, want ErrClosed", err)
			}

			if err := c.Delete(ctx, h); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			_, err = c.Post(ctx, []byte(`{"jsonrpc":"2.0","id":4,"method":"tools/list"}`), []byte("4"), h)
			var se *StatusError
			if !errors.As(err, &se) || se.Status != http.StatusNotFound {
				t.Errorf("Post after Delete = %v, want a 404 *StatusError", err)
			}
		})
	}
}

// modernHeader returns the headers of a 2026-07-28 request.
func modernHeader(method, name string) http.Header {
	h := http.Header{"Mcp-Protocol-Version": {"2026-07-28"}, "Mcp-Method": {method}}
	if name != "" {
		h.Set("Mcp-Name", name)
	}
	return h
}

const modernMeta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"mcpguard-test","version":"0"},"io.modelcontextprotocol/clientCapabilities":{}}`

func TestModernStatelessAgainstGoSDK(t *testing.T) {
	t.Parallel()
	srv := startSDK(t, &sdk.StreamableHTTPOptions{Stateless: true})
	c := New(srv.URL, nil)

	_, msgs := call(t, c, `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{`+modernMeta+`}}`, "1", modernHeader("server/discover", ""))
	if len(msgs) != 1 || field(t, msgs[0], "result.supportedVersions") == nil {
		t.Errorf("server/discover: %q", msgs)
	}

	_, msgs = call(t, c, `{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{`+modernMeta+`}}`, "2", modernHeader("tools/list", ""))
	if len(msgs) != 1 || field(t, msgs[0], "result.tools.name") != "add" {
		t.Errorf("tools/list: %q", msgs)
	}

	_, msgs = call(t, c, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{`+modernMeta+`,"name":"add","arguments":{"a":1,"b":2}}}`, "3", modernHeader("tools/call", "add"))
	if len(msgs) != 1 || field(t, msgs[0], "result.structuredContent.sum") != 3.0 {
		t.Errorf("tools/call: %q", msgs)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	t.Run("header and body disagree", func(t *testing.T) {
		_, err := c.Post(ctx, []byte(`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{`+modernMeta+`,"name":"add","arguments":{"a":1,"b":2}}}`),
			[]byte("4"), modernHeader("tools/call", "subtract"))
		var se *StatusError
		if !errors.As(err, &se) || se.Status != http.StatusBadRequest {
			t.Fatalf("err = %v, want a 400 *StatusError", err)
		}
		if code := field(t, string(se.Body), "error.code"); code != -32020.0 {
			t.Errorf("error code %v in body %q, want -32020", code, se.Body)
		}
		if mediaType(se.ContentType) != "application/json" {
			t.Errorf("ContentType = %q", se.ContentType)
		}
	})
	t.Run("no standalone stream", func(t *testing.T) {
		_, err := c.Get(ctx, http.Header{"Mcp-Protocol-Version": {"2026-07-28"}})
		var se *StatusError
		if !errors.As(err, &se) || se.Status != http.StatusMethodNotAllowed {
			t.Fatalf("Get = %v, want a 405 *StatusError", err)
		}
	})
}
