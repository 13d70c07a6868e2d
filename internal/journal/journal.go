// Package journal is the admin journal: an outbox table, in the same SQLite database as the
// state an administrative act changes, that holds the act's record written in the same
// transaction as the change, until the running gateway drains it into the audit log.
//
// The audit log has one writer, the gateway. The CLI (mcpguard keys, operators, tools) changes
// the identities and tool-pin databases directly, with or without a gateway running, so it
// cannot append to the log itself. Instead every act it performs writes an Entry in the same
// transaction as the change: the change and its record commit together or not at all. The
// gateway claims pending entries (Table.Claim), appends each to the audit log with the entry's
// id as the record's request_id, and marks it recorded (Table.Recorded).
//
// Exactly once: a claim is one UPDATE, so two gateways sharing a database never record the same
// entry in normal operation. An entry whose append may have happened but whose mark did not (a
// crash between the two, or an append that failed with an unknown outcome) comes back with
// Attempts > 1 once its claim lapses; the drainer then looks for its request_id in the log
// before appending it again.
package journal

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/mcpguard/mcpguard/internal/sqldb"
)

// Acts: an Entry's Act.
const (
	ActAPIKeyCreate      = "api_key.create"
	ActAPIKeyRevoke      = "api_key.revoke"
	ActOperatorCreate    = "operator.create"
	ActOperatorDisable   = "operator.disable"
	ActOperatorEnable    = "operator.enable"
	ActOperatorResetMFA  = "operator.reset_mfa"
	ActOperatorEnrollMFA = "operator.enroll_mfa"
	ActOperatorLogin     = "operator.login"
	ActToolApprove       = "tool.approve"
	ActBlockAdd          = "block.add"           // a client address blocked by an operator
	ActBlockLift         = "block.lift"          // an address block lifted
	ActPrincipalSuspend  = "principal.suspend"   // a principal suspended by an operator
	ActPrincipalResume   = "principal.unsuspend" // a suspension lifted
)

// Results: an Entry's Result.
const (
	ResultOK      = "ok"      // the act happened
	ResultRefused = "refused" // the act was attempted and refused: nothing changed but failure counters
)

// How an actor was authenticated: an Actor's AuthMethod.
const (
	AuthOperatorSession = "operator"      // an operator session token (mcps_…), as the admin API accepts it
	AuthPassword        = "password"      // the operator's own password: self-enrolment of TOTP only
	AuthPasswordTOTP    = "password+totp" // a login
	AuthBootstrap       = "bootstrap"     // no operator existed to authenticate anyone
)

// BootstrapPrincipal is the actor of acts made while no operator exists to authenticate.
const BootstrapPrincipal = "bootstrap"

const (
	maxField          = 256      // bytes of any text field kept in an entry
	maxEntryBytes     = 16 << 10 // an encoded entry
	defaultClaimBatch = 100
)

const schema = `CREATE TABLE IF NOT EXISTS admin_journal (
	seq         INTEGER PRIMARY KEY AUTOINCREMENT,
	id          TEXT NOT NULL UNIQUE,
	at          INTEGER NOT NULL,
	entry       TEXT NOT NULL,
	claimed_at  INTEGER NOT NULL DEFAULT 0,
	attempts    INTEGER NOT NULL DEFAULT 0,
	recorded_at INTEGER NOT NULL DEFAULT 0,
	audit_seq   INTEGER NOT NULL DEFAULT -1
)`

const pendingIndex = `CREATE INDEX IF NOT EXISTS admin_journal_pending ON admin_journal (recorded_at, seq)`

// Actor is who performed an act, as the CLI authenticated them.
type Actor struct {
	Principal  string   `json:"principal"`
	Roles      []string `json:"roles,omitempty"`
	AuthMethod string   `json:"auth_method"`           // AuthOperatorSession, AuthPassword, AuthPasswordTOTP, AuthBootstrap
	SessionRef string   `json:"session_ref,omitempty"` // the session's public reference (the first 4 bytes of its hash, hex)
	OSUser     string   `json:"os_user,omitempty"`     // the operating-system account that ran the CLI
	Host       string   `json:"host,omitempty"`        // the machine it ran on
}

// Target is what an act was done to. Never a secret: an API key is named by its public id.
type Target struct {
	KeyID     string   `json:"key_id,omitempty"`
	Principal string   `json:"principal,omitempty"` // an API key's principal
	Roles     []string `json:"roles,omitempty"`     // the roles an API key or operator is given
	Expires   string   `json:"expires,omitempty"`   // an API key's expiry (RFC 3339), "never"
	Operator  string   `json:"operator,omitempty"`
	Tool      string   `json:"tool,omitempty"`
	Digest    string   `json:"digest,omitempty"`  // the approved tool definition's hash
	Address   string   `json:"address,omitempty"` // a blocked client address
	Note      string   `json:"note,omitempty"`    // the operator's reason for a block or suspension
}

// Entry is one administrative act and its outcome.
type Entry struct {
	ID     string    `json:"id"` // random; the audit record's request_id
	Time   time.Time `json:"time"`
	Act    string    `json:"act"`
	Actor  Actor     `json:"actor"`
	Target Target    `json:"target"`
	Result string    `json:"result"`           // ResultOK or ResultRefused
	Reason string    `json:"reason,omitempty"` // why it was refused: "bad_password", "locked", "not_found", …
	// LockedUntil is set on a refused login that locked the account, or was refused because it
	// is locked.
	LockedUntil time.Time `json:"locked_until,omitzero"`
	// Via says where the act was made: "" (the CLI) or "console" (the operators' web console).
	Via string `json:"via,omitempty"`
	// Attempts is how many times the gateway claimed the entry (set by Claim).
	Attempts int `json:"-"`
}

// NewEntry returns an entry for act by actor, with a fresh id, at now.
func NewEntry(act string, actor Actor, now time.Time) *Entry {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return &Entry{ID: hex.EncodeToString(b[:]), Time: now.UTC(), Act: act, Actor: actor, Result: ResultOK}
}

// Refuse marks e refused for reason.
func (e *Entry) Refuse(reason string) { e.Result, e.Reason = ResultRefused, reason }

// Detail is the audit record's detail member for e: the act, its target, its result and how
// the actor reached it. The actor's principal, roles and authentication method go in the
// record's own fields.
func (e *Entry) Detail() json.RawMessage {
	d := struct {
		Act         string `json:"act"`
		Target      Target `json:"target"`
		Result      string `json:"result"`
		Reason      string `json:"reason,omitempty"`
		LockedUntil string `json:"locked_until,omitempty"`
		Via         string `json:"via"`
		SessionRef  string `json:"session_ref,omitempty"`
		OSUser      string `json:"os_user,omitempty"`
		Host        string `json:"host,omitempty"`
	}{Act: e.Act, Target: e.Target, Result: e.Result, Reason: e.Reason, Via: cmp.Or(e.Via, "cli"),
		SessionRef: e.Actor.SessionRef, OSUser: e.Actor.OSUser, Host: e.Actor.Host}
	if !e.LockedUntil.IsZero() {
		d.LockedUntil = e.LockedUntil.UTC().Format(time.RFC3339)
	}
	b, _ := json.Marshal(d)
	return b
}

// bound cuts s to maxField bytes (on a rune boundary), so that no field of an entry is unbounded.
func bound(s string) string {
	if len(s) <= maxField {
		return s
	}
	cut := maxField
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}

func boundAll(list []string) []string {
	if len(list) > 64 {
		list = list[:64]
	}
	out := slices.Clone(list)
	for i := range out {
		out[i] = bound(out[i])
	}
	return out
}

// encode bounds e's fields and encodes it.
func (e *Entry) encode() ([]byte, error) {
	c := *e
	c.Act, c.Reason = bound(c.Act), bound(c.Reason)
	c.Actor.Principal, c.Actor.AuthMethod, c.Actor.SessionRef = bound(c.Actor.Principal), bound(c.Actor.AuthMethod), bound(c.Actor.SessionRef)
	c.Actor.OSUser, c.Actor.Host, c.Actor.Roles = bound(c.Actor.OSUser), bound(c.Actor.Host), boundAll(c.Actor.Roles)
	t := &c.Target
	t.KeyID, t.Principal, t.Expires, t.Operator, t.Tool, t.Digest = bound(t.KeyID), bound(t.Principal), bound(t.Expires), bound(t.Operator), bound(t.Tool), bound(t.Digest)
	t.Address, t.Note = bound(t.Address), bound(t.Note)
	t.Roles = boundAll(t.Roles)
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("admin journal: encode %s: %w", e.Act, err)
	}
	if len(b) > maxEntryBytes {
		return nil, fmt.Errorf("admin journal: the record of %s is %d bytes, over %d", e.Act, len(b), maxEntryBytes)
	}
	return b, nil
}

// Execer is what Write needs: a transaction (or a connection) of the database being changed.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Prepare creates the journal table in db if it does not exist.
func Prepare(ctx context.Context, db Execer) error {
	for _, stmt := range []string{schema, pendingIndex} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("prepare the admin journal: %w", err)
		}
	}
	return nil
}

// Write adds e to the journal through tx: in the transaction that makes the change e records.
func Write(ctx context.Context, tx Execer, e *Entry) error {
	if e.ID == "" || e.Act == "" || e.Actor.Principal == "" || e.Actor.AuthMethod == "" {
		return fmt.Errorf("admin journal: an entry needs an id, an act and an authenticated actor (act %q, actor %q)", e.Act, e.Actor.Principal)
	}
	b, err := e.encode()
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO admin_journal (id, at, entry) VALUES (?, ?, ?)`, e.ID, e.Time.UnixNano(), string(b)); err != nil {
		return fmt.Errorf("admin journal: write %s: %w", e.Act, err)
	}
	return nil
}

// Table is one database's journal, as the gateway drains it.
type Table struct {
	name string // for messages: "identities", "tool pins"
	db   *sqldb.DB
}

// NewTable returns the journal of db, whose table Prepare has created; name says which
// database it is in messages.
func NewTable(name string, db *sqldb.DB) *Table { return &Table{name: name, db: db} }

// Name says which database the journal is in.
func (t *Table) Name() string { return t.name }

// Claim claims up to max pending entries (0: 100) whose earlier claim, if any, is older than
// lease, and returns them oldest first. A claim is one statement: of several gateways draining
// the same database, each entry goes to one.
func (t *Table) Claim(ctx context.Context, now time.Time, lease time.Duration, max int) ([]*Entry, error) {
	if max <= 0 {
		max = defaultClaimBatch
	}
	rows, err := t.db.QueryContext(ctx, `UPDATE admin_journal SET claimed_at = ?, attempts = attempts + 1
		WHERE seq IN (SELECT seq FROM admin_journal WHERE recorded_at = 0 AND claimed_at <= ? ORDER BY seq LIMIT ?`+t.db.SkipLocked()+`)
		RETURNING seq, entry, attempts`, now.UnixNano(), now.Add(-lease).UnixNano(), max)
	if err != nil {
		return nil, fmt.Errorf("claim %s journal entries: %w", t.name, err)
	}
	defer rows.Close()
	type claimed struct {
		seq int64
		e   *Entry
	}
	var list []claimed
	for rows.Next() {
		var seq int64
		var raw string
		var attempts int
		if err := rows.Scan(&seq, &raw, &attempts); err != nil {
			return nil, fmt.Errorf("claim %s journal entries: %w", t.name, err)
		}
		e := &Entry{}
		if err := json.Unmarshal([]byte(raw), e); err != nil {
			return nil, fmt.Errorf("%s journal entry %d: %w", t.name, seq, err)
		}
		e.Attempts = attempts
		list = append(list, claimed{seq, e})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim %s journal entries: %w", t.name, err)
	}
	slices.SortFunc(list, func(a, b claimed) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]*Entry, len(list))
	for i, c := range list {
		out[i] = c.e
	}
	return out, nil
}

// Recorded marks the entry id as written to the audit log as record auditSeq.
func (t *Table) Recorded(ctx context.Context, id string, auditSeq int64, now time.Time) error {
	if _, err := t.db.ExecContext(ctx, `UPDATE admin_journal SET recorded_at = ?, audit_seq = ? WHERE id = ?`, now.UnixNano(), auditSeq, id); err != nil {
		return fmt.Errorf("mark %s journal entry %s recorded: %w", t.name, id, err)
	}
	return nil
}

// Release gives the claim of entry id up, so that the next drain retries it at once.
func (t *Table) Release(ctx context.Context, id string) error {
	if _, err := t.db.ExecContext(ctx, `UPDATE admin_journal SET claimed_at = 0 WHERE id = ? AND recorded_at = 0`, id); err != nil {
		return fmt.Errorf("release %s journal entry %s: %w", t.name, id, err)
	}
	return nil
}

// Pending counts the entries not yet recorded in the audit log.
func (t *Table) Pending(ctx context.Context) (int, error) {
	var n int
	if err := t.db.QueryRowContext(ctx, `SELECT count(*) FROM admin_journal WHERE recorded_at = 0`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count %s journal entries: %w", t.name, err)
	}
	return n, nil
}
