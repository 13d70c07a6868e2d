package contain_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/contain"
)

// The same suite runs over every Backend: the local one, Redis, and a Failover over both while
// Redis answers.

func TestLocal(t *testing.T) {
	t.Parallel()
	testBackend(t, func(t *testing.T) contain.Backend { return contain.NewLocal(contain.LocalOptions{}) })
}

func TestRedis(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	testBackend(t, func(t *testing.T) contain.Backend { return newRedis(t, srv.addr) })
}

func TestFailoverWhileRedisAnswers(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	testBackend(t, func(t *testing.T) contain.Backend {
		f, err := contain.NewFailover(newRedis(t, srv.addr), contain.NewLocal(contain.LocalOptions{}), contain.FailoverOptions{
			OnDegraded: func(err error) { t.Errorf("degraded while Redis runs: %v", err) },
		})
		if err != nil {
			t.Fatal(err)
		}
		return f
	})
}

// testBackend checks the Backend contract against fresh backends from newBackend. The backends
// run on real clocks, so an assertion that a limit still holds is only made while less time
// has passed than would lift it; waiting polls the clock.
func testBackend(t *testing.T, newBackend func(t *testing.T) contain.Backend) {
	t.Run("TakeRefillsAndSaysWhen", func(t *testing.T) {
		t.Parallel()
		b, ctx := newBackend(t), t.Context()
		start := time.Now()
		if ok := mustTake(t, b, "k", 5, 10, 10); !ok {
			t.Fatal("a new bucket is not full")
		}
		ok, retry, err := b.Take(ctx, "k", 5, 10, 10)
		elapsed := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		// 10 tokens at 5 a second take 2s to come back.
		if ok && elapsed < 2*time.Second {
			t.Fatalf("the whole burst was taken twice within %v", elapsed)
		}
		if !ok && (retry > 2*time.Second || retry < 2*time.Second-elapsed-time.Millisecond) {
			t.Errorf("retryAfter = %v after %v, want 2s less the time passed", retry, elapsed)
		}
		eventually(t, "a token refills", func() bool { return mustTake(t, b, "k", 5, 10, 1) })
	})

	t.Run("RacersForOneTokenAdmitOne", func(t *testing.T) {
		t.Parallel()
		b, ctx := newBackend(t), t.Context()
		var wg sync.WaitGroup
		var admitted, failed atomic.Int32
		start := make(chan struct{})
		for range 200 {
			wg.Go(func() {
				<-start
				ok, _, err := b.Take(ctx, "race", 0.001, 1, 1)
				if err != nil {
					failed.Add(1)
				}
				if ok {
					admitted.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if admitted.Load() != 1 || failed.Load() != 0 {
			t.Errorf("%d of 200 racers admitted (%d errors), want exactly 1", admitted.Load(), failed.Load())
		}
	})

	t.Run("AcquireUpToMax", func(t *testing.T) {
		t.Parallel()
		b, ctx := newBackend(t), t.Context()
		var releases []func()
		for i := range 3 {
			release, ok, err := b.Acquire(ctx, "c", 3, time.Hour)
			if err != nil || !ok || release == nil {
				t.Fatalf("slot %d of 3: ok=%v err=%v", i+1, ok, err)
			}
			releases = append(releases, release)
		}
		release, ok, err := b.Acquire(ctx, "c", 3, time.Hour)
		if err != nil || ok || release != nil {
			t.Fatalf("a fourth slot of 3: ok=%v release=%v err=%v", ok, release != nil, err)
		}
		releases[0]()
		releases[0]() // a second release frees nothing more
		if _, ok, err := b.Acquire(ctx, "c", 3, time.Hour); err != nil || !ok {
			t.Fatalf("no slot after a release: ok=%v err=%v", ok, err)
		}
		if _, ok, err := b.Acquire(ctx, "c", 3, time.Hour); err != nil || ok {
			t.Fatalf("a release twice freed two slots: ok=%v err=%v", ok, err)
		}
	})

	t.Run("LeaseEndsASlot", func(t *testing.T) {
		t.Parallel()
		b, ctx := newBackend(t), t.Context()
		const lease = 500 * time.Millisecond
		start := time.Now()
		if _, ok, err := b.Acquire(ctx, "c", 1, lease); err != nil || !ok {
			t.Fatalf("first slot: ok=%v err=%v", ok, err)
		}
		acquired := time.Now()
		_, ok, err := b.Acquire(ctx, "c", 1, lease)
		if err != nil {
			t.Fatal(err)
		}
		if elapsed := time.Since(start); ok && elapsed < lease {
			t.Fatalf("a second slot of 1 within %v of the first's lease", elapsed)
		}
		after(t, acquired, lease+2*time.Millisecond)
		if _, ok, err := b.Acquire(ctx, "c", 1, lease); err != nil || !ok {
			t.Fatalf("the slot of an ended lease is not free: ok=%v err=%v", ok, err)
		}
	})

	t.Run("AddWithinLimit", func(t *testing.T) {
		t.Parallel()
		b := newBackend(t)
		hour := time.Now().Add(time.Hour)
		for _, step := range []struct {
			amount, total float64
			ok            bool
		}{
			{4, 4, true},
			{5.5, 9.5, true},
			{2, 9.5, false}, // refused: the total as it stands
			{0.5, 10, true}, // the limit itself is within it
			{0.25, 10, false},
		} {
			total, ok, err := b.Add(t.Context(), "q", step.amount, 10, hour)
			if err != nil || total != step.total || ok != step.ok {
				t.Fatalf("add %v: (%v, %v, %v), want (%v, %v)", step.amount, total, ok, err, step.total, step.ok)
			}
		}
	})

	t.Run("AddForgetsAtExpires", func(t *testing.T) {
		t.Parallel()
		b, ctx := newBackend(t), t.Context()
		start := time.Now()
		expires := start.Add(500 * time.Millisecond)
		if total, ok, err := b.Add(ctx, "q", 5, 6, expires); err != nil || !ok || total != 5 {
			t.Fatalf("first add: (%v, %v, %v)", total, ok, err)
		}
		after(t, expires, 2*time.Millisecond)
		total, ok, err := b.Add(ctx, "q", 5, 6, time.Now().Add(time.Hour))
		if err != nil || !ok || total != 5 {
			t.Fatalf("an add after the counter's window: (%v, %v, %v), want (5, true)", total, ok, err)
		}
	})

	t.Run("CountSlides", func(t *testing.T) {
		t.Parallel()
		b := newBackend(t)
		const window = time.Second
		start := time.Now()
		for want := 1; want <= 3; want++ {
			n := mustCount(t, b, "w", window)
			if n != want && time.Since(start) < window {
				t.Fatalf("event %d: count %d", want, n)
			}
		}
		after(t, time.Now(), window+2*time.Millisecond)
		if n := mustCount(t, b, "w", window); n != 1 {
			t.Fatalf("count %d after the window passed, want 1 (this event)", n)
		}
	})

	t.Run("CountSaturates", func(t *testing.T) {
		t.Parallel()
		b := newBackend(t)
		n := 0
		for range contain.WindowCap + 10 {
			n = mustCount(t, b, "w", time.Hour)
		}
		if n != contain.WindowCap {
			t.Fatalf("count %d after %d events, want WindowCap (%d)", n, contain.WindowCap+10, contain.WindowCap)
		}
	})

	t.Run("MarkIsSeenForItsTTL", func(t *testing.T) {
		t.Parallel()
		b, ctx := newBackend(t), t.Context()
		if mustSeen(t, b, "m") {
			t.Fatal("seen before marked")
		}
		const ttl = 500 * time.Millisecond
		start := time.Now()
		if err := b.Mark(ctx, "m", ttl); err != nil {
			t.Fatal(err)
		}
		marked := time.Now()
		if seen := mustSeen(t, b, "m"); !seen && time.Since(start) < ttl {
			t.Fatal("not seen right after marked")
		}
		after(t, marked, ttl+2*time.Millisecond)
		if mustSeen(t, b, "m") {
			t.Fatal("seen after its ttl")
		}
	})

	t.Run("MethodsHaveTheirOwnKeys", func(t *testing.T) {
		t.Parallel()
		b, ctx := newBackend(t), t.Context()
		mustTake(t, b, "x", 0.001, 1, 1)
		if n := mustCount(t, b, "x", time.Hour); n != 1 {
			t.Errorf("count %d", n)
		}
		if _, ok, err := b.Acquire(ctx, "x", 1, time.Hour); err != nil || !ok {
			t.Errorf("acquire: %v %v", ok, err)
		}
		if total, ok, err := b.Add(ctx, "x", 1, 1, time.Now().Add(time.Hour)); err != nil || !ok || total != 1 {
			t.Errorf("add: %v %v %v", total, ok, err)
		}
		if err := b.Mark(ctx, "x", time.Hour); err != nil {
			t.Error(err)
		}
		if !mustSeen(t, b, "x") {
			t.Error("not seen")
		}
	})

	t.Run("AdmitAllOrNone", func(t *testing.T) {
		t.Parallel()
		b, ctx := newBackend(t), t.Context()
		hour := time.Now().Add(time.Hour)
		if err := b.Mark(ctx, "m", time.Hour); err != nil {
			t.Fatal(err)
		}
		// The state before: a bucket of 10 at 4, one of 2 slots held, a counter at 5 of 10.
		mustTake(t, b, "b", 0.001, 10, 6)
		if _, ok, err := b.Acquire(ctx, "s", 2, time.Hour); err != nil || !ok {
			t.Fatalf("acquire: %v %v", ok, err)
		}
		if _, ok, err := b.Add(ctx, "c", 5, 10, hour); err != nil || !ok {
			t.Fatalf("add: %v %v", ok, err)
		}
		batch := func() *contain.Batch {
			return &contain.Batch{
				Seen:     []string{"m"},
				Buckets:  []contain.BucketTake{{Key: "b", Rate: 0.001, Burst: 10, Cost: 3}, {Key: "b2", Rate: 0.001, Burst: 5, Cost: 1}},
				Slots:    []contain.SlotAcquire{{Key: "s", Max: 2, Lease: time.Hour}, {Key: "s2", Max: 1, Lease: time.Hour}},
				Counters: []contain.CounterAdd{{Key: "c", Amount: 2, Limit: 10, Expires: hour}, {Key: "c2", Amount: 1, Limit: 1, Expires: hour}},
			}
		}
		// Each kind of part refusing in turn, the others all holding.
		for _, tt := range []struct {
			name  string
			spoil func(*contain.Batch)
			part  contain.Part
			index int
		}{
			{"a mark never made", func(x *contain.Batch) { x.Seen = append(x.Seen, "never") }, contain.PartSeen, 1},
			{"a bucket short of tokens", func(x *contain.Batch) { x.Buckets[0].Cost = 5 }, contain.PartBucket, 0},
			{"the slots all held", func(x *contain.Batch) { x.Slots[0].Max = 1 }, contain.PartSlot, 0},
			{"a counter past its limit", func(x *contain.Batch) { x.Counters[1].Amount = 2 }, contain.PartCounter, 1},
		} {
			x := batch()
			tt.spoil(x)
			res, err := b.Admit(ctx, x)
			if err != nil || res.OK || res.Refused != tt.part || res.Index != tt.index || res.Release != nil {
				t.Fatalf("%s: %+v, %v; want %v %d refused", tt.name, res, err, tt.part, tt.index)
			}
			switch tt.part {
			case contain.PartBucket:
				// 1 token short at 0.001 a second: 1000 s, less what refilled since.
				if res.RetryAfter <= 999*time.Second || res.RetryAfter > 1000*time.Second {
					t.Errorf("%s: RetryAfter %v, want about 1000s", tt.name, res.RetryAfter)
				}
			case contain.PartCounter:
				if res.Total != 0 {
					t.Errorf("%s: Total %v, want 0 (c2 as it stands)", tt.name, res.Total)
				}
			}
		}
		// Nothing of the refused batches was applied: every key is as it was.
		if total, ok, err := b.Add(ctx, "c", 0, 10, hour); err != nil || !ok || total != 5 {
			t.Errorf("counter c = %v (%v %v), want 5", total, ok, err)
		}
		if total, ok, err := b.Add(ctx, "c2", 0, 10, hour); err != nil || !ok || total != 0 {
			t.Errorf("counter c2 = %v (%v %v), want 0", total, ok, err)
		}
		if !mustTake(t, b, "b", 0.001, 10, 4) || mustTake(t, b, "b", 0.001, 10, 1) {
			t.Error("bucket b does not hold exactly its 4 tokens")
		}
		if !mustTake(t, b, "b2", 0.001, 5, 5) {
			t.Error("bucket b2 is not full")
		}
		if _, ok, err := b.Acquire(ctx, "s2", 1, time.Hour); err != nil || !ok {
			t.Errorf("slot s2 taken by a refused batch: %v %v", ok, err)
		}
		if _, ok, err := b.Acquire(ctx, "s", 2, time.Hour); err != nil || !ok {
			t.Errorf("slot s taken by a refused batch: %v %v", ok, err)
		}
		// Admitted: every part applied.
		res, err := b.Admit(ctx, &contain.Batch{
			Seen:     []string{"m"},
			Buckets:  []contain.BucketTake{{Key: "b3", Rate: 0.001, Burst: 10, Cost: 3}},
			Counters: []contain.CounterAdd{{Key: "c", Amount: 2, Limit: 10, Expires: hour}},
		})
		if err != nil || !res.OK || res.Release == nil {
			t.Fatalf("admit: %+v, %v", res, err)
		}
		if total, _, _ := b.Add(ctx, "c", 0, 10, hour); total != 7 {
			t.Errorf("counter c = %v after an admitted 2, want 7", total)
		}
		if !mustTake(t, b, "b3", 0.001, 10, 7) || mustTake(t, b, "b3", 0.001, 10, 1) {
			t.Error("bucket b3 does not hold 7 tokens after an admitted 3")
		}
	})

	t.Run("AdmitRacersForOneTokenAdmitOne", func(t *testing.T) {
		t.Parallel()
		b, ctx := newBackend(t), t.Context()
		hour := time.Now().Add(time.Hour)
		var wg sync.WaitGroup
		var admitted, failed atomic.Int32
		start := make(chan struct{})
		for range 200 {
			wg.Go(func() {
				<-start
				res, err := b.Admit(ctx, &contain.Batch{
					Buckets:  []contain.BucketTake{{Key: "plenty", Rate: 1000, Burst: 1000, Cost: 1}, {Key: "race", Rate: 0.001, Burst: 1, Cost: 1}},
					Slots:    []contain.SlotAcquire{{Key: "race", Max: 1000, Lease: time.Hour}},
					Counters: []contain.CounterAdd{{Key: "race", Amount: 1, Limit: 1000, Expires: hour}},
				})
				if err != nil {
					failed.Add(1)
				}
				if res.OK {
					admitted.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if admitted.Load() != 1 || failed.Load() != 0 {
			t.Fatalf("%d of 200 racers admitted (%d errors), want exactly 1", admitted.Load(), failed.Load())
		}
		// The 199 refused took nothing: one call counted, one slot held.
		if total, _, err := b.Add(ctx, "race", 0, 1000, hour); err != nil || total != 1 {
			t.Errorf("counter = %v (%v), want 1", total, err)
		}
		for i := range 999 {
			if _, ok, err := b.Acquire(ctx, "race", 1000, time.Hour); err != nil || !ok {
				t.Fatalf("slot %d of the 999 the refused racers left: %v %v", i+1, ok, err)
			}
		}
		if _, ok, _ := b.Acquire(ctx, "race", 1000, time.Hour); ok {
			t.Error("more than 999 slots free: the admitted racer's is not held")
		}
	})

	t.Run("AdmitReleaseReturnsSlots", func(t *testing.T) {
		t.Parallel()
		b, ctx := newBackend(t), t.Context()
		batch := &contain.Batch{Slots: []contain.SlotAcquire{{Key: "x", Max: 1, Lease: time.Hour}, {Key: "y", Max: 2, Lease: time.Hour}}}
		first, err := b.Admit(ctx, batch)
		if err != nil || !first.OK {
			t.Fatalf("first: %+v %v", first, err)
		}
		if res, err := b.Admit(ctx, batch); err != nil || res.OK || res.Refused != contain.PartSlot || res.Index != 0 {
			t.Fatalf("second while the first holds x: %+v %v", res, err)
		}
		// The refused second took no slot of y: y still has one free beside the first's.
		if _, ok, err := b.Acquire(ctx, "y", 2, time.Hour); err != nil || !ok {
			t.Fatalf("y: %v %v", ok, err)
		}
		first.Release()
		first.Release() // harmless
		if _, ok, err := b.Acquire(ctx, "x", 1, time.Hour); err != nil || !ok {
			t.Fatalf("x after the release: %v %v", ok, err)
		}
		if _, ok, err := b.Acquire(ctx, "y", 2, time.Hour); err != nil || !ok {
			t.Fatalf("y after the release: %v %v", ok, err)
		}
		if _, ok, err := b.Acquire(ctx, "y", 2, time.Hour); err != nil || ok {
			t.Fatalf("the release freed more than its own slots: %v %v", ok, err)
		}
	})

	t.Run("AdmitSeenAndRepeatedKeys", func(t *testing.T) {
		t.Parallel()
		b, ctx := newBackend(t), t.Context()
		hour := time.Now().Add(time.Hour)
		if err := b.Mark(ctx, "read:C1", time.Hour); err != nil {
			t.Fatal(err)
		}
		if res, err := b.Admit(ctx, &contain.Batch{Seen: []string{"read:C1", "read:C2"}}); err != nil || res.OK || res.Refused != contain.PartSeen || res.Index != 1 {
			t.Fatalf("an unmarked key: %+v %v", res, err)
		}
		if res, err := b.Admit(ctx, &contain.Batch{Seen: []string{"read:C1"}}); err != nil || !res.OK {
			t.Fatalf("a marked key: %+v %v", res, err)
		}
		// A key twice in a list: the second part sees what the first takes.
		for _, x := range []*contain.Batch{
			{Buckets: []contain.BucketTake{{Key: "k", Rate: 0.001, Burst: 3, Cost: 2}, {Key: "k", Rate: 0.001, Burst: 3, Cost: 2}}},
			{Slots: []contain.SlotAcquire{{Key: "k", Max: 1, Lease: time.Hour}, {Key: "k", Max: 1, Lease: time.Hour}}},
			{Counters: []contain.CounterAdd{{Key: "k", Amount: 2, Limit: 3, Expires: hour}, {Key: "k", Amount: 2, Limit: 3, Expires: hour}}},
		} {
			res, err := b.Admit(ctx, x)
			if err != nil || res.OK || res.Index != 1 || (res.Refused == contain.PartCounter && res.Total != 2) {
				t.Errorf("%+v: %+v %v, want the second part refused", x, res, err)
			}
		}
		if !mustTake(t, b, "k", 0.001, 3, 3) {
			t.Error("the refused batch took from bucket k")
		}
	})

	t.Run("AdmitSharesTheSingleMethodsKeys", func(t *testing.T) {
		t.Parallel()
		b, ctx := newBackend(t), t.Context()
		hour := time.Now().Add(time.Hour)
		mustTake(t, b, "k", 0.001, 2, 2)
		if _, ok, err := b.Acquire(ctx, "k", 1, time.Hour); err != nil || !ok {
			t.Fatal(ok, err)
		}
		if _, ok, err := b.Add(ctx, "k", 3, 3, hour); err != nil || !ok {
			t.Fatal(ok, err)
		}
		for _, x := range []*contain.Batch{
			{Buckets: []contain.BucketTake{{Key: "k", Rate: 0.001, Burst: 2, Cost: 1}}},
			{Slots: []contain.SlotAcquire{{Key: "k", Max: 1, Lease: time.Hour}}},
			{Counters: []contain.CounterAdd{{Key: "k", Amount: 1, Limit: 3, Expires: hour}}},
		} {
			if res, err := b.Admit(ctx, x); err != nil || res.OK {
				t.Errorf("%+v: %+v %v, want refused by what the single methods took", x, res, err)
			}
		}
	})

	t.Run("BadLimitsAreRefused", func(t *testing.T) {
		t.Parallel()
		b, ctx := newBackend(t), t.Context()
		for name, call := range map[string]func() error{
			"rate 0":       func() error { _, _, err := b.Take(ctx, "k", 0, 1, 1); return err },
			"cost > burst": func() error { _, _, err := b.Take(ctx, "k", 1, 1, 2); return err },
			"burst NaN":    func() error { _, _, err := b.Take(ctx, "k", 1, math.NaN(), 0); return err },
			"max 0":        func() error { _, _, err := b.Acquire(ctx, "k", 0, time.Second); return err },
			"lease 0":      func() error { _, _, err := b.Acquire(ctx, "k", 1, 0); return err },
			"amount Inf":   func() error { _, _, err := b.Add(ctx, "k", math.Inf(1), 1, time.Now()); return err },
			"window 0":     func() error { _, err := b.Count(ctx, "k", 0); return err },
			"ttl -1":       func() error { return b.Mark(ctx, "k", -1) },
			"admit cost > burst": func() error {
				_, err := b.Admit(ctx, &contain.Batch{Buckets: []contain.BucketTake{{Key: "k", Rate: 1, Burst: 1, Cost: 2}}})
				return err
			},
			"admit max 0": func() error {
				_, err := b.Admit(ctx, &contain.Batch{Slots: []contain.SlotAcquire{{Key: "k", Lease: time.Second}}})
				return err
			},
			"admit limit NaN": func() error {
				_, err := b.Admit(ctx, &contain.Batch{Counters: []contain.CounterAdd{{Key: "k", Amount: 1, Limit: math.NaN()}}})
				return err
			},
		} {
			if err := call(); !errors.Is(err, contain.ErrBadLimit) {
				t.Errorf("%s: %v, want ErrBadLimit", name, err)
			}
		}
	})
}

func mustTake(t testing.TB, b contain.Backend, key string, rate, burst, cost float64) bool {
	t.Helper()
	ok, _, err := b.Take(context.Background(), key, rate, burst, cost)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func mustCount(t testing.TB, b contain.Backend, key string, window time.Duration) int {
	t.Helper()
	n, err := b.Count(context.Background(), key, window)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustSeen(t testing.TB, b contain.Backend, key string) bool {
	t.Helper()
	seen, err := b.Seen(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return seen
}
