package journal

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

func openDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "j.db")+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := Prepare(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return db
}

var alice = Actor{Principal: "alice", AuthMethod: AuthOperatorSession}

// TestClaimRecordRelease: entries come out oldest first, once per claim; a claimed entry is not
// claimed again within its lease, comes back after it with Attempts 2 (so the drain checks the
// log before appending), and a recorded one never comes back.
func TestClaimRecordRelease(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	var ids []string
	for _, act := range []string{ActAPIKeyCreate, ActOperatorDisable, ActToolApprove} {
		e := NewEntry(act, alice, now)
		if err := Write(ctx, db, e); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	tab := NewTable("test", db)
	got, err := tab.Claim(ctx, now, time.Minute, 2)
	if err != nil || len(got) != 2 || got[0].ID != ids[0] || got[1].ID != ids[1] || got[0].Attempts != 1 {
		t.Fatalf("first claim: %+v %v; want the two oldest, first attempt", got, err)
	}
	if err := tab.Recorded(ctx, ids[0], 7, now); err != nil {
		t.Fatal(err)
	}
	if got, _ := tab.Claim(ctx, now, time.Minute, 0); len(got) != 1 || got[0].ID != ids[2] {
		t.Fatalf("second claim within the lease: %+v; want only the unclaimed entry", got)
	}
	if n, _ := tab.Pending(ctx); n != 2 {
		t.Errorf("pending %d, want 2", n)
	}
	later := now.Add(2 * time.Minute)
	got, _ = tab.Claim(ctx, later, time.Minute, 0)
	if len(got) != 2 || got[0].ID != ids[1] || got[0].Attempts != 2 {
		t.Fatalf("claim after the lease: %+v; want the two unrecorded entries again, second attempt", got)
	}
	if err := tab.Release(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	if got, _ := tab.Claim(ctx, later, time.Minute, 0); len(got) != 1 || got[0].ID != ids[1] {
		t.Fatalf("claim after release: %+v; want the released entry at once", got)
	}
}

// TestWriteRefusesAnonymousAndBoundsFields: no entry without an authenticated actor; every text
// field is bounded.
func TestWriteRefusesAnonymousAndBoundsFields(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	if err := Write(ctx, db, NewEntry(ActAPIKeyRevoke, Actor{}, time.Now())); err == nil {
		t.Error("an entry without an actor was written")
	}
	e := NewEntry(ActOperatorLogin, Actor{Principal: strings.Repeat("é", 1000), AuthMethod: AuthPasswordTOTP}, time.Now())
	e.Target.Operator = strings.Repeat("x", 100000)
	if err := Write(ctx, db, e); err != nil {
		t.Fatal(err)
	}
	got, err := NewTable("test", db).Claim(ctx, time.Now(), time.Minute, 0)
	if err != nil || len(got) != 1 {
		t.Fatalf("claim: %v", err)
	}
	if n := len(got[0].Target.Operator); n > maxField+len("…") {
		t.Errorf("target kept %d bytes, want at most %d", n, maxField)
	}
	if p := got[0].Actor.Principal; !strings.HasSuffix(p, "…") || len(p) > maxField+len("…") || !strings.HasPrefix(p, "é") {
		t.Errorf("principal %q not cut on a rune boundary within the bound", p)
	}
}
