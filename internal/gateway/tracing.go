package gateway

import (
	"context"
	"net/http"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcp"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/metrics"
	"github.com/mcpguard/mcpguard/internal/tracing"
)

// The traces (internal/tracing, docs/tracing.md): the pipeline's steps are measured and traced
// at the same points (probe), so each step of pipeline.go has a span as it has a histogram. A
// call's trace context comes from its client — the traceparent and tracestate headers, or the
// members of those names in params._meta, which win (readCall) — and goes on to its upstream as
// the upstream step's span: in the HTTP headers of every request made for the call
// (tracing.Transport, installed on each HTTP upstream's client) and in params._meta. Without
// tracing g.tracer is nil and every one of these is a nil check; a call not sampled creates no
// span.

// probe measures and traces one call through the pipeline: the metrics' step times and the
// trace's spans, at the same points. The zero parts of either do nothing.
type probe struct {
	m         metrics.Call
	t         tracing.Call
	principal string
}

// beginCall starts measuring and tracing a call at its first step. The context it returns
// carries the call's span (or the client's trace context, when the call is not traced): the
// steps run under it. When the call is traced, its audit records carry the span's trace ID.
func (g *Gateway) beginCall(ctx context.Context, c *caller, call *mcpguard.Call) (context.Context, probe) {
	p := probe{m: g.metrics.Begin()}
	if g.tracer == nil {
		return ctx, p
	}
	ctx, p.t = g.tracer.Begin(ctx, call.Method, c.traceparent, c.tracestate)
	if p.t.Traced() {
		call.TraceID = p.t.TraceID()
		if c.principal != nil {
			p.principal = c.principal.Subject
		}
	}
	return ctx, p
}

// Step ends step s.
func (p *probe) Step(s metrics.Step) {
	p.m.Step(s)
	p.t.Step(s.String())
}

// upstream begins the upstream step: the context it returns carries the step's span, which the
// upstream learns as its parent; params gets the same trace context in its _meta.
func (p *probe) upstream(ctx context.Context, params []byte) (context.Context, []byte) {
	ctx = p.t.Open(ctx, metrics.StepUpstream.String())
	if params == nil {
		return ctx, params
	}
	tp, ts := tracing.Outgoing(ctx)
	if tp == "" {
		return ctx, params
	}
	meta, ok := jsonrpc.Lookup(params, "_meta")
	if !ok || len(meta) == 0 || meta[0] != '{' {
		meta = []byte(`{}`)
	}
	meta = jsonrpc.SetMember(meta, mcp.MetaTraceparent, jsonrpc.Quote(tp))
	if ts != "" {
		meta = jsonrpc.SetMember(meta, mcp.MetaTracestate, jsonrpc.Quote(ts))
	} else {
		meta = jsonrpc.DeleteMember(meta, mcp.MetaTracestate)
	}
	return ctx, jsonrpc.SetMember(params, "_meta", meta)
}

// Done counts the call and ends its span with what the gateway decided and what came of it.
func (p *probe) Done(call *mcpguard.Call, d metrics.Decision, o metrics.Outcome) {
	p.m.Done(call, d, o)
	if !p.t.Traced() {
		return
	}
	a := tracing.Attributes{Method: call.Method, Principal: p.principal, Upstream: call.Upstream, Outcome: string(o)}
	if call.Upstream != "" && (call.Kind == mcpguard.CallTool || call.Kind == mcpguard.CallPrompt) {
		a.Tool = call.Target // found in the upstream's list by the route step: never a name only a client sent
	}
	switch d {
	case metrics.DecisionAllow:
		a.Decision = "allow"
	case metrics.DecisionDeny:
		a.Decision = "deny"
	default:
		a.Decision = "none"
	}
	switch o {
	case metrics.OutcomeError, metrics.OutcomeTimeout, metrics.OutcomeUpstreamDown, metrics.OutcomeAuditUnavailable:
		a.Failed = true
	}
	p.t.End(a)
}

// wrapTransport is the upstreams' HTTP transport wrapper: the trace context's propagation when
// tracing is on, none otherwise.
func wrapTransport(t *tracing.Tracer) func(http.RoundTripper) http.RoundTripper {
	if t == nil {
		return nil
	}
	return tracing.Transport
}
