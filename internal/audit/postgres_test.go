package audit_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/store/postgres"
	"github.com/mcpguard/mcpguard/internal/testenv"
)

// openPostgres opens a store in a schema of its own, or skips without MCPGUARD_TEST_POSTGRES.
func openPostgres(t testing.TB) *postgres.Store {
	t.Helper()
	dsn := os.Getenv("MCPGUARD_TEST_POSTGRES")
	if dsn == "" {
		testenv.Missing(t, "MCPGUARD_TEST_POSTGRES is not set (a PostgreSQL DSN, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "mcpguard_audit_" + hex.EncodeToString(b)
	st, err := postgres.Open(context.Background(), dsn, &postgres.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		st.Close()
		c, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	})
	return st
}

func TestPostgresLogVerifies(t *testing.T) {
	st := openPostgres(t)
	e := newEnv(t)
	l := e.logOn(t, st, 50)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := range 20 {
				if _, err := l.Append(context.Background(), call(w*20+i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	l.Close()
	rep, err := audit.Verify(context.Background(), st, audit.VerifyOptions{Verifier: e.keys.verifier, CheckpointDir: e.cpDir})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Records != 320 || rep.Covered != 320 {
		t.Errorf("report %+v, want 320 records all covered and no problems", rep)
	}
	p, err := audit.ProveInclusion(context.Background(), st, 123, e.keys.verifier)
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.VerifyInclusion(p, e.keys.verifier, ""); err != nil {
		t.Error(err)
	}
}
