//go:build searchbench

package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/store"
	"github.com/mcpguard/mcpguard/internal/store/sqlite"
)

// go test -tags searchbench -run '^$' -bench BenchmarkSearchMillion ./internal/store/sqlite/
//
// A million records, one every 36 ms (ten hours), 50 principals and 20 tools taking turns,
// and one rare principal with ten records spread over the log.

var (
	millionOnce sync.Once
	millionPath string
	millionErr  error
)

var millionT0 = time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)

func millionDB(b *testing.B) string {
	millionOnce.Do(func() {
		dir, err := os.MkdirTemp("", "searchbench")
		if err != nil {
			millionErr = err
			return
		}
		millionPath = filepath.Join(dir, "audit.db")
		ctx := context.Background()
		s, err := sqlite.Open(ctx, millionPath, nil)
		if err != nil {
			millionErr = err
			return
		}
		defer s.Close()
		data, hashes := make([]byte, 350), make([]byte, 64)
		const n, batch = 1_000_000, 1000
		recs := make([]store.Record, batch)
		for from := 0; from < n; from += batch {
			for i := range recs {
				seq := int64(from + i)
				p := fmt.Sprintf("user%d", seq%50)
				if seq%100_000 == 77 {
					p = "rare"
				}
				recs[i] = store.Record{Seq: seq, Time: millionT0.Add(time.Duration(seq) * 36 * time.Millisecond), Kind: "call",
					Principal: p, Tool: fmt.Sprintf("tool%d", seq%20), Decision: "allow", RequestID: "r", Data: data, Hashes: hashes}
			}
			if err := s.Append(ctx, recs); err != nil {
				millionErr = err
				return
			}
		}
	})
	if millionErr != nil {
		b.Fatal(millionErr)
	}
	return millionPath
}

func BenchmarkSearchMillion(b *testing.B) {
	path := millionDB(b)
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path, &sqlite.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		name string
		q    store.Query
		want int
	}{
		{"rare principal", store.Query{Principal: "rare", AfterSeq: -1}, 10},
		{"one hour", store.Query{Since: millionT0.Add(5 * time.Hour), Until: millionT0.Add(6 * time.Hour), AfterSeq: -1}, 100_000},
		{"one hour, one principal", store.Query{Principal: "user7", Since: millionT0.Add(5 * time.Hour), Until: millionT0.Add(6 * time.Hour), AfterSeq: -1}, 2_000},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				n := 0
				if err := s.Search(ctx, tc.q, func(*store.Record) error { n++; return nil }); err != nil {
					b.Fatal(err)
				}
				if n != tc.want {
					b.Fatalf("%d records, want %d", n, tc.want)
				}
			}
		})
	}
}
