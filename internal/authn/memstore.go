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
	mu   sync.Mutex
	keys map[string]APIKey
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		keys: make(map[string]APIKey),
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
