// Package pins guards against tools whose definitions change under the gateway (rug pulls and
// tool poisoning): it keeps the hash of every tool definition an operator approved, and says
// which listed tools match, which changed, and which are new or suspicious.
package pins

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/mcpguard/mcpguard/internal/journal"

	"github.com/mcpguard/mcpguard/internal/sqldb"
)

// State is what the gateway does with a listed tool.
type State int

const (
	// Approved: the definition matches the pinned one; the tool is served.
	Approved State = iota
	// Quarantined: the definition changed since it was approved, is new and trust-on-first-use
	// is off, or its description matches a screening pattern. The tool is hidden and its calls
	// are refused until an operator approves the definition.
	Quarantined
)

// Verdict is the state of one tool and why.
type Verdict struct {
	State  State
	Reason string // for a quarantined tool: "changed since approval", "new, awaiting approval", "description matches …"
	Hash   string
	// New is true when this listing quarantined the tool (or pinned it on first use): the
	// event the audit log records once.
	New bool
}

// Options configures a Pinner.
type Options struct {
	// TrustOnFirstUse pins a tool the first time it is seen instead of quarantining it.
	TrustOnFirstUse bool
	// Screen lists patterns a tool's description must not match (hidden instructions).
	Screen []*regexp.Regexp
	Now    func() time.Time
}

// Pinner decides tool states against the pins kept in a database shared with the CLI (a SQLite
// file, or PostgreSQL shared by the instances of a deployment).
type Pinner struct {
	db   *sqldb.DB
	opts Options

	mu   sync.Mutex
	last map[string]Verdict // exposed tool name → last verdict, for calls between listings
}

const schema = `
CREATE TABLE IF NOT EXISTS tool_pins (
	name        TEXT PRIMARY KEY,
	hash        TEXT NOT NULL,
	definition  TEXT NOT NULL,
	approved_at INTEGER NOT NULL,
	approved_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tool_pending (
	name       TEXT PRIMARY KEY,
	hash       TEXT NOT NULL,
	definition TEXT NOT NULL,
	reason     TEXT NOT NULL,
	seen_at    INTEGER NOT NULL
);`

// Open opens (creating if needed) the pin database path names: a SQLite file or a PostgreSQL
// DSN (sqldb.Open).
func Open(ctx context.Context, path string, opts *Options) (*Pinner, error) {
	// Approve reads, then writes: its transaction holds the write lock (sqldb).
	db, err := sqldb.Open(ctx, path, "tool pins")
	if err != nil {
		return nil, err
	}
	// Schema version 1: the pins, the definitions pending review and the admin journal.
	err = db.Migrate(ctx, "tool pins", []sqldb.Step{func(ctx context.Context, tx *sqldb.Tx) error {
		if err := sqldb.Statements(schema)(ctx, tx); err != nil {
			return err
		}
		return journal.Prepare(ctx, tx)
	}})
	if err != nil {
		db.Close()
		return nil, err
	}
	p := &Pinner{db: db, last: map[string]Verdict{}}
	if opts != nil {
		p.opts = *opts
	}
	if p.opts.Now == nil {
		p.opts.Now = time.Now
	}
	return p, nil
}

// Close closes the database.
func (p *Pinner) Close() error { return p.db.Close() }

// Journal is the admin journal of the pin database: approvals are recorded there, in the
// transaction that pins the definition, until the gateway drains them into the audit log.
func (p *Pinner) Journal() *journal.Table { return journal.NewTable("tool pins", p.db) }

// Canonical is a tool definition reduced to what a client relies on — name, title,
// description, schemas and annotations — with object keys sorted, so that the same definition
// always hashes the same whatever the upstream's key order.
func Canonical(tool []byte) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(tool, &m); err != nil {
		return nil, fmt.Errorf("tool definition: %w", err)
	}
	keep := map[string]any{}
	for _, k := range []string{"name", "title", "description", "inputSchema", "outputSchema", "annotations"} {
		if v, ok := m[k]; ok {
			keep[k] = v
		}
	}
	return json.Marshal(keep) // maps marshal with sorted keys
}

// Hash is the pin of a canonical definition.
func Hash(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Check decides the state of a listed tool (name is the name clients see) and records a new
// or changed definition for review.
func (p *Pinner) Check(ctx context.Context, name string, tool []byte) (Verdict, error) {
	canon, err := Canonical(tool)
	if err != nil {
		return Verdict{State: Quarantined, Reason: "the definition is not valid JSON"}, nil
	}
	h := Hash(canon)
	var pinned string
	err = p.db.QueryRowContext(ctx, `SELECT hash FROM tool_pins WHERE name = ?`, name).Scan(&pinned)
	v := Verdict{Hash: h}
	switch {
	case err == nil && pinned == h:
		v.State = Approved
	case err == nil:
		v.State, v.Reason = Quarantined, "its definition changed since it was approved"
	case errors.Is(err, sql.ErrNoRows):
		if reason := p.screen(tool); reason != "" {
			v.State, v.Reason = Quarantined, reason
		} else if p.opts.TrustOnFirstUse {
			if _, err := p.db.ExecContext(ctx, `INSERT INTO tool_pins (name, hash, definition, approved_at, approved_by) VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
				name, h, string(canon), p.opts.Now().UnixNano(), "trust-on-first-use"); err != nil {
				return v, fmt.Errorf("pin %s: %w", name, err)
			}
			v.State, v.New = Approved, true
		} else {
			v.State, v.Reason = Quarantined, "it is new and awaits approval"
		}
	default:
		return v, fmt.Errorf("read the pin of %s: %w", name, err)
	}
	if v.State == Quarantined {
		res, err := p.db.ExecContext(ctx, `INSERT INTO tool_pending (name, hash, definition, reason, seen_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT(name) DO UPDATE SET hash = excluded.hash, definition = excluded.definition, reason = excluded.reason, seen_at = excluded.seen_at
			WHERE tool_pending.hash <> excluded.hash`, name, h, string(canon), v.Reason, p.opts.Now().UnixNano())
		if err != nil {
			return v, fmt.Errorf("record the pending definition of %s: %w", name, err)
		}
		n, _ := res.RowsAffected()
		v.New = n > 0
	}
	p.mu.Lock()
	if len(p.last) < 100000 || p.last[name] != (Verdict{}) {
		p.last[name] = v
	}
	p.mu.Unlock()
	return v, nil
}

// Last returns the verdict of the tool's latest listing; ok is false if it was never listed.
// A quarantined verdict is checked against the database again, so an approval made with the
// CLI takes effect at once.
func (p *Pinner) Last(ctx context.Context, name string) (Verdict, bool) {
	p.mu.Lock()
	v, ok := p.last[name]
	p.mu.Unlock()
	if ok && v.State == Quarantined {
		var pinned string
		if err := p.db.QueryRowContext(ctx, `SELECT hash FROM tool_pins WHERE name = ?`, name).Scan(&pinned); err == nil && pinned == v.Hash {
			v.State, v.Reason = Approved, ""
			p.mu.Lock()
			p.last[name] = v
			p.mu.Unlock()
		}
	}
	return v, ok
}

func (p *Pinner) screen(tool []byte) string {
	if len(p.opts.Screen) == 0 {
		return ""
	}
	var t struct {
		Description string `json:"description"`
		Title       string `json:"title"`
	}
	_ = json.Unmarshal(tool, &t)
	for _, re := range p.opts.Screen {
		if re.MatchString(t.Description) || re.MatchString(t.Title) {
			return fmt.Sprintf("its description matches the screening pattern %q", re.String())
		}
	}
	return ""
}

// Pending is a definition awaiting review.
type Pending struct {
	Name, Hash, Reason string
	Definition         string // canonical JSON
	Approved           string // the approved canonical definition, "" for a new tool
	SeenAt             time.Time
}

// ListPending returns the definitions awaiting review, by name.
func (p *Pinner) ListPending(ctx context.Context) ([]Pending, error) {
	rows, err := p.db.QueryContext(ctx, `SELECT t.name, t.hash, t.reason, t.definition, COALESCE(p.definition, ''), t.seen_at
		FROM tool_pending t LEFT JOIN tool_pins p ON p.name = t.name WHERE p.hash IS NULL OR p.hash <> t.hash ORDER BY t.name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Pending
	for rows.Next() {
		var x Pending
		var seen int64
		if err := rows.Scan(&x.Name, &x.Hash, &x.Reason, &x.Definition, &x.Approved, &seen); err != nil {
			return nil, err
		}
		x.SeenAt = time.Unix(0, seen).UTC()
		out = append(out, x)
	}
	return out, rows.Err()
}

// Approve pins the pending definition of name, approved by the authenticated actor of act, and
// writes act (its target completed with the tool and the definition's digest) to the admin
// journal in the same transaction: no approval without its record. It returns the digest.
func (p *Pinner) Approve(ctx context.Context, name string, act *journal.Entry) (string, error) {
	if act == nil || act.Actor.Principal == "" {
		return "", errors.New("approve a tool definition: the approver must be an authenticated actor")
	}
	tx, err := p.db.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback()
	var h, def string
	if err := tx.QueryRowContext(ctx, `SELECT hash, definition FROM tool_pending WHERE name = ?`, name).Scan(&h, &def); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return "", fmt.Errorf("no definition of %q awaits approval (see tools pending): %w", name, ErrNothingPending)
		}
		return "", err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO tool_pins (name, hash, definition, approved_at, approved_by) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT(name) DO UPDATE SET hash = excluded.hash, definition = excluded.definition, approved_at = excluded.approved_at, approved_by = excluded.approved_by`,
		name, h, def, p.opts.Now().UnixNano(), act.Actor.Principal); err != nil {
		return "", err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM tool_pending WHERE name = ?`, name); err != nil {
		return "", err
	}
	act.Target.Tool, act.Target.Digest = name, h
	if err := journal.Write(ctx, tx, act); err != nil {
		return "", err
	}
	return h, tx.Commit()
}

// Record writes act, an approval that changed nothing (refused), to the admin journal.
func (p *Pinner) Record(ctx context.Context, act *journal.Entry) error {
	return journal.Write(ctx, p.db, act)
}

// ErrNothingPending is Approve's error for a tool with no definition awaiting approval.
var ErrNothingPending = errors.New("nothing pending")
