package keystore

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/authn"

	"github.com/mcpguard/mcpguard/internal/sqldb/sqldbtest"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, SecretKeySize) }

// rawSecrets reads the stored (not decrypted) TOTP columns of one operator.
func rawSecrets(t *testing.T, st *OperatorStore, name string) (active, pending string) {
	t.Helper()
	err := st.root.QueryRowContext(context.Background(), `SELECT totp_secret, pending_totp FROM operators WHERE name = ?`, name).Scan(&active, &pending)
	if err != nil {
		t.Fatal(err)
	}
	return active, pending
}

// fileHolds reports whether the database file or its WAL contains s (SQLite; on PostgreSQL
// the stored columns are checked instead, by storedSecrets).
func fileHolds(t *testing.T, path, s string) bool {
	t.Helper()
	if sqldbtest.Postgres() {
		return false
	}
	for _, p := range []string{path, path + "-wal"} {
		data, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(s)) {
			return true
		}
	}
	return false
}

func login(t *testing.T, f *fixture, ops *authn.Operators) error {
	t.Helper()
	_, _, err := ops.Login(context.Background(), "alice", password, f.code(t))
	f.clk.Advance(30 * time.Second) // a code is single-use: the next login needs the next step
	return err
}

// A database written without a key has its secrets encrypted when a key is first configured;
// logins keep working and the secret is no longer in the file.
func TestConfiguringAKeyEncryptsExistingSecrets(t *testing.T) {
	f := newFixture(t) // alice enrolled, secrets in clear
	if active, _ := rawSecrets(t, f.store, "alice"); active != f.secret {
		t.Fatalf("without a key the secret should be stored as is, got %q", active)
	}
	f.store, f.ops = openOperatorsWith(t, f.path, f.clk, &OperatorOptions{SecretKey: testKey(7)})
	active, _ := rawSecrets(t, f.store, "alice")
	if !strings.HasPrefix(active, sealedPrefix) || strings.Contains(active, f.secret) {
		t.Fatalf("after configuring a key the stored secret is %q; want it encrypted", active)
	}
	checkpoint(t, f.store)
	if fileHolds(t, f.path, f.secret) {
		t.Error("the clear TOTP secret is still in the database file")
	}
	if err := login(t, f, f.ops); err != nil {
		t.Fatalf("login with the encrypted secret: %v", err)
	}
}

// checkpoint moves the WAL into the main file and truncates the WAL, so the file holds only
// the current rows.
func checkpoint(t *testing.T, st *OperatorStore) {
	t.Helper()
	if sqldbtest.Postgres() {
		return
	}
	if _, err := st.root.ExecContext(context.Background(), `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
}

func TestEncryptedSecretsNeedTheirKey(t *testing.T) {
	f := newFixture(t)
	f.store, f.ops = openOperatorsWith(t, f.path, f.clk, &OperatorOptions{SecretKey: testKey(7)})
	ctx := context.Background()

	st, err := Open(ctx, f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = st.Operators(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "identity_encryption_key") {
		t.Errorf("opening encrypted secrets without a key: err = %v; want one naming identity_encryption_key", err)
	}
	_, err = st.Operators(ctx, &OperatorOptions{SecretKey: testKey(8)})
	if err == nil || !strings.Contains(err.Error(), "does not decrypt") || !strings.Contains(err.Error(), "alice") {
		t.Errorf("opening with the wrong key: err = %v; want one naming the operator and the key", err)
	}
	_, err = st.Operators(ctx, &OperatorOptions{SecretKey: testKey(7)[:16]})
	if err == nil || !strings.Contains(err.Error(), "16 bytes") {
		t.Errorf("a 16-byte key: err = %v", err)
	}
	if _, err := st.Operators(ctx, &OperatorOptions{SecretKey: testKey(7)}); err != nil {
		t.Errorf("the right key: %v", err)
	}
}

// Enrolment under a key never writes the secret in clear, neither pending nor confirmed.
func TestEnrolmentUnderAKeyStoresNoClearSecret(t *testing.T) {
	ctx := context.Background()
	f := &fixture{path: sqldbtest.DSN(t, "identities.db"), clk: &clock{t: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}}
	store, ops := openOperatorsWith(t, f.path, f.clk, &OperatorOptions{SecretKey: testKey(1)})
	if err := ops.Create(ctx, "alice", password, []string{"admin"}); err != nil {
		t.Fatal(err)
	}
	e, err := ops.BeginEnrollment(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	f.secret = e.Secret.Reveal()
	if _, pending := rawSecrets(t, store, "alice"); !strings.HasPrefix(pending, sealedPrefix) {
		t.Errorf("pending secret stored as %q; want it encrypted", pending)
	}
	if err := ops.ConfirmEnrollment(ctx, "alice", f.code(t)); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(30 * time.Second)
	checkpoint(t, store)
	if fileHolds(t, f.path, f.secret) {
		t.Error("the clear TOTP secret is in the database file")
	}
	if err := login(t, f, ops); err != nil {
		t.Fatalf("login: %v", err)
	}
}

// A sealed secret is bound to its operator: copied into another operator's row it does not open.
func TestSealedSecretIsBoundToItsOperator(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	store, ops := openOperatorsWith(t, f.path, f.clk, &OperatorOptions{SecretKey: testKey(3)})
	if err := ops.Create(ctx, "mallory", password, nil); err != nil {
		t.Fatal(err)
	}
	active, _ := rawSecrets(t, store, "alice")
	if _, err := store.root.ExecContext(context.Background(), `UPDATE operators SET totp_secret = ? WHERE name = 'mallory'`, active); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Operator(ctx, "mallory"); err == nil || !strings.Contains(err.Error(), "mallory") {
		t.Errorf("reading mallory with alice's sealed secret: err = %v; want a decryption error", err)
	}
	// The damaged row is also caught when the store is opened.
	st, err := Open(ctx, f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Operators(ctx, &OperatorOptions{SecretKey: testKey(3)}); err == nil {
		t.Error("opening a store with a transplanted secret succeeded")
	}
}
