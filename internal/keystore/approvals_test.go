package keystore

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mcpguard/mcpguard/internal/admin"
	"github.com/mcpguard/mcpguard/internal/authn"

	"github.com/mcpguard/mcpguard/internal/sqldb/sqldbtest"
)

// TestApprovalsSurviveReopen: a call held for approval, stored through the registry, is there
// again — pending, then approved — after the database is closed and reopened, as across a
// gateway restart; one that expired meanwhile is gone.
func TestApprovalsSurviveReopen(t *testing.T) {
	ctx := context.Background()
	path := sqldbtest.DSN(t, "identities.db")
	now := time.Date(2026, 12, 5, 9, 30, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	open := func() (*Store, *admin.Approvals) {
		t.Helper()
		st, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		as, err := st.Approvals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		reg, err := admin.OpenApprovals(ctx, as, &admin.ApprovalsOptions{Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		return st, reg
	}
	agent := &authn.Principal{Method: authn.MethodAPIKey, Subject: "trading-agent"}
	args := []byte(`{"symbol":"VNM","quantity":100}`)
	st, reg := open()
	held, err := reg.Hold(ctx, admin.Hold{Requester: agent, Tool: "finance.execute_trade", Arguments: args,
		ArgumentsSHA256: admin.ArgumentsDigest(args), Rule: "role:PortfolioManagerAI/permission:2", ApproverRole: "Desk", Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Hold(ctx, admin.Hold{Requester: agent, Tool: "finance.short_lived", ApproverRole: "Desk", Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	now = now.Add(2 * time.Minute) // the short-lived one expired while the gateway was down
	st, reg = open()
	got := reg.List(ctx, []string{"Desk"})
	if len(got) != 1 {
		t.Fatalf("after reopening: %d approvals, want the unexpired one", len(got))
	}
	want := admin.Approval{ID: held.ID, Principal: "trading-agent", AuthMethod: "apikey", RequesterNames: []string{"trading-agent"},
		Tool: "finance.execute_trade", Arguments: args, ArgumentsSHA256: admin.ArgumentsDigest(args),
		Rule: "role:PortfolioManagerAI/permission:2", ApproverRole: "Desk", Status: admin.StatusPending, Requested: held.Requested, Expires: held.Expires}
	if diff := cmp.Diff(want, got[0], cmpopts.IgnoreUnexported(admin.Approval{})); diff != "" {
		t.Errorf("reopened approval (-want +got):\n%s", diff)
	}
	alice := &authn.Principal{Method: authn.MethodOperator, Subject: "alice", Roles: []string{"Desk"}, MFA: true}
	if _, err := reg.Decide(ctx, held.ID, alice, admin.Decision{Approve: true, Reason: "checked"}, func(admin.Approval, admin.Decision) error { return nil }); err != nil {
		t.Fatal(err)
	}
	st.Close()

	st, reg = open()
	defer st.Close()
	got = reg.List(ctx, []string{"Desk"})
	if len(got) != 1 || got[0].Status != admin.StatusApproved || got[0].ApprovedBy != "alice" {
		t.Fatalf("after reopening again: %+v, want the call approved by alice", got)
	}
	p, err := reg.Hold(ctx, admin.Hold{Requester: agent, Tool: "finance.execute_trade", Arguments: args,
		ArgumentsSHA256: admin.ArgumentsDigest(args), Rule: "role:PortfolioManagerAI/permission:2", ApproverRole: "Desk"})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := reg.Wait(ctx, p); err != nil || !d.Approve {
		t.Fatalf("the retried call: %+v %v, want it approved", d, err)
	}
	var n int
	if err := st.root.QueryRowContext(ctx, `SELECT count(*) FROM approvals`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d approvals stored after the approved call was consumed (%v), want none", n, err)
	}
}

// TestSessionMFASurvivesAndOldSessionsHaveNone: a session keeps whether its login proved two
// factors; a database made before the mfa column existed gains it, its sessions reading as
// without MFA.
func TestSessionMFASurvivesAndOldSessionsHaveNone(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	var old [32]byte
	old[0] = 1
	if _, err := db.Exec(`CREATE TABLE operator_sessions (id BLOB PRIMARY KEY, operator TEXT NOT NULL, created_at INTEGER NOT NULL, last_seen INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO operator_sessions VALUES (?, 'alice', 1, 1)`, old[:]); err != nil {
		t.Fatal(err)
	}
	db.Close()
	st, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ops, err := st.Operators(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := ops.Session(ctx, old); err != nil || s.MFA {
		t.Errorf("a session stored before the upgrade: %+v %v, want it without MFA", s, err)
	}
	fresh := authn.Session{ID: [32]byte{2}, Operator: "alice", Created: time.Now(), LastSeen: time.Now(), MFA: true}
	if err := ops.CreateSession(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if s, err := ops.Session(ctx, fresh.ID); err != nil || !s.MFA {
		t.Errorf("a session stored with MFA reads %+v %v", s, err)
	}
}
