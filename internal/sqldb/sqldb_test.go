package sqldb_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mcpguard/mcpguard/internal/sqldb"
	"github.com/mcpguard/mcpguard/internal/sqldb/sqldbtest"
)

// Migrate runs each step once, in order, across reopenings, and refuses a database a newer
// release migrated, changing nothing.
func TestMigrate(t *testing.T) {
	ctx := context.Background()
	dsn := sqldbtest.DSN(t, "m.db")
	var ran []int
	step := func(n int, stmt string) sqldb.Step {
		return func(ctx context.Context, tx *sqldb.Tx) error {
			ran = append(ran, n)
			_, err := tx.ExecContext(ctx, stmt)
			return err
		}
	}
	v1 := []sqldb.Step{step(1, `CREATE TABLE t (id INTEGER PRIMARY KEY, data BLOB NOT NULL)`)}
	v2 := append(v1, step(2, `ALTER TABLE t ADD COLUMN note TEXT NOT NULL DEFAULT 'x'`))
	open := func(steps []sqldb.Step) error {
		db, err := sqldb.Open(ctx, dsn, "test")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		return db.Migrate(ctx, "test", steps)
	}
	for _, steps := range [][]sqldb.Step{v1, v1, v2, v2} {
		if err := open(steps); err != nil {
			t.Fatal(err)
		}
	}
	if len(ran) != 2 || ran[0] != 1 || ran[1] != 2 {
		t.Fatalf("steps ran %v, want [1 2]", ran)
	}
	err := open(v1)
	if err == nil || !strings.Contains(err.Error(), "version 2, newer than this mcpguard's 1") {
		t.Fatalf("an older release on a newer schema: %v", err)
	}
	// Placeholders, types and literals survive the translation: a '?' inside a string is data.
	db, err := sqldb.Open(ctx, dsn, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `INSERT INTO t (id, data, note) VALUES (?, ?, 'why?')`, 1<<40, []byte{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	var id int64
	var data []byte
	var note string
	if err := db.QueryRowContext(ctx, `SELECT id, data, note FROM t WHERE id = ? AND note = 'why?'`, 1<<40).Scan(&id, &data, &note); err != nil {
		t.Fatal(err)
	}
	if id != 1<<40 || string(data) != "\x00\x01\x02" || note != "why?" {
		t.Errorf("read back %d %q %q", id, data, note)
	}
}
