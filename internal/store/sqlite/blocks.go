package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/mcpguard/mcpguard/internal/store"
)

// Search narrows its reads with block summaries instead of secondary indexes: an index on a
// text column takes each new record in the middle of its b-tree, one hot spot per principal,
// and cost appends about a fifth of their throughput. A summary row describes a block of
// blockSize consecutive records: their time range and the distinct principals and tools among
// them. Search reads the summaries (a few hundred rows per million records), keeps the blocks
// that can hold a match, and reads only those, by sequence number.

// blockSize is the number of consecutive records one summary describes; tests lower it.
var blockSize int64 = 4096

// maxDistinct bounds the values a summary lists per column; past it the summary says "any",
// which prunes nothing, so that the row stays small. Tests lower it.
var maxDistinct = 64

// oldIndexes are the secondary indexes that block summaries replace.
var oldIndexes = []string{"audit_records_time", "audit_records_principal", "audit_records_tool"}

// valueSet is the distinct values of one column in a block, or any value at all.
type valueSet struct {
	any  bool
	vals map[string]struct{}
	// enc is the stored encoding of the set, kept while the set does not change.
	enc sql.NullString
}

// add records v; it reports whether the set changed.
func (s *valueSet) add(v string) bool {
	if s.any {
		return false
	}
	if _, ok := s.vals[v]; ok {
		return false
	}
	if len(s.vals) >= maxDistinct {
		s.any, s.vals = true, nil
	} else {
		if s.vals == nil {
			s.vals = make(map[string]struct{})
		}
		s.vals[v] = struct{}{}
	}
	s.enc.Valid = false
	return true
}

// mayHold reports whether a record in the block may have the value v.
func (s *valueSet) mayHold(v string) bool {
	if s.any {
		return true
	}
	_, ok := s.vals[v]
	return ok
}

// encode returns the stored form: NULL for any, else a sorted JSON array of strings.
func (s *valueSet) encode() sql.NullString {
	if s.any || s.enc.Valid {
		return s.enc
	}
	vals := make([]string, 0, len(s.vals))
	for v := range s.vals {
		vals = append(vals, v)
	}
	slices.Sort(vals)
	b, _ := json.Marshal(vals) // strings always encode
	s.enc = sql.NullString{String: string(b), Valid: true}
	return s.enc
}

// decodeValues parses a stored set: NULL means any, else a JSON array of distinct strings.
func decodeValues(enc sql.NullString) (valueSet, error) {
	if !enc.Valid {
		return valueSet{any: true}, nil
	}
	var vals []string
	if err := json.Unmarshal([]byte(enc.String), &vals); err != nil {
		return valueSet{}, fmt.Errorf("not a JSON array of strings: %w", err)
	}
	if vals == nil {
		return valueSet{}, errors.New("null instead of an array")
	}
	set := valueSet{vals: make(map[string]struct{}, len(vals)), enc: enc}
	for _, v := range vals {
		if _, dup := set.vals[v]; dup {
			return valueSet{}, fmt.Errorf("value %q listed twice", v)
		}
		set.vals[v] = struct{}{}
	}
	return set, nil
}

// blockSummary is one row of audit_blocks.
type blockSummary struct {
	block            int64
	minTime, maxTime int64
	// empty: no record added yet (min and max are meaningless).
	empty      bool
	principals valueSet
	tools      valueSet
}

// add records r; it reports whether the summary changed.
func (b *blockSummary) add(seq, timeNS int64, principal, tool string) bool {
	changed := false
	if b.empty {
		b.minTime, b.maxTime, b.empty, changed = timeNS, timeNS, false, true
	} else if timeNS < b.minTime {
		b.minTime, changed = timeNS, true
	} else if timeNS > b.maxTime {
		b.maxTime, changed = timeNS, true
	}
	if b.principals.add(principal) {
		changed = true
	}
	if b.tools.add(tool) {
		changed = true
	}
	return changed
}

// mayMatch reports whether a record of the block may match q (AfterSeq aside).
func (b *blockSummary) mayMatch(q *store.Query) bool {
	if q.Principal != "" && !b.principals.mayHold(q.Principal) {
		return false
	}
	if q.Tool != "" && !b.tools.mayHold(q.Tool) {
		return false
	}
	if !q.Since.IsZero() && b.maxTime < q.Since.UnixNano() {
		return false
	}
	if !q.Until.IsZero() && b.minTime >= q.Until.UnixNano() {
		return false
	}
	return true
}

const blockColumns = "block, min_time_ns, max_time_ns, principals, tools"

type rowScanner interface{ Scan(dest ...any) error }

// scanBlock reads a summary row. Search decodes only the sets its query looks at (the others
// become "any"): decoding is most of the cost of reading the summaries.
func scanBlock(row rowScanner, principals, tools bool) (*blockSummary, error) {
	var b blockSummary
	var encPrincipals, encTools sql.NullString
	if err := row.Scan(&b.block, &b.minTime, &b.maxTime, &encPrincipals, &encTools); err != nil {
		return nil, err
	}
	b.principals.any, b.tools.any = true, true
	var err error
	if principals {
		if b.principals, err = decodeValues(encPrincipals); err != nil {
			return nil, fmt.Errorf("summary of block %d: principals: %w", b.block, err)
		}
	}
	if tools {
		if b.tools, err = decodeValues(encTools); err != nil {
			return nil, fmt.Errorf("summary of block %d: tools: %w", b.block, err)
		}
	}
	return &b, nil
}

type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// loadBlock reads the summary of block n, or returns an empty one.
func loadBlock(ctx context.Context, db execQuerier, n int64) (*blockSummary, error) {
	b, err := scanBlock(db.QueryRowContext(ctx, "SELECT "+blockColumns+" FROM audit_blocks WHERE block = ?", n), true, true)
	if errors.Is(err, sql.ErrNoRows) {
		return &blockSummary{block: n, empty: true}, nil
	}
	return b, err
}

const upsertBlock = "INSERT INTO audit_blocks (" + blockColumns + ") VALUES (?, ?, ?, ?, ?) " +
	"ON CONFLICT (block) DO UPDATE SET min_time_ns = excluded.min_time_ns, max_time_ns = excluded.max_time_ns, " +
	"principals = excluded.principals, tools = excluded.tools"

func (b *blockSummary) args() []any {
	return []any{b.block, b.minTime, b.maxTime, b.principals.encode(), b.tools.encode()}
}

// summarize brings the summaries of the blocks recs fall in up to date, inside the append's
// transaction on s.w. The caller forgets s.cur when the transaction fails.
func (s *Store) summarize(ctx context.Context, recs []store.Record) error {
	dirty := false
	flush := func() error {
		if !dirty {
			return nil
		}
		if s.upsert == nil {
			st, err := s.w.PrepareContext(ctx, upsertBlock)
			if err != nil {
				return err
			}
			s.upsert = st
		}
		_, err := s.upsert.ExecContext(ctx, s.cur.args()...)
		dirty = false
		return err
	}
	for i := range recs {
		r := &recs[i]
		n := r.Seq / blockSize
		if s.cur == nil || s.cur.block != n {
			if err := flush(); err != nil {
				return err
			}
			b, err := loadBlock(ctx, s.w, n)
			if err != nil {
				return err
			}
			s.cur = b
		}
		if s.cur.add(r.Seq, r.Time.UnixNano(), r.Principal, r.Tool) {
			dirty = true
		}
	}
	return flush()
}

// migrate replaces the old secondary indexes, if the database has them, with block summaries
// of every record, in one transaction. Summaries already present are rebuilt: records may have
// been appended by a version that kept the indexes and wrote no summaries.
func migrate(ctx context.Context, db *sql.DB) error {
	has, err := hasOldIndexes(ctx, db)
	if err != nil || !has {
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	if err := rebuildSummaries(ctx, conn); err != nil {
		conn.ExecContext(context.Background(), "ROLLBACK")
		return err
	}
	_, err = conn.ExecContext(ctx, "COMMIT")
	return err
}

// computeSummaries summarizes every record from its indexed columns.
func computeSummaries(ctx context.Context, db execQuerier) ([]*blockSummary, error) {
	rows, err := db.QueryContext(ctx, "SELECT seq, time_ns, principal, tool FROM audit_records ORDER BY seq")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var blocks []*blockSummary
	for rows.Next() {
		var seq, ns int64
		var principal, tool string
		if err := rows.Scan(&seq, &ns, &principal, &tool); err != nil {
			return nil, err
		}
		n := seq / blockSize
		if len(blocks) == 0 || blocks[len(blocks)-1].block != n {
			blocks = append(blocks, &blockSummary{block: n, empty: true})
		}
		blocks[len(blocks)-1].add(seq, ns, principal, tool)
	}
	return blocks, rows.Err()
}

// CheckIndex recomputes the block summaries from the records and compares them with the stored
// ones (store.IndexChecker). A database that still searches through the old indexes has no
// summaries to check.
func (s *Store) CheckIndex(ctx context.Context) error {
	if err := s.catchUp(ctx); err != nil {
		return err
	}
	usable, err := summariesUsable(ctx, s.db)
	if err != nil || !usable {
		return err
	}
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	want, err := computeSummaries(ctx, tx)
	if err != nil {
		return fmt.Errorf("summarize records: %w", err)
	}
	rows, err := tx.QueryContext(ctx, "SELECT "+blockColumns+" FROM audit_blocks ORDER BY block")
	if err != nil {
		return err
	}
	defer rows.Close()
	i := 0
	for rows.Next() {
		got, err := scanBlock(rows, true, true)
		if err != nil {
			return &store.IndexMismatch{FirstSeq: -1, What: err.Error()}
		}
		if i < len(want) && want[i].block < got.block {
			return mismatch(want[i], "has no search summary: audit search would not find its records")
		}
		if i == len(want) || want[i].block != got.block {
			return &store.IndexMismatch{FirstSeq: got.block * blockSize, What: fmt.Sprintf("the search summary of block %d describes records that do not exist", got.block)}
		}
		if !sameSummary(want[i], got) {
			return mismatch(want[i], "has a search summary that does not match its records: audit search could miss some of them")
		}
		i++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if i < len(want) {
		return mismatch(want[i], "has no search summary: audit search would not find its records")
	}
	return nil
}

func mismatch(b *blockSummary, what string) error {
	first := b.block * blockSize
	return &store.IndexMismatch{FirstSeq: first, What: fmt.Sprintf("block %d (records %d..%d) %s", b.block, first, first+blockSize-1, what)}
}

func sameSummary(a, b *blockSummary) bool {
	x, y := a.args(), b.args()
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

func rebuildSummaries(ctx context.Context, conn *sql.Conn) error {
	blocks, err := computeSummaries(ctx, conn)
	if err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "DELETE FROM audit_blocks"); err != nil {
		return err
	}
	for _, b := range blocks {
		if _, err := conn.ExecContext(ctx, upsertBlock, b.args()...); err != nil {
			return err
		}
	}
	for _, name := range oldIndexes {
		if _, err := conn.ExecContext(ctx, "DROP INDEX IF EXISTS "+name); err != nil {
			return err
		}
	}
	return nil
}

// hasOldIndexes reports whether any index that summaries replace exists.
func hasOldIndexes(ctx context.Context, db *sql.DB) (bool, error) {
	var n int
	err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name IN (?, ?, ?)",
		oldIndexes[0], oldIndexes[1], oldIndexes[2]).Scan(&n)
	return n > 0, err
}

// summariesUsable reports whether Search may trust the block summaries: the table exists and
// no old index does (a database not yet migrated, opened read-only, has records without
// summaries, and still has the indexes to search it the old way).
func summariesUsable(ctx context.Context, db *sql.DB) (bool, error) {
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit_blocks'").Scan(&n); err != nil {
		return false, err
	}
	if n == 0 {
		return false, nil
	}
	old, err := hasOldIndexes(ctx, db)
	return !old, err
}

// seqRange is an inclusive range of sequence numbers.
type seqRange struct{ lo, hi int64 }

// searchRanges returns the ranges of sequence numbers, in order, that can hold records matching
// q, from the summaries. Blocks without a summary, and every record past the last summarized
// block, are always read.
func searchRanges(ctx context.Context, tx *sql.Tx, q *store.Query) ([]seqRange, error) {
	first := max(q.AfterSeq+1, 0) / blockSize
	rows, err := tx.QueryContext(ctx, "SELECT "+blockColumns+" FROM audit_blocks WHERE block >= ? ORDER BY block", first)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []seqRange
	keep := func(lo, hi int64) {
		if n := len(out); n > 0 && out[n-1].hi+1 >= lo {
			out[n-1].hi = max(out[n-1].hi, hi)
			return
		}
		out = append(out, seqRange{lo, hi})
	}
	next := first // the first block not yet considered
	for rows.Next() {
		b, err := scanBlock(rows, q.Principal != "", q.Tool != "")
		if err != nil {
			return nil, err
		}
		if b.block > next {
			keep(next*blockSize, b.block*blockSize-1) // no summary: read it
		}
		if b.mayMatch(q) {
			keep(b.block*blockSize, b.block*blockSize+blockSize-1)
		}
		next = b.block + 1
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	keep(next*blockSize, math.MaxInt64)
	return out, nil
}
