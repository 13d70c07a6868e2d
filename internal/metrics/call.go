package metrics

import (
	"hash/maphash"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpguard/mcpguard/internal/mcpguard"
)

// The request path's measurements. A call's work with metrics on is a clock reading per step
// and, per observation, two atomic adds in memory laid out for it: a cold cache line costs more
// than the arithmetic (BenchmarkPipelineMetrics in internal/gateway), so the steps' histograms
// lie in one array, a histogram's sum sits next to its first buckets (where the gateway's own
// microseconds fall), and a call's count and latency are one allocation found with one load.
// Collect turns them into Prometheus's forms.

// Step is one step of the request path whose time is measured.
type Step uint8

// The steps, in the order a call passes them (docs/ARCHITECTURE.md, "The request path").
const (
	StepAuthenticate Step = iota // the credential verified (HTTP, before the pipeline)
	StepRoute                    // the upstream and the target found, the arguments checked against the schema
	StepContain                  // a suspended principal refused
	StepPin                      // the tool's definition compared with the approved one
	StepDecide                   // the policy's decision
	StepLimit                    // rate limits and quotas taken
	StepApprove                  // waiting for a human's approval (only calls held for one)
	StepAuditAppend              // the call's audit record made durable
	StepUpstream                 // the upstream's answer (or every upstream's, for a list)
	StepInspect                  // the answer inspected (an error's leaks removed)
	numSteps
)

var stepNames = [numSteps]string{"authenticate", "route", "contain", "pin", "decide", "limit", "approve", "audit_append", "upstream", "inspect"}

func (s Step) String() string { return stepNames[s] }

// Decision is the policy's decision on a call, or none when a step before the policy refused it.
type Decision uint8

// The decisions.
const (
	DecisionNone Decision = iota
	DecisionAllow
	DecisionDeny
)

var decisionNames = [...]string{"none", "allow", "deny"}

// Outcome is what became of a call: for a forwarded call, its audit outcome status; otherwise
// why the gateway answered it itself.
type Outcome string

// The outcomes.
const (
	OutcomeOK               Outcome = "ok"                // forwarded and served
	OutcomeToolError        Outcome = "tool_error"        // forwarded; the tool reported an error (isError)
	OutcomeError            Outcome = "error"             // forwarded; the upstream answered with an error
	OutcomeTimeout          Outcome = "timeout"           // forwarded; no answer within the upstream's timeout
	OutcomeUpstreamDown     Outcome = "upstream_down"     // the upstream is down or answered with something unreadable
	OutcomeCancelled        Outcome = "cancelled"         // the client went away first
	OutcomeRefused          Outcome = "refused"           // refused before the policy: unknown target, arguments against the schema, unapproved tool definition
	OutcomeSuspended        Outcome = "suspended"         // the principal is suspended
	OutcomeLimited          Outcome = "limited"           // a rate limit, concurrency limit or quota refused it, or their state could not be read
	OutcomeDenied           Outcome = "denied"            // the policy denied it
	OutcomeNotApproved      Outcome = "not_approved"      // held for approval, and not approved
	OutcomeAuditUnavailable Outcome = "audit_unavailable" // its audit record could not be written, so it was not forwarded
)

// label is o as a label value: one of the outcomes, or "other".
func (o Outcome) label() string {
	switch o {
	case OutcomeOK, OutcomeToolError, OutcomeError, OutcomeTimeout, OutcomeUpstreamDown, OutcomeCancelled,
		OutcomeRefused, OutcomeSuspended, OutcomeLimited, OutcomeDenied, OutcomeNotApproved, OutcomeAuditUnavailable:
		return string(o)
	}
	return Other
}

// A Call measures one call through the pipeline: each step's time and, when it is answered, the
// call. The zero Call (Begin on a nil *Metrics) measures nothing. A Call belongs to one
// goroutine.
type Call struct {
	m     *Metrics
	start time.Time
	mark  time.Duration // since start, when the previous step ended
}

// Begin starts measuring a call at its first step.
func (m *Metrics) Begin() Call {
	if m == nil {
		return Call{}
	}
	return Call{m: m, start: time.Now()}
}

// Step ends step s: the time since the previous step ended (or the call began) is its time.
func (c *Call) Step(s Step) {
	if c.m == nil {
		return
	}
	now := time.Since(c.start)
	c.m.steps[s].observe(now - c.mark)
	c.mark = now
}

// Done counts the call and its time, by its method, the configured upstream that served it
// ("" for the lists and logging/setLevel, which go to every upstream, and for a call refused
// before it was routed) and its tool: for a tool or a prompt the route step found in that
// upstream's list, the name found — never a name only a client sent — and "" for anything
// else (a resource's URI is not a bounded set).
func (c *Call) Done(call *mcpguard.Call, d Decision, o Outcome) {
	if c.m == nil {
		return
	}
	took := time.Since(c.start)
	k := seriesKey{method: call.Method, upstream: call.Upstream, decision: d, outcome: o}
	if call.Upstream != "" && (call.Kind == mcpguard.CallTool || call.Kind == mcpguard.CallPrompt) {
		k.tool = call.Target
	}
	h := maphash.Comparable(c.m.seed, k)
	var s *callSeries
	if e := c.m.slots[h%seriesSlots].Load(); e != nil && e.hash == h {
		s = e.series
	} else {
		s = c.m.newSeries(k, h)
	}
	s.count.Add(1)
	s.duration.observe(took)
}

// seriesKey is a call as Done counts it, its values not yet made labels.
type seriesKey struct {
	method, upstream, tool string
	decision               Decision
	outcome                Outcome
}

// callSeries is the calls of one label set: their count and latency.
type callSeries struct {
	count    atomic.Uint64
	duration hist
	labels   [5]string // method, upstream, tool, decision, outcome
}

// Done finds a call's series by the hash of its seriesKey (maphash, with the process's random
// seed) in Metrics.slots, a table of seriesSlots: one load, without checking the call's values
// against the label sets or building its labels again. A key whose slot another key holds
// takes newSeries every time, under a lock; no more than seriesSlots keys are remembered, so the
// table is bounded whatever the upstreams list.
const seriesSlots = 1 << 12

type seriesEntry struct {
	hash   uint64
	series *callSeries
}

// newSeries makes k's values labels — each in its bounded set, or "other" — and returns their
// series, remembered in k's slot (hash h) when it is free.
func (m *Metrics) newSeries(k seriesKey, h uint64) *callSeries {
	meth, ok := m.methods[k.method]
	if !ok {
		meth = Other
	}
	up, ok := m.upstreams[k.upstream]
	if !ok {
		up = Other
	}
	tool := k.tool
	if tool != "" {
		tool = m.tools.label(tool)
	}
	labels := [5]string{meth, up, tool, decisionNames[k.decision], k.outcome.label()}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.byLabels[labels]
	if s == nil {
		s = &callSeries{labels: labels}
		m.byLabels[labels] = s
	}
	m.slots[h%seriesSlots].CompareAndSwap(nil, &seriesEntry{hash: h, series: s})
	return s
}

// latencyBounds are the upper bounds of the latency histograms' buckets: from the gateway's own
// steps (tens of microseconds) to an upstream's slowest answers.
var latencyBounds = [...]time.Duration{
	10 * time.Microsecond, 25 * time.Microsecond, 50 * time.Microsecond, 100 * time.Microsecond,
	250 * time.Microsecond, 500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond,
	5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second,
	2500 * time.Millisecond, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute,
}

// hist is a latency histogram: an observation adds to its sum and to the one bucket it falls
// in, without a lock.
type hist struct {
	sum     atomic.Int64                          // nanoseconds
	buckets [len(latencyBounds) + 1]atomic.Uint64 // the last: beyond every bound
}

func (h *hist) observe(d time.Duration) {
	i := 0
	for i < len(latencyBounds) && d > latencyBounds[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.sum.Add(int64(d))
}

// add adds o's observations to h (Collect, to sum series over the labels a histogram lacks).
func (h *hist) add(o *hist) {
	h.sum.Add(o.sum.Load())
	for i := range h.buckets {
		h.buckets[i].Add(o.buckets[i].Load())
	}
}

// metric is h in Prometheus's form: cumulative buckets, in seconds.
func (h *hist) metric(desc *prometheus.Desc, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(latencyBounds))
	var n uint64
	for i, b := range latencyBounds {
		n += h.buckets[i].Load()
		buckets[b.Seconds()] = n
	}
	n += h.buckets[len(latencyBounds)].Load()
	return prometheus.MustNewConstHistogram(desc, n, time.Duration(h.sum.Load()).Seconds(), buckets, labels...)
}

var (
	descCalls = prometheus.NewDesc("mcpguard_calls_total",
		"Calls that entered the pipeline, by MCP method, upstream, tool, the policy's decision and outcome.",
		[]string{"method", "upstream", "tool", "decision", "outcome"}, nil)
	descCallDuration = prometheus.NewDesc("mcpguard_call_duration_seconds",
		"Time from the pipeline's first step to the call's answer, by MCP method and upstream.",
		[]string{"method", "upstream"}, nil)
	descSteps = prometheus.NewDesc("mcpguard_step_duration_seconds",
		"Time of each step of the request path.", []string{"step"}, nil)
)

// callCollector collects the calls and the steps.
type callCollector Metrics

func (c *callCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descCalls
	ch <- descCallDuration
	ch <- descSteps
}

func (c *callCollector) Collect(ch chan<- prometheus.Metric) {
	m := (*Metrics)(c)
	for s := range numSteps {
		ch <- m.steps[s].metric(descSteps, s.String())
	}
	m.mu.Lock()
	series := make([]*callSeries, 0, len(m.byLabels))
	for _, s := range m.byLabels {
		series = append(series, s)
	}
	m.mu.Unlock()
	durations := map[[2]string]*hist{}
	for _, s := range series {
		ch <- prometheus.MustNewConstMetric(descCalls, prometheus.CounterValue, float64(s.count.Load()), s.labels[:]...)
		k := [2]string{s.labels[0], s.labels[1]}
		if durations[k] == nil {
			durations[k] = &hist{}
		}
		durations[k].add(&s.duration)
	}
	for k, h := range durations {
		ch <- h.metric(descCallDuration, k[0], k[1])
	}
}
