package contain_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/contain"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestLocalTakeOnAClock(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	l := contain.NewLocal(contain.LocalOptions{Now: clock.Now})
	take := func(cost float64) (bool, time.Duration) {
		t.Helper()
		ok, retry, err := l.Take(context.Background(), "k", 2, 4, cost)
		if err != nil {
			t.Fatal(err)
		}
		return ok, retry
	}
	for _, step := range []struct {
		advance time.Duration
		cost    float64
		ok      bool
		retry   time.Duration
	}{
		{0, 3, true, 0},                       // 4 → 1
		{0, 2, false, 500 * time.Millisecond}, // 1 token short at 2 a second
		{250 * time.Millisecond, 2, false, 250 * time.Millisecond},
		{250 * time.Millisecond, 2, true, 0}, // 2 → 0
		{time.Hour, 4, true, 0},              // refilled to the burst, not beyond
		{0, 1, false, 500 * time.Millisecond},
	} {
		clock.Advance(step.advance)
		if ok, retry := take(step.cost); ok != step.ok || retry != step.retry {
			t.Fatalf("take %v after %v: (%v, %v), want (%v, %v)", step.cost, step.advance, ok, retry, step.ok, step.retry)
		}
	}
}

func TestLocalTakeDoesNotAllocate(t *testing.T) {
	l := contain.NewLocal(contain.LocalOptions{})
	ctx := context.Background()
	l.Take(ctx, "principal:alice", 1e9, 1e9, 1)
	if n := testing.AllocsPerRun(1000, func() { l.Take(ctx, "principal:alice", 1e9, 1e9, 1) }); n != 0 {
		t.Errorf("Take on an existing key: %v allocations, want 0", n)
	}
}

// TestLocalStaysWithinMaxKeys floods Local with a million distinct keys, as an attacker
// varying addresses or names would.
func TestLocalStaysWithinMaxKeys(t *testing.T) {
	t.Parallel()
	for _, maxKeys := range []int{1000, 100_000} {
		t.Run(strconv.Itoa(maxKeys), func(t *testing.T) {
			t.Parallel()
			floodLocal(t, maxKeys)
		})
	}
}

// floodLocal takes a million distinct keys, of every method, into a Local of maxKeys keys.
func floodLocal(t *testing.T, maxKeys int) {
	ctx := context.Background()
	l := contain.NewLocal(contain.LocalOptions{MaxKeys: maxKeys})
	for i := range 1_000_000 {
		key := "flood:" + strconv.Itoa(i)
		switch i % 4 {
		case 0:
			l.Take(ctx, key, 1, 1, 1)
		case 1:
			l.Count(ctx, key, time.Hour)
		case 2:
			l.Mark(ctx, key, time.Hour)
		case 3:
			l.Add(ctx, key, 1, 10, time.Now().Add(time.Hour))
		}
	}
	if n := l.Len(); n > maxKeys || n < maxKeys/2 {
		t.Errorf("%d keys held after a million", n)
	}
	// The newest state is kept.
	if mustTake(t, l, "flood:999996", 1, 1, 1) {
		t.Error("the last bucket drained was forgotten")
	}
}

// TestLocalEvictsExpiredFirst: when full, Local drops entries whose dropping changes nothing
// before the least recently used one; an evicted bucket starts full again.
func TestLocalEvictsExpiredFirst(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	l := contain.NewLocal(contain.LocalOptions{MaxKeys: 3, Now: clock.Now})
	drain := func(key string, rate float64) bool { return mustTake(t, l, key, rate, 1, 1) }
	drain("a", 1) // full again after 1s
	drain("b", 0.001)
	drain("c", 0.001)
	clock.Advance(2 * time.Second)
	drain("d", 0.001) // a is dropped: it is full again, as a new bucket would be
	if drain("b", 0.001) || drain("c", 0.001) {
		t.Fatal("a live bucket was evicted while an expired one was held")
	}
	// From the most recently used: c, b, d; d used again leaves b the least recently used.
	drain("d", 0.001)
	drain("e", 0.001) // evicts the least recently used: b
	if !drain("b", 0.001) {
		t.Fatal("b, the least recently used, was not evicted")
	}
	if n := l.Len(); n != 3 {
		t.Fatalf("%d keys held, want 3", n)
	}
}

// TestLocalBoundsEvents: windows together keep at most MaxEvents times; a window keeps at most
// its share.
func TestLocalBoundsEvents(t *testing.T) {
	t.Parallel()
	l := contain.NewLocal(contain.LocalOptions{MaxKeys: 100, MaxEvents: 100})
	var n int
	for range 150 {
		n = mustCount(t, l, "a", time.Hour)
	}
	if n != 100 {
		t.Fatalf("window of a: %d events, want 100 (its share of MaxEvents)", n)
	}
	for range 60 {
		mustCount(t, l, "b", time.Hour)
	}
	// b's events pushed a out: a counts from zero.
	if n := mustCount(t, l, "a", time.Hour); n != 1 {
		t.Fatalf("window of a: %d events, want 1 (a evicted)", n)
	}
}

func TestLocalSlotsEndWithTheirLease(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	l := contain.NewLocal(contain.LocalOptions{Now: clock.Now})
	ctx := context.Background()
	release, ok, _ := l.Acquire(ctx, "c", 2, time.Second)
	if !ok {
		t.Fatal("no first slot")
	}
	if _, ok, _ := l.Acquire(ctx, "c", 2, time.Minute); !ok {
		t.Fatal("no second slot")
	}
	if _, ok, _ := l.Acquire(ctx, "c", 2, time.Minute); ok {
		t.Fatal("a third slot of 2")
	}
	clock.Advance(time.Second)
	if _, ok, _ := l.Acquire(ctx, "c", 2, time.Minute); !ok {
		t.Fatal("the first lease ended, its slot is not free")
	}
	release() // the slot already ended: nothing else is freed
	if _, ok, _ := l.Acquire(ctx, "c", 2, time.Minute); ok {
		t.Fatal("releasing an ended slot freed another")
	}
}

// TestLocalAdmitWhenInsertingEvicts: applying a batch inserts new keys, which in a full shard
// evicts the least recently used entries — possibly one the batch itself found and has yet to
// write. Each part still lands on its own key.
func TestLocalAdmitWhenInsertingEvicts(t *testing.T) {
	t.Parallel()
	l := contain.NewLocal(contain.LocalOptions{MaxKeys: 2})
	ctx := t.Context()
	hour := time.Now().Add(time.Hour)
	if _, ok, err := l.Add(ctx, "c", 5, 10, hour); err != nil || !ok {
		t.Fatal(ok, err)
	}
	// b1 fills the shard; b2 evicts c, the least recently used, whose entry it reuses; then
	// c's part must find c's key again, not b2's entry.
	res, err := l.Admit(ctx, &contain.Batch{
		Buckets:  []contain.BucketTake{{Key: "b1", Rate: 0.001, Burst: 5, Cost: 1}, {Key: "b2", Rate: 0.001, Burst: 5, Cost: 2}},
		Counters: []contain.CounterAdd{{Key: "c", Amount: 1, Limit: 10, Expires: hour}},
	})
	if err != nil || !res.OK {
		t.Fatalf("admit: %+v %v", res, err)
	}
	if total, _, err := l.Add(ctx, "c", 0, 10, hour); err != nil || total != 6 {
		t.Errorf("counter c = %v (%v), want 6: the batch's addition was lost or written elsewhere", total, err)
	}
	if l.Len() > 2 {
		t.Errorf("%d keys kept, want at most MaxKeys (2)", l.Len())
	}
}
