// Package h1 is a lean HTTP/1.1 client transport for plaintext upstreams. A request is
// written, and its response read, on the caller's goroutine over kept-alive connections; what
// it does not handle goes to a fallback http.RoundTripper unchanged.
//
// net/http's Transport hands each request to two goroutines of its connection (one writes,
// one reads) and back, and clones and re-validates the request on the way; for a gateway that
// forwards small JSON-RPC messages to a nearby upstream, that hand-off is a large share of a
// call's CPU. This transport keeps what matters of it: the response is parsed by net/http's
// own http.ReadResponse, connections are reused only when their response was read to its end
// and they are still open, a request is retried on a fresh connection only when none of it
// was written, the request's context cancels it at any point, and header fields are checked
// as net/http checks them.
package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults for [Options].
const (
	DefaultMaxIdleConns   = 64
	DefaultIdleTimeout    = 90 * time.Second
	DefaultMaxHeaderBytes = 1 << 20
)

// Options configure a [Transport].
type Options struct {
	// Dial opens a connection. Nil means a net.Dialer with a 10 s timeout.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Fallback carries every request this transport does not: any scheme but http, a request
	// a proxy applies to, a body of unknown bytes, a connection upgrade, trailers or a
	// transfer coding. Nil means http.DefaultTransport.
	Fallback http.RoundTripper
	// Proxy picks the proxy of a request, as http.Transport.Proxy does; a request it gives a
	// proxy (or an error) goes to Fallback. Nil means no proxy.
	Proxy func(*http.Request) (*url.URL, error)
	// MaxIdleConns bounds the idle connections kept per host. Default DefaultMaxIdleConns.
	MaxIdleConns int
	// IdleTimeout closes a connection idle that long. Default DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a response's status line and header. Default DefaultMaxHeaderBytes.
	MaxHeaderBytes int
}

// Transport is an http.RoundTripper; see the package documentation. It is safe for
// concurrent use.
type Transport struct {
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	fallback http.RoundTripper
	proxy    func(*http.Request) (*url.URL, error)
	maxIdle  int
	idleFor  time.Duration
	maxHead  int

	mu   sync.Mutex
	idle map[string][]*conn // by address; the most recently used last
}

// New returns a transport configured by opts; nil opts means the defaults.
func New(opts *Options) *Transport {
	var o Options
	if opts != nil {
		o = *opts
	}
	t := &Transport{dial: o.Dial, fallback: o.Fallback, proxy: o.Proxy, maxIdle: o.MaxIdleConns, idleFor: o.IdleTimeout, maxHead: o.MaxHeaderBytes, idle: map[string][]*conn{}}
	if t.dial == nil {
		t.dial = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	}
	if t.fallback == nil {
		t.fallback = http.DefaultTransport
	}
	if t.maxIdle <= 0 {
		t.maxIdle = DefaultMaxIdleConns
	}
	if t.idleFor <= 0 {
		t.idleFor = DefaultIdleTimeout
	}
	if t.maxHead <= 0 {
		t.maxHead = DefaultMaxHeaderBytes
	}
	return t
}

// Body returns a request body of b that the transport writes as it is, without copying it.
// Any other transport reads it as a bytes.Reader.
func Body(b []byte) io.ReadCloser {
	body := &bytesBody{b: b}
	body.Reset(b)
	return body
}

type bytesBody struct {
	bytes.Reader
	b []byte
}

func (*bytesBody) Close() error { return nil }

// RoundTrip sends req and returns its response; see http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, addr, ok := t.handles(req)
	if !ok {
		return t.fallback.RoundTrip(req)
	}
	ctx := req.Context()
	buf := heads.Get().(*[]byte)
	defer func() {
		if cap(*buf) <= maxKeptHead {
			heads.Put(buf)
		}
	}()
	head, err := appendHead((*buf)[:0], req, body)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	if len(body) <= smallBody {
		head = append(head, body...) // one buffer, one write
		body = nil
	}
	*buf = head
	for {
		if err := ctx.Err(); err != nil {
			closeBody(req)
			return nil, context.Cause(ctx)
		}
		c, err := t.conn(ctx, addr)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		resp, retry, err := t.exchange(ctx, c, req, head, body)
		if err == nil {
			return resp, nil
		}
		if !retry {
			closeBody(req)
			return nil, err
		}
		// A kept-alive connection the upstream had closed: nothing of the request reached it.
	}
}

// A request's head, and its body when small, are written from one pooled buffer.
const (
	smallBody   = 16 << 10
	maxKeptHead = 64 << 10
)

var heads = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// handles reports whether the transport carries req itself, with its body's bytes and the
// address to dial.
func (t *Transport) handles(req *http.Request) (body []byte, addr string, ok bool) {
	u := req.URL
	if u == nil || u.Scheme != "http" || u.Host == "" || req.Method == http.MethodConnect || req.Close ||
		len(req.TransferEncoding) > 0 || len(req.Trailer) > 0 {
		return nil, "", false
	}
	for _, k := range [...]string{"Connection", "Upgrade", "Transfer-Encoding", "Trailer", "Expect"} {
		if _, ok := req.Header[k]; ok {
			return nil, "", false
		}
	}
	switch b := req.Body.(type) {
	case nil:
	case *bytesBody:
		if req.ContentLength != int64(len(b.b)) || b.Len() != len(b.b) {
			return nil, "", false
		}
		body = b.b
	default:
		if req.Body != http.NoBody {
			return nil, "", false
		}
	}
	if t.proxy != nil {
		if p, err := t.proxy(req); p != nil || err != nil {
			return nil, "", false
		}
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return body, net.JoinHostPort(u.Hostname(), port), true
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// appendHead appends req's request line and header to b, as net/http writes them, checking
// every field as it does.
func appendHead(b []byte, req *http.Request, body []byte) ([]byte, error) {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if !validValue(host) || host == "" {
		return nil, fmt.Errorf("h1: invalid Host %q", host)
	}
	uri := req.URL.RequestURI()
	if !validValue(uri) {
		return nil, fmt.Errorf("h1: invalid request target %q", uri)
	}
	if !validName(req.Method) {
		return nil, fmt.Errorf("h1: invalid method %q", req.Method)
	}
	b = append(b, req.Method...)
	b = append(b, ' ')
	b = append(b, uri...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\n"...)
	for k, vs := range req.Header {
		switch k {
		case "Host", "Content-Length":
			continue // written from the request's own fields, as net/http does
		}
		if !validName(k) {
			return nil, fmt.Errorf("h1: invalid header field name %q", k)
		}
		for _, v := range vs {
			if !validValue(v) {
				return nil, fmt.Errorf("h1: invalid header field value for %q", k)
			}
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, trimOWS(v)...)
			b = append(b, "\r\n"...)
		}
	}
	if body != nil || methodHasBody(req.Method) {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...), nil
}

// methodHasBody reports whether a request of method carries Content-Length even when empty.
func methodHasBody(method string) bool {
	return method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch
}

// validName reports whether s is an HTTP token (RFC 9110 5.1).
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// validValue reports whether s may be a field value: no control byte but horizontal tab
// (RFC 9110 5.5), so no CR or LF that would end the field and start another.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// errClosedIdle is a kept-alive connection the upstream closed before this request.
var errClosedIdle = errors.New("h1: the upstream closed the kept-alive connection")

// exchange writes the request on c and reads its response. retry says that none of the
// request reached a reused connection, so it may be sent again on another.
func (t *Transport) exchange(ctx context.Context, c *conn, req *http.Request, head, body []byte) (resp *http.Response, retry bool, err error) {
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, c.stop)
	}
	fail := func(err error) (*http.Response, bool, error) {
		cancelled := stop != nil && !stop()
		c.close()
		if cancelled {
			return nil, false, context.Cause(ctx)
		}
		return nil, false, err
	}
	n, err := c.write(head, body)
	if err != nil {
		if c.reused && n == 0 {
			fail(err)
			return nil, ctx.Err() == nil, errClosedIdle
		}
		return fail(fmt.Errorf("h1: write the request: %w", err))
	}
	c.lim.n = int64(t.maxHead)
	c.lim.read = 0
	for {
		resp, err = http.ReadResponse(c.br, req)
		if err != nil {
			if c.lim.n <= 0 {
				return fail(fmt.Errorf("h1: the response header is over %d bytes", t.maxHead))
			}
			if c.reused && c.lim.read == 0 && idempotent(req.Method) {
				fail(err)
				return nil, ctx.Err() == nil, errClosedIdle
			}
			return fail(fmt.Errorf("h1: read the response: %w", err))
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		resp.Body.Close() // a 1xx has no body; the final response follows
	}
	c.lim.n = -1
	if resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Body.Close()
		return fail(errors.New("h1: the upstream switched protocols, which no request asked for"))
	}
	resp.Body = &respBody{rc: resp.Body, c: c, t: t, ctx: ctx, stop: stop, keep: !resp.Close}
	return resp, false, nil
}

// idempotent reports whether a request of method may be sent again when its connection
// closed before any byte of a response, as net/http does.
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodDelete, http.MethodPut:
		return true
	}
	return false
}

// respBody is a response's body: read to its end, it gives its connection back for the next
// request; closed before, it closes it.
type respBody struct {
	rc   io.ReadCloser
	c    *conn
	t    *Transport
	ctx  context.Context
	stop func() bool
	keep bool
	done atomic.Bool
}

func (b *respBody) Read(p []byte) (int, error) {
	if b.done.Load() {
		return 0, http.ErrBodyReadAfterClose
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.finish(b.keep)
	case err != nil:
		if b.finish(false) {
			return n, context.Cause(b.ctx)
		}
	}
	return n, err
}

// Close ends the body; a connection whose body was not read to its end is closed.
func (b *respBody) Close() error {
	b.finish(b.keep && b.rc == http.NoBody)
	return nil
}

// finish ends the body once: its connection goes back to the pool when keep holds and the
// request's context did not end, else it is closed. It reports whether the context ended.
func (b *respBody) finish(keep bool) (cancelled bool) {
	if !b.done.CompareAndSwap(false, true) {
		return b.ctx.Err() != nil
	}
	cancelled = b.stop != nil && !b.stop()
	if keep && !cancelled {
		b.t.put(b.c)
	} else {
		b.c.close()
	}
	return cancelled
}

// conn is one connection to an upstream, with its read buffer.
type conn struct {
	nc     net.Conn
	addr   string
	lim    limitReader
	br     *bufio.Reader
	raw    syscall.RawConn // nil when the connection has no descriptor to look at
	peek   func(fd uintptr) bool
	stop   func() // abort as a func value, made once: a request's context calls it when it ends
	alive  bool
	reused bool
	timer  *time.Timer // closes the connection once idle for too long
}

// limitReader counts what is read of the connection, and bounds it while n is not negative.
type limitReader struct {
	r    io.Reader
	n    int64
	read int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n >= 0 {
		if l.n == 0 {
			return 0, errors.New("h1: response header too large")
		}
		if int64(len(p)) > l.n {
			p = p[:l.n]
		}
	}
	n, err := l.r.Read(p)
	l.read += int64(n)
	if l.n >= 0 {
		l.n -= int64(n)
	}
	return n, err
}

// write sends head and body (nil when head holds it) in one system call; n is how much was
// written.
func (c *conn) write(head, body []byte) (int64, error) {
	if len(body) == 0 {
		n, err := c.nc.Write(head)
		return int64(n), err
	}
	bufs := net.Buffers{head, body}
	return bufs.WriteTo(c.nc)
}

// abort makes the connection's pending and later reads and writes fail at once.
func (c *conn) abort() { c.nc.SetDeadline(aLongTimeAgo) }

var aLongTimeAgo = time.Unix(1, 0)

func (c *conn) close() { c.nc.Close() }

// conn returns an idle connection to addr that is still open, or dials a new one.
func (t *Transport) conn(ctx context.Context, addr string) (*conn, error) {
	for {
		t.mu.Lock()
		list := t.idle[addr]
		if len(list) == 0 {
			t.mu.Unlock()
			break
		}
		c := list[len(list)-1]
		list[len(list)-1] = nil
		t.idle[addr] = list[:len(list)-1]
		t.mu.Unlock()
		if !c.timer.Stop() || !c.open() {
			c.close()
			continue
		}
		c.reused = true
		return c, nil
	}
	nc, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		if cerr := context.Cause(ctx); cerr != nil {
			err = cerr
		}
		return nil, fmt.Errorf("h1: dial %s: %w", addr, err)
	}
	c := &conn{nc: nc, addr: addr}
	c.stop = c.abort
	if sc, ok := nc.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	c.lim = limitReader{r: nc, n: -1}
	c.br = bufio.NewReaderSize(&c.lim, 4<<10)
	return c, nil
}

// put keeps c for the next request to its address, or closes it when enough are kept.
func (t *Transport) put(c *conn) {
	if c.br.Buffered() > 0 {
		c.close() // bytes nobody asked for: the connection is out of step
		return
	}
	t.mu.Lock()
	list := t.idle[c.addr]
	if len(list) >= t.maxIdle {
		t.mu.Unlock()
		c.close()
		return
	}
	t.idle[c.addr] = append(list, c)
	if c.timer == nil {
		c.timer = time.AfterFunc(t.idleFor, func() { t.expire(c) })
	} else {
		c.timer.Reset(t.idleFor)
	}
	t.mu.Unlock()
}

// expire closes c if it is still idle.
func (t *Transport) expire(c *conn) {
	t.mu.Lock()
	list := t.idle[c.addr]
	for i, ic := range list {
		if ic == c {
			copy(list[i:], list[i+1:])
			list[len(list)-1] = nil
			t.idle[c.addr] = list[:len(list)-1]
			t.mu.Unlock()
			c.close()
			return
		}
	}
	t.mu.Unlock()
}

// CloseIdleConnections closes every idle connection, and the fallback's; http.Client's
// CloseIdleConnections reaches it.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string][]*conn{}
	t.mu.Unlock()
	for _, list := range idle {
		for _, c := range list {
			c.timer.Stop()
			c.close()
		}
	}
	if c, ok := t.fallback.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
