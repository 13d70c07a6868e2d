package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/redact"
	"github.com/mcpguard/mcpguard/internal/store/sqlite"
)

// run executes the CLI with args and returns its output and error.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// auditFixture makes a key with the CLI and a log of n records signed with it.
func auditFixture(t *testing.T, n int) (dir, db, cps, pub string) {
	t.Helper()
	dir = t.TempDir()
	if out, err := run(t, "audit", "keygen", "--name", "ops-log", "--dir", dir); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	if out, err := run(t, "audit", "keygen", "--name", "ops-log", "--dir", dir); err == nil {
		t.Fatalf("keygen overwrote an existing key:\n%s", out)
	}
	skey, err := os.ReadFile(filepath.Join(dir, "ops-log.key"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "ops-log.key")); fi.Mode().Perm() != 0o600 {
		t.Errorf("signing key mode %v, want 0600", fi.Mode().Perm())
	}
	signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		t.Fatal(err)
	}
	db, cps, pub = filepath.Join(dir, "audit.db"), filepath.Join(dir, "checkpoints"), filepath.Join(dir, "ops-log.pub")
	st, err := sqlite.Open(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := redact.New([]byte("sixteen bytes or more of key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(context.Background(), st, &audit.Options{Signer: signer, CheckpointDir: cps, CheckpointEvery: 10, Redactor: r})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	for i := range n {
		_, err := l.Append(context.Background(), &audit.Record{
			Time: t0.Add(time.Duration(i) * time.Minute), Kind: audit.KindToolCall, RequestID: fmt.Sprintf("r%d", i),
			Principal: []string{"alice", "=bob"}[i%2], Tool: "fin.transfer", Decision: []string{"allow", "deny"}[i%2],
			Arguments: json.RawMessage(fmt.Sprintf(`{"amount":%d,"password":"hunter2"}`, 1000+i)),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	return dir, db, cps, pub
}

// segmentFrame is a record segment's frame of record seq, as docs/audit.md describes it: the
// payload's length and CRC-32C, then a version byte, the sequence number and time (varints), and
// kind, principal, tool, decision, request id, data and hashes as length-prefixed bytes, then
// the count of subjects.
func segmentFrame(seq int64) []byte {
	p := []byte{1}
	p = binary.AppendVarint(p, seq)
	p = binary.AppendVarint(p, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	for _, f := range []string{"call", "alice", "echo", "allow", "r1", `{"v":1}`, strings.Repeat("h", 32)} {
		p = binary.AppendUvarint(p, uint64(len(f)))
		p = append(p, f...)
	}
	p = binary.AppendUvarint(p, 0)
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(p)))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(p, crc32.MakeTable(crc32.Castagnoli)))
	return append(b, p...)
}

func TestAuditVerifyCLI(t *testing.T) {
	_, db, cps, pub := auditFixture(t, 40)
	out, err := run(t, "audit", "verify", "--db", db, "--key", pub, "--checkpoints", cps)
	if err != nil || !strings.Contains(out, "OK: 40 records, 40 covered") {
		t.Fatalf("verify of an untouched log: %v\n%s", err, out)
	}
	if strings.Contains(out, "record segment") {
		t.Errorf("verify of a closed log mentions a record segment:\n%s", out)
	}
	// A segment a stopped writer left behind is named: the report covers the database only. The
	// zeros it was grown with are not records.
	if err := os.WriteFile(db+sqlite.SegmentSuffix, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "audit", "verify", "--db", db, "--key", pub, "--checkpoints", cps)
	if err != nil || strings.Contains(out, "record segment") {
		t.Fatalf("verify beside a segment of zeros: %v\n%s", err, out)
	}
	frame := segmentFrame(39) // a record the database holds: readers take it from there

	if err := os.WriteFile(db+sqlite.SegmentSuffix, append(frame, make([]byte, 4096)...), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "audit", "verify", "--db", db, "--key", pub, "--checkpoints", cps)
	if want := fmt.Sprintf("NOTE: the record segment %s holds %d bytes", db+sqlite.SegmentSuffix, len(frame)); err != nil || !strings.Contains(out, want) {
		t.Fatalf("verify beside a left segment: %v\n%s\nwant %q", err, out, want)
	}
	os.Remove(db + sqlite.SegmentSuffix)
	// Change one byte of one record in the database file itself.
	editRecord17(t, db)
	out, err = run(t, "audit", "verify", "--db", db, "--key", pub, "--checkpoints", cps)
	if err == nil || !strings.Contains(err.Error(), "record 17:") || !strings.Contains(out, "TAMPERED: record 17:") {
		t.Errorf("verify after a one-byte change: %v\n%s", err, out)
	}
}

func TestAuditProofsCLI(t *testing.T) {
	dir, db, _, pub := auditFixture(t, 40)
	out, err := run(t, "audit", "proof", "7", "--db", db, "--key", pub)
	if err != nil {
		t.Fatalf("proof: %v\n%s", err, out)
	}
	pf := filepath.Join(dir, "proof.json")
	os.WriteFile(pf, []byte(out), 0o600)
	if out, err := run(t, "audit", "check-proof", pf, "--key", pub); err != nil || !strings.Contains(out, "OK: record 7") {
		t.Errorf("check-proof: %v\n%s", err, out)
	}
	os.WriteFile(pf, bytes.Replace([]byte(out), []byte(`\"amount\":1007`), []byte(`\"amount\":9007`), 1), 0o600)
	if out, err := run(t, "audit", "check-proof", pf, "--key", pub); err == nil {
		t.Errorf("check-proof accepted an edited record:\n%s", out)
	}
	out, err = run(t, "audit", "consistency", "10", "40", "--db", db, "--key", pub)
	if err != nil {
		t.Fatalf("consistency: %v\n%s", err, out)
	}
	os.WriteFile(pf, []byte(out), 0o600)
	if out, err := run(t, "audit", "check-proof", pf, "--key", pub); err != nil || !strings.Contains(out, "prefix") {
		t.Errorf("check-proof of a consistency proof: %v\n%s", err, out)
	}
}

func TestAuditSearchAndExportCLI(t *testing.T) {
	_, db, _, _ := auditFixture(t, 6)
	out, err := run(t, "audit", "search", "--db", db, "--principal", "alice", "--decision", "allow")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "0\t2026-11-21T09:00:00Z\tcall\talice\tfin.transfer\tallow") {
		t.Errorf("search output:\n%s", out)
	}
	if strings.Contains(out, "hunter2") {
		t.Errorf("search shows a password in clear:\n%s", out)
	}
	out, err = run(t, "audit", "export", "--db", db, "--since", "2026-11-21T09:02:00Z", "--until", "2026-11-21T09:04:00Z", "--format", "jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], `{"v":1,"seq":2,`) {
		t.Errorf("jsonl export:\n%s", out)
	}
	out, err = run(t, "audit", "export", "--db", db, "--format", "csv")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 7 || !strings.HasPrefix(lines[0], "seq,time,kind,") || !strings.Contains(lines[2], ",'=bob,") {
		t.Errorf("csv export (a principal starting with = must be quoted against formulas):\n%s", out)
	}
	if _, err := run(t, "audit", "export", "--db", db, "--format", "xml"); err == nil {
		t.Error("--format xml was accepted")
	}
	if _, err := run(t, "audit", "search", "--db", filepath.Join(t.TempDir(), "missing.db")); err == nil {
		t.Error("search of a missing database succeeded")
	}
}

// editRecord17 changes one byte of record 17 (its "amount") in the database file itself, as an
// insider with write access to the file would.
func editRecord17(t *testing.T, db string) {
	t.Helper()
	raw, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(raw, []byte(`"amount":1017`))
	if i < 0 {
		t.Fatal("record 17 not found in the database file")
	}
	raw[i+len(`"amount":101`)] = '9'
	if err := os.WriteFile(db, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}
