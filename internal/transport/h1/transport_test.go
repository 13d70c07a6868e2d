package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// counted is a test server that counts the connections it accepted and closed.
type counted struct {
	*httptest.Server
	opened, closed atomic.Int32
	closedCh       chan struct{}
}

func serve(t *testing.T, h http.HandlerFunc) *counted {
	t.Helper()
	s := &counted{closedCh: make(chan struct{}, 100)}
	s.Server = httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			s.opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			s.closed.Add(1)
			s.closedCh <- struct{}{}
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func post(t *testing.T, tr http.RoundTripper, ctx context.Context, u, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Body, req.ContentLength = Body([]byte(body)), int64(len(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read the body: %v", err)
	}
	resp.Body.Close()
	return resp, string(b)
}

func TestKeepsOneConnectionForSequentialRequests(t *testing.T) {
	t.Parallel()
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Query().Get("sse") != "" {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			fmt.Fprintf(w, "data: %s\n\n", b)
			w.(http.Flusher).Flush() // a chunked body, ended by its last chunk
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})
	tr := New(nil)
	for i := range 6 {
		u := s.URL + "/mcp"
		want := fmt.Sprintf(`{"n":%d}`, i)
		if i%2 == 1 {
			u += "?sse=1"
			want = "data: " + want + "\n\n"
		}
		resp, got := post(t, tr, t.Context(), u, fmt.Sprintf(`{"n":%d}`, i))
		if resp.StatusCode != 200 || got != want {
			t.Fatalf("request %d: %d %q, want 200 %q", i, resp.StatusCode, got, want)
		}
	}
	if n := s.opened.Load(); n != 1 {
		t.Errorf("%d connections for six requests in a row, want 1", n)
	}
}

func TestSendsWhatNetHTTPSends(t *testing.T) {
	t.Parallel()
	got := make(chan *http.Request, 1)
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		got <- r
	})
	tr := New(nil)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL+"/mcp/x?k=v%20w", nil)
	req.Body, req.ContentLength = Body([]byte(`{"a":1}`)), 7
	req.Header["Mcp-Session-Id"] = []string{"s-1"}
	req.Header["X-Two"] = []string{"a", " b "}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r := <-got
	b, _ := io.ReadAll(r.Body)
	if r.Method != "POST" || r.URL.RequestURI() != "/mcp/x?k=v%20w" || r.Host != strings.TrimPrefix(s.URL, "http://") ||
		string(b) != `{"a":1}` || r.ContentLength != 7 || r.Header.Get("Mcp-Session-Id") != "s-1" ||
		strings.Join(r.Header["X-Two"], ",") != "a,b" || r.Proto != "HTTP/1.1" {
		t.Errorf("upstream received %s %s host %q body %q length %d headers %v", r.Method, r.URL.RequestURI(), r.Host, b, r.ContentLength, r.Header)
	}
}

func TestRefusesAHeaderThatWouldSplitTheRequest(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	s := serve(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	tr := New(nil)
	for _, h := range []http.Header{
		{"X-A": {"ok\r\nX-Injected: 1"}},
		{"X-A": {"ok\nGET / HTTP/1.1"}},
		{"X-A\r\nX-B": {"v"}},
		{"X A": {"v"}},
		{"": {"v"}},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL, nil)
		req.Header = h
		if _, err := tr.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "invalid header field") {
			t.Errorf("header %q: err %v, want an invalid header field", h, err)
		}
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL, nil)
	req.Host = "a\r\nX-Injected: 1"
	if _, err := tr.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "invalid Host") {
		t.Errorf("Host with CRLF: err %v", err)
	}
	if hits.Load() != 0 || s.opened.Load() != 0 {
		t.Errorf("the upstream saw %d requests on %d connections; want none", hits.Load(), s.opened.Load())
	}
}

// TestDialsAgainWhenTheUpstreamClosedTheIdleConnection: an upstream that closes each
// connection after its response (without saying so) costs a new connection, not an error.
func TestDialsAgainWhenTheUpstreamClosedTheIdleConnection(t *testing.T) {
	t.Parallel()
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		answerOKAndClose(w, r)
	})
	tr := New(nil)
	for i := range 3 {
		resp, got := post(t, tr, t.Context(), s.URL, "{}")
		if resp.StatusCode != 200 || got != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, got)
		}
		<-s.closedCh // the upstream has closed it: the next request must notice
	}
	if n := s.opened.Load(); n != 3 {
		t.Errorf("%d connections, want 3", n)
	}
}

// answerOKAndClose answers "ok" and closes the connection without saying it will.
func answerOKAndClose(w http.ResponseWriter, r *http.Request) {
	io.ReadAll(r.Body)
	c, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	buf.Flush()
	c.Close()
}

// hidden hides a connection's descriptor, so that a closed idle connection is only found
// out by using it.
type hidden struct{ net.Conn }

// TestSendsAgainOnlyWhatCannotHaveReachedTheUpstream: on a kept-alive connection the upstream
// closed, an idempotent request that got no byte back is sent again; a POST is not, since the
// upstream may have acted on it.
func TestSendsAgainOnlyWhatCannotHaveReachedTheUpstream(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		answerOKAndClose(w, r)
	})
	d := &net.Dialer{}
	tr := New(&Options{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		return hidden{c}, err
	}})
	get := func() (*http.Response, error) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL, nil)
		return tr.RoundTrip(req)
	}
	resp, err := get()
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	<-s.closedCh
	resp, err = get()
	if err != nil {
		t.Fatalf("a GET on a connection the upstream closed: %v", err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	<-s.closedCh
	if hits.Load() != 2 || s.opened.Load() != 2 {
		t.Fatalf("%d requests on %d connections, want 2 on 2", hits.Load(), s.opened.Load())
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL, nil)
	req.Body, req.ContentLength = Body([]byte("{}")), 2
	if _, err := tr.RoundTrip(req); err == nil {
		t.Fatal("a POST on a connection the upstream closed was sent again")
	}
	if hits.Load() != 2 {
		t.Errorf("the upstream received %d requests, want 2", hits.Load())
	}
}

func TestCancelEndsTheBodyAndItsConnection(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: 1\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	tr := New(nil)
	ctx, cancel := context.WithCancelCause(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "data: 1\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	why := errors.New("the caller left")
	cancel(why)
	if _, err := io.ReadAll(br); !errors.Is(err, why) {
		t.Errorf("read after cancel: %v, want the cancel's cause", err)
	}
	<-s.closedCh // the connection is closed, not kept
	post(t, tr, t.Context(), s.URL, "{}")
	if n := s.opened.Load(); n != 2 {
		t.Errorf("%d connections, want a new one after the cancel", n)
	}
}

func TestCancelBeforeTheResponse(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{})
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) // so that the server watches the connection
		close(arrived)
		<-r.Context().Done()
	})
	tr := New(nil)
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-arrived; cancel() }()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, nil)
	req.Body, req.ContentLength = Body([]byte("{}")), 2
	if _, err := tr.RoundTrip(req); !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
}

func TestClosingTheBodyEarlyClosesTheConnection(t *testing.T) {
	t.Parallel()
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 64<<10)))
	})
	tr := New(nil)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Read(make([]byte, 10))
	resp.Body.Close()
	if _, err := resp.Body.Read(make([]byte, 10)); !errors.Is(err, http.ErrBodyReadAfterClose) {
		t.Errorf("read after close: %v", err)
	}
	<-s.closedCh
	post(t, tr, t.Context(), s.URL, "{}")
	if n := s.opened.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestEmptyBodyKeepsTheConnectionWithoutARead(t *testing.T) {
	t.Parallel()
	s := serve(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) })
	tr := New(nil)
	for range 3 {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL, nil)
		req.Body, req.ContentLength = Body([]byte("{}")), 2
		resp, err := tr.RoundTrip(req)
		if err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%v %v", resp, err)
		}
		resp.Body.Close()
	}
	if n := s.opened.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// rawServer answers every connection with the bytes reply returns for its request.
func rawServer(t *testing.T, reply func(req string) string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				io.ReadAll(req.Body)
				io.WriteString(c, reply(req.Method))
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

func TestInformationalResponsesAreSkipped(t *testing.T) {
	t.Parallel()
	u := rawServer(t, func(string) string {
		return "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	})
	resp, got := post(t, New(nil), t.Context(), u, "{}")
	if resp.StatusCode != 200 || got != "ok" {
		t.Errorf("%d %q, want 200 ok", resp.StatusCode, got)
	}
}

func TestRefusesAnUnaskedProtocolSwitch(t *testing.T) {
	t.Parallel()
	u := rawServer(t, func(string) string { return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n" })
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if _, err := New(nil).RoundTrip(req); err == nil || !strings.Contains(err.Error(), "switched protocols") {
		t.Errorf("err %v", err)
	}
}

func TestBoundsTheResponseHeader(t *testing.T) {
	t.Parallel()
	u := rawServer(t, func(string) string {
		return "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 70<<10) + "\r\nContent-Length: 0\r\n\r\n"
	})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	_, err := New(&Options{MaxHeaderBytes: 64 << 10}).RoundTrip(req)
	if err == nil || !strings.Contains(err.Error(), "over 65536 bytes") {
		t.Errorf("err %v, want the header bound", err)
	}
}

func TestBodyUntilCloseIsNotKept(t *testing.T) {
	t.Parallel()
	u := rawServer(t, func(string) string { return "HTTP/1.1 200 OK\r\n\r\nall of it" })
	tr := New(nil)
	for range 2 {
		resp, got := post(t, tr, t.Context(), u, "{}")
		if got != "all of it" || !resp.Close {
			t.Fatalf("%q close %v", got, resp.Close)
		}
	}
}

type recorder struct {
	n atomic.Int32
	http.RoundTripper
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.n.Add(1)
	return r.RoundTripper.RoundTrip(req)
}

func TestWhatItDoesNotCarryGoesToTheFallback(t *testing.T) {
	t.Parallel()
	s := serve(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(tlsSrv.Close)
	fb := &recorder{RoundTripper: tlsSrv.Client().Transport}
	proxied := func(r *http.Request) (*url.URL, error) {
		if r.URL.Query().Get("proxy") != "" {
			return url.Parse(s.URL) // the test server answers for the proxy too
		}
		return nil, nil
	}
	tr := New(&Options{Fallback: fb, Proxy: proxied})
	cases := []struct {
		name string
		req  func() *http.Request
	}{
		{"https", func() *http.Request { r, _ := http.NewRequest("GET", tlsSrv.URL, nil); return r }},
		{"proxy", func() *http.Request { r, _ := http.NewRequest("GET", s.URL+"/?proxy=1", nil); return r }},
		{"a body of unknown bytes", func() *http.Request {
			r, _ := http.NewRequest("POST", s.URL, strings.NewReader("{}"))
			return r
		}},
		{"an upgrade", func() *http.Request {
			r, _ := http.NewRequest("GET", s.URL, nil)
			r.Header.Set("Upgrade", "websocket")
			r.Header.Set("Connection", "Upgrade")
			return r
		}},
	}
	for i, c := range cases {
		resp, err := tr.RoundTrip(c.req())
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		resp.Body.Close()
		if int(fb.n.Load()) != i+1 {
			t.Errorf("%s did not go to the fallback", c.name)
		}
	}
	resp, _ := post(t, tr, t.Context(), s.URL, "{}")
	if resp.StatusCode != 200 || int(fb.n.Load()) != len(cases) {
		t.Errorf("a plaintext POST went to the fallback")
	}
}

func TestKeepsAtMostMaxIdleConns(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	wg.Add(3)
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		wg.Done()
		wg.Wait() // three requests at once, on three connections
		io.WriteString(w, "ok")
	})
	tr := New(&Options{MaxIdleConns: 1})
	var done sync.WaitGroup
	for range 3 {
		done.Add(1)
		go func() {
			defer done.Done()
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL, nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.ReadAll(resp.Body)
			resp.Body.Close()
		}()
	}
	done.Wait()
	<-s.closedCh
	<-s.closedCh // two of the three are closed; one is kept
	tr.mu.Lock()
	kept := 0
	for _, l := range tr.idle {
		kept += len(l)
	}
	tr.mu.Unlock()
	if kept != 1 || s.opened.Load() != 3 {
		t.Errorf("%d kept of %d opened, want 1 of 3", kept, s.opened.Load())
	}
	tr.CloseIdleConnections()
	<-s.closedCh
}

func TestClosesAConnectionIdleTooLong(t *testing.T) {
	t.Parallel()
	s := serve(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	tr := New(&Options{IdleTimeout: time.Millisecond})
	post(t, tr, t.Context(), s.URL, "{}")
	<-s.closedCh // the idle timer closed it
	post(t, tr, t.Context(), s.URL, "{}")
	if n := s.opened.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestWritesALargeBodyWhole(t *testing.T) {
	t.Parallel()
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body) // whole, or net/http's server would close the connection
		w.Write(b)
	})
	body := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB: head and body in one writev
	tr := New(nil)
	for range 2 {
		if resp, got := post(t, tr, t.Context(), s.URL, body); resp.StatusCode != 200 || got != body {
			t.Fatalf("%d, %d bytes echoed of %d", resp.StatusCode, len(got), len(body))
		}
	}
	if n := s.opened.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}
