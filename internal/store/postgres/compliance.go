package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcpguard/mcpguard/internal/store"
)

// complianceSchema holds what data-subject requests, retention and legal holds keep beside the
// records (store.Compliance): the subject index, the subject keys and the holds.
const complianceSchema = `
CREATE TABLE IF NOT EXISTS %[1]s.audit_subjects (
	commitment TEXT NOT NULL,
	seq        BIGINT NOT NULL,
	PRIMARY KEY (commitment, seq)
);
CREATE INDEX IF NOT EXISTS audit_subjects_seq ON %[1]s.audit_subjects(seq);
CREATE TABLE IF NOT EXISTS %[1]s.subject_keys (
	commitment TEXT PRIMARY KEY,
	key_id     TEXT NOT NULL UNIQUE,
	wrapped    BYTEA NOT NULL,
	created_ns BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS %[1]s.legal_holds (
	id          TEXT PRIMARY KEY,
	kind        TEXT NOT NULL,
	value       TEXT NOT NULL,
	from_ns     BIGINT NOT NULL,
	until_ns    BIGINT NOT NULL,
	reason      TEXT NOT NULL,
	actor       TEXT NOT NULL,
	created_ns  BIGINT NOT NULL,
	released_ns BIGINT NOT NULL DEFAULT 0,
	released_by TEXT NOT NULL DEFAULT ''
);`

// PutSubjectKey stores k unless the commitment has a key, and returns the stored one.
func (s *Store) PutSubjectKey(ctx context.Context, k store.SubjectKey) (store.SubjectKey, error) {
	err := s.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, "INSERT INTO "+s.table("subject_keys")+" (commitment, key_id, wrapped, created_ns) VALUES ($1, $2, $3, $4) ON CONFLICT (commitment) DO NOTHING",
			k.Commitment, k.KeyID, k.Wrapped, k.Created.UnixNano())
		return err
	})
	if err != nil {
		return store.SubjectKey{}, fmt.Errorf("store subject key: %w", err)
	}
	return s.SubjectKey(ctx, k.Commitment)
}

// SubjectKey returns the key of a commitment.
func (s *Store) SubjectKey(ctx context.Context, commitment string) (store.SubjectKey, error) {
	k := store.SubjectKey{Commitment: commitment}
	var ns int64
	err := s.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, "SELECT key_id, wrapped, created_ns FROM "+s.table("subject_keys")+" WHERE commitment = $1", commitment).Scan(&k.KeyID, &k.Wrapped, &ns)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return k, fmt.Errorf("subject key: %w", store.ErrNotFound)
	}
	if err != nil {
		return k, fmt.Errorf("subject key: %w", err)
	}
	k.Created = time.Unix(0, ns).UTC()
	return k, nil
}

// DeleteSubjectKeys deletes the keys of the listed commitments and key ids, in one statement.
func (s *Store) DeleteSubjectKeys(ctx context.Context, commitments, keyIDs []string) ([]store.SubjectKey, error) {
	if len(commitments) == 0 && len(keyIDs) == 0 {
		return nil, nil
	}
	if commitments == nil {
		commitments = []string{}
	}
	if keyIDs == nil {
		keyIDs = []string{}
	}
	var out []store.SubjectKey
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, "DELETE FROM "+s.table("subject_keys")+" WHERE commitment = ANY($1) OR key_id = ANY($2) RETURNING commitment, key_id, created_ns", commitments, keyIDs)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k store.SubjectKey
			var ns int64
			if err := rows.Scan(&k.Commitment, &k.KeyID, &ns); err != nil {
				return err
			}
			k.Created = time.Unix(0, ns).UTC()
			out = append(out, k)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("delete subject keys: %w", err)
	}
	return out, nil
}

// AddHold stores a legal hold.
func (s *Store) AddHold(ctx context.Context, h store.Hold) error {
	err := s.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, "INSERT INTO "+s.table("legal_holds")+" (id, kind, value, from_ns, until_ns, reason, actor, created_ns) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
			h.ID, h.Kind, h.Value, unixOrZero(h.From), unixOrZero(h.Until), h.Reason, h.Actor, h.Created.UnixNano())
		return err
	})
	if err != nil {
		return fmt.Errorf("add legal hold %s: %w", h.ID, err)
	}
	return nil
}

// Holds returns every hold, oldest first.
func (s *Store) Holds(ctx context.Context) ([]store.Hold, error) {
	var out []store.Hold
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, "SELECT id, kind, value, from_ns, until_ns, reason, actor, created_ns, released_ns, released_by FROM "+s.table("legal_holds")+" ORDER BY created_ns, id")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var h store.Hold
			var from, until, created, released int64
			if err := rows.Scan(&h.ID, &h.Kind, &h.Value, &from, &until, &h.Reason, &h.Actor, &created, &released, &h.ReleasedBy); err != nil {
				return err
			}
			h.From, h.Until, h.Created, h.Released = timeOrZero(from), timeOrZero(until), timeOrZero(created), timeOrZero(released)
			out = append(out, h)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read legal holds: %w", err)
	}
	return out, nil
}

// ReleaseHold marks an unreleased hold released.
func (s *Store) ReleaseHold(ctx context.Context, id string, at time.Time, by string) error {
	var n int64
	err := s.with(ctx, func(c *pgx.Conn) error {
		tag, err := c.Exec(ctx, "UPDATE "+s.table("legal_holds")+" SET released_ns = $1, released_by = $2 WHERE id = $3 AND released_ns = 0", at.UnixNano(), by, id)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("release legal hold %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("release legal hold %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// Prune replaces the data of recs and drops them from the subject index, in one transaction.
func (s *Store) Prune(ctx context.Context, recs []store.Pruned) error {
	if len(recs) == 0 {
		return nil
	}
	seqs, data := make([]int64, len(recs)), make([][]byte, len(recs))
	for i, r := range recs {
		seqs[i], data[i] = r.Seq, r.Data
	}
	err := s.with(ctx, func(c *pgx.Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, "UPDATE "+s.table("audit_records")+" AS r SET record = u.data FROM unnest($1::bigint[], $2::bytea[]) AS u(seq, data) WHERE r.log = $3 AND r.seq = u.seq", seqs, data, s.log)
			if err != nil {
				return err
			}
			if tag.RowsAffected() != int64(len(recs)) {
				return fmt.Errorf("%d of the %d records exist: %w", tag.RowsAffected(), len(recs), store.ErrNotFound)
			}
			_, err = tx.Exec(ctx, "DELETE FROM "+s.table("audit_subjects")+" WHERE log = $2 AND seq = ANY($1)", seqs, s.log)
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("prune audit records %d..%d: %w", recs[0].Seq, recs[len(recs)-1].Seq, err)
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
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, "SELECT seq, commitment FROM "+s.table("audit_subjects")+" WHERE log = $1 ORDER BY seq, commitment COLLATE \"C\"", s.log)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var seq int64
			var key string
			if err := rows.Scan(&seq, &key); err != nil {
				return err
			}
			if err := fn(seq, key); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	if err != nil {
		return fmt.Errorf("read the subject index: %w", err)
	}
	return nil
}
