// Package keystore keeps the gateway's identities — API keys (public ids, principals, roles and
// SHA-256 hashes, never the keys themselves) and operators (argon2id password hashes, TOTP
// secrets, sessions) — in an embedded SQLite database readable by its owner only, or in a
// PostgreSQL database that the instances of a deployment share.
package keystore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/journal"
	"github.com/mcpguard/mcpguard/internal/sqldb"
)

// Store implements authn.APIKeyStore. Every read goes to the database, so a revocation made by
// the CLI is seen by the gateway's very next request.
type Store struct {
	db   sqldb.Execer // the database, or the transaction of an act (Act)
	root *sqldb.DB    // the database
}

const schema = `CREATE TABLE IF NOT EXISTS api_keys (
	id         TEXT PRIMARY KEY,
	principal  TEXT NOT NULL,
	roles      TEXT NOT NULL,
	hash       BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	revoked_at INTEGER NOT NULL
)`

// Open opens (creating if needed) the identities database dsn: a SQLite file, created and
// kept readable by its owner only (it holds password hashes and TOTP secrets; SQLite gives its
// WAL and shared-memory files the same mode), or a PostgreSQL database that the instances of a
// deployment share (sqldb.Open).
func Open(ctx context.Context, dsn string) (*Store, error) {
	db, err := sqldb.Open(ctx, dsn, "identities")
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, "identities", migrations); err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db, root: db}, nil
}

// migrations are the identities database's schema versions (sqldb.Migrate).
var migrations = []sqldb.Step{
	// 1: every table. A database made before versions were kept has some of them already.
	func(ctx context.Context, tx *sqldb.Tx) error {
		if err := sqldb.Statements(schema)(ctx, tx); err != nil {
			return err
		}
		if err := journal.Prepare(ctx, tx); err != nil {
			return err
		}
		stmts := append(slices.Clone(operatorSchema), approvalSchema, blockSchema, loginSchema)
		return sqldb.Statements(stmts...)(ctx, tx)
	},
	// 2: sessions say whether their login proved two factors. A session stored before the
	// column existed reads as without MFA: its operator logs in again to approve.
	func(ctx context.Context, tx *sqldb.Tx) error {
		return addColumn(ctx, tx, "operator_sessions", "mfa", "INTEGER NOT NULL DEFAULT 0")
	},
}

// Close closes the database.
func (s *Store) Close() error { return s.root.Close() }

// Journal is the admin journal of the identities database, which the gateway drains into the
// audit log.
func (s *Store) Journal() *journal.Table { return journal.NewTable("identities", s.root) }

// Tx is one act's transaction over the identities database: the API key store and, when the
// act was given one, the operator store, both reading and writing through it.
type Tx struct {
	Keys      *Store
	Operators *OperatorStore // nil when Act was given none
}

// Act runs change in one transaction and writes e, the act's record, to the admin journal in
// the same transaction: the change and its record commit together or not at all. An error from
// change rolls everything back and writes no record (the caller records a refusal with Record).
// change may mark e refused and return nil: what it wrote (a login failure count) then commits
// with the refusal's record. ops, when not nil, is the operator store whose view Tx carries.
func (s *Store) Act(ctx context.Context, e *journal.Entry, ops *OperatorStore, change func(tx Tx) error) error {
	tx, err := s.root.Begin(ctx)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", e.Act, err)
	}
	defer tx.Rollback()
	t := Tx{Keys: &Store{db: tx, root: s.root}}
	if ops != nil {
		t.Operators = &OperatorStore{db: tx, root: s.root, seal: ops.seal}
	}
	if change != nil {
		if err := change(t); err != nil {
			return err
		}
	}
	if err := journal.Write(ctx, tx, e); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", e.Act, err)
	}
	return nil
}

// Record writes e, an act that changed nothing (a refusal), to the admin journal.
func (s *Store) Record(ctx context.Context, e *journal.Entry) error {
	return s.Act(ctx, e, nil, nil)
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnix(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// CreateAPIKey stores a new key record; an id that exists already is authn.ErrExists.
func (s *Store) CreateAPIKey(ctx context.Context, k authn.APIKey) error {
	roles, err := json.Marshal(k.Roles)
	if err != nil {
		return err
	}
	if _, err := s.APIKey(ctx, k.ID); err == nil {
		return authn.ErrExists
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO api_keys (id, principal, roles, hash, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.Principal, string(roles), k.Hash[:], unix(k.CreatedAt), unix(k.ExpiresAt), unix(k.RevokedAt))
	if err != nil {
		return fmt.Errorf("store API key %s: %w", k.ID, err)
	}
	return nil
}

func scanKey(row interface{ Scan(...any) error }) (authn.APIKey, error) {
	var k authn.APIKey
	var roles string
	var hash []byte
	var created, expires, revoked int64
	if err := row.Scan(&k.ID, &k.Principal, &roles, &hash, &created, &expires, &revoked); err != nil {
		return k, err
	}
	if err := json.Unmarshal([]byte(roles), &k.Roles); err != nil {
		return k, fmt.Errorf("API key %s: roles: %w", k.ID, err)
	}
	if len(hash) != len(k.Hash) {
		return k, fmt.Errorf("API key %s: stored hash has %d bytes", k.ID, len(hash))
	}
	copy(k.Hash[:], hash)
	k.CreatedAt, k.ExpiresAt, k.RevokedAt = fromUnix(created), fromUnix(expires), fromUnix(revoked)
	return k, nil
}

// APIKey reads one key record; authn.ErrNotFound when there is none.
func (s *Store) APIKey(ctx context.Context, id string) (authn.APIKey, error) {
	k, err := scanKey(s.db.QueryRowContext(ctx, `SELECT id, principal, roles, hash, created_at, expires_at, revoked_at FROM api_keys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return k, authn.ErrNotFound
	}
	return k, err
}

// ListAPIKeys returns every key record, oldest first.
func (s *Store) ListAPIKeys(ctx context.Context) ([]authn.APIKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, principal, roles, hash, created_at, expires_at, revoked_at FROM api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []authn.APIKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeAPIKey marks a key revoked at the given time; authn.ErrNotFound when there is none.
func (s *Store) RevokeAPIKey(ctx context.Context, id string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, unix(at), id)
	if err != nil {
		return fmt.Errorf("revoke API key %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := s.APIKey(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// CreateAPIKey creates an API key in the transaction, as `mcpguard keys create` and the console
// do, and names it as the target of e, the act's journal entry. now is the clock.
func (t Tx) CreateAPIKey(ctx context.Context, e *journal.Entry, now func() time.Time, principal string, roles []string, ttl time.Duration) (authn.Secret, authn.APIKey, error) {
	secret, rec, err := authn.NewAPIKeys(t.Keys, &authn.APIKeysOptions{Now: now}).Create(ctx, principal, roles, ttl)
	if err != nil {
		return secret, rec, err
	}
	e.Target = journal.Target{KeyID: rec.ID, Principal: rec.Principal, Roles: rec.Roles, Expires: "never"}
	if !rec.ExpiresAt.IsZero() {
		e.Target.Expires = rec.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return secret, rec, nil
}
