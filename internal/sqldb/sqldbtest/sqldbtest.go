// Package sqldbtest gives tests a PostgreSQL schema of their own on the test database.
package sqldbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mcpguard/mcpguard/internal/testenv"
)

// NewSchema returns the test database's DSN (MCPGUARD_TEST_POSTGRES) and the name of a new
// schema in it, dropped when the test ends; without the variable the test is a missing
// capability (testenv.Missing).
func NewSchema(t testing.TB) (dsn, schema string) {
	t.Helper()
	dsn = os.Getenv("MCPGUARD_TEST_POSTGRES")
	if dsn == "" {
		testenv.Missing(t, "MCPGUARD_TEST_POSTGRES is not set (a PostgreSQL DSN, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema = "mcpguard_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Logf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
	})
	return dsn, schema
}

// Schema returns a DSN of the test database whose search_path is a new schema (NewSchema).
func Schema(t testing.TB) string {
	t.Helper()
	dsn, name := NewSchema(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// BackendEnv names the backend the stores' shared tests run on: "postgres" runs them on a new
// schema of the test database (MCPGUARD_TEST_POSTGRES) each; anything else on SQLite files.
// .ci/run runs the identities and pin stores' tests once each way.
const BackendEnv = "MCPGUARD_TEST_SQL_BACKEND"

// Postgres reports whether the shared tests run on PostgreSQL.
func Postgres() bool { return os.Getenv(BackendEnv) == "postgres" }

// DSN returns a new, empty database for a test: a SQLite file named file in the test's
// temporary directory, or, when Postgres(), a new schema of the test database.
func DSN(t testing.TB, file string) string {
	t.Helper()
	if Postgres() {
		return Schema(t)
	}
	return filepath.Join(t.TempDir(), file)
}
