package authn

import (
	"context"
	"strings"
	"testing"
)

func TestPasswordHasher(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := NewPasswordHasher(&PasswordHasherOptions{Params: cheapArgon2})
	enc, err := h.Hash(ctx, goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("hash %q is not an argon2id PHC string with the configured parameters", enc)
	}
	if ok, rehash, err := h.Verify(ctx, enc, goodPassword); !ok || rehash || err != nil {
		t.Errorf("Verify(right) = %v, %v, %v", ok, rehash, err)
	}
	if ok, _, _ := h.Verify(ctx, enc, goodPassword+"!"); ok {
		t.Error("Verify accepted a wrong password")
	}
	stronger := NewPasswordHasher(&PasswordHasherOptions{Params: Argon2Params{Memory: 128, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}})
	if ok, rehash, _ := stronger.Verify(ctx, enc, goodPassword); !ok || !rehash {
		t.Errorf("a hash with older parameters: ok=%v rehash=%v, want true, true", ok, rehash)
	}
	if _, err := h.Hash(ctx, "short"); err == nil {
		t.Error("a short password was hashed")
	}
}

func TestPasswordHasherBoundsConcurrency(t *testing.T) {
	t.Parallel()
	h := NewPasswordHasher(&PasswordHasherOptions{Params: cheapArgon2, MaxConcurrent: 1})
	enc, err := h.Hash(context.Background(), goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	h.sem <- struct{}{} // the only slot is busy
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := h.Verify(ctx, enc, goodPassword); err == nil || !strings.Contains(err.Error(), "waiting to hash") {
		t.Errorf("Verify with every slot busy and the caller gone: %v", err)
	}
	<-h.sem
}

func TestParsePHCRefusesHostileParameters(t *testing.T) {
	t.Parallel()
	salt, key := "c2FsdHNhbHRzYWx0c2FsdA", "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"
	tests := []struct{ name, in string }{
		{"bcrypt", "$2a$10$abcdefghijklmnopqrstuv"},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{"old version", "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key},
		{"huge memory", "$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key},
		{"huge time", "$argon2id$v=19$m=64,t=100000,p=1$" + salt + "$" + key},
		{"zero threads", "$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key},
		{"repeated parameter", "$argon2id$v=19$m=64,m=64,t=1,p=1$" + salt + "$" + key},
		{"missing parameter", "$argon2id$v=19$m=64,t=1$" + salt + "$" + key},
		{"short salt", "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" + key},
		{"padded digest", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "="},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, _, err := parsePHC(tt.in); err == nil {
				t.Errorf("parsePHC(%q) accepted it", tt.in)
			}
		})
	}
	if _, _, _, err := parsePHC("$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key); err != nil {
		t.Errorf("a valid string: %v", err)
	}
}

// BenchmarkPasswordHash measures one argon2id hash with the production parameters.
func BenchmarkPasswordHash(b *testing.B) {
	h := NewPasswordHasher(nil)
	ctx := context.Background()
	for b.Loop() {
		if _, err := h.Hash(ctx, goodPassword); err != nil {
			b.Fatal(err)
		}
	}
}
