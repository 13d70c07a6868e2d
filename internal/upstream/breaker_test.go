package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/mcpguard"
)

// clock is a settable time for the breaker's tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var errDown = fmt.Errorf("%w: connection refused", mcpguard.ErrUpstreamDown)

func newTestBreaker(spec BreakerSpec) (*breaker, *clock, *[]string) {
	c := &clock{t: time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)}
	var changes []string
	b := newBreaker("finance", spec, c.now, func(from, to BreakerState) { changes = append(changes, from.String()+"->"+to.String()) })
	return b, c, &changes
}

// call runs one call through b with the given outcome; it reports the refusal, if any.
func call(t *testing.T, b *breaker, outcome error) *Unavailable {
	t.Helper()
	gen, err := b.admit()
	if err != nil {
		var un *Unavailable
		if !errors.As(err, &un) {
			t.Fatalf("admit: %v, want *Unavailable", err)
		}
		return un
	}
	b.done(gen, outcome)
	return nil
}

func TestBreakerOpensAfterConsecutiveFailuresAndRecovers(t *testing.T) {
	b, clk, changes := newTestBreaker(BreakerSpec{Failures: 3, CoolDown: 10 * time.Second})
	for i := range 2 {
		if un := call(t, b, errDown); un != nil {
			t.Fatalf("call %d refused while closed: %v", i, un)
		}
	}
	// A success in between resets the count: two more failures do not open it.
	call(t, b, nil)
	call(t, b, errDown)
	call(t, b, errDown)
	if s := BreakerState(b.state.Load()); s != BreakerClosed {
		t.Fatalf("state %s after a success broke the run of failures, want closed", s)
	}
	call(t, b, errDown) // the third in a row
	un := call(t, b, nil)
	if un == nil {
		t.Fatal("a call went through an open circuit")
	}
	if un.RetryAfter != 10*time.Second {
		t.Errorf("RetryAfter %s, want the whole 10s cool-down", un.RetryAfter)
	}
	if err := b.check(); err == nil {
		t.Error("check passes while the circuit is open: Info would wait out its timeout")
	}
	clk.add(4 * time.Second)
	if un := call(t, b, nil); un == nil || un.RetryAfter != 6*time.Second {
		t.Fatalf("4s into the cool-down: refusal %v, want one with RetryAfter 6s", un)
	}
	clk.add(6 * time.Second)
	// Half-open: one probe at a time; a second call meanwhile is refused.
	gen, err := b.admit()
	if err != nil {
		t.Fatalf("the probe after the cool-down was refused: %v", err)
	}
	if un := call(t, b, nil); un == nil {
		t.Fatal("a second call went through while the probe was in flight")
	}
	b.done(gen, nil)
	if s := BreakerState(b.state.Load()); s != BreakerClosed {
		t.Fatalf("state %s after a successful probe, want closed", s)
	}
	want := []string{"closed->open", "open->half_open", "half_open->closed"}
	if fmt.Sprint(*changes) != fmt.Sprint(want) {
		t.Errorf("state changes %v, want %v", *changes, want)
	}
}

func TestBreakerFailedProbeReopens(t *testing.T) {
	b, clk, _ := newTestBreaker(BreakerSpec{Failures: 1, CoolDown: time.Second})
	call(t, b, fmt.Errorf("%w: no answer", mcpguard.ErrUpstreamTimeout))
	clk.add(time.Second)
	if un := call(t, b, errDown); un != nil {
		t.Fatalf("probe refused: %v", un)
	}
	if s := BreakerState(b.state.Load()); s != BreakerOpen {
		t.Fatalf("state %s after a failed probe, want open", s)
	}
	if un := call(t, b, nil); un == nil || un.RetryAfter != time.Second {
		t.Fatalf("after the failed probe: refusal %v, want a new 1s cool-down", un)
	}
}

func TestBreakerFailureRate(t *testing.T) {
	b, clk, _ := newTestBreaker(BreakerSpec{FailureRatio: 0.5, MinCalls: 10, Window: time.Minute, CoolDown: time.Second})
	// Alternating failures never make 2 in a row, but half of 10 calls failed.
	for i := range 9 {
		var outcome error
		if i%2 == 0 {
			outcome = errDown
		}
		call(t, b, outcome)
		clk.add(time.Second)
	}
	if s := BreakerState(b.state.Load()); s != BreakerClosed {
		t.Fatalf("state %s after 9 calls, fewer than min_calls, want closed", s)
	}
	call(t, b, nil)     // 10 calls, 5 failed
	call(t, b, errDown) // 11 calls, 6 failed: over the ratio
	if s := BreakerState(b.state.Load()); s != BreakerOpen {
		t.Fatalf("state %s with 6 of 11 calls failed, want open", s)
	}

	// Failures older than the window do not count.
	b2, clk2, _ := newTestBreaker(BreakerSpec{FailureRatio: 0.5, MinCalls: 4, Window: time.Minute, CoolDown: time.Second})
	call(t, b2, errDown)
	call(t, b2, nil)
	call(t, b2, errDown)
	clk2.add(2 * time.Minute)
	call(t, b2, nil)
	call(t, b2, errDown)
	call(t, b2, nil)
	if s := BreakerState(b2.state.Load()); s != BreakerClosed {
		t.Fatalf("state %s: failures outside the window were counted", s)
	}
}

func TestBreakerIgnoresAnswersAndAbandonedCalls(t *testing.T) {
	b, _, _ := newTestBreaker(BreakerSpec{Failures: 2, CoolDown: time.Second})
	for range 10 {
		call(t, b, context.Canceled)                     // the client went away
		call(t, b, &Unavailable{Upstream: "finance"})    // refused by the bulkhead, never sent
		call(t, b, errors.New("some other local error")) // not the upstream's fault
	}
	if s := BreakerState(b.state.Load()); s != BreakerClosed {
		t.Fatalf("state %s: outcomes that say nothing about the upstream opened it", s)
	}
}

func TestBreakerStaleOutcomeIgnored(t *testing.T) {
	b, clk, _ := newTestBreaker(BreakerSpec{Failures: 1, CoolDown: time.Second})
	slow, _ := b.admit() // admitted while closed, ends after the circuit opened and closed again
	call(t, b, errDown)
	clk.add(time.Second)
	call(t, b, nil) // probe closes it
	b.done(slow, errDown)
	if s := BreakerState(b.state.Load()); s != BreakerClosed {
		t.Fatalf("state %s: a call admitted two states ago reopened the circuit", s)
	}
}

func TestBulkhead(t *testing.T) {
	h := newBulkhead("finance", BulkheadSpec{Concurrent: 2, Queue: 1, QueueWait: time.Hour})
	ctx := context.Background()
	for range 2 {
		if err := h.enter(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The third waits; a fourth finds the queue full and is refused at once.
	entered := make(chan error, 1)
	go func() { entered <- h.enter(ctx) }()
	for h.waiting.Load() != 1 {
		time.Sleep(time.Millisecond)
	}
	err := h.enter(ctx)
	var un *Unavailable
	if !errors.As(err, &un) || un.RetryAfter <= 0 {
		t.Fatalf("fourth call: %v, want *Unavailable with a Retry-After", err)
	}
	h.release()
	if err := <-entered; err != nil {
		t.Fatalf("the waiting call: %v, want a slot once one was released", err)
	}
	// A waiting caller that goes away leaves the queue.
	cctx, cancel := context.WithCancel(ctx)
	go func() { entered <- h.enter(cctx) }()
	for h.waiting.Load() != 1 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-entered; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	if n := h.waiting.Load(); n != 0 {
		t.Fatalf("%d callers still counted as waiting", n)
	}

	short := newBulkhead("finance", BulkheadSpec{Concurrent: 1, Queue: 5, QueueWait: time.Millisecond})
	_ = short.enter(ctx)
	if err := short.enter(ctx); !errors.As(err, &un) {
		t.Fatalf("call past the queue wait: %v, want *Unavailable", err)
	}
	if newBulkhead("x", BulkheadSpec{}) != nil {
		t.Error("a bulkhead without concurrent: built, want none (no cap)")
	}
}

// TestBreakerOnDeadHTTPUpstream: against a real address where nothing listens, calls wait for
// the connection until their timeout only until the circuit opens; then they fail at once with
// *Unavailable, before any wait.
func TestBreakerOnDeadHTTPUpstream(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String() + "/mcp"
	l.Close()
	up, err := New(Spec{Name: "dead", Timeout: 200 * time.Millisecond, HTTP: &HTTPSpec{URL: url},
		Breaker: BreakerSpec{Failures: 2, CoolDown: time.Hour}}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	up.Start(t.Context())
	t.Cleanup(func() { _ = up.Close() })
	for i := range 2 {
		_, err := up.Info(t.Context())
		var un *Unavailable
		if !errors.Is(err, mcpguard.ErrUpstreamDown) || errors.As(err, &un) {
			t.Fatalf("attempt %d: %v, want the upstream down, not yet shed", i, err)
		}
	}
	_, err = up.Info(t.Context())
	var un *Unavailable
	if !errors.As(err, &un) || un.RetryAfter < 59*time.Minute {
		t.Fatalf("third attempt: %v, want *Unavailable with about an hour to wait", err)
	}
	if _, err := up.Call(t.Context(), &Request{Method: "tools/list"}, nil); !errors.As(err, &un) {
		t.Fatalf("Call with the circuit open: %v, want *Unavailable", err)
	}
	if s, ok := up.Breaker(); !ok || s != BreakerOpen {
		t.Errorf("Breaker() = %s %v, want open", s, ok)
	}
}
