package keystore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// SecretKeySize is the length of the key that encrypts operators' TOTP secrets (AES-256).
const SecretKeySize = 32

// sealedPrefix marks a column value encrypted by a sealer. A TOTP secret is base32, which has no
// ':', so a sealed value can never be mistaken for a clear one.
const sealedPrefix = "v1:"

// errNoKey is returned when a sealed value is read without a key.
var errNoKey = errors.New("the identities database holds encrypted TOTP secrets: set identity_encryption_key to the key they were encrypted with")

// sealer encrypts TOTP secrets at rest with AES-256-GCM. Each value is bound to its operator and
// column by the additional data, so a sealed value copied to another operator's row, or from
// the pending column to the active one, fails to open instead of becoming a working secret.
type sealer struct {
	aead cipher.AEAD // nil: values are stored in clear
}

func newSealer(key []byte) (*sealer, error) {
	if key == nil {
		return &sealer{}, nil
	}
	if len(key) != SecretKeySize {
		return nil, fmt.Errorf("the identity encryption key has %d bytes; want %d", len(key), SecretKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

func additionalData(operator, column string) []byte {
	return []byte("mcpguard operator " + column + "\x00" + operator)
}

// seal returns the stored form of value: sealed when there is a key, unchanged otherwise. The
// empty value (no secret) stays empty, so "is enrolled" needs no key to answer.
func (s *sealer) seal(operator, column, value string) (string, error) {
	if s.aead == nil || value == "" {
		return value, nil
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(value)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("encrypt %s of %s: %w", column, operator, err)
	}
	out := s.aead.Seal(nonce, nonce, []byte(value), additionalData(operator, column))
	return sealedPrefix + base64.RawURLEncoding.EncodeToString(out), nil
}

// open returns the clear form of a stored value.
func (s *sealer) open(operator, column, stored string) (string, error) {
	if !strings.HasPrefix(stored, sealedPrefix) {
		return stored, nil // stored in clear: written before a key was configured, or without one
	}
	if s.aead == nil {
		return "", errNoKey
	}
	raw, err := base64.RawURLEncoding.DecodeString(stored[len(sealedPrefix):])
	n := s.aead.NonceSize()
	if err != nil || len(raw) < n+s.aead.Overhead() {
		return "", fmt.Errorf("operator %s: the stored %s is damaged", operator, column)
	}
	clear, err := s.aead.Open(nil, raw[:n], raw[n:], additionalData(operator, column))
	if err != nil {
		return "", fmt.Errorf("operator %s: identity_encryption_key does not decrypt the stored %s: is it the key it was encrypted with, and is the row unaltered?", operator, column)
	}
	return string(clear), nil
}

// sealed reports whether a stored value is encrypted.
func sealed(stored string) bool { return strings.HasPrefix(stored, sealedPrefix) }
