package gdpr_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/gdpr"
	"github.com/mcpguard/mcpguard/internal/sqldb/sqldbtest"
	"github.com/mcpguard/mcpguard/internal/store"
	"github.com/mcpguard/mcpguard/internal/store/postgres"
)

// Two instances of a deployment, each with its own log in one PostgreSQL database: a subject's
// export through one holds its records from both logs; an erasure through one is known to the
// other (a restored key is deleted before it decrypts anything there); a hold covering a record
// in one instance's log refuses an erasure through the other.
func TestDeploymentOfTwoLogs(t *testing.T) {
	ctx := context.Background()
	dsn, schema := sqldbtest.NewSchema(t)
	skey, vkey, err := audit.GenerateKey("gdpr-test")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	instance := func(name string) *env {
		e := &env{verifier: verifier, dir: t.TempDir()}
		e.open(t, func(t *testing.T) store.Store {
			st, err := postgres.Open(ctx, dsn, &postgres.Options{Schema: schema, Log: name, Lease: true})
			if err != nil {
				t.Fatal(err)
			}
			return st
		}, signer)
		return e
	}
	a, b := instance("gw-1"), instance("gw-2")
	now := time.Now()
	a.call(t, now, "analyst", "get_client_portfolio", `{"client_id":"C-1001"}`)
	b.call(t, now, "trader", "execute_trade", `{"client_id":"C-1001","symbol":"ACME","quantity":10}`)
	b.call(t, now, "trader", "get_client_portfolio", `{"client_id":"C-2002"}`)

	ex, err := b.svc.Export(ctx, "C-1001", operator)
	if err != nil {
		t.Fatal(err)
	}
	logs := map[string]int{}
	for _, r := range ex.Records {
		if r.Data != nil {
			logs[r.Log]++
		}
	}
	if ex.Readable != 2 || logs["gw-1"] != 1 || logs["gw-2"] != 1 {
		t.Fatalf("export through gw-2: %d readable, by log %v; want one record from each log", ex.Readable, logs)
	}

	// A hold on the analyst covers the record in gw-1's log: erasure through gw-2 is refused.
	h, err := a.svc.AddHold(ctx, gdpr.HoldRequest{Principal: "analyst", Reason: "desk review"}, operator)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.svc.Erase(ctx, "C-1001", "art. 17", operator); !errors.Is(err, gdpr.ErrHeld) {
		t.Fatalf("erasure through gw-2 while a hold covers a record in gw-1's log: %v, want ErrHeld", err)
	}
	if err := a.svc.ReleaseHold(ctx, h.ID, operator); err != nil {
		t.Fatal(err)
	}

	// Erased through gw-1; then the key table is restored from an older copy.
	key, err := a.st.(store.Compliance).SubjectKey(ctx, a.svc.Subjects().Commitment("C-1001"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.svc.Erase(ctx, "C-1001", "art. 17", operator); err != nil {
		t.Fatal(err)
	}
	if _, err := a.st.(store.Compliance).PutSubjectKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	ex, err = b.svc.Export(ctx, "C-1001", operator)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Readable != 0 || ex.Neutralised != 1 {
		t.Fatalf("export through gw-2 after an erasure through gw-1 and a restored key: %d readable, %d keys neutralised; want 0 and 1", ex.Readable, ex.Neutralised)
	}
	if _, err := b.st.(store.Compliance).SubjectKey(ctx, key.Commitment); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the restored key is still in the table: %v", err)
	}
	// And a start of gw-2 (Neutralise) finds gw-1's erasure too.
	if _, err := a.st.(store.Compliance).PutSubjectKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	if n, err := b.svc.Neutralise(ctx); err != nil || n != 1 {
		t.Errorf("Neutralise through gw-2 after gw-1's erasure and a restored key: %d, %v; want 1", n, err)
	}
	a.verify(t, time.Now())
	b.verify(t, time.Now())
}
