package postgres_test

import (
	"context"
	"testing"

	"github.com/mcpguard/mcpguard/internal/sqldb/sqldbtest"
	"github.com/mcpguard/mcpguard/internal/store"
	"github.com/mcpguard/mcpguard/internal/store/postgres"
	"github.com/mcpguard/mcpguard/internal/store/storetest"
)

// dsn returns the test database from MCPGUARD_TEST_POSTGRES, or skips.
func dsn(t testing.TB) string {
	d, _ := sqldbtest.NewSchema(t)
	return d
}

// schema returns a schema name unique to this test, dropped when it ends.
func schema(t testing.TB, _ string) string {
	_, name := sqldbtest.NewSchema(t)
	return name
}

// openTemp opens a store in a schema of its own, dropped when the test ends.
func openTemp(tb testing.TB, d string) store.Store {
	s, err := postgres.Open(context.Background(), d, &postgres.Options{Schema: schema(tb, d)})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestContract(t *testing.T) {
	d := dsn(t)
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t, d) })
}

func TestBadSchemaName(t *testing.T) {
	if _, err := postgres.Open(context.Background(), "postgres://127.0.0.1:1/x", &postgres.Options{Schema: "x; DROP TABLE y"}); err == nil {
		t.Error("an unsafe schema name was accepted")
	}
}

func TestDatabaseDownFails(t *testing.T) {
	if _, err := postgres.Open(context.Background(), "postgres://postgres@127.0.0.1:1/test?connect_timeout=2", nil); err == nil {
		t.Error("opening a store on a closed port succeeded")
	}
}

func BenchmarkAppend(b *testing.B) {
	d := dsn(b)
	storetest.Bench(b, func(b *testing.B) store.Store { return openTemp(b, d) })
}
