// Package store defines the durable storage contract of the audit log; store/sqlite and
// store/postgres implement it.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when a record or checkpoint does not exist.
var ErrNotFound = errors.New("store: not found")

// Record is one audit record as stored: the canonical bytes that are hashed, the tree hashes
// stored with it, and copies of a few fields as indexed columns for search. The copies are
// checked against Data by the verifier.
type Record struct {
	Seq       int64
	Time      time.Time
	Kind      string
	Principal string
	Tool      string
	Decision  string
	RequestID string
	// Data is the record's canonical encoding.
	Data []byte
	// Hashes are the Merkle tree hashes that become computable when this record is appended
	// (golang.org/x/mod/sumdb/tlog StoredHashes), 32 bytes each, level 0 first.
	Hashes []byte
	// Subjects are the commitments of the data subjects the record is about; a store that
	// implements Compliance indexes them for Query.Subject. Append reads them; reads leave them
	// empty.
	Subjects []string
}

// Checkpoint is a signed statement of the tree's size and root hash.
type Checkpoint struct {
	Size int64
	Time time.Time
	// Note is the signed note (C2SP checkpoint text and signature lines).
	Note []byte
}

// Query selects records for search and export. Zero fields match everything.
type Query struct {
	Principal string
	Tool      string
	Decision  string
	Kind      string
	Since     time.Time // inclusive
	Until     time.Time // exclusive
	AfterSeq  int64     // only records with Seq > AfterSeq; -1 for all
	// Subject selects the records about the subject with this commitment (stores that
	// implement Compliance; the others refuse the query).
	Subject string
	Limit   int // 0: no limit
}

// Store is the contract the audit log is written through. Implementations must be safe for
// concurrent use; the audit log is the only writer.
type Store interface {
	// Append writes the records in one transaction and returns only when it is durable. The
	// records' sequence numbers must continue the log exactly (the first is Size()).
	Append(ctx context.Context, recs []Record) error
	// Size returns the number of records (the highest sequence number plus one).
	Size(ctx context.Context) (int64, error)
	// TreeHashes returns the Hashes of the records with the given sequence numbers, in order.
	TreeHashes(ctx context.Context, seqs []int64) ([][]byte, error)
	// Get returns one record.
	Get(ctx context.Context, seq int64) (Record, error)
	// Scan calls fn for every record with Seq >= from, in sequence order.
	Scan(ctx context.Context, from int64, fn func(*Record) error) error
	// Search calls fn for the records matching q, in sequence order.
	Search(ctx context.Context, q Query, fn func(*Record) error) error
	// AddCheckpoint stores a checkpoint; adding the same size twice is an error.
	AddCheckpoint(ctx context.Context, c Checkpoint) error
	// Checkpoints returns every stored checkpoint, smallest size first.
	Checkpoints(ctx context.Context) ([]Checkpoint, error)
	Close() error
}

// Pipeliner is implemented by stores that can make a commit visible first and durable later, so
// that the audit log can write one batch while the previous one is being made durable. The
// audit log answers a record's caller only after a Sync that began after the record's
// AppendNoSync returned.
type Pipeliner interface {
	// AppendNoSync writes the records in one transaction that is committed but not yet durable:
	// later reads see them, a crash of the process keeps them, a power loss may not. The
	// records' sequence numbers must continue the log exactly, as for Append.
	AppendNoSync(ctx context.Context, recs []Record) error
	// Sync makes every record committed so far durable. An error poisons the store: fsync
	// errors cannot be retried (what reached the disk is unknown), so every later Append,
	// AppendNoSync and Sync fails until the store is reopened.
	Sync(ctx context.Context) error
}

// SerialCommitter is implemented by Pipeliners whose AppendNoSync may cost little beside Sync
// (SQLite's record segment: a write against an fsync). When CommitsAfterSync is true the audit
// log commits a batch only once the previous one is durable: committing during a Sync saves
// little there, and would split the records that arrive meanwhile across two Syncs.
type SerialCommitter interface {
	CommitsAfterSync() bool
}

// IndexChecker is implemented by stores whose search structures are derived from the records
// but kept outside the hashed data (SQLite's block summaries). An edited structure could hide
// records from search while every record still verifies, so the verifier asks the store to
// recompute them from the records' indexed columns, which it checks against the hashed data.
type IndexChecker interface {
	// CheckIndex returns nil when the search structures match the records, and otherwise an
	// error naming the first part that differs and the first record it covers (FirstSeq).
	CheckIndex(ctx context.Context) error
}

// SubjectIndexReader is implemented by stores that keep the subject index (Record.Subjects):
// it is kept outside the hashed data, so an edited index could hide a subject's records from an
// export while every record verifies; the verifier recomputes it from the records.
type SubjectIndexReader interface {
	// SubjectIndex calls fn with every entry of the subject index, ordered by seq, then key.
	SubjectIndex(ctx context.Context, fn func(seq int64, key string) error) error
}

// Deployment is implemented by stores that hold the logs of every instance of a deployment
// (PostgreSQL: docs/audit.md, "Many instances"), so that what concerns the whole deployment — a
// data subject's records, the erasures that destroyed keys, the records a legal hold covers —
// can be read across all of them.
type Deployment interface {
	// LogName is the name of the log this store writes.
	LogName() string
	// OtherLogs returns read-only views of the database's other logs.
	OtherLogs(ctx context.Context) ([]NamedLog, error)
}

// NamedLog is one log of a deployment, read-only.
type NamedLog struct {
	Name  string
	Store Store
}

// IndexMismatch is CheckIndex's error for search structures that differ from the records.
type IndexMismatch struct {
	FirstSeq int64  // the first record the differing part covers
	What     string // what differs
}

func (e *IndexMismatch) Error() string { return e.What }

// Compliance is the part of the contract that data-subject requests, retention and legal holds
// need (internal/gdpr, docs/gdpr.md): the per-subject keys kept outside the hashed records, the
// legal holds, and the pruning of records past their retention. Both backends implement it.
// Records are found by subject with Query.Subject, through an index the store keeps from
// Record.Subjects.
type Compliance interface {
	// PutSubjectKey stores k unless a key for k.Commitment exists, and returns the key stored
	// for that commitment (k, or the one that was there).
	PutSubjectKey(ctx context.Context, k SubjectKey) (SubjectKey, error)
	// SubjectKey returns the key stored for a commitment, or ErrNotFound.
	SubjectKey(ctx context.Context, commitment string) (SubjectKey, error)
	// DeleteSubjectKeys deletes the keys whose commitment or key id is listed and returns
	// those it deleted. Deleted keys are gone from the database, not only marked.
	DeleteSubjectKeys(ctx context.Context, commitments, keyIDs []string) ([]SubjectKey, error)
	// AddHold stores a legal hold; an id that exists already is an error.
	AddHold(ctx context.Context, h Hold) error
	// Holds returns every hold, released ones too, oldest first.
	Holds(ctx context.Context) ([]Hold, error)
	// ReleaseHold marks a hold released; ErrNotFound when no unreleased hold has the id.
	ReleaseHold(ctx context.Context, id string, at time.Time, by string) error
	// Prune replaces the Data of the listed records with their pruned form and drops them from
	// the subject index, in one transaction. The tree hashes and indexed columns are kept, so
	// the Merkle tree and every checkpoint still verify.
	Prune(ctx context.Context, recs []Pruned) error
}

// SubjectKey is one data subject's key: Wrapped is the key encrypted under the deployment's key
// encryption key, never the key itself.
type SubjectKey struct {
	Commitment string // the keyed commitment of the subject's identifier, hex
	KeyID      string // random, named in the records sealed under the key
	Wrapped    []byte
	Created    time.Time
}

// Hold is a legal hold: records it covers are neither pruned nor erased.
type Hold struct {
	ID string
	// Kind is "principal", "subject" or "range"; Value is the principal, or the subject's
	// commitment (never the identifier itself); From and Until bound a range (Until exclusive,
	// zero: open).
	Kind        string
	Value       string
	From, Until time.Time
	Reason      string
	Actor       string
	Created     time.Time
	Released    time.Time // zero while in force
	ReleasedBy  string
}

// Pruned is the replacement Data of one pruned record.
type Pruned struct {
	Seq  int64
	Data []byte
}
