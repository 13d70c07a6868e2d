package upstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpguard/mcpguard/internal/mcpguard"
)

// BreakerSpec configures an upstream's circuit breaker: after Failures consecutive failed calls,
// or when at least MinCalls calls in the last Window failed at FailureRatio or more, calls fail
// fast for CoolDown; then up to HalfOpenCalls probe calls go through, and the first failure
// opens the circuit again while HalfOpenCalls successes close it. A failed call is one the
// upstream did not answer: unreachable, crashed, timed out or answered with something that is
// not MCP. A JSON-RPC error or a tool error is an answer; a call its client abandoned counts
// neither way.
type BreakerSpec struct {
	// Failures is the consecutive failures that open the circuit; 0 leaves this rule out.
	Failures int
	// FailureRatio (0..1) with MinCalls and Window: the failure rate that opens it; 0 leaves
	// this rule out.
	FailureRatio float64
	MinCalls     int
	Window       time.Duration
	// CoolDown is how long an open circuit refuses calls before it lets probes through.
	CoolDown time.Duration
	// HalfOpenCalls is how many probes may be in flight, and must succeed, to close it.
	HalfOpenCalls int
}

// Enabled reports whether either rule can open the circuit.
func (s *BreakerSpec) Enabled() bool { return s != nil && (s.Failures > 0 || s.FailureRatio > 0) }

// BulkheadSpec caps an upstream's calls in flight: a call beyond Concurrent waits up to
// QueueWait for a slot, with at most Queue calls waiting; past either bound it is refused at
// once. Concurrent 0 means no cap.
type BulkheadSpec struct {
	Concurrent int
	Queue      int
	QueueWait  time.Duration
}

// Unavailable is the error of a call the gateway did not send to its upstream: the upstream's
// circuit is open, or its call slots are full. The client may retry after RetryAfter.
type Unavailable struct {
	Upstream   string
	Reason     string
	RetryAfter time.Duration
}

func (e *Unavailable) Error() string {
	return fmt.Sprintf("upstream %q is not taking calls: %s", e.Upstream, e.Reason)
}

// Is makes an Unavailable an mcpguard.ErrUpstreamDown, for callers that only tell up from down.
func (e *Unavailable) Is(target error) bool { return target == mcpguard.ErrUpstreamDown }

// BreakerState is a circuit breaker's state, as the metrics and the readiness check show it.
type BreakerState int32

const (
	BreakerClosed   BreakerState = iota // calls flow
	BreakerHalfOpen                     // probes flow, other calls are refused
	BreakerOpen                         // calls are refused
)

func (s BreakerState) String() string {
	switch s {
	case BreakerHalfOpen:
		return "half_open"
	case BreakerOpen:
		return "open"
	}
	return "closed"
}

// breakerBuckets is the number of slices the failure-rate window is counted in.
const breakerBuckets = 6

// bucket counts the calls that ended in one slice of the window.
type bucket struct {
	start           time.Time
	calls, failures int
}

// breaker is one upstream's circuit breaker. Its state is read without the lock on every call;
// the lock is taken to count an outcome and to change state.
type breaker struct {
	spec  BreakerSpec
	name  string
	now   func() time.Time
	onSet func(from, to BreakerState)

	state atomic.Int32 // BreakerState

	// generation is bumped on every state change: outcomes of calls admitted before are ignored.
	generation atomic.Uint64

	mu          sync.Mutex
	consecutive int
	buckets     [breakerBuckets]bucket
	openUntil   time.Time
	probes      int // half-open: probes admitted and not yet ended
	successes   int // half-open: probes that succeeded
}

func newBreaker(name string, spec BreakerSpec, now func() time.Time, onSet func(from, to BreakerState)) *breaker {
	if spec.CoolDown <= 0 {
		spec.CoolDown = 10 * time.Second
	}
	if spec.HalfOpenCalls <= 0 {
		spec.HalfOpenCalls = 1
	}
	if spec.Window <= 0 {
		spec.Window = time.Minute
	}
	if spec.MinCalls <= 0 {
		spec.MinCalls = 20
	}
	return &breaker{spec: spec, name: name, now: now, onSet: onSet}
}

// admit says whether a call may go now; when it may, the returned generation goes back to done
// with the call's outcome (always: a half-open probe holds a slot until then).
func (b *breaker) admit() (gen uint64, err error) {
	if gen := b.generation.Load(); BreakerState(b.state.Load()) == BreakerClosed {
		return gen, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	switch BreakerState(b.state.Load()) {
	case BreakerOpen:
		if now.Before(b.openUntil) {
			return 0, &Unavailable{Upstream: b.name, RetryAfter: b.openUntil.Sub(now),
				Reason: fmt.Sprintf("its circuit breaker is open after repeated failures; the next attempt is in %s", b.openUntil.Sub(now).Round(time.Second))}
		}
		b.set(BreakerHalfOpen)
		fallthrough
	case BreakerHalfOpen:
		if b.probes >= b.spec.HalfOpenCalls {
			return 0, &Unavailable{Upstream: b.name, RetryAfter: time.Second,
				Reason: "its circuit breaker is half-open and the probe calls are in flight"}
		}
		b.probes++
	}
	return b.generation.Load(), nil
}

// check is admit without taking a probe slot: whether a call would be refused now, for the
// steps before the call itself (waiting for the connection).
func (b *breaker) check() error {
	if BreakerState(b.state.Load()) != BreakerOpen {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if now := b.now(); BreakerState(b.state.Load()) == BreakerOpen && now.Before(b.openUntil) {
		return &Unavailable{Upstream: b.name, RetryAfter: b.openUntil.Sub(now),
			Reason: fmt.Sprintf("its circuit breaker is open after repeated failures; the next attempt is in %s", b.openUntil.Sub(now).Round(time.Second))}
	}
	return nil
}

// failed reports whether err means the upstream did not answer; counted reports whether the
// outcome counts at all (a client that went away says nothing about the upstream).
func failed(err error) (failure, counted bool) {
	switch {
	case err == nil:
		return false, true
	case errors.Is(err, mcpguard.ErrUpstreamDown), errors.Is(err, mcpguard.ErrUpstreamTimeout), errors.Is(err, mcpguard.ErrUpstreamBadReply):
		var un *Unavailable
		return true, !errors.As(err, &un)
	}
	return false, false
}

// done counts the outcome of a call admitted in generation gen.
func (b *breaker) done(gen uint64, err error) {
	failure, counted := failed(err)
	b.mu.Lock()
	defer b.mu.Unlock()
	state := BreakerState(b.state.Load())
	if gen != b.generation.Load() {
		return // admitted before the state changed: the outcome is stale
	}
	if state == BreakerHalfOpen {
		b.probes--
		switch {
		case !counted:
		case failure:
			b.open()
		default:
			if b.successes++; b.successes >= b.spec.HalfOpenCalls {
				b.set(BreakerClosed)
			}
		}
		return
	}
	if !counted || state != BreakerClosed {
		return
	}
	now := b.now()
	cur := b.bucketAt(now)
	cur.calls++
	if !failure {
		b.consecutive = 0
		return
	}
	cur.failures++
	b.consecutive++
	if b.spec.Failures > 0 && b.consecutive >= b.spec.Failures {
		b.open()
		return
	}
	if b.spec.FailureRatio > 0 {
		var calls, failures int
		for i := range b.buckets {
			if now.Sub(b.buckets[i].start) < b.spec.Window {
				calls += b.buckets[i].calls
				failures += b.buckets[i].failures
			}
		}
		if calls >= b.spec.MinCalls && float64(failures) >= b.spec.FailureRatio*float64(calls) {
			b.open()
		}
	}
}

// bucketAt is the window's bucket for now, cleared when it held an older slice.
func (b *breaker) bucketAt(now time.Time) *bucket {
	width := b.spec.Window / breakerBuckets
	if width <= 0 {
		width = time.Millisecond
	}
	start := now.Truncate(width)
	bk := &b.buckets[(start.UnixNano()/int64(width))%breakerBuckets]
	if !bk.start.Equal(start) {
		*bk = bucket{start: start}
	}
	return bk
}

func (b *breaker) open() {
	b.openUntil = b.now().Add(b.spec.CoolDown)
	b.set(BreakerOpen)
}

// set changes the state and starts a new generation; b.mu is held.
func (b *breaker) set(to BreakerState) {
	from := BreakerState(b.state.Swap(int32(to)))
	b.generation.Add(1)
	b.consecutive, b.probes, b.successes = 0, 0, 0
	if to == BreakerClosed {
		b.buckets = [breakerBuckets]bucket{}
	}
	if from != to && b.onSet != nil {
		b.onSet(from, to)
	}
}

// bulkhead caps one upstream's calls in flight with a bounded, time-limited wait.
type bulkhead struct {
	name    string
	spec    BulkheadSpec
	slots   chan struct{}
	waiting atomic.Int64
}

func newBulkhead(name string, spec BulkheadSpec) *bulkhead {
	if spec.Concurrent <= 0 {
		return nil
	}
	if spec.QueueWait <= 0 {
		spec.QueueWait = time.Second
	}
	return &bulkhead{name: name, spec: spec, slots: make(chan struct{}, spec.Concurrent)}
}

// enter takes a call slot, waiting for one as the spec allows; release gives it back.
func (h *bulkhead) enter(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	full := &Unavailable{Upstream: h.name, RetryAfter: time.Second,
		Reason: fmt.Sprintf("its %d call slots are busy and %d calls already wait for one", h.spec.Concurrent, h.spec.Queue)}
	if h.waiting.Add(1) > int64(h.spec.Queue) {
		h.waiting.Add(-1)
		return full
	}
	defer h.waiting.Add(-1)
	t := time.NewTimer(h.spec.QueueWait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-t.C:
		full.Reason = fmt.Sprintf("its %d call slots stayed busy for %s", h.spec.Concurrent, h.spec.QueueWait)
		return full
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *bulkhead) release() { <-h.slots }
