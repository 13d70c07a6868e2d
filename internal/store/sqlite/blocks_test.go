package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpguard/mcpguard/internal/store"
)

// smallBlocks makes summaries cover size records and list at most distinct values, for the test.
func smallBlocks(t *testing.T, size int64, distinct int) {
	oldSize, oldDistinct := blockSize, maxDistinct
	blockSize, maxDistinct = size, distinct
	t.Cleanup(func() { blockSize, maxDistinct = oldSize, oldDistinct })
}

var bt0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

// clusteredRecords returns n records whose principals and tools drift with the sequence
// number (so that most blocks hold a few of them), with a rare value now and then (so that
// some blocks list more than maxDistinct and say "any"), and times that are not monotonic.
func clusteredRecords(n int64) []store.Record {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]store.Record, n)
	for seq := range n {
		p := (seq/20 + rng.Int64N(3)) % 12
		if rng.IntN(10) == 0 {
			p = rng.Int64N(12)
		}
		out[seq] = store.Record{
			Seq:       seq,
			Time:      bt0.Add(time.Duration(seq)*time.Second + time.Duration(rng.IntN(7)-3)*time.Second),
			Kind:      []string{"call", "call", "list"}[rng.IntN(3)],
			Principal: fmt.Sprintf("p%d", p),
			Tool:      fmt.Sprintf("t%d", (seq/30+rng.Int64N(2))%7),
			Decision:  []string{"allow", "deny"}[rng.IntN(2)],
			RequestID: fmt.Sprintf("req-%d", seq),
			Data:      fmt.Appendf(nil, `{"seq":%d}`, seq),
			Hashes:    make([]byte, 32),
		}
	}
	return out
}

// bruteForce is what Search must return: every record matching q, in order.
func bruteForce(recs []store.Record, q store.Query) []int64 {
	var out []int64
	for _, r := range recs {
		switch {
		case r.Seq <= q.AfterSeq,
			q.Principal != "" && r.Principal != q.Principal,
			q.Tool != "" && r.Tool != q.Tool,
			q.Decision != "" && r.Decision != q.Decision,
			q.Kind != "" && r.Kind != q.Kind,
			!q.Since.IsZero() && r.Time.Before(q.Since),
			!q.Until.IsZero() && !r.Time.Before(q.Until):
			continue
		}
		out = append(out, r.Seq)
		if q.Limit > 0 && len(out) == q.Limit {
			break
		}
	}
	return out
}

func randomQuery(rng *rand.Rand, n int64) store.Query {
	q := store.Query{AfterSeq: -1}
	if rng.IntN(2) == 0 {
		q.Principal = fmt.Sprintf("p%d", rng.IntN(13)) // p12 never occurs
	}
	if rng.IntN(2) == 0 {
		q.Tool = fmt.Sprintf("t%d", rng.IntN(8))
	}
	if rng.IntN(4) == 0 {
		q.Decision = "deny"
	}
	if rng.IntN(10) == 0 {
		q.Kind = "list"
	}
	if rng.IntN(2) == 0 {
		q.Since = bt0.Add(time.Duration(rng.Int64N(n+10)-5) * time.Second)
	}
	if rng.IntN(2) == 0 {
		q.Until = bt0.Add(time.Duration(rng.Int64N(n+10)-5) * time.Second)
	}
	if rng.IntN(2) == 0 {
		q.AfterSeq = rng.Int64N(n+2) - 1
	}
	if rng.IntN(2) == 0 {
		q.Limit = 1 + rng.IntN(20)
	}
	return q
}

func search(t *testing.T, s *Store, q store.Query) []int64 {
	t.Helper()
	var got []int64
	if err := s.Search(context.Background(), q, func(r *store.Record) error { got = append(got, r.Seq); return nil }); err != nil {
		t.Fatalf("Search(%+v): %v", q, err)
	}
	return got
}

// checkSearches compares Search with a brute-force filter on random queries.
func checkSearches(t *testing.T, s *Store, recs []store.Record) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	for range 500 {
		q := randomQuery(rng, int64(len(recs)))
		if diff := cmp.Diff(bruteForce(recs, q), search(t, s, q)); diff != "" {
			t.Fatalf("Search(%+v) (-want +got):\n%s", q, diff)
		}
	}
}

// checkSummaries compares the stored summaries with summaries built anew from the records.
func checkSummaries(t *testing.T, db *sql.DB) {
	t.Helper()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	read := func() []string {
		rows, err := conn.QueryContext(ctx, "SELECT block, min_time_ns, max_time_ns, IFNULL(principals, 'any'), IFNULL(tools, 'any') FROM audit_blocks ORDER BY block")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var b, lo, hi int64
			var p, tl string
			if err := rows.Scan(&b, &lo, &hi, &p, &tl); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%d %d %d %s %s", b, lo, hi, p, tl))
		}
		return out
	}
	stored := read()
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(ctx, "ROLLBACK")
	if err := rebuildSummaries(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(read(), stored); diff != "" {
		t.Errorf("stored summaries differ from the records (-rebuilt +stored):\n%s", diff)
	}
}

func TestSearchWithBlocks(t *testing.T) {
	smallBlocks(t, 8, 4)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	recs := clusteredRecords(400)
	s := openAt(t, path)
	// Batches of random sizes, crossing blocks; the store is reopened half way, so that the
	// summary of the last block is read back from the table.
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < len(recs); {
		if i >= 200 && s != nil {
			s.Close()
			s = nil
		}
		if s == nil {
			s = openAt(t, path)
		}
		n := min(1+rng.IntN(20), len(recs)-i)
		if err := s.Append(ctx, recs[i:i+n]); err != nil {
			t.Fatal(err)
		}
		i += n
	}
	var blocks, anyPrincipal int
	if err := s.db.QueryRow("SELECT COUNT(*), COUNT(*) - COUNT(principals) FROM audit_blocks").Scan(&blocks, &anyPrincipal); err != nil {
		t.Fatal(err)
	}
	if blocks != 50 || anyPrincipal == 0 || anyPrincipal == blocks {
		t.Fatalf("%d summaries, %d saying any principal; want 50, some but not all", blocks, anyPrincipal)
	}
	checkSummaries(t, s.db)
	checkSearches(t, s, recs)
	// Records without a summary (none are written so, but a search must not skip them).
	if _, err := s.db.Exec("DELETE FROM audit_blocks WHERE block IN (3, 49)"); err != nil {
		t.Fatal(err)
	}
	checkSearches(t, s, recs)
}

// oldSchema is the schema before block summaries, with the indexes they replace.
const oldSchema = `
CREATE TABLE audit_records (
	seq        INTEGER PRIMARY KEY,
	time_ns    INTEGER NOT NULL,
	kind       TEXT NOT NULL,
	principal  TEXT NOT NULL,
	tool       TEXT NOT NULL,
	decision   TEXT NOT NULL,
	request_id TEXT NOT NULL,
	record     BLOB NOT NULL,
	hashes     BLOB NOT NULL
);
CREATE INDEX audit_records_time ON audit_records(time_ns);
CREATE INDEX audit_records_principal ON audit_records(principal, time_ns);
CREATE INDEX audit_records_tool ON audit_records(tool, time_ns);
CREATE TABLE audit_checkpoints (
	size    INTEGER PRIMARY KEY,
	time_ns INTEGER NOT NULL,
	note    BLOB NOT NULL
);
`

func TestOldSchemaMigrates(t *testing.T) {
	smallBlocks(t, 8, 4)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	recs := clusteredRecords(300)
	db, err := sql.Open("sqlite", path+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(oldSchema); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if _, err := db.Exec("INSERT INTO audit_records ("+columns+") VALUES (?,?,?,?,?,?,?,?,?)",
			r.Seq, r.Time.UnixNano(), r.Kind, r.Principal, r.Tool, r.Decision, r.RequestID, r.Data, r.Hashes); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	t.Run("read-only searches without writing", func(t *testing.T) {
		before, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		ro, err := Open(ctx, path, &Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		checkSearches(t, ro, recs)
		if err := ro.Close(); err != nil {
			t.Fatal(err)
		}
		after, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
			t.Errorf("the read-only open changed the database file (size %d → %d, modified %v → %v)",
				before.Size(), after.Size(), before.ModTime(), after.ModTime())
		}
		if has, err := hasOldIndexes(ctx, mustOpenRO(t, path)); err != nil || !has {
			t.Errorf("old indexes present after a read-only open: %v, %v; want true", has, err)
		}
	})
	t.Run("read-write migrates", func(t *testing.T) {
		s := openAt(t, path)
		if has, err := hasOldIndexes(ctx, s.db); err != nil || has {
			t.Errorf("old indexes present after opening read-write: %v, %v; want false", has, err)
		}
		checkSummaries(t, s.db)
		var n int
		if err := s.db.QueryRow("SELECT COUNT(*) FROM audit_blocks").Scan(&n); err != nil || n != 38 {
			t.Errorf("%d summaries, %v; want 38", n, err)
		}
		checkSearches(t, s, recs)
		// Appends continue the summaries.
		more := clusteredRecords(340)[300:]
		if err := s.Append(ctx, more); err != nil {
			t.Fatal(err)
		}
		checkSummaries(t, s.db)
		checkSearches(t, s, append(recs, more...))
	})
}

func mustOpenRO(t *testing.T, path string) *sql.DB {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestFailedAppendKeepsSummaries fails an append whose summary cannot be written, then
// appends again what a retry would: the record that was rolled back, now committed, must be
// found, although its summary then looks unchanged from the failed attempt's.
func TestFailedAppendKeepsSummaries(t *testing.T) {
	smallBlocks(t, 8, 4)
	ctx := context.Background()
	s := openAt(t, filepath.Join(t.TempDir(), "audit.db"))
	recs := clusteredRecords(21)
	if err := s.Append(ctx, recs[:20]); err != nil {
		t.Fatal(err)
	}
	// Record 20, in block 2, has a new principal and a time block 2 already covers.
	recs[20].Principal, recs[20].Time = "mallory", recs[16].Time
	if _, err := s.db.Exec(`CREATE TRIGGER fail_mallory BEFORE UPDATE ON audit_blocks WHEN NEW.principals LIKE '%mallory%'
		BEGIN SELECT RAISE(ABORT, 'injected failure'); END`); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, recs[20:21]); err == nil {
		t.Fatal("the append succeeded although its summary could not be written")
	}
	if got := search(t, s, store.Query{AfterSeq: -1}); len(got) != 20 {
		t.Fatalf("%d records after the failed append, want 20", len(got))
	}
	if _, err := s.db.Exec("DROP TRIGGER fail_mallory"); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, recs[20:21]); err != nil {
		t.Fatal(err)
	}
	if got := search(t, s, store.Query{Principal: "mallory", AfterSeq: -1}); !slices.Equal(got, []int64{20}) {
		t.Errorf("records of mallory: %v, want [20]", got)
	}
	checkSummaries(t, s.db)
}

func TestDecodeValues(t *testing.T) {
	for _, bad := range []string{``, `null`, `{}`, `["a",1]`, `["a","a"]`, `["a"] x`, `["a"`} {
		if _, err := decodeValues(sql.NullString{String: bad, Valid: true}); err == nil {
			t.Errorf("decodeValues(%q) accepted it", bad)
		}
	}
}

func FuzzDecodeValues(f *testing.F) {
	f.Add(`["alice","bob"]`)
	f.Add(`[]`)
	f.Add(`["a","a"]`)
	f.Fuzz(func(t *testing.T, enc string) {
		set, err := decodeValues(sql.NullString{String: enc, Valid: true})
		if err != nil {
			return
		}
		set.enc.Valid = false // encode anew
		again, err := decodeValues(set.encode())
		if err != nil {
			t.Fatalf("%q decoded, but its encoding %q does not: %v", enc, set.encode().String, err)
		}
		if diff := cmp.Diff(set.vals, again.vals); diff != "" {
			t.Errorf("round trip of %q (-first +second):\n%s", enc, diff)
		}
	})
}
