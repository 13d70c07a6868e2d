package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/note"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/redact"
	"github.com/mcpguard/mcpguard/internal/sqldb/sqldbtest"
	"github.com/mcpguard/mcpguard/internal/store/postgres"
)

// audit verify on a PostgreSQL database of a deployment verifies every instance's log, each
// with its origin and checkpoint directory; a record changed in one log is reported as that
// log's, with the exit status of tampering; --log picks one log; --log with a SQLite file is
// refused.
func TestAuditVerifyDeploymentCLI(t *testing.T) {
	ctx := context.Background()
	dsn, schema := sqldbtest.NewSchema(t)
	dir := t.TempDir()
	if out, err := run(t, "audit", "keygen", "--name", "ops-log", "--dir", dir); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	skey, err := os.ReadFile(filepath.Join(dir, "ops-log.key"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		t.Fatal(err)
	}
	red, err := redact.New([]byte("sixteen bytes or more of key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cps := filepath.Join(dir, "checkpoints")
	for _, name := range []string{"gw-1", "gw-2"} {
		st, err := postgres.Open(ctx, dsn, &postgres.Options{Schema: schema, Log: name, Lease: true})
		if err != nil {
			t.Fatal(err)
		}
		origin, cpDir := audit.Named(name, cps)
		l, err := audit.Open(ctx, st, &audit.Options{Signer: signer, Origin: origin, CheckpointDir: cpDir, CheckpointEvery: 5, Redactor: red})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 12 {
			if _, err := l.Append(ctx, &audit.Record{Time: time.Now(), Kind: audit.KindToolCall, RequestID: fmt.Sprintf("%s-%d", name, i),
				Principal: "agent", Tool: "fin.quote", Decision: "allow", Arguments: json.RawMessage(`{"symbol":"ACME"}`)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		st.Close()
	}
	pub := filepath.Join(dir, "ops-log.pub")
	flags := []string{"audit", "verify", "--postgres", dsn, "--schema", schema, "--key", pub, "--checkpoints", cps, "--quiet"}
	out, err := run(t, flags...)
	if err != nil || !strings.Contains(out, "all 2 logs of the deployment verified") || !strings.Contains(out, "== log gw-2 (origin mcpguard.audit/log/gw-2") {
		t.Fatalf("verify of the deployment: %v\n%s", err, out)
	}
	if out, err := run(t, append(flags, "--log", "gw-1")...); err != nil || strings.Contains(out, "gw-2") {
		t.Fatalf("verify of gw-1 alone: %v\n%s", err, out)
	}
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	tag, err := c.Exec(ctx, "UPDATE "+schema+".audit_records SET record = convert_to(replace(convert_from(record, 'UTF8'), 'ACME', 'ACMF'), 'UTF8') WHERE log = 'gw-2' AND seq = 7 AND position('ACME' in convert_from(record, 'UTF8')) > 0")
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("change record 7 of gw-2: %v, %d rows", err, tag.RowsAffected())
	}
	out, err = run(t, flags...)
	if exitCode(err) != exitTampered || !strings.Contains(out, "log gw-2:") || strings.Contains(out, "log gw-1:") {
		t.Fatalf("verify after a change in gw-2's log: exit %d, %v\n%s", exitCode(err), err, out)
	}
	if _, err := run(t, "audit", "verify", "--db", filepath.Join(dir, "x.db"), "--log", "gw-1", "--key", pub); err == nil || !strings.Contains(err.Error(), "a SQLite file holds one log") {
		t.Errorf("--log with a SQLite file: %v", err)
	}
}
