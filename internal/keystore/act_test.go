package keystore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/journal"

	"github.com/mcpguard/mcpguard/internal/sqldb/sqldbtest"
)

// TestActCommitsChangeAndRecordTogether: an act's change and its journal entry commit together;
// a failed change leaves neither, and an entry that cannot be written (no authenticated actor)
// undoes the change: no record, no change.
func TestActCommitsChangeAndRecordTogether(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, sqldbtest.DSN(t, "identities.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ops, err := st.Operators(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	alice := journal.Actor{Principal: "alice", AuthMethod: journal.AuthOperatorSession}
	create := func(e *journal.Entry, fail error) (authn.APIKey, error) {
		var rec authn.APIKey
		err := st.Act(ctx, e, ops, func(tx Tx) error {
			var err error
			if _, rec, err = authn.NewAPIKeys(tx.Keys, nil).Create(ctx, "agent", []string{"r"}, time.Hour); err != nil {
				return err
			}
			if tx.Operators == nil {
				return errors.New("the act's transaction has no operator store")
			}
			return fail
		})
		return rec, err
	}
	keys := func() int {
		list, err := st.ListAPIKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	pending := func() int {
		n, err := st.Journal().Pending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	if _, err := create(journal.NewEntry(journal.ActAPIKeyCreate, alice, time.Now()), errors.New("refused")); err == nil {
		t.Fatal("a failing change reported success")
	}
	if keys() != 0 || pending() != 0 {
		t.Fatalf("a failed change left %d keys and %d journal entries, want none", keys(), pending())
	}
	if _, err := create(journal.NewEntry(journal.ActAPIKeyCreate, journal.Actor{}, time.Now()), nil); err == nil {
		t.Fatal("an act without an authenticated actor succeeded")
	}
	if keys() != 0 || pending() != 0 {
		t.Fatalf("an unrecordable act left %d keys and %d journal entries, want none", keys(), pending())
	}
	e := journal.NewEntry(journal.ActAPIKeyCreate, alice, time.Now())
	rec, err := create(e, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.Journal().Claim(ctx, time.Now(), time.Minute, 0)
	if err != nil || keys() != 1 || len(got) != 1 || got[0].ID != e.ID {
		t.Fatalf("after the act: %d keys, journal %+v (%v); want the key and its entry", keys(), got, err)
	}
	if rec.ID == "" {
		t.Error("no key id")
	}
}
