package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/store/sqlite"
)

// appendOffline appends one record to the database without the log's key, as someone with
// access to the database could while the gateway is stopped.
func appendOffline(t *testing.T, db string) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, err := audit.Open(context.Background(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(context.Background(), &audit.Record{Kind: audit.KindAdmin, Principal: "mallory"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestAuditVerifyExitCodes: 0 verified, 1 tampered, 2 usage or unreadable, 3 records not covered
// by a signed checkpoint beyond --max-uncovered.
func TestAuditVerifyExitCodes(t *testing.T) {
	dir, db, cps, pub := auditFixture(t, 20)
	verify := func(extra ...string) (string, int) {
		t.Helper()
		out, err := run(t, append([]string{"audit", "verify", "--quiet", "--db", db, "--key", pub, "--checkpoints", cps}, extra...)...)
		if err == nil {
			return out, 0
		}
		return out + "\nerror: " + err.Error(), exitCode(err)
	}
	if out, code := verify(); code != exitVerified {
		t.Fatalf("verify of an untouched, closed log: exit %d, want 0\n%s", code, out)
	}

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"unknown flag", []string{"audit", "verify", "--db", db, "--key", pub, "--nope"}},
		{"no key", []string{"audit", "verify", "--db", db}},
		{"an argument", []string{"audit", "verify", "--db", db, "--key", pub, "extra"}},
		{"missing database", []string{"audit", "verify", "--db", filepath.Join(dir, "missing.db"), "--key", pub}},
		{"missing key file", []string{"audit", "verify", "--db", db, "--key", filepath.Join(dir, "missing.pub")}},
		{"negative bound", []string{"audit", "verify", "--db", db, "--key", pub, "--max-uncovered", "-1"}},
	} {
		if out, err := run(t, tc.args...); exitCode(err) != exitUsage {
			t.Errorf("%s: exit %d (%v), want 2\n%s", tc.name, exitCode(err), err, out)
		}
	}

	appendOffline(t, db)
	out, code := verify()
	if code != exitIncomplete || !strings.Contains(out, "INCOMPLETE: records 20..20 (1) are not covered") {
		t.Errorf("verify with a record no checkpoint covers: exit %d, want 3 and the reason\n%s", code, out)
	}
	if out, code := verify("--max-uncovered", "1"); code != exitVerified {
		t.Errorf("verify --max-uncovered 1 with one record uncovered: exit %d, want 0\n%s", code, out)
	}

	// A one-byte edit, on a fresh log as TestAuditVerifyCLI makes it (the offline append has
	// copied the record's page to the WAL).
	_, db, cps, pub = auditFixture(t, 40)
	editRecord17(t, db)
	if out, code := verify("--max-uncovered", "100"); code != exitTampered || !strings.Contains(out, "TAMPERED: record 17:") {
		t.Errorf("verify of an edited record: exit %d, want 1\n%s", code, out)
	}
}

// TestAuditAcceptCLI: records the gateway did not sign keep it from starting until an operator
// accepts exactly those records; then verify passes with every record covered.
func TestAuditAcceptCLI(t *testing.T) {
	dir, db, cps, pub := auditFixture(t, 20)
	key := filepath.Join(dir, "ops-log.key")
	appendOffline(t, db)

	signer, err := audit.LoadSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = audit.Open(context.Background(), st, &audit.Options{Signer: signer, CheckpointDir: cps})
	st.Close()
	if err == nil || !strings.Contains(err.Error(), "mcpguard audit accept --records 1") {
		t.Fatalf("Open with a record added while stopped: %v, want a refusal naming audit accept", err)
	}

	args := []string{"audit", "accept", "--db", db, "--signing-key", key, "--checkpoints", cps}
	if out, err := run(t, append(args, "--records", "2")...); err == nil {
		t.Errorf("accept --records 2 with one uncovered record succeeded:\n%s", out)
	}
	if out, err := run(t, append(args, "--records", "1")...); err != nil || !strings.Contains(out, "accepted records 20..20") {
		t.Fatalf("accept --records 1: %v\n%s", err, out)
	}
	if out, err := run(t, "audit", "verify", "--quiet", "--db", db, "--key", pub, "--checkpoints", cps); err != nil || !strings.Contains(out, "OK: 21 records, 21 covered") {
		t.Errorf("verify after accept: %v\n%s", err, out)
	}
}
