package streamhttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
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

// A legacy stream killed mid-way is resumed with GET and Last-Event-ID after the server's
// retry delay, and the messages on both streams come out in order.
func TestResumeAfterStreamKilledMidway(t *testing.T) {
	t.Parallel()
	srv, rec := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch n {
		case 1: // the POST: one event, then the connection dies without ending the body
			startSSE(w)
			writeSSE(w, "id: e1\nretry: 20\ndata: "+progress+"\n\n")
			panic(http.ErrAbortHandler)
		case 2: // the resuming GET
			startSSE(w)
			writeSSE(w, "id: e2\ndata: "+result7+"\n\n")
		}
	})
	var sl sleeps
	c := New(srv.URL, &Options{Sleep: sl.sleep})
	r, err := c.Post(t.Context(), []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"slow"}}`), []byte("7"), legacyHeader())
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := drainReply(t, r)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	if diff := cmp.Diff([]string{progress, result7}, msgs); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]time.Duration{20 * time.Millisecond}, sl.got()); diff != "" {
		t.Errorf("reconnection delays (-want +got):\n%s", diff)
	}
	reqs := rec.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want POST then GET", len(reqs))
	}
	get := reqs[1]
	if get.Method != http.MethodGet {
		t.Fatalf("second request is %s, want GET", get.Method)
	}
	for k, want := range map[string]string{
		"Last-Event-Id":        "e1",
		"Accept":               "text/event-stream",
		"Mcp-Session-Id":       "s-1",
		"Mcp-Protocol-Version": "2025-11-25",
		"Mcp-Method":           "", // describes the POST body, not the GET
		"Mcp-Name":             "",
		"Content-Type":         "",
	} {
		if got := get.Header.Get(k); got != want {
			t.Errorf("GET header %s = %q, want %q", k, got, want)
		}
	}
}

// This mirrors the conformance suite's sse-retry scenario: the server primes the POST stream
// with an id and retry: 500, closes it gracefully 50 ms later, and expects a GET with
// Last-Event-ID no sooner than 450 ms after the close, on which it sends the response.
func TestResumeHonoursRetryLikeConformanceSuite(t *testing.T) {
	t.Parallel()
	var closedAt, getAt time.Time
	var mu sync.Mutex
	srv, rec := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Mcp-Session-Id", "session-1")
		switch r.Method {
		case http.MethodPost:
			startSSE(w)
			writeSSE(w, "id: event-1\nretry: 500\ndata: \n\n")
			time.Sleep(50 * time.Millisecond)
			mu.Lock()
			closedAt = time.Now()
			mu.Unlock()
		case http.MethodGet:
			mu.Lock()
			getAt = time.Now()
			mu.Unlock()
			startSSE(w)
			writeSSE(w, "id: event-2\nretry: 500\ndata: \n\n")
			writeSSE(w, "event: message\nid: event-3\ndata: "+result7+"\n\n")
		}
	})
	c := New(srv.URL, nil)
	r, err := c.Post(t.Context(), []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"test_reconnection","arguments":{}}}`), []byte("7"),
		http.Header{"Mcp-Session-Id": {"session-1"}, "Mcp-Protocol-Version": {"2025-11-25"}})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := drainReply(t, r)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	if diff := cmp.Diff([]string{result7}, msgs); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	mu.Lock()
	waited := getAt.Sub(closedAt)
	mu.Unlock()
	if waited < 450*time.Millisecond {
		t.Errorf("reconnected %v after the close; the retry field asked for 500ms (tolerance 50ms)", waited)
	}
	if reqs := rec.requests(); len(reqs) != 2 || reqs[1].Header.Get("Last-Event-Id") != "event-1" {
		t.Errorf("requests %+v: want a GET with Last-Event-ID event-1", reqs)
	}
}

func TestStreamEndWithoutResumption(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		stream  string
		header  http.Header
		id      string
		want    []string
		wantErr error
	}{
		{
			name:    "no event ids: nothing to resume from",
			stream:  "data: " + progress + "\n\n",
			header:  legacyHeader(),
			id:      "7",
			want:    []string{progress},
			wantErr: ErrStreamEnded,
		},
		{
			name:    "modern era: streams are not resumable",
			stream:  "id: e1\ndata: " + progress + "\n\n",
			header:  modernHeader("tools/call", "slow"),
			id:      "7",
			want:    []string{progress},
			wantErr: ErrStreamEnded,
		},
		{
			name:   "a notification's stream just ends",
			stream: "id: e1\ndata: " + progress + "\n\n",
			header: legacyHeader(),
			want:   []string{progress},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, rec := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
				startSSE(w)
				writeSSE(w, tc.stream)
			})
			var sl sleeps
			c := New(srv.URL, &Options{Sleep: sl.sleep})
			var id []byte
			if tc.id != "" {
				id = []byte(tc.id)
			}
			r, err := c.Post(t.Context(), []byte(`{}`), id, tc.header)
			if err != nil {
				t.Fatal(err)
			}
			msgs, err := drainReply(t, r)
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, msgs); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
			if n := len(rec.requests()); n != 1 {
				t.Errorf("%d requests, want 1 (no reconnection)", n)
			}
		})
	}
}

// Reconnections that bring nothing new are bounded; reconnections that make progress are
// not counted against the bound, as a server that polls by closing its stream needs.
func TestReconnectBudget(t *testing.T) {
	t.Parallel()
	t.Run("no progress", func(t *testing.T) {
		t.Parallel()
		srv, rec := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
			startSSE(w)
			if n == 1 {
				writeSSE(w, "id: e1\ndata: \n\n")
			}
		})
		var sl sleeps
		c := New(srv.URL, &Options{Sleep: sl.sleep, MaxReconnects: 3})
		r, err := c.Post(t.Context(), []byte(`{}`), []byte("7"), legacyHeader())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := drainReply(t, r); !errors.Is(err, ErrStreamEnded) {
			t.Errorf("err = %v, want ErrStreamEnded", err)
		}
		if n := len(rec.requests()); n != 1+3 {
			t.Errorf("%d requests, want the POST and 3 GETs", n)
		}
		if diff := cmp.Diff([]time.Duration{time.Second, time.Second, time.Second}, sl.got()); diff != "" {
			t.Errorf("delays without a retry field (-want +got):\n%s", diff)
		}
	})
	t.Run("progress on every reconnection", func(t *testing.T) {
		t.Parallel()
		srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
			startSSE(w)
			if n < 10 {
				writeSSE(w, fmt.Sprintf("id: e%d\nretry: 5\ndata: \n\n", n))
				return
			}
			writeSSE(w, "id: last\ndata: "+result7+"\n\n")
		})
		var sl sleeps
		c := New(srv.URL, &Options{Sleep: sl.sleep, MaxReconnects: 2})
		r, err := c.Post(t.Context(), []byte(`{}`), []byte("7"), legacyHeader())
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := drainReply(t, r)
		if err != nil || len(msgs) != 1 {
			t.Errorf("messages %q, err %v; want the result after 9 reconnections", msgs, err)
		}
	})
	t.Run("negative disables reconnection", func(t *testing.T) {
		t.Parallel()
		srv, rec := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
			startSSE(w)
			writeSSE(w, "id: e1\ndata: \n\n")
		})
		c := New(srv.URL, &Options{MaxReconnects: -1})
		r, err := c.Post(t.Context(), []byte(`{}`), []byte("7"), legacyHeader())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := drainReply(t, r); !errors.Is(err, ErrStreamEnded) {
			t.Errorf("err = %v, want ErrStreamEnded", err)
		}
		if n := len(rec.requests()); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})
	t.Run("a long retry is capped", func(t *testing.T) {
		t.Parallel()
		srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
			startSSE(w)
			if n == 1 {
				writeSSE(w, "id: e1\nretry: 86400000\ndata: \n\n")
				return
			}
			writeSSE(w, "data: "+result7+"\n\n")
		})
		var sl sleeps
		c := New(srv.URL, &Options{Sleep: sl.sleep, MaxRetryDelay: 3 * time.Second})
		r, err := c.Post(t.Context(), []byte(`{}`), []byte("7"), legacyHeader())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := drainReply(t, r); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]time.Duration{3 * time.Second}, sl.got()); diff != "" {
			t.Errorf("delays (-want +got):\n%s", diff)
		}
	})
}

func TestResumeRefused(t *testing.T) {
	t.Parallel()
	srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Method == http.MethodGet {
			http.Error(w, "session not found", http.StatusNotFound)
			return
		}
		startSSE(w)
		writeSSE(w, "id: e1\ndata: \n\n")
	})
	var sl sleeps
	c := New(srv.URL, &Options{Sleep: sl.sleep})
	r, err := c.Post(t.Context(), []byte(`{}`), []byte("7"), legacyHeader())
	if err != nil {
		t.Fatal(err)
	}
	_, err = drainReply(t, r)
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusNotFound || se.Method != http.MethodGet {
		t.Errorf("err = %v, want the GET's 404 as a *StatusError", err)
	}
}

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
		"Accept-Encoding":      {"gzip"},
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

func TestGetStream(t *testing.T) {
	t.Parallel()
	const a, b = `{"jsonrpc":"2.0","method":"a"}`, `{"jsonrpc":"2.0","method":"b"}`
	t.Run("resumed with Last-Event-ID", func(t *testing.T) {
		t.Parallel()
		srv, rec := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
			startSSE(w)
			switch n {
			case 1:
				writeSSE(w, "id: e1\ndata: "+a+"\n\n")
			case 2:
				writeSSE(w, "id: e2\ndata: "+b+"\n\n")
				<-r.Context().Done()
			}
		})
		var sl sleeps
		c := New(srv.URL, &Options{Sleep: sl.sleep})
		r, err := c.Get(t.Context(), http.Header{"Mcp-Session-Id": {"s-1"}, "Last-Event-ID": {"e0"}})
		if err != nil {
			t.Fatal(err)
		}
		var msgs []string
		for range 2 {
			m, err := r.Next(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, string(m))
		}
		r.Close()
		if diff := cmp.Diff([]string{a, b}, msgs); diff != "" {
			t.Errorf("messages (-want +got):\n%s", diff)
		}
		var ids []string
		for _, req := range rec.requests() {
			ids = append(ids, req.Method+" "+req.Header.Get("Last-Event-ID")+" "+req.Header.Get("Accept"))
		}
		if diff := cmp.Diff([]string{"GET e0 text/event-stream", "GET e1 text/event-stream"}, ids); diff != "" {
			t.Errorf("requests (-want +got):\n%s", diff)
		}
	})
	t.Run("ends without event ids", func(t *testing.T) {
		t.Parallel()
		srv, rec := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
			startSSE(w)
			writeSSE(w, "data: "+a+"\n\n")
		})
		r, err := New(srv.URL, nil).Get(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := drainReply(t, r)
		if err != nil || len(msgs) != 1 {
			t.Errorf("messages %q, err %v; want one and io.EOF", msgs, err)
		}
		if n := len(rec.requests()); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})
	t.Run("a JSON answer is not a stream", func(t *testing.T) {
		t.Parallel()
		srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, a)
		})
		if _, err := New(srv.URL, nil).Get(t.Context(), nil); !errors.Is(err, ErrBadResponse) {
			t.Errorf("Get = %v, want ErrBadResponse", err)
		}
	})
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
