package contain_test

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/mcpguard/mcpguard/internal/contain"
	"github.com/mcpguard/mcpguard/internal/policy"
)

// TestRedisEveryKeyExpires: every key the backend writes has a time to live, so a server
// shared for months holds only live state.
func TestRedisEveryKeyExpires(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	ctx := t.Context()
	r, err := contain.NewRedis(ctx, contain.RedisOptions{Addr: srv.addr, Prefix: "ttl:", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Take(ctx, "k", 1, 10, 3)
	r.Acquire(ctx, "k", 2, time.Minute)
	r.Add(ctx, "k", 1, 10, time.Now().Add(time.Hour))
	r.Count(ctx, "k", time.Hour)
	r.Mark(ctx, "k", time.Hour)
	r.Admit(ctx, &contain.Batch{
		Seen:     []string{"k"},
		Buckets:  []contain.BucketTake{{Key: "batch", Rate: 1, Burst: 10, Cost: 3}},
		Slots:    []contain.SlotAcquire{{Key: "batch", Max: 2, Lease: time.Minute}},
		Counters: []contain.CounterAdd{{Key: "batch", Amount: 1, Limit: 10, Expires: time.Now().Add(time.Hour)}},
	})

	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.addr}, DisableCache: true, ForceSingleClient: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	keys, err := c.Do(ctx, c.B().Keys().Pattern("*").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) < 8 {
		t.Fatalf("keys %q: the backend wrote fewer than its five kinds and the batch's three", keys)
	}
	for _, k := range keys {
		if len(k) < 4 || k[:4] != "ttl:" {
			t.Errorf("key %q lacks the prefix", k)
		}
		ttl, err := c.Do(context.Background(), c.B().Pttl().Key(k).Build()).AsInt64()
		if err != nil || ttl <= 0 {
			t.Errorf("key %q: time to live %d ms (%v)", k, ttl, err)
		}
	}
}

// TestRedisOneRoundTripPerCall: the containment of a call — the configuration's four buckets,
// a policy's bucket, a sequence requirement and two quota charges, which took eight round
// trips one limit at a time — is one round trip to Redis: one script, counted both by the
// client (requests sent) and by the server (INFO commandstats). A concurrency limit adds one
// round trip after the call, its release.
func TestRedisOneRoundTripPerCall(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	ctx := t.Context()
	r := newRedis(t, srv.addr)
	trips := contain.CountRoundTrips(r)
	if err := r.Mark(ctx, "m:read:alice", time.Hour); err != nil {
		t.Fatal(err)
	}
	charge := func(name string) policy.Charge {
		return policy.Charge{Quota: name, Key: "q:" + name + ":s:5:alice:w", Amount: 1, Limit: 1e9, Expires: time.Now().Add(time.Hour), Per: "hour"}
	}
	d := &policy.Decision{Allow: true, Rule: "role:PM/permission:1",
		RateLimits: []policy.RateLimit{{Rule: "role:PM/rate_limit", Key: "r:role:2:PM:s:5:alice", Rate: 1000, Burst: 1000}},
		Requires:   []policy.Requirement{{Quota: "read-first", Key: "m:read:alice"}},
		Charges:    []policy.Charge{charge("trades-per-hour"), charge("daily-notional")}}
	fast := contain.Rate{PerSecond: 1000, Burst: 1000}
	for _, tt := range []struct {
		name   string
		limits contain.Limits
		want   int64 // round trips per call
	}{
		{"buckets and quotas", contain.Limits{PerPrincipal: fast, PerAddress: fast, PerTool: fast, PerUpstream: fast}, 1},
		{"and a concurrency limit", contain.Limits{PerPrincipal: fast, PerAddress: fast, PerTool: fast, PerUpstream: contain.Rate{PerSecond: 1000, Concurrent: 8}}, 2},
	} {
		g, err := contain.New(ctx, contain.Options{Backend: r, Limits: tt.limits})
		if err != nil {
			t.Fatal(err)
		}
		call := func() {
			t.Helper()
			release, ref, err := g.Limit(ctx, "alice", netip.MustParseAddr("10.0.0.1"), "finance.execute_trade_order", "finance", d)
			if err != nil || ref != nil {
				t.Fatalf("%s: refusal %+v, err %v", tt.name, ref, err)
			}
			release()
		}
		call() // loads the script: EVALSHA, NOSCRIPT, EVAL
		const calls = 20
		before, stats := trips.Load(), commandStats(t, srv.addr)
		for range calls {
			call()
		}
		after := commandStats(t, srv.addr)
		if n := trips.Load() - before; n != calls*tt.want {
			t.Errorf("%s: %d round trips for %d calls, want %d a call", tt.name, n, calls, tt.want)
		}
		if n := after["evalsha"] - stats["evalsha"]; n != calls {
			t.Errorf("%s: the server ran %d scripts for %d calls, want one a call", tt.name, n, calls)
		}
		if n := after["zrem"] - stats["zrem"]; n != calls*(tt.want-1) {
			t.Errorf("%s: %d slot releases for %d calls", tt.name, n, calls)
		}
	}
}

// commandStats reads how many times the server at addr ran each command (INFO commandstats).
func commandStats(t *testing.T, addr string) map[string]int64 {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true, ForceSingleClient: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info, err := c.Do(t.Context(), c.B().Info().Section("commandstats").Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	stats := map[string]int64{}
	for line := range strings.Lines(info) {
		name, rest, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "cmdstat_"), ":calls=")
		if !ok {
			continue
		}
		n, _, _ := strings.Cut(rest, ",")
		stats[name], _ = strconv.ParseInt(n, 10, 64)
	}
	return stats
}
