package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// migrations are the schema's versions, oldest first: migrations[i] brings a schema at version
// i to version i+1. A released step is never edited; a change is a new step.
var migrations = []string{
	// 1: one log per database.
	`
CREATE TABLE IF NOT EXISTS %[1]s.audit_records (
	seq        BIGINT PRIMARY KEY,
	time_ns    BIGINT NOT NULL,
	kind       TEXT NOT NULL,
	principal  TEXT NOT NULL,
	tool       TEXT NOT NULL,
	decision   TEXT NOT NULL,
	request_id TEXT NOT NULL,
	record     BYTEA NOT NULL,
	hashes     BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_records_time ON %[1]s.audit_records(time_ns);
CREATE INDEX IF NOT EXISTS audit_records_principal ON %[1]s.audit_records(principal, time_ns);
CREATE INDEX IF NOT EXISTS audit_records_tool ON %[1]s.audit_records(tool, time_ns);
CREATE TABLE IF NOT EXISTS %[1]s.audit_checkpoints (
	size    BIGINT PRIMARY KEY,
	time_ns BIGINT NOT NULL,
	note    BYTEA NOT NULL
);` + complianceSchema,
	// 2: one log per gateway instance, each with its writer lease (docs/audit.md, "Many
	// instances"). The records of version 1 become the default log, named "".
	`
ALTER TABLE %[1]s.audit_records ADD COLUMN log TEXT NOT NULL DEFAULT '';
ALTER TABLE %[1]s.audit_records DROP CONSTRAINT audit_records_pkey;
ALTER TABLE %[1]s.audit_records ADD PRIMARY KEY (log, seq);
DROP INDEX %[1]s.audit_records_time;
DROP INDEX %[1]s.audit_records_principal;
DROP INDEX %[1]s.audit_records_tool;
CREATE INDEX audit_records_time ON %[1]s.audit_records(log, time_ns);
CREATE INDEX audit_records_principal ON %[1]s.audit_records(log, principal, time_ns);
CREATE INDEX audit_records_tool ON %[1]s.audit_records(log, tool, time_ns);
ALTER TABLE %[1]s.audit_checkpoints ADD COLUMN log TEXT NOT NULL DEFAULT '';
ALTER TABLE %[1]s.audit_checkpoints DROP CONSTRAINT audit_checkpoints_pkey;
ALTER TABLE %[1]s.audit_checkpoints ADD PRIMARY KEY (log, size);
ALTER TABLE %[1]s.audit_subjects ADD COLUMN log TEXT NOT NULL DEFAULT '';
ALTER TABLE %[1]s.audit_subjects DROP CONSTRAINT audit_subjects_pkey;
ALTER TABLE %[1]s.audit_subjects ADD PRIMARY KEY (log, commitment, seq);
DROP INDEX %[1]s.audit_subjects_seq;
CREATE INDEX audit_subjects_seq ON %[1]s.audit_subjects(log, seq);
CREATE TABLE %[1]s.audit_logs (
	name            TEXT PRIMARY KEY,
	holder          TEXT NOT NULL DEFAULT '',
	token           BIGINT NOT NULL DEFAULT 0,
	expires_at      TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
	size            BIGINT NOT NULL DEFAULT 0,
	checkpoint_size BIGINT NOT NULL DEFAULT 0,
	created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO %[1]s.audit_logs (name, size) SELECT '', MAX(seq) + 1 FROM %[1]s.audit_records HAVING COUNT(*) > 0;`,
}

// SchemaVersion is the schema version this build writes and reads.
var SchemaVersion = len(migrations)

// migrate brings the schema to SchemaVersion in one transaction, under a lock that makes
// instances starting together wait for each other, and refuses a schema newer than this build.
func migrate(ctx context.Context, c *pgx.Conn, schema string) error {
	return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", "mcpguard schema "+schema); err != nil {
			return fmt.Errorf("lock the schema for migration: %w", err)
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf(`CREATE SCHEMA IF NOT EXISTS %[1]s;
CREATE TABLE IF NOT EXISTS %[1]s.mcpguard_migrations (version INT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now());`, schema)); err != nil {
			return fmt.Errorf("create schema %s: %w", schema, err)
		}
		var v int
		if err := tx.QueryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM "+schema+".mcpguard_migrations").Scan(&v); err != nil {
			return fmt.Errorf("read the schema version: %w", err)
		}
		if v > SchemaVersion {
			return fmt.Errorf("schema %s is at version %d, newer than this mcpguard's %d: run a release of mcpguard that knows it (a newer instance migrated it)", schema, v, SchemaVersion)
		}
		for i := v; i < SchemaVersion; i++ {
			if _, err := tx.Exec(ctx, fmt.Sprintf(migrations[i], schema)); err != nil {
				return fmt.Errorf("migrate schema %s to version %d: %w", schema, i+1, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO "+schema+".mcpguard_migrations (version) VALUES ($1)", i+1); err != nil {
				return fmt.Errorf("migrate schema %s to version %d: %w", schema, i+1, err)
			}
		}
		return nil
	})
}
