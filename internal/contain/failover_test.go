package contain_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/contain"
)

// TestFailoverPolicy kills the shared Redis under a Failover: the calls are answered from the
// local backend at the fraction of every limit and OnDegraded fires once; when Redis is back,
// OnRestored fires and the shared state is used again.
func TestFailoverPolicy(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	shared := newRedis(t, srv.addr)
	local := contain.NewLocal(contain.LocalOptions{})
	var degraded, restored atomic.Int32
	f, err := contain.NewFailover(shared, local, contain.FailoverOptions{
		Fraction: 0.5,
		Retry:    10 * time.Millisecond,
		OnDegraded: func(err error) {
			if err == nil {
				t.Error("OnDegraded without the error")
			}
			degraded.Add(1)
			t.Logf("degraded: %v", err)
		},
		OnRestored: func() { restored.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	// Up: the state is Redis's.
	if !mustTake(t, f, "up", 0.001, 10, 4) || !mustTake(t, shared, "up", 0.001, 10, 6) || mustTake(t, shared, "up", 0.001, 10, 1) {
		t.Fatal("the failover's take is not in Redis")
	}

	srv.stop()

	// Down: half of every limit, from the local backend; concurrent callers see one outage.
	var admitted atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			ok, _, err := f.Take(ctx, "down", 0.001, 10, 1)
			if err != nil {
				t.Errorf("take while Redis is down: %v", err)
			}
			if ok {
				admitted.Add(1)
			}
		})
	}
	wg.Wait()
	if admitted.Load() != 5 {
		t.Errorf("%d of 20 calls admitted by a burst of 10 at half, want 5", admitted.Load())
	}
	if degraded.Load() != 1 || restored.Load() != 0 || !f.Degraded() {
		t.Fatalf("OnDegraded fired %d times, OnRestored %d, want 1 and 0", degraded.Load(), restored.Load())
	}
	for i, want := range []bool{true, true, false} {
		if _, ok, err := f.Acquire(ctx, "down", 4, time.Hour); err != nil || ok != want {
			t.Fatalf("slot %d of 4 at half: ok=%v err=%v, want ok=%v", i+1, ok, err, want)
		}
	}
	expires := time.Now().Add(time.Hour)
	for _, step := range []struct {
		amount, total float64
		ok            bool
	}{{3, 6, true}, {3, 6, false}, {2, 10, true}} { // local totals 3, 3, 5 of 5: reported ÷ 0.5
		if total, ok, err := f.Add(ctx, "down", step.amount, 10, expires); err != nil || total != step.total || ok != step.ok {
			t.Fatalf("add %v of 10 at half: (%v, %v, %v), want (%v, %v)", step.amount, total, ok, err, step.total, step.ok)
		}
	}
	if n := mustCount(t, f, "down", time.Hour); n != 2 {
		t.Errorf("one event counted at half reports %d, want 2", n)
	}

	srv.start() // empty: its state was lost with it

	eventually(t, "OnRestored", func() bool {
		mustTake(t, f, "probe", 1000, 1000, 1)
		return restored.Load() == 1
	})
	if degraded.Load() != 1 || f.Degraded() {
		t.Fatalf("after the restart: OnDegraded fired %d times, degraded %v", degraded.Load(), f.Degraded())
	}
	// The state is Redis's again: what the failover takes, Redis lacks and the local backend
	// does not.
	if !mustTake(t, f, "again", 0.001, 3, 3) || mustTake(t, shared, "again", 0.001, 3, 1) {
		t.Fatalf("after the restart, the failover's take is not in Redis (degraded %d, restored %d)", degraded.Load(), restored.Load())
	}
	if !mustTake(t, local, "again", 0.001, 3, 3) {
		t.Fatal("after the restart, the failover's take went to the local backend")
	}
}

// errDown is the error of a backend that is down.
var errDown = errors.New("backend down")

// downBackend fails every call, as an unreachable server would.
type downBackend struct{}

func (downBackend) Take(context.Context, string, float64, float64, float64) (bool, time.Duration, error) {
	return false, 0, errDown
}
func (downBackend) Acquire(context.Context, string, int, time.Duration) (func(), bool, error) {
	return nil, false, errDown
}
func (downBackend) Add(context.Context, string, float64, float64, time.Time) (float64, bool, error) {
	return 0, false, errDown
}
func (downBackend) Count(context.Context, string, time.Duration) (int, error) { return 0, errDown }
func (downBackend) Mark(context.Context, string, time.Duration) error         { return errDown }
func (downBackend) Seen(context.Context, string) (bool, error)                { return false, errDown }
func (downBackend) Admit(context.Context, *contain.Batch) (contain.BatchResult, error) {
	return contain.BatchResult{}, errDown
}

// TestFailoverAdmitScales: while the shared backend is down, a batch is admitted by the local
// one with each part scaled as its single method would be, and a counter's total reported for
// the whole deployment.
func TestFailoverAdmitScales(t *testing.T) {
	t.Parallel()
	f, err := contain.NewFailover(downBackend{}, contain.NewLocal(contain.LocalOptions{}), contain.FailoverOptions{Fraction: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	hour := time.Now().Add(time.Hour)
	batch := &contain.Batch{
		Buckets:  []contain.BucketTake{{Key: "b", Rate: 0.001, Burst: 10, Cost: 1}},
		Slots:    []contain.SlotAcquire{{Key: "s", Max: 100, Lease: time.Hour}},
		Counters: []contain.CounterAdd{{Key: "c", Amount: 1, Limit: 100, Expires: hour}},
	}
	admitted := 0
	for range 10 {
		res, err := f.Admit(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		if res.OK {
			admitted++
		} else if res.Refused != contain.PartBucket {
			t.Fatalf("refused by %v, want the bucket", res.Refused)
		}
	}
	if admitted != 5 || !f.Degraded() {
		t.Fatalf("%d of 10 admitted by a burst of 10 at half (degraded %v), want 5", admitted, f.Degraded())
	}
	for i, want := range []bool{true, true, false} {
		res, err := f.Admit(ctx, &contain.Batch{Slots: []contain.SlotAcquire{{Key: "s2", Max: 4, Lease: time.Hour}}})
		if err != nil || res.OK != want {
			t.Fatalf("slot %d of 4 at half: %+v %v, want ok=%v", i+1, res, err, want)
		}
	}
	res, err := f.Admit(ctx, &contain.Batch{Counters: []contain.CounterAdd{{Key: "c", Amount: 46, Limit: 100, Expires: hour}}})
	if err != nil || res.OK || res.Refused != contain.PartCounter || res.Total != 10 {
		t.Fatalf("a counter at 5 of 50 locally, adding 46: %+v %v, want refused with the total 10 (5 ÷ 0.5)", res, err)
	}
	if _, err := f.Admit(ctx, &contain.Batch{Slots: []contain.SlotAcquire{{Key: "s"}}}); !errors.Is(err, contain.ErrBadLimit) {
		t.Errorf("a bad batch: %v, want ErrBadLimit", err)
	}
}

// TestFailoverFailsClosed: when the local backend fails too, every call fails (the caller
// refuses); nothing is answered "allowed".
func TestFailoverFailsClosed(t *testing.T) {
	t.Parallel()
	f, err := contain.NewFailover(downBackend{}, downBackend{}, contain.FailoverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if ok, _, err := f.Take(ctx, "k", 1, 1, 1); ok || err == nil {
		t.Errorf("take: ok=%v err=%v", ok, err)
	}
	if release, ok, err := f.Acquire(ctx, "k", 1, time.Second); ok || release != nil || err == nil {
		t.Errorf("acquire: ok=%v err=%v", ok, err)
	}
	if _, ok, err := f.Add(ctx, "k", 1, 1, time.Now().Add(time.Hour)); ok || err == nil {
		t.Errorf("add: ok=%v err=%v", ok, err)
	}
	if _, err := f.Count(ctx, "k", time.Second); err == nil {
		t.Error("count: no error")
	}
	if err := f.Mark(ctx, "k", time.Second); err == nil {
		t.Error("mark: no error")
	}
	if seen, err := f.Seen(ctx, "k"); seen || err == nil {
		t.Errorf("seen: %v %v", seen, err)
	}
	if res, err := f.Admit(ctx, &contain.Batch{Seen: []string{"k"}}); res.OK || err == nil {
		t.Errorf("admit: %+v %v", res, err)
	}
}

// TestFailoverBlamesNotTheBackendForTheCaller: a bad limit or an ended context is the caller's
// failure, not an outage.
func TestFailoverBlamesNotTheBackendForTheCaller(t *testing.T) {
	t.Parallel()
	var degraded atomic.Int32
	f, err := contain.NewFailover(downBackend{}, contain.NewLocal(contain.LocalOptions{}), contain.FailoverOptions{
		OnDegraded: func(error) { degraded.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Take(t.Context(), "k", 0, 1, 1); !errors.Is(err, contain.ErrBadLimit) {
		t.Errorf("rate 0: %v, want ErrBadLimit", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if ok, _, err := f.Take(ctx, "k", 1, 1, 1); ok || err == nil {
		t.Errorf("take with an ended context: ok=%v err=%v, want refused", ok, err)
	}
	if degraded.Load() != 0 {
		t.Errorf("OnDegraded fired %d times for the caller's failures", degraded.Load())
	}
}

func TestFailoverFraction(t *testing.T) {
	t.Parallel()
	for _, fraction := range []float64{-0.5, 1.5} {
		if _, err := contain.NewFailover(downBackend{}, downBackend{}, contain.FailoverOptions{Fraction: fraction}); err == nil {
			t.Errorf("fraction %v accepted", fraction)
		}
	}
}
