// Package backend chooses the store implementation a DSN names: PostgreSQL for a postgres:// or
// postgresql:// URL, otherwise the SQLite database file it names. The program's wiring
// (cmd/mcpguard/wiring) uses it; the gateway receives the opened stores and imports no backend.
package backend

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/mcpguard/mcpguard/internal/sqldb"
	"github.com/mcpguard/mcpguard/internal/store"
	"github.com/mcpguard/mcpguard/internal/store/postgres"
	"github.com/mcpguard/mcpguard/internal/store/sqlite"
)

// Options says which log of the database to open, and how.
type Options struct {
	Logger *slog.Logger // nil discards
	// Log, Schema and LeaseTTL are postgres.Options' (PostgreSQL only: a SQLite file holds
	// one log, written by one instance).
	Log      string
	Schema   string
	LeaseTTL time.Duration
	// Writer takes the log's writer lease at open (PostgreSQL), so that an instance that
	// would share another live instance's log is refused at start; on SQLite it writes the log
	// through the record segment, which it locks (sqlite.Options.Writer).
	Writer bool
}

// Open opens the store dsn names.
func Open(ctx context.Context, dsn string, o Options) (store.Store, error) {
	if sqldb.IsPostgres(dsn) {
		st, err := postgres.Open(ctx, dsn, &postgres.Options{Logger: o.Logger, Log: o.Log, Schema: o.Schema, LeaseTTL: o.LeaseTTL, Lease: o.Writer})
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	if o.Log != "" || o.Schema != "" {
		return nil, errors.New("audit.log and audit.schema name a log and a schema of a PostgreSQL database; a SQLite file holds the one log of one instance (remove them, or use a postgres:// DSN)")
	}
	st, err := sqlite.Open(ctx, dsn, &sqlite.Options{Logger: o.Logger, Writer: o.Writer})
	if err != nil {
		return nil, err
	}
	return st, nil
}
