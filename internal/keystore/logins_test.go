package keystore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/sqldb/sqldbtest"
)

// An OIDC login started through one instance is finished through another, exactly once; the
// bound on pending logins counts every instance's, and expired ones make room.
func TestLoginStatesAcrossInstances(t *testing.T) {
	ctx := context.Background()
	dsn := sqldbtest.DSN(t, "identities.db")
	open := func() *LoginStates {
		st, err := Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		l, err := st.LoginStates(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	a, b := open(), open()
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	p := authn.PendingLogin{Nonce: "n-1", Verifier: "v-1", Started: t0}
	if err := a.PutLoginState(ctx, "state-1", p, 3, t0.Add(-10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		got  []authn.PendingLogin
		errs []error
	)
	for _, l := range []*LoginStates{a, b, a, b} {
		wg.Go(func() {
			q, err := l.TakeLoginState(ctx, "state-1")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			got = append(got, q)
		})
	}
	wg.Wait()
	if len(got) != 1 || got[0] != p {
		t.Fatalf("takes of one state: %+v; want exactly one, equal to what was put", got)
	}
	for _, err := range errs {
		if !errors.Is(err, authn.ErrNotFound) {
			t.Errorf("a second take: %v, want ErrNotFound", err)
		}
	}
	for i := range 3 {
		if err := a.PutLoginState(ctx, fmt.Sprint("s", i), authn.PendingLogin{Nonce: "n", Verifier: "v", Started: t0}, 3, t0.Add(-10*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.PutLoginState(ctx, "s3", authn.PendingLogin{Nonce: "n", Verifier: "v", Started: t0}, 3, t0.Add(-10*time.Minute)); !errors.Is(err, authn.ErrTooManyLogins) {
		t.Fatalf("a fourth pending login with a bound of 3: %v, want ErrTooManyLogins", err)
	}
	later := t0.Add(11 * time.Minute)
	if err := b.PutLoginState(ctx, "s3", authn.PendingLogin{Nonce: "n", Verifier: "v", Started: later}, 3, later.Add(-10*time.Minute)); err != nil {
		t.Fatalf("once the others expired: %v", err)
	}
	if _, err := a.TakeLoginState(ctx, "s0"); !errors.Is(err, authn.ErrNotFound) {
		t.Errorf("an expired login was not deleted: %v", err)
	}
}
