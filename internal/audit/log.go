package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/mcpguard/mcpguard/internal/redact"
	"github.com/mcpguard/mcpguard/internal/store"
)

// ErrUnavailable wraps every failure to make a record durable. The gateway answers 503 and
// forwards nothing when Append returns it.
var ErrUnavailable = errors.New("audit log unavailable")

// Defaults for Options.
const (
	DefaultCheckpointEvery    = 10000
	DefaultCheckpointInterval = 10 * time.Second
	DefaultMaxBatch           = 4096
	DefaultMaxLinger          = time.Millisecond
	DefaultQueue              = 16384
	DefaultOrigin             = "mcpguard.audit/log"
)

// Options configures a Log. Signer is required for checkpoints; without it the log is still a
// Merkle tree, but truncation and replacement cannot be detected.
type Options struct {
	Logger   *slog.Logger
	Redactor *redact.Redactor // nil: arguments are stored as given (compacted)
	Signer   note.Signer
	// Origin is the first line of every checkpoint and names this log (default DefaultOrigin).
	Origin string
	// CheckpointDir receives a copy of every checkpoint, outside the database.
	CheckpointDir      string
	CheckpointEvery    int64         // records between checkpoints (default DefaultCheckpointEvery)
	CheckpointInterval time.Duration // at most this long between a record and its checkpoint
	MaxBatch           int           // records per transaction (default DefaultMaxBatch)
	// MaxLinger is how long a commit may wait for the callers the previous commit released
	// (default DefaultMaxLinger; negative: never wait). A lone caller never waits.
	MaxLinger time.Duration
	Queue     int // records waiting for the writer (default DefaultQueue)
	Now       func() time.Time
	// Sinks receive every batch after it is committed (export to a SIEM, internal/export).
	// The writer calls Offer on its own goroutine and never waits for delivery; Close closes
	// the sinks after the last batch, giving them SinkCloseTimeout to deliver what they hold.
	Sinks []Sink
}

// SinkCloseTimeout bounds how long Close lets the sinks deliver what they hold.
const SinkCloseTimeout = 5 * time.Second

// Sink receives records once they are durable. Implementations must be best-effort: a slow or
// unreachable destination must never hold up the log.
type Sink interface {
	// Offer hands over one committed batch, in sequence order, without blocking. The slice is
	// the sink's to keep.
	Offer([]Durable)
	// Close delivers what the sink holds until ctx ends and releases it.
	Close(ctx context.Context) error
}

// Durable is a record the store holds, as handed to a Sink.
type Durable struct {
	Seq  int64
	Time time.Time
	Kind Kind
	// Data is the record's canonical encoding (arguments already redacted); do not modify it.
	Data []byte
}

// Log appends records to a store with group commit and signs checkpoints over them.
type Log struct {
	st     store.Store
	opts   Options
	logger *slog.Logger
	now    func() time.Time

	queue  chan *pending
	done   chan struct{}
	closed chan struct{}
	// mu orders Append's enqueue before Close's final drain.
	mu       sync.RWMutex
	isClosed bool

	// Owned by the writer goroutine.
	size     int64
	frontier frontier
	lastCP   int64
	lastCPAt time.Time
}

type pending struct {
	body []byte
	rec  *Record
	seq  int64
	err  chan error
}

// Open starts a log on st, continuing the records already there.
func Open(ctx context.Context, st store.Store, opts *Options) (*Log, error) {
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if o.Origin == "" {
		o.Origin = DefaultOrigin
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = DefaultCheckpointEvery
	}
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = DefaultCheckpointInterval
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.MaxLinger == 0 {
		o.MaxLinger = DefaultMaxLinger
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &Log{st: st, opts: o, logger: o.Logger, now: o.Now,
		queue: make(chan *pending, o.Queue), done: make(chan struct{}), closed: make(chan struct{})}
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	if err := l.load(ctx); err != nil {
		return nil, err
	}
	go l.run()
	return l, nil
}

// load reads the log's size and newest checkpoint from the store.
func (l *Log) load(ctx context.Context) error {
	n, err := l.st.Size(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	l.size = n
	l.frontier = frontier{}
	cps, err := l.st.Checkpoints(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	l.lastCP, l.lastCPAt = 0, l.now()
	if len(cps) > 0 {
		l.lastCP = cps[len(cps)-1].Size
		l.lastCPAt = cps[len(cps)-1].Time
	}
	return nil
}

// Append redacts rec's arguments, writes it, and returns its sequence number once it is durable.
// Concurrent calls share one transaction. Any failure wraps ErrUnavailable; the record may then
// or may not have been written, but never partially. rec.Seq and rec.Version are set, and
// rec.Arguments and rec.Detail are replaced by their redacted form. If ctx ends before the
// record is queued, Append fails; once queued, it waits for the commit's verdict.
func (l *Log) Append(ctx context.Context, rec *Record) (int64, error) {
	if rec.Time.IsZero() {
		rec.Time = l.now()
	}
	rec.Version = SchemaVersion
	if len(rec.Arguments) > 0 {
		rec.Arguments, rec.Redactions = l.redact(rec.Arguments)
	}
	if len(rec.Detail) > 0 {
		rec.Detail, _ = l.redact(rec.Detail)
	}
	b, err := encodeBody(rec)
	if err != nil {
		return 0, err
	}
	p := &pending{body: b, rec: rec, err: make(chan error, 1)}
	l.mu.RLock()
	if l.isClosed {
		l.mu.RUnlock()
		return 0, fmt.Errorf("%w: the log is closed", ErrUnavailable)
	}
	select {
	case l.queue <- p:
		l.mu.RUnlock()
	case <-ctx.Done():
		l.mu.RUnlock()
		return 0, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
	// Once queued the record may be written; wait for the verdict so the caller never forwards
	// a call whose record failed.
	if err := <-p.err; err != nil {
		return 0, err
	}
	rec.Seq = p.seq
	return p.seq, nil
}

func (l *Log) redact(raw []byte) ([]byte, map[string]int) {
	if l.opts.Redactor == nil {
		return compactOrQuote(raw), nil
	}
	out, st := l.opts.Redactor.Value(raw)
	return out, st
}

// Close writes what is queued, signs a final checkpoint, stops the writer and closes the
// sinks. Appends after Close fail with ErrUnavailable. It does not close the store.
func (l *Log) Close() error {
	l.mu.Lock()
	if !l.isClosed {
		l.isClosed = true
		close(l.closed)
	}
	l.mu.Unlock()
	<-l.done
	if len(l.opts.Sinks) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), SinkCloseTimeout)
		defer cancel()
		for _, s := range l.opts.Sinks {
			// Export is best-effort and the log is already closed: report, do not fail.
			if err := s.Close(ctx); err != nil {
				l.logger.Warn("audit export sink not closed cleanly", "err", err)
			}
		}
	}
	return nil
}

// Pending returns how many records wait for the writer (a gauge for metrics).
func (l *Log) Pending() int { return len(l.queue) }

// run is the writer: it takes whatever is queued (up to MaxBatch), commits it in one
// transaction, answers the waiters, and signs checkpoints when they are due.
func (l *Log) run() {
	defer close(l.done)
	ticker := time.NewTicker(max(l.opts.CheckpointInterval/4, 10*time.Millisecond))
	defer ticker.Stop()
	batch := make([]*pending, 0, l.opts.MaxBatch)
	recs := make([]store.Record, 0, l.opts.MaxBatch)
	prev := 0
	for {
		batch = batch[:0]
		select {
		case p := <-l.queue:
			batch = append(batch, p)
		case <-ticker.C:
			l.maybeCheckpoint(false)
			continue
		case <-l.closed:
			// No Append can enqueue any more (Close holds the lock); write what is queued.
			for len(l.queue) > 0 {
				batch = batch[:0]
				for len(batch) < l.opts.MaxBatch && len(l.queue) > 0 {
					batch = append(batch, <-l.queue)
				}
				recs = l.commit(batch, recs)
			}
			l.maybeCheckpoint(true)
			return
		}
		for len(batch) < l.opts.MaxBatch && len(l.queue) > 0 {
			batch = append(batch, <-l.queue)
		}
		batch = l.linger(batch, prev)
		prev = len(batch)
		recs = l.commit(batch, recs)
		l.maybeCheckpoint(false)
	}
}

// linger waits up to MaxLinger for the batch to reach the size of the previous one. The callers
// the previous commit released are still preparing their next records; committing the first
// of them alone would make every commit small and every fsync shared by few. A lone caller
// (previous batch of one) never waits.
func (l *Log) linger(batch []*pending, prev int) []*pending {
	want := min(prev, l.opts.MaxBatch)
	if len(batch) >= want || l.opts.MaxLinger <= 0 {
		return batch
	}
	timer := time.NewTimer(l.opts.MaxLinger)
	defer timer.Stop()
	for len(batch) < want {
		select {
		case p := <-l.queue:
			batch = append(batch, p)
		case <-timer.C:
			return batch
		}
	}
	return batch
}

// commit writes one batch in one transaction and answers every waiter.
func (l *Log) commit(batch []*pending, recs []store.Record) []store.Record {
	ctx := context.Background()
	saved := l.frontier
	recs = recs[:0]
	var err error
	for i, p := range batch {
		seq := l.size + int64(i)
		data := canonical(make([]byte, 0, len(p.body)+32), seq, p.body)
		hashes, herr := tlog.StoredHashes(seq, data, l.frontier.reader(ctx, l.st))
		if herr != nil {
			err = herr
			break
		}
		l.frontier.add(seq, hashes)
		hb := make([]byte, 0, 32*len(hashes))
		for _, h := range hashes {
			hb = append(hb, h[:]...)
		}
		p.seq = seq
		recs = append(recs, store.Record{
			Seq: seq, Time: p.rec.Time.UTC(), Kind: string(p.rec.Kind), Principal: p.rec.Principal,
			Tool: p.rec.Tool, Decision: p.rec.Decision, RequestID: p.rec.RequestID, Data: data, Hashes: hb,
		})
	}
	if err == nil {
		err = l.st.Append(ctx, recs)
	}
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		l.logger.Error("audit records not written", "records", len(batch), "first_seq", l.size, "err", err)
		l.frontier = saved
		// The transaction may have committed before the error reached us; start again from
		// what the store holds.
		if lerr := l.load(ctx); lerr != nil {
			l.logger.Error("audit log state not reloaded", "err", lerr)
		}
		for _, p := range batch {
			p.err <- err
		}
		return recs
	}
	l.size += int64(len(batch))
	for _, p := range batch {
		p.err <- nil
	}
	for _, s := range l.opts.Sinks {
		out := make([]Durable, len(recs))
		for i, r := range recs {
			out[i] = Durable{Seq: r.Seq, Time: r.Time, Kind: Kind(r.Kind), Data: r.Data}
		}
		s.Offer(out)
	}
	return recs
}

// frontier caches the hashes the next append and the current tree hash need: for every level,
// the newest complete subtree. It replaces a read of the store per append.
type frontier struct {
	idx [64]int64
	h   [64]tlog.Hash
	ok  [64]bool
}

func (f *frontier) add(seq int64, hashes []tlog.Hash) {
	for level, h := range hashes {
		f.idx[level] = tlog.StoredHashIndex(level, seq>>level)
		f.h[level] = h
		f.ok[level] = true
	}
}

// reader reads from the frontier, falling back to the store for what is not cached (after a
// restart).
func (f *frontier) reader(ctx context.Context, st store.Store) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, index := range indexes {
			level, n := tlog.SplitStoredHashIndex(index)
			if level < 64 && f.ok[level] && f.idx[level] == index {
				out[i] = f.h[level]
				continue
			}
			if st == nil {
				return nil, fmt.Errorf("tree hash %d (level %d) is not in memory", index, level)
			}
			h, err := readStoredHash(ctx, st, level, n)
			if err != nil {
				return nil, err
			}
			out[i] = h
			if level < 64 {
				f.idx[level], f.h[level], f.ok[level] = index, h, true
			}
		}
		return out, nil
	})
}

// readStoredHash reads the hash of subtree n at level from the record that completed it.
func readStoredHash(ctx context.Context, st store.Store, level int, n int64) (tlog.Hash, error) {
	seq := (n+1)<<level - 1
	hs, err := st.TreeHashes(ctx, []int64{seq})
	if err != nil {
		return tlog.Hash{}, err
	}
	if len(hs[0]) < 32*(level+1) {
		return tlog.Hash{}, fmt.Errorf("record %d stores %d bytes of tree hashes, need level %d", seq, len(hs[0]), level)
	}
	var h tlog.Hash
	copy(h[:], hs[0][32*level:])
	return h, nil
}

// storeHashReader reads tree hashes from the store alone (for proofs).
func storeHashReader(ctx context.Context, st store.Store) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, index := range indexes {
			level, n := tlog.SplitStoredHashIndex(index)
			h, err := readStoredHash(ctx, st, level, n)
			if err != nil {
				return nil, err
			}
			out[i] = h
		}
		return out, nil
	})
}
