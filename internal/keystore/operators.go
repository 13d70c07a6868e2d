package keystore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mcpguard/mcpguard/internal/authn"

	"github.com/mcpguard/mcpguard/internal/sqldb"
)

// OperatorStore keeps operator accounts, their last used TOTP step, their login failures and
// their sessions in the same SQLite database as the API keys. It implements
// authn.OperatorStore and authn.SessionStore. The TOTP step claim and the failure count are
// single SQL statements, so they stay atomic across the gateway and the CLI, and across
// several gateway processes sharing the file.
//
// With a key (OperatorOptions.SecretKey) the TOTP secrets are encrypted at rest; see seal.go.
type OperatorStore struct {
	db   sqldb.Execer // the database, or the transaction of an act (Store.Act)
	root *sqldb.DB
	seal *sealer
}

// OperatorOptions configures the operator store.
type OperatorOptions struct {
	// SecretKey, SecretKeySize bytes, encrypts the operators' TOTP secrets at rest
	// (identity_encryption_key). Nil stores them in clear, protected only by the file's mode.
	SecretKey []byte
}

var operatorSchema = []string{
	`CREATE TABLE IF NOT EXISTS operators (
	name          TEXT PRIMARY KEY,
	roles         TEXT NOT NULL,
	password_hash TEXT NOT NULL,
	totp_secret   TEXT NOT NULL,
	pending_totp  TEXT NOT NULL,
	disabled      INTEGER NOT NULL,
	created_at    INTEGER NOT NULL
)`,
	`CREATE TABLE IF NOT EXISTS operator_totp_steps (
	name TEXT PRIMARY KEY,
	step INTEGER NOT NULL
)`,
	`CREATE TABLE IF NOT EXISTS operator_login_failures (
	name  TEXT PRIMARY KEY,
	count INTEGER NOT NULL,
	last  INTEGER NOT NULL
)`,
	`CREATE TABLE IF NOT EXISTS operator_sessions (
	id         BLOB PRIMARY KEY,
	operator   TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL,
	mfa        INTEGER NOT NULL DEFAULT 0
)`,
	`CREATE INDEX IF NOT EXISTS operator_sessions_by_operator ON operator_sessions (operator)`,
}

// Operators returns the operator and session store over the identities database. It is closed
// with s.
//
// With a key, secrets stored in clear (before the key was configured) are encrypted now, in one
// transaction, and every encrypted secret is checked to open with the key: a wrong key is an
// error here, at startup, rather than at an operator's next login. Without a key, a database
// that holds encrypted secrets is refused.
func (s *Store) Operators(ctx context.Context, opts *OperatorOptions) (*OperatorStore, error) {
	if opts == nil {
		opts = &OperatorOptions{}
	}
	seal, err := newSealer(opts.SecretKey)
	if err != nil {
		return nil, err
	}
	o := &OperatorStore{db: s.root, root: s.root, seal: seal}
	if err := o.sealAll(ctx); err != nil {
		return nil, err
	}
	return o, nil
}

// sealAll checks that every stored secret opens with the store's key (or that there is none to
// open without one) and encrypts those still in clear when there is a key.
func (o *OperatorStore) sealAll(ctx context.Context) error {
	tx, err := o.root.Begin(ctx)
	if err != nil {
		return fmt.Errorf("check TOTP secrets: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT name, totp_secret, pending_totp FROM operators ORDER BY name`)
	if err != nil {
		return fmt.Errorf("check TOTP secrets: %w", err)
	}
	type row struct{ name, active, pending string }
	var reseal []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.name, &r.active, &r.pending); err != nil {
			rows.Close()
			return fmt.Errorf("check TOTP secrets: %w", err)
		}
		changed := false
		for _, c := range []struct {
			column string
			value  *string
		}{{"totp_secret", &r.active}, {"pending_totp", &r.pending}} {
			clear, err := o.seal.open(r.name, c.column, *c.value)
			if err != nil {
				rows.Close()
				return err
			}
			if o.seal.aead != nil && clear != "" && !sealed(*c.value) {
				if *c.value, err = o.seal.seal(r.name, c.column, clear); err != nil {
					rows.Close()
					return err
				}
				changed = true
			}
		}
		if changed {
			reseal = append(reseal, r)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check TOTP secrets: %w", err)
	}
	for _, r := range reseal {
		if _, err := tx.ExecContext(ctx, `UPDATE operators SET totp_secret = ?, pending_totp = ? WHERE name = ?`, r.active, r.pending, r.name); err != nil {
			return fmt.Errorf("encrypt TOTP secret of %s: %w", r.name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("encrypt TOTP secrets: %w", err)
	}
	return nil
}

// sealSecrets returns op's TOTP secrets in their stored form.
func (o *OperatorStore) sealSecrets(op authn.Operator) (active, pending string, err error) {
	if active, err = o.seal.seal(op.Name, "totp_secret", op.TOTPSecret); err != nil {
		return "", "", err
	}
	if pending, err = o.seal.seal(op.Name, "pending_totp", op.PendingTOTP); err != nil {
		return "", "", err
	}
	return active, pending, nil
}

// CreateOperator stores a new operator; a name that exists already is authn.ErrExists.
func (o *OperatorStore) CreateOperator(ctx context.Context, op authn.Operator) error {
	roles, err := json.Marshal(nonNil(op.Roles))
	if err != nil {
		return err
	}
	active, pending, err := o.sealSecrets(op)
	if err != nil {
		return err
	}
	res, err := o.db.ExecContext(ctx, `INSERT INTO operators (name, roles, password_hash, totp_secret, pending_totp, disabled, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
		op.Name, string(roles), op.PasswordHash, active, pending, boolInt(op.Disabled), unix(op.CreatedAt))
	if err != nil {
		return fmt.Errorf("store operator %s: %w", op.Name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store operator %s: %w", op.Name, err)
	} else if n == 0 {
		return fmt.Errorf("operator %s: %w", op.Name, authn.ErrExists)
	}
	return nil
}

const operatorColumns = `name, roles, password_hash, totp_secret, pending_totp, disabled, created_at`

func (o *OperatorStore) scanOperator(row interface{ Scan(...any) error }) (authn.Operator, error) {
	var op authn.Operator
	var roles string
	var disabled, created int64
	if err := row.Scan(&op.Name, &roles, &op.PasswordHash, &op.TOTPSecret, &op.PendingTOTP, &disabled, &created); err != nil {
		return op, err
	}
	var err error
	if op.TOTPSecret, err = o.seal.open(op.Name, "totp_secret", op.TOTPSecret); err != nil {
		return op, err
	}
	if op.PendingTOTP, err = o.seal.open(op.Name, "pending_totp", op.PendingTOTP); err != nil {
		return op, err
	}
	if err := json.Unmarshal([]byte(roles), &op.Roles); err != nil {
		return op, fmt.Errorf("operator %s: roles: %w", op.Name, err)
	}
	op.Disabled = disabled != 0
	op.CreatedAt = fromUnix(created)
	return op, nil
}

// Operator reads one operator; authn.ErrNotFound when there is none.
func (o *OperatorStore) Operator(ctx context.Context, name string) (authn.Operator, error) {
	op, err := o.scanOperator(o.db.QueryRowContext(ctx, `SELECT `+operatorColumns+` FROM operators WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return op, authn.ErrNotFound
	}
	if err != nil {
		return op, fmt.Errorf("read operator %s: %w", name, err)
	}
	return op, nil
}

// UpdateOperator replaces the stored operator of the same name; authn.ErrNotFound when absent.
// Its creation time is kept.
func (o *OperatorStore) UpdateOperator(ctx context.Context, op authn.Operator) error {
	roles, err := json.Marshal(nonNil(op.Roles))
	if err != nil {
		return err
	}
	active, pending, err := o.sealSecrets(op)
	if err != nil {
		return err
	}
	res, err := o.db.ExecContext(ctx, `UPDATE operators SET roles = ?, password_hash = ?, totp_secret = ?, pending_totp = ?, disabled = ? WHERE name = ?`,
		string(roles), op.PasswordHash, active, pending, boolInt(op.Disabled), op.Name)
	if err != nil {
		return fmt.Errorf("update operator %s: %w", op.Name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("update operator %s: %w", op.Name, err)
	} else if n == 0 {
		return authn.ErrNotFound
	}
	return nil
}

// ListOperators returns every operator, ordered by name.
func (o *OperatorStore) ListOperators(ctx context.Context) ([]authn.Operator, error) {
	rows, err := o.db.QueryContext(ctx, `SELECT `+operatorColumns+` FROM operators ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list operators: %w", err)
	}
	defer rows.Close()
	var out []authn.Operator
	for rows.Next() {
		op, err := o.scanOperator(rows)
		if err != nil {
			return nil, fmt.Errorf("list operators: %w", err)
		}
		out = append(out, op)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list operators: %w", err)
	}
	return out, nil
}

// ClaimTOTPStep records step as the operator's last used TOTP step when it is later than the
// one stored, in one statement: of concurrent claims of the same step exactly one succeeds.
func (o *OperatorStore) ClaimTOTPStep(ctx context.Context, name string, step int64) (bool, error) {
	res, err := o.db.ExecContext(ctx, `INSERT INTO operator_totp_steps (name, step) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET step = excluded.step WHERE excluded.step > operator_totp_steps.step`, name, step)
	if err != nil {
		return false, fmt.Errorf("claim TOTP step for %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("claim TOTP step for %s: %w", name, err)
	}
	return n == 1, nil
}

// RecordLoginFailure adds one failure at at, in one statement, and returns the new count.
func (o *OperatorStore) RecordLoginFailure(ctx context.Context, name string, at time.Time) (authn.LoginFailures, error) {
	var count, last int64
	err := o.db.QueryRowContext(ctx, `INSERT INTO operator_login_failures (name, count, last) VALUES (?, 1, ?)
		ON CONFLICT (name) DO UPDATE SET count = operator_login_failures.count + 1, last = excluded.last
		RETURNING count, last`, name, unix(at)).Scan(&count, &last)
	if err != nil {
		return authn.LoginFailures{}, fmt.Errorf("record login failure for %s: %w", name, err)
	}
	return authn.LoginFailures{Count: int(count), Last: fromUnix(last)}, nil
}

// LoginFailures returns the operator's failures since the last successful login.
func (o *OperatorStore) LoginFailures(ctx context.Context, name string) (authn.LoginFailures, error) {
	var count, last int64
	err := o.db.QueryRowContext(ctx, `SELECT count, last FROM operator_login_failures WHERE name = ?`, name).Scan(&count, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return authn.LoginFailures{}, nil
	}
	if err != nil {
		return authn.LoginFailures{}, fmt.Errorf("read login failures for %s: %w", name, err)
	}
	return authn.LoginFailures{Count: int(count), Last: fromUnix(last)}, nil
}

// ResetLoginFailures forgets the operator's failures.
func (o *OperatorStore) ResetLoginFailures(ctx context.Context, name string) error {
	if _, err := o.db.ExecContext(ctx, `DELETE FROM operator_login_failures WHERE name = ?`, name); err != nil {
		return fmt.Errorf("reset login failures for %s: %w", name, err)
	}
	return nil
}

// CreateSession stores a new session; an id that exists already is authn.ErrExists.
func (o *OperatorStore) CreateSession(ctx context.Context, s authn.Session) error {
	res, err := o.db.ExecContext(ctx, `INSERT INTO operator_sessions (id, operator, created_at, last_seen, mfa) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`, s.ID[:], s.Operator, unix(s.Created), unix(s.LastSeen), boolInt(s.MFA))
	if err != nil {
		return fmt.Errorf("store session of %s: %w", s.Operator, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store session of %s: %w", s.Operator, err)
	} else if n == 0 {
		return fmt.Errorf("session: %w", authn.ErrExists)
	}
	return nil
}

// Session reads one session; authn.ErrNotFound when there is none.
func (o *OperatorStore) Session(ctx context.Context, id [32]byte) (authn.Session, error) {
	s := authn.Session{ID: id}
	var created, seen, mfa int64
	err := o.db.QueryRowContext(ctx, `SELECT operator, created_at, last_seen, mfa FROM operator_sessions WHERE id = ?`, id[:]).Scan(&s.Operator, &created, &seen, &mfa)
	if errors.Is(err, sql.ErrNoRows) {
		return s, authn.ErrNotFound
	}
	if err != nil {
		return s, fmt.Errorf("read session %x: %w", id[:4], err)
	}
	s.Created, s.LastSeen, s.MFA = fromUnix(created), fromUnix(seen), mfa != 0
	return s, nil
}

// TouchSession records use of the session at at; authn.ErrNotFound when it has ended.
func (o *OperatorStore) TouchSession(ctx context.Context, id [32]byte, at time.Time) error {
	res, err := o.db.ExecContext(ctx, `UPDATE operator_sessions SET last_seen = ? WHERE id = ?`, unix(at), id[:])
	if err != nil {
		return fmt.Errorf("touch session %x: %w", id[:4], err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("touch session %x: %w", id[:4], err)
	} else if n == 0 {
		return authn.ErrNotFound
	}
	return nil
}

// DeleteSession removes one session (absent is not an error).
func (o *OperatorStore) DeleteSession(ctx context.Context, id [32]byte) error {
	if _, err := o.db.ExecContext(ctx, `DELETE FROM operator_sessions WHERE id = ?`, id[:]); err != nil {
		return fmt.Errorf("delete session %x: %w", id[:4], err)
	}
	return nil
}

// DeleteOperatorSessions removes every session of operator.
func (o *OperatorStore) DeleteOperatorSessions(ctx context.Context, operator string) error {
	if _, err := o.db.ExecContext(ctx, `DELETE FROM operator_sessions WHERE operator = ?`, operator); err != nil {
		return fmt.Errorf("end sessions of %s: %w", operator, err)
	}
	return nil
}

// addColumn adds a column that a database made by an earlier version lacks.
func addColumn(ctx context.Context, tx *sqldb.Tx, table, column, decl string) error {
	has, err := tx.HasColumn(ctx, table, column)
	if err != nil {
		return fmt.Errorf("read the columns of %s: %w", table, err)
	}
	if has {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `ALTER TABLE `+table+` ADD COLUMN `+column+` `+decl); err != nil {
		return fmt.Errorf("add column %s.%s: %w", table, column, err)
	}
	return nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func nonNil(s []string) []string {
	out := make([]string, 0, len(s))
	for _, r := range s {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	return out
}

var (
	_ authn.OperatorStore = (*OperatorStore)(nil)
	_ authn.SessionStore  = (*OperatorStore)(nil)
)
