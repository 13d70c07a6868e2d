package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpguard/mcpguard/internal/audit"
)

// Sources are what the metrics read of the gateway when they are scraped, never on the request
// path. A nil field is not reported. They are called from the scraping goroutine, concurrently
// with the gateway's work.
type Sources struct {
	// Sessions reports the legacy sessions open.
	Sessions func() int
	// Streams reports the streams open: SSE responses being written to legacy clients, and
	// modern clients' subscriptions/listen streams (HTTP and stdio).
	Streams func() (sse, listen int)
	// ApprovalsPending reports the calls waiting for a human's approval.
	ApprovalsPending func() int
	// Blocks reports the blocks in force by kind (address, principal, approval).
	Blocks func() map[string]int
	// UpstreamUp reports whether the upstream of a configured name is connected.
	UpstreamUp func(name string) bool
	// UpstreamBreaker reports the state of the upstream's circuit breaker: "closed",
	// "half_open" or "open"; ok is false when it has none.
	UpstreamBreaker func(name string) (state string, ok bool)
	// Audit reports the audit log's work (audit.Log.Stats).
	Audit func() audit.Stats
}

// Watch sets what the metrics read when scraped. Call it once, before serving.
func (m *Metrics) Watch(s Sources) {
	if m == nil {
		return
	}
	m.sources.Store(&s)
}

var (
	descSessions  = prometheus.NewDesc("mcpguard_sessions_open", "Legacy (2025-11-25 and earlier) sessions open.", nil, nil)
	descStreams   = prometheus.NewDesc("mcpguard_streams_open", "Streams open to clients: sse (legacy SSE responses and GET streams), listen (modern subscriptions/listen).", []string{"kind"}, nil)
	descApprovals = prometheus.NewDesc("mcpguard_approvals_pending", "Calls held for a human's approval, not yet decided.", nil, nil)
	descBlocks    = prometheus.NewDesc("mcpguard_blocks_in_force", "Containment blocks in force, by kind: address (refused before authentication), principal (suspended), approval (every call waits for approval).", []string{"kind"}, nil)
	descUpstream  = prometheus.NewDesc("mcpguard_upstream_up", "1 when the gateway is connected to the upstream, 0 while it is down or reconnecting.", []string{"upstream"}, nil)
	descBreaker   = prometheus.NewDesc("mcpguard_upstream_breaker_state", "1 for the state the upstream's circuit breaker is in: closed (calls flow), half_open (probes flow), open (calls fail fast with 503).", []string{"upstream", "state"}, nil)

	descAuditQueue    = prometheus.NewDesc("mcpguard_audit_queue_depth", "Audit records waiting for the log's writer.", nil, nil)
	descAuditQueueCap = prometheus.NewDesc("mcpguard_audit_queue_capacity", "Audit records that may wait for the writer; appends wait while the queue is full.", nil, nil)
	descAuditBatch    = prometheus.NewDesc("mcpguard_audit_batch_records", "Audit records per committed transaction (group commit).", nil, nil)
	descAuditCPAge    = prometheus.NewDesc("mcpguard_audit_checkpoint_age_seconds", "Seconds since the newest audit checkpoint was signed (since the log opened when it had none); only with a signing key.", nil, nil)
	descAuditUnsigned = prometheus.NewDesc("mcpguard_audit_unsigned_records", "Durable audit records the newest checkpoint does not cover yet; only with a signing key.", nil, nil)
	descAuditVerify   = prometheus.NewDesc("mcpguard_audit_verify_status", "1 for the audit log's state: verified (at start the store matched the newest external checkpoint), unchecked (no signing key or checkpoint directory to compare with), failed (a sync or checkpoint failed: every call is refused until restart).", []string{"status"}, nil)
)

// scraped is the collector of what Sources report.
type scraped Metrics

func (s *scraped) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSessions, descStreams, descApprovals, descBlocks, descUpstream, descBreaker,
		descAuditQueue, descAuditQueueCap, descAuditBatch, descAuditCPAge, descAuditUnsigned, descAuditVerify} {
		ch <- d
	}
}

func (s *scraped) Collect(ch chan<- prometheus.Metric) {
	m := (*Metrics)(s)
	src := m.sources.Load()
	if src == nil {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if src.Sessions != nil {
		gauge(descSessions, float64(src.Sessions()))
	}
	if src.Streams != nil {
		sse, listen := src.Streams()
		gauge(descStreams, float64(sse), "sse")
		gauge(descStreams, float64(listen), "listen")
	}
	if src.ApprovalsPending != nil {
		gauge(descApprovals, float64(src.ApprovalsPending()))
	}
	if src.Blocks != nil {
		for kind, n := range src.Blocks() {
			gauge(descBlocks, float64(n), m.kinds.label(kind))
		}
	}
	if src.UpstreamUp != nil {
		for name := range m.upstreams {
			if name == "" {
				continue
			}
			up := 0.0
			if src.UpstreamUp(name) {
				up = 1
			}
			gauge(descUpstream, up, name)
		}
	}
	if src.UpstreamBreaker != nil {
		for name := range m.upstreams {
			state, ok := src.UpstreamBreaker(name)
			if name == "" || !ok {
				continue
			}
			for _, s := range [...]string{"closed", "half_open", "open"} {
				v := 0.0
				if s == state {
					v = 1
				}
				gauge(descBreaker, v, name, s)
			}
		}
	}
	if src.Audit != nil {
		m.collectAudit(ch, src.Audit(), gauge)
	}
}

func (m *Metrics) collectAudit(ch chan<- prometheus.Metric, st audit.Stats, gauge func(*prometheus.Desc, float64, ...string)) {
	gauge(descAuditQueue, float64(st.Queued))
	gauge(descAuditQueueCap, float64(st.QueueCapacity))
	buckets := make(map[float64]uint64, len(audit.BatchSizeBounds))
	var cum uint64
	for i, bound := range audit.BatchSizeBounds {
		cum += st.BatchSizes[i]
		buckets[float64(bound)] = cum
	}
	ch <- prometheus.MustNewConstHistogram(descAuditBatch, st.Batches, float64(st.Records), buckets)
	if st.Signed {
		gauge(descAuditCPAge, max(0, m.now().Sub(st.LastCheckpoint).Seconds()))
		gauge(descAuditUnsigned, float64(st.Unsigned))
	}
	state := "unchecked"
	switch {
	case st.Failed:
		state = "failed"
	case st.Checked:
		state = "verified"
	}
	for _, s := range [...]string{"verified", "unchecked", "failed"} {
		v := 0.0
		if s == state {
			v = 1
		}
		gauge(descAuditVerify, v, s)
	}
}
