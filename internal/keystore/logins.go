package keystore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mcpguard/mcpguard/internal/authn"
)

// LoginStates keeps the operators' OpenID Connect logins under way (authn.LoginStateStore) in
// the identity database, so that the provider's callback may reach any instance of a
// deployment, not only the one that started the login. A row holds the login's state, nonce and
// PKCE verifier for at most its time limit (10 minutes by default), and is deleted when taken.
type LoginStates struct {
	db *Store
}

const loginSchema = `CREATE TABLE IF NOT EXISTS oidc_logins (
	state      TEXT PRIMARY KEY,
	nonce      TEXT NOT NULL,
	verifier   TEXT NOT NULL,
	started_at INTEGER NOT NULL
)`

// LoginStates returns the store of OIDC logins under way over the identities database. It is
// closed with s.
func (s *Store) LoginStates(ctx context.Context) (*LoginStates, error) {
	return &LoginStates{db: s}, nil
}

// PutLoginState stores a login, in a transaction holding the write lock: the expired logins
// are deleted and the pending ones counted against max with no other instance in between.
func (l *LoginStates) PutLoginState(ctx context.Context, state string, p authn.PendingLogin, max int, expiredBefore time.Time) error {
	tx, err := l.db.root.Begin(ctx)
	if err != nil {
		return fmt.Errorf("store OIDC login: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM oidc_logins WHERE started_at <= ?`, unix(expiredBefore)); err != nil {
		return fmt.Errorf("store OIDC login: %w", err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM oidc_logins`).Scan(&n); err != nil {
		return fmt.Errorf("store OIDC login: %w", err)
	}
	if n >= max {
		return authn.ErrTooManyLogins
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO oidc_logins (state, nonce, verifier, started_at) VALUES (?, ?, ?, ?)`,
		state, p.Nonce, p.Verifier, unix(p.Started)); err != nil {
		return fmt.Errorf("store OIDC login: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store OIDC login: %w", err)
	}
	return nil
}

// TakeLoginState returns and deletes a login in one statement, so that of two callbacks with
// the same state, on any instances, one gets it.
func (l *LoginStates) TakeLoginState(ctx context.Context, state string) (authn.PendingLogin, error) {
	var p authn.PendingLogin
	var started int64
	err := l.db.root.QueryRowContext(ctx, `DELETE FROM oidc_logins WHERE state = ? RETURNING nonce, verifier, started_at`, state).Scan(&p.Nonce, &p.Verifier, &started)
	if errors.Is(err, sql.ErrNoRows) {
		return p, authn.ErrNotFound
	}
	if err != nil {
		return p, fmt.Errorf("take OIDC login: %w", err)
	}
	p.Started = fromUnix(started)
	return p, nil
}

var _ authn.LoginStateStore = (*LoginStates)(nil)
