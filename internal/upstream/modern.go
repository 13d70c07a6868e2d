package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcp"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/transport/streamhttp"
)

// maxBindingTools bounds the per-tool header bindings remembered for one upstream.
const maxBindingTools = 10000

// modernHTTP talks to a stateless (2026-07-28) Streamable HTTP upstream: every request is its
// own POST carrying the caller's _meta, with the standard and x-mcp-header headers mirrored
// from the body.
type modernHTTP struct {
	up   *Upstream
	c    *streamhttp.Client
	inf  Info
	next atomic.Int64

	bindings *mcp.BindingCache // tool name → x-mcp-header bindings, from tools/list

	// The last tools/list result screenTools read (a copy), and what it made of it (nil: the
	// result as it was): a list sent again byte for byte is not read again, its bindings being
	// learnt already.
	screenMu    sync.Mutex
	screenedIn  []byte
	screenedOut []byte

	dead     chan struct{}
	deadOnce sync.Once
	stop     context.CancelFunc
}

func dialModern(ctx context.Context, up *Upstream, c *streamhttp.Client) (*modernHTTP, error) {
	m := &modernHTTP{up: up, c: c, bindings: mcp.NewBindingCache(maxBindingTools), dead: make(chan struct{})}
	params := []byte(`{"_meta":` + string(probeMeta()) + `}`)
	dctx, cancel := context.WithTimeoutCause(ctx, up.timeout, mcpguard.ErrUpstreamTimeout)
	resp, status, err := m.post(dctx, jsonrpc.StringID("mcpguard-discover"), mcp.MethodServerDiscover, params, nil, nil)
	cancel()
	if err != nil {
		var se *streamhttp.StatusError
		if errors.As(err, &se) {
			return nil, &legacyFallback{reason: fmt.Sprintf("server/discover answered HTTP %d", se.Status)}
		}
		if errors.Is(err, mcpguard.ErrUpstreamBadReply) {
			return nil, &legacyFallback{reason: err.Error()}
		}
		return nil, err
	}
	if resp.Error != nil {
		body := jsonrpc.AppendError(nil, jsonrpc.IntID(0), resp.Error)
		if !mcp.IsModernError(status, body) {
			return nil, &legacyFallback{reason: fmt.Sprintf("server/discover answered %d %s", resp.Error.Code, resp.Error.Message)}
		}
		if resp.Error.Code == mcp.CodeUnsupportedProtocolVersion {
			supported, _, _ := mcp.ParseUnsupportedVersionData(resp.Error.Data)
			if _, ok := mcp.Negotiate(supported, mcp.SupportedLegacy()); ok {
				return nil, &legacyFallback{reason: "it serves only legacy protocol versions on this endpoint"}
			}
		}
		return nil, fmt.Errorf("%w: %q rejected server/discover: %d %s", mcpguard.ErrUpstreamBadReply, up.name, resp.Error.Code, resp.Error.Message)
	}
	raw, _ := jsonrpc.Lookup(resp.Result, mcp.ResultSupportedVersions)
	probe := mcp.ClassifyDiscoverResponse(jsonrpc.AppendResult(nil, jsonrpc.IntID(0), resp.Result))
	if !probe.Modern {
		return nil, &legacyFallback{reason: "server/discover answered with something that is not a DiscoverResult"}
	}
	v, ok := mcp.Negotiate(probe.Supported, mcp.SupportedModern())
	if !ok {
		if _, legacy := mcp.Negotiate(probe.Supported, mcp.SupportedLegacy()); legacy {
			return nil, &legacyFallback{reason: "it serves only legacy protocol versions: " + string(raw)}
		}
		return nil, fmt.Errorf("%w: %q supports none of our protocol versions (it offers %s)", mcpguard.ErrUpstreamBadReply, up.name, raw)
	}
	m.inf = discoverInfo(v, resp.Result)
	lctx, cancel := context.WithCancel(ctx)
	m.stop = cancel
	go m.listen(lctx)
	return m, nil
}

func (m *modernHTTP) info() Info            { return m.inf }
func (m *modernHTTP) done() <-chan struct{} { return m.dead }
func (m *modernHTTP) close() error {
	m.deadOnce.Do(func() {
		close(m.dead)
		if m.stop != nil {
			m.stop()
		}
	})
	return nil
}

func (m *modernHTTP) notify(ctx context.Context, method string, params []byte) error {
	// The 2026-07-28 core protocol defines no client-to-server notifications over Streamable
	// HTTP; cancellation is the closing of the response stream.
	return nil
}

func (m *modernHTTP) call(ctx context.Context, req *Request, sink Sink) (*Response, error) {
	id := req.ID
	if id.IsZero() {
		id = jsonrpc.StringID(fmt.Sprintf("mcpguard-%d", m.next.Add(1)))
	}
	// The params are the gateway's own, built from a request it parsed: read them once, for
	// the tool's header bindings and the headers themselves.
	p, err := mcp.ReadParams(req.Params)
	if err != nil {
		return &Response{Error: jsonrpc.NewError(jsonrpc.CodeInvalidParams, req.Method+": params must be an object"), HTTPStatus: http.StatusBadRequest}, nil
	}
	var bindings []mcp.ParamBinding
	if req.Method == mcp.MethodToolsCall {
		name, _ := jsonrpc.String(p.Name)
		var known bool
		bindings, known = m.toolBindings(name)
		if !known {
			m.refreshBindings(ctx, req.Params)
			bindings, _ = m.toolBindings(name)
		}
	}
	resp, _, err := m.postRead(ctx, id, req.Method, &p, bindings, sink)
	if err != nil {
		return nil, err
	}
	if req.Method == mcp.MethodToolsList && resp.Result != nil {
		resp.Result = m.screenTools(resp.Result)
	}
	return resp, nil
}

func (m *modernHTTP) toolBindings(name string) ([]mcp.ParamBinding, bool) {
	return m.bindings.Get(name)
}

// refreshBindings lists the upstream's tools (all pages) to learn their x-mcp-header bindings,
// using the _meta of the call that needs them.
func (m *modernHTTP) refreshBindings(ctx context.Context, callParams []byte) {
	meta, ok := jsonrpc.Lookup(callParams, "_meta")
	if !ok {
		return
	}
	cursor := []byte(nil)
	for page := 0; page < 100; page++ {
		params := []byte(`{"_meta":` + string(meta) + `}`)
		if cursor != nil {
			params = jsonrpc.SetMember(params, "cursor", cursor)
		}
		resp, _, err := m.post(ctx, jsonrpc.StringID(fmt.Sprintf("mcpguard-%d", m.next.Add(1))), mcp.MethodToolsList, params, nil, nil)
		if err != nil || resp.Result == nil {
			return
		}
		m.screenTools(resp.Result)
		next, ok := jsonrpc.Lookup(resp.Result, "nextCursor")
		if !ok || string(next) == "null" {
			return
		}
		cursor = next
	}
}

// screenTools records each listed tool's header bindings and drops the tools whose x-mcp-header
// annotations are invalid, as the Streamable HTTP binding requires of clients.
func (m *modernHTTP) screenTools(result []byte) []byte {
	m.screenMu.Lock()
	same, out := m.screenedIn != nil && bytes.Equal(m.screenedIn, result), m.screenedOut
	m.screenMu.Unlock()
	if same {
		if out == nil {
			return result
		}
		return out
	}
	out, dropped := m.screenToolsAgain(result)
	m.screenMu.Lock()
	m.screenedIn, m.screenedOut = bytes.Clone(result), nil
	if dropped {
		m.screenedOut = out
	}
	m.screenMu.Unlock()
	return out
}

// screenToolsAgain is screenTools for a list not read before; dropped says out is not result.
func (m *modernHTTP) screenToolsAgain(result []byte) (out []byte, dropped bool) {
	tools, ok := jsonrpc.Lookup(result, "tools")
	if !ok {
		return result, false
	}
	var drop map[int]bool // indexes of the tools dropped; nil: the result passes as it is
	i := 0
	names := []string{"name", "inputSchema"}
	_ = forEachElement(tools, func(tool []byte) {
		var vals [2][]byte
		_ = jsonrpc.Pick(tool, names, vals[:])
		name, _ := jsonrpc.String(vals[0])
		if _, err := m.bindings.Learn(name, vals[1]); err != nil {
			m.up.logger.Warn("dropping upstream tool with invalid x-mcp-header annotations", "upstream", m.up.name, "tool", name, "err", err)
			if drop == nil {
				drop = map[int]bool{}
			}
			drop[i] = true
		}
		i++
	})
	if drop == nil {
		return result, false
	}
	out = make([]byte, 0, len(tools))
	out = append(out, '[')
	i = 0
	_ = forEachElement(tools, func(tool []byte) {
		if !drop[i] {
			if len(out) > 1 {
				out = append(out, ',')
			}
			out = append(out, tool...)
		}
		i++
	})
	out = append(out, ']')
	return jsonrpc.SetMember(result, "tools", out), true
}

// post sends one request and reads its reply, handing related notifications to sink.
func (m *modernHTTP) post(ctx context.Context, id jsonrpc.ID, method string, params []byte, bindings []mcp.ParamBinding, sink Sink) (*Response, int, error) {
	p, err := mcp.ReadParams(params)
	if err != nil {
		return &Response{Error: jsonrpc.NewError(jsonrpc.CodeInvalidParams, method+": params must be an object"), HTTPStatus: http.StatusBadRequest}, http.StatusBadRequest, nil
	}
	return m.postRead(ctx, id, method, &p, bindings, sink)
}

// postRead is post for params already read.
func (m *modernHTTP) postRead(ctx context.Context, id jsonrpc.ID, method string, p *mcp.Params, bindings []mcp.ParamBinding, sink Sink) (*Response, int, error) {
	h, err := p.Headers(method, bindings)
	if err != nil {
		return &Response{Error: jsonrpc.NewError(jsonrpc.CodeInvalidParams, err.Error()), HTTPStatus: http.StatusBadRequest}, http.StatusBadRequest, nil
	}
	params := p.Raw
	body := jsonrpc.AppendRequest(nil, id, method, params)
	reply, err := m.c.Post(ctx, body, id.Raw(), h)
	if err != nil {
		var se *streamhttp.StatusError
		if errors.As(err, &se) {
			if msg, perr := jsonrpc.Parse(se.Body, m.up.lim); perr == nil && msg.Kind == jsonrpc.KindError {
				return &Response{Error: msg.Error, HTTPStatus: se.Status}, se.Status, nil
			}
			return nil, se.Status, err
		}
		if ctx.Err() != nil {
			return nil, 0, context.Cause(ctx)
		}
		return nil, 0, fmt.Errorf("%w: %s to %q: %v", mcpguard.ErrUpstreamDown, method, m.up.name, err)
	}
	defer reply.Close()
	for {
		b, err := reply.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, 0, context.Cause(ctx)
			}
			if errors.Is(err, io.EOF) {
				return nil, 0, fmt.Errorf("%w: %q ended the %s reply without a response", mcpguard.ErrUpstreamBadReply, m.up.name, method)
			}
			return nil, 0, fmt.Errorf("%w: reading %s reply from %q: %v", mcpguard.ErrUpstreamDown, method, m.up.name, err)
		}
		msg, err := jsonrpc.Parse(b, m.up.lim)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %q sent an invalid message: %v", mcpguard.ErrUpstreamBadReply, m.up.name, err)
		}
		switch msg.Kind {
		case jsonrpc.KindNotification:
			if sink != nil {
				sink.Notify(msg.Method, msg.Params)
			}
		case jsonrpc.KindRequest:
			m.up.logger.Warn("modern upstream sent a request on a response stream; ignored", "upstream", m.up.name, "method", msg.Method)
		default:
			if msg.ID != id {
				continue
			}
			return &Response{Result: msg.Result, Error: msg.Error, HTTPStatus: reply.Status, Streamed: !reply.Whole()}, reply.Status, nil
		}
	}
}

// listen keeps one subscriptions/listen stream open to the upstream and hands its change
// notifications to the hub, reopening it with backoff when it ends.
func (m *modernHTTP) listen(ctx context.Context) {
	filter := listenFilter(m.inf.Capabilities)
	if filter == "" || m.up.hub == nil {
		return
	}
	delay := 250 * time.Millisecond
	for ctx.Err() == nil {
		params := []byte(`{"_meta":` + string(probeMeta()) + `,"notifications":` + filter + `}`)
		started := time.Now()
		_, _, err := m.post(ctx, jsonrpc.StringID("mcpguard-listen"), mcp.MethodSubscriptionsListen, params, nil, hubSink{m.up})
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > 30*time.Second {
			delay = 250 * time.Millisecond
		}
		m.up.logger.Debug("upstream listen stream ended", "upstream", m.up.name, "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, 30*time.Second)
	}
}

// forEachElement calls fn for each element of a raw JSON array.
func forEachElement(arr []byte, fn func(elem []byte)) error {
	return jsonrpc.Elements(arr, func(elem []byte) error { fn(elem); return nil })
}
