// Package contain is the containment step of the request path: rate limits, network
// allowlists, brute-force detection and the blocks and suspensions that automatic responses and
// operators put in place. Its state lives in a Backend: in this process (Local) or shared by
// every instance of a deployment (Redis), with a failure policy that never leaves a limit off
// (Failover).
package contain

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Backend keeps the counters of limits, quotas and failure windows. Every method is atomic for
// its key (Admit for all its keys together): concurrent callers, on one instance or on many sharing the backend, never together
// take more than a limit allows. Keys are opaque strings the callers build (bounded in length);
// an implementation bounds how many it keeps. Each method has its own key space: a Take and a
// Count on the same key touch different state.
//
// An error means the answer is unknown: the caller refuses (fail closed). Arguments that make no
// sense (a limit that is not positive, a cost above the burst) fail with ErrBadLimit, the
// caller's bug and never the backend's failure.
type Backend interface {
	// Take takes cost tokens from the token bucket key, which refills at rate tokens a second
	// up to burst (a new bucket starts full). It reports whether the tokens were taken and,
	// when not, how long until they would be. rate and burst are positive and finite, cost
	// between 0 and burst.
	Take(ctx context.Context, key string, rate, burst, cost float64) (ok bool, retryAfter time.Duration, err error)
	// Acquire takes one of max concurrent slots of key. The slot is held until release is
	// called or lease passes, so an instance that dies returns its slots. release is nil when
	// ok is false; calling it more than once is harmless. max is at least 1, lease positive.
	Acquire(ctx context.Context, key string, max int, lease time.Duration) (release func(), ok bool, err error)
	// Add adds amount to the counter key when the total stays within limit, and reports the
	// total: after the addition when ok, as it stands when refused. The counter is forgotten
	// at expires (the end of its window), as the backend's clock reads it.
	Add(ctx context.Context, key string, amount, limit float64, expires time.Time) (total float64, ok bool, err error)
	// Count records one event in the sliding window key and returns how many events the key
	// holds within the last window, this one included. A key keeps at most WindowCap events:
	// beyond that, n stays at WindowCap (the count saturates; it never drops below a limit
	// set under WindowCap).
	Count(ctx context.Context, key string, window time.Duration) (n int, err error)
	// Mark records that key happened; it is forgotten after ttl (positive).
	Mark(ctx context.Context, key string, ttl time.Duration) error
	// Seen reports whether key was marked and is not yet forgotten.
	Seen(ctx context.Context, key string) (bool, error)
	// Admit applies a Batch atomically, all or none: every part holds and all are applied,
	// or nothing is applied and the result names the first part that refused. Its parts use
	// the key spaces of the single methods: a bucket of a Batch is the bucket Take draws
	// from, a slot the slots Acquire counts, a counter the counter Add adds to, a Seen key the
	// mark of Mark. Admit does not keep b.
	Admit(ctx context.Context, b *Batch) (BatchResult, error)
}

// Batch is what one call takes from a Backend at once (Backend.Admit). The parts are checked
// in this order, each list in its own order: Seen, Buckets, Slots, Counters; the first that
// refuses is the one reported. A key may appear more than once in a list: each later part
// sees what the earlier ones would take.
type Batch struct {
	// Seen are marks that must exist (Mark) and not be forgotten.
	Seen []string
	// Buckets are token buckets to take from, as Take does.
	Buckets []BucketTake
	// Slots are concurrency slots to acquire, as Acquire does.
	Slots []SlotAcquire
	// Counters are amounts to add within their limits, as Add does.
	Counters []CounterAdd
}

// BucketTake is one Take of a Batch: Cost tokens from the bucket Key, refilled at Rate a
// second up to Burst.
type BucketTake struct {
	Key               string
	Rate, Burst, Cost float64
}

// SlotAcquire is one Acquire of a Batch: one of Max slots of Key, leased for Lease.
type SlotAcquire struct {
	Key   string
	Max   int
	Lease time.Duration
}

// CounterAdd is one Add of a Batch: Amount to the counter Key, within Limit, forgotten at
// Expires.
type CounterAdd struct {
	Key           string
	Amount, Limit float64
	Expires       time.Time
}

// Part is a kind of part of a Batch.
type Part uint8

// The parts of a Batch, as BatchResult.Refused names them.
const (
	PartNone Part = iota
	PartSeen
	PartBucket
	PartSlot
	PartCounter
)

func (p Part) String() string {
	switch p {
	case PartSeen:
		return "seen"
	case PartBucket:
		return "bucket"
	case PartSlot:
		return "slot"
	case PartCounter:
		return "counter"
	}
	return "none"
}

// BatchResult is the answer of Backend.Admit.
type BatchResult struct {
	// OK reports whether every part held and all were applied.
	OK bool
	// Release, when OK, frees every slot the batch acquired, in one operation; it is never
	// nil then (a no-op without slots), and calling it again is harmless.
	Release func()
	// Refused and Index name the first part that refused, when not OK: its kind and its
	// index in that kind's list.
	Refused Part
	Index   int
	// RetryAfter is, for a bucket that refused, how long until its tokens would be there.
	RetryAfter time.Duration
	// Total is, for a counter that refused, its total as it stands (with what earlier parts
	// of the batch add to the same key).
	Total float64
}

// noRelease is the Release of a batch that acquired no slot.
func noRelease() {}

func (b *Batch) check() error {
	for i := range b.Buckets {
		p := &b.Buckets[i]
		if err := checkTake(p.Rate, p.Burst, p.Cost); err != nil {
			return err
		}
	}
	for i := range b.Slots {
		if err := checkAcquire(b.Slots[i].Max, b.Slots[i].Lease); err != nil {
			return err
		}
	}
	for i := range b.Counters {
		if err := checkAdd(b.Counters[i].Amount, b.Counters[i].Limit); err != nil {
			return err
		}
	}
	return nil
}

func (b *Batch) parts() int { return len(b.Seen) + len(b.Buckets) + len(b.Slots) + len(b.Counters) }

// WindowCap is the most events a sliding window (Backend.Count) keeps for one key.
const WindowCap = 4096

// ErrBadLimit is the error of a Backend call whose arguments make no sense (see Backend).
var ErrBadLimit = errors.New("invalid limit")

func checkTake(rate, burst, cost float64) error {
	if !(rate > 0) || math.IsInf(rate, 0) || !(burst > 0) || math.IsInf(burst, 0) || !(cost >= 0) || cost > burst {
		return fmt.Errorf("%w: taking %g from a bucket of %g refilled at %g a second", ErrBadLimit, cost, burst, rate)
	}
	return nil
}

func checkAcquire(max int, lease time.Duration) error {
	if max < 1 || lease <= 0 {
		return fmt.Errorf("%w: %d slots leased for %v", ErrBadLimit, max, lease)
	}
	return nil
}

func checkAdd(amount, limit float64) error {
	if math.IsNaN(amount) || math.IsInf(amount, 0) || math.IsNaN(limit) || math.IsInf(limit, 0) {
		return fmt.Errorf("%w: adding %g within %g", ErrBadLimit, amount, limit)
	}
	return nil
}

func checkDuration(what string, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("%w: %s %v", ErrBadLimit, what, d)
	}
	return nil
}

// Bus carries containment events (a block, a suspension, one lifted) to every instance of a
// deployment. Delivery is at most once; each instance resynchronises from the durable store
// when it (re)connects, so a missed message is repaired.
type Bus interface {
	// Publish sends msg to every subscriber, this instance's included.
	Publish(ctx context.Context, msg []byte) error
	// Subscribe calls fn for every message published, and resync whenever the subscription is
	// (re)established, the first time included — then the instance must reload what it may
	// have missed. fn and resync are never called concurrently. It returns nil when ctx ends,
	// an error when it never can subscribe (the bus closed).
	Subscribe(ctx context.Context, fn func(msg []byte), resync func()) error
}
