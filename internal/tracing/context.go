package tracing

import (
	"context"
	"encoding/hex"
	"net/http"

	"go.opentelemetry.io/otel/trace"
)

// The W3C Trace Context (https://www.w3.org/TR/trace-context/) a call brings and carries on:
// clients send it as the traceparent and tracestate headers or as the members of the same names
// in params._meta; upstreams get the upstream step's span as both.

// Header names of the W3C trace context.
const (
	HeaderTraceparent = "Traceparent"
	HeaderTracestate  = "Tracestate"
)

// ParseTraceparent reads a traceparent value: "<version>-<trace-id>-<parent-id>-<flags>", in
// lower-case hex, 2-32-16-2 digits. It reports false for anything else: version ff, a trace-id
// or parent-id of zeros, version 00 with more fields or with flags beyond sampled and random. A
// later version may have more fields after the flags, which are ignored, as the specification
// asks. Of the flags only sampled and random are kept. It allocates nothing.
func ParseTraceparent(s string) (trace.SpanContextConfig, bool) {
	var c trace.SpanContextConfig
	if len(s) < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return c, false
	}
	var ver, flags [1]byte
	if !unhex(ver[:], s[0:2]) || ver[0] == 0xff ||
		!unhex(c.TraceID[:], s[3:35]) || !unhex(c.SpanID[:], s[36:52]) || !unhex(flags[:], s[53:55]) {
		return c, false
	}
	switch {
	case ver[0] == 0 && (len(s) != 55 || flags[0] > 3):
		return c, false
	case len(s) > 55 && s[55] != '-':
		return c, false
	case !c.TraceID.IsValid() || !c.SpanID.IsValid():
		return c, false
	}
	c.TraceFlags = trace.TraceFlags(flags[0]) & (trace.FlagsSampled | trace.FlagsRandom)
	return c, true
}

// unhex decodes the lower-case hex src into dst (len(src) == 2*len(dst)).
func unhex(dst []byte, src string) bool {
	for i := range dst {
		hi, lo := unhexDigit(src[2*i]), unhexDigit(src[2*i+1])
		if hi > 15 || lo > 15 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func unhexDigit(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return 0xff
}

// remoteParent is the span context a client sent: traceparent, and tracestate when it is valid
// (an invalid tracestate is dropped, the traceparent kept, as the specification asks). ok is
// false when traceparent is absent or invalid: the call then starts its own trace.
func remoteParent(traceparent, tracestate string) (sc trace.SpanContext, ok bool) {
	c, ok := ParseTraceparent(traceparent)
	if !ok {
		return sc, false
	}
	if tracestate != "" {
		c.TraceState, _ = trace.ParseTraceState(tracestate)
	}
	c.Remote = true
	return trace.NewSpanContext(c), true
}

// FormatTraceparent is the version 00 traceparent of a span context.
func FormatTraceparent(sc trace.SpanContext) string {
	var b [55]byte
	b[0], b[1], b[2] = '0', '0', '-'
	tid, sid := sc.TraceID(), sc.SpanID()
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{byte(sc.TraceFlags() & (trace.FlagsSampled | trace.FlagsRandom))})
	return string(b[:])
}

// Outgoing is the trace context an upstream request made under ctx carries: the traceparent and
// tracestate of ctx's span (the upstream step's), or of the client's context when the call is
// not traced; "" when ctx has neither.
func Outgoing(ctx context.Context) (traceparent, tracestate string) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return "", ""
	}
	return FormatTraceparent(sc), sc.TraceState().String()
}

// Transport returns rt adding to each request made under a trace context (Outgoing) its
// traceparent and tracestate headers, in place of any the request had. Requests without one
// pass unchanged, and unchanged in cost. A nil rt means http.DefaultTransport.
func Transport(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	return &transport{next: rt}
}

type transport struct{ next http.RoundTripper }

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	tp, ts := Outgoing(req.Context())
	if tp == "" {
		return t.next.RoundTrip(req)
	}
	// A RoundTripper must not change the request it is given.
	r := req.Clone(req.Context())
	r.Header.Set(HeaderTraceparent, tp)
	if ts != "" {
		r.Header.Set(HeaderTracestate, ts)
	} else {
		r.Header.Del(HeaderTracestate)
	}
	return t.next.RoundTrip(r)
}

// CloseIdleConnections passes on to the wrapped transport, so that http.Client's reaches it.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
