package gdpr_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/gdpr"
	"github.com/mcpguard/mcpguard/internal/store"
	"github.com/mcpguard/mcpguard/internal/store/sqlite"
)

// benchLog builds a SQLite log of n records written straight to the store (canonical records,
// placeholder tree hashes: export and erasure read neither), in which one record in ten names one
// of 10 000 data subjects, sealed as the audit log seals them; subject "C-target" has 100
// records. It returns the store and the service.
func benchLog(b *testing.B, n int) (store.Store, *gdpr.Service) {
	b.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "audit.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	subjects, err := gdpr.NewSubjects(st, secret, &gdpr.Options{Tools: tools})
	if err != nil {
		b.Fatal(err)
	}
	identity := func(raw []byte) []byte { return raw }
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	hashes := make([]byte, 32)
	batch := make([]store.Record, 0, 4096)
	for seq := 0; seq < n; seq++ {
		rec := &audit.Record{Version: audit.SchemaVersion, Seq: int64(seq), Time: t0.Add(time.Duration(seq) * time.Millisecond),
			Kind: audit.KindToolCall, Principal: "analyst", Decision: audit.DecisionAllow, RequestID: fmt.Sprintf("r%d", seq)}
		switch {
		case seq%10 == 0:
			subject := fmt.Sprintf("C-%d", (seq/10)%10000)
			if seq%(n/100) == 0 {
				subject = "C-target"
			}
			rec.Tool, rec.Arguments = "get_client_portfolio", json.RawMessage(`{"client_id":"`+subject+`","fields":["positions","cash"]}`)
			if err := subjects.Seal(ctx, rec, identity); err != nil {
				b.Fatal(err)
			}
		default:
			rec.Tool, rec.Arguments = "get_market_data", json.RawMessage(`{"symbol":"ACME","range":"1d"}`)
		}
		data, err := audit.Canonical(rec)
		if err != nil {
			b.Fatal(err)
		}
		var cs []string
		for _, s := range rec.Subjects {
			cs = append(cs, s.Commitment)
		}
		batch = append(batch, store.Record{Seq: rec.Seq, Time: rec.Time, Kind: string(rec.Kind), Principal: rec.Principal, Tool: rec.Tool,
			Decision: rec.Decision, RequestID: rec.RequestID, Data: data, Hashes: hashes, Subjects: cs})
		if len(batch) == cap(batch) || seq == n-1 {
			if err := st.Append(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	svc, err := gdpr.NewService(st, subjects, discard{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return st, svc
}

// discard is an audit log that records nothing: the benchmarks time the request, not the append
// (an append is measured in internal/audit).
type discard struct{}

func (discard) Append(context.Context, *audit.Record) (int64, error) { return 0, nil }

// BenchmarkExport exports one subject's 100 records from a log of a million.
func BenchmarkExport(b *testing.B) {
	_, svc := benchLog(b, 1_000_000)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		ex, err := svc.Export(ctx, "C-target", operator)
		if err != nil {
			b.Fatal(err)
		}
		if ex.Readable != 100 {
			b.Fatalf("exported %d readable records, want 100: the benchmark proves nothing", ex.Readable)
		}
	}
}

// BenchmarkErase erases subjects of a log of a million records, one per iteration.
func BenchmarkErase(b *testing.B) {
	_, svc := benchLog(b, 1_000_000)
	ctx := context.Background()
	i := 0
	b.ResetTimer()
	for b.Loop() {
		i++
		if i%1000 == 0 {
			i++ // C-0, C-1000, …: their records went to C-target
		}
		if i >= 10000 {
			b.Fatal("every subject was erased; lower -benchtime")
		}
		if _, err := svc.Erase(ctx, fmt.Sprintf("C-%d", i), "bench", operator); err != nil {
			b.Fatal(err)
		}
	}
}
