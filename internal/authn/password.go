package authn

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the argon2id cost parameters (RFC 9106).
type Argon2Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultArgon2Params is RFC 9106's second recommended option (64 MiB, 3 passes, 4 lanes).
var DefaultArgon2Params = Argon2Params{Memory: 64 << 10, Time: 3, Threads: 4, SaltLen: 16, KeyLen: 32}

// Bounds on stored hashes, so a tampered record cannot make verification exhaust the machine.
const (
	maxArgonMemory     = 1 << 20 // 1 GiB in KiB
	maxArgonTime       = 64
	minPasswordRunes   = 12
	maxPasswordBytes   = 1024
	defaultMaxHashing  = 2
	phcArgon2idVersion = argon2.Version
)

// PasswordHasherOptions configures a PasswordHasher.
type PasswordHasherOptions struct {
	Params        Argon2Params // default DefaultArgon2Params
	MaxConcurrent int          // hashes computed at once (default 2); others wait their turn
	Rand          io.Reader    // salt source (default crypto/rand)
}

// PasswordHasher hashes and verifies operator passwords with argon2id. At most MaxConcurrent
// hashes run at once, which bounds the memory a burst of logins can take to
// MaxConcurrent × Params.Memory.
type PasswordHasher struct {
	params Argon2Params
	sem    chan struct{}
	rand   io.Reader
}

// NewPasswordHasher returns a hasher.
func NewPasswordHasher(opts *PasswordHasherOptions) *PasswordHasher {
	if opts == nil {
		opts = &PasswordHasherOptions{}
	}
	h := &PasswordHasher{params: opts.Params, rand: opts.Rand}
	if h.params == (Argon2Params{}) {
		h.params = DefaultArgon2Params
	}
	if h.rand == nil {
		h.rand = rand.Reader
	}
	n := opts.MaxConcurrent
	if n <= 0 {
		n = defaultMaxHashing
	}
	h.sem = make(chan struct{}, n)
	return h
}

// CheckPasswordPolicy reports why password is unacceptable for a new operator, or nil.
func CheckPasswordPolicy(password string) error {
	switch {
	case !utf8.ValidString(password):
		return errors.New("password is not valid UTF-8")
	case len(password) > maxPasswordBytes:
		return fmt.Errorf("password is longer than %d bytes", maxPasswordBytes)
	case utf8.RuneCountInString(password) < minPasswordRunes:
		return fmt.Errorf("password must have at least %d characters", minPasswordRunes)
	}
	return nil
}

// Hash returns the PHC string of password: $argon2id$v=19$m=…,t=…,p=…$salt$hash.
func (h *PasswordHasher) Hash(ctx context.Context, password string) (string, error) {
	if err := CheckPasswordPolicy(password); err != nil {
		return "", err
	}
	salt := make([]byte, h.params.SaltLen)
	if _, err := io.ReadFull(h.rand, salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	key, err := h.derive(ctx, password, salt, h.params)
	if err != nil {
		return "", err
	}
	p := h.params
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", phcArgon2idVersion, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// Verify reports whether password matches the PHC string encoded, in constant time, and whether
// the hash should be recomputed with the current parameters.
func (h *PasswordHasher) Verify(ctx context.Context, encoded, password string) (ok, rehash bool, err error) {
	p, salt, want, err := parsePHC(encoded)
	if err != nil {
		return false, false, err
	}
	if len(password) > maxPasswordBytes {
		password = password[:maxPasswordBytes] // bounded work; such a password never matched
	}
	got, err := h.derive(ctx, password, salt, p)
	if err != nil {
		return false, false, err
	}
	ok = subtle.ConstantTimeCompare(got, want) == 1
	cur := h.params
	rehash = p.Memory != cur.Memory || p.Time != cur.Time || p.Threads != cur.Threads || p.KeyLen != cur.KeyLen
	return ok, rehash, nil
}

// derive runs argon2id once a hashing slot is free.
func (h *PasswordHasher) derive(ctx context.Context, password string, salt []byte, p Argon2Params) ([]byte, error) {
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting to hash a password: %w", ctx.Err())
	}
	defer func() { <-h.sem }()
	return argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen), nil
}

// parsePHC decodes an argon2id PHC string, refusing parameters outside sane bounds.
func parsePHC(s string) (Argon2Params, []byte, []byte, error) {
	var p Argon2Params
	fields := strings.Split(s, "$")
	if len(fields) != 6 || fields[0] != "" || fields[1] != "argon2id" {
		return p, nil, nil, errors.New("password hash is not an argon2id PHC string")
	}
	if fields[2] != "v="+strconv.Itoa(phcArgon2idVersion) {
		return p, nil, nil, fmt.Errorf("password hash has unsupported version %q", truncate(fields[2]))
	}
	var seen [3]bool
	for kv := range strings.SplitSeq(fields[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return p, nil, nil, fmt.Errorf("password hash parameter %q is not a number", truncate(k))
		}
		switch {
		case k == "m" && !seen[0]:
			p.Memory, seen[0] = uint32(n), true
		case k == "t" && !seen[1]:
			p.Time, seen[1] = uint32(n), true
		case k == "p" && !seen[2]:
			if n > 255 {
				return p, nil, nil, errors.New("password hash parallelism over 255")
			}
			p.Threads, seen[2] = uint8(n), true
		default:
			return p, nil, nil, fmt.Errorf("password hash has an unknown or repeated parameter %q", truncate(k))
		}
	}
	switch {
	case !seen[0] || !seen[1] || !seen[2]:
		return p, nil, nil, errors.New("password hash lacks m, t or p")
	case p.Threads == 0 || p.Time == 0 || p.Time > maxArgonTime:
		return p, nil, nil, errors.New("password hash time or parallelism out of range")
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxArgonMemory:
		return p, nil, nil, errors.New("password hash memory out of range")
	}
	salt, err := base64.RawStdEncoding.Strict().DecodeString(fields[4])
	if err != nil || len(salt) < 8 || len(salt) > 64 {
		return p, nil, nil, errors.New("password hash salt is malformed")
	}
	key, err := base64.RawStdEncoding.Strict().DecodeString(fields[5])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return p, nil, nil, errors.New("password hash digest is malformed")
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return p, salt, key, nil
}
