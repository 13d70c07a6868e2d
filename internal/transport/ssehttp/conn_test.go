package ssehttp

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

func newSDKServer() *sdk.Server {
	s := sdk.NewServer(&sdk.Implementation{Name: "fixture", Version: "1.0.0"}, nil)
	type in struct {
		Text string `json:"text"`
	}
	type out struct {
		Echo string `json:"echo"`
	}
	sdk.AddTool(s, &sdk.Tool{Name: "echo", Description: "Echoes its text."},
		func(_ context.Context, _ *sdk.CallToolRequest, args in) (*sdk.CallToolResult, out, error) {
			return nil, out{Echo: args.Text}, nil
		})
	return s
}

func dial(t *testing.T, url string, opts *Options) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func recv(t *testing.T, c *Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	m, err := c.Recv(ctx)
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	return string(m)
}

func send(t *testing.T, c *Conn, msg string) {
	t.Helper()
	if err := c.Send(t.Context(), []byte(msg)); err != nil {
		t.Fatalf("Send %s: %v", msg, err)
	}
}

func field(t *testing.T, msg string, path ...string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(msg), &v); err != nil {
		t.Fatalf("message %q: %v", msg, err)
	}
	for _, k := range path {
		if a, ok := v.([]any); ok && len(a) > 0 {
			v = a[0]
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func TestSessionAgainstGoSDK(t *testing.T) {
	t.Parallel()
	s := newSDKServer()
	srv := httptest.NewServer(sdk.NewSSEHandler(func(*http.Request) *sdk.Server { return s }, nil))
	t.Cleanup(srv.Close)
	c := dial(t, srv.URL, nil)

	send(t, c, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"mcpguard-test","version":"0"}}}`)
	m := recv(t, c)
	if got := field(t, m, "result", "protocolVersion"); got != "2024-11-05" {
		t.Errorf("negotiated %v in %s, want 2024-11-05", got, m)
	}
	send(t, c, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	send(t, c, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	if m := recv(t, c); field(t, m, "result", "tools", "name") != "echo" {
		t.Errorf("tools/list: %s", m)
	}
	send(t, c, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}`)
	if m := recv(t, c); field(t, m, "id") != 3.0 || field(t, m, "result", "structuredContent", "echo") != "hi" {
		t.Errorf("tools/call: %s", m)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Recv(t.Context()); !errors.Is(err, ErrClosed) {
		t.Errorf("Recv after Close = %v, want ErrClosed", err)
	}
	if err := c.Send(t.Context(), []byte(`{}`)); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close = %v, want ErrClosed", err)
	}
}

// upstream is a scripted HTTP+SSE server: GET / sends the given stream text and then holds
// the stream open; POSTs anywhere are recorded and answered 202.
type upstream struct {
	srv    *httptest.Server
	stream func(w http.ResponseWriter, r *http.Request)

	mu    sync.Mutex
	posts []*http.Request
	gets  []*http.Request
	msgs  chan string // events to push on the open stream
}

func newUpstream(t *testing.T, stream func(w http.ResponseWriter, r *http.Request)) *upstream {
	t.Helper()
	u := &upstream{stream: stream, msgs: make(chan string, 16)}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		if r.Method == http.MethodGet {
			u.gets = append(u.gets, r.Clone(context.Background()))
		} else {
			body, _ := io.ReadAll(r.Body)
			r2 := r.Clone(context.Background())
			r2.Body = io.NopCloser(strings.NewReader(string(body)))
			u.posts = append(u.posts, r2)
		}
		u.mu.Unlock()
		if r.Method == http.MethodGet {
			u.stream(w, r)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) requests() (gets, posts []*http.Request) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.gets), slices.Clone(u.posts)
}

// endpointStream announces endpoint, then forwards u.msgs as message events until the
// client goes away.
func (u *upstream) endpointStream(endpoint string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, ": hello\n\nevent: endpoint\ndata: "+endpoint+"\n\n")
		w.(http.Flusher).Flush()
		for {
			select {
			case m := <-u.msgs:
				io.WriteString(w, m)
				w.(http.Flusher).Flush()
			case <-r.Context().Done():
				return
			}
		}
	}
}

func TestEndpointOrigin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		endpoint func(base string) string
		wantPath string // of the POST; "" when Dial must refuse
	}{
		{"relative path", func(string) string { return "/messages?sessionId=abc" }, "/messages?sessionId=abc"},
		{"relative to the stream's path", func(string) string { return "post?s=1" }, "/sse/post?s=1"},
		{"absolute on the same origin", func(b string) string { return b + "/m?s=2" }, "/m?s=2"},
		{"fragment dropped", func(string) string { return "/m#frag" }, "/m"},
		{"another host", func(string) string { return "http://evil.example/steal" }, ""},
		{"scheme-relative to another host", func(string) string { return "//evil.example/steal" }, ""},
		{"same host, another port", func(b string) string {
			return strings.Replace(b, "127.0.0.1:", "127.0.0.1:1", 1)
		}, ""},
		{"same host, another scheme", func(b string) string { return strings.Replace(b, "http:", "https:", 1) + "/m" }, ""},
		{"localhost is not 127.0.0.1", func(b string) string { return strings.Replace(b, "127.0.0.1", "localhost", 1) + "/m" }, ""},
		{"user info", func(b string) string { return strings.Replace(b, "http://", "http://user:pw@", 1) + "/m" }, ""},
		{"empty", func(string) string { return "" }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var u *upstream
			u = newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				u.endpointStream(tc.endpoint(u.srv.URL))(w, r)
			})
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			c, err := Dial(ctx, u.srv.URL+"/sse/", nil)
			if tc.wantPath == "" {
				if err == nil {
					c.Close()
					t.Fatalf("Dial accepted the endpoint %q", tc.endpoint(u.srv.URL))
				}
				if tc.name != "empty" && !errors.Is(err, ErrCrossOrigin) {
					t.Errorf("err = %v, want ErrCrossOrigin", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			send(t, c, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
			_, posts := u.requests()
			if len(posts) != 1 {
				t.Fatalf("%d POSTs, want 1", len(posts))
			}
			if got := posts[0].URL.RequestURI(); got != tc.wantPath {
				t.Errorf("posted to %s, want %s", got, tc.wantPath)
			}
		})
	}
}

func TestDialFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		stream  func(w http.ResponseWriter, r *http.Request)
		wantErr error
	}{
		{
			name: "no endpoint in time",
			stream: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				for {
					io.WriteString(w, ": still here\n\n")
					w.(http.Flusher).Flush()
					select {
					case <-r.Context().Done():
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
			},
			wantErr: ErrNoEndpoint,
		},
		{
			name: "first event is not the endpoint",
			stream: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "event: message\ndata: {}\n\nevent: endpoint\ndata: /m\n\n")
			},
			wantErr: ErrNoEndpoint,
		},
		{
			name: "not found",
			stream: func(w http.ResponseWriter, r *http.Request) {
				http.NotFound(w, r)
			},
			wantErr: &StatusError{},
		},
		{
			name: "oversize endpoint event",
			stream: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "event: endpoint\ndata: /"+strings.Repeat("a", 4096)+"\n\n")
			},
			wantErr: ErrMessageTooLarge,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := newUpstream(t, tc.stream)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			_, err := Dial(ctx, u.srv.URL, &Options{EndpointTimeout: 200 * time.Millisecond, MaxMessageBytes: 1024})
			if se, ok := tc.wantErr.(*StatusError); ok {
				if !errors.As(err, &se) || se.Status != http.StatusNotFound {
					t.Errorf("err = %v, want a 404 *StatusError", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
	t.Run("context ends while waiting", func(t *testing.T) {
		t.Parallel()
		u := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		})
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		if _, err := Dial(ctx, u.srv.URL, nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want context.DeadlineExceeded", err)
		}
	})
}

// The stream outlives Dial's context, Recv's context ends only that call, and only the
// message events reach the caller.
func TestMessages(t *testing.T) {
	t.Parallel()
	var u *upstream
	u = newUpstream(t, func(w http.ResponseWriter, r *http.Request) { u.endpointStream("/m")(w, r) })
	ctx, cancel := context.WithCancel(t.Context())
	c, err := Dial(ctx, u.srv.URL, nil)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	short, stop := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer stop()
	if _, err := c.Recv(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Recv with nothing to receive = %v, want context.DeadlineExceeded", err)
	}
	u.msgs <- "event: message\ndata: {\"a\":1}\n\n"
	u.msgs <- "event: endpoint\ndata: /other\n\n"
	u.msgs <- "event: ping\ndata: x\n\n"
	u.msgs <- "event: message\ndata: \n\n"
	u.msgs <- "data: {\"b\":2}\n\n"
	got := []string{recv(t, c), recv(t, c)}
	if diff := cmp.Diff([]string{`{"a":1}`, `{"b":2}`}, got); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
}

func TestStreamEnds(t *testing.T) {
	t.Parallel()
	u := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: endpoint\ndata: /m\n\nevent: message\ndata: {\"bye\":true}\n\n")
	})
	c := dial(t, u.srv.URL, nil)
	if m := recv(t, c); m != `{"bye":true}` {
		t.Errorf("Recv = %s", m)
	}
	if _, err := c.Recv(t.Context()); !errors.Is(err, io.EOF) {
		t.Errorf("Recv at the end = %v, want io.EOF", err)
	}
	if err := c.Send(t.Context(), []byte(`{}`)); err == nil {
		t.Error("Send after the stream ended succeeded")
	}
	if _, posts := u.requests(); len(posts) != 0 {
		t.Errorf("%d POSTs after the session ended", len(posts))
	}
}

func TestSizeLimits(t *testing.T) {
	t.Parallel()
	var u *upstream
	u = newUpstream(t, func(w http.ResponseWriter, r *http.Request) { u.endpointStream("/m")(w, r) })
	c := dial(t, u.srv.URL, &Options{MaxMessageBytes: 100})
	if err := c.Send(t.Context(), []byte(strings.Repeat("x", 101))); !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("Send oversize = %v, want ErrMessageTooLarge", err)
	}
	if _, posts := u.requests(); len(posts) != 0 {
		t.Error("the oversize message was posted")
	}
	u.msgs <- "event: message\ndata: " + strings.Repeat("y", 101) + "\n\n"
	if _, err := c.Recv(t.Context()); !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("Recv oversize = %v, want ErrMessageTooLarge", err)
	}
}

// Only the static headers reach the upstream, on the stream and on every POST.
func TestHeadersSent(t *testing.T) {
	t.Parallel()
	var u *upstream
	u = newUpstream(t, func(w http.ResponseWriter, r *http.Request) { u.endpointStream("/m")(w, r) })
	c := dial(t, u.srv.URL, &Options{Header: http.Header{"Authorization": {"Bearer upstream"}}})
	send(t, c, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	gets, posts := u.requests()
	wantGet := http.Header{
		"Accept":          {"text/event-stream"},
		"Accept-Encoding": {"gzip"},
		"Authorization":   {"Bearer upstream"},
		"User-Agent":      {"mcpguard"},
	}
	if diff := cmp.Diff(wantGet, gets[0].Header); diff != "" {
		t.Errorf("GET headers (-want +got):\n%s", diff)
	}
	wantPost := http.Header{
		"Accept-Encoding": {"gzip"},
		"Authorization":   {"Bearer upstream"},
		"Content-Length":  {"54"},
		"Content-Type":    {"application/json"},
		"User-Agent":      {"mcpguard"},
	}
	if diff := cmp.Diff(wantPost, posts[0].Header); diff != "" {
		t.Errorf("POST headers (-want +got):\n%s", diff)
	}
}

func TestSendRejected(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var endpoint string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "event: endpoint\ndata: /m?sessionId=secret-session\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		mu.Lock()
		endpoint = r.URL.RequestURI()
		mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, strings.Repeat("session not found ", 1000))
	}))
	t.Cleanup(srv.Close)
	c := dial(t, srv.URL, &Options{MaxErrorBody: 32})
	err := c.Send(t.Context(), []byte(`{}`))
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusNotFound || len(se.Body) != 32 || se.ContentType != "text/plain" {
		t.Fatalf("Send = %v (%+v), want a 404 *StatusError with 32 bytes of body", err, se)
	}
	if strings.Contains(err.Error(), "secret-session") {
		t.Errorf("the error reveals the session endpoint: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if endpoint != "/m?sessionId=secret-session" {
		t.Errorf("posted to %s", endpoint)
	}
}

// Close unblocks a waiting Recv and ends the stream.
func TestCloseUnblocksRecv(t *testing.T) {
	t.Parallel()
	ended := make(chan struct{})
	u := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: endpoint\ndata: /m\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(ended)
	})
	c := dial(t, u.srv.URL, nil)
	done := make(chan error, 1)
	go func() {
		_, err := c.Recv(context.Background())
		done <- err
	}()
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Recv = %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Recv did not return after Close")
	}
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the server's stream did not end after Close")
	}
}
