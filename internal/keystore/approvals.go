package keystore

import (
	"context"
	"fmt"
	"time"

	"github.com/mcpguard/mcpguard/internal/sqldb"
)

// ApprovalStore keeps the calls held for a human decision (admin.Approvals) in the identity
// database, so that a pending or approved call survives a restart of the gateway. Each is stored
// as the registry's own encoding, which the store does not read, beside the time it expires. It
// implements admin.ApprovalStore.
type ApprovalStore struct {
	db *sqldb.DB
}

const approvalSchema = `CREATE TABLE IF NOT EXISTS approvals (
	id         TEXT PRIMARY KEY,
	expires_at INTEGER NOT NULL,
	record     BLOB NOT NULL
)`

// Approvals returns the store of held calls over the identities database. It is closed with s.
func (s *Store) Approvals(ctx context.Context) (*ApprovalStore, error) {
	return &ApprovalStore{db: s.root}, nil
}

// PutApproval stores the record of approval id, replacing the one stored before.
func (a *ApprovalStore) PutApproval(ctx context.Context, id string, expires time.Time, record []byte) error {
	if _, err := a.db.ExecContext(ctx, `INSERT INTO approvals (id, expires_at, record) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at, record = excluded.record`, id, unix(expires), record); err != nil {
		return fmt.Errorf("store approval %s: %w", id, err)
	}
	return nil
}

// DeleteApproval removes approval id (absent is not an error).
func (a *ApprovalStore) DeleteApproval(ctx context.Context, id string) error {
	if _, err := a.db.ExecContext(ctx, `DELETE FROM approvals WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete approval %s: %w", id, err)
	}
	return nil
}

// LoadApprovals deletes the approvals expired at now and returns the records of at most limit
// others, those expiring first.
func (a *ApprovalStore) LoadApprovals(ctx context.Context, now time.Time, limit int) ([][]byte, error) {
	if _, err := a.db.ExecContext(ctx, `DELETE FROM approvals WHERE expires_at <= ?`, unix(now)); err != nil {
		return nil, fmt.Errorf("delete expired approvals: %w", err)
	}
	rows, err := a.db.QueryContext(ctx, `SELECT record FROM approvals ORDER BY expires_at, id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("read approvals: %w", err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var rec []byte
		if err := rows.Scan(&rec); err != nil {
			return nil, fmt.Errorf("read approvals: %w", err)
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read approvals: %w", err)
	}
	return out, nil
}
