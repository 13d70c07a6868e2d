package upstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcp"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
)

// wire is a bidirectional message connection to one upstream: a child's stdin/stdout, a legacy
// Streamable HTTP session, or an HTTP+SSE connection.
type wire interface {
	// send writes one JSON-RPC message. kind and id describe it, so that an HTTP wire can
	// tell which reply stream belongs to which request.
	send(ctx context.Context, msg []byte, kind jsonrpc.Kind, id jsonrpc.ID) error
	// recv returns the next message from the upstream.
	recv(ctx context.Context) (inbound, error)
	done() <-chan struct{}
	close() error
}

// inbound is one message from the upstream. related is the id of the request on whose reply
// stream it arrived (HTTP only); zero when the transport cannot tell.
type inbound struct {
	data    []byte
	related jsonrpc.ID
	ended   bool // the reply stream of request related ended without its response
	// streamed: it arrived on an SSE stream, not as a whole application/json reply.
	streamed bool
}

// maxServerRequests bounds server-to-client requests relayed at once per upstream.
const maxServerRequests = 64

// mux shares one wire among any number of callers: it gives every outgoing request a fresh id,
// remaps progress tokens, routes replies, notifications and server-to-client requests back to
// the caller they belong to, and turns a caller's departure into notifications/cancelled.
type mux struct {
	up   *Upstream
	w    wire
	era  mcpguard.Era
	inf  Info
	next atomic.Int64
	seq  atomic.Int64
	sem  chan struct{}

	mu       sync.Mutex
	calls    map[jsonrpc.ID]*pending
	progress map[string]*pending
	srvReqs  map[jsonrpc.ID]context.CancelFunc

	dead     chan struct{}
	deadOnce sync.Once
	deadErr  error
	stop     context.CancelFunc
	ctx      context.Context // the mux's lifetime, for server-to-client requests
}

type pending struct {
	id        jsonrpc.ID
	seq       int64
	sink      Sink
	ch        chan *Response
	origToken []byte
	tokenKey  string
}

// newMux starts routing w's messages. ctx is the upstream's lifetime: when it ends, so does the mux.
func newMux(ctx context.Context, up *Upstream, w wire) *mux {
	ctx, cancel := context.WithCancel(ctx)
	m := &mux{
		up:       up,
		w:        w,
		sem:      make(chan struct{}, maxServerRequests),
		calls:    make(map[jsonrpc.ID]*pending),
		progress: make(map[string]*pending),
		srvReqs:  make(map[jsonrpc.ID]context.CancelFunc),
		dead:     make(chan struct{}),
		stop:     cancel,
		ctx:      ctx,
	}
	if d, ok := w.(direct); ok {
		d.setDeliver(m.handle)
	}
	go m.readLoop(ctx)
	go func() {
		select {
		case <-w.done():
			m.kill(fmt.Errorf("%w: connection to %q closed", mcpguard.ErrUpstreamDown, up.name))
		case <-m.dead:
		}
	}()
	return m
}

func (m *mux) info() Info            { return m.inf }
func (m *mux) done() <-chan struct{} { return m.dead }
func (m *mux) close() error {
	m.kill(m.closedErr())
	return m.w.close()
}

// closedErr is what pending calls get when the gateway closes the connection.
func (m *mux) closedErr() error {
	return fmt.Errorf("%w: upstream %q closed", mcpguard.ErrUpstreamDown, m.up.name)
}

// kill fails every pending call and marks the connection dead.
func (m *mux) kill(err error) {
	m.deadOnce.Do(func() {
		m.mu.Lock()
		m.deadErr = err // every pending call sees m.dead close and returns it
		m.calls = make(map[jsonrpc.ID]*pending)
		m.progress = make(map[string]*pending)
		for _, cancel := range m.srvReqs {
			cancel()
		}
		m.mu.Unlock()
		close(m.dead)
		m.stop()
	})
}

func (m *mux) readLoop(ctx context.Context) {
	for {
		in, err := m.w.recv(ctx)
		if err != nil {
			if ctx.Err() != nil {
				// The upstream is shutting down, not failing.
				err = m.closedErr()
			} else {
				err = fmt.Errorf("%w: reading from %q: %v", mcpguard.ErrUpstreamDown, m.up.name, err)
			}
			m.kill(err)
			return
		}
		m.handle(in)
	}
}

// handle routes one message from the upstream: a response to its caller, a request or
// notification to the caller it belongs to. It runs on the read loop, or on a caller's
// goroutine for a message a direct wire read from the request's own response.
func (m *mux) handle(in inbound) {
	ctx := m.ctx
	if in.ended {
		if p := m.owner(in.related); p != nil && p.id == in.related {
			if se, ok := p.sink.(StreamEnder); ok {
				se.StreamEnded()
			}
		}
		return
	}
	msg, err := jsonrpc.Parse(in.data, m.up.lim)
	if err != nil {
		m.up.logger.Warn("upstream sent an invalid message", "upstream", m.up.name, "err", err)
		return
	}
	switch msg.Kind {
	case jsonrpc.KindResponse, jsonrpc.KindError:
		m.deliver(msg, in.streamed)
	case jsonrpc.KindRequest:
		m.serverRequest(ctx, msg, in.related)
	case jsonrpc.KindNotification:
		m.notification(ctx, msg, in.related)
	}
}

func (m *mux) deliver(msg *jsonrpc.Message, streamed bool) {
	m.mu.Lock()
	p := m.calls[msg.ID]
	if p != nil {
		m.forget(p)
	}
	m.mu.Unlock()
	if p == nil {
		m.up.logger.Debug("upstream answered an unknown or abandoned request", "upstream", m.up.name, "id", msg.ID.String())
		return
	}
	p.ch <- &Response{Result: msg.Result, Error: msg.Error, Streamed: streamed}
}

// forget removes a call's bookkeeping; m.mu is held.
func (m *mux) forget(p *pending) {
	delete(m.calls, p.id)
	if p.tokenKey != "" {
		delete(m.progress, p.tokenKey)
	}
}

// owner picks the call an unattributed message belongs to: the call whose reply stream carried
// it, else the oldest call in flight (a stdio server gives no other clue), else none.
func (m *mux) owner(related jsonrpc.ID) *pending {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !related.IsZero() {
		if p := m.calls[related]; p != nil {
			return p
		}
	}
	var oldest *pending
	for _, p := range m.calls {
		if p.sink != nil && (oldest == nil || p.seq < oldest.seq) {
			oldest = p
		}
	}
	return oldest
}

func (m *mux) serverRequest(ctx context.Context, msg *jsonrpc.Message, related jsonrpc.ID) {
	if msg.Method == mcp.MethodPing {
		m.reply(ctx, msg.ID, []byte(`{}`), nil)
		return
	}
	select {
	case m.sem <- struct{}{}:
	default:
		m.reply(ctx, msg.ID, nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "too many outstanding server-to-client requests"))
		return
	}
	p := m.owner(related)
	rctx, cancel := context.WithCancel(ctx)
	m.mu.Lock()
	m.srvReqs[msg.ID] = cancel
	m.mu.Unlock()
	go func() {
		defer func() { <-m.sem }()
		defer cancel()
		var res []byte
		var rpcErr *jsonrpc.Error
		if p != nil {
			res, rpcErr = p.sink.Request(rctx, msg.Method, msg.Params)
		} else if m.up.hub != nil {
			res, rpcErr = m.up.hub.UpstreamRequest(rctx, m.up, msg.Method, msg.Params)
		} else {
			rpcErr = jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "no client can answer "+msg.Method)
		}
		m.mu.Lock()
		_, live := m.srvReqs[msg.ID]
		delete(m.srvReqs, msg.ID)
		m.mu.Unlock()
		if live && rctx.Err() == nil {
			m.reply(ctx, msg.ID, res, rpcErr)
		}
	}()
}

func (m *mux) reply(ctx context.Context, id jsonrpc.ID, result []byte, rpcErr *jsonrpc.Error) {
	var b []byte
	kind := jsonrpc.KindResponse
	if rpcErr != nil {
		b = jsonrpc.AppendError(nil, id, rpcErr)
		kind = jsonrpc.KindError
	} else {
		if result == nil {
			result = []byte(`{}`)
		}
		b = jsonrpc.AppendResult(nil, id, result)
	}
	if err := m.w.send(ctx, b, kind, id); err != nil {
		m.up.logger.Warn("answering upstream request failed", "upstream", m.up.name, "err", err)
	}
}

func (m *mux) notification(ctx context.Context, msg *jsonrpc.Message, related jsonrpc.ID) {
	switch msg.Method {
	case mcp.NotificationProgress:
		tok, ok := jsonrpc.Lookup(msg.Params, "progressToken")
		if !ok {
			return
		}
		m.mu.Lock()
		p := m.progress[string(tok)]
		m.mu.Unlock()
		if p == nil || p.sink == nil {
			return
		}
		p.sink.Notify(msg.Method, jsonrpc.SetMember(msg.Params, "progressToken", p.origToken))
		return
	case mcp.NotificationCancelled:
		raw, ok := jsonrpc.Lookup(msg.Params, "requestId")
		if !ok {
			return
		}
		id, err := idFromRaw(raw)
		if err != nil {
			return
		}
		m.mu.Lock()
		cancel := m.srvReqs[id]
		delete(m.srvReqs, id)
		m.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		return
	case mcp.NotificationMessage:
		if p := m.owner(related); p != nil {
			p.sink.Notify(msg.Method, msg.Params)
			return
		}
	}
	if m.up.hub != nil {
		m.up.hub.UpstreamNotify(m.up, msg.Method, msg.Params)
	}
}

// idFromRaw turns a raw JSON id into an ID by parsing a tiny response envelope around it.
func idFromRaw(raw []byte) (jsonrpc.ID, error) {
	b := make([]byte, 0, len(raw)+40)
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = append(b, raw...)
	b = append(b, `,"result":{}}`...)
	msg, err := jsonrpc.Parse(b, jsonrpc.Limits{})
	if err != nil {
		return jsonrpc.ID{}, err
	}
	return msg.ID, nil
}

func (m *mux) call(ctx context.Context, req *Request, sink Sink) (*Response, error) {
	n := m.next.Add(1)
	id := jsonrpc.IntID(n)
	p := &pending{id: id, seq: m.seq.Add(1), sink: sink, ch: make(chan *Response, 1)}
	params := req.Params
	if meta, ok := jsonrpc.Lookup(params, "_meta"); ok {
		if tok, ok := jsonrpc.Lookup(meta, "progressToken"); ok {
			p.origToken = append([]byte(nil), tok...)
			mine := jsonrpc.Quote("mcpguard-" + strconv.FormatInt(n, 10))
			p.tokenKey = string(mine)
			params = jsonrpc.SetMember(params, "_meta", jsonrpc.SetMember(meta, "progressToken", mine))
		}
	}
	m.mu.Lock()
	if m.deadErr != nil {
		err := m.deadErr
		m.mu.Unlock()
		return nil, err
	}
	m.calls[id] = p
	if p.tokenKey != "" {
		m.progress[p.tokenKey] = p
	}
	m.mu.Unlock()

	if err := m.w.send(ctx, jsonrpc.AppendRequest(nil, id, req.Method, params), jsonrpc.KindRequest, id); err != nil {
		m.mu.Lock()
		m.forget(p)
		m.mu.Unlock()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("%w: sending to %q: %v", mcpguard.ErrUpstreamDown, m.up.name, err)
	}
	select {
	case r := <-p.ch:
		return r, nil
	case <-m.dead:
		m.mu.Lock()
		err := m.deadErr
		m.mu.Unlock()
		return nil, err
	case <-ctx.Done():
		m.mu.Lock()
		_, live := m.calls[id]
		m.forget(p)
		m.mu.Unlock()
		if live {
			m.cancelUpstream(id, ctx)
		}
		return nil, context.Cause(ctx)
	}
}

// cancelUpstream tells the upstream that the caller gave up on request id.
func (m *mux) cancelUpstream(id jsonrpc.ID, ctx context.Context) {
	reason := "the client cancelled the request"
	if errors.Is(context.Cause(ctx), mcpguard.ErrUpstreamTimeout) {
		reason = "the gateway's deadline for the request passed"
	}
	params := []byte(`{"requestId":` + string(id.Raw()) + `,"reason":` + string(jsonrpc.Quote(reason)) + `}`)
	// The caller's context has ended; the notification keeps its values, not its end.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	msg := jsonrpc.AppendNotification(nil, mcp.NotificationCancelled, params)
	if err := m.w.send(sctx, msg, jsonrpc.KindNotification, jsonrpc.ID{}); err != nil {
		m.up.logger.Debug("sending cancellation failed", "upstream", m.up.name, "err", err)
	}
}

func (m *mux) notify(ctx context.Context, method string, params []byte) error {
	select {
	case <-m.dead:
		return m.deadErr
	default:
	}
	return m.w.send(ctx, jsonrpc.AppendNotification(nil, method, params), jsonrpc.KindNotification, jsonrpc.ID{})
}
