package contain

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/policy"
)

// clock is a settable clock for tests.
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

// memStore is a BlockStore in memory.
type memStore struct {
	mu sync.Mutex
	m  map[string]Block
}

func (s *memStore) PutBlock(_ context.Context, b Block) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[blockKey(b.Kind, b.Value)] = b
	return nil
}

func (s *memStore) LiftBlock(_ context.Context, kind, value string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[blockKey(kind, value)]
	delete(s.m, blockKey(kind, value))
	return ok, nil
}

func (s *memStore) Blocks(_ context.Context, now time.Time, limit int) ([]Block, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Block
	for _, b := range s.m {
		if b.Active(now) && len(out) < limit {
			out = append(out, b)
		}
	}
	return out, nil
}

func newTestGuard(t testing.TB, o Options) (*Guard, *clock, *[]Event) {
	t.Helper()
	c := &clock{t: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)}
	var events []Event
	var mu sync.Mutex
	o.Now = c.now
	o.Backend = NewLocal(LocalOptions{Now: c.now})
	o.OnEvent = func(_ context.Context, ev Event) { mu.Lock(); events = append(events, ev); mu.Unlock() }
	g, err := New(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	return g, c, &events
}

// TestBruteForceBlockGrows: the fifth failure in the window blocks the address for block_for;
// once that block ends, five more block it for twice as long, never beyond max_block.
func TestBruteForceBlockGrows(t *testing.T) {
	st := &memStore{m: map[string]Block{}}
	g, c, events := newTestGuard(t, Options{Store: st, BruteForce: BruteForce{BlockFor: 10 * time.Minute, MaxBlock: 30 * time.Minute}})
	addr := netip.MustParseAddr("203.0.113.7")
	for range 4 {
		g.AuthFailed(t.Context(), addr, "")
	}
	if _, ok := g.Blocked(BlockAddress, addr.String()); ok {
		t.Fatal("blocked after four failures")
	}
	g.AuthFailed(t.Context(), addr, "")
	b, ok := g.Blocked(BlockAddress, addr.String())
	if !ok || b.Expires.Sub(c.now()) != 10*time.Minute || b.Actor != AutomaticActor {
		t.Fatalf("after five failures: %+v, %v; want a 10m automatic block", b, ok)
	}
	if len(*events) != 1 || (*events)[0].Kind != "block" {
		t.Fatalf("events: %+v", *events)
	}
	if _, stored := st.m[blockKey(BlockAddress, addr.String())]; !stored {
		t.Error("the block is not in the store")
	}
	for _, want := range []time.Duration{20 * time.Minute, 30 * time.Minute, 30 * time.Minute} {
		c.add(b.Expires.Sub(c.now()) + time.Second)
		if _, ok := g.Blocked(BlockAddress, addr.String()); ok {
			t.Fatal("still blocked after the block's end")
		}
		c.add(6 * time.Minute) // out of the failure window
		for range 5 {
			g.AuthFailed(t.Context(), addr, "")
		}
		b, ok = g.Blocked(BlockAddress, addr.String())
		if !ok || b.Expires.Sub(c.now()) != want {
			t.Fatalf("repeat block: %+v, want %v", b, want)
		}
	}
	// Another address is untouched.
	if ref := admitFrom(g, "198.51.100.1"); ref != nil {
		t.Errorf("another address refused: %+v", ref)
	}
	if ref := admitFrom(g, addr.String()); ref == nil || ref.Kind != KindBlocked || ref.RetryAfter <= 0 {
		t.Errorf("the blocked address admitted: %+v", ref)
	}
}

func admitFrom(g *Guard, addr string) *Refusal {
	r := &httpRequest{RemoteAddr: netip.AddrPortFrom(netip.MustParseAddr(addr), 1234).String()}
	_, ref := g.Admit(r.request())
	return ref
}

// TestTargetedPrincipalIsDelayedNotLocked: failures against one API key from many addresses
// delay each further failure progressively, up to max_delay; the key is never refused for it.
func TestTargetedPrincipalIsDelayedNotLocked(t *testing.T) {
	g, _, _ := newTestGuard(t, Options{BruteForce: BruteForce{Delay: time.Second, MaxDelay: 8 * time.Second}})
	var got []time.Duration
	for i := range 9 {
		got = append(got, g.AuthFailed(t.Context(), netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), "key:abc"))
	}
	want := []time.Duration{0, 0, 0, 0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays %v, want %v", got, want)
		}
	}
	if ref := g.Suspended("abc"); ref != nil {
		t.Errorf("the targeted principal was suspended: %+v", ref)
	}
}

func TestBruteForceDisabled(t *testing.T) {
	g, _, _ := newTestGuard(t, Options{BruteForce: BruteForce{Disabled: true}})
	addr := netip.MustParseAddr("203.0.113.7")
	for range 50 {
		g.AuthFailed(t.Context(), addr, "key:x")
	}
	if _, ok := g.Blocked(BlockAddress, addr.String()); ok {
		t.Error("blocked with brute force detection disabled")
	}
}

// TestLimitRefusesAndReleases: each configured limit refuses past its rate with a Retry-After,
// and a concurrency slot comes back when the call ends.
func TestLimitRefusesAndReleases(t *testing.T) {
	g, c, _ := newTestGuard(t, Options{Limits: Limits{
		PerPrincipal: Rate{PerSecond: 1, Burst: 2},
		PerUpstream:  Rate{Concurrent: 1},
	}})
	addr := netip.MustParseAddr("10.0.0.1")
	limit := func(who string) (func(), *Refusal) {
		t.Helper()
		rel, ref, err := g.Limit(t.Context(), who, addr, "fin.trade", "fin", nil)
		if err != nil {
			t.Fatal(err)
		}
		return rel, ref
	}
	rel, ref := limit("alice")
	if ref != nil || rel == nil {
		t.Fatalf("first call: %+v", ref)
	}
	if _, ref := limit("bob"); ref == nil || ref.Name != "per_upstream" || ref.Kind != KindRateLimit {
		t.Fatalf("second concurrent call to the upstream: %+v, want per_upstream", ref)
	}
	rel()
	rel, ref = limit("alice")
	if ref != nil {
		t.Fatalf("after release: %+v", ref)
	}
	rel()
	_, ref = limit("alice")
	if ref == nil || ref.Name != "per_principal" || ref.RetryAfterSeconds() != 1 || ref.Status() != 429 {
		t.Fatalf("third call within the second: %+v, want per_principal, Retry-After 1", ref)
	}
	c.add(time.Second)
	if rel, ref := limit("alice"); ref != nil {
		t.Fatalf("a second later: %+v", ref)
	} else {
		rel()
	}
}

// TestLiftAndSuspend: a suspension refuses its principal only; lifting it (or a block that
// does not exist) is reported.
func TestLiftAndSuspend(t *testing.T) {
	g, _, events := newTestGuard(t, Options{Store: &memStore{m: map[string]Block{}}})
	if err := g.Put(t.Context(), Block{Kind: BlockPrincipal, Value: "agent-7", Reason: "compromised", Actor: "ann"}); err != nil {
		t.Fatal(err)
	}
	if ref := g.Suspended("agent-7"); ref == nil || ref.Kind != KindSuspended || ref.RetryAfter != 0 {
		t.Fatalf("suspended principal: %+v", ref)
	}
	if ref := g.Suspended("agent-8"); ref != nil {
		t.Fatalf("another principal: %+v", ref)
	}
	if err := g.Lift(t.Context(), BlockPrincipal, "agent-7", "bob"); err != nil {
		t.Fatal(err)
	}
	if err := g.Lift(t.Context(), BlockPrincipal, "agent-7", "bob"); err != ErrNoBlock {
		t.Fatalf("lifting twice: %v, want ErrNoBlock", err)
	}
	if ref := g.Suspended("agent-7"); ref != nil {
		t.Fatalf("after the lift: %+v", ref)
	}
	kinds := []string{}
	for _, e := range *events {
		kinds = append(kinds, e.Kind+":"+e.Block.Actor)
	}
	if len(kinds) != 2 || kinds[0] != "suspend:ann" || kinds[1] != "unsuspend:bob" {
		t.Errorf("events %v", kinds)
	}
	for _, bad := range []Block{
		{Kind: BlockAddress, Value: "::ffff:10.0.0.1", Reason: "r", Actor: "a"},
		{Kind: BlockAddress, Value: "10.0.0.1", Actor: "a"},
		{Kind: "ip", Value: "10.0.0.1", Reason: "r", Actor: "a"},
	} {
		if err := g.Put(t.Context(), bad); err == nil {
			t.Errorf("Put(%+v) accepted", bad)
		}
	}
}

// TestBlocksTravelOnTheBus: a block put on one guard reaches another on the same bus, and a
// malformed message changes nothing.
func TestBlocksTravelOnTheBus(t *testing.T) {
	bus := NewLocalBus()
	a, _, _ := newTestGuard(t, Options{Bus: bus})
	b, _, _ := newTestGuard(t, Options{Bus: bus})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go b.Run(ctx)
	go a.Run(ctx)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_ = bus.Publish(ctx, []byte(`{"op":"put","block":{"kind":"address","value":"not an address","reason":"x","actor":"y"}}`))
		if err := a.Put(ctx, Block{Kind: BlockAddress, Value: "203.0.113.9", Reason: "r", Actor: "ann"}); err != nil {
			t.Fatal(err)
		}
		if _, ok := b.Blocked(BlockAddress, "203.0.113.9"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the block never reached the other guard")
		}
		time.Sleep(10 * time.Millisecond) // the subscription starts asynchronously
	}
	if _, ok := b.Blocked(BlockAddress, "not an address"); ok {
		t.Error("a malformed message was applied")
	}
}

// BenchmarkContainStep is the containment step of one call on a Local backend, as the
// pipeline runs it: the suspension check, then Guard.Limit with the configuration's four
// buckets and a concurrency slot and, for "with-policy", a decision with a role's bucket, a
// sequence requirement and two quota charges, then the release. It reports the p50 and p99 of
// the step's latency besides ns/op: the target is 5 µs p99 in process.
func BenchmarkContainStep(b *testing.B) {
	charge := func(name string) policy.Charge {
		return policy.Charge{Quota: name, Rule: "role:PM/permission:1", Key: "q:" + name + ":s:5:alice:w", Amount: 1, Limit: 1e15,
			Expires: time.Now().Add(time.Hour), Per: "hour"}
	}
	for _, bc := range []struct {
		name string
		d    *policy.Decision
	}{
		{"config", nil},
		{"with-policy", &policy.Decision{Allow: true, Rule: "role:PM/permission:1",
			RateLimits: []policy.RateLimit{{Rule: "role:PM/rate_limit", Key: "r:role:2:PM:s:5:alice", Rate: 1e9, Burst: 1e9}},
			Requires:   []policy.Requirement{{Quota: "read-first", Rule: "role:PM/permission:1", Key: "m:read:alice"}},
			Charges:    []policy.Charge{charge("trades-per-hour"), charge("daily-notional")}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g, err := New(b.Context(), Options{Limits: Limits{
				PerPrincipal: Rate{PerSecond: 1e9, Burst: 1e9, Concurrent: 1 << 20},
				PerAddress:   Rate{PerSecond: 1e9, Burst: 1e9},
				PerTool:      Rate{PerSecond: 1e9, Burst: 1e9},
				PerUpstream:  Rate{PerSecond: 1e9, Burst: 1e9},
			}})
			if err != nil {
				b.Fatal(err)
			}
			if err := g.Backend().Mark(b.Context(), "m:read:alice", time.Hour); err != nil {
				b.Fatal(err)
			}
			addr := netip.MustParseAddr("10.0.0.1")
			step := func(ctx context.Context) error {
				if g.Suspended("alice") != nil {
					return errors.New("suspended")
				}
				release, ref, err := g.Limit(ctx, "alice", addr, "finance.execute_trade_order", "finance", bc.d)
				if err != nil {
					return err
				}
				if ref != nil {
					return errors.New(ref.Reason)
				}
				release()
				return nil
			}
			b.Run("serial", func(b *testing.B) { BenchLatency(b, false, step) })
			b.Run("parallel", func(b *testing.B) { BenchLatency(b, true, step) })
		})
	}
}

// BenchLatency runs op b.N times — on one goroutine, or in parallel (b.RunParallel) — and
// reports, besides ns/op, the p50 and p99 of op's latency (p50-ns, p99-ns), measured around
// each call. In parallel, every goroutine calls op on the same keys: the contended case.
func BenchLatency(b *testing.B, parallel bool, op func(ctx context.Context) error) {
	var mu sync.Mutex
	var all []time.Duration
	run := func(next func() bool) {
		ctx := context.Background()
		var mine []time.Duration
		for next() {
			start := time.Now()
			if err := op(ctx); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(start))
		}
		mu.Lock()
		all = append(all, mine...)
		mu.Unlock()
	}
	b.ReportAllocs()
	b.ResetTimer()
	if parallel {
		b.RunParallel(func(pb *testing.PB) { run(pb.Next) })
	} else {
		run(b.Loop)
	}
	b.StopTimer()
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	b.ReportMetric(float64(all[len(all)/2]), "p50-ns")
	b.ReportMetric(float64(all[len(all)*99/100]), "p99-ns")
}

// httpRequest builds a minimal *http.Request for Admit.
type httpRequest struct{ RemoteAddr string }

func (h *httpRequest) request() *http.Request {
	return &http.Request{RemoteAddr: h.RemoteAddr, Header: http.Header{}}
}

// TestLimitsWithoutSubjectAreNotShared: unauthenticated callers are limited by address only,
// and list calls (no single tool or upstream) by principal and address only: no two of them
// share a bucket under an empty key.
func TestLimitsWithoutSubjectAreNotShared(t *testing.T) {
	g, _, _ := newTestGuard(t, Options{Limits: Limits{
		PerPrincipal: Rate{PerSecond: 1, Burst: 1},
		PerTool:      Rate{PerSecond: 1, Burst: 1},
		PerUpstream:  Rate{PerSecond: 1, Burst: 1},
	}})
	for i := range 3 {
		addr := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
		rel, ref, err := g.Limit(t.Context(), "", addr, "", "", nil)
		if err != nil || ref != nil {
			t.Fatalf("anonymous list call %d: %+v %v; want admitted (no shared empty-key bucket)", i, ref, err)
		}
		if rel != nil {
			rel()
		}
	}
}
