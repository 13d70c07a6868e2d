package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcp"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/redact"
	"github.com/mcpguard/mcpguard/internal/upstream"
)

// caller is the client side of one request: its era and what it declared about itself.
type caller struct {
	era      mcpguard.Era
	version  string
	caps     []byte // client capabilities
	info     []byte // clientInfo, nil if none
	logLevel string // modern: from _meta; legacy: from logging/setLevel
	sess     *session

	principal  *mcpguard.Principal // who is calling, for the policy; shared, never modified
	sourceIP   netip.Addr
	authMethod string
	// traceparent and tracestate are the request's W3C trace context: its headers, or the
	// members of params._meta of those names (readCall); "" when none.
	traceparent, tracestate string
}

// can reports whether the caller declared a client capability (sampling, elicitation, roots).
func (c *caller) can(capability string) bool {
	_, ok := jsonrpc.Lookup(c.caps, capability)
	return ok
}

// out carries what belongs to one request before its response: related notifications and, for
// legacy clients, server-to-client requests.
type out interface {
	notify(method string, params []byte)
	request(ctx context.Context, method string, params []byte) ([]byte, *jsonrpc.Error)
}

// reply is the outcome of one request: a raw result or an error, with the HTTP status a modern
// client gets it with (0 means 200 for results and the contract's default for errors).
type reply struct {
	result []byte
	err    *jsonrpc.Error
	status int
	// refusal says why the gateway refused the call itself when it answers with a result (a
	// tool result with isError): the audit record carries it.
	refusal string
	// streamed: the upstream answered on an SSE stream (for a list, at least one did), so a
	// client that accepts SSE gets the reply on one too, as it would from that upstream.
	streamed bool
}

// rpcError is an error with its JSON-RPC code, for the gateway's own answers.
type rpcError struct {
	code   int64
	msg    string
	data   []byte
	status int
}

func (e *rpcError) Error() string { return e.msg }

func fail(code int64, status int, format string, args ...any) reply {
	return reply{err: &jsonrpc.Error{Code: code, Message: fmt.Sprintf(format, args...)}, status: status}
}

// errorReply maps an error from routing or an upstream to the response contract. The error's
// text (a dial error names the upstream's address) passes redact.Leaks: the client learns what
// went wrong, not where the upstream lives.
func errorReply(err error) reply {
	var re *rpcError
	var shed *upstream.Unavailable
	switch {
	case errors.As(err, &re):
		return reply{err: &jsonrpc.Error{Code: re.code, Message: re.msg, Data: re.data}, status: re.status}
	case errors.As(err, &shed):
		secs := max(1, int64((shed.RetryAfter+time.Second-1)/time.Second))
		return reply{err: &jsonrpc.Error{Code: mcpguard.CodeUpstreamShed, Message: shed.Error(),
			Data: jsonrpc.SetMember([]byte(`{}`), "retry_after", strconv.AppendInt(nil, secs, 10))}, status: http.StatusServiceUnavailable}
	case errors.Is(err, mcpguard.ErrUpstreamTimeout):
		return fail(mcpguard.CodeUpstreamTimeout, http.StatusGatewayTimeout, "upstream timeout: %s", leaks(err))
	case errors.Is(err, mcpguard.ErrUpstreamBadReply):
		return fail(mcpguard.CodeUpstreamBadReply, http.StatusBadGateway, "upstream sent an invalid reply: %s", leaks(err))
	case errors.Is(err, context.Canceled):
		return fail(jsonrpc.CodeInternalError, 499, "request cancelled")
	case errors.Is(err, mcpguard.ErrUpstreamDown): // its text starts with "upstream unavailable"
		return fail(mcpguard.CodeUpstreamDown, http.StatusBadGateway, "%s", leaks(err))
	default:
		return fail(mcpguard.CodeUpstreamDown, http.StatusBadGateway, "upstream unavailable: %s", leaks(err))
	}
}

// leaks is err's text as a client may read it.
func leaks(err error) string {
	msg, _ := redact.Leaks(err.Error())
	return msg
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// maxInputRounds bounds the input_required rounds the gateway runs for a legacy client.
const maxInputRounds = 8

// forward sends a request to one upstream in that upstream's era and relays the outcome,
// translating a modern upstream's input_required results into server-to-client requests for a
// legacy client.
func (g *Gateway) forward(ctx context.Context, c *caller, up *upstream.Upstream, msg *jsonrpc.Message, params []byte, o out) reply {
	inf, err := up.Info(ctx)
	if err != nil {
		return errorReply(err)
	}
	if c.era == mcpguard.EraModern && inf.Era != mcpguard.EraModern {
		if info, ok := mcp.LookupMethod(msg.Method, mcp.Version20260728); ok && info.InputRequired {
			return g.forwardHeld(ctx, c, up, inf, msg, params, o)
		}
	}
	sink := &callSink{g: g, c: c, o: o}
	req := &upstream.Request{ID: msg.ID, Method: msg.Method, Params: g.upstreamParams(c, inf, params)}
	resp, err := up.Call(ctx, req, sink)
	for round := 0; err == nil && c.era != mcpguard.EraModern && inf.Era == mcpguard.EraModern && isInputRequired(resp.Result); round++ {
		if round == maxInputRounds {
			return fail(mcpguard.CodeUpstreamBadReply, http.StatusBadGateway, "upstream %q asked for input more than %d times", up.Name(), maxInputRounds)
		}
		retry, r := g.gatherInput(ctx, c, o, resp.Result, req.Params)
		if r != nil {
			return *r
		}
		req = &upstream.Request{Method: msg.Method, Params: retry}
		resp, err = up.Call(ctx, req, sink)
	}
	if err != nil {
		return errorReply(err)
	}
	if resp.Error != nil {
		status := 0
		if c.era == mcpguard.EraModern {
			status = resp.HTTPStatus
		}
		return reply{err: resp.Error, status: status, streamed: resp.Streamed}
	}
	result := resp.Result
	if c.era != mcpguard.EraModern && inf.Era == mcpguard.EraModern {
		result = jsonrpc.DeleteMember(result, "resultType")
	}
	return reply{result: result, streamed: resp.Streamed}
}

func isInputRequired(result []byte) bool {
	rt, ok := jsonrpc.Lookup(result, "resultType")
	if !ok {
		return false
	}
	s, _ := jsonrpc.String(rt)
	return s == mcp.ResultTypeInputRequired
}

// gatherInput asks a legacy client each of a modern upstream's input requests and builds the
// retry's params: the original params plus inputResponses and the echoed requestState.
func (g *Gateway) gatherInput(ctx context.Context, c *caller, o out, result, params []byte) ([]byte, *reply) {
	responses := []byte(`{}`)
	if reqs, ok := jsonrpc.Lookup(result, mcp.ResultInputRequests); ok {
		err := jsonrpc.Members(reqs, func(key string, r []byte) error {
			mraw, _ := jsonrpc.Lookup(r, "method")
			method, _ := jsonrpc.String(mraw)
			p, _ := jsonrpc.Lookup(r, "params")
			res, rpcErr := o.request(ctx, method, p)
			if rpcErr != nil {
				return rpcErr
			}
			responses = jsonrpc.SetMember(responses, key, res)
			return nil
		})
		if err != nil {
			var rpcErr *jsonrpc.Error
			if errors.As(err, &rpcErr) {
				return nil, &reply{err: rpcErr}
			}
			r := errorReply(err)
			return nil, &r
		}
	}
	params = jsonrpc.DeleteMember(params, mcp.ParamRequestState)
	params = jsonrpc.SetMember(params, mcp.ParamInputResponses, responses)
	if st, ok := jsonrpc.Lookup(result, mcp.ParamRequestState); ok {
		params = jsonrpc.SetMember(params, mcp.ParamRequestState, st)
	}
	return params, nil
}

// upstreamParams shapes a client's params for an upstream's era: a modern upstream gets the
// per-request _meta (built from a legacy client's session when needed); a legacy upstream gets
// none of the modern _meta keys.
func (g *Gateway) upstreamParams(c *caller, inf upstream.Info, params []byte) []byte {
	if params == nil {
		params = []byte(`{}`)
	}
	meta, hasMeta := jsonrpc.Lookup(params, "_meta")
	if inf.Era == mcpguard.EraModern {
		if hasMeta && c.era == mcpguard.EraModern && c.version == inf.ProtocolVersion {
			// A modern caller's fields were read from this very _meta: it already says what
			// the upstream must hear.
			return params
		}
		if !hasMeta {
			meta = []byte(`{}`)
		}
		meta = jsonrpc.SetMember(meta, mcp.MetaProtocolVersion, jsonrpc.Quote(inf.ProtocolVersion))
		caps := c.caps
		if caps == nil {
			caps = []byte(`{}`)
		}
		meta = jsonrpc.SetMember(meta, mcp.MetaClientCapabilities, caps)
		if c.info != nil {
			meta = jsonrpc.SetMember(meta, mcp.MetaClientInfo, c.info)
		}
		if c.logLevel != "" {
			meta = jsonrpc.SetMember(meta, mcp.MetaLogLevel, jsonrpc.Quote(c.logLevel))
		}
		return jsonrpc.SetMember(params, "_meta", meta)
	}
	if !hasMeta {
		return params
	}
	meta, changed := withoutProtocolFields(meta)
	switch {
	case !changed:
		return params
	case meta == nil:
		return jsonrpc.DeleteMember(params, "_meta")
	}
	return jsonrpc.SetMember(params, "_meta", meta)
}

// withoutProtocolFields returns the _meta object meta without the modern per-request protocol
// fields, which a legacy upstream must not see, in one pass; nil when nothing else is left.
// changed is false when meta had none of them.
func withoutProtocolFields(meta []byte) (out []byte, changed bool) {
	out = append(make([]byte, 0, len(meta)), '{')
	_ = jsonrpc.Members(meta, func(key string, val []byte) error {
		switch key {
		case mcp.MetaProtocolVersion, mcp.MetaClientCapabilities, mcp.MetaClientInfo, mcp.MetaLogLevel:
			changed = true
			return nil
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(append(jsonrpc.AppendQuote(out, key), ':'), val...)
		return nil
	})
	if !changed {
		return meta, false
	}
	if len(out) == 1 {
		return nil, true
	}
	return append(out, '}'), true
}

// callSink relays what an upstream sends during a call to the client that made it.
type callSink struct {
	g *Gateway
	c *caller
	o out
}

func (s *callSink) Notify(method string, params []byte) {
	if method == mcp.NotificationMessage && s.c.era == mcpguard.EraLegacy && s.c.sess != nil && !s.c.sess.wantsLog(params) {
		return
	}
	s.o.notify(method, params)
}

// StreamEnded passes on that the upstream let go of the call's reply stream.
func (s *callSink) StreamEnded() {
	if se, ok := s.o.(upstream.StreamEnder); ok {
		se.StreamEnded()
	}
}

// capabilityFor names the client capability a server-to-client request needs.
func capabilityFor(method string) string {
	switch method {
	case mcp.MethodSamplingCreateMessage:
		return "sampling"
	case mcp.MethodElicitationCreate:
		return "elicitation"
	case mcp.MethodRootsList:
		return "roots"
	}
	return ""
}

func (s *callSink) Request(ctx context.Context, method string, params []byte) ([]byte, *jsonrpc.Error) {
	if method == mcp.MethodPing {
		return []byte(`{}`), nil
	}
	if s.c.era == mcpguard.EraModern {
		return nil, jsonrpc.NewError(mcpguard.CodeClientCannotAnswer, "the client speaks the stateless protocol through mcpguard and cannot answer "+method+" from a legacy upstream")
	}
	if capName := capabilityFor(method); capName == "" || !s.c.can(capName) {
		return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "the client does not support "+method)
	}
	return s.o.request(ctx, method, params)
}

// discover answers server/discover with the union of the upstreams' capabilities. Each modern
// upstream is asked again, with the client's own _meta: in the stateless protocol every request
// carries the client's version, capabilities and clientInfo, and a server may answer discovery
// differently for different clients, while the gateway's probe when it connected spoke for no
// client. A legacy upstream's answer is the one from its initialize, which the gateway made on
// its own account for the connection all clients share. An upstream that fails the fresh
// discovery is described by its probe's answer.
func (g *Gateway) discover(ctx context.Context, c *caller, params []byte) reply {
	infos := g.upstreamInfos(ctx)
	var wg sync.WaitGroup
	var streamed atomic.Bool
	for i := range infos {
		in := &infos[i]
		if in.err != nil || in.inf.Era != mcpguard.EraModern {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := in.up.Call(ctx, &upstream.Request{Method: mcp.MethodServerDiscover, Params: g.upstreamParams(c, in.inf, params)}, nil)
			switch {
			case err != nil:
				g.logger.Debug("discovery for a client failed; serving the upstream's earlier answer", "upstream", in.up.Name(), "err", err)
				return
			case resp.Error != nil:
				g.logger.Debug("discovery for a client failed; serving the upstream's earlier answer", "upstream", in.up.Name(), "code", resp.Error.Code, "message", resp.Error.Message)
				return
			}
			if caps, ok := jsonrpc.Lookup(resp.Result, "capabilities"); ok && len(caps) > 0 && caps[0] == '{' {
				in.inf.Capabilities = caps
			}
			ins, _ := jsonrpc.Lookup(resp.Result, "instructions")
			in.inf.Instructions, _ = jsonrpc.String(ins)
			if resp.Streamed {
				streamed.Store(true)
			}
		}()
	}
	wg.Wait()
	caps, instructions := mergeInfo(infos)
	res := []byte(`{}`)
	res = jsonrpc.SetMember(res, "resultType", jsonrpc.Quote(mcp.ResultTypeComplete))
	res = jsonrpc.SetMember(res, mcp.ResultSupportedVersions, supportedVersions())
	res = jsonrpc.SetMember(res, "capabilities", caps)
	if instructions != "" {
		res = jsonrpc.SetMember(res, "instructions", jsonrpc.Quote(instructions))
	}
	res = jsonrpc.SetMember(res, "ttlMs", []byte("0"))
	res = jsonrpc.SetMember(res, "cacheScope", jsonrpc.Quote("public"))
	res = jsonrpc.SetMember(res, "_meta", []byte(`{"`+mcp.MetaServerInfo+`":`+string(serverInfo())+`}`))
	return reply{result: res, streamed: streamed.Load()}
}

// supportedVersions lists every protocol version the gateway serves, newest first.
func supportedVersions() []byte {
	b := []byte{'['}
	for i, v := range mcp.Supported() {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonrpc.AppendQuote(b, v)
	}
	return append(b, ']')
}

func serverInfo() []byte {
	return []byte(`{"name":"mcpguard","title":"mcpguard MCP gateway","version":` + string(jsonrpc.Quote(Version)) + `}`)
}

// aggregateInfo waits (bounded) for the upstreams and merges their capabilities and
// instructions. The gateway always offers logging.
func (g *Gateway) aggregateInfo(ctx context.Context) ([]byte, string) {
	return mergeInfo(g.upstreamInfos(ctx))
}

// upInfo is what one upstream said about itself, or why it could not.
type upInfo struct {
	up  *upstream.Upstream
	inf upstream.Info
	err error
}

// upstreamInfos waits (bounded) for each upstream's connection and reads what it learned.
func (g *Gateway) upstreamInfos(ctx context.Context) []upInfo {
	out := make([]upInfo, len(g.ups))
	for i, up := range g.ups {
		inf, err := up.Info(ctx)
		if err != nil {
			g.logger.Warn("upstream not connected; its capabilities are left out", "upstream", up.Name(), "err", err)
		}
		out[i] = upInfo{up: up, inf: inf, err: err}
	}
	return out
}

// mergeInfo merges the connected upstreams' capabilities and instructions. The gateway always
// offers logging.
func mergeInfo(infos []upInfo) ([]byte, string) {
	type flags struct{ present, listChanged, subscribe bool }
	var tools, prompts, resources flags
	completions, skills := false, false
	var ins []string
	for _, u := range infos {
		if u.err != nil {
			continue
		}
		inf := u.inf
		read := func(name string, f *flags) {
			obj, ok := jsonrpc.Lookup(inf.Capabilities, name)
			if !ok {
				return
			}
			f.present = true
			if v, ok := jsonrpc.Lookup(obj, "listChanged"); ok && string(v) == "true" {
				f.listChanged = true
			}
			if v, ok := jsonrpc.Lookup(obj, "subscribe"); ok && string(v) == "true" {
				f.subscribe = true
			}
		}
		read("tools", &tools)
		read("prompts", &prompts)
		read("resources", &resources)
		if _, ok := jsonrpc.Lookup(inf.Capabilities, "completions"); ok {
			completions = true
		}
		skills = skills || offers(inf.Capabilities, kindSkills)
		if inf.Instructions != "" {
			ins = append(ins, inf.Instructions)
		}
	}
	caps := []byte(`{"logging":{}}`)
	obj := func(f flags, sub bool) []byte {
		o := []byte(`{}`)
		if f.listChanged {
			o = jsonrpc.SetMember(o, "listChanged", []byte("true"))
		}
		if sub && f.subscribe {
			o = jsonrpc.SetMember(o, "subscribe", []byte("true"))
		}
		return o
	}
	if tools.present {
		caps = jsonrpc.SetMember(caps, "tools", obj(tools, false))
	}
	if prompts.present {
		caps = jsonrpc.SetMember(caps, "prompts", obj(prompts, false))
	}
	if resources.present {
		caps = jsonrpc.SetMember(caps, "resources", obj(resources, true))
	}
	if completions {
		caps = jsonrpc.SetMember(caps, "completions", []byte(`{}`))
	}
	if skills {
		caps = jsonrpc.SetMember(caps, "extensions", []byte(`{"`+mcp.ExtensionSkills+`":{}}`))
	}
	return caps, strings.Join(ins, "\n\n")
}

// initialize answers a legacy client's initialize and returns the negotiated version.
func (g *Gateway) initialize(ctx context.Context, params []byte) (result []byte, version string) {
	raw, _ := jsonrpc.Lookup(params, "protocolVersion")
	requested, _ := jsonrpc.String(raw)
	version = mcp.Version20251125
	if mcp.IsLegacy(requested) {
		version = requested
	}
	caps, instructions := g.aggregateInfo(ctx)
	res := []byte(`{}`)
	res = jsonrpc.SetMember(res, "protocolVersion", jsonrpc.Quote(version))
	res = jsonrpc.SetMember(res, "capabilities", caps)
	res = jsonrpc.SetMember(res, "serverInfo", serverInfo())
	if instructions != "" {
		res = jsonrpc.SetMember(res, "instructions", jsonrpc.Quote(instructions))
	}
	return res, version
}

// logLevels orders the syslog severities MCP uses, most verbose first.
var logLevels = []string{"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"}

func levelIndex(l string) int {
	for i, v := range logLevels {
		if v == l {
			return i
		}
	}
	return -1
}
