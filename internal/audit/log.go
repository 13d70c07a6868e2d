package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
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
	DefaultMaxLater           = 50 * time.Millisecond
	DefaultQueue              = 16384
	DefaultOrigin             = "mcpguard.audit/log"
)

// Named returns the origin and the external checkpoint directory of a named log of a
// deployment (docs/audit.md, "Many instances"): the origin is DefaultOrigin + "/" + name, so a
// checkpoint of one instance's log is never taken for another's, and the checkpoints go into
// dir/name. The default log ("") keeps DefaultOrigin and dir.
func Named(name, dir string) (origin, checkpointDir string) {
	if name == "" {
		return DefaultOrigin, dir
	}
	if dir != "" {
		dir = filepath.Join(dir, name)
	}
	return DefaultOrigin + "/" + name, dir
}

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
	// MaxLater is how long a record appended with AppendLater may wait for a commit that an
	// Append starts before it is committed on its own (default DefaultMaxLater).
	MaxLater time.Duration
	Queue    int // records waiting for the writer (default DefaultQueue)
	// StoreTimeout bounds each write, sync and checkpoint the log asks of the store (default
	// DefaultStoreTimeout): a store that does not answer in time fails the batch, and the calls
	// waiting for it are refused, never served unrecorded.
	StoreTimeout time.Duration
	Now          func() time.Time
	// Sinks receive every batch once it is durable (export to a SIEM, internal/export). The
	// log calls Offer from one goroutine, in sequence order, and never waits for delivery;
	// Close closes the sinks after the last batch, giving them SinkCloseTimeout to deliver
	// what they hold.
	Sinks []Sink
	// Sealer, when set, seals the personal data of records about data subjects (internal/gdpr)
	// before they are redacted and encoded; nil: no record names a data subject.
	Sealer Sealer
	// Witnesses receive every checkpoint once it is in the checkpoint directory, to have it
	// cosigned (internal/witness). Best-effort like Sinks; Close closes them after the final
	// checkpoint, within the same SinkCloseTimeout.
	Witnesses []Witness
}

// DefaultStoreTimeout is the default Options.StoreTimeout.
const DefaultStoreTimeout = 10 * time.Second

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

// Witness receives the checkpoints the log signs, to have them cosigned elsewhere. Like a Sink
// it is best-effort: a witness that is slow or down must never hold up the log.
type Witness interface {
	// OfferCheckpoint hands over a checkpoint just written to the checkpoint directory, in
	// size order, without blocking.
	OfferCheckpoint(SignedCheckpoint)
	// Close sends what the witness holds until ctx ends and releases it.
	Close(ctx context.Context) error
}

// SignedCheckpoint is a checkpoint the log signed, as handed to a Witness.
type SignedCheckpoint struct {
	Size int64
	// Note is the signed checkpoint (C2SP tlog-checkpoint in a signed note); do not modify it.
	Note []byte
	// Prove returns the RFC 6962 consistency proof from the tree of oldSize records
	// (0 < oldSize <= Size) to this checkpoint's, from the store's hashes. It may be called from
	// any goroutine until the log is closed.
	Prove func(ctx context.Context, oldSize int64) (tlog.TreeProof, error)
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
//
// Two goroutines do the work. The writer takes what is queued, computes the tree hashes and
// commits the batch; the settler makes committed batches durable, answers their callers, offers
// them to the sinks and signs checkpoints. When the store is a store.Pipeliner the writer
// commits without waiting for the disk and the settler fsyncs every batch committed so far with
// one Sync, so the fsync of one batch overlaps the commit of the next.
type Log struct {
	// base is the context of the log's own goroutines: Open's, without its cancellation (the
	// log lives until Close); every store call derives a deadline from it.
	base context.Context
	st   store.Store
	pipe store.Pipeliner // st, when it can commit and sync separately
	// serial: commit a batch only once the previous one is synced (store.SerialCommitter).
	serial bool
	opts   Options
	logger *slog.Logger
	now    func() time.Time

	queue  chan *pending
	done   chan struct{}
	closed chan struct{}
	// mu orders Append's enqueue before Close's final drain.
	mu       sync.RWMutex
	isClosed bool
	// broken is set by the first failed Sync: from then on every append fails.
	broken atomic.Pointer[error]

	// committed carries batches from the writer to the settler; free carries their buffers
	// back. pipelineDepth buffers exist, so at most that many batches are committed and not
	// yet answered.
	committed chan *flight
	free      chan *flight

	// Owned by the writer goroutine.
	size     int64
	frontier frontier

	// Owned by the settler goroutine.
	synced   int64 // records known durable: checkpoints never name more
	lastCP   int64
	lastCPAt time.Time
	// closeErr is the final checkpoint's failure, set before done is closed.
	closeErr error

	stats logStats // what Stats reports; written by the writer and the settler
}

// pipelineDepth is the number of batches that may be committed and not yet durable: one being
// synced while the next is written.
const pipelineDepth = 2

// flight is one batch on its way from the writer to the settler.
type flight struct {
	batch []*pending
	recs  []store.Record
	err   error // the commit failed: answer with it, sync nothing
}

type pending struct {
	body []byte // the record after prefixRoom bytes left for its prefix (encodeBodyRoomy)
	rec  *Record
	seq  int64
	err  chan error // Append's caller waits on it
	// later: appended with AppendLater; nobody waits, done (if set) gets the verdict.
	later bool
	done  func(error)
}

// Open starts a log on st, continuing the records already there. With a Signer and a
// CheckpointDir it first compares the store with the newest checkpoint in the directory and
// refuses to start (fail closed) when the store was rolled back, deleted or replaced
// (ErrLogMismatch) or holds records that checkpoint does not cover (ErrUncovered).
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
	if o.MaxLater <= 0 {
		o.MaxLater = DefaultMaxLater
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.StoreTimeout <= 0 {
		o.StoreTimeout = DefaultStoreTimeout
	}
	if o.CheckpointDir != "" {
		// Created now, not with the first checkpoint: a log that has recorded nothing yet must
		// verify too, and a directory that cannot be created is a configuration error to report
		// at start, not at the first call.
		if err := os.MkdirAll(o.CheckpointDir, 0o750); err != nil {
			return nil, fmt.Errorf("checkpoint directory: %w", err)
		}
	}
	l := &Log{base: context.WithoutCancel(ctx), st: st, opts: o, logger: o.Logger, now: o.Now,
		queue: make(chan *pending, o.Queue), done: make(chan struct{}), closed: make(chan struct{}),
		committed: make(chan *flight, pipelineDepth), free: make(chan *flight, pipelineDepth)}
	l.pipe, _ = st.(store.Pipeliner)
	if sc, ok := st.(store.SerialCommitter); ok && l.pipe != nil {
		l.serial = sc.CommitsAfterSync()
	}
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	if err := l.load(ctx); err != nil {
		return nil, err
	}
	for range pipelineDepth {
		l.free <- &flight{}
	}
	go l.run()
	go l.settle()
	return l, nil
}

// load reads the log's size and newest checkpoint from the store.
func (l *Log) load(ctx context.Context) error {
	if l.pipe != nil {
		// A previous process may have committed records it never synced; they count towards
		// the size, so make them durable before a checkpoint can name them.
		if err := l.pipe.Sync(ctx); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	if err := l.reload(ctx); err != nil {
		return err
	}
	if err := l.checkStore(ctx, l.size); err != nil {
		return err
	}
	l.synced = l.size
	cps, err := l.st.Checkpoints(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	l.lastCP, l.lastCPAt = 0, l.now()
	if len(cps) > 0 {
		l.lastCP = cps[len(cps)-1].Size
		l.lastCPAt = cps[len(cps)-1].Time
	}
	l.stats.checkpointed(l.lastCPAt, l.synced-l.lastCP)
	return nil
}

// reload reads the log's size from the store and forgets the cached tree hashes (the writer's
// state).
func (l *Log) reload(ctx context.Context) error {
	n, err := l.st.Size(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	l.size = n
	l.frontier = frontier{}
	return nil
}

// failure returns the error every append gets once a Sync has failed, or nil.
func (l *Log) failure() error {
	if p := l.broken.Load(); p != nil {
		return *p
	}
	return nil
}

// Append redacts rec's arguments, writes it, and returns its sequence number once it is durable.
// Concurrent calls share one transaction. Any failure wraps ErrUnavailable; the record may then
// or may not have been written, but never partially. Once the store has failed to make records
// durable (a failed Sync), every later Append fails until the log and store are reopened. rec.Seq and rec.Version are set, and
// rec.Arguments and rec.Detail are replaced by their redacted form. If ctx ends before the
// record is queued, Append fails; once queued, it waits for the commit's verdict.
func (l *Log) Append(ctx context.Context, rec *Record) (int64, error) {
	p, err := l.prepare(ctx, rec)
	if err != nil {
		return 0, err
	}
	p.err = make(chan error, 1)
	if err := l.enqueue(ctx, p, 0); err != nil {
		return 0, err
	}
	// Once queued the record may be written; wait for the verdict so the caller never forwards
	// a call whose record failed.
	if err := <-p.err; err != nil {
		return 0, err
	}
	rec.Seq = p.seq
	return p.seq, nil
}

// AppendLater redacts and queues rec as Append does, and returns without waiting for it: the
// record is written with the next commit an Append starts, or on its own after MaxLater when
// none does, so a record nobody waits for costs no commit and no fsync of its own. While the
// queue is full it waits for room (backpressure), until ctx ends or StoreTimeout passes: a
// queue that stays full is a store that does not keep up. done, when not nil, gets the verdict
// once (nil: durable; rec.Seq is then set); it runs on the log's goroutine and must not block.
// An error means rec was not queued and done is not called.
func (l *Log) AppendLater(ctx context.Context, rec *Record, done func(error)) error {
	p, err := l.prepare(ctx, rec)
	if err != nil {
		return err
	}
	p.later, p.done = true, done
	return l.enqueue(ctx, p, l.opts.StoreTimeout)
}

// prepare seals, redacts and encodes rec.
func (l *Log) prepare(ctx context.Context, rec *Record) (*pending, error) {
	if rec.Time.IsZero() {
		rec.Time = l.now()
	}
	rec.Version = SchemaVersion
	if l.opts.Sealer != nil && len(rec.Arguments) > 0 {
		if err := l.opts.Sealer.Seal(ctx, rec, l.redactValue); errors.Is(err, ErrRecordRefused) {
			return nil, err
		} else if err != nil {
			return nil, fmt.Errorf("%w: seal data-subject arguments: %w", ErrUnavailable, err)
		}
	}
	if len(rec.Arguments) > 0 {
		rec.Arguments, rec.Redactions = l.redact(rec.Arguments)
	}
	if len(rec.Detail) > 0 {
		rec.Detail, _ = l.redact(rec.Detail)
	}
	b, err := encodeBodyRoomy(rec)
	if err != nil {
		return nil, err
	}
	if err := l.failure(); err != nil {
		return nil, err
	}
	return &pending{body: b, rec: rec}, nil
}

// enqueue hands p to the writer; it fails when the log is closed, or when the queue is full
// and stays so until ctx ends or, if bound > 0, bound passes (no timer unless it is full).
func (l *Log) enqueue(ctx context.Context, p *pending, bound time.Duration) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.isClosed {
		return fmt.Errorf("%w: the log is closed", ErrUnavailable)
	}
	select {
	case l.queue <- p:
		return nil
	default:
	}
	var expired <-chan time.Time
	if bound > 0 {
		t := time.NewTimer(bound)
		defer t.Stop()
		expired = t.C
	}
	select {
	case l.queue <- p:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	case <-expired:
		return fmt.Errorf("%w: the queue stayed full for %v", ErrUnavailable, bound)
	}
}

// redactValue is redact without the counts, as the Sealer applies it to what it seals.
func (l *Log) redactValue(raw []byte) []byte {
	out, _ := l.redact(raw)
	return out
}

func (l *Log) redact(raw []byte) ([]byte, map[string]int) {
	if l.opts.Redactor == nil {
		return compactOrQuote(raw), nil
	}
	out, st := l.opts.Redactor.Value(raw)
	return out, st
}

// Close writes what is queued, signs a final checkpoint over every durable record, stops the
// writer and closes the sinks. Appends after Close fail with ErrUnavailable. It does not close
// the store. The error says that the final checkpoint could not be written: the next Open will
// then find records no external checkpoint covers and refuse to start until they are accepted
// (AcceptRecords).
func (l *Log) Close() error {
	l.mu.Lock()
	if !l.isClosed {
		l.isClosed = true
		close(l.closed)
	}
	l.mu.Unlock()
	<-l.done
	if len(l.opts.Sinks) > 0 || len(l.opts.Witnesses) > 0 {
		ctx, cancel := context.WithTimeout(l.base, SinkCloseTimeout)
		defer cancel()
		for _, s := range l.opts.Sinks {
			// Export is best-effort and the log is already closed: report, do not fail.
			if err := s.Close(ctx); err != nil {
				l.logger.Warn("audit export sink not closed cleanly", "err", err)
			}
		}
		for _, w := range l.opts.Witnesses {
			if err := w.Close(ctx); err != nil {
				l.logger.Warn("audit witness not closed cleanly", "err", err)
			}
		}
	}
	if l.closeErr != nil {
		return fmt.Errorf("audit log closed without its final checkpoint: %w", l.closeErr)
	}
	return nil
}

// Closed is closed when Close begins: the log takes no more records.
func (l *Log) Closed() <-chan struct{} { return l.closed }

// Pending returns how many records wait for the writer (a gauge for metrics).
func (l *Log) Pending() int { return len(l.queue) }

// run is the writer: it takes whatever is queued (up to MaxBatch), commits it in one
// transaction and hands it to the settler.
func (l *Log) run() {
	defer close(l.committed)
	prev := 0
	for {
		f := <-l.free // waits while pipelineDepth batches await their answer
		f.batch = f.batch[:0]
		select {
		case p := <-l.queue:
			f.batch = append(f.batch, p)
		case <-l.closed:
			// No Append can enqueue any more (Close holds the lock); write what is queued.
			for len(l.queue) > 0 {
				f.batch = l.take(f.batch)
				l.commit(f)
				l.committed <- f
				f = <-l.free
				f.batch = f.batch[:0]
			}
			return
		}
		f.batch = l.take(f.batch)
		f.batch = l.linger(f.batch, prev)
		if l.serial {
			f.batch = l.settled(f.batch)
		}
		f.batch = l.awaitWaiter(f.batch)
		prev = len(f.batch)
		l.commit(f)
		l.committed <- f
	}
}

// linger waits up to MaxLinger for the batch to reach the size of the previous one. The callers
// the previous answer released are still preparing their next records; committing the first
// of them alone would make every commit small and every fsync shared by few. A lone caller
// (previous batch of one) never waits, nor does the writer while an earlier batch is still
// being synced: the callers it would wait for are those of that batch, and waiting for them
// would put commit and fsync back in series.
func (l *Log) linger(batch []*pending, prev int) []*pending {
	want := min(prev, l.opts.MaxBatch)
	if len(batch) >= want || l.opts.MaxLinger <= 0 || len(l.free) < pipelineDepth-1 {
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

// settled waits, adding what is queued to batch, until no earlier batch awaits its Sync: every
// other flight is back. One Sync then covers every record that arrived during the one before;
// with pipelining, those that came after the next commit had begun would wait for a second.
func (l *Log) settled(batch []*pending) []*pending {
	var back [pipelineDepth - 1]*flight
	for held := 0; held < len(back); {
		queue := l.queue
		if len(batch) >= l.opts.MaxBatch {
			queue = nil
		}
		select {
		case g := <-l.free:
			back[held] = g
			held++
		case p := <-queue:
			batch = append(batch, p)
		}
	}
	for _, g := range back {
		l.free <- g
	}
	return l.take(batch)
}

// take adds to batch what is queued, up to MaxBatch, without waiting.
func (l *Log) take(batch []*pending) []*pending {
	for len(batch) < l.opts.MaxBatch && len(l.queue) > 0 {
		batch = append(batch, <-l.queue)
	}
	return batch
}

// awaitWaiter holds a batch of records nobody waits for (AppendLater) until a record somebody
// waits for joins it, the batch is full, MaxLater has passed, or the log closes: such records
// ride on the next commit instead of paying for one of their own.
func (l *Log) awaitWaiter(batch []*pending) []*pending {
	for _, p := range batch {
		if !p.later {
			return batch
		}
	}
	timer := time.NewTimer(l.opts.MaxLater)
	defer timer.Stop()
	for len(batch) < l.opts.MaxBatch {
		select {
		case p := <-l.queue:
			batch = append(batch, p)
			if !p.later {
				return l.take(batch)
			}
		case <-timer.C:
			return batch
		case <-l.closed:
			return batch
		}
	}
	return batch
}

// commit writes f's batch in one transaction: committed and durable (Append), or only
// committed (AppendNoSync) when the settler syncs. A failure is left in f.err.
func (l *Log) commit(f *flight) {
	ctx, cancel := l.storeContext()
	defer cancel()
	f.err = l.failure()
	if f.err != nil {
		return
	}
	saved := l.frontier
	f.recs = f.recs[:0]
	var err error
	for i, p := range f.batch {
		seq := l.size + int64(i)
		data := canonicalInPlace(p.body, seq)
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
		f.recs = append(f.recs, store.Record{
			Seq: seq, Time: p.rec.Time.UTC(), Kind: string(p.rec.Kind), Principal: p.rec.Principal,
			Tool: p.rec.Tool, Decision: p.rec.Decision, RequestID: p.rec.RequestID, Data: data, Hashes: hb,
			Subjects: indexKeys(p.rec),
		})
	}
	if err == nil {
		if l.pipe != nil {
			err = l.pipe.AppendNoSync(ctx, f.recs)
		} else {
			err = l.st.Append(ctx, f.recs)
		}
	}
	if err != nil {
		f.err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		l.logger.Error("audit records not written", "records", len(f.batch), "first_seq", l.size, "err", err)
		l.frontier = saved
		// The transaction may have committed before the error reached us; start again from
		// what the store holds.
		if lerr := l.reload(ctx); lerr != nil {
			l.logger.Error("audit log state not reloaded", "err", lerr)
		}
		return
	}
	l.size += int64(len(f.batch))
	l.stats.committed(len(f.batch))
}

// settle is the settler: it takes every batch committed so far, makes them durable with one
// Sync (when the store is a Pipeliner), answers their callers, offers them to the sinks and
// signs checkpoints when they are due. It ends, after a final checkpoint, when the writer does.
func (l *Log) settle() {
	defer close(l.done)
	ticker := time.NewTicker(max(l.opts.CheckpointInterval/4, 10*time.Millisecond))
	defer ticker.Stop()
	group := make([]*flight, 0, pipelineDepth)
	for {
		select {
		case f, ok := <-l.committed:
			if !ok {
				l.closeErr = l.maybeCheckpoint(true)
				return
			}
			group = append(group[:0], f)
			for len(l.committed) > 0 {
				group = append(group, <-l.committed)
			}
			l.answer(group, l.sync(group))
			clear(group)
			_ = l.maybeCheckpoint(false) // a failure breaks the log; Close reports the last one
		case <-ticker.C:
			_ = l.maybeCheckpoint(false)
		}
	}
}

// sync makes the committed batches of group durable. After a failure the log is broken: the
// page cache's state is unknown, so nothing written since can be vouched for.
func (l *Log) sync(group []*flight) error {
	if err := l.failure(); err != nil {
		return err
	}
	if l.pipe == nil {
		return nil // Append was durable already
	}
	written := 0
	for _, f := range group {
		if f.err == nil {
			written++
		}
	}
	if written == 0 {
		return nil
	}
	ctx, cancel := l.storeContext()
	defer cancel()
	if err := l.pipe.Sync(ctx); err != nil {
		err = fmt.Errorf("%w: the audit store failed to make records durable; the log refuses every append until mcpguard restarts: %w", ErrUnavailable, err)
		l.broken.CompareAndSwap(nil, &err)
		l.logger.Error("audit records not made durable; the audit log is unavailable until restart", "err", err)
		return err
	}
	return nil
}

// answer tells the callers of group's batches their verdict, offers what is durable to the
// sinks, and returns the buffers to the writer.
func (l *Log) answer(group []*flight, syncErr error) {
	for _, f := range group {
		err := f.err
		if err == nil {
			err = syncErr
		}
		for _, p := range f.batch {
			switch {
			case !p.later:
				p.err <- err
			case p.done != nil:
				if err == nil {
					p.rec.Seq = p.seq
				}
				p.done(err)
			}
		}
		if err == nil && len(f.recs) > 0 {
			l.synced = f.recs[len(f.recs)-1].Seq + 1
			l.stats.unsigned.Store(l.synced - l.lastCP)
			l.offer(f.recs)
		}
		clear(f.batch)
		clear(f.recs)
		f.batch, f.recs, f.err = f.batch[:0], f.recs[:0], nil
		l.free <- f
	}
}

// offer hands a durable batch to every sink, each its own copy.
func (l *Log) offer(recs []store.Record) {
	for _, s := range l.opts.Sinks {
		out := make([]Durable, len(recs))
		for i, r := range recs {
			out[i] = Durable{Seq: r.Seq, Time: r.Time, Kind: Kind(r.Kind), Data: r.Data}
		}
		s.Offer(out)
	}
}

// frontier caches the hashes the next append needs: for every level, the newest complete
// subtree. It replaces a read of the store per append.
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

// storeHashReader reads tree hashes from the store alone (for proofs and checkpoints).
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

// storeContext bounds one store call of the log's own goroutines.
func (l *Log) storeContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(l.base, l.opts.StoreTimeout)
}
