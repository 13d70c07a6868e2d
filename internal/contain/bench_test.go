package contain_test

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/contain"
	"github.com/mcpguard/mcpguard/internal/policy"
)

// benchKeys are the keys the Take benchmarks spread over: a principal's, an address's.
var benchKeys = func() []string {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "l:p:principal-" + strconv.Itoa(i)
	}
	return keys
}()

// benchTake runs Take in parallel over benchKeys, with a rate that admits every call.
func benchTake(b *testing.B, backend contain.Backend) {
	ctx := context.Background()
	for _, k := range benchKeys {
		if _, _, err := backend.Take(ctx, k, 1e9, 1e9, 1); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Uint32
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := next.Add(7919)
		for pb.Next() {
			i++
			if _, _, err := backend.Take(ctx, benchKeys[i%uint32(len(benchKeys))], 1e9, 1e9, 1); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkLocalTake(b *testing.B) {
	benchTake(b, contain.NewLocal(contain.LocalOptions{}))
}

// BenchmarkRedisTake is one round trip to a redis-server on loopback per call.
func BenchmarkRedisTake(b *testing.B) {
	srv := startRedis(b)
	r := newRedis(b, srv.addr)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := r.Take(ctx, "l:p:alice", 1e9, 1e9, 1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRedisTakeParallel: concurrent calls share the client's pipelined connections.
func BenchmarkRedisTakeParallel(b *testing.B) {
	srv := startRedis(b)
	benchTake(b, newRedis(b, srv.addr))
}

// BenchmarkFailoverDegradedTake: the shared backend is down; all but one call a Retry go to
// the local backend at once.
func BenchmarkFailoverDegradedTake(b *testing.B) {
	f, err := contain.NewFailover(downBackend{}, contain.NewLocal(contain.LocalOptions{}), contain.FailoverOptions{Retry: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	benchTake(b, f)
	if !f.Degraded() {
		b.Fatal("the failover is not degraded: the benchmark measured something else")
	}
}

// BenchmarkRedisContainStep is the containment of one call on Redis (loopback), as
// BenchmarkContainStep's "with-policy" without the concurrency slot: the configuration's four
// buckets, a role's bucket, a sequence requirement and two quota charges in one round trip
// (Guard.Limit). "single-operations" takes the same eight one at a time, as the gateway did
// before Admit, for comparison. One call at a time: p50 and p99 are a call's latency.
func BenchmarkRedisContainStep(b *testing.B) {
	srv := startRedis(b)
	r := newRedis(b, srv.addr)
	ctx := context.Background()
	if err := r.Mark(ctx, "m:read:alice", time.Hour); err != nil {
		b.Fatal(err)
	}
	fast := contain.Rate{PerSecond: 1e9, Burst: 1e9}
	g, err := contain.New(ctx, contain.Options{Backend: r, Limits: contain.Limits{PerPrincipal: fast, PerAddress: fast, PerTool: fast, PerUpstream: fast}})
	if err != nil {
		b.Fatal(err)
	}
	expires := time.Now().Add(time.Hour)
	d := &policy.Decision{Allow: true, Rule: "role:PM/permission:1",
		RateLimits: []policy.RateLimit{{Rule: "role:PM/rate_limit", Key: "r:role:2:PM:s:5:alice", Rate: 1e9, Burst: 1e9}},
		Requires:   []policy.Requirement{{Quota: "read-first", Key: "m:read:alice"}},
		Charges: []policy.Charge{
			{Quota: "trades-per-hour", Key: "q:trades-per-hour:s:5:alice:w", Amount: 1, Limit: 1e15, Expires: expires},
			{Quota: "daily-notional", Key: "q:daily-notional:s:5:alice:w", Amount: 1, Limit: 1e15, Expires: expires},
		}}
	addr := netip.MustParseAddr("10.0.0.1")
	b.Run("one-round-trip", func(b *testing.B) {
		contain.BenchLatency(b, false, func(ctx context.Context) error {
			release, ref, err := g.Limit(ctx, "alice", addr, "finance.execute_trade_order", "finance", d)
			if err != nil {
				return err
			}
			if ref != nil {
				return errors.New(ref.Reason)
			}
			release()
			return nil
		})
	})
	b.Run("single-operations", func(b *testing.B) {
		contain.BenchLatency(b, false, func(ctx context.Context) error {
			for _, k := range []string{"l:p:alice", "l:a:10.0.0.1", "l:t:finance.execute_trade_order", "l:u:finance", d.RateLimits[0].Key} {
				if _, _, err := r.Take(ctx, k, 1e9, 1e9, 1); err != nil {
					return err
				}
			}
			if _, err := r.Seen(ctx, d.Requires[0].Key); err != nil {
				return err
			}
			for _, ch := range d.Charges {
				if _, _, err := r.Add(ctx, ch.Key, ch.Amount, ch.Limit, ch.Expires); err != nil {
					return err
				}
			}
			return nil
		})
	})
}
