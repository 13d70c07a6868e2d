package authn

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// API key format: "mcpg_" + 16 hex digits of public id + "_" + 43 base64url characters of
// secret (256 random bits). The prefix lets secret scanners and the middleware recognise a key;
// the id finds the stored record without revealing anything about the secret.
const (
	APIKeyPrefix = "mcpg_"
	apiKeyIDLen  = 16
	apiKeySecLen = 43
	apiKeyLen    = len(APIKeyPrefix) + apiKeyIDLen + 1 + apiKeySecLen
)

// ErrNotFound is returned by stores for a record that does not exist.
var ErrNotFound = errors.New("not found")

// APIKey is the stored record of an API key: never the key itself, only its SHA-256.
type APIKey struct {
	ID        string    // public id, shown in lists and logs
	Principal string    // the subject requests made with the key act as
	Roles     []string  // roles granted to that subject
	Hash      [32]byte  // SHA-256 of the full key text
	CreatedAt time.Time //
	ExpiresAt time.Time // zero: never
	RevokedAt time.Time // zero: not revoked
}

// APIKeyStore persists API key records. Implementations must make RevokeAPIKey visible to the
// very next APIKey call on any instance (no read caching).
type APIKeyStore interface {
	CreateAPIKey(ctx context.Context, k APIKey) error
	APIKey(ctx context.Context, id string) (APIKey, error) // ErrNotFound when absent
	ListAPIKeys(ctx context.Context) ([]APIKey, error)
	RevokeAPIKey(ctx context.Context, id string, at time.Time) error // ErrNotFound when absent
}

// Secret is a credential shown to its owner once. It prints and logs as [REDACTED]; Reveal
// returns the text.
type Secret struct{ s string }

// Reveal returns the secret text.
func (s Secret) Reveal() string { return s.s }

// String hides the secret from fmt.
func (s Secret) String() string { return "[REDACTED]" }

// LogValue hides the secret from slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue("[REDACTED]") }

// APIKeysOptions configures APIKeys.
type APIKeysOptions struct {
	Now  func() time.Time // default time.Now
	Rand io.Reader        // default crypto/rand
}

// APIKeys issues and verifies API keys for agents without an identity provider.
//
// Only the SHA-256 of a key is stored. A slow password hash is unnecessary here: the secret is
// 256 random bits, so no dictionary or brute-force search of a leaked hash is feasible, and a
// fast hash keeps per-request verification in microseconds. The comparison is constant-time.
// Verification reads the store on every request, so a revocation takes effect on the next one.
type APIKeys struct {
	store APIKeyStore
	now   func() time.Time
	rand  io.Reader
}

// NewAPIKeys returns an APIKeys over store.
func NewAPIKeys(store APIKeyStore, opts *APIKeysOptions) *APIKeys {
	k := &APIKeys{store: store, now: time.Now, rand: rand.Reader}
	if opts != nil && opts.Now != nil {
		k.now = opts.Now
	}
	if opts != nil && opts.Rand != nil {
		k.rand = opts.Rand
	}
	return k
}

// Create issues a key for principal with roles, valid for ttl (0: no expiry). The returned
// Secret is the only copy of the key: show it once.
func (k *APIKeys) Create(ctx context.Context, principal string, roles []string, ttl time.Duration) (Secret, APIKey, error) {
	if strings.TrimSpace(principal) == "" {
		return Secret{}, APIKey{}, errors.New("create API key: a principal name is required")
	}
	if ttl < 0 {
		return Secret{}, APIKey{}, errors.New("create API key: expiry must be in the future")
	}
	var id [apiKeyIDLen / 2]byte
	var sec [32]byte
	if _, err := io.ReadFull(k.rand, id[:]); err != nil {
		return Secret{}, APIKey{}, fmt.Errorf("create API key: %w", err)
	}
	if _, err := io.ReadFull(k.rand, sec[:]); err != nil {
		return Secret{}, APIKey{}, fmt.Errorf("create API key: %w", err)
	}
	rec := APIKey{ID: hex.EncodeToString(id[:]), Principal: principal, Roles: slices.Clone(roles), CreatedAt: k.now()}
	text := APIKeyPrefix + rec.ID + "_" + base64.RawURLEncoding.EncodeToString(sec[:])
	rec.Hash = sha256.Sum256([]byte(text))
	if ttl > 0 {
		rec.ExpiresAt = rec.CreatedAt.Add(ttl)
	}
	if err := k.store.CreateAPIKey(ctx, rec); err != nil {
		return Secret{}, APIKey{}, fmt.Errorf("create API key: %w", err)
	}
	return Secret{text}, rec, nil
}

// IsAPIKey reports whether a bearer credential has the API key form (and should be verified by
// Verify rather than as a JWT).
func IsAPIKey(token string) bool { return strings.HasPrefix(token, APIKeyPrefix) }

// ParseAPIKey splits a key into its public id and checks its shape.
func ParseAPIKey(token string) (id string, err error) {
	if len(token) != apiKeyLen || !IsAPIKey(token) || token[len(APIKeyPrefix)+apiKeyIDLen] != '_' {
		return "", errors.New("not an API key of the form mcpg_<id>_<secret>")
	}
	id = token[len(APIKeyPrefix) : len(APIKeyPrefix)+apiKeyIDLen]
	if _, err := hex.DecodeString(id); err != nil || strings.ToLower(id) != id {
		return "", errors.New("API key id is not lower-case hex")
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(token[len(token)-apiKeySecLen:]); err != nil {
		return "", errors.New("API key secret is not base64url")
	}
	return id, nil
}

// Verify checks token and returns the principal it stands for. A refusal of a credential that
// has the key form names the key's id (Rejection.KeyID).
func (k *APIKeys) Verify(ctx context.Context, token string) (*Principal, error) {
	id, err := ParseAPIKey(token)
	if err != nil {
		return nil, reject(ReasonMalformed, err)
	}
	p, rej := k.verify(ctx, id, token)
	if rej != nil {
		rej.KeyID = id
		return nil, rej
	}
	return p, nil
}

func (k *APIKeys) verify(ctx context.Context, id, token string) (*Principal, *Rejection) {
	rec, err := k.store.APIKey(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, rejectf(ReasonUnknownAPIKey, "no API key %s", id)
	}
	if err != nil {
		return nil, reject(ReasonStore, fmt.Errorf("read API key %s: %w", id, err))
	}
	sum := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(sum[:], rec.Hash[:]) != 1 {
		return nil, rejectf(ReasonUnknownAPIKey, "API key %s: secret does not match", id)
	}
	now := k.now()
	if !rec.RevokedAt.IsZero() {
		return nil, rejectf(ReasonRevoked, "API key %s revoked at %s", id, rec.RevokedAt.UTC().Format(time.RFC3339))
	}
	if !rec.ExpiresAt.IsZero() && !now.Before(rec.ExpiresAt) {
		return nil, rejectf(ReasonExpired, "API key %s expired at %s", id, rec.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return &Principal{Method: MethodAPIKey, Subject: rec.Principal, KeyID: rec.ID, Roles: slices.Clone(rec.Roles), Expires: rec.ExpiresAt}, nil
}

// Revoke revokes the key with the public id; the next request with it is rejected.
func (k *APIKeys) Revoke(ctx context.Context, id string) error {
	if err := k.store.RevokeAPIKey(ctx, id, k.now()); err != nil {
		return fmt.Errorf("revoke API key %s: %w", id, err)
	}
	return nil
}

// List returns every key record (hashes included; callers show ids only).
func (k *APIKeys) List(ctx context.Context) ([]APIKey, error) {
	keys, err := k.store.ListAPIKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	return keys, nil
}
