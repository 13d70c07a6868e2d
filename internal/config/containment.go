package config

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Containment configures the containment step (docs/containment.md): the networks clients may
// come from, rate limits, brute force detection, anomaly detection with its automatic
// responses, and the Redis that shares their state between instances. Every key has a default;
// an absent section means: brute force detection on, no rate limit, every network.
type Containment struct {
	// TrustedProxies are the networks of the proxies (load balancers) allowed to report the
	// client's address in Forwarded or X-Forwarded-For; from any other peer those headers are
	// ignored. Default none: the client is the TCP peer.
	TrustedProxies []string
	// AllowedNetworks, when set, are the only client networks the MCP listener serves;
	// DeniedNetworks are refused whatever AllowedNetworks says. Refused clients get 403. CIDRs
	// ("10.0.0.0/8") or single addresses.
	AllowedNetworks []string
	DeniedNetworks  []string
	// RateLimits are the deployment-wide limits; the policy adds per role and per tool ones.
	RateLimits RateLimits
	// BruteForce says when failed authentications block an address.
	BruteForce BruteForce
	// Redis, when present, shares limits, quotas, failure counts and blocks between the
	// instances of a deployment. Absent: each instance keeps its own.
	Redis *Redis
	// NotifyWebhook, when present, receives every containment act (block, suspension, alert) as
	// JSON: the security team's notification.
	NotifyWebhook *WebhookSink
	// Anomaly, when present, learns each principal's behaviour and responds to signals.
	Anomaly *Anomaly
}

// RateLimits are the configuration's rate limits; an absent one is no limit.
type RateLimits struct {
	PerPrincipal *RateLimit // one principal (its subject), whatever credential it uses
	PerAddress   *RateLimit // one client address
	PerTool      *RateLimit // one tool, prompt or resource, every caller together
	PerUpstream  *RateLimit // one upstream, every caller together
}

// RateLimit is a token bucket and a concurrency bound. Give calls_per_second or
// calls_per_minute (not both), and/or concurrent.
type RateLimit struct {
	CallsPerSecond float64
	CallsPerMinute float64
	// Burst is the calls allowed at once above the rate (default: one second's worth, at least 1).
	Burst int
	// Concurrent bounds the calls in flight.
	Concurrent int
}

// PerSecond is the rate in calls a second, whichever way it was written.
func (r *RateLimit) PerSecond() float64 {
	if r.CallsPerMinute > 0 {
		return r.CallsPerMinute / 60
	}
	return r.CallsPerSecond
}

// BruteForce configures brute force detection; zero values take the defaults.
type BruteForce struct {
	// Disabled turns detection off. Default false.
	Disabled bool
	// MaxFailures within Window from one address block it. Default 5 in 5m.
	MaxFailures int
	Window      time.Duration
	// BlockFor is the first block (default 15m), doubled for each repeat up to MaxBlock (24h).
	BlockFor time.Duration
	MaxBlock time.Duration
	// Delay and MaxDelay: the progressive delay of failures against one principal (1s, 30s).
	Delay    time.Duration
	MaxDelay time.Duration
}

// Redis is the shared state of a deployment's containment.
type Redis struct {
	// Address is host:port. Required.
	Address string
	// Username and Password (a secret reference) authenticate, when set.
	Username string
	Password Secret
	// DB is the database number. Default 0.
	DB int
	// Prefix starts every key. Default "mcpguard:".
	Prefix string
	// Timeout bounds each command. Default 500ms.
	Timeout time.Duration
	// TLS connects with TLS.
	TLS bool
	// DegradedFraction is the share of every limit each instance applies on its own while Redis
	// is unreachable (never unlimited). Default 0.5, in (0, 1].
	DegradedFraction float64
}

// Anomaly configures anomaly detection and the automatic responses (docs/containment.md).
type Anomaly struct {
	// OffHours flags every call between From and To (hours of the day, in TimeZone), even a new
	// principal's; absent, only the learned profile decides what is unusual.
	OffHours *HourRange
	// TimeZone is the IANA zone of hours. Default UTC.
	TimeZone string
	// MinEvents is the calls before a learned profile is trusted. Default 50.
	MinEvents int
	// DenialBurst policy denials within DenialWindow are probing. Default 5 in 1m.
	DenialBurst  int
	DenialWindow time.Duration
	// SpikeFactor × the learned rate, and at least SpikeFloor calls a minute, is a spike.
	// Default 10 and 60.
	SpikeFactor float64
	SpikeFloor  int
	// Cooldown: a signal fires once per principal and kind within it. Default 5m.
	Cooldown time.Duration
	// SuspendFor is how long a suspend_principal, block_address or require_approval response
	// lasts. Default 1h.
	SuspendFor time.Duration
	// ApproverRole is the operator role that approves the calls of a principal under a
	// require_approval response; required when the playbook uses that action.
	ApproverRole string
	// Playbook maps signals to responses; default: alert on every signal.
	Playbook []PlaybookRule
}

// HourRange is From:00 to To:00; From > To wraps past midnight (22 → 6).
type HourRange struct{ From, To int }

// PlaybookRule maps a signal (or "*") of at least MinSeverity to actions.
type PlaybookRule struct {
	Signal      string
	MinSeverity string
	Actions     []string
}

func (d *decoder) containmentFields(c *Containment) []field {
	return []field{
		{"trusted_proxies", d.strList(&c.TrustedProxies)},
		{"allowed_networks", d.strList(&c.AllowedNetworks)},
		{"denied_networks", d.strList(&c.DeniedNetworks)},
		{"rate_limits", func(n *yaml.Node, path string) {
			r := &c.RateLimits
			d.mapping(n, path, []field{
				{"per_principal", d.rateLimit(&r.PerPrincipal)},
				{"per_address", d.rateLimit(&r.PerAddress)},
				{"per_tool", d.rateLimit(&r.PerTool)},
				{"per_upstream", d.rateLimit(&r.PerUpstream)},
			}, nil)
		}},
		{"brute_force", func(n *yaml.Node, path string) {
			b := &c.BruteForce
			d.mapping(n, path, []field{
				{"disabled", d.boolean(&b.Disabled)},
				{"max_failures", d.integer(&b.MaxFailures)},
				{"window", d.duration(&b.Window)},
				{"block_for", d.duration(&b.BlockFor)},
				{"max_block", d.duration(&b.MaxBlock)},
				{"delay", d.duration(&b.Delay)},
				{"max_delay", d.duration(&b.MaxDelay)},
			}, nil)
		}},
		{"redis", func(n *yaml.Node, path string) {
			r := &Redis{Prefix: "mcpguard:", Timeout: 500 * time.Millisecond, DegradedFraction: 0.5}
			c.Redis = r
			d.mapping(n, path, []field{
				{"address", d.str(&r.Address)},
				{"username", d.str(&r.Username)},
				{"password", d.secret(&r.Password)},
				{"db", d.integer(&r.DB)},
				{"prefix", d.str(&r.Prefix)},
				{"timeout", d.duration(&r.Timeout)},
				{"tls", d.boolean(&r.TLS)},
				{"degraded_fraction", d.number(&r.DegradedFraction)},
			}, nil)
		}},
		{"notify_webhook", func(n *yaml.Node, path string) {
			w := &WebhookSink{BatchSize: 100}
			c.NotifyWebhook = w
			d.mapping(n, path, []field{
				{"url", d.str(&w.URL)},
				{"bearer_token", d.secret(&w.BearerToken)},
			}, nil)
		}},
		{"anomaly", func(n *yaml.Node, path string) {
			a := &Anomaly{}
			c.Anomaly = a
			d.mapping(n, path, []field{
				{"off_hours", func(n *yaml.Node, path string) {
					a.OffHours = &HourRange{From: -1, To: -1}
					d.mapping(n, path, []field{
						{"from", d.integer(&a.OffHours.From)},
						{"to", d.integer(&a.OffHours.To)},
					}, nil)
				}},
				{"time_zone", d.str(&a.TimeZone)},
				{"min_events", d.integer(&a.MinEvents)},
				{"denial_burst", d.integer(&a.DenialBurst)},
				{"denial_window", d.duration(&a.DenialWindow)},
				{"spike_factor", d.number(&a.SpikeFactor)},
				{"spike_floor", d.integer(&a.SpikeFloor)},
				{"cooldown", d.duration(&a.Cooldown)},
				{"suspend_for", d.duration(&a.SuspendFor)},
				{"approver_role", d.str(&a.ApproverRole)},
				{"playbook", func(n *yaml.Node, path string) {
					n = d.visit(n)
					if n == nil {
						return
					}
					if n.Kind != yaml.SequenceNode {
						d.wrongType(n, path, "a list of {signal, min_severity, actions}")
						return
					}
					for i, item := range n.Content {
						var r PlaybookRule
						d.mapping(item, pathIndex(path, i), []field{
							{"signal", d.str(&r.Signal)},
							{"min_severity", d.str(&r.MinSeverity)},
							{"actions", d.strList(&r.Actions)},
						}, nil)
						a.Playbook = append(a.Playbook, r)
					}
				}},
			}, nil)
		}},
	}
}

func (d *decoder) rateLimit(dst **RateLimit) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		r := &RateLimit{}
		*dst = r
		d.mapping(n, path, []field{
			{"calls_per_second", d.number(&r.CallsPerSecond)},
			{"calls_per_minute", d.number(&r.CallsPerMinute)},
			{"burst", d.integer(&r.Burst)},
			{"concurrent", d.integer(&r.Concurrent)},
		}, nil)
	}
}

// number decodes an integer or a decimal number.
func (d *decoder) number(dst *float64) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		if n = d.visit(n); n == nil {
			return
		}
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") {
			d.wrongType(n, path, "a number")
			return
		}
		v, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		if err != nil || v != v {
			d.add(n.Line, path, "%s is not a number", quote(n.Value))
			d.broken[path] = true
			return
		}
		*dst = v
	}
}

// maxRate bounds a configured rate: beyond it a limit means nothing.
const maxRate = 1e6

// adminNetworks checks the admin listener's networks.
func (v *validator) adminNetworks(a *Admin) {
	for _, l := range []struct {
		key  string
		list []string
	}{{"allowed_networks", a.AllowedNetworks}, {"denied_networks", a.DeniedNetworks}} {
		for i, s := range l.list {
			if err := checkNetwork(s); err != "" {
				v.add(pathIndex("admin."+l.key, i), "%s %s", quote(s), err)
			}
		}
	}
}

func (v *validator) containment(c *Containment) {
	for _, l := range []struct {
		key  string
		list []string
	}{{"trusted_proxies", c.TrustedProxies}, {"allowed_networks", c.AllowedNetworks}, {"denied_networks", c.DeniedNetworks}} {
		for i, s := range l.list {
			if err := checkNetwork(s); err != "" {
				v.add(pathIndex("containment."+l.key, i), "%s %s", quote(s), err)
			}
		}
	}
	r := &c.RateLimits
	for _, l := range []struct {
		key string
		r   *RateLimit
	}{{"per_principal", r.PerPrincipal}, {"per_address", r.PerAddress}, {"per_tool", r.PerTool}, {"per_upstream", r.PerUpstream}} {
		if l.r == nil {
			continue
		}
		path := "containment.rate_limits." + l.key
		switch {
		case l.r.CallsPerSecond != 0 && l.r.CallsPerMinute != 0:
			v.add(path, "give calls_per_second or calls_per_minute, not both")
		case l.r.CallsPerSecond < 0 || l.r.CallsPerSecond > maxRate || l.r.CallsPerMinute < 0 || l.r.CallsPerMinute > maxRate*60:
			v.add(path, "the rate is out of range: want more than 0 and at most %g calls a second", float64(maxRate))
		case l.r.PerSecond() == 0 && l.r.Concurrent == 0:
			v.add(path, "limits nothing: give calls_per_second, calls_per_minute or concurrent")
		}
		if l.r.Burst < 0 || l.r.Burst > maxRate {
			v.add(path+".burst", "%d is out of range: want 0 (one second's worth) to %g", l.r.Burst, float64(maxRate))
		}
		if l.r.Concurrent < 0 || l.r.Concurrent > 1_000_000 {
			v.add(path+".concurrent", "%d is out of range: want 0 (no bound) to 1000000", l.r.Concurrent)
		}
	}
	b := &c.BruteForce
	if b.MaxFailures < 0 || b.MaxFailures > 10_000 {
		v.add("containment.brute_force.max_failures", "%d is out of range: want 1 to 10000 (0: the default, 5)", b.MaxFailures)
	}
	for _, dur := range []struct {
		key string
		d   time.Duration
	}{{"window", b.Window}, {"block_for", b.BlockFor}, {"max_block", b.MaxBlock}, {"delay", b.Delay}, {"max_delay", b.MaxDelay}} {
		if dur.d < 0 {
			v.add("containment.brute_force."+dur.key, "must not be negative")
		}
	}
	if b.MaxDelay > 5*time.Minute {
		v.add("containment.brute_force.max_delay", "%v is too long: a held answer ties up a connection; want at most 5m", b.MaxDelay)
	}
	if r := c.Redis; r != nil {
		if r.Address == "" {
			v.add("containment.redis.address", `is required: the Redis server's host:port, such as "127.0.0.1:6379"`)
		} else if _, _, err := net.SplitHostPort(r.Address); err != nil {
			v.add("containment.redis.address", "%s is not host:port", quote(r.Address))
		}
		if r.DB < 0 || r.DB > 15 {
			v.add("containment.redis.db", "%d is out of range: want 0 to 15", r.DB)
		}
		if r.DegradedFraction <= 0 || r.DegradedFraction > 1 {
			v.add("containment.redis.degraded_fraction", "%g is out of range: want more than 0 and at most 1 (never unlimited)", r.DegradedFraction)
		}
		v.positive("containment.redis.timeout", r.Timeout)
		if !r.Password.IsZero() && !r.Password.IsReference() {
			v.add("containment.redis.password", "must be a secret reference (env:NAME or file:/path): secrets are not written in configuration")
		}
		if len(r.Prefix) > 64 {
			v.add("containment.redis.prefix", "is longer than 64 bytes")
		}
	}
	if w := c.NotifyWebhook; w != nil {
		if v.url("containment.notify_webhook.url", w.URL) {
			v.add("containment.notify_webhook.url", "%s would send security alerts in clear: use https (http is allowed only to loopback)", quote(w.URL))
		}
		if !w.BearerToken.IsZero() && !w.BearerToken.IsReference() {
			v.add("containment.notify_webhook.bearer_token", "must be a secret reference (env:NAME or file:/path): secrets are not written in configuration")
		}
	}
	if a := c.Anomaly; a != nil {
		if h := a.OffHours; h != nil && (h.From < 0 || h.From > 23 || h.To < 0 || h.To > 23 || h.From == h.To) {
			v.add("containment.anomaly.off_hours", "want from and to, two different hours from 0 to 23 (22 to 6 wraps past midnight)")
		}
		if a.TimeZone != "" {
			if _, err := time.LoadLocation(a.TimeZone); err != nil {
				v.add("containment.anomaly.time_zone", "%s is not an IANA time zone such as \"Europe/London\"", quote(a.TimeZone))
			}
		}
		if a.MinEvents < 0 || a.DenialBurst < 0 || a.SpikeFloor < 0 || a.SpikeFactor < 0 {
			v.add("containment.anomaly", "thresholds must not be negative")
		}
		for i, r := range a.Playbook {
			path := pathIndex("containment.anomaly.playbook", i)
			if r.Signal == "" {
				v.add(path+".signal", `is required: a signal name or "*"`)
			}
			if len(r.Actions) == 0 {
				v.add(path+".actions", "is required: at least one action")
			}
			if slices.Contains(r.Actions, "require_approval") && a.ApproverRole == "" {
				v.add(path+".actions", "require_approval needs containment.anomaly.approver_role: the operator role that approves the principal's calls")
			}
		}
	}
}

// checkNetwork returns why s is not a network, "" when it is one (the same rules as
// contain.ParseNetwork, which the wiring applies).
func checkNetwork(s string) string {
	if !strings.Contains(s, "/") {
		if a, err := netip.ParseAddr(s); err != nil || a.Zone() != "" {
			return "is not an IP address or CIDR"
		}
		return ""
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return "is not a CIDR"
	}
	if p.Masked() != p {
		return fmt.Sprintf("has host bits set: write %s for the network, or the address alone", p.Masked())
	}
	return ""
}
