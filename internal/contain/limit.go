package contain

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/mcpguard/mcpguard/internal/policy"
)

// Limit applies every rate limit and quota of one call, once the policy has decided, in one
// Backend.Admit — one round trip to a shared backend — all or none:
//
//   - the configuration's rate limits: a token of each bucket (per principal, whose identity
//     key is identity; per client address; per target; per upstream), then a slot of each
//     concurrency bound;
//   - for a call the policy allowed, the decision's own: every mark it Requires must exist,
//     a token and a slot of each of its RateLimits, and its Charges added within their limits.
//
// Either all of them hold and are taken, or none is taken and the refusal names the limit or
// quota that refused: a call refused by one limit takes nothing from the others, and a refused
// charge counts toward no quota. A call the policy denied (d nil or not allowed) draws from
// the configuration's limits only, so that a caller probing with denied calls is rate limited
// like any other. A call that the decision's own limits refuse was still a call: it then draws
// a token from the configuration's buckets alone (a second operation, on that refusal only),
// and when one of those refuses, that refusal is the answer, as it would be had the
// configuration's limits been taken first.
//
// release ends the call's concurrency slots when the call has been answered; it is never nil
// when the call is admitted, and calling it again is harmless. When the backend fails, err
// says why and refusal is KindUnavailable: the call is refused (fail closed; a Failover
// backend answers from local limits instead). The suspension check (Suspended) is separate and
// in memory.
func (g *Guard) Limit(ctx context.Context, identity string, addr netip.Addr, target, upstream string, d *policy.Decision) (release func(), refusal *Refusal, err error) {
	cb := callBatches.Get().(*callBatch)
	defer cb.free()
	cb.config(g.limits, identity, addr, target, upstream)
	if d != nil && d.Allow {
		cb.policy(d)
	}
	if cb.parts() == 0 {
		return noRelease, nil, nil
	}
	res, err := g.b.Admit(ctx, &cb.Batch)
	if err != nil {
		return nil, limitsUnavailable(), fmt.Errorf("taking the call's limits: %w", err)
	}
	if res.OK {
		return res.Release, nil, nil
	}
	refusal = cb.refusal(res, g.now())
	if cb.configured(res) || cb.cfgBuckets == 0 {
		return nil, refusal, nil
	}
	cfg := &Batch{Buckets: cb.Buckets[:cb.cfgBuckets]}
	res, err = g.b.Admit(ctx, cfg)
	switch {
	case err != nil:
		g.logger.Warn("a call the policy's limits refused was not counted toward the configuration's", "err", err)
	case !res.OK:
		return nil, cb.refusal(res, g.now()), nil
	}
	return nil, refusal, nil
}

// Refund gives back what an admitted call charged to the policy's quotas (d.Charges), when the
// call was then not forwarded (its approval denied or timed out, its audit record not
// written): a quota counts the calls that were forwarded. The call's tokens are not given
// back: it was still a call. One Backend.Admit, detached from ctx's cancellation (a client that
// gave up waiting for an approval still gets its charges back) and bounded by refundTimeout.
func (g *Guard) Refund(ctx context.Context, d *policy.Decision) error {
	if d == nil || !d.Allow || len(d.Charges) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refundTimeout)
	defer cancel()
	b := &Batch{Counters: make([]CounterAdd, len(d.Charges))}
	for i := range d.Charges {
		ch := &d.Charges[i]
		// Within no limit: a reload that lowered the limit under the total must not keep
		// the refund out.
		b.Counters[i] = CounterAdd{Key: ch.Key, Amount: -ch.Amount, Limit: math.MaxFloat64, Expires: ch.Expires}
	}
	if _, err := g.b.Admit(ctx, b); err != nil {
		return fmt.Errorf("refunding the quotas of rule %s: %w", d.Rule, err)
	}
	return nil
}

// refundTimeout bounds a refund, which no request's deadline bounds.
const refundTimeout = 5 * time.Second

// maxCallLease bounds how long a concurrency slot outlives an instance that died holding it.
const maxCallLease = 10 * time.Minute

func limitsUnavailable() *Refusal {
	return &Refusal{Kind: KindUnavailable, RetryAfter: 5 * time.Second,
		Reason: "the gateway cannot check its limits right now; retry shortly"}
}

// callBatch is the Batch of one call, with what each part stands for, so that a refusal names
// its limit. The configuration's parts come first among Buckets and Slots; the backing arrays
// hold a usual call's parts without another allocation.
type callBatch struct {
	Batch
	// cfgBuckets and cfgSlots count the configuration's parts; cfgOf says which limit each
	// is (an index in configLimits), bucket then slot.
	cfgBuckets, cfgSlots int
	cfgOf                [2][len(configLimits)]uint8
	rates                [len(configLimits)]Rate
	// d is the decision whose parts follow; polBucket and polSlot give, for each of the
	// policy's buckets and slots, its index in d.RateLimits.
	d                  *policy.Decision
	polBucket, polSlot []int

	buckets [len(configLimits) + 2]BucketTake
	slots   [len(configLimits) + 2]SlotAcquire
	ints    [4]int
}

// callBatches recycles callBatches: a Backend does not keep the Batch it admits.
var callBatches = sync.Pool{New: func() any { return new(callBatch) }}

func (cb *callBatch) free() {
	*cb = callBatch{}
	callBatches.Put(cb)
}

// configLimits name the configuration's limits, in the order they are taken.
var configLimits = [...]string{"per_principal", "per_address", "per_tool", "per_upstream"}

// config adds the configuration's limits.
func (cb *callBatch) config(l Limits, identity string, addr netip.Addr, target, upstream string) {
	cb.Buckets, cb.Slots = cb.buckets[:0], cb.slots[:0]
	for i, rate := range [...]Rate{l.PerPrincipal, l.PerAddress, l.PerTool, l.PerUpstream} {
		// A limit without its subject is not taken: an unauthenticated caller has no principal
		// (it is limited by address), a list call no single tool or upstream. Taking it under an
		// empty key would make every such caller share one bucket.
		if !rate.On() || (i == 0 && identity == "") || (i == 1 && !addr.IsValid()) || (i == 2 && target == "") || (i == 3 && upstream == "") {
			continue
		}
		var key string
		switch i {
		case 0:
			key = "l:p:" + identity
		case 1:
			key = "l:a:" + addr.String()
		case 2:
			key = "l:t:" + target
		default:
			key = "l:u:" + upstream
		}
		cb.rates[i] = rate
		if rate.PerSecond > 0 {
			cb.cfgOf[0][len(cb.Buckets)] = uint8(i)
			cb.Buckets = append(cb.Buckets, BucketTake{Key: key, Rate: rate.PerSecond, Burst: burstOf(rate), Cost: 1})
		}
		if rate.Concurrent > 0 {
			cb.cfgOf[1][len(cb.Slots)] = uint8(i)
			cb.Slots = append(cb.Slots, SlotAcquire{Key: key + ":c", Max: rate.Concurrent, Lease: maxCallLease})
		}
	}
	cb.cfgBuckets, cb.cfgSlots = len(cb.Buckets), len(cb.Slots)
}

// policy adds the limits and quotas of an allowed decision.
func (cb *callBatch) policy(d *policy.Decision) {
	cb.d = d
	if len(d.Requires) > 0 {
		cb.Seen = make([]string, len(d.Requires))
		for i := range d.Requires {
			cb.Seen[i] = d.Requires[i].Key
		}
	}
	cb.polBucket, cb.polSlot = cb.ints[0:0:2], cb.ints[2:2:4]
	for i := range d.RateLimits {
		rl := &d.RateLimits[i]
		if rl.Rate > 0 {
			cb.polBucket = append(cb.polBucket, i)
			cb.Buckets = append(cb.Buckets, BucketTake{Key: rl.Key, Rate: rl.Rate, Burst: float64(rl.Burst), Cost: 1})
		}
		if rl.Concurrent > 0 {
			cb.polSlot = append(cb.polSlot, i)
			cb.Slots = append(cb.Slots, SlotAcquire{Key: rl.Key, Max: rl.Concurrent, Lease: maxCallLease})
		}
	}
	if len(d.Charges) > 0 {
		cb.Counters = make([]CounterAdd, len(d.Charges))
		for i := range d.Charges {
			ch := &d.Charges[i]
			cb.Counters[i] = CounterAdd{Key: ch.Key, Amount: ch.Amount, Limit: ch.Limit, Expires: ch.Expires}
		}
	}
}

// configured reports whether the part that refused is one of the configuration's limits.
func (cb *callBatch) configured(res BatchResult) bool {
	return res.Refused == PartBucket && res.Index < cb.cfgBuckets || res.Refused == PartSlot && res.Index < cb.cfgSlots
}

// refusal says which limit or quota refused, and why.
func (cb *callBatch) refusal(res BatchResult, now time.Time) *Refusal {
	i := res.Index
	switch res.Refused {
	case PartSeen:
		r := &cb.d.Requires[i]
		return &Refusal{Kind: KindQuota, Name: r.Quota, Rule: r.Rule, Reason: requirementReason(r)}
	case PartBucket:
		if i < cb.cfgBuckets {
			l := cb.cfgOf[0][i]
			name, rate := configLimits[l], cb.rates[l]
			return &Refusal{Kind: KindRateLimit, Name: name, RetryAfter: res.RetryAfter,
				Reason: "rate limit " + name + " reached: " + formatRate(rate.PerSecond) + " calls a second, bursts of " + strconv.FormatFloat(burstOf(rate), 'f', -1, 64)}
		}
		rl := &cb.d.RateLimits[cb.polBucket[i-cb.cfgBuckets]]
		return &Refusal{Kind: KindRateLimit, Name: "calls_per_second", Rule: rl.Rule, RetryAfter: res.RetryAfter,
			Reason: "rate limit " + rl.Rule + " reached: " + formatRate(rl.Rate) + " calls a second, bursts of " + strconv.Itoa(rl.Burst)}
	case PartSlot:
		if i < cb.cfgSlots {
			l := cb.cfgOf[1][i]
			name := configLimits[l]
			return &Refusal{Kind: KindRateLimit, Name: name, RetryAfter: time.Second,
				Reason: "concurrency limit " + name + " reached: " + strconv.Itoa(cb.rates[l].Concurrent) + " calls at once"}
		}
		rl := &cb.d.RateLimits[cb.polSlot[i-cb.cfgSlots]]
		return &Refusal{Kind: KindRateLimit, Name: "concurrent", Rule: rl.Rule, RetryAfter: time.Second,
			Reason: "concurrency limit " + rl.Rule + " reached: " + strconv.Itoa(rl.Concurrent) + " calls at once"}
	case PartCounter:
		ch := &cb.d.Charges[i]
		return &Refusal{Kind: KindQuota, Name: ch.Quota, Rule: ch.Rule, Reason: chargeReason(ch, res.Total), RetryAfter: max(0, ch.Expires.Sub(now))}
	}
	return limitsUnavailable()
}

// burstOf is a configured rate's burst: as configured, else one second's worth, at least 1.
func burstOf(r Rate) float64 {
	if r.Burst > 0 {
		return r.Burst
	}
	return max(1, r.PerSecond)
}

func formatRate(perSecond float64) string {
	if perSecond < 1 {
		return strconv.FormatFloat(perSecond, 'g', 4, 64) + " (" + strconv.FormatFloat(perSecond*60, 'g', 4, 64) + " a minute)"
	}
	return strconv.FormatFloat(perSecond, 'g', 6, 64)
}
