package keystore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/mcpguard/mcpguard/internal/contain"

	"github.com/mcpguard/mcpguard/internal/sqldb"
)

// BlockStore keeps the blocked addresses and suspended principals (contain.BlockStore) in the
// identity database, beside the principals they concern, so that a restart of the gateway or
// of Redis forgets none. Lifting one through the CLI goes through Store.Act, journaled.
type BlockStore struct {
	db *sqldb.DB
}

const blockSchema = `CREATE TABLE IF NOT EXISTS blocks (
	kind       TEXT NOT NULL,
	value      TEXT NOT NULL,
	reason     TEXT NOT NULL,
	actor      TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	repeat     INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (kind, value)
)`

// Blocks returns the store of blocks and suspensions over the identities database. It is closed
// with s.
func (s *Store) Blocks(ctx context.Context) (*BlockStore, error) {
	return &BlockStore{db: s.root}, nil
}

// PutBlock stores b, replacing the block of the same kind and value.
func (b *BlockStore) PutBlock(ctx context.Context, bl contain.Block) error {
	return putBlock(ctx, b.db, bl)
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func putBlock(ctx context.Context, db execer, bl contain.Block) error {
	if err := bl.Validate(); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO blocks (kind, value, reason, actor, created_at, expires_at, repeat)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (kind, value) DO UPDATE SET reason = excluded.reason, actor = excluded.actor,
			created_at = excluded.created_at, expires_at = excluded.expires_at, repeat = excluded.repeat`,
		bl.Kind, bl.Value, bl.Reason, bl.Actor, unix(bl.Created), unix(bl.Expires), bl.Repeat); err != nil {
		return fmt.Errorf("store %s block: %w", bl.Kind, err)
	}
	return nil
}

// LiftBlock removes the block of that kind and value, reporting whether there was one.
func (b *BlockStore) LiftBlock(ctx context.Context, kind, value string) (bool, error) {
	return liftBlock(ctx, b.db, kind, value)
}

func liftBlock(ctx context.Context, db execer, kind, value string) (bool, error) {
	res, err := db.ExecContext(ctx, `DELETE FROM blocks WHERE kind = ? AND value = ?`, kind, value)
	if err != nil {
		return false, fmt.Errorf("lift %s block: %w", kind, err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// Blocks deletes the blocks expired at now and returns at most limit of the others, the newest
// first.
func (b *BlockStore) Blocks(ctx context.Context, now time.Time, limit int) ([]contain.Block, error) {
	if _, err := b.db.ExecContext(ctx, `DELETE FROM blocks WHERE expires_at != 0 AND expires_at <= ?`, unix(now)); err != nil {
		return nil, fmt.Errorf("delete expired blocks: %w", err)
	}
	rows, err := b.db.QueryContext(ctx, `SELECT kind, value, reason, actor, created_at, expires_at, repeat
		FROM blocks ORDER BY created_at DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("read blocks: %w", err)
	}
	defer rows.Close()
	var out []contain.Block
	for rows.Next() {
		var bl contain.Block
		var created, expires int64
		if err := rows.Scan(&bl.Kind, &bl.Value, &bl.Reason, &bl.Actor, &created, &expires, &bl.Repeat); err != nil {
			return nil, fmt.Errorf("read blocks: %w", err)
		}
		bl.Created, bl.Expires = fromUnix(created), fromUnix(expires)
		out = append(out, bl)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read blocks: %w", err)
	}
	return out, nil
}

// PutBlock stores a block an operator puts in place, within an Act (journaled with it).
func (t Tx) PutBlock(ctx context.Context, bl contain.Block) error {
	return putBlock(ctx, t.Keys.db, bl)
}

// LiftBlock lifts a block within an Act (journaled with it).
func (t Tx) LiftBlock(ctx context.Context, kind, value string) (bool, error) {
	return liftBlock(ctx, t.Keys.db, kind, value)
}
