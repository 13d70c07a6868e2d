package gateway

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/journal"
	"github.com/mcpguard/mcpguard/internal/keystore"
	"github.com/mcpguard/mcpguard/internal/store"
)

// TestJournalDrainRecordsEachActOnce: the gateway drains the identities database's admin journal
// into its audit log, each act once with its actor — including an act a previous drain had
// appended but not marked (a crash between the two), which it finds in the log by request_id
// instead of appending it again.
func TestJournalDrainRecordsEachActOnce(t *testing.T) {
	ctx := context.Background()
	section, db, _ := auditConfig(t)
	identities := filepath.Join(t.TempDir(), "identities.db")
	cfg, err := config.Parse([]byte(fmt.Sprintf("listen: 127.0.0.1:0\napi_keys_database: %q\nupstreams:\n  - name: demo\n    stdio: {command: /bin/true}\n%s", identities, section)), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g, err := newFromConfig(ctx, cfg, nil) // not started: the test drives the drain
	if err != nil {
		t.Fatal(err)
	}
	st, err := keystore.Open(ctx, identities)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	alice := journal.Actor{Principal: "alice", Roles: []string{"admin"}, AuthMethod: journal.AuthOperatorSession}
	fresh := journal.NewEntry(journal.ActOperatorDisable, alice, time.Now())
	fresh.Target.Operator = "bob"
	crashed := journal.NewEntry(journal.ActAPIKeyRevoke, alice, time.Now())
	crashed.Target.KeyID = "0123456789abcdef"
	for _, e := range []*journal.Entry{fresh, crashed} {
		if err := st.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// A previous drain claimed both an hour ago, appended one and died before marking it.
	if claimed, err := st.Journal().Claim(ctx, time.Now().Add(-time.Hour), time.Minute, 0); err != nil || len(claimed) != 2 {
		t.Fatalf("claim: %d %v", len(claimed), err)
	}
	if _, err := g.audit.Append(ctx, actRecord(crashed)); err != nil {
		t.Fatal(err)
	}

	g.drainJournals(ctx)
	g.drainJournals(ctx)
	if n, err := st.Journal().Pending(ctx); err != nil || n != 0 {
		t.Errorf("%d entries still pending (%v), want none", n, err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	var disable *audit.Record
	if err := openStore(t, db).Scan(ctx, 0, func(r *store.Record) error {
		rec, err := audit.ParseRecord(r.Data)
		if err != nil {
			return err
		}
		count[rec.RequestID]++
		if rec.RequestID == fresh.ID {
			disable = rec
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if count[fresh.ID] != 1 || count[crashed.ID] != 1 {
		t.Errorf("records per act: %d and %d, want each exactly once", count[fresh.ID], count[crashed.ID])
	}
	if disable == nil || disable.Kind != audit.KindAdmin || disable.Principal != "alice" || disable.AuthMethod != "operator" ||
		!disable.Time.Equal(fresh.Time) || string(disable.Detail) != string(fresh.Detail()) {
		t.Errorf("the disable's record %+v; want alice's act at its own time with its detail", disable)
	}
}
