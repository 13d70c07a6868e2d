// Package postgres implements the audit store contract on PostgreSQL.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mcpguard/mcpguard/internal/store"
)

// Options configures the store.
type Options struct {
	Logger *slog.Logger
	// Schema holds the tables (default "public"); it is created when missing.
	Schema string
	// Conns is the number of connections (default 4): one is enough for the log's single
	// writer, the others serve search and verification.
	Conns int
	// Log names the log this store reads and writes among those the database holds: each
	// gateway instance of a deployment writes a log of its own (docs/audit.md, "Many
	// instances"). Empty is the default log of a single instance.
	Log string
	// Lease makes Open take the log's writer lease (waiting up to LeaseTTL for one that a
	// dead holder left to expire); without it the first write takes it, or fails when another
	// live holder has it. Only the lease holder appends records and checkpoints.
	Lease bool
	// LeaseTTL is how long the lease lasts unless renewed (default DefaultLeaseTTL); the
	// holder renews it every third of it.
	LeaseTTL time.Duration
}

// DefaultLeaseTTL is the writer lease's default lifetime.
const DefaultLeaseTTL = 10 * time.Second

// Store is the PostgreSQL audit store.
type Store struct {
	cfg    *pgx.ConnConfig
	schema string
	log    string
	conns  chan *pgx.Conn
	logger *slog.Logger
	closed chan struct{}
	lease  lease
	view   bool // a read-only view of another log, sharing the connections (OtherLogs)
}

var (
	_ store.Store      = (*Store)(nil)
	_ store.Compliance = (*Store)(nil)
	_ store.Deployment = (*Store)(nil)
)

var (
	identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
	logName    = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)
)

// ValidLogName reports whether name may name a log: lower-case letters, digits, '.', '_' and
// '-', at most 63, starting with a letter or digit (or empty, the default log).
func ValidLogName(name string) bool { return name == "" || logName.MatchString(name) }

// Open connects to the database named by dsn and creates the tables when missing. Every
// connection runs with synchronous_commit=on, so a committed append is on disk.
func Open(ctx context.Context, dsn string, opts *Options) (*Store, error) {
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if o.Schema == "" {
		o.Schema = "public"
	}
	if !identifier.MatchString(o.Schema) {
		return nil, fmt.Errorf("open audit database: schema %q must be a lower-case SQL identifier", o.Schema)
	}
	if !ValidLogName(o.Log) {
		return nil, fmt.Errorf("open audit database: log name %q: use lower-case letters, digits, '.', '_' and '-' (at most 63, starting with a letter or digit)", o.Log)
	}
	if o.Conns <= 0 {
		o.Conns = 4
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open audit database: %w", err)
	}
	cfg.RuntimeParams["synchronous_commit"] = "on"
	s := &Store{cfg: cfg, schema: o.Schema, log: o.Log, conns: make(chan *pgx.Conn, o.Conns), logger: o.Logger, closed: make(chan struct{})}
	s.lease.ttl = o.LeaseTTL
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	for range o.Conns {
		s.conns <- nil // dialled on first use
	}
	if err := s.with(ctx, func(c *pgx.Conn) error { return migrate(ctx, c, s.schema) }); err != nil {
		s.Close()
		return nil, fmt.Errorf("open audit database: %w", err)
	}
	if o.Lease {
		if err := s.acquire(ctx, true); err != nil {
			s.Close()
			return nil, fmt.Errorf("open audit database: %w", err)
		}
	}
	return s, nil
}

// with runs fn on a connection of the pool, dialling it when needed. A connection that failed
// is dropped and dialled again next time.
func (s *Store) with(ctx context.Context, fn func(*pgx.Conn) error) error {
	var c *pgx.Conn
	select {
	case c = <-s.conns:
	case <-s.closed:
		return errors.New("audit database: closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { s.conns <- c }()
	if c == nil || c.IsClosed() {
		var err error
		c, err = pgx.ConnectConfig(ctx, s.cfg)
		if err != nil {
			c = nil
			return fmt.Errorf("connect: %w", err)
		}
	}
	err := fn(c)
	if err != nil && c.PgConn().IsBusy() {
		// A half-read result leaves the connection unusable.
		c.Close(context.Background())
		c = nil
	}
	return err
}

// Close closes every connection (a view: nothing; its store closes them).
func (s *Store) Close() error {
	if s.view {
		return nil
	}
	select {
	case <-s.closed:
		return nil
	default:
	}
	s.release()
	close(s.closed)
	for range cap(s.conns) {
		if c := <-s.conns; c != nil {
			c.Close(context.Background())
		}
	}
	return nil
}

func (s *Store) table(name string) string { return s.schema + "." + name }

// Append writes recs with one INSERT of unnested arrays: one prepared statement whatever the
// batch size, one round trip, all rows or none. Outside a transaction block the statement is a
// transaction of its own, committed (and, with synchronous_commit=on, flushed) before it returns.
func (s *Store) Append(ctx context.Context, recs []store.Record) error {
	if len(recs) == 0 {
		return nil
	}
	n := len(recs)
	seqs, times := make([]int64, n), make([]int64, n)
	kinds, principals, tools, decisions, requestIDs := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	data, hashes := make([][]byte, n), make([][]byte, n)
	for i, r := range recs {
		seqs[i], times[i] = r.Seq, r.Time.UnixNano()
		kinds[i], principals[i], tools[i], decisions[i], requestIDs[i] = r.Kind, r.Principal, r.Tool, r.Decision, r.RequestID
		data[i], hashes[i] = r.Data, r.Hashes
	}
	var subjectSeqs []int64
	var commitments []string
	for _, r := range recs {
		for _, c := range r.Subjects {
			subjectSeqs, commitments = append(subjectSeqs, r.Seq), append(commitments, c)
		}
	}
	token, err := s.writerToken(ctx)
	if err != nil {
		return fmt.Errorf("append audit records %d..%d: %w", recs[0].Seq, recs[len(recs)-1].Seq, err)
	}
	// The insert is fenced by the lease: it writes only while the lease row still carries this
	// holder's token, and its update holds that row locked until the insert commits, so a taker
	// waits for it, and every insert after a takeover writes nothing.
	insert := "WITH lease AS (UPDATE " + s.table("audit_logs") + " SET size = GREATEST(size, $12) WHERE name = $10 AND token = $11 RETURNING name) " +
		"INSERT INTO " + s.table("audit_records") + " (log, " + columns + ") SELECT lease.name, u.* FROM lease, unnest(" +
		"$1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bytea[], $9::bytea[]) AS u"
	args := []any{seqs, times, kinds, principals, tools, decisions, requestIDs, data, hashes, s.log, token, recs[n-1].Seq + 1}
	fenced := func(tag pgconn.CommandTag) error {
		if tag.RowsAffected() != int64(n) {
			return s.fenced()
		}
		return nil
	}
	err = s.with(ctx, func(c *pgx.Conn) error {
		if len(commitments) == 0 {
			tag, err := c.Exec(ctx, insert, args...)
			if err != nil {
				return err
			}
			return fenced(tag)
		}
		// Records about data subjects and their index rows commit together.
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, insert, args...)
			if err != nil {
				return err
			}
			if err := fenced(tag); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, "INSERT INTO "+s.table("audit_subjects")+" (log, commitment, seq) SELECT $3, u.* FROM unnest($1::text[], $2::bigint[]) AS u ON CONFLICT DO NOTHING",
				commitments, subjectSeqs, s.log)
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("append audit records %d..%d: %w", recs[0].Seq, recs[len(recs)-1].Seq, err)
	}
	return nil
}

// Size returns the highest sequence number plus one.
func (s *Store) Size(ctx context.Context) (int64, error) {
	var n *int64
	err := s.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, "SELECT MAX(seq) FROM "+s.table("audit_records")+" WHERE log = $1", s.log).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("audit log size: %w", err)
	}
	if n == nil {
		return 0, nil
	}
	return *n + 1, nil
}

// TreeHashes returns the stored tree hashes of the given records.
func (s *Store) TreeHashes(ctx context.Context, seqs []int64) ([][]byte, error) {
	out := make([][]byte, len(seqs))
	err := s.with(ctx, func(c *pgx.Conn) error {
		for i, seq := range seqs {
			if err := c.QueryRow(ctx, "SELECT hashes FROM "+s.table("audit_records")+" WHERE log = $1 AND seq = $2", s.log, seq).Scan(&out[i]); err != nil {
				if errors.Is(err, pgx.ErrNoRows) {
					return fmt.Errorf("tree hashes of record %d: %w", seq, store.ErrNotFound)
				}
				return fmt.Errorf("tree hashes of record %d: %w", seq, err)
			}
		}
		return nil
	})
	return out, err
}

const columns = "seq, time_ns, kind, principal, tool, decision, request_id, record, hashes"

// Get returns one record.
func (s *Store) Get(ctx context.Context, seq int64) (store.Record, error) {
	var r store.Record
	found := false
	err := s.query(ctx, "SELECT "+columns+" FROM "+s.table("audit_records")+" WHERE log = $1 AND seq = $2", []any{s.log, seq}, func(rec *store.Record) error {
		r, found = *rec, true
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("audit record %d: %w", seq, err)
	}
	if !found {
		return r, fmt.Errorf("audit record %d: %w", seq, store.ErrNotFound)
	}
	return r, nil
}

// Scan calls fn for every record from seq on, in order.
func (s *Store) Scan(ctx context.Context, from int64, fn func(*store.Record) error) error {
	return s.query(ctx, "SELECT "+columns+" FROM "+s.table("audit_records")+" WHERE log = $1 AND seq >= $2 ORDER BY seq", []any{s.log, from}, fn)
}

// Search calls fn for the records matching q.
func (s *Store) Search(ctx context.Context, q store.Query, fn func(*store.Record) error) error {
	where := []string{"log = $1", "seq > $2"}
	args := []any{s.log, q.AfterSeq}
	add := func(col string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(col, len(args)))
	}
	if q.Principal != "" {
		add("principal = $%d", q.Principal)
	}
	if q.Tool != "" {
		add("tool = $%d", q.Tool)
	}
	if q.Decision != "" {
		add("decision = $%d", q.Decision)
	}
	if q.Kind != "" {
		add("kind = $%d", q.Kind)
	}
	if q.Subject != "" {
		add("seq IN (SELECT seq FROM "+s.table("audit_subjects")+" WHERE log = $1 AND commitment = $%d)", q.Subject)
	}
	if !q.Since.IsZero() {
		add("time_ns >= $%d", q.Since.UnixNano())
	}
	if !q.Until.IsZero() {
		add("time_ns < $%d", q.Until.UnixNano())
	}
	text := "SELECT " + columns + " FROM " + s.table("audit_records") + " WHERE " + strings.Join(where, " AND ") + " ORDER BY seq"
	if q.Limit > 0 {
		text += fmt.Sprintf(" LIMIT %d", q.Limit)
	}
	return s.query(ctx, text, args, fn)
}

func (s *Store) query(ctx context.Context, q string, args []any, fn func(*store.Record) error) error {
	return s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("read audit records: %w", err)
		}
		defer rows.Close()
		var r store.Record
		var ns int64
		for rows.Next() {
			if err := rows.Scan(&r.Seq, &ns, &r.Kind, &r.Principal, &r.Tool, &r.Decision, &r.RequestID, &r.Data, &r.Hashes); err != nil {
				return fmt.Errorf("read audit records: %w", err)
			}
			r.Time = time.Unix(0, ns).UTC()
			if err := fn(&r); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read audit records: %w", err)
		}
		return nil
	})
}

// AddCheckpoint stores a checkpoint, fenced by the lease as Append is.
func (s *Store) AddCheckpoint(ctx context.Context, c store.Checkpoint) error {
	token, err := s.writerToken(ctx)
	if err == nil {
		err = s.with(ctx, func(conn *pgx.Conn) error {
			tag, err := conn.Exec(ctx, "WITH lease AS (UPDATE "+s.table("audit_logs")+" SET checkpoint_size = GREATEST(checkpoint_size, $1) WHERE name = $4 AND token = $5 RETURNING name) "+
				"INSERT INTO "+s.table("audit_checkpoints")+" (log, size, time_ns, note) SELECT lease.name, $1, $2, $3 FROM lease", c.Size, c.Time.UnixNano(), c.Note, s.log, token)
			if err == nil && tag.RowsAffected() != 1 {
				err = s.fenced()
			}
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("store checkpoint at size %d: %w", c.Size, err)
	}
	return nil
}

// Checkpoints returns every checkpoint, smallest size first.
func (s *Store) Checkpoints(ctx context.Context) ([]store.Checkpoint, error) {
	var out []store.Checkpoint
	err := s.with(ctx, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, "SELECT size, time_ns, note FROM "+s.table("audit_checkpoints")+" WHERE log = $1 ORDER BY size", s.log)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c store.Checkpoint
			var ns int64
			if err := rows.Scan(&c.Size, &ns, &c.Note); err != nil {
				return err
			}
			c.Time = time.Unix(0, ns).UTC()
			out = append(out, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	return out, nil
}
