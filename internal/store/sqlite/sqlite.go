// Package sqlite implements the audit store contract on an embedded SQLite database in WAL mode.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/bits"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/mcpguard/mcpguard/internal/store"
)

const schema = `
CREATE TABLE IF NOT EXISTS audit_records (
	seq        INTEGER PRIMARY KEY,
	time_ns    INTEGER NOT NULL,
	kind       TEXT NOT NULL,
	principal  TEXT NOT NULL,
	tool       TEXT NOT NULL,
	decision   TEXT NOT NULL,
	request_id TEXT NOT NULL,
	record     BLOB NOT NULL,
	hashes     BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_blocks (
	block       INTEGER PRIMARY KEY,
	min_time_ns INTEGER NOT NULL,
	max_time_ns INTEGER NOT NULL,
	principals  TEXT,
	tools       TEXT
);
CREATE TABLE IF NOT EXISTS audit_checkpoints (
	size    INTEGER PRIMARY KEY,
	time_ns INTEGER NOT NULL,
	note    BLOB NOT NULL
);
` + complianceSchema

// Options configures the store.
type Options struct {
	Logger *slog.Logger
	// ReadOnly opens the database for reading only (verification, search).
	ReadOnly bool
	// Writer opens the database for the process that writes the log: appends (AppendNoSync)
	// are made durable in the record segment and reach the database shortly after (segment.go).
	// The segment is locked while the store is open, so a second writer is refused. Any other
	// writable open adds the records a crashed writer's segment holds, if no process holds it.
	Writer bool
}

// One INSERT statement writes at most 1<<maxInsertShift rows (9 parameters each, far below
// SQLite's limit of 32766).
const maxInsertShift = 8

// Store is the SQLite audit store.
type Store struct {
	db       *sql.DB
	logger   *slog.Logger
	readOnly bool

	// wmu serialises appends on w, one connection kept for writing: its page cache stays warm
	// and its statements stay prepared.
	wmu sync.Mutex
	w   *sql.Conn
	// inserts[k] writes 1<<k rows in one statement, prepared on w.
	inserts [maxInsertShift + 1]*sql.Stmt
	args    []any
	// upsert writes a block summary, prepared on w; cur is the summary of the last block
	// appended to, as committed (nil: read it from the table at the next append).
	upsert *sql.Stmt
	cur    *blockSummary
	// subjectInsert adds a row to the subject index, prepared on w.
	subjectInsert *sql.Stmt

	// summarized: Search may prune with the block summaries (see summariesUsable).
	summarized bool

	path string
	// writers counts the writing connections opened; Sync trusts wal while it is unchanged.
	writers atomic.Int64
	// smu serialises Sync; wal is the write-ahead log it fsyncs, kept open between calls, and
	// walInfo and walWriter identify it.
	smu       sync.Mutex
	wal       *os.File
	walInfo   os.FileInfo
	walWriter int64
	// syncErr is set by the first failed Sync and fails every later write.
	syncErr atomic.Pointer[error]

	// With Options.Writer, seg is the record segment (segment.go). gmu serialises writes to it
	// and guards next, the sequence number the log continues at. pending holds, in order, the
	// records written to the segment that the database lacks, guarded by pmu; they are taken
	// out only under wmu, by catchUp. The indexer goroutine adds them after indexDelay; wake
	// starts its wait, stop ends it and indexed is closed when it has ended. indexErr is the
	// error of the last failed addition, nil once one succeeds.
	gmu      sync.Mutex
	seg      *segment
	next     int64
	pmu      sync.Mutex
	pending  []store.Record
	wake     chan struct{}
	stop     chan struct{}
	indexed  chan struct{}
	indexErr atomic.Pointer[error]
	// tail, read-only, holds the records of the segment as it was at open (tail.go).
	tail []store.Record
}

var (
	_ store.Store      = (*Store)(nil)
	_ store.Pipeliner  = (*Store)(nil)
	_ store.Compliance = (*Store)(nil)
)

// Open opens (creating when needed) the database file at path, in WAL mode. Connections that
// read or store checkpoints use synchronous=FULL; the connection that appends records uses
// synchronous=NORMAL, so its commits do not wait for the disk, and Sync (or Append, which ends
// with it) fsyncs the WAL itself.
func Open(ctx context.Context, path string, opts *Options) (*Store, error) {
	if opts == nil {
		opts = &Options{}
	}
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open audit database %q: the path must be a plain file name", path)
	}
	// Reads go through a memory map (up to 1 GiB): a full scan, as verification does, then
	// costs no system call per page.
	dsn := path + "?_busy_timeout=10000&_journal_mode=WAL&_synchronous=FULL&_pragma=mmap_size(1073741824)"
	if opts.ReadOnly {
		dsn = "file:" + path + "?mode=ro&_busy_timeout=10000&_pragma=mmap_size(1073741824)"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open audit database %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{db: db, logger: logger, readOnly: opts.ReadOnly, path: path}
	if !opts.ReadOnly {
		if _, err := db.ExecContext(ctx, schema); err != nil {
			db.Close()
			return nil, fmt.Errorf("open audit database %s: create schema: %w", path, err)
		}
		if err := migrate(ctx, db); err != nil {
			db.Close()
			return nil, fmt.Errorf("open audit database %s: replace the search indexes with block summaries: %w", path, err)
		}
	}
	usable, err := summariesUsable(ctx, db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open audit database %s: %w", path, err)
	}
	s.summarized = usable
	if opts.ReadOnly {
		s.tail = readTail(path)
	} else if err := s.openSegment(ctx, opts.Writer); err != nil {
		db.Close()
		return nil, fmt.Errorf("open audit database %s: %w", path, err)
	}
	return s, nil
}

// DB exposes the database handle to tests in other packages that tamper with it.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database, after adding the records pending in the segment to it.
func (s *Store) Close() error {
	serr := s.closeSegment()
	s.wmu.Lock()
	s.dropWriter()
	s.wmu.Unlock()
	s.smu.Lock()
	if s.wal != nil {
		s.wal.Close()
		s.wal = nil
	}
	s.smu.Unlock()
	return errors.Join(serr, s.db.Close())
}

// Append writes recs in one transaction and returns once it is durable (AppendNoSync, then Sync)
// and, with a segment, in the database.
func (s *Store) Append(ctx context.Context, recs []store.Record) error {
	if err := s.AppendNoSync(ctx, recs); err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	if err := s.Sync(ctx); err != nil {
		return err
	}
	return s.catchUp(ctx)
}

// AppendNoSync writes recs to the segment, or without one in one transaction of a few
// multi-row statements on the writing connection, and returns once they are written, before
// they are on disk.
func (s *Store) AppendNoSync(ctx context.Context, recs []store.Record) error {
	if s.readOnly {
		return errors.New("append audit records: the database is open read-only")
	}
	if err := s.failed(); err != nil {
		return fmt.Errorf("append audit records: %w", err)
	}
	if len(recs) == 0 {
		return nil
	}
	if s.seg != nil {
		return s.appendSegment(ctx, recs)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.appendLocked(ctx, recs)
}

// appendLocked writes recs in one transaction; wmu is held.
func (s *Store) appendLocked(ctx context.Context, recs []store.Record) error {
	err := s.append(ctx, recs)
	if err != nil {
		s.cur = nil // it may hold what was rolled back; read it again from the table
	}
	if err != nil && (errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn)) {
		s.dropWriter() // the next append starts on a new connection
	}
	return err
}

func (s *Store) append(ctx context.Context, recs []store.Record) error {
	if s.w == nil {
		w, err := s.db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("append audit records: %w", err)
		}
		// A multi-row INSERT keeps a statement journal to undo itself alone; in memory it costs
		// no temporary file per transaction. It holds at most one statement's pages.
		// synchronous=NORMAL: a commit does not fsync the WAL (Sync does), but SQLite still
		// syncs the WAL before copying it into the database and the database after.
		for _, pragma := range []string{"PRAGMA temp_store=MEMORY", "PRAGMA synchronous=NORMAL"} {
			if _, err := w.ExecContext(ctx, pragma); err != nil {
				w.Close()
				return fmt.Errorf("append audit records: %w", err)
			}
		}
		s.w = w
		s.writers.Add(1)
	}
	if _, err := s.w.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("append audit records: begin: %w", err)
	}
	for rest := recs; len(rest) > 0; {
		// Power-of-two chunks: at most maxInsertShift+1 statements to prepare, ever.
		k := min(bits.Len(uint(len(rest)))-1, maxInsertShift)
		n := 1 << k
		if err := s.insertRows(ctx, k, rest[:n]); err != nil {
			s.rollback()
			return fmt.Errorf("append audit records %d..%d: %w", rest[0].Seq, rest[n-1].Seq, err)
		}
		rest = rest[n:]
	}
	if err := s.summarize(ctx, recs); err != nil {
		s.rollback()
		return fmt.Errorf("append audit records: block summary: %w", err)
	}
	if err := s.indexSubjects(ctx, recs); err != nil {
		s.rollback()
		return fmt.Errorf("append audit records: subject index: %w", err)
	}
	if _, err := s.w.ExecContext(ctx, "COMMIT"); err != nil {
		s.rollback()
		return fmt.Errorf("append audit records: commit: %w", err)
	}
	return nil
}

// Sync makes every committed append durable by fsyncing the write-ahead log. It runs
// concurrently with AppendNoSync: fsync acts on the file, whichever descriptor calls it, and
// covers every write that returned before it began. After a failure the store refuses every
// write until it is reopened.
func (s *Store) Sync(ctx context.Context) error {
	if s.readOnly {
		return nil
	}
	if err := s.failed(); err != nil {
		return fmt.Errorf("sync audit records: %w", err)
	}
	var err error
	if s.seg != nil {
		err = s.seg.sync()
	} else {
		err = s.syncDatabase()
	}
	if err != nil {
		return fmt.Errorf("sync audit records: %w", s.poison(err))
	}
	return nil
}

// poison makes err, a failed fsync, the store's: every later write fails with the first such
// error, which it returns.
func (s *Store) poison(err error) error {
	err = fmt.Errorf("audit database %s: fsync failed, so what reached the disk is unknown; reopen the store (restart mcpguard): %w", s.path, err)
	s.syncErr.CompareAndSwap(nil, &err)
	return *s.syncErr.Load()
}

// failed returns the error of the first failed Sync, if any.
func (s *Store) failed() error {
	if p := s.syncErr.Load(); p != nil {
		return *p
	}
	return nil
}

// syncDatabase makes every commit to the database durable (syncWAL, serialised by smu).
func (s *Store) syncDatabase() error {
	s.smu.Lock()
	defer s.smu.Unlock()
	return s.syncWAL()
}

// syncWAL fsyncs the write-ahead log. SQLite deletes the log only when the last connection
// to the database closes, after copying all of it into the database and syncing that, and may
// then create it anew. A connection in WAL mode keeps its shared lock on the database between
// transactions, so while the writing connection that committed since the last check is open
// the log cannot be replaced and the kept descriptor is used as it is (a stat per Sync costs a
// lone append about a tenth of its time). After a new writing connection, the descriptor is
// checked against the file at the path and reopened if they differ, and the directory is
// synced so that a new log's name is durable too.
func (s *Store) syncWAL() error {
	writer := s.writers.Load()
	if s.wal != nil && s.walWriter == writer {
		return s.wal.Sync()
	}
	name := s.path + "-wal"
	fi, err := os.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		// No log: every commit is in the database file.
		return syncPath(s.path)
	}
	if err != nil {
		return err
	}
	if s.wal != nil && !os.SameFile(s.walInfo, fi) {
		s.wal.Close()
		s.wal = nil
	}
	if s.wal == nil {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		held, err := f.Stat()
		if err == nil {
			err = syncPath(filepath.Dir(s.path))
		}
		if err != nil {
			f.Close()
			return err
		}
		s.wal, s.walInfo = f, held
	}
	s.walWriter = writer
	return s.wal.Sync()
}

// syncPath fsyncs the file or directory at path.
func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// insertRows writes recs, 1<<k of them, with one statement.
func (s *Store) insertRows(ctx context.Context, k int, recs []store.Record) error {
	st := s.inserts[k]
	if st == nil {
		q := "INSERT INTO audit_records (" + columns + ") VALUES " +
			strings.Repeat("(?,?,?,?,?,?,?,?,?),", len(recs)-1) + "(?,?,?,?,?,?,?,?,?)"
		var err error
		if st, err = s.w.PrepareContext(ctx, q); err != nil {
			return err
		}
		s.inserts[k] = st
	}
	args := s.args[:0]
	for _, r := range recs {
		args = append(args, r.Seq, r.Time.UnixNano(), r.Kind, r.Principal, r.Tool, r.Decision, r.RequestID, r.Data, r.Hashes)
	}
	_, err := st.ExecContext(ctx, args...)
	clear(args) // keep no record alive
	s.args = args[:0]
	return err
}

// rollback ends a failed transaction; it is an error SQLite may already have rolled back.
func (s *Store) rollback() {
	if _, err := s.w.ExecContext(context.Background(), "ROLLBACK"); err != nil && !strings.Contains(err.Error(), "no transaction is active") {
		s.logger.Warn("audit append not rolled back; the connection is replaced", "err", err)
		s.dropWriter()
	}
}

// dropWriter closes the writing connection and its statements.
func (s *Store) dropWriter() {
	for i, st := range s.inserts {
		if st != nil {
			st.Close()
			s.inserts[i] = nil
		}
	}
	if s.upsert != nil {
		s.upsert.Close()
		s.upsert = nil
	}
	if s.subjectInsert != nil {
		s.subjectInsert.Close()
		s.subjectInsert = nil
	}
	if s.w != nil {
		s.w.Close()
		s.w = nil
	}
}

// Size returns the highest sequence number plus one.
func (s *Store) Size(ctx context.Context) (int64, error) {
	if err := s.catchUp(ctx); err != nil {
		return 0, fmt.Errorf("audit log size: %w", err)
	}
	n, err := s.sizeOfTable(ctx)
	if t := s.tailFrom(n); err == nil && len(t) > 0 {
		n = t[len(t)-1].Seq + 1
	}
	return n, err
}

// TreeHashes returns the stored tree hashes of the given records.
func (s *Store) TreeHashes(ctx context.Context, seqs []int64) ([][]byte, error) {
	if err := s.catchUp(ctx); err != nil {
		return nil, err
	}
	out := make([][]byte, len(seqs))
	for i, seq := range seqs {
		if err := s.db.QueryRowContext(ctx, "SELECT hashes FROM audit_records WHERE seq = ?", seq).Scan(&out[i]); err != nil {
			if r := s.tailGet(seq); r != nil && errors.Is(err, sql.ErrNoRows) {
				out[i] = r.Hashes
				continue
			}
			if errors.Is(err, sql.ErrNoRows) {
				return nil, fmt.Errorf("tree hashes of record %d: %w", seq, store.ErrNotFound)
			}
			return nil, fmt.Errorf("tree hashes of record %d: %w", seq, err)
		}
	}
	return out, nil
}

const columns = "seq, time_ns, kind, principal, tool, decision, request_id, record, hashes"

func scanRow(rows *sql.Rows, r *store.Record) error {
	var ns int64
	if err := rows.Scan(&r.Seq, &ns, &r.Kind, &r.Principal, &r.Tool, &r.Decision, &r.RequestID, &r.Data, &r.Hashes); err != nil {
		return err
	}
	r.Time = time.Unix(0, ns).UTC()
	return nil
}

// Get returns one record.
func (s *Store) Get(ctx context.Context, seq int64) (store.Record, error) {
	if err := s.catchUp(ctx); err != nil {
		return store.Record{}, err
	}
	var r store.Record
	err := s.query(ctx, s.db, "SELECT "+columns+" FROM audit_records WHERE seq = ?", []any{seq}, func(rec *store.Record) error {
		r = *rec
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("audit record %d: %w", seq, err)
	}
	if t := s.tailGet(seq); r.Data == nil && t != nil {
		r = *t
		r.Subjects = nil
	}
	if r.Data == nil {
		return r, fmt.Errorf("audit record %d: %w", seq, store.ErrNotFound)
	}
	return r, nil
}

// Scan calls fn for every record from seq on, in order: a search with no filter.
func (s *Store) Scan(ctx context.Context, from int64, fn func(*store.Record) error) error {
	return s.Search(ctx, store.Query{AfterSeq: from - 1}, fn)
}

// Search calls fn for the records matching q. It reads the block summaries first and then
// only the blocks that can hold a match, in one read transaction.
func (s *Store) Search(ctx context.Context, q store.Query, fn func(*store.Record) error) (err error) {
	if err := s.catchUp(ctx); err != nil {
		return err
	}
	where := []string{"seq > ?"}
	args := []any{q.AfterSeq}
	add := func(cond string, v any) {
		where = append(where, cond)
		args = append(args, v)
	}
	n, err := s.bound(ctx)
	if err != nil {
		return fmt.Errorf("search audit records: %w", err)
	}
	if n >= 0 {
		// Below n from the database, the rest from the tail.
		add("seq < ?", n)
		found := 0
		inner := fn
		fn = func(r *store.Record) error {
			found++
			return inner(r)
		}
		defer func() {
			if err == nil && (q.Limit == 0 || found < q.Limit) {
				q.Limit = max(q.Limit-found, 0)
				err = s.scanTail(n, q, inner)
			}
		}()
	}
	if q.Principal != "" {
		add("principal = ?", q.Principal)
	}
	if q.Tool != "" {
		add("tool = ?", q.Tool)
	}
	if q.Decision != "" {
		add("decision = ?", q.Decision)
	}
	if q.Kind != "" {
		add("kind = ?", q.Kind)
	}
	if q.Subject != "" {
		add("seq IN (SELECT seq FROM audit_subjects WHERE commitment = ?)", q.Subject)
	}
	if !q.Since.IsZero() {
		add("time_ns >= ?", q.Since.UnixNano())
	}
	if !q.Until.IsZero() {
		add("time_ns < ?", q.Until.UnixNano())
	}
	filter := "SELECT " + columns + " FROM audit_records WHERE " + strings.Join(where, " AND ")
	prunes := q.Principal != "" || q.Tool != "" || !q.Since.IsZero() || !q.Until.IsZero()
	if !s.summarized || !prunes {
		sqlText := filter + " ORDER BY seq"
		if q.Limit > 0 {
			sqlText += fmt.Sprintf(" LIMIT %d", q.Limit)
		}
		return s.query(ctx, s.db, sqlText, args, fn)
	}
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("search audit records: %w", err)
	}
	defer tx.Rollback()
	ranges, err := searchRanges(ctx, tx, &q)
	if err != nil {
		return fmt.Errorf("search audit records: %w", err)
	}
	left := q.Limit
	counted := func(r *store.Record) error {
		left--
		return fn(r)
	}
	for _, r := range ranges {
		sqlText := filter + " AND seq BETWEEN ? AND ? ORDER BY seq"
		if q.Limit > 0 {
			if left <= 0 {
				break
			}
			sqlText += fmt.Sprintf(" LIMIT %d", left)
		}
		if err := s.query(ctx, tx, sqlText, append(args, r.lo, r.hi), counted); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) query(ctx context.Context, db execQuerier, q string, args []any, fn func(*store.Record) error) error {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("read audit records: %w", err)
	}
	defer rows.Close()
	var r store.Record
	for rows.Next() {
		if err := scanRow(rows, &r); err != nil {
			return fmt.Errorf("read audit records: %w", err)
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read audit records: %w", err)
	}
	return nil
}

// AddCheckpoint stores a checkpoint.
func (s *Store) AddCheckpoint(ctx context.Context, c store.Checkpoint) error {
	if err := s.catchUp(ctx); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, "INSERT INTO audit_checkpoints (size, time_ns, note) VALUES (?, ?, ?)", c.Size, c.Time.UnixNano(), c.Note); err != nil {
		return fmt.Errorf("store checkpoint at size %d: %w", c.Size, err)
	}
	return nil
}

// Checkpoints returns every checkpoint, smallest size first.
func (s *Store) Checkpoints(ctx context.Context) ([]store.Checkpoint, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT size, time_ns, note FROM audit_checkpoints ORDER BY size")
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	defer rows.Close()
	var out []store.Checkpoint
	for rows.Next() {
		var c store.Checkpoint
		var ns int64
		if err := rows.Scan(&c.Size, &ns, &c.Note); err != nil {
			return nil, fmt.Errorf("read checkpoints: %w", err)
		}
		c.Time = time.Unix(0, ns).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	return out, nil
}
