package authn

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
)

// MemoryStore keeps API keys, operators, TOTP steps and sessions in memory: for tests and for a
// single instance that needs no persistence. It implements APIKeyStore, OperatorStore and
// SessionStore.
type MemoryStore struct {
	mu        sync.Mutex
	keys      map[string]APIKey
	operators map[string]Operator
	totpSteps map[string]int64
	failures  map[string]LoginFailures
	sessions  map[[32]byte]Session
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		keys:      make(map[string]APIKey),
		operators: make(map[string]Operator),
		totpSteps: make(map[string]int64),
		failures:  make(map[string]LoginFailures),
		sessions:  make(map[[32]byte]Session),
	}
}

// CreateAPIKey stores k; its id must be new.
func (m *MemoryStore) CreateAPIKey(_ context.Context, k APIKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.keys[k.ID]; ok {
		return fmt.Errorf("API key %s already exists", k.ID)
	}
	k.Roles = slices.Clone(k.Roles)
	m.keys[k.ID] = k
	return nil
}

// APIKey returns the key with id.
func (m *MemoryStore) APIKey(_ context.Context, id string) (APIKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[id]
	if !ok {
		return APIKey{}, ErrNotFound
	}
	k.Roles = slices.Clone(k.Roles)
	return k, nil
}

// ListAPIKeys returns every key, oldest first.
func (m *MemoryStore) ListAPIKeys(context.Context) ([]APIKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]APIKey, 0, len(m.keys))
	for _, k := range m.keys {
		k.Roles = slices.Clone(k.Roles)
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// RevokeAPIKey marks the key revoked at at (the first revocation time is kept).
func (m *MemoryStore) RevokeAPIKey(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[id]
	if !ok {
		return ErrNotFound
	}
	if k.RevokedAt.IsZero() {
		k.RevokedAt = at
		m.keys[id] = k
	}
	return nil
}

// CreateOperator stores op; its name must be new.
func (m *MemoryStore) CreateOperator(_ context.Context, op Operator) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.operators[op.Name]; ok {
		return fmt.Errorf("operator %s: %w", op.Name, ErrExists)
	}
	op.Roles = slices.Clone(op.Roles)
	m.operators[op.Name] = op
	return nil
}

// Operator returns the operator called name.
func (m *MemoryStore) Operator(_ context.Context, name string) (Operator, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	op, ok := m.operators[name]
	if !ok {
		return Operator{}, ErrNotFound
	}
	op.Roles = slices.Clone(op.Roles)
	return op, nil
}

// UpdateOperator replaces the stored operator of the same name.
func (m *MemoryStore) UpdateOperator(_ context.Context, op Operator) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.operators[op.Name]; !ok {
		return ErrNotFound
	}
	op.Roles = slices.Clone(op.Roles)
	m.operators[op.Name] = op
	return nil
}

// ListOperators returns every operator, by name.
func (m *MemoryStore) ListOperators(context.Context) ([]Operator, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Operator, 0, len(m.operators))
	for _, op := range m.operators {
		op.Roles = slices.Clone(op.Roles)
		out = append(out, op)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ClaimTOTPStep accepts step only when it is later than every step the operator used before.
func (m *MemoryStore) ClaimTOTPStep(_ context.Context, name string, step int64) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if last, ok := m.totpSteps[name]; ok && step <= last {
		return false, nil
	}
	m.totpSteps[name] = step
	return true, nil
}

// RecordLoginFailure counts one failure.
func (m *MemoryStore) RecordLoginFailure(_ context.Context, name string, at time.Time) (LoginFailures, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.failures[name]
	f.Count++
	f.Last = at
	m.failures[name] = f
	return f, nil
}

// LoginFailures returns the failures since the last success.
func (m *MemoryStore) LoginFailures(_ context.Context, name string) (LoginFailures, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.failures[name], nil
}

// ResetLoginFailures forgets the operator's failures.
func (m *MemoryStore) ResetLoginFailures(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.failures, name)
	return nil
}

// CreateSession stores s.
func (m *MemoryStore) CreateSession(_ context.Context, s Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sessions[s.ID]; ok {
		return fmt.Errorf("session: %w", ErrExists)
	}
	m.sessions[s.ID] = s
	return nil
}

// Session returns the session with id.
func (m *MemoryStore) Session(_ context.Context, id [32]byte) (Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return Session{}, ErrNotFound
	}
	return s, nil
}

// TouchSession records use of the session at at.
func (m *MemoryStore) TouchSession(_ context.Context, id [32]byte, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return ErrNotFound
	}
	s.LastSeen = at
	m.sessions[id] = s
	return nil
}

// DeleteSession removes the session with id.
func (m *MemoryStore) DeleteSession(_ context.Context, id [32]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sessions, id)
	return nil
}

// DeleteOperatorSessions removes every session of operator.
func (m *MemoryStore) DeleteOperatorSessions(_ context.Context, operator string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, s := range m.sessions {
		if s.Operator == operator {
			delete(m.sessions, id)
		}
	}
	return nil
}

var (
	_ APIKeyStore   = (*MemoryStore)(nil)
	_ OperatorStore = (*MemoryStore)(nil)
	_ SessionStore  = (*MemoryStore)(nil)
)
