package authn

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
)

// Bounds on what the gateway accepts from a JWKS endpoint.
const (
	maxJWKSBytes    = 1 << 20 // a JWKS document larger than this is refused
	maxJWKSKeys     = 100     // keys beyond this are ignored
	minRSABits      = 2048
	maxRSAExponent  = 1<<31 - 1
	defaultFetchTTL = 10 * time.Second
)

// publicKey is one verification key from a JWKS.
type publicKey struct {
	kid string
	alg string // the JWK's alg, or "" when it does not restrict one
	key crypto.PublicKey
}

// usableWith reports whether k can verify a signature made with the JWS algorithm alg.
func (k publicKey) usableWith(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch key := k.key.(type) {
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return true
		}
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return key.Curve == elliptic.P256()
		case "ES384":
			return key.Curve == elliptic.P384()
		case "ES512":
			return key.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA" || alg == "Ed25519"
	}
	return false
}

// jwk is the wire form of one key; only the members a verification key needs are read. x5c,
// x5u and every other member are ignored: keys come from the JWKS itself, never from a URL or
// certificate chain it names.
type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
	D   string `json:"d"`
}

// parseJWKS decodes a JWK Set strictly (duplicate keys refused) and returns its signature keys.
// Keys of unknown types, encryption keys and weak keys are skipped; a private key is an error,
// because publishing one means the issuer is compromised.
func parseJWKS(data []byte) ([]publicKey, error) {
	if len(data) > maxJWKSBytes {
		return nil, fmt.Errorf("JWKS is %d bytes, over the %d-byte limit", len(data), maxJWKSBytes)
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("decode JWKS: %w", err)
	}
	if set.Keys == nil {
		return nil, errors.New(`decode JWKS: no "keys" member`)
	}
	var keys []publicKey
	var errs []error
	for i, k := range set.Keys {
		if len(keys) == maxJWKSKeys {
			break
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if k.D != "" {
			return nil, fmt.Errorf("JWKS key %d (kid %q) contains private key material", i, k.Kid)
		}
		pub, err := k.publicKey()
		if err != nil {
			errs = append(errs, fmt.Errorf("JWKS key %d (kid %q): %w", i, k.Kid, err))
			continue
		}
		if pub == nil {
			continue // a key type this gateway does not verify with
		}
		keys = append(keys, publicKey{kid: k.Kid, alg: k.Alg, key: pub})
	}
	if len(keys) == 0 {
		errs = append(errs, errors.New("JWKS has no usable signature key"))
		return nil, errors.Join(errs...)
	}
	return keys, nil
}

func (k jwk) publicKey() (crypto.PublicKey, error) {
	switch k.Kty {
	case "RSA":
		n, err := b64Int(k.N, "n")
		if err != nil {
			return nil, err
		}
		e, err := b64Int(k.E, "e")
		if err != nil {
			return nil, err
		}
		if n.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA modulus is %d bits, under %d", n.BitLen(), minRSABits)
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > maxRSAExponent || e.Bit(0) == 0 {
			return nil, errors.New("RSA exponent out of range")
		}
		return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
	case "EC":
		var curve elliptic.Curve
		switch k.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, fmt.Errorf("unsupported EC curve %q", truncate(k.Crv))
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err := b64Fixed(k.X, "x", size)
		if err != nil {
			return nil, err
		}
		y, err := b64Fixed(k.Y, "y", size)
		if err != nil {
			return nil, err
		}
		point := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return nil, fmt.Errorf("EC point: %w", err)
		}
		return pub, nil
	case "OKP":
		if k.Crv != "Ed25519" {
			return nil, nil
		}
		x, err := b64Fixed(k.X, "x", ed25519.PublicKeySize)
		if err != nil {
			return nil, err
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, nil
}

func b64Int(s, name string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("member %q is not base64url", name)
	}
	return new(big.Int).SetBytes(b), nil
}

func b64Fixed(s, name string, size int) ([]byte, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("member %q is not base64url", name)
	}
	if len(b) != size {
		return nil, fmt.Errorf("member %q is %d bytes, want %d", name, len(b), size)
	}
	return b, nil
}

// keySet holds the issuer's verification keys: fetched on first use, refreshed in the background
// after refreshEvery, used while fetches fail until maxAge, and refetched at most once per
// minRefetch when a token names a kid the set does not hold. Concurrent fetches share one
// request; no caller ever waits for a rate limiter.
type keySet struct {
	locate       func(ctx context.Context) (string, error) // the JWKS URL (discovery or configured)
	client       *http.Client
	now          func() time.Time
	logger       *slog.Logger
	refreshEvery time.Duration
	maxAge       time.Duration
	minRefetch   time.Duration
	fetchTimeout time.Duration

	mu          sync.Mutex
	keys        []publicKey
	fetched     time.Time // last successful fetch
	lastAttempt time.Time
	inflight    *fetchCall
}

type fetchCall struct {
	done chan struct{}
	err  error
}

// key returns the key that verifies a token with kid and alg.
func (s *keySet) key(ctx context.Context, kid, alg string) (crypto.PublicKey, error) {
	s.mu.Lock()
	now := s.now()
	fresh := !s.fetched.IsZero() && now.Sub(s.fetched) < s.maxAge
	if fresh && now.Sub(s.fetched) >= s.refreshEvery && s.mayAttempt(now) {
		s.startFetch(ctx) // in the background: current keys stay in use meanwhile
	}
	keys := s.keys
	s.mu.Unlock()

	if !fresh {
		if err := s.fetch(ctx); err != nil {
			return nil, reject(ReasonKeysUnavailable, err)
		}
		s.mu.Lock()
		keys = s.keys
		s.mu.Unlock()
	}
	if k, ok, err := pick(keys, kid, alg); ok || err != nil {
		return k, err
	}
	// Unknown kid: the issuer may have rotated. Refetch at most once per minRefetch.
	s.mu.Lock()
	allowed := s.mayAttempt(s.now()) || s.inflight != nil
	s.mu.Unlock()
	if !allowed {
		return nil, rejectf(ReasonUnknownKey, "no key with kid %q (refetch rate-limited)", truncate(kid))
	}
	if err := s.fetch(ctx); err != nil {
		return nil, rejectf(ReasonUnknownKey, "no key with kid %q; refetch failed: %w", truncate(kid), err)
	}
	s.mu.Lock()
	keys = s.keys
	s.mu.Unlock()
	if k, ok, err := pick(keys, kid, alg); ok || err != nil {
		return k, err
	}
	return nil, rejectf(ReasonUnknownKey, "no key with kid %q after refetch", truncate(kid))
}

// pick finds the key for kid and alg. A token without kid is accepted only when exactly one key
// fits the algorithm.
func pick(keys []publicKey, kid, alg string) (crypto.PublicKey, bool, error) {
	var found []publicKey
	for _, k := range keys {
		if (kid == "" || k.kid == kid) && k.usableWith(alg) {
			found = append(found, k)
		}
	}
	switch {
	case len(found) == 1:
		return found[0].key, true, nil
	case len(found) > 1 && kid == "":
		return nil, false, reject(ReasonUnknownKey, errors.New("token has no kid and several keys fit its algorithm"))
	case len(found) > 1:
		return found[0].key, true, nil
	}
	return nil, false, nil
}

// mayAttempt reports whether a fetch may start now. Call with mu held.
func (s *keySet) mayAttempt(now time.Time) bool {
	return s.inflight == nil && (s.lastAttempt.IsZero() || now.Sub(s.lastAttempt) >= s.minRefetch)
}

// startFetch starts a fetch unless one is running, and returns it. Call with mu held.
func (s *keySet) startFetch(ctx context.Context) *fetchCall {
	if s.inflight != nil {
		return s.inflight
	}
	c := &fetchCall{done: make(chan struct{})}
	s.inflight = c
	s.lastAttempt = s.now()
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.fetchTimeout)
	go func() {
		defer cancel()
		keys, err := s.download(fctx)
		s.mu.Lock()
		if err == nil {
			s.keys, s.fetched = keys, s.now()
		} else {
			s.logger.Warn("JWKS fetch failed; keeping the cached keys", "error", err, "cached_keys", len(s.keys))
		}
		c.err = err
		s.inflight = nil
		s.mu.Unlock()
		close(c.done)
	}()
	return c
}

// fetch joins the running fetch or starts one (respecting minRefetch for failures), and waits.
func (s *keySet) fetch(ctx context.Context) error {
	s.mu.Lock()
	c := s.inflight
	if c == nil {
		if !s.mayAttempt(s.now()) {
			s.mu.Unlock()
			return errors.New("JWKS fetch rate-limited after a recent attempt")
		}
		c = s.startFetch(ctx)
	}
	s.mu.Unlock()
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *keySet) download(ctx context.Context) ([]publicKey, error) {
	u, err := s.locate(ctx)
	if err != nil {
		return nil, err
	}
	data, err := getJSON(ctx, s.client, u, maxJWKSBytes)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	keys, err := parseJWKS(data)
	if err != nil {
		return nil, fmt.Errorf("JWKS from %s: %w", u, err)
	}
	return keys, nil
}

// getJSON GETs u and returns at most limit bytes of a 200 response. Redirects are not followed.
func getJSON(ctx context.Context, client *http.Client, u string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("GET %s: response over %d bytes", u, limit)
	}
	return data, nil
}

// truncate shortens attacker-controlled text before it reaches a log line.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
