package authn

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// SessionPrefix starts every operator session token.
const SessionPrefix = "mcps_"

// Session is an operator's login, stored by the SHA-256 of its token.
type Session struct {
	ID       [32]byte // SHA-256 of the token
	Operator string
	Created  time.Time
	LastSeen time.Time
	// MFA says the login proved more than one factor: password and TOTP, or an OpenID Connect
	// login whose amr shows it (AMRShowsMFA). A session without it may not approve held calls.
	MFA bool
}

// SessionStore persists operator sessions.
type SessionStore interface {
	CreateSession(ctx context.Context, s Session) error
	Session(ctx context.Context, id [32]byte) (Session, error) // ErrNotFound when absent
	TouchSession(ctx context.Context, id [32]byte, at time.Time) error
	DeleteSession(ctx context.Context, id [32]byte) error
	DeleteOperatorSessions(ctx context.Context, operator string) error
}

// SessionOptions bound a session's life.
type SessionOptions struct {
	Absolute time.Duration // from login, whatever the activity (default 8 h)
	Idle     time.Duration // without a request (default 30 min)
}

// Sessions opens and checks operator sessions. A session ends at its absolute limit, after the
// idle limit without use, on logout, or when its operator is disabled, reset or given a new
// password. LastSeen is written at most once a minute per session, so the idle limit holds to
// within a minute.
type Sessions struct {
	store    SessionStore
	ops      OperatorStore
	absolute time.Duration
	idle     time.Duration
	now      func() time.Time
	rand     io.Reader
}

const touchEvery = time.Minute

func newSessions(store SessionStore, ops OperatorStore, opts SessionOptions, now func() time.Time, rand io.Reader) *Sessions {
	return &Sessions{
		store: store, ops: ops, now: now, rand: rand,
		absolute: orDefault(opts.Absolute, 8*time.Hour),
		idle:     orDefault(opts.Idle, 30*time.Minute),
	}
}

// open starts a session of op; mfa says the login proved more than one factor.
func (s *Sessions) open(ctx context.Context, op Operator, mfa bool) (Secret, *Principal, error) {
	var raw [32]byte
	if _, err := io.ReadFull(s.rand, raw[:]); err != nil {
		return Secret{}, nil, fmt.Errorf("session token: %w", err)
	}
	token := SessionPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	now := s.now()
	sess := Session{ID: sha256.Sum256([]byte(token)), Operator: op.Name, Created: now, LastSeen: now, MFA: mfa}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return Secret{}, nil, fmt.Errorf("create session: %w", err)
	}
	return Secret{token}, s.principal(sess, op), nil
}

func (s *Sessions) principal(sess Session, op Operator) *Principal {
	return &Principal{Method: MethodOperator, Subject: op.Name, KeyID: fmt.Sprintf("%x", sess.ID[:4]),
		Roles: slices.Clone(op.Roles), Expires: sess.Created.Add(s.absolute), MFA: sess.MFA}
}

// Authenticate checks a session token and returns its operator's principal with the operator's
// current roles.
func (s *Sessions) Authenticate(ctx context.Context, token string) (*Principal, error) {
	if !strings.HasPrefix(token, SessionPrefix) || len(token) > 128 {
		return nil, rejectf(ReasonMalformed, "not a session token")
	}
	id := sha256.Sum256([]byte(token))
	sess, err := s.store.Session(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, rejectf(ReasonUnknownSession, "no session %x", id[:4])
	}
	if err != nil {
		return nil, reject(ReasonStore, err)
	}
	now := s.now()
	switch {
	case !now.Before(sess.Created.Add(s.absolute)):
		_ = s.store.DeleteSession(ctx, id)
		return nil, rejectf(ReasonSessionExpired, "session %x of %s passed its absolute limit", id[:4], sess.Operator)
	case !now.Before(sess.LastSeen.Add(s.idle)):
		_ = s.store.DeleteSession(ctx, id)
		return nil, rejectf(ReasonSessionExpired, "session %x of %s idle since %s", id[:4], sess.Operator, sess.LastSeen.UTC().Format(time.RFC3339))
	}
	op, err := s.ops.Operator(ctx, sess.Operator)
	if err != nil {
		return nil, reject(ReasonStore, err)
	}
	if op.Disabled {
		return nil, rejectf(ReasonDisabled, "operator %s is disabled", op.Name)
	}
	if now.Sub(sess.LastSeen) >= touchEvery {
		if err := s.store.TouchSession(ctx, id, now); err != nil {
			return nil, reject(ReasonStore, err)
		}
	}
	return s.principal(sess, op), nil
}

// Logout ends the session of token.
func (s *Sessions) Logout(ctx context.Context, token string) error {
	if err := s.store.DeleteSession(ctx, sha256.Sum256([]byte(token))); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("logout: %w", err)
	}
	return nil
}

func (s *Sessions) endAll(ctx context.Context, operator string) error {
	return s.store.DeleteOperatorSessions(ctx, operator)
}
