// Package sqldb opens the small relational stores of the gateway — identities (API keys,
// operators, sessions, approvals, blocks) with their admin journal, and tool pins — on SQLite
// (one instance: a file) or PostgreSQL (a deployment of several instances sharing them), and
// lets one body of SQL serve both.
//
// The stores write their SQL once, in the dialect both accept: '?' placeholders, INTEGER and
// BLOB column types, ON CONFLICT upserts, RETURNING. On PostgreSQL, DB rewrites placeholders to
// $1, $2 …, and the column types of CREATE TABLE statements to BIGINT (SQLite's INTEGER is 64
// bits), BYTEA and identity keys. Its transactions take the database's write lock when they
// begin, on both: SQLite's BEGIN IMMEDIATE, and on PostgreSQL a transaction-scoped advisory
// lock, so that an act that reads, then writes, never interleaves with another writer's, on
// one instance or across many.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// PostgresConns is how many connections a store keeps to PostgreSQL.
const PostgresConns = 8

// IsPostgres reports whether dsn names a PostgreSQL database (postgres:// or postgresql://).
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Execer is what the stores read and write through: a DB or one of its transactions.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// DB is a database of either dialect.
type DB struct {
	db   *sql.DB
	pg   bool
	lock string // the advisory lock's key on PostgreSQL
	// rewritten caches rewrite's results by query text: the stores' queries are constants, so
	// each is translated once, not on every call. Bounded by maxRewritten.
	rewritten sync.Map
	nRewrite  atomic.Int32
}

// maxRewritten bounds the rewrite cache; past it, queries are translated every time.
const maxRewritten = 1024

var _ Execer = (*DB)(nil)

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Open opens dsn: a PostgreSQL URL, or the path of a SQLite file, created readable by its
// owner only (the stores hold password hashes and TOTP secrets). On PostgreSQL the tables are
// in the schema the DSN's search_path names (created when missing; default public); the
// password comes from the DSN, PGPASSWORD or ~/.pgpass. what names the store in errors.
func Open(ctx context.Context, dsn, what string) (*DB, error) {
	if IsPostgres(dsn) {
		return openPostgres(ctx, dsn, what)
	}
	f, err := os.OpenFile(dsn, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s database %s: %w", what, dsn, err)
	}
	f.Close()
	if err := os.Chmod(dsn, 0o600); err != nil {
		return nil, fmt.Errorf("restrict %s database %s to its owner: %w", what, dsn, err)
	}
	// Transactions take the write lock when they begin (_txlock=immediate): an act reads, then
	// writes, and a deferred transaction could not upgrade its read snapshot once another
	// connection had written.
	db, err := sql.Open("sqlite", "file:"+dsn+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(5000)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open %s database %s: %w", what, dsn, err)
	}
	db.SetMaxOpenConns(4)
	return &DB{db: db}, nil
}

func openPostgres(ctx context.Context, dsn, what string) (*DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", what, err)
	}
	cfg.RuntimeParams["synchronous_commit"] = "on"
	schema := cfg.RuntimeParams["search_path"]
	if schema == "" {
		schema = "public"
	}
	if !identifier.MatchString(schema) {
		return nil, fmt.Errorf("open %s database: search_path %q: name one schema, a lower-case SQL identifier", what, schema)
	}
	cfg.RuntimeParams["search_path"] = schema
	db := stdlib.OpenDB(*cfg)
	// Every call reads its API key here: enough connections for a loaded instance, all kept
	// open (database/sql keeps 2 idle by default and would close and redial the others, a
	// new server process each time).
	db.SetMaxOpenConns(PostgresConns)
	db.SetMaxIdleConns(PostgresConns)
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s database: create schema %s: %w", what, schema, err)
	}
	return &DB{db: db, pg: true, lock: "mcpguard " + what + " " + schema}, nil
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// Postgres reports whether the database is PostgreSQL.
func (d *DB) Postgres() bool { return d.pg }

// SkipLocked is the clause that makes a SELECT … FOR UPDATE of rows to claim skip the rows
// another transaction is claiming: " FOR UPDATE SKIP LOCKED" on PostgreSQL; "" on SQLite,
// whose writers are serialized anyway.
func (d *DB) SkipLocked() string {
	if d.pg {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// ExecContext runs a statement (statements, without arguments).
func (d *DB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return d.db.ExecContext(ctx, d.rewrite(query), args...)
}

// QueryContext runs a query.
func (d *DB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return d.db.QueryContext(ctx, d.rewrite(query), args...)
}

// QueryRowContext runs a query of one row.
func (d *DB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return d.db.QueryRowContext(ctx, d.rewrite(query), args...)
}

// Tx is a transaction that holds the database's write lock.
type Tx struct {
	tx *sql.Tx
	d  *DB
}

var _ Execer = (*Tx)(nil)

// Begin starts a transaction holding the write lock (module comment).
func (d *DB) Begin(ctx context.Context) (*Tx, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	if d.pg {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", d.lock); err != nil {
			tx.Rollback()
			return nil, err
		}
	}
	return &Tx{tx: tx, d: d}, nil
}

// ExecContext runs a statement in the transaction.
func (t *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.d.rewrite(query), args...)
}

// QueryContext runs a query in the transaction.
func (t *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.d.rewrite(query), args...)
}

// QueryRowContext runs a query of one row in the transaction.
func (t *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.d.rewrite(query), args...)
}

// Commit commits the transaction.
func (t *Tx) Commit() error { return t.tx.Commit() }

// Rollback ends the transaction without its changes (after Commit: nothing).
func (t *Tx) Rollback() error { return t.tx.Rollback() }

// HasColumn reports whether table has column (for a store's additive migrations).
func (t *Tx) HasColumn(ctx context.Context, table, column string) (bool, error) {
	q := `SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`
	if t.d.pg {
		q = `SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? AND column_name = ?`
	}
	var n int
	if err := t.QueryRowContext(ctx, q, table, column).Scan(&n); err != nil {
		return false, err
	}
	return n > 0, nil
}

var ddlTypes = strings.NewReplacer(
	"INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
	"INTEGER", "BIGINT",
	"BLOB", "BYTEA",
)

// rewrite turns SQL written for both dialects into PostgreSQL's: '?' placeholders outside
// string literals become $1, $2 …, and the column types of table definitions (statements that
// create or alter a table) become PostgreSQL's. On SQLite it is the identity.
func (d *DB) rewrite(q string) string {
	if !d.pg {
		return q
	}
	if r, ok := d.rewritten.Load(q); ok {
		return r.(string)
	}
	r := translate(q)
	if d.nRewrite.Add(1) <= maxRewritten {
		d.rewritten.Store(q, r)
	}
	return r
}

// translate is rewrite's translation of one query.
func translate(q string) string {
	if head := strings.ToUpper(strings.TrimSpace(q)); strings.HasPrefix(head, "CREATE TABLE") || strings.HasPrefix(head, "ALTER TABLE") {
		q = ddlTypes.Replace(q)
	}
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n, quoted := 0, false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Postgres reports whether the transaction's database is PostgreSQL.
func (t *Tx) Postgres() bool { return t.d.pg }

// Step is one version of a store's schema: it brings the schema from the version before it to
// its own. A released step is never edited; a change is a new step.
type Step func(ctx context.Context, tx *Tx) error

// Migrate brings the schema of a store (what, as named in messages) to len(steps), in one
// transaction holding the write lock, so that instances starting together wait for each
// other. The version is kept in the table mcpguard_schema; a database at a version newer than
// len(steps) — migrated by a newer mcpguard — is refused, and nothing is changed.
func (d *DB) Migrate(ctx context.Context, what string, steps []Step) error {
	tx, err := d.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate the %s schema: %w", what, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS mcpguard_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrate the %s schema: %w", what, err)
	}
	var v int
	err = tx.QueryRowContext(ctx, `SELECT version FROM mcpguard_schema WHERE component = ?`, what).Scan(&v)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("migrate the %s schema: read its version: %w", what, err)
	}
	if v > len(steps) {
		return fmt.Errorf("the %s database's schema is at version %d, newer than this mcpguard's %d: run a release of mcpguard that knows it (a newer instance migrated it)", what, v, len(steps))
	}
	for i := v; i < len(steps); i++ {
		if err := steps[i](ctx, tx); err != nil {
			return fmt.Errorf("migrate the %s schema to version %d: %w", what, i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO mcpguard_schema (component, version) VALUES (?, ?)
		ON CONFLICT (component) DO UPDATE SET version = excluded.version`, what, len(steps)); err != nil {
		return fmt.Errorf("migrate the %s schema: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate the %s schema: %w", what, err)
	}
	return nil
}

// Statements is a Step that runs each statement in turn.
func Statements(stmts ...string) Step {
	return func(ctx context.Context, tx *Tx) error {
		for _, s := range stmts {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return err
			}
		}
		return nil
	}
}
