package audit_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
)

// TestStats checks what the metrics read of the log: every committed record counted once in
// the batch sizes, the checkpoint that covers them, the startup comparison with the checkpoint
// directory, and the failure that makes the log refuse appends.
func TestStats(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fill(t, 2, 1000) // a first run leaves a checkpoint for the next Open to compare with
	st := e.open(t)
	defer st.Close()
	l := e.logOn(t, st, 8)
	defer l.Close()
	if s := l.Stats(); !s.Checked || !s.Signed || s.Failed || s.Records != 0 || s.QueueCapacity != audit.DefaultQueue || s.Unsigned != 0 {
		t.Fatalf("Stats after Open = %+v; want checked, signed, nothing committed", s)
	}
	opened := l.Stats().LastCheckpoint

	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if _, err := l.Append(ctx, call(i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	s := l.Stats()
	var batches, atMost uint64
	for i, n := range s.BatchSizes {
		batches += n
		if i < len(audit.BatchSizeBounds) {
			atMost += n * uint64(audit.BatchSizeBounds[i])
		}
	}
	if s.Records != 20 || s.Batches != batches || s.Batches == 0 || s.Batches > 20 || atMost < s.Records {
		t.Errorf("Stats after 20 appends: %d records in %d batches, sizes %v; want 20 records, each batch counted once in its bucket", s.Records, s.Batches, s.BatchSizes)
	}
	// A checkpoint every 8 records, signed by the settler after it answers the appends: what
	// the newest leaves uncovered is, once the settler is done, what Unsigned says.
	waitFor(t, func() bool {
		cps, err := st.Checkpoints(ctx)
		if err != nil {
			t.Fatal(err)
		}
		newest, s := cps[len(cps)-1], l.Stats()
		return newest.Size+s.Unsigned == 22 && s.Unsigned < 8 && newest.Time.Equal(s.LastCheckpoint) && s.LastCheckpoint.After(opened)
	})

	// A checkpoint that cannot reach the checkpoint directory breaks the log.
	if err := os.RemoveAll(e.cpDir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.cpDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		_, _ = l.Append(ctx, call(20+i))
	}
	waitFor(t, func() bool { return l.Stats().Failed })
	if _, err := l.Append(ctx, call(99)); !errors.Is(err, audit.ErrUnavailable) {
		t.Errorf("Append with Stats().Failed: %v, want ErrUnavailable", err)
	}
}

// TestStatsWithoutSigner: a log that signs nothing has no checkpoint age, and nothing was
// compared at Open.
func TestStatsWithoutSigner(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	st := e.open(t)
	defer st.Close()
	l, err := audit.Open(context.Background(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Append(context.Background(), call(0)); err != nil {
		t.Fatal(err)
	}
	if s := l.Stats(); s.Signed || s.Checked || !s.LastCheckpoint.IsZero() || s.Records != 1 || s.BatchSizes[0] != 1 {
		t.Errorf("Stats = %+v; want one record in a batch of one, no checkpoint, nothing checked", s)
	}
}

// TestAppendLater: records nobody waits for ride on the next commit an Append starts instead of
// paying for one of their own, get their verdict through done, are committed on their own once
// MaxLater has passed, and are written by Close.
func TestAppendLater(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	open := func(t *testing.T, later time.Duration) (*audit.Log, *env) {
		e := newEnv(t)
		st := e.open(t)
		t.Cleanup(func() { st.Close() })
		l, err := audit.Open(ctx, st, &audit.Options{Signer: e.keys.signer, CheckpointDir: e.cpDir, MaxLater: later})
		if err != nil {
			t.Fatal(err)
		}
		return l, e
	}
	type verdict struct {
		rec *audit.Record
		err error
	}

	t.Run("rides on the next commit", func(t *testing.T) {
		l, _ := open(t, time.Hour)
		defer l.Close()
		done := make(chan verdict, 3)
		for i := range 3 {
			rec := call(i)
			if err := l.AppendLater(ctx, rec, func(err error) { done <- verdict{rec, err} }); err != nil {
				t.Fatal(err)
			}
		}
		seq, err := l.Append(ctx, call(3))
		if err != nil || seq != 3 {
			t.Fatalf("Append after three later records: seq %d, %v; want 3", seq, err)
		}
		for range 3 {
			v := <-done
			if v.err != nil || v.rec.Seq < 0 || v.rec.Seq > 2 {
				t.Errorf("later record %s: seq %d, %v", v.rec.RequestID, v.rec.Seq, v.err)
			}
		}
		if s := l.Stats(); s.Records != 4 || s.Batches != 1 {
			t.Errorf("%d records in %d commits, want 4 in one", s.Records, s.Batches)
		}
	})

	t.Run("committed alone after MaxLater", func(t *testing.T) {
		l, _ := open(t, time.Millisecond)
		defer l.Close()
		done := make(chan error, 1)
		if err := l.AppendLater(ctx, call(0), func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a lone later record was not committed")
		}
	})

	t.Run("written by Close", func(t *testing.T) {
		l, e := open(t, time.Hour)
		done := make(chan error, 1)
		if err := l.AppendLater(ctx, call(0), func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("later record at Close: %v", err)
		}
		if err := l.AppendLater(ctx, call(1), nil); !errors.Is(err, audit.ErrUnavailable) {
			t.Errorf("AppendLater after Close: %v, want ErrUnavailable", err)
		}
		st := e.open(t)
		defer st.Close()
		if n, err := st.Size(ctx); err != nil || n != 1 {
			t.Errorf("store holds %d records (%v), want the later one", n, err)
		}
	})
}
