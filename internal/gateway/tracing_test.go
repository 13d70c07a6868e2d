package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/mcpguard/mcpguard/cmd/mcpguard/wiring"
	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/demo"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/metrics"
	"github.com/mcpguard/mcpguard/internal/tracing"
)

// clientTraceparent is the trace context the tests' client sends: trace 4bf9…4736, its own span
// 00f0…02b7, sampled.
const (
	clientTraceID     = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpanID      = "00f067aa0ba902b7"
	clientTraceparent = "00-" + clientTraceID + "-" + clientSpanID + "-01"
)

// secretArgument is a tool argument that must appear in no span.
const secretArgument = "VNM"

// tracedSteps are the steps of a tools/call that the policy allows without approval, each of
// which has its span under the call's.
var tracedSteps = []string{"route", "contain", "pin", "decide", "limit", "audit_append", "upstream", "inspect"}

// tracedGateway is the demo finance server, over HTTP, behind a gateway with tracing, a policy
// allowing anonymous callers every tool, and the audit log. The upstream records the trace
// context of every tools/call it receives.
type tracedGateway struct {
	url, db string
	mu      sync.Mutex
	heard   []heardTrace
}

// heardTrace is the trace context an upstream received with one tools/call.
type heardTrace struct {
	header, meta string // the traceparent header and params._meta.traceparent
}

func newTracedGateway(t *testing.T, tracingYAML string, opts *wiring.Options) *tracedGateway {
	t.Helper()
	tg := &tracedGateway{}
	demoHandler := demo.HTTPHandler(nil)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var msg struct {
				Method string `json:"method"`
				Params struct {
					Meta struct {
						Traceparent string `json:"traceparent"`
					} `json:"_meta"`
				} `json:"params"`
			}
			if json.Unmarshal(body, &msg) == nil && msg.Method == "tools/call" {
				tg.mu.Lock()
				tg.heard = append(tg.heard, heardTrace{header: r.Header.Get("Traceparent"), meta: msg.Params.Meta.Traceparent})
				tg.mu.Unlock()
			}
		}
		demoHandler.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	tg.url, tg.db = startFinanceGateway(t, up.URL, `
roles:
  - role: All
    permissions:
      - tool_name: "*"
bindings:
  - role: All
    principals: [anonymous]
`, tracingYAML, "tracing.yaml", opts)
	return tg
}

// call makes one tools/call of finance.get_stock_analysis in a legacy session, with the
// traceparent header when traceparent is not "".
func (tg *tracedGateway) call(t *testing.T, traceparent string) {
	t.Helper()
	st, h, msg := post(t, tg.url, nil, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	if st != http.StatusOK {
		t.Fatalf("initialize: %d %v", st, msg)
	}
	headers := map[string]string{"Mcp-Session-Id": h.Get("Mcp-Session-Id"), "MCP-Protocol-Version": "2025-11-25"}
	if traceparent != "" {
		headers["Traceparent"] = traceparent
	}
	st, _, msg = post(t, tg.url, headers, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"finance.get_stock_analysis","arguments":{"symbol":"`+secretArgument+`"}}}`)
	if res, _ := msg["result"].(map[string]any); st != http.StatusOK || res == nil || res["isError"] == true {
		t.Fatalf("tools/call: %d %v", st, msg)
	}
}

// lastHeard is the trace context the upstream received with the last tools/call.
func (tg *tracedGateway) lastHeard(t *testing.T) heardTrace {
	t.Helper()
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if len(tg.heard) == 0 {
		t.Fatal("the upstream received no tools/call")
	}
	return tg.heard[len(tg.heard)-1]
}

// auditTraceID is the trace_id of the audit log's one tools/call record.
func (tg *tracedGateway) auditTraceID(t *testing.T) string {
	t.Helper()
	recs := recordsOf(t, tg.db, audit.KindToolCall)
	if len(recs) != 1 {
		t.Fatalf("%d tools/call records in the audit log, want 1", len(recs))
	}
	return recs[0].TraceID
}

// TestTracingSpansOfOneCall: with tracing on, one tools/call whose client sent a traceparent is a
// span under the client's span with a child per pipeline step; the upstream hears the upstream
// step's span as its parent, in its headers and in _meta; the audit record carries the trace;
// the call's span names the principal, the tool and the decision, and nothing of the arguments.
func TestTracingSpansOfOneCall(t *testing.T) {
	mem := tracetest.NewInMemoryExporter()
	tg := newTracedGateway(t, "tracing: {endpoint: \"http://127.0.0.1:9/v1/traces\", sample_ratio: 0}", &wiring.Options{TraceExporter: mem})
	tg.call(t, clientTraceparent) // ratio 0: the client's sampled flag alone makes it traced

	spans := waitForSpans(t, mem, "tools/call")
	var call tracetest.SpanStub
	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		if s.Name == "tools/call" {
			call = s
		}
		byName[s.Name] = s
	}
	if got := call.Parent.SpanID().String(); got != clientSpanID || call.SpanContext.TraceID().String() != clientTraceID {
		t.Errorf("call span: trace %s parent %s; want the client's trace %s and span %s", call.SpanContext.TraceID(), got, clientTraceID, clientSpanID)
	}
	for _, step := range tracedSteps {
		s, ok := byName[step]
		if !ok {
			t.Errorf("no span for step %s (spans: %v)", step, names(spans))
			continue
		}
		if s.Parent.SpanID() != call.SpanContext.SpanID() {
			t.Errorf("step %s: parent %s, want the call's span %s", step, s.Parent.SpanID(), call.SpanContext.SpanID())
		}
	}
	heard := tg.lastHeard(t)
	want := tracing.FormatTraceparent(byName["upstream"].SpanContext)
	if heard.header != want || heard.meta != want {
		t.Errorf("the upstream heard traceparent header %q, _meta %q; want the upstream step's %s in both", heard.header, heard.meta, want)
	}
	if id := tg.auditTraceID(t); id != clientTraceID {
		t.Errorf("audit record trace_id %q, want the call span's trace %s", id, clientTraceID)
	}
	attrs := map[string]string{}
	for _, kv := range call.Attributes {
		attrs[string(kv.Key)] = kv.Value.String()
	}
	for k, v := range map[string]string{tracing.KeyPrincipal: "anonymous", tracing.KeyTool: "finance.get_stock_analysis",
		tracing.KeyDecision: "allow", tracing.KeyUpstream: "finance", tracing.KeyOutcome: "ok", tracing.KeyMethod: "tools/call"} {
		if attrs[k] != v {
			t.Errorf("call span attribute %s = %q, want %q", k, attrs[k], v)
		}
	}
	for _, s := range spans {
		for _, kv := range s.Attributes {
			if strings.Contains(kv.Value.String(), secretArgument) {
				t.Errorf("span %s attribute %s carries the call's argument: %q", s.Name, kv.Key, kv.Value.String())
			}
		}
	}
}

// TestTracingWithoutClientContext: at ratio 1 a call whose client sent no trace context starts
// its own trace, which its audit record names; at ratio 0 it is not traced, and the upstream
// hears no trace context.
func TestTracingWithoutClientContext(t *testing.T) {
	mem := tracetest.NewInMemoryExporter()
	tg := newTracedGateway(t, "tracing: {endpoint: \"http://127.0.0.1:9/v1/traces\"}", &wiring.Options{TraceExporter: mem})
	tg.call(t, "")
	spans := waitForSpans(t, mem, "tools/call")
	i := slices.IndexFunc(spans, func(s tracetest.SpanStub) bool { return s.Name == "tools/call" })
	if spans[i].Parent.IsValid() {
		t.Errorf("call span has parent %v; want a root span", spans[i].Parent)
	}
	if id, want := tg.auditTraceID(t), spans[i].SpanContext.TraceID().String(); id != want {
		t.Errorf("audit record trace_id %q, want the call span's trace %s", id, want)
	}

	off := newTracedGateway(t, "tracing: {endpoint: \"http://127.0.0.1:9/v1/traces\", sample_ratio: 0}", &wiring.Options{TraceExporter: tracing.Discard()})
	off.call(t, "")
	if h := off.lastHeard(t); h.header != "" || h.meta != "" {
		t.Errorf("an untraced call without client context: the upstream heard %+v", h)
	}
	if id := off.auditTraceID(t); id != "" {
		t.Errorf("an untraced call's audit record has trace_id %q", id)
	}
}

// waitForSpans returns the spans exported once the span named last (the call's, which ends
// after its steps) is among them.
func waitForSpans(t *testing.T, mem *tracetest.InMemoryExporter, last string) tracetest.SpanStubs {
	t.Helper()
	var spans tracetest.SpanStubs
	eventually(t, "the call's span exported", func() bool {
		spans = mem.GetSpans()
		return slices.ContainsFunc(spans, func(s tracetest.SpanStub) bool { return s.Name == last })
	})
	return spans
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

// TestUnsampledCallAllocatesNothing: with tracing on, a call that is not sampled passes every
// tracing hook of the pipeline — its begin, its steps, the upstream's trace context, its end —
// without an allocation.
func TestUnsampledCallAllocatesNothing(t *testing.T) {
	tr, err := tracing.New(&tracing.Options{SampleRatio: 0, Exporter: tracing.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown(context.Background())
	g := &Gateway{tracer: tr}
	c := &caller{principal: anonymousPrincipal}
	call := &mcpguard.Call{Method: "tools/call", Kind: mcpguard.CallTool, Target: "finance.get_stock_analysis", Upstream: "finance"}
	params := []byte(`{"name":"get_stock_analysis","arguments":{"symbol":"VNM"}}`)
	ctx := t.Context()
	allocs := testing.AllocsPerRun(1000, func() {
		cctx, p := g.beginCall(ctx, c, call)
		for s := metrics.StepRoute; s < metrics.StepUpstream; s++ {
			p.Step(s)
		}
		uctx, up := p.upstream(cctx, params)
		if &up[0] != &params[0] || uctx != cctx {
			t.Fatal("an unsampled call's params or context changed for the upstream")
		}
		p.Step(metrics.StepUpstream)
		p.Step(metrics.StepInspect)
		p.Done(call, metrics.DecisionAllow, metrics.OutcomeOK)
	})
	if allocs != 0 {
		t.Errorf("an unsampled call allocates %v times in the tracing hooks, want 0", allocs)
	}
}
