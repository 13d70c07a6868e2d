// Package metrics is mcpguard's Prometheus instrumentation: the gateway's calls, pipeline steps,
// authentication failures and containment refusals as they happen, and its sessions, streams,
// approvals, blocks, upstreams and audit log when scraped, in a registry of its own with every
// label's values bounded.
//
// Every method is safe on a nil *Metrics and then does nothing: a gateway without metrics pays
// one nil check per call.
package metrics

import (
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mcpguard/mcpguard/internal/mcp"
)

// Other is the label value of what falls outside a label's bounded set: a method no MCP
// revision defines, a tool past Options.MaxTools.
const Other = "other"

// DefaultMaxTools is the default Options.MaxTools.
const DefaultMaxTools = 1000

// Bounds of the label sets that grow as values are seen (authentication failure reasons,
// containment kinds, block kinds): their values come from mcpguard's own constants, so these are
// never reached unless a bug passes something else.
const maxCodeLabels = 64

// Options configures New.
type Options struct {
	// Upstreams are the configured upstreams' names: the values of the upstream label.
	Upstreams []string
	// MaxTools bounds the distinct values of the tool label (default DefaultMaxTools); calls to
	// further tools are counted under "other".
	MaxTools int
	// Logger receives the errors of a scrape; nil discards.
	Logger *slog.Logger
	// Now is the clock of the audit checkpoint's age; nil means time.Now.
	Now func() time.Time
}

// Metrics holds the gateway's collectors.
type Metrics struct {
	reg    *prometheus.Registry
	logger *slog.Logger
	now    func() time.Time

	steps [numSteps]hist // call.go
	seed  maphash.Seed
	slots [seriesSlots]atomic.Pointer[seriesEntry] // the calls' series, by their keys' hashes
	// byLabels holds every call series by its labels, for Collect; mu guards it.
	mu       sync.Mutex
	byLabels map[[5]string]*callSeries

	authFail *prometheus.CounterVec // reason
	refusals *prometheus.CounterVec // kind

	methods   map[string]string // the MCP methods, each its own label value
	upstreams map[string]string
	tools     *bounded
	reasons   *bounded
	kinds     *bounded

	sources atomic.Pointer[Sources]
}

// New returns the metrics: the gateway's collectors, and Go's and the process's, in a registry
// of their own.
func New(opts *Options) *Metrics {
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if o.MaxTools <= 0 {
		o.MaxTools = DefaultMaxTools
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(), logger: o.Logger, now: o.Now,
		seed: maphash.MakeSeed(), byLabels: map[[5]string]*callSeries{},
		authFail: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpguard_auth_failures_total",
			Help: "Requests refused by authentication, on either listener, by reason.",
		}, []string{"reason"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpguard_containment_refusals_total",
			Help: "Requests refused by containment, by kind: network, block, suspend, rate_limit, quota, containment_unavailable.",
		}, []string{"kind"}),
		methods:   map[string]string{},
		upstreams: map[string]string{"": ""},
		tools:     newBounded(o.MaxTools),
		reasons:   newBounded(maxCodeLabels),
		kinds:     newBounded(maxCodeLabels),
	}
	for _, era := range mcp.MethodsByEra() {
		for _, mi := range era {
			if mi.Kind == mcp.KindRequest {
				m.methods[mi.Method] = mi.Method
			}
		}
	}
	for _, name := range o.Upstreams {
		m.upstreams[name] = name
	}
	m.reg.MustRegister((*callCollector)(m), m.authFail, m.refusals, (*scraped)(m),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus exposition formats; nil when m is nil.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return nil
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog: logAdapter{m.logger}, ErrorHandling: promhttp.ContinueOnError, Registry: m.reg,
	})
}

// Registry is where the metrics are registered (for tests and for other collectors of the
// same program).
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// Authenticated observes one authentication's time (StepAuthenticate).
func (m *Metrics) Authenticated(took time.Duration) {
	if m == nil {
		return
	}
	m.steps[StepAuthenticate].observe(took)
}

// AuthFailed counts a request authentication refused, by its reason (authn.Reason).
func (m *Metrics) AuthFailed(reason string) {
	if m == nil {
		return
	}
	m.authFail.WithLabelValues(m.reasons.label(reason)).Inc()
}

// Contained counts a request containment refused, by the refusal's kind (contain.Kind…).
func (m *Metrics) Contained(kind string) {
	if m == nil {
		return
	}
	m.refusals.WithLabelValues(m.kinds.label(kind)).Inc()
}

// bounded is a label's set of values, which grows as values are seen up to max; past it, new
// values are "other". Reading a value already seen takes no lock.
type bounded struct {
	seen sync.Map // value → value, cloned: a label never keeps a request's buffer alive
	n    atomic.Int64
	max  int64
	mu   sync.Mutex // serializes additions
}

func newBounded(max int) *bounded { return &bounded{max: int64(max)} }

func (b *bounded) label(v string) string {
	if s, ok := b.seen.Load(v); ok {
		return s.(string)
	}
	if b.n.Load() >= b.max {
		return Other
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if s, ok := b.seen.Load(v); ok {
		return s.(string)
	}
	if b.n.Load() >= b.max {
		return Other
	}
	v = strings.Clone(v)
	b.seen.Store(v, v)
	b.n.Add(1)
	return v
}

// logAdapter writes promhttp's errors to the operational log.
type logAdapter struct{ l *slog.Logger }

func (a logAdapter) Println(v ...any) {
	a.l.Warn("metrics scrape", "err", strings.TrimSpace(fmt.Sprintln(v...)))
}
