package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcp"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/metrics"
	"github.com/mcpguard/mcpguard/internal/policy"
	"github.com/mcpguard/mcpguard/internal/redact"
	"github.com/mcpguard/mcpguard/internal/toolschema"
	"github.com/mcpguard/mcpguard/internal/upstream"
)

// The request path, after the HTTP steps of Handler (or a line read by ServeStdio): dispatch
// answers the gateway's own methods and reads every other request into a Call, once; pipeline
// then runs the same ordered steps for every method that reaches an upstream, in both eras and
// over both transports. A step added to pipeline applies to every method.

// dispatch serves one request from a client of either era. p is the request's params as the
// transport already read them, nil when it did not.
func (g *Gateway) dispatch(ctx context.Context, c *caller, msg *jsonrpc.Message, p *mcp.Params, o out) reply {
	if info, ok := mcp.LookupMethod(msg.Method, c.version); !ok || info.Kind != mcp.KindRequest {
		return methodNotFound(c, msg.Method)
	}
	switch msg.Method {
	case mcp.MethodInitialize:
		return fail(jsonrpc.CodeInvalidRequest, http.StatusBadRequest, "initialize is only valid as the first request of a session")
	case mcp.MethodPing:
		return reply{result: []byte(`{}`)}
	case mcp.MethodServerDiscover:
		return g.discover(ctx, c, msg.Params)
	}
	if p == nil {
		rp, err := mcp.ReadParams(msg.Params)
		if err != nil {
			return *invalidParams("%s: params must be an object", msg.Method)
		}
		p = &rp
	}
	call, bad := readCall(c, msg, p)
	if bad != nil {
		return *bad
	}
	return g.pipeline(ctx, c, call, msg.ID, o)
}

func methodNotFound(c *caller, method string) reply {
	status := 0
	if c.era == mcpguard.EraModern {
		status = http.StatusNotFound
	}
	return fail(jsonrpc.CodeMethodNotFound, status, "method not found: %q", truncate(method))
}

// pipeline runs one call through every step, in this order. Each step either passes the call on
// or answers it; nothing reaches an upstream without passing all of them.
func (g *Gateway) pipeline(ctx context.Context, c *caller, call *mcpguard.Call, id jsonrpc.ID, o out) reply {
	// Each step's time and span, and the call once answered, when metrics or tracing are on
	// (metrics.go, tracing.go). The steps run under the call's span.
	ctx, m := g.beginCall(ctx, c, call)
	// 1. Route: the upstream that serves the target, by its exact name in that upstream's
	//    current list, and the arguments checked against the target's own definition.
	up, params, refused := g.route(ctx, c, call)
	m.Step(metrics.StepRoute)
	if refused != nil {
		g.recordRefusal(ctx, c, call, "route", refused)
		m.Done(call, metrics.DecisionNone, metrics.OutcomeRefused)
		return *refused
	}
	// 2. Contain: a suspended principal is refused (addresses outside the networks and blocked
	//    ones never got this far: admit). The rate limits are taken in step 4.
	refused = g.contain(ctx, c, call)
	m.Step(metrics.StepContain)
	if refused != nil {
		m.Done(call, metrics.DecisionNone, metrics.OutcomeSuspended)
		return *refused
	}
	// 3. Pin: a tool whose definition is not the one an operator approved is refused.
	q := g.checkPin(ctx, c, call)
	m.Step(metrics.StepPin)
	if q != nil {
		g.recordRefusal(ctx, c, call, "tool_pin", q)
		m.Done(call, metrics.DecisionNone, metrics.OutcomeRefused)
		return *q
	}
	// 4. Authorize: the policy decides on the principal, the target and the arguments. Then
	//    the limits, in one operation (one round trip to a shared backend), all or none: the
	//    configuration's rate limits and, for what the policy allowed, its own rate limits and
	//    quotas. A denied call draws from the configuration's limits too, so that probing is
	//    rate limited; a 429 then wins over the 403.
	d := g.decide(ctx, c, call)
	m.Step(metrics.StepDecide)
	release, refused := g.limit(ctx, c, call, &d)
	m.Step(metrics.StepLimit)
	if refused != nil {
		m.Done(call, decisionOf(&d), metrics.OutcomeLimited)
		return *refused
	}
	if release != nil {
		defer release()
	}
	if !d.Allow {
		g.recordDenial(ctx, c, call, d.Rule, d.Reasons)
		g.observe(c, call, true, false)
		m.Done(call, metrics.DecisionDeny, metrics.OutcomeDenied)
		return denial(d)
	}
	// 5. Approve: a call the policy allows only with a human's approval waits for it; so does
	//    every call of a principal an anomaly response put under approval. From here on, a
	//    call that is not forwarded gives its quota charges back: a quota counts forwarded
	//    calls.
	if d.RequireApproval != nil {
		r := g.holdForApproval(ctx, c, call.Target, d.Rule, d.RequireApproval, call.Arguments)
		m.Step(metrics.StepApprove)
		if r != nil {
			g.refund(ctx, &d)
			m.Done(call, metrics.DecisionAllow, metrics.OutcomeNotApproved)
			return *r
		}
	}
	// 6. Audit the request: no record, no call.
	started := time.Now()
	r := g.recordCall(ctx, c, call, d.Rule, params)
	m.Step(metrics.StepAuditAppend)
	if r != nil {
		g.refund(ctx, &d)
		m.Done(call, metrics.DecisionAllow, metrics.OutcomeAuditUnavailable)
		return *r
	}
	// 7. Forward, under the upstream step's span, which the upstream learns as its parent.
	uctx, uparams := m.upstream(ctx, params)
	rep := g.forwardCall(uctx, c, call, up, uparams, id, o)
	m.Step(metrics.StepUpstream)
	// 8. Inspect the response: an upstream's error loses what a client must not learn; a
	//    result loses, for this caller's roles, the fields and values the policy masks.
	g.sanitizeError(c, call, &rep)
	masked := g.maskResult(c, call, &rep)
	m.Step(metrics.StepInspect)
	g.markServed(ctx, &d, rep) // a served call is what a sequence quota's later call needs
	// 9. Audit the outcome, and learn from it (anomaly detection, off the request path).
	outcome := g.outcomeOf(ctx, rep)
	g.recordCallOutcome(ctx, c, call, rep, outcome, started, masked)
	g.observe(c, call, false, rep.err != nil)
	m.Done(call, metrics.DecisionAllow, outcome)
	return rep
}

// sanitizeError takes out of an error reply what the client must not learn of the systems
// behind the gateway: credentials, stack traces, internal addresses and host names, personal
// data (redact.Leaks, redact.LeaksJSON). The operational log keeps, at debug, the message with
// only its credentials removed. The data of a URLElicitationRequired error is the protocol's
// own (the URLs a user must open) and passes unchanged; its message does not.
func (g *Gateway) sanitizeError(c *caller, call *mcpguard.Call, rep *reply) {
	e := rep.err
	if e == nil {
		return
	}
	msg, st := redact.Leaks(e.Message)
	data := e.Data
	if len(data) > 0 && e.Code != mcp.CodeURLElicitationRequired {
		var dst redact.Stats
		data, dst = redact.LeaksJSON(data)
		for k, n := range dst {
			st[k] += n
		}
	}
	if len(st) == 0 {
		return
	}
	g.logger.Debug("upstream error sanitised for the client", "method", call.Method,
		"target", call.Target, "code", e.Code, "message", redact.Secrets(e.Message), "removed", st)
	rep.err = &jsonrpc.Error{Code: e.Code, Message: msg, Data: data}
}

// readCall reads a request into a Call from its params, read once (p), taking the members each
// method needs. A malformed request is answered here and goes no further.
func readCall(c *caller, msg *jsonrpc.Message, p *mcp.Params) (*mcpguard.Call, *reply) {
	call := &mcpguard.Call{Method: msg.Method, Params: msg.Params, Era: c.era, ClientAddr: c.sourceIP,
		Arguments: p.Arguments, Meta: p.Meta}
	name, uri, ref, level, cursor := p.Name, p.URI, p.Ref, p.Level, p.Cursor
	hasName, hasURI := name != nil, uri != nil
	if p.Traceparent != nil { // _meta's trace context wins over the headers'
		c.traceparent, _ = jsonrpc.String(p.Traceparent)
		ts, _ := jsonrpc.Lookup(p.Meta, mcp.MetaTracestate)
		c.tracestate, _ = jsonrpc.String(ts)
	}
	call.TraceID = traceID(c.traceparent)
	switch msg.Method {
	case mcp.MethodToolsCall, mcp.MethodPromptsGet:
		call.Kind = mcpguard.CallTool
		if msg.Method == mcp.MethodPromptsGet {
			call.Kind = mcpguard.CallPrompt
		}
		s, ok := jsonrpc.String(name)
		if !hasName || !ok || s == "" {
			return nil, invalidParams("%s needs a string \"name\"", msg.Method)
		}
		call.Target = s
		if a := call.Arguments; a != nil && string(a) != "null" && a[0] != '{' {
			return nil, invalidParams("%s: \"arguments\" must be an object", msg.Method)
		}
	case mcp.MethodResourcesRead, mcp.MethodResourcesSubscribe, mcp.MethodResourcesUnsubscribe, mcp.MethodSkillsGet:
		call.Kind = mcpguard.CallResource
		s, ok := jsonrpc.String(uri)
		if !hasURI || !ok || s == "" {
			return nil, invalidParams("%s needs a string \"uri\"", msg.Method)
		}
		call.Target = s
	case mcp.MethodCompletionComplete:
		typRaw, _ := jsonrpc.Lookup(ref, "type")
		switch typ, _ := jsonrpc.String(typRaw); typ {
		case "ref/prompt":
			raw, _ := jsonrpc.Lookup(ref, "name")
			call.Kind = mcpguard.CallPrompt
			call.Target, _ = jsonrpc.String(raw)
		case "ref/resource":
			raw, _ := jsonrpc.Lookup(ref, "uri")
			call.Kind = mcpguard.CallResource
			call.Target, _ = jsonrpc.String(raw)
		default:
			return nil, invalidParams("completion/complete needs ref.type \"ref/prompt\" or \"ref/resource\"")
		}
		if call.Target == "" {
			return nil, invalidParams("completion/complete needs ref.name (a prompt) or ref.uri (a resource)")
		}
	case mcp.MethodLoggingSetLevel:
		l, _ := jsonrpc.String(level)
		if levelIndex(l) < 0 {
			return nil, invalidParams("invalid log level %q: want one of %s", truncate(l), strings.Join(logLevels, ", "))
		}
		call.Target = l
		call.Kind = mcpguard.CallEvery
	default:
		if _, ok := listKinds[msg.Method]; !ok {
			r := methodNotFound(c, msg.Method)
			return nil, &r
		}
		if cursor != nil && string(cursor) != "null" {
			return nil, invalidParams("invalid cursor: mcpguard returns every item in one page")
		}
		call.Kind = mcpguard.CallEvery
	}
	return call, nil
}

// listKinds are the aggregated list methods.
var listKinds = map[string]listKind{
	mcp.MethodToolsList:              kindTools,
	mcp.MethodPromptsList:            kindPrompts,
	mcp.MethodResourcesList:          kindResources,
	mcp.MethodResourcesTemplatesList: kindTemplates,
	mcp.MethodSkillsList:             kindSkills,
}

func invalidParams(format string, args ...any) *reply {
	r := fail(jsonrpc.CodeInvalidParams, http.StatusBadRequest, format, args...)
	return &r
}

// route finds the upstream that serves a call and the params to send it, with the target
// renamed to the upstream's own name. A tool's arguments are checked against its inputSchema,
// a prompt's against its declared argument names. Calls to every upstream (lists,
// logging/setLevel) have no single upstream.
func (g *Gateway) route(ctx context.Context, c *caller, call *mcpguard.Call) (*upstream.Upstream, []byte, *reply) {
	params := call.Params
	switch call.Kind {
	case mcpguard.CallEvery:
		return nil, params, nil
	case mcpguard.CallTool, mcpguard.CallPrompt:
		kind, what := kindTools, "tool"
		if call.Kind == mcpguard.CallPrompt {
			kind, what = kindPrompts, "prompt"
		}
		up, orig, err := g.routeName(ctx, c, kind, call.Target)
		if err != nil {
			return nil, nil, invalidParams("unknown %s: %q", what, truncate(call.Target))
		}
		call.Upstream, call.UpstreamTarget = up.Name(), orig
		if call.Method == mcp.MethodCompletionComplete {
			ref, _ := jsonrpc.Lookup(params, "ref")
			return up, jsonrpc.SetMember(params, "ref", jsonrpc.SetMember(ref, "name", jsonrpc.Quote(orig))), nil
		}
		if r := g.checkArguments(up, call); r != nil {
			return nil, nil, r
		}
		if orig != call.Target {
			params = jsonrpc.SetMember(params, "name", jsonrpc.Quote(orig))
		}
		return up, params, nil
	default:
		if call.Method == mcp.MethodSkillsGet {
			// A skill is served only by an upstream that lists it.
			for _, up := range g.ups {
				if g.serves(ctx, c, up, kindSkills, call.Target) {
					call.Upstream, call.UpstreamTarget = up.Name(), call.Target
					return up, params, nil
				}
			}
			return nil, nil, invalidParams("unknown skill: %q", truncate(call.Target))
		}
		up, err := g.routeURI(ctx, c, call.Target)
		if err != nil {
			if call.Method == mcp.MethodCompletionComplete {
				return nil, nil, invalidParams("unknown resource: %q", truncate(call.Target))
			}
			code := int64(mcp.CodeResourceNotFoundLegacy)
			if c.era == mcpguard.EraModern || call.Method == mcp.MethodSkillsGet {
				code = jsonrpc.CodeInvalidParams
			}
			return nil, nil, &reply{err: &jsonrpc.Error{Code: code, Message: "resource not found", Data: []byte(`{"uri":` + string(jsonrpc.Quote(call.Target)) + `}`)}}
		}
		call.Upstream, call.UpstreamTarget = up.Name(), call.Target
		return up, params, nil
	}
}

// checkArguments refuses arguments that do not match the target's definition: for a tool, its
// inputSchema (and no member named like a declared property except for case or Unicode form);
// for a prompt, no argument named like a declared one. A tool's violation is answered as the
// specification asks for input validation errors: a tool result with isError, never forwarded.
// A tool without an inputSchema has only the policy's checks; a tool whose inputSchema cannot
// be compiled is refused, since nothing can tell what its arguments mean (docs/policy.md).
func (g *Gateway) checkArguments(up *upstream.Upstream, call *mcpguard.Call) *reply {
	if call.Kind == mcpguard.CallPrompt {
		args, err := toolschema.DecodeParsed(call.Arguments)
		if err != nil {
			return invalidParams("%v", err)
		}
		if name, like := toolschema.LookAlike(args, g.cat.promptArguments(up, call.UpstreamTarget)); name != "" {
			return invalidParams("argument %s is not the declared %s: names that differ only in case or Unicode form are refused", jsonrpc.Quote(name), jsonrpc.Quote(like))
		}
		return nil
	}
	s, err := g.cat.inputSchema(up, call.UpstreamTarget)
	if errors.Is(err, toolschema.ErrNoSchema) {
		return nil
	}
	if err != nil {
		return &reply{err: jsonrpc.NewError(mcpguard.CodeUpstreamBadReply, "tool "+truncate(call.Target)+" cannot be called: its "+err.Error()+"; mcpguard does not forward calls it cannot check"), status: http.StatusBadGateway}
	}
	args, err := toolschema.DecodeParsed(call.Arguments)
	if err == nil {
		err = s.Check(args)
	}
	if err != nil {
		return &reply{result: toolError(err.Error()), refusal: err.Error()}
	}
	call.Args, _ = args.(map[string]any) // the policy reads the same decoded arguments
	return nil
}

// toolError is a CallToolResult reporting a tool execution error.
func toolError(text string) []byte {
	return append(append([]byte(`{"content":[{"type":"text","text":`), jsonrpc.Quote(text)...), `}],"isError":true}`...)
}

// decide asks the policy about a call. Calls to every upstream (the lists, logging/setLevel) are
// allowed to a principal the policy gives some role — a list then shows only what the caller
// may use — and refused to one it gives none (default deny).
func (g *Gateway) decide(ctx context.Context, c *caller, call *mcpguard.Call) policy.Decision {
	if g.policy == nil {
		d := policy.Decision{Allow: true}
		if call.Kind != mcpguard.CallEvery && call.Method != mcp.MethodCompletionComplete {
			g.anomalyApproval(c, &d)
		}
		return d
	}
	p := g.policy.Policy()
	pr := *c.principal
	if call.Kind == mcpguard.CallEvery {
		if len(p.Roles(pr)) == 0 {
			return policy.Decision{Rule: policy.RuleDefaultDeny, Reasons: []string{"no role of the policy applies to " + pr.Subject}}
		}
		return policy.Decision{Allow: true}
	}
	pc := policy.Call{Name: call.Target, Arguments: call.Arguments, Args: call.Args, Time: g.now(), SourceIP: c.sourceIP}
	switch call.Kind {
	case mcpguard.CallTool:
		pc.Kind = policy.KindTool
	case mcpguard.CallPrompt:
		pc.Kind = policy.KindPrompt
	default:
		pc.Kind = policy.KindResource
	}
	if call.Method == mcp.MethodCompletionComplete {
		// A completion suggests values for an argument; it is not the call itself. It is
		// decided like the prompt or resource it completes, conditions and all, but without
		// the argument constraints and without waiting for an approval.
		pc.Arguments, pc.Args, pc.Completion = nil, nil, true
	}
	d := p.Decide(pr, pc)
	if !pc.Completion {
		g.anomalyApproval(c, &d)
	}
	if d.Allow && d.RequireApproval != nil && g.noApprover != "" {
		// Without the admin API or operators nobody can approve: refuse, never let the call through.
		d.Allow = false
		d.Reasons = append(d.Reasons, "requires approval by "+d.RequireApproval.ApproverRole+", and "+g.noApprover)
	}
	if g.logger.Enabled(ctx, slog.LevelDebug) { // the arguments cost a dozen allocations a call
		g.logger.Debug("policy decision", "principal", pr.Subject, "method", call.Method, "target", call.Target,
			"allow", d.Allow, "rule", d.Rule, "reasons", strings.Join(d.Reasons, "; "))
	}
	return d
}

// denial is the answer to a call the policy refused: 403 with -31001, "denied by policy", the
// rule and the reasons.
func denial(d policy.Decision) reply {
	data := []byte(`{}`)
	data = jsonrpc.SetMember(data, "rule", jsonrpc.Quote(d.Rule))
	reasons := []byte{'['}
	for i, r := range d.Reasons {
		if i > 0 {
			reasons = append(reasons, ',')
		}
		reasons = jsonrpc.AppendQuote(reasons, r)
	}
	data = jsonrpc.SetMember(data, "reasons", append(reasons, ']'))
	msg := "denied by policy (rule " + d.Rule + ")"
	if len(d.Reasons) > 0 {
		msg += ": " + strings.Join(d.Reasons, "; ")
	}
	return reply{err: &jsonrpc.Error{Code: mcpguard.CodeDeniedByPolicy, Message: msg, Data: data}, status: http.StatusForbidden}
}

// forwardCall sends the call to its upstream — or, for the lists and logging/setLevel, to every
// upstream — and relays the outcome.
func (g *Gateway) forwardCall(ctx context.Context, c *caller, call *mcpguard.Call, up *upstream.Upstream, params []byte, id jsonrpc.ID, o out) reply {
	if up == nil {
		if call.Method == mcp.MethodLoggingSetLevel {
			return g.setLevel(ctx, c, call.Target)
		}
		res, streamed, err := g.list(ctx, c, listKinds[call.Method])
		if err != nil {
			return errorReply(err)
		}
		return reply{result: res, streamed: streamed}
	}
	r := g.forward(ctx, c, up, &jsonrpc.Message{ID: id, Method: call.Method}, params, o)
	if r.err == nil && c.sess != nil {
		switch call.Method {
		case mcp.MethodResourcesSubscribe:
			c.sess.subscribe(call.Target, true)
		case mcp.MethodResourcesUnsubscribe:
			c.sess.subscribe(call.Target, false)
		}
	}
	return r
}

// setLevel records a legacy session's log level, which the gateway filters log notifications
// by, and raises the level of every legacy upstream that logs in the background, each call
// within the upstream's deadline: the answer never waits for an upstream, up or down.
func (g *Gateway) setLevel(ctx context.Context, c *caller, level string) reply {
	if c.sess != nil {
		c.sess.setLogLevel(level)
	}
	for _, up := range g.ups {
		go g.raiseUpstreamLevel(context.WithoutCancel(ctx), up)
	}
	return reply{result: []byte(`{}`)}
}

// traceID is the trace-id of a W3C traceparent ("00-<32 hex>-<16 hex>-<2 hex>"), or "" when
// traceparent is not one.
func traceID(traceparent string) string {
	if len(traceparent) != 55 || traceparent[2] != '-' || traceparent[35] != '-' || traceparent[52] != '-' {
		return ""
	}
	id := traceparent[3:35]
	zero := true
	for i := 0; i < len(traceparent); i++ {
		if i == 2 || i == 35 || i == 52 {
			continue
		}
		c := traceparent[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return ""
		}
		if i >= 3 && i < 35 && c != '0' {
			zero = false
		}
	}
	if zero || traceparent[:2] == "ff" {
		return ""
	}
	return id
}
