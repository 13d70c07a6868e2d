package audit_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/redact"
	"github.com/mcpguard/mcpguard/internal/store"
	"github.com/mcpguard/mcpguard/internal/store/sqlite"
	"github.com/mcpguard/mcpguard/internal/store/storetest"
)

// benchAppend measures durable appends per second with writers concurrent callers, each
// waiting for its record to be committed before sending the next (as gateway requests do).
func benchAppend(b *testing.B, st store.Store, writers int) {
	r, err := redact.New([]byte("benchmark key, sixteen bytes+"), nil)
	if err != nil {
		b.Fatal(err)
	}
	k := newKeys(b, "bench")
	l, err := audit.Open(context.Background(), st, &audit.Options{Redactor: r, Signer: k.signer, CheckpointDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	per := b.N/writers + 1
	b.ResetTimer()
	start, cpu := time.Now(), storetest.ProcessCPU()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range per {
				rec := call(w*per + i)
				rec.Time = time.Time{} // the log's clock, as in production
				if _, err := l.Append(context.Background(), rec); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	n := float64(per * writers)
	b.ReportMetric(n/time.Since(start).Seconds(), "records/s")
	// CPU per record does not depend on what else the machine runs, unlike records/s.
	b.ReportMetric(float64((storetest.ProcessCPU()-cpu).Microseconds())/n, "cpu-µs/record")
}

func BenchmarkAppendSQLite(b *testing.B) {
	// segment=true is the gateway's store (the record segment, sqlite.Options.Writer);
	// segment=false commits every batch to the database.
	for _, segment := range []bool{true, false} {
		for _, writers := range []int{1, 64, 512} {
			b.Run(fmt.Sprintf("segment=%v/writers=%d", segment, writers), func(b *testing.B) {
				e := newEnv(b)
				st, err := sqlite.Open(context.Background(), e.db, &sqlite.Options{Writer: segment})
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				benchAppend(b, st, writers)
			})
		}
	}
}

// BenchmarkVerifySQLite reports the time verify takes per million records.
func BenchmarkVerifySQLite(b *testing.B) {
	const n = 100000
	e := newEnv(b)
	st := e.open(b)
	defer st.Close()
	l := e.logOn(b, st, 10000)
	var wg sync.WaitGroup
	for w := range 50 {
		wg.Go(func() {
			for i := range n / 50 {
				if _, err := l.Append(context.Background(), call(w*n/50+i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	l.Close()
	b.ResetTimer()
	for b.Loop() {
		rep, err := audit.Verify(context.Background(), st, audit.VerifyOptions{Verifier: e.keys.verifier, CheckpointDir: e.cpDir})
		if err != nil || !rep.OK() {
			b.Fatalf("%v %+v", err, rep)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)*1e6/n, "s/million")
}

func BenchmarkAppendPostgres(b *testing.B) {
	for _, writers := range []int{1, 64, 512} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			benchAppend(b, openPostgres(b), writers)
		})
	}
}
