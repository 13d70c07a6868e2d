// Package ssehttp is the client of the deprecated HTTP+SSE transport (protocol 2024-11-05),
// for upstream servers that speak nothing newer.
package ssehttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpguard/mcpguard/internal/sse"
	"github.com/mcpguard/mcpguard/internal/transport/streamhttp"
)

// Defaults for [Options].
const (
	DefaultMaxMessageBytes = streamhttp.DefaultMaxMessageBytes
	DefaultMaxErrorBody    = streamhttp.DefaultMaxErrorBody
	DefaultEndpointTimeout = 10 * time.Second
)

// StatusError is a non-2xx answer from the upstream; it is the same type as the Streamable
// HTTP client's, so callers handle both transports alike.
type StatusError = streamhttp.StatusError

var (
	// ErrMessageTooLarge is returned (wrapped) for a message over Options.MaxMessageBytes.
	// It is the Streamable HTTP client's sentinel.
	ErrMessageTooLarge = streamhttp.ErrMessageTooLarge
	// ErrNoEndpoint is returned (wrapped) by Dial when the stream does not start with an
	// endpoint event in time.
	ErrNoEndpoint = errors.New("ssehttp: no endpoint event")
	// ErrCrossOrigin is returned (wrapped) by Dial when the endpoint event names another
	// origin than the stream's: posting there would send the session's messages, and the
	// upstream's credentials, to a third party.
	ErrCrossOrigin = errors.New("ssehttp: endpoint is not on the stream's origin")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("ssehttp: connection closed")
)

// Options configure [Dial]. The zero value is ready to use.
type Options struct {
	// HTTPClient sends the requests. Nil means a dedicated client with connection pooling,
	// dial and TLS handshake timeouts, no overall timeout and no redirects.
	HTTPClient *http.Client
	// Header holds static headers sent with every request: this upstream's own
	// credentials and the like. Nothing else is ever sent.
	Header http.Header
	// MaxMessageBytes bounds one message, sent or received. Default DefaultMaxMessageBytes.
	MaxMessageBytes int
	// MaxErrorBody bounds the body kept in a *StatusError. Default DefaultMaxErrorBody.
	MaxErrorBody int
	// EndpointTimeout bounds the wait for the endpoint event. Default DefaultEndpointTimeout.
	EndpointTimeout time.Duration
	// Logger receives debug records about ignored events. Nil discards.
	Logger *slog.Logger
}

// Conn is a session over the HTTP+SSE transport: messages from the server arrive on one
// event stream, and messages to it are posted to the endpoint the stream announced. Send
// and Recv may be called concurrently with each other and with Close.
type Conn struct {
	hc         *http.Client
	header     http.Header
	maxMsg     int
	maxErrBody int
	log        *slog.Logger
	safeURL    string // the stream's URL without query, for errors and logs
	endpoint   string // where messages are posted

	cancel context.CancelFunc // ends the event stream
	body   io.ReadCloser

	msgs     chan []byte   // from the reader goroutine, unbuffered
	readDone chan struct{} // closed when the reader goroutine has exited
	readErr  error         // why it exited; set before readDone is closed

	closing   chan struct{}
	closeOnce sync.Once
	closed    atomic.Bool
}

// Dial opens the event stream at rawURL and waits, within ctx and Options.EndpointTimeout,
// for its endpoint event. The endpoint is resolved against rawURL and must be on the same
// origin (scheme, host and port) and carry no user info. The stream then lives until
// Close, whatever becomes of ctx.
func Dial(ctx context.Context, rawURL string, opts *Options) (*Conn, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	c := &Conn{
		hc:         o.HTTPClient,
		header:     o.Header.Clone(),
		maxMsg:     positiveOr(o.MaxMessageBytes, DefaultMaxMessageBytes),
		maxErrBody: positiveOr(o.MaxErrorBody, DefaultMaxErrorBody),
		log:        o.Logger,
		safeURL:    redactURL(rawURL),
		msgs:       make(chan []byte),
		readDone:   make(chan struct{}),
		closing:    make(chan struct{}),
	}
	if c.hc == nil {
		c.hc = NewHTTPClient()
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	timeout := o.EndpointTimeout
	if timeout <= 0 {
		timeout = DefaultEndpointTimeout
	}
	base, err := url.Parse(rawURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("ssehttp: %s is not an http(s) URL", c.safeURL)
	}

	// The stream outlives ctx; until the endpoint arrives, ctx and the timeout both end it.
	streamCtx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	c.cancel = func() { cancel(ErrClosed) }
	stopCtx := context.AfterFunc(ctx, func() { cancel(context.Cause(ctx)) })
	timer := time.AfterFunc(timeout, func() {
		cancel(fmt.Errorf("%w within %v", ErrNoEndpoint, timeout))
	})
	fail := func(err error) (*Conn, error) {
		stopCtx()
		timer.Stop()
		cancel(err)
		if c.body != nil {
			c.body.Close()
		}
		return nil, err
	}

	req, err := http.NewRequestWithContext(streamCtx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fail(fmt.Errorf("ssehttp: GET %s: %w", c.safeURL, err))
	}
	c.setHeaders(req)
	req.Header["Accept"] = []string{"text/event-stream"}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fail(fmt.Errorf("ssehttp: GET %s: %w", c.safeURL, causeOf(streamCtx, err)))
	}
	c.body = resp.Body
	if resp.StatusCode/100 != 2 {
		return fail(c.statusError(resp))
	}
	if ct := resp.Header.Get("Content-Type"); mediaType(ct) != "text/event-stream" {
		return fail(fmt.Errorf("ssehttp: GET %s answered with content type %.64q, not an event stream", c.safeURL, ct))
	}
	rd := sse.NewReader(resp.Body, c.maxMsg)
	ev, err := rd.Next()
	if err != nil {
		if errors.Is(err, sse.ErrEventTooLarge) {
			err = fmt.Errorf("%w: %w", ErrMessageTooLarge, err)
		}
		return fail(fmt.Errorf("ssehttp: %s: waiting for the endpoint event: %w", c.safeURL, causeOf(streamCtx, err)))
	}
	if ev.Type != "endpoint" {
		return fail(fmt.Errorf("%w: the first event of %s is of type %.64q", ErrNoEndpoint, c.safeURL, ev.Type))
	}
	ep, err := resolveEndpoint(base, string(ev.Data))
	if err != nil {
		return fail(fmt.Errorf("ssehttp: %s: %w", c.safeURL, err))
	}
	if !stopCtx() || !timer.Stop() {
		return fail(fmt.Errorf("ssehttp: %s: %w", c.safeURL, context.Cause(streamCtx)))
	}
	c.endpoint = ep
	go c.read(rd)
	return c, nil
}

// resolveEndpoint resolves the endpoint event's data against the stream's URL and checks
// that it stays on the stream's origin.
func resolveEndpoint(base *url.URL, data string) (string, error) {
	ref, err := url.Parse(strings.TrimSpace(data))
	if err != nil || strings.TrimSpace(data) == "" {
		return "", fmt.Errorf("%w: the endpoint event holds no valid URI", ErrNoEndpoint)
	}
	ep := base.ResolveReference(ref)
	ep.Fragment, ep.RawFragment = "", ""
	if ep.User != nil {
		return "", fmt.Errorf("%w: the endpoint carries user info", ErrCrossOrigin)
	}
	if !sameOrigin(base, ep) {
		return "", fmt.Errorf("%w: %s://%s", ErrCrossOrigin, ep.Scheme, ep.Host)
	}
	return ep.String(), nil
}

// sameOrigin compares scheme, host and port as RFC 6454 does, with default ports made
// explicit.
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) &&
		strings.EqualFold(a.Hostname(), b.Hostname()) &&
		portOf(a) == portOf(b)
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "http":
		return "80"
	case "https":
		return "443"
	}
	return ""
}

// read delivers the message events of the stream until it ends or Close.
func (c *Conn) read(rd *sse.Reader) {
	defer close(c.readDone)
	for {
		ev, err := rd.Next()
		if err != nil {
			switch {
			case c.closed.Load():
				c.readErr = ErrClosed
			case errors.Is(err, io.EOF):
				c.readErr = io.EOF
			case errors.Is(err, sse.ErrEventTooLarge):
				c.readErr = fmt.Errorf("%w: %w", ErrMessageTooLarge, err)
			default:
				c.readErr = fmt.Errorf("ssehttp: read the event stream of %s: %w", c.safeURL, err)
			}
			c.cancel()
			c.body.Close()
			return
		}
		if ev.Type != "message" && ev.Type != "" {
			c.log.Debug("ignoring SSE event", slog.String("url", c.safeURL), slog.String("type", ev.Type))
			continue
		}
		if len(ev.Data) == 0 {
			continue
		}
		select {
		case c.msgs <- ev.Data:
		case <-c.closing:
		}
	}
}

// Recv returns the next message from the server: the data of the next message event. It
// returns io.EOF when the server has ended the stream, which ends the session.
func (c *Conn) Recv(ctx context.Context) ([]byte, error) {
	select {
	case m := <-c.msgs:
		return m, nil
	case <-c.readDone:
		return nil, c.readErr
	case <-c.closing:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// Send posts one message to the session's endpoint and checks that the server accepted it
// (any 2xx; the answer itself arrives on the stream).
func (c *Conn) Send(ctx context.Context, msg []byte) error {
	if c.closed.Load() {
		return ErrClosed
	}
	select {
	case <-c.readDone:
		if c.readErr == io.EOF {
			return fmt.Errorf("ssehttp: %s: the session's event stream has ended", c.safeURL)
		}
		return fmt.Errorf("ssehttp: %s: the session's event stream has failed: %w", c.safeURL, c.readErr)
	default:
	}
	if len(msg) > c.maxMsg {
		return fmt.Errorf("%w: message of %d bytes, limit %d", ErrMessageTooLarge, len(msg), c.maxMsg)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(msg))
	if err != nil {
		return fmt.Errorf("ssehttp: POST to the endpoint of %s: %w", c.safeURL, err)
	}
	c.setHeaders(req)
	req.Header["Content-Type"] = []string{"application/json"}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("ssehttp: POST to the endpoint of %s: %w", c.safeURL, causeOf(ctx, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return c.statusError(resp)
	}
	drain(resp.Body)
	return nil
}

// Close ends the session's stream. It is idempotent.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		close(c.closing)
		c.cancel()
		c.body.Close()
		<-c.readDone
	})
	return nil
}

func (c *Conn) setHeaders(req *http.Request) {
	for k, vs := range c.header {
		req.Header[k] = vs
	}
	if _, ok := req.Header["User-Agent"]; !ok {
		req.Header["User-Agent"] = []string{streamhttp.UserAgent}
	}
}

func (c *Conn) statusError(resp *http.Response) error {
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

// causeOf unwraps the *url.Error of a failed request, whose text holds the full URL (the
// endpoint's query holds the session id), and prefers the reason ctx ended.
func causeOf(ctx context.Context, err error) error {
	if ue := (*url.Error)(nil); errors.As(err, &ue) {
		err = ue.Err
	}
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	return err
}

func drain(body io.ReadCloser) {
	io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	body.Close()
}

func mediaType(contentType string) string {
	if i := strings.IndexByte(contentType, ';'); i >= 0 {
		contentType = contentType[:i]
	}
	return strings.ToLower(strings.TrimSpace(contentType))
}

func positiveOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(invalid URL)"
	}
	return (&url.URL{Scheme: p.Scheme, Host: p.Host, Path: p.Path}).String()
}

// NewHTTPClient returns the client used when Options.HTTPClient is nil: connection pooling,
// dial and TLS handshake timeouts, no overall timeout and no redirects. A caller that needs to
// wrap its Transport (to attach an upstream's credential) starts from it.
func NewHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.MaxIdleConnsPerHost = 16
	return &http.Client{
		Transport: t,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
