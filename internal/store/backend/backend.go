// Package backend chooses the store implementation a DSN names: PostgreSQL for a postgres:// or
// postgresql:// URL, otherwise the SQLite database file it names. The program's wiring
// (cmd/mcpguard/wiring) uses it; the gateway receives the opened stores and imports no backend.
package backend

import (
	"context"
	"log/slog"
	"strings"

	"github.com/mcpguard/mcpguard/internal/store"
	"github.com/mcpguard/mcpguard/internal/store/postgres"
	"github.com/mcpguard/mcpguard/internal/store/sqlite"
)

// IsPostgres reports whether dsn names a PostgreSQL database.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Opener returns the function that opens the store a DSN names; the stores log to logger (nil
// discards).
func Opener(logger *slog.Logger) func(ctx context.Context, dsn string) (store.Store, error) {
	return func(ctx context.Context, dsn string) (store.Store, error) {
		if IsPostgres(dsn) {
			st, err := postgres.Open(ctx, dsn, &postgres.Options{Logger: logger})
			if err != nil {
				return nil, err
			}
			return st, nil
		}
		st, err := sqlite.Open(ctx, dsn, &sqlite.Options{Logger: logger})
		if err != nil {
			return nil, err
		}
		return st, nil
	}
}
