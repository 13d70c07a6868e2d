package audit_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/store"
	"github.com/mcpguard/mcpguard/internal/store/sqlite"
)

// slowDisk wraps the SQLite store and controls its Sync: while gate is set, every Sync waits
// for a value from it; while fail is set, Sync fails. It records what each successful Sync
// made durable and checks every checkpoint against it.
type slowDisk struct {
	*sqlite.Store
	t    *testing.T
	fail atomic.Bool

	mu          sync.Mutex
	gate        chan struct{}
	entered     chan struct{} // when set, every Sync reports here before waiting at the gate
	committed   int64         // size after the latest AppendNoSync
	durable     int64         // size covered by the latest successful Sync
	checkpoints []int64       // sizes of the checkpoints stored
}

var _ store.Pipeliner = (*slowDisk)(nil)

func (d *slowDisk) AppendNoSync(ctx context.Context, recs []store.Record) error {
	if err := d.Store.AppendNoSync(ctx, recs); err != nil {
		return err
	}
	d.mu.Lock()
	d.committed = recs[len(recs)-1].Seq + 1
	d.mu.Unlock()
	return nil
}

func (d *slowDisk) Sync(ctx context.Context) error {
	d.mu.Lock()
	covers := d.committed // what a Sync beginning now covers
	entered, gate := d.entered, d.gate
	d.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if gate != nil {
		<-gate
	}
	if d.fail.Load() {
		return errors.New("fsync: input/output error")
	}
	if err := d.Store.Sync(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	d.durable = max(d.durable, covers)
	d.mu.Unlock()
	return nil
}

func (d *slowDisk) AddCheckpoint(ctx context.Context, c store.Checkpoint) error {
	d.mu.Lock()
	if c.Size > d.durable {
		d.t.Errorf("checkpoint at size %d, but only %d records are durable: a power loss would look like truncation", c.Size, d.durable)
	}
	d.checkpoints = append(d.checkpoints, c.Size)
	d.mu.Unlock()
	return d.Store.AddCheckpoint(ctx, c)
}

// onSlowDisk opens a log on a slowDisk over a new SQLite store, signing a checkpoint every
// every records.
func onSlowDisk(t *testing.T, every int64) (*env, *slowDisk, *audit.Log) {
	e := newEnv(t)
	st := e.open(t)
	t.Cleanup(func() { st.Close() })
	d := &slowDisk{Store: st, t: t}
	return e, d, e.logOn(t, d, every)
}

func (d *slowDisk) state() (committed, durable int64, checkpoints int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.committed, d.durable, len(d.checkpoints)
}

// TestAckWaitsForSync checks that no caller hears back before the Sync covering its record
// returns, and that the next batch is committed while that Sync is still running.
func TestAckWaitsForSync(t *testing.T) {
	t.Parallel()
	e, d, l := onSlowDisk(t, 1)
	gate := make(chan struct{})
	d.mu.Lock()
	d.gate, d.entered = gate, make(chan struct{}, 1000)
	d.mu.Unlock()
	ctx := context.Background()

	var returned atomic.Int64
	var wg sync.WaitGroup
	appendOne := func(i int) {
		wg.Go(func() {
			if _, err := l.Append(ctx, call(i)); err != nil {
				t.Errorf("Append(%d): %v", i, err)
			}
			returned.Add(1)
		})
	}
	appendOne(0)
	<-d.entered // record 0 is committed and its Sync has begun
	for i := 1; i <= 20; i++ {
		appendOne(i)
	}
	// The writer commits the next batch while the first Sync is held.
	waitFor(t, func() bool { committed, _, _ := d.state(); return committed > 1 })
	select {
	case <-time.After(50 * time.Millisecond):
	case <-done(&wg):
		t.Fatal("appends returned while the Sync covering them was held")
	}
	if n := returned.Load(); n != 0 {
		t.Fatalf("%d appends returned before their records were synced", n)
	}
	if _, _, cps := d.state(); cps != 0 {
		t.Fatalf("%d checkpoints were signed before any record was synced", cps)
	}
	close(gate)
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if rep := e.verify(t); !rep.OK() || rep.Records != 21 || rep.Covered != 21 {
		t.Errorf("report %+v, want 21 records, all covered by a checkpoint", rep)
	}
}

// TestSyncFailureFailsClosed checks that when Sync fails, every caller waiting for it gets
// ErrUnavailable, so does every later caller even once the disk seems fine again, and no
// checkpoint names the records that were committed but never made durable.
func TestSyncFailureFailsClosed(t *testing.T) {
	t.Parallel()
	e, d, l := onSlowDisk(t, 1)
	ctx := context.Background()
	if _, err := l.Append(ctx, call(0)); err != nil { // durable and checkpointed
		t.Fatal(err)
	}
	d.fail.Store(true)
	var wg sync.WaitGroup
	for i := 1; i <= 10; i++ {
		wg.Go(func() {
			if _, err := l.Append(ctx, call(i)); !errors.Is(err, audit.ErrUnavailable) {
				t.Errorf("Append(%d) while Sync fails: error %v, want ErrUnavailable", i, err)
			}
		})
	}
	wg.Wait()
	d.fail.Store(false)
	if _, err := l.Append(ctx, call(11)); !errors.Is(err, audit.ErrUnavailable) {
		t.Errorf("Append after a failed Sync: error %v, want ErrUnavailable until restart", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if committed, durable, _ := d.state(); committed <= 1 || durable != 1 {
		t.Errorf("%d records committed, %d durable; want more than 1 committed and 1 durable", committed, durable)
	}
	if rep := e.verify(t); !rep.OK() || rep.Covered != 1 {
		t.Errorf("report %+v, want no problems and 1 record covered by a checkpoint", rep)
	}
}

// TestCheckpointsNameOnlySyncedRecords appends from many goroutines with a checkpoint due
// after every few records; slowDisk fails the test if a checkpoint names more than is durable.
func TestCheckpointsNameOnlySyncedRecords(t *testing.T) {
	t.Parallel()
	e, d, l := onSlowDisk(t, 3)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := range 40 {
				if _, err := l.Append(context.Background(), call(w*40+i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, cps := d.state(); cps < 2 {
		t.Errorf("%d checkpoints signed for 640 records every 3, want many", cps)
	}
	if rep := e.verify(t); !rep.OK() || rep.Records != 640 || rep.Covered != 640 {
		t.Errorf("report %+v, want 640 records, all covered", rep)
	}
}

// done returns a channel closed when wg's goroutines have ended.
func done(wg *sync.WaitGroup) <-chan struct{} {
	c := make(chan struct{})
	go func() { wg.Wait(); close(c) }()
	return c
}

// serialDisk is a slowDisk whose store asks for serial commits (store.SerialCommitter), as
// SQLite's record segment does, and that reports a commit made while a Sync runs.
type serialDisk struct {
	*slowDisk
	syncing  atomic.Int32
	overlaps atomic.Int32
}

func (d *serialDisk) CommitsAfterSync() bool { return true }

func (d *serialDisk) AppendNoSync(ctx context.Context, recs []store.Record) error {
	if d.syncing.Load() > 0 {
		d.overlaps.Add(1)
	}
	return d.slowDisk.AppendNoSync(ctx, recs)
}

func (d *serialDisk) Sync(ctx context.Context) error {
	d.syncing.Add(1)
	defer d.syncing.Add(-1)
	return d.slowDisk.Sync(ctx)
}

// TestSerialCommitsWaitForSync: with a store that asks for it, the log never commits while a
// Sync runs; the records that arrive meanwhile wait for it and go into the next batch, and
// every caller is still answered only once its record is durable.
func TestSerialCommitsWaitForSync(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	st := e.open(t)
	t.Cleanup(func() { st.Close() })
	d := &serialDisk{slowDisk: &slowDisk{Store: st, t: t}}
	l := e.logOn(t, d, 100)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			for i := range 20 {
				seq, err := l.Append(ctx, call(w*100+i))
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				if _, durable, _ := d.state(); seq >= durable {
					t.Errorf("record %d answered while %d records were durable", seq, durable)
				}
			}
		})
	}
	wg.Wait()
	if n := d.overlaps.Load(); n != 0 {
		t.Errorf("%d commits were made while a Sync ran", n)
	}
	stats := l.Stats()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if rep := e.verify(t); !rep.OK() || rep.Records != 640 {
		t.Errorf("report %+v, want 640 records that verify", rep)
	}
	t.Logf("%d records in %d batches", stats.Records, stats.Batches)
}
