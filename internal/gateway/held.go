package gateway

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcp"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/upstream"
)

// A stateless (2026-07-28) client cannot be sent requests, so when a legacy upstream asks it for
// input in the middle of a call (sampling, elicitation, roots), the gateway holds the upstream
// call, answers the client with an input_required result naming the request, and resumes the
// held call when the client retries with its inputResponses and the requestState it was given.
// The held call lives in this gateway instance's memory.
const (
	maxHeldCalls    = 1024
	heldTTL         = 5 * time.Minute
	heldStatePrefix = "mcpguard.held."
)

// heldCall is an upstream call running on behalf of a stateless client across its retries.
type heldCall struct {
	id      string
	cancel  context.CancelFunc
	final   chan heldFinal
	asks    chan *heldAsk
	expires time.Time

	mu      sync.Mutex
	out     out // the client request currently waiting on the call, for related notifications
	pending *heldAsk
	key     string
	rounds  int
}

type heldFinal struct {
	resp *upstream.Response
	err  error
}

// heldAsk is a server-to-client request from the upstream, waiting for the client's answer.
type heldAsk struct {
	method string
	params []byte
	answer chan heldAnswer
}

type heldAnswer struct {
	result []byte
	err    *jsonrpc.Error
}

// heldSink relays a held call's upstream traffic.
type heldSink struct{ h *heldCall }

func (s heldSink) Notify(method string, params []byte) {
	s.h.mu.Lock()
	o := s.h.out
	s.h.mu.Unlock()
	if o != nil {
		o.notify(method, params)
	}
}

func (s heldSink) Request(ctx context.Context, method string, params []byte) ([]byte, *jsonrpc.Error) {
	a := &heldAsk{method: method, params: params, answer: make(chan heldAnswer, 1)}
	select {
	case s.h.asks <- a:
	case <-ctx.Done():
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "request cancelled")
	}
	select {
	case ans := <-a.answer:
		return ans.result, ans.err
	case <-ctx.Done():
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "the client did not answer in time")
	}
}

// heldCalls is the bounded registry of held calls.
type heldCalls struct {
	mu    sync.Mutex
	calls map[string]*heldCall
}

func (hc *heldCalls) put(h *heldCall) bool {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if hc.calls == nil {
		hc.calls = map[string]*heldCall{}
	}
	now := time.Now()
	for id, c := range hc.calls {
		if now.After(c.expires) {
			c.cancel()
			delete(hc.calls, id)
		}
	}
	if len(hc.calls) >= maxHeldCalls {
		return false
	}
	hc.calls[h.id] = h
	return true
}

func (hc *heldCalls) take(id string) *heldCall {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	h := hc.calls[id]
	delete(hc.calls, id)
	if h != nil && time.Now().After(h.expires) {
		h.cancel()
		return nil
	}
	return h
}

func newHeldID() string {
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return heldStatePrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// forwardHeld serves a stateless client's call to a legacy upstream: a fresh call, or the retry
// of one that asked for input.
func (g *Gateway) forwardHeld(ctx context.Context, c *caller, up *upstream.Upstream, inf upstream.Info, msg *jsonrpc.Message, params []byte, o out) reply {
	if raw, ok := jsonrpc.Lookup(params, mcp.ParamRequestState); ok {
		state, _ := jsonrpc.String(raw)
		if strings.HasPrefix(state, heldStatePrefix) {
			h := g.held.take(state)
			if h == nil {
				return fail(jsonrpc.CodeInvalidParams, http.StatusBadRequest, "requestState is unknown or expired: call the tool again without it")
			}
			responses, _ := jsonrpc.Lookup(params, mcp.ParamInputResponses)
			ans, ok := jsonrpc.Lookup(responses, h.key)
			if !ok {
				// The client did not answer: ask again, as the specification recommends.
				h.expires = time.Now().Add(heldTTL)
				if !g.held.put(h) {
					h.cancel()
					return fail(mcpguard.CodeGatewayOverloaded, http.StatusServiceUnavailable, "too many calls waiting for client input")
				}
				return inputRequired(h)
			}
			h.mu.Lock()
			p := h.pending
			h.pending = nil
			h.mu.Unlock()
			p.answer <- heldAnswer{result: ans}
			return g.awaitHeld(ctx, c, h, o)
		}
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), up.Timeout()+heldTTL)
	h := &heldCall{id: newHeldID(), cancel: cancel, final: make(chan heldFinal, 1), asks: make(chan *heldAsk)}
	req := &upstream.Request{Method: msg.Method, Params: g.upstreamParams(c, inf, params)}
	go func() {
		resp, err := up.Call(hctx, req, heldSink{h})
		h.final <- heldFinal{resp, err}
	}()
	return g.awaitHeld(ctx, c, h, o)
}

// awaitHeld waits for a held call to finish or to ask for input.
func (g *Gateway) awaitHeld(ctx context.Context, c *caller, h *heldCall, o out) reply {
	h.mu.Lock()
	h.out = o
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.out = nil
		h.mu.Unlock()
	}()
	for {
		select {
		case f := <-h.final:
			h.cancel()
			if f.err != nil {
				return errorReply(f.err)
			}
			if f.resp.Error != nil {
				return reply{err: f.resp.Error, streamed: f.resp.Streamed}
			}
			return reply{result: f.resp.Result, streamed: f.resp.Streamed}
		case a := <-h.asks:
			capName := capabilityFor(a.method)
			if capName == "" || !c.can(capName) {
				a.answer <- heldAnswer{err: jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "the client does not support "+a.method)}
				continue
			}
			h.mu.Lock()
			h.rounds++
			h.pending = a
			h.key = "mcpguard-" + strconv.Itoa(h.rounds)
			h.mu.Unlock()
			h.expires = time.Now().Add(heldTTL)
			if !g.held.put(h) {
				h.cancel()
				return fail(mcpguard.CodeGatewayOverloaded, http.StatusServiceUnavailable, "too many calls waiting for client input")
			}
			return inputRequired(h)
		case <-ctx.Done():
			h.cancel() // for a stateless client, going away is cancellation
			return errorReply(ctx.Err())
		}
	}
}

// inputRequired is the InputRequiredResult asking the client the held call's pending request.
func inputRequired(h *heldCall) reply {
	h.mu.Lock()
	defer h.mu.Unlock()
	req := []byte(`{}`)
	req = jsonrpc.SetMember(req, "method", jsonrpc.Quote(h.pending.method))
	if h.pending.params != nil {
		req = jsonrpc.SetMember(req, "params", h.pending.params)
	}
	res := []byte(`{"resultType":"input_required"}`)
	res = jsonrpc.SetMember(res, mcp.ResultInputRequests, jsonrpc.SetMember([]byte(`{}`), h.key, req))
	res = jsonrpc.SetMember(res, mcp.ParamRequestState, jsonrpc.Quote(h.id))
	return reply{result: res}
}
