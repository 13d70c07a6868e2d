package journal

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/sqldb"
	"github.com/mcpguard/mcpguard/internal/sqldb/sqldbtest"
)

func openDB(t *testing.T) *sqldb.DB {
	t.Helper()
	return openDSN(t, filepath.Join(t.TempDir(), "j.db"))
}

func openDSN(t *testing.T, dsn string) *sqldb.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), dsn, "test")
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
	t.Run("sqlite", func(t *testing.T) { claimRecordRelease(t, openDB(t)) })
	t.Run("postgres", func(t *testing.T) { claimRecordRelease(t, openDSN(t, sqldbtest.Schema(t))) })
}

func claimRecordRelease(t *testing.T, db *sqldb.DB) {
	ctx := context.Background()
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

// Gateways draining one shared PostgreSQL journal concurrently each get different entries:
// every entry is claimed exactly once.
func TestConcurrentClaimsOnPostgres(t *testing.T) {
	dsn := sqldbtest.Schema(t)
	ctx := context.Background()
	db := openDSN(t, dsn)
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	const entries = 200
	for i := range entries {
		if err := Write(ctx, db, NewEntry(ActAPIKeyRevoke, alice, now.Add(time.Duration(i)))); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for g := range 4 {
		tab := NewTable(fmt.Sprintf("gw-%d", g), openDSN(t, dsn))
		wg.Go(func() {
			for {
				got, err := tab.Claim(ctx, now, time.Hour, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, e := range got {
					seen[e.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != entries {
		t.Errorf("%d entries claimed, want %d", len(seen), entries)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("entry %s claimed %d times", id, n)
		}
	}
}
