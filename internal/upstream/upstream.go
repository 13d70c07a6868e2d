// Package upstream connects the gateway to the MCP servers behind it: it starts or dials each
// one, detects its protocol era, multiplexes many callers onto one connection with request-id
// and progress-token remapping, and restarts what crashes.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
)

// Sink receives what an upstream sends while serving one call: related notifications
// (progress, log messages) and server-to-client requests (sampling, elicitation, roots).
type Sink interface {
	// Notify delivers a notification related to the call. params aliases no buffer of the upstream.
	Notify(method string, params []byte)
	// Request relays a server-to-client request to the caller and returns its answer.
	Request(ctx context.Context, method string, params []byte) (result []byte, rpcErr *jsonrpc.Error)
}

// StreamEnder is implemented by a Sink that wants to know when a legacy upstream ended a
// call's reply stream without answering and without a way to resume it (server-side SSE
// polling with no event ids): the response may still come on another stream, or never.
type StreamEnder interface{ StreamEnded() }

// Hub receives what an upstream sends outside any call: list-changed and resource-updated
// notifications, log messages, and server-to-client requests it cannot attribute to a call.
type Hub interface {
	UpstreamNotify(up *Upstream, method string, params []byte)
	UpstreamRequest(ctx context.Context, up *Upstream, method string, params []byte) (result []byte, rpcErr *jsonrpc.Error)
}

// Request is one call to an upstream. Params must already be shaped for the upstream's era
// (see Upstream.Era): per-request _meta for a modern upstream, none of it for a legacy one.
type Request struct {
	ID     jsonrpc.ID // the caller's id; a modern HTTP upstream sees it unchanged, others see a fresh one
	Method string
	Params []byte
}

// Response is an upstream's answer to a Request: exactly one of Result and Error is set.
type Response struct {
	Result []byte
	Error  *jsonrpc.Error
	// HTTPStatus is the status a modern HTTP upstream sent with an error reply, so that the
	// gateway can answer a modern client the same way (400 for -32020..-32022, 404 for -32601).
	HTTPStatus int
	// Streamed reports that a Streamable HTTP upstream answered on an SSE stream
	// (text/event-stream) rather than with one application/json body, so that the gateway can
	// answer its client the same way. Always false for stdio and HTTP+SSE upstreams.
	Streamed bool
}

// Info is what the gateway learned about an upstream when it connected.
type Info struct {
	Era             mcpguard.Era
	ProtocolVersion string
	Capabilities    []byte // raw ServerCapabilities object
	ServerInfo      []byte // raw Implementation object, nil if none
	Instructions    string
}

// backend is one live connection to an upstream in one era.
type backend interface {
	info() Info
	call(ctx context.Context, req *Request, sink Sink) (*Response, error)
	notify(ctx context.Context, method string, params []byte) error
	// done is closed when the connection is lost for good (process exited, session gone).
	done() <-chan struct{}
	close() error
}

// dialer makes a fresh backend: it starts or dials the server and runs the handshake. ctx is the
// upstream's lifetime, without a deadline: what the backend keeps running ends with it.
type dialer func(ctx context.Context, up *Upstream) (backend, error)

// Upstream is one configured MCP server. It keeps one backend alive, replacing it after a
// crash with exponential backoff, and serves any number of concurrent callers through it.
type Upstream struct {
	name    string
	prefix  string
	timeout time.Duration
	dial    dialer
	hub     Hub
	logger  *slog.Logger
	minBack time.Duration
	maxBack time.Duration
	lim     jsonrpc.Limits
	maxMsg  int
	brk     *breaker  // nil: no circuit breaker
	bulk    *bulkhead // nil: no cap on calls in flight

	mu      sync.Mutex
	cur     backend
	ready   chan struct{} // closed when cur is set; replaced when cur is lost
	lastErr error
	closed  bool
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

// Name is the upstream's configured name.
func (u *Upstream) Name() string { return u.name }

// Prefix is the namespace prefix of the upstream's tools and prompts ("" for none).
func (u *Upstream) Prefix() string { return u.prefix }

// Timeout is the deadline of one call to this upstream.
func (u *Upstream) Timeout() time.Duration { return u.timeout }

// Start begins connecting in the background and returns at once; calls wait for the
// connection up to their own deadline.
func (u *Upstream) Start(ctx context.Context) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	u.mu.Lock()
	u.stop = cancel
	u.mu.Unlock()
	u.wg.Add(1)
	go u.supervise(ctx)
}

func (u *Upstream) supervise(ctx context.Context) {
	defer u.wg.Done()
	delay := u.minBack
	for ctx.Err() == nil {
		started := time.Now()
		b, err := u.dial(ctx, u)
		if err != nil {
			u.mu.Lock()
			u.lastErr = err
			u.mu.Unlock()
			u.logger.Warn("upstream connect failed", "upstream", u.name, "err", err, "retry_in", delay)
		} else {
			inf := b.info()
			u.logger.Info("upstream connected", "upstream", u.name, "era", inf.Era.String(), "protocol", inf.ProtocolVersion)
			u.mu.Lock()
			u.cur, u.lastErr = b, nil
			close(u.ready)
			u.mu.Unlock()
			select {
			case <-b.done():
				u.logger.Warn("upstream connection lost", "upstream", u.name)
			case <-ctx.Done():
			}
			u.mu.Lock()
			u.cur = nil
			u.ready = make(chan struct{})
			u.lastErr = fmt.Errorf("%w: connection to %q lost", mcpguard.ErrUpstreamDown, u.name)
			u.mu.Unlock()
			_ = b.close()
			if time.Since(started) > u.maxBack {
				delay = u.minBack
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay *= 2
		if delay > u.maxBack {
			delay = u.maxBack
		}
	}
}

// backend waits for a live connection until ctx ends.
func (u *Upstream) backend(ctx context.Context) (backend, error) {
	for {
		b, ready, closed := u.live()
		if closed {
			return nil, fmt.Errorf("%w: upstream %q is shut down", mcpguard.ErrUpstreamDown, u.name)
		}
		if b != nil {
			return b, nil
		}
		select {
		case <-ready:
		case <-ctx.Done():
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, ctx.Err()
			}
			// The reason of the latest failed attempt, which may have ended while we waited.
			u.mu.Lock()
			last := u.lastErr
			u.mu.Unlock()
			if last == nil {
				return nil, fmt.Errorf("%w: upstream %q is not connected yet", mcpguard.ErrUpstreamDown, u.name)
			}
			if errors.Is(last, mcpguard.ErrUpstreamDown) {
				return nil, last
			}
			return nil, fmt.Errorf("%w: upstream %q is not connected: %w", mcpguard.ErrUpstreamDown, u.name, last)
		}
	}
}

// live returns the connection (nil while there is none), the channel closed when the next one
// is up, and whether the upstream is shut down.
func (u *Upstream) live() (b backend, ready <-chan struct{}, closed bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.cur, u.ready, u.closed
}

// Info reports the live connection's era and capabilities, waiting for it until ctx ends or the
// upstream's timeout passes, whichever comes first.
// While the circuit breaker is open it fails at once with an *Unavailable; a wait for the
// connection that fails counts as a failed call.
func (u *Upstream) Info(ctx context.Context) (Info, error) {
	var gen uint64
	if u.brk != nil {
		if err := u.brk.check(); err != nil {
			return Info{}, err
		}
		gen = u.brk.generation.Load()
	}
	if b, _, closed := u.live(); b != nil && !closed {
		return b.info(), nil // connected: nothing to wait for, no deadline to set
	}
	ctx, cancel := context.WithTimeout(ctx, u.timeout)
	defer cancel()
	b, err := u.backend(ctx)
	if err != nil {
		if u.brk != nil && BreakerState(u.brk.state.Load()) == BreakerClosed {
			u.brk.done(gen, err)
		}
		return Info{}, err
	}
	return b.info(), nil
}

// Call sends one request and waits for its response. Errors are mcpguard.ErrUpstreamDown,
// ErrUpstreamTimeout or ErrUpstreamBadReply (wrapped), *Unavailable when the circuit breaker
// or the bulkhead refused the call without sending it, or the context's error when the caller
// went away.
func (u *Upstream) Call(ctx context.Context, req *Request, sink Sink) (*Response, error) {
	if u.bulk != nil {
		if err := u.bulk.enter(ctx); err != nil {
			return nil, err
		}
		defer u.bulk.release()
	}
	if u.brk == nil {
		return u.call(ctx, req, sink)
	}
	gen, err := u.brk.admit()
	if err != nil {
		return nil, err
	}
	resp, err := u.call(ctx, req, sink)
	u.brk.done(gen, err)
	return resp, err
}

// Breaker reports the circuit breaker's state; ok is false when the upstream has none.
func (u *Upstream) Breaker() (state BreakerState, ok bool) {
	if u.brk == nil {
		return BreakerClosed, false
	}
	return BreakerState(u.brk.state.Load()), true
}

func (u *Upstream) call(ctx context.Context, req *Request, sink Sink) (*Response, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, u.timeout, mcpguard.ErrUpstreamTimeout)
	defer cancel()
	b, err := u.backend(ctx)
	if err != nil {
		if errors.Is(context.Cause(ctx), mcpguard.ErrUpstreamTimeout) {
			return nil, fmt.Errorf("upstream %q: %w", u.name, err)
		}
		return nil, err
	}
	resp, err := b.call(ctx, req, sink)
	if err != nil && errors.Is(context.Cause(ctx), mcpguard.ErrUpstreamTimeout) {
		return nil, fmt.Errorf("upstream %q did not answer %s within %s: %w", u.name, req.Method, u.timeout, mcpguard.ErrUpstreamTimeout)
	}
	return resp, err
}

// Notify sends a notification to the upstream (best effort: no answer comes back).
func (u *Upstream) Notify(ctx context.Context, method string, params []byte) error {
	b, err := u.backend(ctx)
	if err != nil {
		return err
	}
	return b.notify(ctx, method, params)
}

// Up reports whether the upstream is connected now: false while it has not connected yet, is
// reconnecting after a crash or a lost connection, or is shut down.
func (u *Upstream) Up() bool {
	b, _, closed := u.live()
	return b != nil && !closed
}

// Close shuts the connection down (for a stdio upstream: stdin, SIGTERM, SIGKILL).
func (u *Upstream) Close() error {
	u.mu.Lock()
	u.closed = true
	stop := u.stop
	b := u.cur
	u.mu.Unlock()
	if stop != nil {
		stop()
	}
	var err error
	if b != nil {
		err = b.close()
	}
	u.wg.Wait()
	return err
}
