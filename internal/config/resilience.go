package config

import (
	"time"

	"go.yaml.in/yaml/v3"
)

// Breaker is an upstream's circuit breaker (docs/deployment.md, "Circuit breaker and
// bulkhead"): after Failures consecutive failed calls, or when at least MinCalls calls in the
// last Window failed at FailureRatio or more, calls to the upstream fail fast with 503 and
// Retry-After for CoolDown; then HalfOpenCalls probe calls go through, and their success closes
// the circuit. A failed call is one the upstream did not answer (unreachable, crashed, timed
// out, not MCP); a JSON-RPC or tool error is an answer. On by default.
type Breaker struct {
	Disabled      bool
	Failures      int
	FailureRatio  float64
	MinCalls      int
	Window        time.Duration
	CoolDown      time.Duration
	HalfOpenCalls int
}

// Bulkhead caps an upstream's calls in flight: a call beyond Concurrent waits up to QueueWait
// for a slot, with at most Queue calls waiting, and is refused with 503 and Retry-After past
// either bound. Concurrent 0 (the default) means no cap.
type Bulkhead struct {
	Concurrent int
	Queue      int
	QueueWait  time.Duration
}

// Defaults of an upstream's breaker and bulkhead.
const (
	DefaultBreakerFailures      = 5
	DefaultBreakerFailureRatio  = 0.5
	DefaultBreakerMinCalls      = 20
	DefaultBreakerWindow        = time.Minute
	DefaultBreakerCoolDown      = 5 * time.Second
	DefaultBreakerHalfOpenCalls = 1
	DefaultBulkheadQueueWait    = time.Second
)

// DefaultBreaker is the breaker of an upstream whose configuration has no breaker: key, and of
// an Upstream built in code with a zero Breaker.
func DefaultBreaker() Breaker {
	return Breaker{Failures: DefaultBreakerFailures, FailureRatio: DefaultBreakerFailureRatio, MinCalls: DefaultBreakerMinCalls,
		Window: DefaultBreakerWindow, CoolDown: DefaultBreakerCoolDown, HalfOpenCalls: DefaultBreakerHalfOpenCalls}
}

func (d *decoder) breakerFields(b *Breaker) []field {
	return []field{
		{"disabled", d.boolean(&b.Disabled)},
		{"failures", d.integer(&b.Failures)},
		{"failure_ratio", d.number(&b.FailureRatio)},
		{"min_calls", d.integer(&b.MinCalls)},
		{"window", d.duration(&b.Window)},
		{"cool_down", d.duration(&b.CoolDown)},
		{"half_open_calls", d.integer(&b.HalfOpenCalls)},
	}
}

func (d *decoder) bulkheadFields(b *Bulkhead) []field {
	return []field{
		{"concurrent", d.integer(&b.Concurrent)},
		{"queue", d.integer(&b.Queue)},
		{"queue_wait", d.duration(&b.QueueWait)},
	}
}

// resilience decodes an upstream's breaker: and bulkhead: keys.
func (d *decoder) resilience(u *Upstream) []field {
	return []field{
		{"breaker", func(n *yaml.Node, path string) { d.mapping(n, path, d.breakerFields(&u.Breaker), nil) }},
		{"bulkhead", func(n *yaml.Node, path string) { d.mapping(n, path, d.bulkheadFields(&u.Bulkhead), nil) }},
	}
}

// resilience checks an upstream's breaker and bulkhead.
func (v *validator) resilience(path string, u *Upstream) {
	b, p := &u.Breaker, path+".breaker"
	if !b.Disabled && *b != (Breaker{}) { // zero: an Upstream built in code, with the defaults
		if b.Failures < 0 || b.Failures > 10_000 {
			v.add(p+".failures", "%d is out of range: want 0 (this rule off) to 10000", b.Failures)
		}
		if b.FailureRatio < 0 || b.FailureRatio > 1 {
			v.add(p+".failure_ratio", "%g is out of range: want 0 (this rule off) to 1", b.FailureRatio)
		}
		if b.Failures == 0 && b.FailureRatio == 0 {
			v.add(p, "failures and failure_ratio are both 0, so nothing opens the circuit: set one, or disabled: true")
		}
		if b.MinCalls < 1 || b.MinCalls > 1_000_000 {
			v.add(p+".min_calls", "%d is out of range: want 1 to 1000000", b.MinCalls)
		}
		if b.Window < time.Second || b.Window > 24*time.Hour {
			v.add(p+".window", "%s is out of range: want 1s to 24h", b.Window)
		}
		if b.CoolDown < 100*time.Millisecond || b.CoolDown > time.Hour {
			v.add(p+".cool_down", "%s is out of range: want 100ms to 1h", b.CoolDown)
		}
		if b.HalfOpenCalls < 1 || b.HalfOpenCalls > 1000 {
			v.add(p+".half_open_calls", "%d is out of range: want 1 to 1000", b.HalfOpenCalls)
		}
	}
	h, p := &u.Bulkhead, path+".bulkhead"
	if h.Concurrent < 0 || h.Concurrent > 1_000_000 {
		v.add(p+".concurrent", "%d is out of range: want 0 (no cap) to 1000000", h.Concurrent)
	}
	if h.Queue < 0 || h.Queue > 1_000_000 {
		v.add(p+".queue", "%d is out of range: want 0 (refuse at once when every slot is busy) to 1000000", h.Queue)
	}
	if h.QueueWait < 0 || h.QueueWait > 10*time.Minute {
		v.add(p+".queue_wait", "%s is out of range: want 0 (the default, 1s) to 10m", h.QueueWait)
	}
	if h.Concurrent == 0 && (h.Queue != 0 || h.QueueWait != 0) {
		v.add(p, "queue and queue_wait need concurrent: without it nothing is capped")
	}
}
