// Package storetest is the one test suite every implementation of the audit store contract
// must pass.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpguard/mcpguard/internal/store"
)

// Open returns a new, empty store for one test; the suite closes it.
type Open func(t *testing.T) store.Store

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

// record returns a recognisable record for seq.
func record(seq int64) store.Record {
	principals := []string{"alice", "bob", "carol"}
	decisions := []string{"allow", "deny"}
	return store.Record{
		Seq: seq, Time: t0.Add(time.Duration(seq) * time.Second), Kind: "call",
		Principal: principals[seq%3], Tool: fmt.Sprintf("fin.tool%d", seq%2), Decision: decisions[seq%2],
		RequestID: fmt.Sprintf("req-%d", seq), Data: fmt.Appendf(nil, `{"seq":%d}`, seq),
		Hashes: bytes.Repeat([]byte{byte(seq)}, 32*(1+int(seq%3))),
	}
}

func records(from, to int64) []store.Record {
	var out []store.Record
	for s := from; s < to; s++ {
		out = append(out, record(s))
	}
	return out
}

// Run runs the suite.
func Run(t *testing.T, open Open) {
	ctx := context.Background()
	t.Run("empty", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		n, err := s.Size(ctx)
		if err != nil || n != 0 {
			t.Fatalf("Size = %d, %v; want 0", n, err)
		}
		if _, err := s.Get(ctx, 0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(0) error %v, want ErrNotFound", err)
		}
		cps, err := s.Checkpoints(ctx)
		if err != nil || len(cps) != 0 {
			t.Errorf("Checkpoints = %v, %v; want none", cps, err)
		}
	})
	t.Run("append, size, get, scan", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		if err := s.Append(ctx, records(0, 1)); err != nil {
			t.Fatal(err)
		}
		// A batch larger than one multi-row statement.
		if err := s.Append(ctx, records(1, 700)); err != nil {
			t.Fatal(err)
		}
		n, err := s.Size(ctx)
		if err != nil || n != 700 {
			t.Fatalf("Size = %d, %v; want 700", n, err)
		}
		got, err := s.Get(ctx, 123)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(record(123), got); diff != "" {
			t.Errorf("Get(123) (-want +got):\n%s", diff)
		}
		var seqs []int64
		err = s.Scan(ctx, 695, func(r *store.Record) error {
			if diff := cmp.Diff(record(r.Seq), *r); diff != "" {
				t.Errorf("Scan record %d (-want +got):\n%s", r.Seq, diff)
			}
			seqs = append(seqs, r.Seq)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int64{695, 696, 697, 698, 699}, seqs); diff != "" {
			t.Errorf("Scan order (-want +got):\n%s", diff)
		}
		hs, err := s.TreeHashes(ctx, []int64{5, 2})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([][]byte{record(5).Hashes, record(2).Hashes}, hs); diff != "" {
			t.Errorf("TreeHashes (-want +got):\n%s", diff)
		}
		if _, err := s.TreeHashes(ctx, []int64{700}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("TreeHashes(700) error %v, want ErrNotFound", err)
		}
	})
	t.Run("a failed append writes nothing", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		if err := s.Append(ctx, records(0, 10)); err != nil {
			t.Fatal(err)
		}
		// Records 10..19 and a duplicate of 5: the whole batch must fail.
		batch := append(records(10, 20), record(5))
		if err := s.Append(ctx, batch); err == nil {
			t.Fatal("appending a duplicate sequence number succeeded")
		}
		if n, _ := s.Size(ctx); n != 10 {
			t.Errorf("Size after the failed append = %d, want 10", n)
		}
	})
	t.Run("scan stops on the callback's error", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		if err := s.Append(ctx, records(0, 10)); err != nil {
			t.Fatal(err)
		}
		stop := errors.New("stop")
		calls := 0
		err := s.Scan(ctx, 0, func(*store.Record) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("Scan = %v after %d calls, want the callback's error after 1", err, calls)
		}
	})
	t.Run("search", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		if err := s.Append(ctx, records(0, 30)); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name string
			q    store.Query
			want []int64
		}{
			{"principal and decision", store.Query{Principal: "alice", Decision: "deny", AfterSeq: -1}, []int64{3, 9, 15, 21, 27}},
			{"tool and time window", store.Query{Tool: "fin.tool0", Since: t0.Add(10 * time.Second), Until: t0.Add(16 * time.Second), AfterSeq: -1}, []int64{10, 12, 14}},
			{"after and limit", store.Query{AfterSeq: 25, Limit: 2}, []int64{26, 27}},
			{"kind that is absent", store.Query{Kind: "admin", AfterSeq: -1}, nil},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				var got []int64
				if err := s.Search(ctx, tc.q, func(r *store.Record) error { got = append(got, r.Seq); return nil }); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("Search (-want +got):\n%s", diff)
				}
			})
		}
	})
	t.Run("search across thousands of records", func(t *testing.T) {
		// Enough records that a store summarising or partitioning them (SQLite: blocks of
		// 4096) has several parts, with a principal and a tool seen in some parts only.
		s := open(t)
		defer s.Close()
		const n = 9000
		var all []store.Record
		for from := int64(0); from < n; from += 1000 {
			batch := records(from, from+1000)
			for i := range batch {
				r := &batch[i]
				switch {
				case r.Seq%1000 == 500 && r.Seq/4096 != 1:
					r.Principal = "rare"
				case r.Seq >= 4000 && r.Seq < 4200:
					r.Tool = "fin.transfer"
				}
			}
			if err := s.Append(ctx, batch); err != nil {
				t.Fatal(err)
			}
			all = append(all, batch...)
		}
		at := func(seq int64) time.Time { return t0.Add(time.Duration(seq) * time.Second) }
		for _, q := range []store.Query{
			{Principal: "rare", AfterSeq: -1},
			{Principal: "rare", AfterSeq: 2500, Limit: 3},
			{Tool: "fin.transfer", Decision: "deny", AfterSeq: -1},
			{Tool: "fin.transfer", Since: at(4090), Until: at(4100), AfterSeq: -1},
			{Principal: "bob", Since: at(4000), Until: at(8200), AfterSeq: 4095, Limit: 50},
			{Since: at(8190), Until: at(8200), AfterSeq: -1},
			{Principal: "nobody", AfterSeq: -1},
		} {
			var want, got []int64
			for _, r := range all {
				if r.Seq > q.AfterSeq && (q.Principal == "" || r.Principal == q.Principal) &&
					(q.Tool == "" || r.Tool == q.Tool) && (q.Decision == "" || r.Decision == q.Decision) &&
					(q.Since.IsZero() || !r.Time.Before(q.Since)) && (q.Until.IsZero() || r.Time.Before(q.Until)) &&
					(q.Limit == 0 || len(want) < q.Limit) {
					want = append(want, r.Seq)
				}
			}
			if err := s.Search(ctx, q, func(r *store.Record) error { got = append(got, r.Seq); return nil }); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Search(%+v) (-want +got):\n%s", q, diff)
			}
		}
	})
	t.Run("checkpoints", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		want := []store.Checkpoint{
			{Size: 10, Time: t0, Note: []byte("ten\n")},
			{Size: 20, Time: t0.Add(time.Minute), Note: []byte("twenty\n")},
		}
		if err := s.AddCheckpoint(ctx, want[1]); err != nil {
			t.Fatal(err)
		}
		if err := s.AddCheckpoint(ctx, want[0]); err != nil {
			t.Fatal(err)
		}
		if err := s.AddCheckpoint(ctx, want[0]); err == nil {
			t.Error("adding a second checkpoint of size 10 succeeded")
		}
		got, err := s.Checkpoints(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Checkpoints (-want +got):\n%s", diff)
		}
	})
	t.Run("commit now, sync later", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		p, ok := s.(store.Pipeliner)
		if !ok {
			t.Skip("the store commits and syncs in one step only")
		}
		if err := p.AppendNoSync(ctx, records(0, 5)); err != nil {
			t.Fatal(err)
		}
		// Committed records are visible before they are synced: the next batch continues them.
		if n, err := s.Size(ctx); err != nil || n != 5 {
			t.Fatalf("Size after AppendNoSync = %d, %v; want 5", n, err)
		}
		if err := p.AppendNoSync(ctx, records(5, 8)); err != nil {
			t.Fatal(err)
		}
		if err := p.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Append(ctx, records(8, 9)); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, 6)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(record(6), got); diff != "" {
			t.Errorf("Get(6) (-want +got):\n%s", diff)
		}
		if err := p.AppendNoSync(ctx, append(records(9, 10), record(3))); err == nil {
			t.Error("AppendNoSync of a duplicate sequence number succeeded")
		}
		if n, _ := s.Size(ctx); n != 9 {
			t.Errorf("Size after the failed AppendNoSync = %d, want 9", n)
		}
	})
	t.Run("compliance", func(t *testing.T) { runCompliance(t, open) })
	t.Run("closed store fails", func(t *testing.T) {
		s := open(t)
		s.Close()
		if err := s.Append(ctx, records(0, 1)); err == nil {
			t.Error("Append on a closed store succeeded")
		}
	})
}

// Bench measures Append with batches of the sizes the audit log commits (records of a
// realistic size), reporting records per second. open returns a new, empty store.
func Bench(b *testing.B, open func(b *testing.B) store.Store) {
	for _, batch := range []int{1, 64, 512} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s := open(b)
			defer s.Close()
			data := bytes.Repeat([]byte("x"), 350)
			hashes := bytes.Repeat([]byte{7}, 64)
			recs := make([]store.Record, batch)
			seq := int64(0)
			ctx := context.Background()
			b.ResetTimer()
			cpu := ProcessCPU()
			for n := 0; n < b.N; n += batch {
				for i := range recs {
					r := record(seq)
					r.Data, r.Hashes = data, hashes[:32*(1+int(seq%2))]
					recs[i] = r
					seq++
				}
				if err := s.Append(ctx, recs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(seq)/b.Elapsed().Seconds(), "records/s")
			// CPU per record does not depend on what else the machine runs, unlike records/s.
			b.ReportMetric(float64((ProcessCPU()-cpu).Microseconds())/float64(seq), "cpu-µs/record")
		})
	}
}

// ProcessCPU is this process's user and system time, for benchmarks that report CPU per
// operation: unlike throughput, it does not depend on what else the machine runs.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
