package metrics_test

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/metrics"
)

// scrape serves one GET /metrics and returns the text exposition.
func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// TestNilMetricsMeasureNothing: a gateway without metrics calls the same methods on a nil
// *Metrics.
func TestNilMetricsMeasureNothing(t *testing.T) {
	var m *metrics.Metrics
	c := m.Begin()
	c.Step(metrics.StepRoute)
	call := &mcpguard.Call{Method: "tools/call", Kind: mcpguard.CallTool, Upstream: "up", Target: "up.tool"}
	c.Done(call, metrics.DecisionAllow, metrics.OutcomeOK)
	m.Authenticated(time.Millisecond)
	m.AuthFailed("bad_signature")
	m.Contained("rate_limit")
	m.Watch(metrics.Sources{})
	if m.Handler() != nil || m.Registry() != nil {
		t.Error("a nil *Metrics has a handler or a registry")
	}
	if n := testing.AllocsPerRun(100, func() {
		c := m.Begin()
		c.Step(metrics.StepDecide)
		c.Done(call, metrics.DecisionAllow, metrics.OutcomeOK)
	}); n != 0 {
		t.Errorf("a call measured by nil metrics allocates %v times", n)
	}
}

// TestLabelsAreBounded: the label values are the configured upstreams, the MCP methods, the
// outcomes and at most MaxTools tools, and a tool only once routed; anything else is "other",
// or no tool at all.
func TestLabelsAreBounded(t *testing.T) {
	m := metrics.New(&metrics.Options{Upstreams: []string{"fin"}, MaxTools: 2})
	for _, tool := range []string{"fin.a", "fin.b", "fin.c", "fin.a"} {
		c := m.Begin()
		c.Done(&mcpguard.Call{Method: "tools/call", Kind: mcpguard.CallTool, Upstream: "fin", Target: tool}, metrics.DecisionAllow, metrics.OutcomeOK)
	}
	for _, call := range []*mcpguard.Call{
		{Method: "evil/method", Upstream: "nowhere", Kind: mcpguard.CallTool, Target: "fin.a"},
		{Method: "tools/call", Kind: mcpguard.CallTool, Target: "not-routed"},
		{Method: "resources/read", Kind: mcpguard.CallResource, Upstream: "fin", Target: "file:///etc/passwd"},
	} {
		c := m.Begin()
		c.Done(call, metrics.DecisionNone, metrics.Outcome("made-up"))
	}
	text := scrape(t, m)
	for _, want := range []string{
		`mcpguard_calls_total{decision="allow",method="tools/call",outcome="ok",tool="fin.a",upstream="fin"} 2`,
		`mcpguard_calls_total{decision="allow",method="tools/call",outcome="ok",tool="fin.b",upstream="fin"} 1`,
		`mcpguard_calls_total{decision="allow",method="tools/call",outcome="ok",tool="other",upstream="fin"} 1`,
		`mcpguard_calls_total{decision="none",method="other",outcome="other",tool="fin.a",upstream="other"} 1`,
		`mcpguard_calls_total{decision="none",method="tools/call",outcome="other",tool="",upstream=""} 1`,
		`mcpguard_calls_total{decision="none",method="resources/read",outcome="other",tool="",upstream="fin"} 1`,
		`mcpguard_call_duration_seconds_count{method="tools/call",upstream="fin"} 4`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("scrape lacks %s", want)
		}
	}
	for _, absent := range []string{"fin.c", "evil/method", "nowhere", "made-up", "not-routed", "passwd"} {
		if strings.Contains(text, absent) {
			t.Errorf("scrape names %q, a value outside the label's bounded set", absent)
		}
	}
}

// TestStepsAndSources: each step observed once per call, and what the sources report at scrape
// time, the audit log's state set and batch histogram included.
func TestStepsAndSources(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	m := metrics.New(&metrics.Options{Upstreams: []string{"fin", "crm"}, Now: func() time.Time { return now }})
	c := m.Begin()
	for _, s := range []metrics.Step{metrics.StepRoute, metrics.StepContain, metrics.StepDecide, metrics.StepUpstream} {
		c.Step(s)
	}
	c.Done(&mcpguard.Call{Method: "tools/list", Kind: mcpguard.CallEvery}, metrics.DecisionAllow, metrics.OutcomeOK)
	m.Authenticated(3 * time.Millisecond)
	m.AuthFailed("bad_signature")
	m.AuthFailed("bad_signature")
	m.Contained("rate_limit")

	st := audit.Stats{Queued: 3, QueueCapacity: 16384, Batches: 3, Records: 7, Signed: true, Checked: true,
		LastCheckpoint: now.Add(-90 * time.Second), Unsigned: 5}
	st.BatchSizes[0], st.BatchSizes[2] = 1, 2 // one batch of 1, two of 3 or 4
	m.Watch(metrics.Sources{
		Sessions:         func() int { return 4 },
		Streams:          func() (int, int) { return 2, 1 },
		ApprovalsPending: func() int { return 1 },
		Blocks:           func() map[string]int { return map[string]int{"address": 2, "principal": 0, "approval": 1} },
		UpstreamUp:       func(name string) bool { return name == "fin" },
		Audit:            func() audit.Stats { return st },
	})
	text := scrape(t, m)
	want := []string{
		`mcpguard_step_duration_seconds_count{step="route"} 1`,
		`mcpguard_step_duration_seconds_count{step="upstream"} 1`,
		`mcpguard_step_duration_seconds_count{step="authenticate"} 1`,
		`mcpguard_step_duration_seconds_count{step="approve"} 0`,
		`mcpguard_calls_total{decision="allow",method="tools/list",outcome="ok",tool="",upstream=""} 1`,
		`mcpguard_auth_failures_total{reason="bad_signature"} 2`,
		`mcpguard_containment_refusals_total{kind="rate_limit"} 1`,
		`mcpguard_sessions_open 4`,
		`mcpguard_streams_open{kind="sse"} 2`,
		`mcpguard_streams_open{kind="listen"} 1`,
		`mcpguard_approvals_pending 1`,
		`mcpguard_blocks_in_force{kind="address"} 2`,
		`mcpguard_blocks_in_force{kind="approval"} 1`,
		`mcpguard_upstream_up{upstream="fin"} 1`,
		`mcpguard_upstream_up{upstream="crm"} 0`,
		`mcpguard_audit_queue_depth 3`,
		`mcpguard_audit_queue_capacity 16384`,
		`mcpguard_audit_batch_records_bucket{le="1"} 1`,
		`mcpguard_audit_batch_records_bucket{le="2"} 1`,
		`mcpguard_audit_batch_records_bucket{le="4"} 3`,
		`mcpguard_audit_batch_records_bucket{le="+Inf"} 3`,
		`mcpguard_audit_batch_records_sum 7`,
		`mcpguard_audit_checkpoint_age_seconds 90`,
		`mcpguard_audit_unsigned_records 5`,
		`mcpguard_audit_verify_status{status="verified"} 1`,
		`mcpguard_audit_verify_status{status="failed"} 0`,
		`go_goroutines `,
		`process_cpu_seconds_total `,
	}
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("scrape lacks %s", w)
		}
	}

	st.Failed = true
	if text := scrape(t, m); !strings.Contains(text, `mcpguard_audit_verify_status{status="failed"} 1`) ||
		!strings.Contains(text, `mcpguard_audit_verify_status{status="verified"} 0`) {
		t.Error("a failed audit log is not reported as failed")
	}
}

// TestConcurrentCallsAndScrapes: calls counted from many goroutines while Prometheus scrapes
// are each counted once (run with -race).
func TestConcurrentCallsAndScrapes(t *testing.T) {
	m := metrics.New(&metrics.Options{Upstreams: []string{"fin"}, MaxTools: 5})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				c := m.Begin()
				c.Step(metrics.StepRoute)
				call := &mcpguard.Call{Method: "tools/call", Kind: mcpguard.CallTool, Upstream: "fin", Target: fmt.Sprintf("fin.t%d", (g+i)%10)}
				c.Done(call, metrics.DecisionAllow, metrics.OutcomeOK)
			}
		})
	}
	for range 5 {
		scrape(t, m)
	}
	wg.Wait()
	text := scrape(t, m)
	total := 0.0
	for line := range strings.SplitSeq(text, "\n") {
		if strings.HasPrefix(line, "mcpguard_calls_total{") {
			var v float64
			fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
			total += v
		}
	}
	if total != 4000 || !strings.Contains(text, `tool="other"`) {
		t.Errorf("counted %v calls, want 4000, tools past the fifth under other:\n%s", total, text)
	}
	if !strings.Contains(text, `mcpguard_step_duration_seconds_count{step="route"} 4000`) {
		t.Error("the route step was not observed 4000 times")
	}
}

// BenchmarkCall is the metrics' own cost of one call through the pipeline: ten steps and the
// call's count and latency.
func BenchmarkCall(b *testing.B) {
	m := metrics.New(&metrics.Options{Upstreams: []string{"fin"}})
	calls := make([]*mcpguard.Call, 50)
	for i := range calls {
		calls[i] = &mcpguard.Call{Method: "tools/call", Kind: mcpguard.CallTool, Upstream: "fin", Target: fmt.Sprintf("fin.tool_%d", i)}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c := m.Begin()
			for s := metrics.StepRoute; s <= metrics.StepInspect; s++ {
				c.Step(s)
			}
			c.Done(calls[i%len(calls)], metrics.DecisionAllow, metrics.OutcomeOK)
			i++
		}
	})
}

// BenchmarkCallCold is BenchmarkCall with the caches flushed before each call, as the request
// path finds them after a call's other work (an audit record, an upstream's answer): what the
// metrics cost is then the cache lines they touch (cold-ns/call), which is what call.go's
// layout keeps few.
func BenchmarkCallCold(b *testing.B) {
	m := metrics.New(&metrics.Options{Upstreams: []string{"fin"}})
	call := &mcpguard.Call{Method: "tools/call", Kind: mcpguard.CallTool, Upstream: "fin", Target: "fin.tool"}
	junk := make([]byte, 32<<20)
	var took time.Duration
	n := 0
	for b.Loop() {
		for j := 0; j < len(junk); j += 64 {
			junk[j]++
		}
		t0 := time.Now()
		c := m.Begin()
		for s := metrics.StepRoute; s <= metrics.StepInspect; s++ {
			c.Step(s)
		}
		m.Authenticated(time.Microsecond)
		c.Done(call, metrics.DecisionAllow, metrics.OutcomeOK)
		took += time.Since(t0)
		n++
	}
	b.ReportMetric(float64(took)/float64(n), "cold-ns/call")
}
