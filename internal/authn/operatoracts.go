package authn

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// WithStores returns the operator service over other stores — typically one transaction's view
// of the same database, so that an act (a login, an enrolment) and its audit journal entry
// commit together — with the same hasher, limits, clock and randomness.
func (o *Operators) WithStores(store OperatorStore, sessions SessionStore) *Operators {
	c := *o
	c.store = store
	c.sessions = newSessions(sessions, store, SessionOptions{Absolute: o.sessions.absolute, Idle: o.sessions.idle}, o.now, o.rand)
	return &c
}

// LockedUntil is when the operator's account opens again after too many failed logins; zero
// when it is not locked.
func (o *Operators) LockedUntil(ctx context.Context, name string) (time.Time, error) {
	f, err := o.store.LoginFailures(ctx, name)
	if err != nil {
		return time.Time{}, err
	}
	if until := o.lockedUntil(f); o.now().Before(until) {
		return until, nil
	}
	return time.Time{}, nil
}

// CheckPassword authenticates an operator by password alone, under the same lockout as Login: a
// wrong password counts as a failed login. It is for the one act an operator without TOTP may
// do, enrolling it; it opens no session. It returns the operator's roles; every refusal is a
// *Rejection.
func (o *Operators) CheckPassword(ctx context.Context, name, password string) ([]string, error) {
	op, err := o.store.Operator(ctx, name)
	if errors.Is(err, ErrNotFound) {
		_, _, _ = o.hasher.Verify(ctx, o.dummyHash, password)
		return nil, rejectf(ReasonBadPassword, "no operator %q", truncate(name))
	}
	if err != nil {
		return nil, reject(ReasonStore, err)
	}
	failures, err := o.store.LoginFailures(ctx, name)
	if err != nil {
		return nil, reject(ReasonStore, err)
	}
	now := o.now()
	if until := o.lockedUntil(failures); now.Before(until) {
		return nil, rejectf(ReasonLocked, "operator %s locked until %s after %d failures", name, until.UTC().Format(time.RFC3339), failures.Count)
	}
	ok, _, err := o.hasher.Verify(ctx, op.PasswordHash, password)
	if err != nil {
		return nil, reject(ReasonStore, fmt.Errorf("operator %s: %w", name, err))
	}
	if !ok {
		return nil, o.fail(ctx, name, now, rejectf(ReasonBadPassword, "wrong password for operator %s", name))
	}
	if op.Disabled {
		return nil, rejectf(ReasonDisabled, "operator %s is disabled", name)
	}
	return slices.Clone(op.Roles), nil
}

// HasOperators reports whether any operator account exists: until one does, nobody can be
// authenticated, and the first administrative acts are a bootstrap.
func (o *Operators) HasOperators(ctx context.Context) (bool, error) {
	ops, err := o.store.ListOperators(ctx)
	if err != nil {
		return false, fmt.Errorf("list operators: %w", err)
	}
	return len(ops) > 0, nil
}
