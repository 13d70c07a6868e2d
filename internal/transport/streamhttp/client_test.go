package streamhttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// recorder is an upstream whose behaviour a test scripts per request, and which remembers
// every request it saw.
type recorder struct {
	mu   sync.Mutex
	reqs []seen
}

type seen struct {
	Method string
	Header http.Header
	Body   string
}

func (rec *recorder) record(r *http.Request) int {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.reqs = append(rec.reqs, seen{Method: r.Method, Header: r.Header.Clone(), Body: string(body)})
	return len(rec.reqs)
}

func (rec *recorder) requests() []seen {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.reqs)
}

// serve starts an upstream that records each request and then calls h with its 1-based
// sequence number.
func serve(t *testing.T, h func(w http.ResponseWriter, r *http.Request, n int)) (*httptest.Server, *recorder) {
	t.Helper()
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(w, r, rec.record(r))
	}))
	t.Cleanup(srv.Close)
	return srv, rec
}

// writeSSE writes raw event-stream text and flushes it.
func writeSSE(w http.ResponseWriter, text string) {
	io.WriteString(w, text)
	w.(http.Flusher).Flush()
}

func startSSE(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
}

// sleeps records the delays a client waited and does not wait.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.d)
}

// drainReply returns every message of r and the error that ended it (nil for io.EOF).
func drainReply(t *testing.T, r *Reply) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	defer r.Close()
	var msgs []string
	for {
		m, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			return msgs, nil
		}
		if err != nil {
			return msgs, err
		}
		msgs = append(msgs, string(m))
	}
}

func legacyHeader() http.Header {
	return http.Header{
		"Mcp-Session-Id":       {"s-1"},
		"Mcp-Protocol-Version": {"2025-11-25"},
		"Mcp-Method":           {"tools/call"},
		"Mcp-Name":             {"slow"},
	}
}

const (
	progress = `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":1}}`
	result7  = `{"jsonrpc":"2.0","id":7,"result":{"content":[]}}`
)

// The stream ends at the response to our request, matched by id as JSON values: not at a
// server-to-client request that reuses the number, nor at a response whose id is the string
// "7".
func TestResponseMatchedByCanonicalID(t *testing.T) {
	t.Parallel()
	serverRequest := `{"jsonrpc":"2.0","id":7,"method":"sampling/createMessage","params":{}}`
	stringID := `{"jsonrpc":"2.0","id":"7","result":{}}`
	escaped := `{"jsonrpc":"2.0","id":"\u0061","result":{}}`
	for _, tc := range []struct {
		name   string
		id     string
		stream []string
		want   []string
	}{
		{
			name:   "number id",
			id:     "7",
			stream: []string{serverRequest, stringID, result7, progress},
			want:   []string{serverRequest, stringID, result7},
		},
		{
			name:   "string id equal after unescaping",
			id:     `"a"`,
			stream: []string{result7, escaped, progress},
			want:   []string{result7, escaped},
		},
		{
			name:   "error response",
			id:     "-3",
			stream: []string{`{"jsonrpc":"2.0","id":-3,"error":{"code":-32601,"message":"nope"}}`, progress},
			want:   []string{`{"jsonrpc":"2.0","id":-3,"error":{"code":-32601,"message":"nope"}}`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
				startSSE(w)
				for _, m := range tc.stream {
					writeSSE(w, "data: "+m+"\n\n")
				}
				<-r.Context().Done() // keep the stream open: only the response may end it
			})
			c := New(srv.URL, nil)
			r, err := c.Post(t.Context(), []byte(`{}`), []byte(tc.id), legacyHeader())
			if err != nil {
				t.Fatal(err)
			}
			msgs, err := drainReply(t, r)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, msgs); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
		})
	}
}

// TestConnectionKeptAfterStreamedResponse: a server that ends an SSE reply after the response,
// in the same write or in a write of its own after the client has read the response (as the
// go-sdk's may), keeps its connection for the next request, even when the caller has finished
// and cancelled its context before that end arrived: the connection is not redialled for every
// call.
func TestConnectionKeptAfterStreamedResponse(t *testing.T) {
	t.Parallel()
	for _, late := range []bool{false, true} {
		t.Run(fmt.Sprintf("end after the response read: %v", late), func(t *testing.T) {
			t.Parallel()
			var conns atomic.Int32
			answered := make(chan chan struct{}, 1)
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				if !late {
					io.WriteString(w, "data: "+result7+"\n\n") // the end goes out with it
					return
				}
				startSSE(w)
				writeSSE(w, "data: "+result7+"\n\n")
				release := make(chan struct{})
				answered <- release
				<-release // the end of the body comes after the client has its response
			}))
			srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
				if st == http.StateNew {
					conns.Add(1)
				}
			}
			srv.Start()
			t.Cleanup(srv.Close)
			hc := NewHTTPClient()
			closed := make(chan struct{}, 8)
			hc.Transport = closeSignal{hc.Transport, closed}
			c := New(srv.URL, &Options{HTTPClient: hc})
			for i := range 3 {
				ctx, cancel := context.WithCancel(t.Context())
				r, err := c.Post(ctx, []byte(`{}`), []byte("7"), legacyHeader())
				if err != nil {
					t.Fatal(err)
				}
				msgs, err := drainReply(t, r)
				if err != nil || len(msgs) != 1 || msgs[0] != result7 {
					t.Fatalf("call %d: %q, %v", i, msgs, err)
				}
				cancel() // the caller is done, maybe before the server has ended the body
				if late {
					close(<-answered)
				}
				<-closed // a body read to its end is closed once its connection is back in the pool
			}
			if n := conns.Load(); n != 1 {
				t.Errorf("3 calls opened %d connections, want 1", n)
			}
		})
	}
}

// closeSignal reports every response body's Close.
type closeSignal struct {
	rt     http.RoundTripper
	closed chan struct{}
}

func (c closeSignal) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(r)
	if err == nil {
		resp.Body = &signalBody{resp.Body, c.closed}
	}
	return resp, err
}

type signalBody struct {
	io.ReadCloser
	closed chan struct{}
}

func (b *signalBody) Close() error {
	err := b.ReadCloser.Close()
	select {
	case b.closed <- struct{}{}:
	default:
	}
	return err
}

// Only the configured static headers and the protocol headers reach the upstream; a
// caller's credentials are refused before anything is sent.
func TestHeadersSent(t *testing.T) {
	t.Parallel()
	srv, rec := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, result7)
	})
	c := New(srv.URL, &Options{Header: http.Header{
		"Authorization": {"Bearer upstream-token"},
		"X-Api-Key":     {"k"},
	}})
	h := http.Header{
		"Mcp-Session-Id":       {"s-1"},
		"MCP-Protocol-Version": {"2025-11-25"}, // not canonical: still sent once, canonically
		"Traceparent":          {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
	}
	r, err := c.Post(t.Context(), []byte(`{"jsonrpc":"2.0","id":7,"method":"ping"}`), []byte("7"), h)
	if err != nil {
		t.Fatal(err)
	}
	if msgs, err := drainReply(t, r); err != nil || len(msgs) != 1 {
		t.Fatalf("messages %q, err %v", msgs, err)
	}
	got := rec.requests()[0].Header
	want := http.Header{
		"Accept":               {"application/json, text/event-stream"},
		"Authorization":        {"Bearer upstream-token"},
		"Content-Length":       {"40"},
		"Content-Type":         {"application/json"},
		"Mcp-Protocol-Version": {"2025-11-25"},
		"Mcp-Session-Id":       {"s-1"},
		"Traceparent":          {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		"User-Agent":           {"mcpguard"},
		"X-Api-Key":            {"k"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("headers received (-want +got):\n%s", diff)
	}

	for _, bad := range []string{"Authorization", "Cookie", "X-Forwarded-For", "Accept", "Host"} {
		_, err := c.Post(t.Context(), []byte(`{}`), nil, http.Header{bad: {"from-the-caller"}})
		if !errors.Is(err, ErrHeaderNotAllowed) {
			t.Errorf("Post with a caller's %s header: err = %v, want ErrHeaderNotAllowed", bad, err)
		}
		if err := c.Delete(t.Context(), http.Header{bad: {"x"}}); !errors.Is(err, ErrHeaderNotAllowed) {
			t.Errorf("Delete with a caller's %s header: err = %v, want ErrHeaderNotAllowed", bad, err)
		}
		if _, err := c.Get(t.Context(), http.Header{bad: {"x"}}); !errors.Is(err, ErrHeaderNotAllowed) {
			t.Errorf("Get with a caller's %s header: err = %v, want ErrHeaderNotAllowed", bad, err)
		}
	}
	if n := len(rec.requests()); n != 1 {
		t.Errorf("%d requests reached the upstream, want only the first", n)
	}
}

func TestSizeLimits(t *testing.T) {
	t.Parallel()
	big := `{"jsonrpc":"2.0","id":7,"result":{"text":"` + strings.Repeat("x", 2000) + `"}}`
	for _, tc := range []struct {
		name    string
		handler func(w http.ResponseWriter)
	}{
		{"JSON body", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, big)
		}},
		{"SSE event", func(w http.ResponseWriter) {
			startSSE(w)
			writeSSE(w, "data: "+big+"\n\n")
		}},
		{"SSE event split over data lines", func(w http.ResponseWriter) {
			startSSE(w)
			writeSSE(w, "data: "+big[:1000]+"\ndata: "+big[1000:]+"\n\n")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request, n int) { tc.handler(w) })
			c := New(srv.URL, &Options{MaxMessageBytes: 1024})
			r, err := c.Post(t.Context(), []byte(`{}`), []byte("7"), nil)
			if err == nil {
				_, err = drainReply(t, r)
			}
			if !errors.Is(err, ErrMessageTooLarge) {
				t.Errorf("err = %v, want ErrMessageTooLarge", err)
			}
		})
	}
	t.Run("request", func(t *testing.T) {
		t.Parallel()
		srv, rec := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {})
		c := New(srv.URL, &Options{MaxMessageBytes: 1024})
		if _, err := c.Post(t.Context(), []byte(big), []byte("7"), nil); !errors.Is(err, ErrMessageTooLarge) {
			t.Errorf("err = %v, want ErrMessageTooLarge", err)
		}
		if n := len(rec.requests()); n != 0 {
			t.Errorf("the oversize request was sent")
		}
	})
}

func TestStatusErrors(t *testing.T) {
	t.Parallel()
	var redirected bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { redirected = true }))
	t.Cleanup(elsewhere.Close)
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    StatusError
	}{
		{
			name: "error body bounded",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(http.StatusInternalServerError)
				io.WriteString(w, strings.Repeat("e", 1<<20))
			},
			want: StatusError{Method: "POST", Status: 500, Body: []byte(strings.Repeat("e", 100)), ContentType: "text/plain"},
		},
		{
			name: "JSON-RPC error with 400",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"bad"}}`)
			},
			want: StatusError{Method: "POST", Status: 400, Body: []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"bad"}}`), ContentType: "application/json"},
		},
		{
			name: "redirects are not followed",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, elsewhere.URL, http.StatusTemporaryRedirect)
			},
			want: StatusError{Method: "POST", Status: 307, Body: []byte{}, ContentType: ""},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(tc.handler)
			t.Cleanup(srv.Close)
			c := New(srv.URL, &Options{MaxErrorBody: 100, Header: http.Header{"Authorization": {"Bearer secret"}}})
			_, err := c.Post(t.Context(), []byte(`{}`), []byte("1"), nil)
			var se *StatusError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *StatusError", err)
			}
			if diff := cmp.Diff(tc.want, *se, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Header" }, cmp.Ignore())); diff != "" {
				t.Errorf("StatusError (-want +got):\n%s", diff)
			}
			if strings.Contains(err.Error(), "eee") {
				t.Errorf("the error message repeats the upstream's body: %v", err)
			}
		})
	}
	if redirected {
		t.Error("the redirect was followed")
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		status int
		ok     bool
	}{
		{"no content", http.StatusNoContent, true},
		{"ok", http.StatusOK, true},
		{"client may not end sessions", http.StatusMethodNotAllowed, true},
		{"unknown session", http.StatusNotFound, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, rec := serve(t, func(w http.ResponseWriter, r *http.Request, n int) { w.WriteHeader(tc.status) })
			err := New(srv.URL, nil).Delete(t.Context(), http.Header{"Mcp-Session-Id": {"s-1"}})
			if (err == nil) != tc.ok {
				t.Errorf("Delete = %v, want success %v", err, tc.ok)
			}
			if r := rec.requests()[0]; r.Method != http.MethodDelete || r.Header.Get("Mcp-Session-Id") != "s-1" {
				t.Errorf("request %s with session %q", r.Method, r.Header.Get("Mcp-Session-Id"))
			}
		})
	}
}

// Closing a reply, or ending the context of Next, ends the HTTP request: for a modern-era
// request that is how the server learns the call was cancelled.
func TestCancellationReachesServer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		stop    func(r *Reply, cancelNext context.CancelFunc)
		wantErr error
	}{
		{"Close", func(r *Reply, _ context.CancelFunc) { r.Close() }, ErrClosed},
		{"context of Next", func(_ *Reply, cancel context.CancelFunc) { cancel() }, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cancelled := make(chan struct{})
			primed := make(chan struct{})
			srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
				startSSE(w)
				close(primed)
				<-r.Context().Done()
				close(cancelled)
			})
			c := New(srv.URL, nil)
			r, err := c.Post(t.Context(), []byte(`{}`), []byte("7"), modernHeader("tools/call", "slow"))
			if err != nil {
				t.Fatal(err)
			}
			<-primed
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := r.Next(ctx)
				done <- err
			}()
			time.Sleep(10 * time.Millisecond) // let Next block on the stream (not required for correctness)
			tc.stop(r, cancel)
			select {
			case err := <-done:
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("Next = %v, want %v", err, tc.wantErr)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Next did not return")
			}
			select {
			case <-cancelled:
			case <-time.After(10 * time.Second):
				t.Fatal("the server never saw the request end")
			}
		})
	}
}

func TestErrorsDoNotLeakURLSecrets(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close() // nothing listens there any more
	c := New(addr+"/mcp?api_key=s3cr3t", nil)
	_, err := c.Post(t.Context(), []byte(`{}`), nil, nil)
	if err == nil {
		t.Fatal("Post to a closed port succeeded")
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error reveals the query: %v", err)
	}
	if !strings.Contains(err.Error(), "/mcp") {
		t.Errorf("error does not name the endpoint: %v", err)
	}
}

func TestIDKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b  string
		equal bool
	}{
		{"1", "1", true},
		{"1", `"1"`, false},
		{`"a"`, `"\u0061"`, true},
		{"0", "-0", true},
		{" 5 ", "5", true},
		{"5", "5.0", false}, // 5.0 is not an integer id
	} {
		ka, oka := idKey([]byte(tc.a))
		kb, okb := idKey([]byte(tc.b))
		if got := oka && okb && ka == kb; got != tc.equal {
			t.Errorf("ids %s and %s: equal = %v, want %v", tc.a, tc.b, got, tc.equal)
		}
	}
	for _, bad := range []string{"", "null", "1.5", "1e3", "+1", "01", `"unterminated`, "{}", "true"} {
		if _, ok := idKey([]byte(bad)); ok {
			t.Errorf("idKey(%s) accepted", bad)
		}
	}
}

func TestUnexpectedContentType(t *testing.T) {
	t.Parallel()
	srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html>login</html>")
	})
	if _, err := New(srv.URL, nil).Post(t.Context(), []byte(`{}`), []byte("1"), nil); !errors.Is(err, ErrBadResponse) {
		t.Errorf("Post = %v, want ErrBadResponse", err)
	}
}

// A caller's own http.Client that would follow redirects does not: an upstream cannot send the
// gateway, and the upstream's credentials, elsewhere.
func TestRedirectsAreNotFollowedWithACallersClient(t *testing.T) {
	t.Parallel()
	var redirected atomic.Bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { redirected.Store(true) }))
	t.Cleanup(elsewhere.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	c := New(srv.URL, &Options{HTTPClient: &http.Client{}, Header: http.Header{"Authorization": {"Bearer secret"}}})
	_, err := c.Post(t.Context(), []byte(`{}`), []byte("1"), nil)
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusTemporaryRedirect {
		t.Fatalf("err = %v, want a *StatusError with 307", err)
	}
	if redirected.Load() {
		t.Error("the redirect was followed")
	}
}
