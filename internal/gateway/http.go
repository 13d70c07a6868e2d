package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcp"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/sse"
)

// middleware wraps a handler with one step of the pipeline.
type middleware func(http.Handler) http.Handler

// Handler is the MCP endpoint. The request path reads top to bottom here: every request passes
// these steps in this order before the JSON-RPC message is parsed, validated and dispatched.
func (g *Gateway) Handler() http.Handler {
	steps := []middleware{
		withHSTS,       // over TLS, browsers keep to HTTPS
		g.checkPath,    // only the configured MCP path
		g.checkOrigin,  // Host and Origin against DNS rebinding (403)
		g.limitHeaders, // header size (431)
		g.checkFraming, // Transfer-Encoding (400, connection closed), Content-Encoding (415)
		g.limitBody,    // body size (413)
		g.admit,        // client address: networks and blocks (403), when containment is configured
		g.authenticate, // bearer token for this gateway (401 / 400 / 403), when auth is configured
	}
	var h http.Handler = http.HandlerFunc(g.serveMCP) // parse + validate → dispatch (authorize, audit) → forward
	for i := len(steps) - 1; i >= 0; i-- {
		h = steps[i](h)
	}
	return h
}

func (g *Gateway) checkPath(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.metadataPaths[r.URL.Path] {
			g.metadata.ServeHTTP(w, r) // public: how a client finds the authorization server
			return
		}
		if r.URL.Path != g.path {
			http.NotFound(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (g *Gateway) checkOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.hostOK(r.Host) {
			writeError(w, http.StatusForbidden, jsonrpc.ID{}, jsonrpc.CodeInvalidRequest, "forbidden Host header: not an address of this gateway (add it to allowed_hosts)", nil)
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !g.originOK(o) {
			writeError(w, http.StatusForbidden, jsonrpc.ID{}, jsonrpc.CodeInvalidRequest, "forbidden Origin: add it to allowed_origins to let that web page use the gateway", nil)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate puts the caller's Principal in the request context; the client's credential
// goes no further (the Authorization header is removed, and upstreams use their own).
func (g *Gateway) authenticate(next http.Handler) http.Handler {
	if g.authn == nil {
		return next
	}
	return g.authn.Middleware(next)
}

func (g *Gateway) limitHeaders(next http.Handler) http.Handler {
	max := int(g.limits.MaxHeaderBytes)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if max > 0 {
			n := 0
			for k, vs := range r.Header {
				for _, v := range vs {
					n += len(k) + len(v) + 4
				}
			}
			if n > max {
				writeError(w, http.StatusRequestHeaderFieldsTooLarge, jsonrpc.ID{}, jsonrpc.CodeInvalidRequest, "request headers too large", nil)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// hsts is the Strict-Transport-Security of answers over TLS: browsers that reached the gateway
// over HTTPS keep to HTTPS for a year. Subdomains are not included: the gateway does not know
// what else its domain serves.
const hsts = "max-age=31536000"

// withHSTS sets Strict-Transport-Security on every answer over TLS.
func withHSTS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			w.Header().Set("Strict-Transport-Security", hsts)
		}
		next.ServeHTTP(w, r)
	})
}

// checkFraming refuses bodies the gateway would read differently from a proxy in front of it,
// or not as written:
//   - any Transfer-Encoding: net/http drops a Content-Length sent alongside Transfer-Encoding:
//     chunked, so a request with both (request smuggling, RFC 9112 §6.1) is indistinguishable
//     from a chunked one here. Every MCP client sends its JSON with a Content-Length; a request
//     with Transfer-Encoding gets 400 and its connection is closed, so that nothing after its
//     body is read as another request;
//   - a Content-Encoding other than identity: the body would be read as plain JSON (415).
func (g *Gateway) checkFraming(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TransferEncoding) > 0 {
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusBadRequest, jsonrpc.ID{}, jsonrpc.CodeInvalidRequest,
				"Transfer-Encoding is not accepted on requests: send the body with a Content-Length", nil)
			return
		}
		for _, ce := range r.Header.Values("Content-Encoding") {
			for v := range strings.SplitSeq(ce, ",") {
				if v = strings.TrimSpace(v); v != "" && !strings.EqualFold(v, "identity") {
					writeError(w, http.StatusUnsupportedMediaType, jsonrpc.ID{}, jsonrpc.CodeInvalidRequest,
						"Content-Encoding "+truncate(v)+" is not accepted: send the body uncompressed", nil)
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (g *Gateway) limitBody(next http.Handler) http.Handler {
	max := g.limits.MaxBodyBytes
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			writeError(w, http.StatusRequestEntityTooLarge, jsonrpc.ID{}, jsonrpc.CodeInvalidRequest, "request body too large", nil)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, max)
		next.ServeHTTP(w, r)
	})
}

func (g *Gateway) serveMCP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		g.servePost(w, r)
	case http.MethodGet:
		g.serveGet(w, r)
	case http.MethodDelete:
		g.serveDelete(w, r)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		writeError(w, http.StatusMethodNotAllowed, jsonrpc.ID{}, jsonrpc.CodeInvalidRequest, "method not allowed", nil)
	}
}

// bodyReadTimeout bounds how long a client may take to send a whole request body. It is set per
// request rather than as the server's ReadTimeout, which would also end long-lived SSE responses.
const bodyReadTimeout = 30 * time.Second

func (g *Gateway) servePost(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(g.bodyTimeout))
	body, err := io.ReadAll(r.Body)
	if err != nil {
		// The connection is closed after this answer, with the deadline still set: nothing more
		// is read from a client that sent too much or too slowly, not even to drain the body.
		w.Header().Set("Connection", "close")
		var mbe *http.MaxBytesError
		var ne net.Error
		switch {
		case errors.As(err, &mbe):
			writeError(w, http.StatusRequestEntityTooLarge, jsonrpc.ID{}, jsonrpc.CodeInvalidRequest, "request body too large", nil)
		case errors.As(err, &ne) && ne.Timeout():
			writeError(w, http.StatusRequestTimeout, jsonrpc.ID{}, jsonrpc.CodeInvalidRequest,
				"the request body did not arrive within "+g.bodyTimeout.String(), nil)
		default:
			writeError(w, http.StatusBadRequest, jsonrpc.ID{}, jsonrpc.CodeParseError, "reading request body: "+err.Error(), nil)
		}
		return
	}
	_ = rc.SetReadDeadline(time.Time{})
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, jsonrpc.ID{}, jsonrpc.CodeInvalidRequest, "Content-Type must be application/json", nil)
		return
	}
	msg, err := jsonrpc.Parse(body, g.lim)
	if err != nil {
		var e *jsonrpc.Error
		errors.As(err, &e)
		writeError(w, http.StatusBadRequest, echoID(msg), e.Code, e.Message, nil)
		return
	}
	var params *mcp.Params // nil for responses, and for params that are not an object
	if msg.Kind == jsonrpc.KindRequest || msg.Kind == jsonrpc.KindNotification {
		// The params are read here once; every later step reads what this finds.
		p, perr := mcp.ReadParams(msg.Params)
		if p.ProtocolVersion != nil || p.Era(r.Header, msg.Method) == mcp.EraModern {
			g.serveModern(w, r, msg, &p, perr)
			return
		}
		if msg.Method == mcp.MethodInitialize && msg.Kind == jsonrpc.KindRequest {
			g.serveInitialize(w, r, msg)
			return
		}
		if perr == nil {
			params = &p
		}
	}
	g.serveLegacy(w, r, msg, params)
}

// serveInitialize opens a legacy session.
func (g *Gateway) serveInitialize(w http.ResponseWriter, r *http.Request, msg *jsonrpc.Message) {
	if r.Header.Get(mcp.HeaderSessionID) != "" {
		writeError(w, http.StatusBadRequest, msg.ID, jsonrpc.CodeInvalidRequest, "initialize must not carry Mcp-Session-Id: the session already exists", nil)
		return
	}
	caps, _ := jsonrpc.Lookup(msg.Params, "capabilities")
	info, _ := jsonrpc.Lookup(msg.Params, "clientInfo")
	ctx, cancel := context.WithTimeout(r.Context(), initWait)
	defer cancel()
	result, version := g.initialize(ctx, msg.Params)
	_, addr := principalOf(r)
	// Only the principal that opened the session may use or end it.
	s, refused := g.sessions.create(version, clone(caps), clone(info), ownerOf(r), addr)
	if s == nil {
		writeError(w, http.StatusServiceUnavailable, msg.ID, mcpguard.CodeGatewayOverloaded, refused, nil)
		return
	}
	setSessionID(w.Header(), s)
	writeJSON(w, http.StatusOK, jsonrpc.AppendResult(nil, msg.ID, result))
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// session finds the legacy session a request names, answering 400 or 404 when it cannot.
func (g *Gateway) session(w http.ResponseWriter, r *http.Request, id jsonrpc.ID) *session {
	sid := r.Header.Get(mcp.HeaderSessionID)
	if sid == "" {
		writeError(w, http.StatusBadRequest, id, jsonrpc.CodeInvalidRequest, "missing Mcp-Session-Id header: send initialize first", nil)
		return nil
	}
	s := g.sessions.get(sid)
	if s == nil || s.owner != ownerOf(r) {
		// Another principal's session is answered exactly like an unknown one.
		writeError(w, http.StatusNotFound, id, jsonrpc.CodeInvalidRequest, "unknown or expired session: send initialize again", nil)
		return nil
	}
	if v := r.Header.Get(mcp.HeaderProtocolVersion); v != "" && !mcp.IsLegacy(v) {
		writeError(w, http.StatusBadRequest, id, jsonrpc.CodeInvalidRequest, "unsupported MCP-Protocol-Version "+truncate(v)+" for this session", nil)
		return nil
	}
	return s
}

func (g *Gateway) serveLegacy(w http.ResponseWriter, r *http.Request, msg *jsonrpc.Message, params *mcp.Params) {
	s := g.session(w, r, msg.ID)
	if s == nil {
		return
	}
	switch msg.Kind {
	case jsonrpc.KindResponse, jsonrpc.KindError:
		if !s.answer(msg) {
			// The transport says an input the server cannot accept gets an HTTP error.
			writeError(w, http.StatusBadRequest, jsonrpc.ID{}, jsonrpc.CodeInvalidRequest,
				"no request of this session awaits a response with id "+truncate(msg.ID.String()), nil)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		return
	case jsonrpc.KindNotification:
		switch msg.Method {
		case mcp.NotificationCancelled:
			s.cancelRequest(msg.Params)
		case mcp.NotificationRootsListChanged:
			for _, up := range g.ups {
				_ = up.Notify(r.Context(), msg.Method, msg.Params)
			}
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}
	st := s.newStream()
	ctx, cancel := context.WithCancel(s.ctx)
	if !s.begin(msg.ID, cancel) {
		cancel()
		writeError(w, http.StatusServiceUnavailable, msg.ID, mcpguard.CodeGatewayOverloaded, "too many requests in flight on this session", nil)
		return
	}
	c := s.caller()
	c.principal, c.sourceIP = principalOf(r)
	c.authMethod = authMethodOf(r)
	c.traceparent = r.Header.Get("Traceparent")
	c.tracestate = r.Header.Get("Tracestate")
	g.workers.run(func() {
		defer cancel()
		defer s.end(msg.ID)
		rep := g.dispatch(ctx, c, msg, params, streamOut{s: s, st: st})
		if ctx.Err() != nil && rep.err != nil && s.ctx.Err() == nil {
			// Cancelled by the client: per the protocol, no response follows.
			st.finish()
			return
		}
		st.pushReply(encodeReply(msg.ID, rep), legacyStatus(rep), rep.streamed)
	})
	first, err := st.first(r.Context())
	switch {
	case errors.Is(err, errDetached):
		setSessionID(w.Header(), s)
		startPrimed(w, st)
		return
	case err != nil:
		return // the client went away; the call goes on and its stream can be resumed
	case first.final && !(first.streamed && first.status == http.StatusOK && postAcceptsSSE(r)):
		writeJSON(w, first.status, first.data)
		s.forgetStream(st.id)
		return
	case first.final:
		setSessionID(w.Header(), s)
		writeWholeSSE(w, st, first)
		return
	}
	setSessionID(w.Header(), s)
	startPrimed(w, st)
	g.followSSE(r.Context(), w, st, 0)
}

// legacyStatus is the HTTP status of a legacy JSON reply: the contract's status for the
// gateway's own failures, 200 for everything else.
func legacyStatus(rep reply) int {
	if rep.err == nil {
		return http.StatusOK
	}
	return gatewayStatus(rep.err.Code)
}

// gatewayStatus is the HTTP status the response contract gives a gateway error code; 200 for
// any other code.
func gatewayStatus(code int64) int {
	switch code {
	case mcpguard.CodeDeniedByPolicy, mcpguard.CodeToolQuarantined:
		return http.StatusForbidden
	case mcpguard.CodeRateLimited:
		return http.StatusTooManyRequests
	case mcpguard.CodeAuditUnavailable, mcpguard.CodeGatewayOverloaded, mcpguard.CodeUpstreamShed:
		return http.StatusServiceUnavailable
	case mcpguard.CodeUpstreamDown, mcpguard.CodeUpstreamBadReply:
		return http.StatusBadGateway
	case mcpguard.CodeUpstreamTimeout:
		return http.StatusGatewayTimeout
	}
	return http.StatusOK
}

// streamOut sends a legacy call's related messages on its POST's stream.
type streamOut struct {
	s  *session
	st *stream
}

func (o streamOut) notify(method string, params []byte) {
	o.st.push(jsonrpc.AppendNotification(nil, method, params), false)
}

// StreamEnded lets the client's POST go when the upstream let go of the call's stream.
func (o streamOut) StreamEnded() { o.st.detach() }

func (o streamOut) request(ctx context.Context, method string, params []byte) ([]byte, *jsonrpc.Error) {
	return o.s.ask(ctx, func(m []byte) { o.st.push(m, false) }, method, params)
}

func encodeReply(id jsonrpc.ID, rep reply) []byte {
	if rep.err != nil {
		return jsonrpc.AppendError(nil, id, rep.err)
	}
	return jsonrpc.AppendResult(nil, id, rep.result)
}

// serveGet opens a legacy session's standalone stream, or resumes a stream with Last-Event-ID.
func (g *Gateway) serveGet(w http.ResponseWriter, r *http.Request) {
	if !acceptsSSE(r) {
		writeError(w, http.StatusNotAcceptable, jsonrpc.ID{}, jsonrpc.CodeInvalidRequest, "GET needs Accept: text/event-stream", nil)
		return
	}
	if r.Header.Get(mcp.HeaderSessionID) == "" && mcp.IsModern(r.Header.Get(mcp.HeaderProtocolVersion)) {
		// A stateless request has no stream to open: the transport's answer is 405.
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, jsonrpc.ID{}, jsonrpc.CodeInvalidRequest,
			"GET opens no stream in protocol version "+truncate(r.Header.Get(mcp.HeaderProtocolVersion))+": send requests with POST (subscriptions/listen for notifications)", nil)
		return
	}
	s := g.session(w, r, jsonrpc.ID{})
	if s == nil {
		return
	}
	st, seq := s.standalone, int64(0)
	if last := r.Header.Get(mcp.HeaderLastEventID); last != "" {
		id, n, ok := parseEventID(last)
		if ok {
			if found := s.stream(id); found != nil {
				st, seq = found, n
			}
		}
	} else {
		evs, _, _ := st.since(0)
		if len(evs) > 0 {
			seq = evs[len(evs)-1].seq // a fresh GET gets only what comes next
		}
	}
	setSessionID(w.Header(), s)
	startSSE(w, http.StatusOK)
	g.followSSE(r.Context(), w, st, seq)
}

func acceptsSSE(r *http.Request) bool {
	a := r.Header.Get("Accept")
	return a == "" || strings.Contains(a, "text/event-stream") || strings.Contains(a, "*/*")
}

// postAcceptsSSE reports whether a POST's client named text/event-stream in Accept, as the
// transport asks every client to. The gateway answers such a client on an SSE stream when the
// upstream answered that way (the transport lets a server choose either per request; mirroring
// the upstream's choice keeps what the client sees the same as direct), and with one JSON body
// otherwise.
func postAcceptsSSE(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(v, "text/event-stream") {
			return true
		}
	}
	return false
}

// serveDelete ends a legacy session.
func (g *Gateway) serveDelete(w http.ResponseWriter, r *http.Request) {
	sid := r.Header.Get(mcp.HeaderSessionID)
	if sid == "" {
		writeError(w, http.StatusBadRequest, jsonrpc.ID{}, jsonrpc.CodeInvalidRequest, "missing Mcp-Session-Id header", nil)
		return
	}
	if s := g.sessions.get(sid); s == nil || s.owner != ownerOf(r) || !g.sessions.remove(sid) {
		writeError(w, http.StatusNotFound, jsonrpc.ID{}, jsonrpc.CodeInvalidRequest, "unknown or expired session", nil)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// serveModern serves one stateless (2026-07-28) request.
func (g *Gateway) serveModern(w http.ResponseWriter, r *http.Request, msg *jsonrpc.Message, p *mcp.Params, perr error) {
	if msg.Kind == jsonrpc.KindNotification {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if perr != nil {
		// The version header's own problems come first, as for well-formed params.
		if err := mcp.ValidateRequestHeaders(r.Header, msg.Method, msg.Params, nil); err != nil {
			g.protocolError(w, msg.ID, err)
			return
		}
	}
	meta, err := p.CheckHeaders(r.Header, msg.Method)
	if err != nil {
		g.protocolError(w, msg.ID, err)
		return
	}
	c := &caller{era: mcpguard.EraModern, version: meta.ProtocolVersion, caps: meta.ClientCapabilities, info: meta.ClientInfo, logLevel: meta.LogLevel}
	c.principal, c.sourceIP = principalOf(r)
	c.authMethod = authMethodOf(r)
	c.traceparent = r.Header.Get("Traceparent")
	c.tracestate = r.Header.Get("Tracestate")
	if msg.Method == mcp.MethodToolsCall {
		name, _ := jsonrpc.String(p.Name)
		if b := g.toolBindings(r.Context(), c, name); len(b) > 0 || hasParamHeaders(r.Header) {
			if err := p.CheckParamHeaders(r.Header, b); err != nil {
				g.protocolError(w, msg.ID, err)
				return
			}
		}
	}
	if msg.Method == mcp.MethodSubscriptionsListen {
		g.serveListen(w, r, c, msg)
		return
	}
	o := &lazyOut{w: w, sse: postAcceptsSSE(r)}
	rep := g.dispatch(r.Context(), c, msg, p, o)
	if r.Context().Err() != nil {
		return // closing the stream cancelled the request: nothing more is sent
	}
	o.finish(msg.ID, rep)
}

// echoID is the id to answer a rejected message with: its own when the parser could read one.
func echoID(msg *jsonrpc.Message) jsonrpc.ID {
	if msg == nil {
		return jsonrpc.ID{}
	}
	return msg.ID
}

func hasParamHeaders(h map[string][]string) bool {
	for k := range h {
		if len(k) > len(mcp.HeaderParamPrefix) && strings.EqualFold(k[:len(mcp.HeaderParamPrefix)], mcp.HeaderParamPrefix) {
			return true
		}
	}
	return false
}

func (g *Gateway) protocolError(w http.ResponseWriter, id jsonrpc.ID, err error) {
	var pe *mcp.ProtocolError
	if errors.As(err, &pe) {
		writeError(w, pe.HTTPStatus(), id, pe.Code, pe.Message, pe.Data())
		return
	}
	writeError(w, http.StatusBadRequest, id, jsonrpc.CodeInvalidParams, err.Error(), nil)
}

// lazyOut answers a modern request with plain JSON unless something related must be sent first,
// or the upstream answered on an SSE stream and the client accepts one, in which case it
// switches to an SSE stream.
type lazyOut struct {
	w   http.ResponseWriter
	sw  *sse.Writer
	sse bool // the client accepts text/event-stream
}

func (o *lazyOut) notify(method string, params []byte) {
	if o.sw == nil {
		startSSE(o.w, http.StatusOK)
		o.sw = sse.NewWriter(o.w)
	}
	_ = o.sw.WriteEvent(sse.Event{Type: "message", Data: jsonrpc.AppendNotification(nil, method, params)})
	_ = o.sw.Flush()
}

func (o *lazyOut) request(ctx context.Context, method string, params []byte) ([]byte, *jsonrpc.Error) {
	return nil, jsonrpc.NewError(mcpguard.CodeClientCannotAnswer, "a stateless client cannot be sent "+method)
}

func (o *lazyOut) finish(id jsonrpc.ID, rep reply) {
	data := encodeReply(id, rep)
	status := rep.status
	if status == 0 && rep.err != nil {
		status = modernStatus(rep.err.Code)
	}
	if status == 0 || status == 499 {
		status = http.StatusOK
	}
	if o.sw == nil && rep.streamed && o.sse && status == http.StatusOK {
		startSSE(o.w, http.StatusOK)
		o.sw = sse.NewWriter(o.w)
	}
	if o.sw != nil {
		_ = o.sw.WriteEvent(sse.Event{Type: "message", Data: data})
		_ = o.sw.Flush()
		return
	}
	writeJSON(o.w, status, data)
}

// modernStatus is the HTTP status the 2026-07-28 binding and the gateway contract give an error.
func modernStatus(code int64) int {
	switch code {
	case jsonrpc.CodeMethodNotFound:
		return http.StatusNotFound
	case jsonrpc.CodeInvalidParams, jsonrpc.CodeInvalidRequest, jsonrpc.CodeParseError,
		mcp.CodeHeaderMismatch, mcp.CodeMissingRequiredClientCapability, mcp.CodeUnsupportedProtocolVersion:
		return http.StatusBadRequest
	}
	return gatewayStatus(code)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body))) // one body of known length, not chunks
	switch status {
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", retryAfterOr(body, auditRetryAfter))
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", retryAfterOr(body, "1"))
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, status int, id jsonrpc.ID, code int64, msg string, data []byte) {
	writeJSON(w, status, jsonrpc.AppendError(nil, id, &jsonrpc.Error{Code: code, Message: msg, Data: data}))
}

// sessionIDKey is the canonical form of mcp.HeaderSessionID, the key net/http's map uses.
var sessionIDKey = http.CanonicalHeaderKey(mcp.HeaderSessionID)

// setSessionID names s in a response's headers. The value is the session's own slice, made
// once: a header's values are replaced, never modified in place, so responses may share it.
func setSessionID(h http.Header, s *session) { h[sessionIDKey] = s.idValue }
