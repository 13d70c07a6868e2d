// Package streamhttp is the MCP Streamable HTTP client the gateway uses to reach upstream
// servers of either protocol era, sending only the credentials configured for each upstream.
package streamhttp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mcpguard/mcpguard/internal/mcp"
	"github.com/mcpguard/mcpguard/internal/transport/h1"
)

// Defaults for [Options].
const (
	DefaultMaxMessageBytes = 16 << 20
	DefaultMaxErrorBody    = 64 << 10
	DefaultMaxReconnects   = 5
	DefaultRetryDelay      = time.Second      // reconnection delay when the server sent no retry field
	DefaultMaxRetryDelay   = 30 * time.Second // longest reconnection delay honoured
)

// UserAgent is sent when the static headers name none.
const UserAgent = "mcpguard"

// Header values shared by every request; net/http does not modify them.
var (
	acceptPost      = []string{"application/json, text/event-stream"}
	acceptSSE       = []string{"text/event-stream"}
	contentTypeJSON = []string{"application/json"}
	userAgent       = []string{UserAgent}
)

// Options configure a [Client]. The zero value is ready to use.
type Options struct {
	// HTTPClient sends the requests. Nil means a dedicated client with connection pooling,
	// dial and TLS handshake timeouts and no overall timeout (streams are long-lived; bound
	// each call with its context). Redirects are never followed, whatever the client's
	// CheckRedirect: a 3xx comes back as a *StatusError, so an upstream cannot send the
	// gateway, and its credentials, elsewhere. A client without a cookie jar or a timeout is
	// used through its Transport directly, which costs less per request.
	HTTPClient *http.Client
	// Header holds static headers sent with every request: this upstream's own
	// credentials and the like. Nothing else from a caller is ever sent.
	Header http.Header
	// MaxMessageBytes bounds one JSON message, in a JSON body or one SSE event, sent or
	// received. Default DefaultMaxMessageBytes.
	MaxMessageBytes int
	// MaxErrorBody bounds the body kept in a *StatusError. Default DefaultMaxErrorBody.
	MaxErrorBody int
	// Logger receives debug records about stream resumption. Nil discards.
	Logger *slog.Logger
	// MaxReconnects bounds the reconnections of an interrupted legacy-era SSE stream that
	// bring no new event. Default DefaultMaxReconnects; negative disables reconnection.
	MaxReconnects int
	// MaxRetryDelay caps the reconnection delay a server asks for with the SSE retry field.
	// Default DefaultMaxRetryDelay.
	MaxRetryDelay time.Duration
	// Sleep waits before a reconnection; it returns early with an error when ctx ends.
	// Nil means a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Client speaks Streamable HTTP to one MCP endpoint. It is safe for concurrent use.
type Client struct {
	url           *url.URL // nil when the URL does not parse: every request then fails with the reason
	urlErr        error
	safeURL       string // url without query, fragment or user info, for errors and logs
	hc            *http.Client
	rt            http.RoundTripper // hc's Transport, when requests may skip http.Client
	header        http.Header
	maxMsg        int
	maxErrBody    int
	maxReconnects int
	maxRetry      time.Duration
	sleep         func(context.Context, time.Duration) error
	log           *slog.Logger
}

// New returns a client of the MCP endpoint at rawURL.
func New(rawURL string, opts *Options) *Client {
	var o Options
	if opts != nil {
		o = *opts
	}
	c := &Client{
		safeURL:       redactURL(rawURL),
		hc:            o.HTTPClient,
		header:        o.Header.Clone(),
		maxMsg:        positiveOr(o.MaxMessageBytes, DefaultMaxMessageBytes),
		maxErrBody:    positiveOr(o.MaxErrorBody, DefaultMaxErrorBody),
		maxReconnects: o.MaxReconnects,
		maxRetry:      o.MaxRetryDelay,
		sleep:         o.Sleep,
		log:           o.Logger,
	}
	if c.hc == nil {
		c.hc = NewHTTPClient()
	}
	if c.hc.Jar == nil && c.hc.Timeout == 0 {
		c.rt = c.hc.Transport
		if c.rt == nil {
			c.rt = http.DefaultTransport
		}
	}
	c.url, c.urlErr = parseEndpoint(rawURL)
	if c.header == nil {
		c.header = http.Header{}
	}
	if c.maxReconnects == 0 {
		c.maxReconnects = DefaultMaxReconnects
	}
	if c.maxRetry <= 0 {
		c.maxRetry = DefaultMaxRetryDelay
	}
	if c.sleep == nil {
		c.sleep = sleep
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

func positiveOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// NewHTTPClient returns the client used when Options.HTTPClient is nil: connection pooling,
// dial and TLS handshake timeouts, no overall timeout and no redirects. A caller that needs to
// wrap its Transport (to attach an upstream's credential) starts from it.
//
// Plaintext requests go over internal/transport/h1, which writes a request and reads its
// response on the caller's goroutine; HTTPS, and whatever a proxy applies to, go over
// net/http's Transport (HTTP/2 where the upstream offers it).
func NewHTTPClient() *http.Client { return NewHTTPClientTLS(nil) }

// NewHTTPClientTLS is NewHTTPClient with the TLS configuration of its HTTPS requests (nil: Go's
// defaults, the system's roots).
func NewHTTPClientTLS(tc *tls.Config) *http.Client {
	dial := (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tc
	t.DialContext = dial
	t.TLSHandshakeTimeout = 10 * time.Second
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{
		Transport: h1.New(&h1.Options{Dial: dial, Fallback: t, Proxy: t.Proxy, MaxIdleConns: t.MaxIdleConnsPerHost, IdleTimeout: t.IdleConnTimeout}),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// parseEndpoint parses an endpoint URL as http.NewRequest would.
func parseEndpoint(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("unsupported protocol scheme %q", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("no host in request URL")
	}
	u.Host = strings.TrimSuffix(u.Host, ":") // as NewRequest does: "host:" means the default port
	return u, nil
}

// redactURL drops what may carry a secret (user info, query, fragment) from u.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(invalid URL)"
	}
	return (&url.URL{Scheme: p.Scheme, Host: p.Host, Path: p.Path}).String()
}

// Post sends one JSON-RPC message: a request (requestID is its raw JSON id) or a
// notification or response (requestID nil). h holds the per-request protocol headers
// (Mcp-Session-Id, MCP-Protocol-Version, Mcp-Method, Mcp-Name, Mcp-Param-*, and trace
// context); any other header is refused with [ErrHeaderNotAllowed], so a caller's
// credentials cannot reach the upstream. Accept and Content-Type are set by Post.
//
// A 2xx answer yields a Reply: none of messages for 202 Accepted, the one message of an
// application/json body, or each message of a text/event-stream body in order until the
// response to requestID. A legacy-era stream that ends before that response, after the
// server gave event ids, is resumed with GET and Last-Event-ID after the server's retry
// delay (DefaultRetryDelay if none); modern-era streams are not resumable. Any other status
// returns a *StatusError.
//
// The Reply lives as long as ctx: ending ctx, like [Reply.Close], ends the stream, which a
// modern-era server takes as the cancellation of the request. The Reply keeps h, to resume
// with: h must not change while the Reply is read.
func (c *Client) Post(ctx context.Context, msg, requestID []byte, h http.Header) (*Reply, error) {
	return c.PostUntil(ctx, nil, msg, requestID, h)
}

// PostUntil is Post for a request that also ends when until ends (a session's context), with
// until's cause, as if ctx had ended. It costs less than a context derived from both.
func (c *Client) PostUntil(ctx, until context.Context, msg, requestID []byte, h http.Header) (*Reply, error) {
	if len(msg) > c.maxMsg {
		return nil, fmt.Errorf("%w: request of %d bytes, limit %d", ErrMessageTooLarge, len(msg), c.maxMsg)
	}
	var key string
	if requestID != nil {
		k, ok := idKey(requestID)
		if !ok {
			return nil, fmt.Errorf("streamhttp: request id %.64q is not a JSON string or integer", requestID)
		}
		key = k
	}
	if err := checkHeaders(h); err != nil {
		return nil, err
	}
	// The request lives as long as ctx until its response arrives (detach): what follows the
	// response is then read to the end of the body without ctx, so the connection can be kept.
	rctx, cancelCause := context.WithCancelCause(context.WithoutCancel(ctx))
	detach := context.AfterFunc(ctx, func() { cancelCause(context.Cause(ctx)) })
	if until != nil {
		unbind := context.AfterFunc(until, func() { cancelCause(context.Cause(until)) })
		stop := detach
		detach = func() bool {
			stopped := stop()
			return unbind() && stopped
		}
	}
	cancel := func() { detach(); cancelCause(nil) }
	req, err := c.newRequest(rctx, http.MethodPost, msg, h)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header["Accept"] = acceptPost
	req.Header["Content-Type"] = contentTypeJSON
	resp, err := c.do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	r := &Reply{
		Status:     resp.StatusCode,
		Header:     resp.Header,
		c:          c,
		ctx:        rctx,
		cancel:     cancel,
		detach:     detach,
		requestKey: key,
		hasRequest: requestID != nil,
	}
	if err := r.start(resp, false); err != nil {
		cancel()
		return nil, err
	}
	if r.stream == nil {
		cancel() // the whole answer is read: nothing is left to bound
	} else {
		r.resumable, r.sent = resumable(h), h
	}
	return r, nil
}

// Get opens the legacy-era standalone SSE stream of server-initiated messages. h holds
// protocol headers as for Post, and may hold Last-Event-ID to resume. The stream is resumed
// like Post's when it ends after event ids; otherwise its end is io.EOF. A server without
// the stream answers 405, returned as a *StatusError.
func (c *Client) Get(ctx context.Context, h http.Header) (*Reply, error) {
	if err := checkHeaders(h); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	req, err := c.newRequest(rctx, http.MethodGet, nil, h)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header["Accept"] = acceptSSE
	resp, err := c.do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	r := &Reply{
		Status:     resp.StatusCode,
		Header:     resp.Header,
		c:          c,
		ctx:        rctx,
		cancel:     cancel,
		standalone: true,
		resumable:  resumable(h),
		sent:       h,
		lastID:     h.Get(mcp.HeaderLastEventID),
	}
	if err := r.start(resp, true); err != nil {
		cancel()
		return nil, err
	}
	if r.stream == nil {
		cancel()
	}
	return r, nil
}

// Delete ends a legacy-era session. 2xx and 405 (the server does not let clients end
// sessions) return nil; any other status returns a *StatusError.
func (c *Client) Delete(ctx context.Context, h http.Header) error {
	if err := checkHeaders(h); err != nil {
		return err
	}
	req, err := c.newRequest(ctx, http.MethodDelete, nil, h)
	if err != nil {
		return err
	}
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusMethodNotAllowed {
		drain(resp.Body)
		return nil
	}
	return c.statusError(resp)
}

// newRequest builds a request carrying the static headers, then the protocol headers h.
func (c *Client) newRequest(ctx context.Context, method string, body []byte, h http.Header) (*http.Request, error) {
	if c.urlErr != nil {
		return nil, fmt.Errorf("streamhttp: %s %s: %w", method, c.safeURL, c.urlErr)
	}
	// As http.NewRequestWithContext makes it, without parsing the URL again for each request.
	u := *c.url
	req := (&http.Request{
		Method: method, URL: &u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: make(http.Header, len(c.header)+len(h)+3), Host: u.Host, Body: http.NoBody,
	}).WithContext(ctx)
	if body != nil {
		req.ContentLength = int64(len(body))
		req.Body = h1.Body(body)
		req.GetBody = func() (io.ReadCloser, error) { return h1.Body(body), nil }
	}
	for k, vs := range c.header {
		req.Header[k] = vs
	}
	for k, vs := range h {
		req.Header[http.CanonicalHeaderKey(k)] = vs
	}
	if _, ok := req.Header["User-Agent"]; !ok {
		req.Header["User-Agent"] = userAgent
	}
	return req, nil
}

// do sends req. Its errors name the endpoint without its query, which may hold a secret.
func (c *Client) do(req *http.Request) (*http.Response, error) {
	var resp *http.Response
	var err error
	if c.rt != nil {
		resp, err = c.rt.RoundTrip(req)
	} else {
		resp, err = c.hc.Do(req)
	}
	if err != nil {
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		if cause := context.Cause(req.Context()); cause != nil {
			err = cause
		}
		return nil, fmt.Errorf("streamhttp: %s %s: %w", req.Method, c.safeURL, err)
	}
	return resp, nil
}

// statusError reads a bounded part of a non-2xx response into a *StatusError.
func (c *Client) statusError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, int64(c.maxErrBody)))
	drain(resp.Body)
	return &StatusError{
		Method:      resp.Request.Method,
		Status:      resp.StatusCode,
		Header:      resp.Header,
		Body:        body,
		ContentType: resp.Header.Get("Content-Type"),
	}
}

// drain reads a little of what is left of a body, so that its connection can be reused when
// the rest is short, and closes it.
func drain(body io.ReadCloser) {
	io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	body.Close()
}

// mediaType returns the lower-case media type of a Content-Type value, without parameters.
func mediaType(contentType string) string {
	if i := strings.IndexByte(contentType, ';'); i >= 0 {
		contentType = contentType[:i]
	}
	contentType = strings.TrimSpace(contentType)
	for _, mt := range [...]string{"application/json", "text/event-stream"} {
		if strings.EqualFold(contentType, mt) {
			return mt
		}
	}
	return strings.ToLower(contentType)
}

// checkHeaders refuses every header of h that is not a protocol header.
func checkHeaders(h http.Header) error {
	for k := range h {
		switch ck := http.CanonicalHeaderKey(k); {
		case strings.HasPrefix(ck, "Mcp-"), ck == "Last-Event-Id", ck == "Traceparent", ck == "Tracestate":
		default:
			return fmt.Errorf("%w: %.64q", ErrHeaderNotAllowed, k)
		}
	}
	return nil
}

// resumable reports whether a stream opened with the protocol headers h may be resumed:
// only legacy-era streams may (an absent version header means 2025-03-26).
func resumable(h http.Header) bool {
	v := h.Get(mcp.HeaderProtocolVersion)
	return v == "" || mcp.IsLegacy(v)
}

// resumeHeader keeps the headers of h that a resuming GET carries: those that describe the
// session, not the message that was posted.
func resumeHeader(h http.Header) http.Header {
	out := http.Header{}
	for k, vs := range h {
		switch ck := http.CanonicalHeaderKey(k); ck {
		case "Mcp-Session-Id", "Mcp-Protocol-Version", "Traceparent", "Tracestate":
			out[ck] = vs
		}
	}
	return out
}
