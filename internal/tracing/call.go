package tracing

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// A Call is the trace of one call: a span for the call, a child span for each step it passes
// (Step), and the attributes it ends with (End). A step's span runs from the end of the step
// before it (or the call's start) to Step; the one step whose span must exist while it runs —
// the upstream's, whose traceparent the upstream gets — is opened with Open and ended by the
// next Step. The zero Call (a nil Tracer, or a call not sampled) does nothing and allocates
// nothing. A Call belongs to one goroutine.
type Call struct {
	t    *Tracer
	span trace.Span // nil: not traced
	ctx  context.Context
	mark time.Time     // when the previous step ended
	open trace.Span    // the step opened with Open, until the next Step
	tid  trace.TraceID // the call span's trace
}

// Begin decides whether a call is traced and, when it is, starts its span, named name (the
// method), as a server span under the client's context (traceparent and tracestate, either
// possibly ""). The returned context carries the call's span, or — when the call is not traced
// but the client sent a valid traceparent — the client's context, which upstreams then get
// unchanged.
func (t *Tracer) Begin(ctx context.Context, name, traceparent, tracestate string) (context.Context, Call) {
	if t == nil {
		return ctx, Call{}
	}
	sampled := false
	if traceparent != "" {
		if sc, ok := remoteParent(traceparent, tracestate); ok {
			ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
			sampled = sc.IsSampled()
			if !sampled {
				return ctx, Call{}
			}
		}
	}
	if !sampled && !t.sample() {
		return ctx, Call{}
	}
	now := time.Now()
	ctx, span := t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(now))
	return ctx, Call{t: t, span: span, ctx: ctx, mark: now, tid: span.SpanContext().TraceID()}
}

// Traced reports whether the call has a span.
func (c *Call) Traced() bool { return c.span != nil }

// TraceID is the call span's trace ID in hex, "" when the call is not traced.
func (c *Call) TraceID() string {
	if c.span == nil {
		return ""
	}
	return c.tid.String()
}

// Step ends the step named name: the step opened with Open, or else a span from the previous
// step's end to now.
func (c *Call) Step(name string) {
	if c.span == nil {
		return
	}
	now := time.Now()
	if c.open != nil {
		c.open.End(trace.WithTimestamp(now))
		c.open = nil
	} else {
		_, s := c.t.tracer.Start(c.ctx, name, trace.WithTimestamp(c.mark))
		s.End(trace.WithTimestamp(now))
	}
	c.mark = now
}

// Open starts the span of the step named name, a client span, and returns ctx carrying it: what
// is sent under that context (Transport, Outgoing) names the step's span as its parent. The next
// Step ends it.
func (c *Call) Open(ctx context.Context, name string) context.Context {
	if c.span == nil {
		return ctx
	}
	if c.open != nil {
		c.open.End(trace.WithTimestamp(c.mark))
	}
	ctx, c.open = c.t.tracer.Start(trace.ContextWithSpan(ctx, c.span), name,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(c.mark))
	return ctx
}

// Attributes are what a call's span ends with: who called what, what the gateway decided, what
// came of it. Nothing of the call's arguments or result, and no credential, belongs here.
type Attributes struct {
	Method    string // the JSON-RPC method
	Principal string // the authenticated subject, "anonymous" without authentication
	Tool      string // the tool or prompt as the gateway lists it; "" for others
	Upstream  string // the configured upstream that served the call; "" when none
	Decision  string // the policy's: allow, deny, or none when a step before it answered
	Outcome   string // what became of the call (docs/tracing.md lists them)
	Failed    bool   // the call failed on the gateway's or the upstream's side
}

// Attribute keys of a call's span.
const (
	KeyMethod    = "mcp.method.name"
	KeyPrincipal = "enduser.id"
	KeyTool      = "gen_ai.tool.name"
	KeyUpstream  = "mcpguard.upstream"
	KeyDecision  = "mcpguard.decision"
	KeyOutcome   = "mcpguard.outcome"
)

// End ends the call's span (and a step left open) with a.
func (c *Call) End(a Attributes) {
	if c.span == nil {
		return
	}
	now := time.Now()
	if c.open != nil {
		c.open.End(trace.WithTimestamp(now))
		c.open = nil
	}
	kv := make([]attribute.KeyValue, 0, 6)
	kv = append(kv, attribute.String(KeyMethod, a.Method), attribute.String(KeyPrincipal, a.Principal),
		attribute.String(KeyDecision, a.Decision), attribute.String(KeyOutcome, a.Outcome))
	for _, opt := range [...]struct{ k, v string }{{KeyTool, a.Tool}, {KeyUpstream, a.Upstream}} {
		if opt.v != "" {
			kv = append(kv, attribute.String(opt.k, opt.v))
		}
	}
	c.span.SetAttributes(kv...)
	if a.Failed {
		c.span.SetStatus(codes.Error, a.Outcome)
	}
	c.span.End(trace.WithTimestamp(now))
	c.span = nil
}
