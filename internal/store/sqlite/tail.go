package sqlite

import (
	"context"
	"os"
	"slices"

	"github.com/mcpguard/mcpguard/internal/store"
)

// A read-only store (verification, search, export from the command line) also reads the
// record segment at open: the records a running writer has not yet added to the database, or
// that a stopped one left there, are its tail. Reads take what the database holds below its
// size at the time of the read from the database, and the rest from the tail, so that they see
// every acknowledged record once, however far the writer has got meanwhile.

// readTail returns the records of the segment beside the database at path; nothing when there
// is none or it does not decode (audit verify reports the segment's size).
func readTail(path string) []store.Record {
	data, err := os.ReadFile(path + SegmentSuffix)
	if err != nil {
		return nil
	}
	recs, _, err := decodeSegment(data)
	if err != nil {
		return nil
	}
	return recs
}

// bound returns the database's size when the store has a tail, and -1 otherwise.
func (s *Store) bound(ctx context.Context) (int64, error) {
	if len(s.tail) == 0 {
		return -1, nil
	}
	return s.sizeOfTable(ctx)
}

// tailFrom returns the tail's records from sequence number n on, when the tail continues a
// database of n records.
func (s *Store) tailFrom(n int64) []store.Record {
	if len(s.tail) == 0 || s.tail[0].Seq > n {
		return nil
	}
	i := n - s.tail[0].Seq
	if i >= int64(len(s.tail)) {
		return nil
	}
	return s.tail[i:]
}

// tailGet returns the tail's record seq, or nil.
func (s *Store) tailGet(seq int64) *store.Record {
	if len(s.tail) == 0 || seq < s.tail[0].Seq || seq-s.tail[0].Seq >= int64(len(s.tail)) {
		return nil
	}
	return &s.tail[seq-s.tail[0].Seq]
}

// scanTail calls fn for the tail's records from n on that match q, up to q.Limit.
func (s *Store) scanTail(n int64, q store.Query, fn func(*store.Record) error) error {
	found := 0
	for _, r := range s.tailFrom(n) {
		if !matches(&q, &r) {
			continue
		}
		r.Subjects = nil // reads leave them empty
		if err := fn(&r); err != nil {
			return err
		}
		if found++; q.Limit > 0 && found >= q.Limit {
			break
		}
	}
	return nil
}

// matches reports whether r is one of the records q selects.
func matches(q *store.Query, r *store.Record) bool {
	return r.Seq > q.AfterSeq &&
		(q.Principal == "" || r.Principal == q.Principal) &&
		(q.Tool == "" || r.Tool == q.Tool) &&
		(q.Decision == "" || r.Decision == q.Decision) &&
		(q.Kind == "" || r.Kind == q.Kind) &&
		(q.Subject == "" || slices.Contains(r.Subjects, q.Subject)) &&
		(q.Since.IsZero() || !r.Time.Before(q.Since)) &&
		(q.Until.IsZero() || r.Time.Before(q.Until))
}

// subjectTail calls fn with the subject index entries of the tail's records from n on, ordered
// as the database orders them.
func (s *Store) subjectTail(n int64, fn func(seq int64, key string) error) error {
	for _, r := range s.tailFrom(n) {
		keys := slices.Clone(r.Subjects)
		slices.Sort(keys)
		for _, k := range slices.Compact(keys) {
			if err := fn(r.Seq, k); err != nil {
				return err
			}
		}
	}
	return nil
}
