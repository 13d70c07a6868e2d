package upstream

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcp"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/transport/ssehttp"
	"github.com/mcpguard/mcpguard/internal/transport/stdio"
	"github.com/mcpguard/mcpguard/internal/transport/streamhttp"
)

// stdioWire is a child process's stdin and stdout.
type stdioWire struct{ c *stdio.Conn }

func (w stdioWire) send(ctx context.Context, msg []byte, _ jsonrpc.Kind, _ jsonrpc.ID) error {
	return w.c.Send(ctx, msg)
}
func (w stdioWire) recv(ctx context.Context) (inbound, error) {
	b, err := w.c.Recv(ctx)
	return inbound{data: b}, err
}
func (w stdioWire) done() <-chan struct{} { return w.c.Done() }
func (w stdioWire) close() error          { return w.c.Close() }

// sseWire is a deprecated HTTP+SSE (2024-11-05) connection.
type sseWire struct{ c *ssehttp.Conn }

func (w sseWire) send(ctx context.Context, msg []byte, _ jsonrpc.Kind, _ jsonrpc.ID) error {
	return w.c.Send(ctx, msg)
}
func (w sseWire) recv(ctx context.Context) (inbound, error) {
	b, err := w.c.Recv(ctx)
	return inbound{data: b}, err
}

// done never fires: a lost SSE stream surfaces as a recv error, which ends the mux.
func (w sseWire) done() <-chan struct{} { return nil }
func (w sseWire) close() error          { return w.c.Close() }

// inboundQueue bounds the messages read from reply streams but not yet routed.
const inboundQueue = 256

// legacyHTTPWire is a legacy (2025-03-26..2025-11-25) Streamable HTTP session: every message is a
// POST carrying the session id; replies and related messages come on each request's response
// stream, and unrelated ones on the standalone GET stream.
type legacyHTTPWire struct {
	c      *streamhttp.Client
	logger *slog.Logger
	in     chan inbound
	ctx    context.Context
	cancel context.CancelFunc
	dead   chan struct{}
	once   sync.Once

	// deliver, set by the mux before the first send, routes a message of a request's reply on
	// the caller's goroutine (see direct).
	deliver func(inbound)

	mu      sync.Mutex
	session string
	version string
	hdr     http.Header // the headers of session and version, built once; nil: to build
}

// direct is a wire that hands the messages of a request's own HTTP response to the mux on the
// goroutine that sent the request: no goroutine, queue or hand-off between goroutines is needed
// to route them.
type direct interface {
	setDeliver(func(inbound))
}

func (w *legacyHTTPWire) setDeliver(f func(inbound)) { w.deliver = f }

// newLegacyHTTPWire makes a session that lasts until it fails, is closed, or ctx, the upstream's
// lifetime, ends.
func newLegacyHTTPWire(ctx context.Context, c *streamhttp.Client, logger *slog.Logger) *legacyHTTPWire {
	ctx, cancel := context.WithCancel(ctx)
	return &legacyHTTPWire{c: c, logger: logger, in: make(chan inbound, inboundQueue), ctx: ctx, cancel: cancel, dead: make(chan struct{})}
}

func (w *legacyHTTPWire) setVersion(v string) {
	w.mu.Lock()
	w.version, w.hdr = v, nil
	w.mu.Unlock()
}

// header returns the session's headers. Every request shares the one map, built when the
// session or the version changes: it is read, never modified (streamhttp copies it).
func (w *legacyHTTPWire) header() http.Header {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.hdr == nil {
		h := make(http.Header, 2)
		if w.session != "" {
			h[http.CanonicalHeaderKey(mcp.HeaderSessionID)] = []string{w.session}
		}
		if w.version != "" {
			h[http.CanonicalHeaderKey(mcp.HeaderProtocolVersion)] = []string{w.version}
		}
		w.hdr = h
	}
	return w.hdr
}

func (w *legacyHTTPWire) send(ctx context.Context, msg []byte, kind jsonrpc.Kind, id jsonrpc.ID) error {
	var rid []byte
	if kind == jsonrpc.KindRequest {
		rid = id.Raw()
	}
	// A request's reply stream lives as long as the request: until the response arrives, the
	// caller gives up (the mux then sends notifications/cancelled), or the session ends. It is
	// read on this goroutine, so it is over when send returns.
	reply, err := w.c.PostUntil(ctx, w.ctx, msg, rid, w.header())
	if err != nil {
		var se *streamhttp.StatusError
		if errors.As(err, &se) && se.Status == http.StatusNotFound && w.hasSession() {
			w.fail()
			return errors.Join(mcpguard.ErrUpstreamDown, errors.New("the upstream ended our session"))
		}
		return err
	}
	if s := reply.Header.Get(mcp.HeaderSessionID); s != "" {
		w.mu.Lock()
		if w.session == "" {
			w.session, w.hdr = s, nil
		}
		w.mu.Unlock()
	}
	if kind != jsonrpc.KindRequest {
		_ = reply.Close()
		return nil
	}
	// The answer, whole or streamed, is read on the caller's goroutine and routed as it comes:
	// the reply ends with the request's own response (Next returns io.EOF after it), so the
	// caller waits for nothing it would not wait for anyway, and no goroutine or queue stands
	// between the upstream's answer and the caller.
	w.pump(ctx, reply, id, func(in inbound) bool { w.deliver(in); return true })
	return nil
}

func (w *legacyHTTPWire) hasSession() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.session != ""
}

// pump reads a reply's messages and hands each to route until the reply ends, ctx ends, or
// route returns false. A request's reply stream that ended without its response is reported
// as ended, so the caller's client can be let go too.
func (w *legacyHTTPWire) pump(ctx context.Context, reply *streamhttp.Reply, related jsonrpc.ID, route func(inbound) bool) {
	defer reply.Close()
	streamed := !reply.Whole()
	for {
		b, err := reply.Next(ctx)
		if err != nil {
			if !related.IsZero() && ctx.Err() == nil && errors.Is(err, streamhttp.ErrStreamEnded) {
				route(inbound{related: related, ended: true})
			}
			return
		}
		if !route(inbound{data: b, related: related, streamed: streamed}) {
			return
		}
	}
}

// enqueue hands a message to the mux's read loop, for the standalone stream's messages, which
// belong to no caller; it gives up when the session or ctx ends.
func (w *legacyHTTPWire) enqueue(ctx context.Context) func(inbound) bool {
	return func(in inbound) bool {
		select {
		case w.in <- in:
			return true
		case <-w.dead:
		case <-ctx.Done():
		}
		return false
	}
}

// startGet opens the standalone GET stream for server-initiated messages, reopening it when it
// ends; a server that answers 405 has none.
func (w *legacyHTTPWire) startGet() {
	go func() {
		delay := 250 * time.Millisecond
		for w.ctx.Err() == nil {
			reply, err := w.c.Get(w.ctx, w.header())
			if err != nil {
				var se *streamhttp.StatusError
				if errors.As(err, &se) && (se.Status == http.StatusMethodNotAllowed || se.Status == http.StatusNotFound) {
					return
				}
			} else {
				delay = 250 * time.Millisecond
				w.pump(w.ctx, reply, jsonrpc.ID{}, w.enqueue(w.ctx))
			}
			select {
			case <-w.ctx.Done():
				return
			case <-time.After(delay):
			}
			delay = min(delay*2, 30*time.Second)
		}
	}()
}

func (w *legacyHTTPWire) recv(ctx context.Context) (inbound, error) {
	select {
	case in := <-w.in:
		return in, nil
	case <-w.dead:
		return inbound{}, mcpguard.ErrClosed
	case <-ctx.Done():
		return inbound{}, ctx.Err()
	}
}

func (w *legacyHTTPWire) done() <-chan struct{} { return w.dead }

func (w *legacyHTTPWire) fail() {
	w.once.Do(func() {
		close(w.dead)
		w.cancel()
	})
}

func (w *legacyHTTPWire) close() error {
	h := w.header()
	w.fail()
	if h.Get(mcp.HeaderSessionID) == "" {
		return nil
	}
	// The session's context has just ended; the DELETE that ends it upstream gets its own deadline.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), 2*time.Second)
	defer cancel()
	return w.c.Delete(ctx, h)
}
