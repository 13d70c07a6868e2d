package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/mcpguard/mcpguard/internal/store"
)

// complianceSchema holds what data-subject requests, retention and legal holds keep beside the
// records (store.Compliance): the subject index, the subject keys and the holds.
const complianceSchema = `
CREATE TABLE IF NOT EXISTS audit_subjects (
	commitment TEXT NOT NULL,
	seq        INTEGER NOT NULL,
	PRIMARY KEY (commitment, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS audit_subjects_seq ON audit_subjects (seq);
CREATE TABLE IF NOT EXISTS subject_keys (
	commitment TEXT PRIMARY KEY,
	key_id     TEXT NOT NULL UNIQUE,
	wrapped    BLOB NOT NULL,
	created_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS legal_holds (
	id          TEXT PRIMARY KEY,
	kind        TEXT NOT NULL,
	value       TEXT NOT NULL,
	from_ns     INTEGER NOT NULL,
	until_ns    INTEGER NOT NULL,
	reason      TEXT NOT NULL,
	actor       TEXT NOT NULL,
	created_ns  INTEGER NOT NULL,
	released_ns INTEGER NOT NULL DEFAULT 0,
	released_by TEXT NOT NULL DEFAULT ''
);
`

// indexSubjects adds the subject index rows of recs, inside the append's transaction.
func (s *Store) indexSubjects(ctx context.Context, recs []store.Record) error {
	for _, r := range recs {
		for _, c := range r.Subjects {
			if s.subjectInsert == nil {
				st, err := s.w.PrepareContext(ctx, "INSERT OR IGNORE INTO audit_subjects (commitment, seq) VALUES (?, ?)")
				if err != nil {
					return err
				}
				s.subjectInsert = st
			}
			if _, err := s.subjectInsert.ExecContext(ctx, c, r.Seq); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) writable(what string) error {
	if s.readOnly {
		return fmt.Errorf("%s: the database is open read-only", what)
	}
	return nil
}

// PutSubjectKey stores k unless the commitment has a key, and returns the stored one.
func (s *Store) PutSubjectKey(ctx context.Context, k store.SubjectKey) (store.SubjectKey, error) {
	if err := s.writable("store subject key"); err != nil {
		return store.SubjectKey{}, err
	}
	if _, err := s.db.ExecContext(ctx, "INSERT OR IGNORE INTO subject_keys (commitment, key_id, wrapped, created_ns) VALUES (?, ?, ?, ?)",
		k.Commitment, k.KeyID, k.Wrapped, k.Created.UnixNano()); err != nil {
		return store.SubjectKey{}, fmt.Errorf("store subject key: %w", err)
	}
	return s.SubjectKey(ctx, k.Commitment)
}

// SubjectKey returns the key of a commitment.
func (s *Store) SubjectKey(ctx context.Context, commitment string) (store.SubjectKey, error) {
	k := store.SubjectKey{Commitment: commitment}
	var ns int64
	err := s.db.QueryRowContext(ctx, "SELECT key_id, wrapped, created_ns FROM subject_keys WHERE commitment = ?", commitment).Scan(&k.KeyID, &k.Wrapped, &ns)
	if errors.Is(err, sql.ErrNoRows) {
		return k, fmt.Errorf("subject key: %w", store.ErrNotFound)
	}
	if err != nil {
		return k, fmt.Errorf("subject key: %w", err)
	}
	k.Created = time.Unix(0, ns).UTC()
	return k, nil
}

// DeleteSubjectKeys deletes the keys of the listed commitments and key ids, in one transaction.
func (s *Store) DeleteSubjectKeys(ctx context.Context, commitments, keyIDs []string) ([]store.SubjectKey, error) {
	if err := s.writable("delete subject keys"); err != nil {
		return nil, err
	}
	if len(commitments) == 0 && len(keyIDs) == 0 {
		return nil, nil
	}
	// One statement: it takes the write lock when it starts (and waits for it), where a
	// transaction that read first could not upgrade its snapshot once another connection had
	// written (SQLITE_BUSY_SNAPSHOT).
	where, args := inList("commitment", commitments, "key_id", keyIDs)
	rows, err := s.db.QueryContext(ctx, "DELETE FROM subject_keys WHERE "+where+" RETURNING commitment, key_id, created_ns", args...)
	if err != nil {
		return nil, fmt.Errorf("delete subject keys: %w", err)
	}
	defer rows.Close()
	var out []store.SubjectKey
	for rows.Next() {
		var k store.SubjectKey
		var ns int64
		if err := rows.Scan(&k.Commitment, &k.KeyID, &ns); err != nil {
			return nil, fmt.Errorf("delete subject keys: %w", err)
		}
		k.Created = time.Unix(0, ns).UTC()
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("delete subject keys: %w", err)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("delete subject keys: %w", err)
	}
	return out, nil
}

// inList returns "a IN (?, …) OR b IN (?, …)" for the non-empty lists, and its arguments.
func inList(colA string, a []string, colB string, b []string) (string, []any) {
	var conds []string
	var args []any
	for _, l := range []struct {
		col  string
		vals []string
	}{{colA, a}, {colB, b}} {
		if len(l.vals) == 0 {
			continue
		}
		conds = append(conds, l.col+" IN ("+strings.TrimSuffix(strings.Repeat("?,", len(l.vals)), ",")+")")
		for _, v := range l.vals {
			args = append(args, v)
		}
	}
	return strings.Join(conds, " OR "), args
}

// AddHold stores a legal hold.
func (s *Store) AddHold(ctx context.Context, h store.Hold) error {
	if err := s.writable("add legal hold"); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, "INSERT INTO legal_holds (id, kind, value, from_ns, until_ns, reason, actor, created_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		h.ID, h.Kind, h.Value, unixOrZero(h.From), unixOrZero(h.Until), h.Reason, h.Actor, h.Created.UnixNano())
	if err != nil {
		return fmt.Errorf("add legal hold %s: %w", h.ID, err)
	}
	return nil
}

// Holds returns every hold, oldest first.
func (s *Store) Holds(ctx context.Context) ([]store.Hold, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT id, kind, value, from_ns, until_ns, reason, actor, created_ns, released_ns, released_by FROM legal_holds ORDER BY created_ns, id")
	if err != nil {
		return nil, fmt.Errorf("read legal holds: %w", err)
	}
	defer rows.Close()
	var out []store.Hold
	for rows.Next() {
		var h store.Hold
		var from, until, created, released int64
		if err := rows.Scan(&h.ID, &h.Kind, &h.Value, &from, &until, &h.Reason, &h.Actor, &created, &released, &h.ReleasedBy); err != nil {
			return nil, fmt.Errorf("read legal holds: %w", err)
		}
		h.From, h.Until, h.Created, h.Released = timeOrZero(from), timeOrZero(until), timeOrZero(created), timeOrZero(released)
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read legal holds: %w", err)
	}
	return out, nil
}

// ReleaseHold marks an unreleased hold released.
func (s *Store) ReleaseHold(ctx context.Context, id string, at time.Time, by string) error {
	if err := s.writable("release legal hold"); err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, "UPDATE legal_holds SET released_ns = ?, released_by = ? WHERE id = ? AND released_ns = 0", at.UnixNano(), by, id)
	if err != nil {
		return fmt.Errorf("release legal hold %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("release legal hold %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// Prune replaces the data of recs and drops them from the subject index, in one transaction.
func (s *Store) Prune(ctx context.Context, recs []store.Pruned) error {
	if err := s.catchUp(ctx); err != nil {
		return err
	}
	if err := s.writable("prune audit records"); err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("prune audit records: %w", err)
	}
	defer tx.Rollback()
	for _, r := range recs {
		res, err := tx.ExecContext(ctx, "UPDATE audit_records SET record = ? WHERE seq = ?", r.Data, r.Seq)
		if err != nil {
			return fmt.Errorf("prune audit record %d: %w", r.Seq, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("prune audit record %d: %w", r.Seq, store.ErrNotFound)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM audit_subjects WHERE seq = ?", r.Seq); err != nil {
			return fmt.Errorf("prune audit record %d: %w", r.Seq, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("prune audit records: %w", err)
	}
	return nil
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func timeOrZero(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// SubjectIndex implements store.SubjectIndexReader.
func (s *Store) SubjectIndex(ctx context.Context, fn func(seq int64, key string) error) error {
	if err := s.catchUp(ctx); err != nil {
		return err
	}
	n, err := s.bound(ctx)
	if err != nil {
		return fmt.Errorf("read the subject index: %w", err)
	}
	below := n
	if n < 0 {
		below = math.MaxInt64
	}
	rows, err := s.db.QueryContext(ctx, "SELECT seq, commitment FROM audit_subjects WHERE seq < ? ORDER BY seq, commitment", below)
	if err != nil {
		return fmt.Errorf("read the subject index: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var key string
		if err := rows.Scan(&seq, &key); err != nil {
			return fmt.Errorf("read the subject index: %w", err)
		}
		if err := fn(seq, key); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the subject index: %w", err)
	}
	return s.subjectTail(n, fn)
}
