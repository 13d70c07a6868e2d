package tracing

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// newTestTracer is a Tracer at ratio keeping its spans in memory; flush exports what is queued.
func newTestTracer(t *testing.T, ratio float64) (tr *Tracer, spans func() tracetest.SpanStubs) {
	t.Helper()
	mem := tracetest.NewInMemoryExporter()
	tr, err := New(&Options{SampleRatio: ratio, Exporter: mem})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Shutdown(context.Background()) })
	return tr, func() tracetest.SpanStubs {
		if err := tr.provider.ForceFlush(t.Context()); err != nil {
			t.Fatal(err)
		}
		return mem.GetSpans()
	}
}

func byName(spans tracetest.SpanStubs) map[string]tracetest.SpanStub {
	m := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		m[s.Name] = s
	}
	return m
}

// TestCallSpans: a traced call is a server span under the client's span, with a child per step;
// the upstream step's span is the parent an upstream hears of; the call's attributes are the ones
// given to End and nothing else.
func TestCallSpans(t *testing.T) {
	tr, spans := newTestTracer(t, 0) // ratio 0: the client's sampled flag decides
	ctx, c := tr.Begin(t.Context(), "tools/call", validTraceparent, "vendor=abc")
	if !c.Traced() {
		t.Fatal("a call whose client sent a sampled traceparent is not traced")
	}
	if c.TraceID() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("TraceID = %q, want the client's trace", c.TraceID())
	}
	c.Step("route")
	c.Step("decide")
	uctx := c.Open(ctx, "upstream")
	sent, state := Outgoing(uctx)
	c.Step("upstream")
	c.Step("inspect")
	c.End(Attributes{Method: "tools/call", Principal: "alice", Tool: "finance.get_quote", Upstream: "finance", Decision: "allow", Outcome: "ok"})

	got := byName(spans())
	call, ok := got["tools/call"]
	if !ok || len(got) != 5 {
		t.Fatalf("spans %v, want the call and its 4 steps", got)
	}
	if call.Parent.SpanID().String() != "00f067aa0ba902b7" || !call.Parent.IsRemote() || call.SpanKind != trace.SpanKindServer {
		t.Errorf("call span: parent %v remote %v kind %v; want the client's span, remote, server", call.Parent.SpanID(), call.Parent.IsRemote(), call.SpanKind)
	}
	for _, name := range []string{"route", "decide", "upstream", "inspect"} {
		s := got[name]
		if s.Parent.SpanID() != call.SpanContext.SpanID() || s.SpanContext.TraceID() != call.SpanContext.TraceID() {
			t.Errorf("step %s: parent %v, want the call's span %v", name, s.Parent.SpanID(), call.SpanContext.SpanID())
		}
		if s.StartTime.Before(call.StartTime) || s.EndTime.After(call.EndTime) || s.EndTime.Before(s.StartTime) {
			t.Errorf("step %s runs %v–%v, outside the call's %v–%v", name, s.StartTime, s.EndTime, call.StartTime, call.EndTime)
		}
	}
	if got["decide"].StartTime != got["route"].EndTime {
		t.Errorf("decide starts at %v, want where route ended (%v)", got["decide"].StartTime, got["route"].EndTime)
	}
	up := got["upstream"]
	if want := FormatTraceparent(up.SpanContext); sent != want || state != "vendor=abc" {
		t.Errorf("the upstream hears traceparent %q tracestate %q; want the upstream step's %q and the client's state", sent, state, want)
	}
	if up.SpanKind != trace.SpanKindClient {
		t.Errorf("upstream step kind %v, want client", up.SpanKind)
	}
	want := map[attribute.Key]string{KeyMethod: "tools/call", KeyPrincipal: "alice", KeyTool: "finance.get_quote",
		KeyUpstream: "finance", KeyDecision: "allow", KeyOutcome: "ok"}
	if len(call.Attributes) != len(want) {
		t.Errorf("call attributes %v, want exactly %v", call.Attributes, want)
	}
	for _, kv := range call.Attributes {
		if want[kv.Key] != kv.Value.AsString() {
			t.Errorf("attribute %s = %q, want %q", kv.Key, kv.Value.AsString(), want[kv.Key])
		}
	}
}

// TestUnsampledCallsMakeNoSpan: at ratio 0 a call without a client context is not traced and
// costs no allocation; a client's unsampled context is not traced but reaches the upstream as it
// came; a malformed one is ignored.
func TestUnsampledCallsMakeNoSpan(t *testing.T) {
	tr, spans := newTestTracer(t, 0)
	ctx := t.Context()
	allocs := testing.AllocsPerRun(200, func() {
		cctx, c := tr.Begin(ctx, "tools/call", "", "")
		c.Step("route")
		uctx := c.Open(cctx, "upstream")
		c.Step("upstream")
		c.End(Attributes{Method: "tools/call", Outcome: "ok"})
		_ = uctx
	})
	if allocs != 0 {
		t.Errorf("an unsampled call allocates %v times, want 0", allocs)
	}

	unsampled := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
	cctx, c := tr.Begin(ctx, "tools/call", unsampled, "vendor=abc")
	if c.Traced() {
		t.Error("a call whose client's context says not sampled is traced")
	}
	if tp, ts := Outgoing(c.Open(cctx, "upstream")); tp != unsampled || ts != "vendor=abc" {
		t.Errorf("the upstream hears %q %q, want the client's context unchanged", tp, ts)
	}

	cctx, c = tr.Begin(ctx, "tools/call", "00-zz-bad", "")
	if tp, _ := Outgoing(cctx); c.Traced() || tp != "" {
		t.Errorf("a malformed traceparent: traced %v, upstream hears %q; want neither", c.Traced(), tp)
	}
	if n := len(spans()); n != 0 {
		t.Errorf("%d spans exported, want none", n)
	}
}

// TestSampleRatio: ratio 1 traces every call without a client context, and a trace of its own.
func TestSampleRatio(t *testing.T) {
	tr, spans := newTestTracer(t, 1)
	_, c := tr.Begin(t.Context(), "tools/list", "", "")
	if !c.Traced() {
		t.Fatal("ratio 1: the call is not traced")
	}
	c.End(Attributes{Method: "tools/list"})
	if s := spans(); len(s) != 1 || s[0].Parent.IsValid() {
		t.Errorf("spans %v, want one root span", s)
	}
	half, err := New(&Options{SampleRatio: 0.5, Exporter: Discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer half.Shutdown(context.Background())
	n := 0
	for range 2000 {
		if half.sample() {
			n++
		}
	}
	if n < 800 || n > 1200 {
		t.Errorf("ratio 0.5 sampled %d of 2000 calls", n)
	}
	for _, bad := range []float64{-0.1, 1.5} {
		if _, err := New(&Options{SampleRatio: bad, Exporter: Discard()}); err == nil {
			t.Errorf("ratio %v accepted", bad)
		}
	}
}

// TestExportFailuresNeverReachCalls: a receiver that refuses every export costs calls nothing:
// they are traced and answered while exports fail, which are counted.
func TestExportFailuresNeverReachCalls(t *testing.T) {
	var posts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		http.Error(w, "no", http.StatusBadRequest) // not retried: one failure per export
	}))
	defer srv.Close()
	var log strings.Builder
	tr, err := New(&Options{Endpoint: srv.URL + "/v1/traces", SampleRatio: 1, Timeout: 2 * time.Second, MaxQueue: 64,
		Logger: newLogger(&log)})
	if err != nil {
		t.Fatal(err)
	}
	for range 500 { // far more than the queue holds
		_, c := tr.Begin(t.Context(), "tools/call", "", "")
		c.Step("route")
		c.End(Attributes{Method: "tools/call"})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if posts.Load() == 0 || tr.ExportFailures() == 0 {
		t.Fatalf("receiver saw %d exports, %d failures counted; want both", posts.Load(), tr.ExportFailures())
	}
	if n := strings.Count(log.String(), "trace export failed"); n != 1 {
		t.Errorf("%d warnings for %d failed exports, want one (rate limited):\n%s", n, tr.ExportFailures(), log.String())
	}
}

var _ sdktrace.SpanExporter = discard{}

// newLogger logs at warn and above to w.
func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
