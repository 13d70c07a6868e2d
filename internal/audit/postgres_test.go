package audit_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/redact"
	"github.com/mcpguard/mcpguard/internal/sqldb/sqldbtest"
	"github.com/mcpguard/mcpguard/internal/store/postgres"
	"github.com/mcpguard/mcpguard/internal/store/storetest"
)

// openPostgres opens a store in a schema of its own, or skips without MCPGUARD_TEST_POSTGRES.
func openPostgres(t testing.TB) *postgres.Store {
	t.Helper()
	dsn, schema := sqldbtest.NewSchema(t)
	st, err := postgres.Open(context.Background(), dsn, &postgres.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestPostgresLogVerifies(t *testing.T) {
	st := openPostgres(t)
	e := newEnv(t)
	l := e.logOn(t, st, 50)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := range 20 {
				if _, err := l.Append(context.Background(), call(w*20+i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	l.Close()
	rep, err := audit.Verify(context.Background(), st, audit.VerifyOptions{Verifier: e.keys.verifier, CheckpointDir: e.cpDir})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Records != 320 || rep.Covered != 320 {
		t.Errorf("report %+v, want 320 records all covered and no problems", rep)
	}
	p, err := audit.ProveInclusion(context.Background(), st, 123, e.keys.verifier)
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.VerifyInclusion(p, e.keys.verifier, ""); err != nil {
		t.Error(err)
	}
}

// BenchmarkDeploymentPostgres measures durable appends per second of 1, 2 and 3 instances'
// logs sharing one PostgreSQL schema (docs/audit.md, "Many instances"), each log with 64
// concurrent callers, all in this process; it reports the total, this process's CPU per record
// and the PostgreSQL server's (its processes' CPU from /proc, on this machine).
func BenchmarkDeploymentPostgres(b *testing.B) {
	dsn := os.Getenv("MCPGUARD_TEST_POSTGRES")
	for _, instances := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("instances=%d", instances), func(b *testing.B) {
			schema := openPostgres(b).Schema()
			r, err := redact.New([]byte("benchmark key, sixteen bytes+"), nil)
			if err != nil {
				b.Fatal(err)
			}
			k := newKeys(b, "bench")
			logs := make([]*audit.Log, instances)
			for i := range logs {
				name := fmt.Sprintf("gw-%d", i+1)
				st, err := postgres.Open(context.Background(), dsn, &postgres.Options{Schema: schema, Log: name, Lease: true})
				if err != nil {
					b.Fatal(err)
				}
				origin, dir := audit.Named(name, b.TempDir())
				l, err := audit.Open(context.Background(), st, &audit.Options{Redactor: r, Signer: k.signer, Origin: origin, CheckpointDir: dir})
				if err != nil {
					b.Fatal(err)
				}
				logs[i] = l
				defer st.Close()
				defer l.Close()
			}
			const writers = 64
			per := b.N/(writers*instances) + 1
			b.ResetTimer()
			start, cpu, pg := time.Now(), storetest.ProcessCPU(), postgresCPU()
			var wg sync.WaitGroup
			for _, l := range logs {
				for w := range writers {
					wg.Go(func() {
						for i := range per {
							rec := call(w*per + i)
							rec.Time = time.Time{}
							if _, err := l.Append(context.Background(), rec); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
			}
			wg.Wait()
			n := float64(per * writers * instances)
			b.ReportMetric(n/time.Since(start).Seconds(), "records/s")
			b.ReportMetric(float64((storetest.ProcessCPU()-cpu).Microseconds())/n, "cpu-µs/record")
			b.ReportMetric(float64((postgresCPU()-pg).Microseconds())/n, "pg-cpu-µs/record")
		})
	}
}

// postgresCPU is the user and system time of this machine's postgres processes (0 when /proc
// cannot tell).
func postgresCPU() time.Duration {
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	var ticks int64
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || !bytes.Contains(b[:i], []byte("(postgres")) {
			continue
		}
		f := strings.Fields(string(b[i+2:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}
