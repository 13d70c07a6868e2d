package contain

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// FailoverOptions configures a Failover; the zero value is ready to use.
type FailoverOptions struct {
	// Fraction of every limit that this instance applies alone while the shared backend is
	// down, in (0, 1] (default 0.5). Set it to about one over the number of instances: the
	// deployment then admits about what the shared limit would.
	Fraction float64
	// Retry is how often a call tries the shared backend again while it is down (default 1s).
	Retry time.Duration
	// OnDegraded is called once an outage, when the shared backend first fails, with its
	// error; OnRestored once when it answers again. They run on the calling goroutine, one at a time, and must return
	// quickly. Both may be nil.
	OnDegraded func(err error)
	OnRestored func()
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Failover is the Backend of a deployment with a shared backend (Redis): it answers from the
// shared one and, while that one fails, from a local one with every limit scaled by Fraction.
// It never answers "allowed" for want of state: when the local one fails too, the call fails
// and the caller refuses.
//
// While degraded, Failover tries the shared backend again with one call every Retry, all
// other calls going straight to the local one, so a dead server costs latency to one call a
// Retry, not to every call; the first call the shared backend answers restores it. A call whose
// context has ended before it starts or is canceled while it waits, or whose arguments are
// wrong (ErrBadLimit), says nothing of the shared backend's health: it fails without degrading.
//
// Scaling, while degraded: Take uses rate×Fraction and burst×Fraction (at least 1, or the
// burst when below 1, and at least cost); Acquire max×Fraction slots (at least 1); Add a
// limit×Fraction and reports the local total ÷ Fraction; Count reports the local count ÷
// Fraction, rounded up; Admit scales each part of its batch as the single method would, and
// reports a refusing counter's total ÷ Fraction. Totals and counts are thereby scaled back to the whole deployment's,
// which the callers' limits are written for. Mark and Seen have nothing to scale; while
// degraded they use the local backend, so a mark made during an outage is unknown to the other
// instances, and one made before it unknown to this one. The local state is not copied to the
// shared backend when it returns.
type Failover struct {
	shared, local Backend
	fraction      float64
	retry         time.Duration
	onDegraded    func(error)
	onRestored    func()
	now           func() time.Time

	degraded atomic.Bool
	nextTry  atomic.Int64 // Unix nanoseconds after which a call may try the shared backend
	mu       sync.Mutex   // serialises the changes of degraded and their callbacks
}

// NewFailover returns a Failover over shared and local (usually a Redis and a Local).
func NewFailover(shared, local Backend, opts FailoverOptions) (*Failover, error) {
	f := &Failover{
		shared: shared, local: local, fraction: opts.Fraction, retry: opts.Retry,
		onDegraded: opts.OnDegraded, onRestored: opts.OnRestored, now: opts.Now,
	}
	if f.fraction == 0 {
		f.fraction = 0.5
	}
	if !(f.fraction > 0 && f.fraction <= 1) {
		return nil, fmt.Errorf("failover: fraction %g is not in (0, 1]", opts.Fraction)
	}
	if f.retry <= 0 {
		f.retry = time.Second
	}
	if f.onDegraded == nil {
		f.onDegraded = func(error) {}
	}
	if f.onRestored == nil {
		f.onRestored = func() {}
	}
	if f.now == nil {
		f.now = time.Now
	}
	return f, nil
}

// Degraded reports whether the shared backend is considered down.
func (f *Failover) Degraded() bool { return f.degraded.Load() }

// tryShared reports whether this call goes to the shared backend: always when it is up; while
// it is down, one call every Retry.
func (f *Failover) tryShared() bool {
	if !f.degraded.Load() {
		return true
	}
	next, now := f.nextTry.Load(), f.now().UnixNano()
	return now >= next && f.nextTry.CompareAndSwap(next, now+int64(f.retry))
}

// answered records that the shared backend answered.
func (f *Failover) answered() {
	if !f.degraded.Load() {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.degraded.Load() {
		f.degraded.Store(false)
		f.onRestored()
	}
}

// failed records that the shared backend failed the call with err, and reports whether the
// call should be answered locally: not when the failure is the caller's (ErrBadLimit, its
// context canceled). A deadline that passes while the shared backend has not answered is the
// backend's: a server that stopped answering would otherwise cost every call its whole
// deadline.
func (f *Failover) failed(ctx context.Context, err error) bool {
	if errors.Is(err, ErrBadLimit) || errors.Is(ctx.Err(), context.Canceled) {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextTry.Store(f.now().UnixNano() + int64(f.retry))
	if !f.degraded.Load() {
		f.degraded.Store(true)
		f.onDegraded(err)
	}
	return true
}

func localFailed(err error) error {
	return fmt.Errorf("shared limits unavailable and local ones failed: %w", err)
}

// Take implements Backend.
func (f *Failover) Take(ctx context.Context, key string, rate, burst, cost float64) (bool, time.Duration, error) {
	if err := checkTake(rate, burst, cost); err != nil {
		return false, 0, err
	}
	if err := ctx.Err(); err != nil {
		return false, 0, err
	}
	if f.tryShared() {
		ok, retry, err := f.shared.Take(ctx, key, rate, burst, cost)
		if err == nil {
			f.answered()
			return ok, retry, nil
		}
		if !f.failed(ctx, err) {
			return false, 0, err
		}
	}
	b := max(burst*f.fraction, min(1, burst), cost)
	ok, retry, err := f.local.Take(ctx, key, rate*f.fraction, b, cost)
	if err != nil {
		return false, 0, localFailed(err)
	}
	return ok, retry, nil
}

// Acquire implements Backend.
func (f *Failover) Acquire(ctx context.Context, key string, maxSlots int, lease time.Duration) (func(), bool, error) {
	if err := checkAcquire(maxSlots, lease); err != nil {
		return nil, false, err
	}
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	if f.tryShared() {
		release, ok, err := f.shared.Acquire(ctx, key, maxSlots, lease)
		if err == nil {
			f.answered()
			return release, ok, nil
		}
		if !f.failed(ctx, err) {
			return nil, false, err
		}
	}
	release, ok, err := f.local.Acquire(ctx, key, max(1, int(float64(maxSlots)*f.fraction)), lease)
	if err != nil {
		return nil, false, localFailed(err)
	}
	return release, ok, nil
}

// Add implements Backend.
func (f *Failover) Add(ctx context.Context, key string, amount, limit float64, expires time.Time) (float64, bool, error) {
	if err := checkAdd(amount, limit); err != nil {
		return 0, false, err
	}
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	if f.tryShared() {
		total, ok, err := f.shared.Add(ctx, key, amount, limit, expires)
		if err == nil {
			f.answered()
			return total, ok, nil
		}
		if !f.failed(ctx, err) {
			return 0, false, err
		}
	}
	total, ok, err := f.local.Add(ctx, key, amount, limit*f.fraction, expires)
	if err != nil {
		return 0, false, localFailed(err)
	}
	return total / f.fraction, ok, nil
}

// Count implements Backend.
func (f *Failover) Count(ctx context.Context, key string, window time.Duration) (int, error) {
	if err := checkDuration("window", window); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if f.tryShared() {
		n, err := f.shared.Count(ctx, key, window)
		if err == nil {
			f.answered()
			return n, nil
		}
		if !f.failed(ctx, err) {
			return 0, err
		}
	}
	n, err := f.local.Count(ctx, key, window)
	if err != nil {
		return 0, localFailed(err)
	}
	return int(math.Ceil(float64(n) / f.fraction)), nil
}

// Mark implements Backend.
func (f *Failover) Mark(ctx context.Context, key string, ttl time.Duration) error {
	if err := checkDuration("ttl", ttl); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if f.tryShared() {
		err := f.shared.Mark(ctx, key, ttl)
		if err == nil {
			f.answered()
			return nil
		}
		if !f.failed(ctx, err) {
			return err
		}
	}
	if err := f.local.Mark(ctx, key, ttl); err != nil {
		return localFailed(err)
	}
	return nil
}

// Seen implements Backend.
func (f *Failover) Seen(ctx context.Context, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if f.tryShared() {
		seen, err := f.shared.Seen(ctx, key)
		if err == nil {
			f.answered()
			return seen, nil
		}
		if !f.failed(ctx, err) {
			return false, err
		}
	}
	seen, err := f.local.Seen(ctx, key)
	if err != nil {
		return false, localFailed(err)
	}
	return seen, nil
}

// Admit implements Backend.
func (f *Failover) Admit(ctx context.Context, b *Batch) (BatchResult, error) {
	if err := b.check(); err != nil {
		return BatchResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return BatchResult{}, err
	}
	if f.tryShared() {
		res, err := f.shared.Admit(ctx, b)
		if err == nil {
			f.answered()
			return res, nil
		}
		if !f.failed(ctx, err) {
			return BatchResult{}, err
		}
	}
	res, err := f.local.Admit(ctx, f.scale(b))
	if err != nil {
		return BatchResult{}, localFailed(err)
	}
	if res.Refused == PartCounter {
		res.Total /= f.fraction
	}
	return res, nil
}

// scale returns b with every limit scaled by the fraction, as the single methods scale them.
func (f *Failover) scale(b *Batch) *Batch {
	s := &Batch{
		Seen:     b.Seen,
		Buckets:  slices.Clone(b.Buckets),
		Slots:    slices.Clone(b.Slots),
		Counters: slices.Clone(b.Counters),
	}
	for i := range s.Buckets {
		p := &s.Buckets[i]
		p.Rate, p.Burst = p.Rate*f.fraction, max(p.Burst*f.fraction, min(1, p.Burst), p.Cost)
	}
	for i := range s.Slots {
		s.Slots[i].Max = max(1, int(float64(s.Slots[i].Max)*f.fraction))
	}
	for i := range s.Counters {
		s.Counters[i].Limit *= f.fraction
	}
	return s
}
