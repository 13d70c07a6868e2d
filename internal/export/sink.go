// Package export copies durable audit records to a SIEM (JSON Lines files, syslog, webhooks),
// best-effort, each sink behind a bounded buffer that never holds up the audit log.
package export

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
)

// Defaults for Options.
const (
	DefaultBuffer       = 10000
	DefaultMaxBatch     = 500
	DefaultMinBackoff   = 100 * time.Millisecond
	DefaultMaxBackoff   = 30 * time.Second
	DefaultWriteTimeout = 10 * time.Second
)

// Options are the settings every sink shares.
type Options struct {
	Logger *slog.Logger
	// Buffer is how many records wait while the destination is slow or down (default
	// DefaultBuffer). When it is full, new records are dropped and counted.
	Buffer int
	// MaxBatch is how many records one write carries (default DefaultMaxBatch).
	MaxBatch int
	// MinBackoff and MaxBackoff bound the exponential wait between failed writes of a batch
	// (defaults DefaultMinBackoff and DefaultMaxBackoff).
	MinBackoff, MaxBackoff time.Duration
	// WriteTimeout bounds one write (default DefaultWriteTimeout).
	WriteTimeout time.Duration
	Now          func() time.Time
}

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	if r.Buffer <= 0 {
		r.Buffer = DefaultBuffer
	}
	if r.MaxBatch <= 0 {
		r.MaxBatch = DefaultMaxBatch
	}
	if r.MinBackoff <= 0 {
		r.MinBackoff = DefaultMinBackoff
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = DefaultMaxBackoff
	}
	r.MaxBackoff = max(r.MaxBackoff, r.MinBackoff)
	if r.WriteTimeout <= 0 {
		r.WriteTimeout = DefaultWriteTimeout
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	return r
}

// destination writes one batch somewhere. A failed write is retried with the same batch; an
// error wrapping errPermanent drops the batch instead.
type destination interface {
	write(ctx context.Context, batch []audit.Durable) error
	close() error
}

// errPermanent marks a failure that retrying the same batch cannot fix (the receiver refused it).
var errPermanent = errors.New("refused by the receiver")

// Sink delivers records to one destination from its own goroutine. Offer never blocks. It is
// an audit.Sink: pass it in audit.Options.Sinks.
type Sink struct {
	name   string
	dst    destination
	opts   Options
	logger *slog.Logger

	in      chan audit.Durable
	stop    chan struct{} // Close: drain the buffer, then exit
	abort   chan struct{} // Close's context ended: give up now
	done    chan struct{}
	closeMu sync.Mutex
	closed  bool

	dropped   atomic.Uint64
	dropping  atomic.Bool // a drop was logged and no delivery has happened since
	delivered atomic.Uint64
	failures  atomic.Uint64
}

var _ audit.Sink = (*Sink)(nil)

func newSink(name string, dst destination, opts *Options) *Sink {
	o := opts.withDefaults()
	s := &Sink{
		name: name, dst: dst, opts: o, logger: o.Logger.With("sink", name),
		in: make(chan audit.Durable, o.Buffer), stop: make(chan struct{}), abort: make(chan struct{}), done: make(chan struct{}),
	}
	go s.run()
	return s
}

// Name is the sink's name, for logs and metrics.
func (s *Sink) Name() string { return s.name }

// Offer queues records for delivery without waiting; those that do not fit in the buffer, or
// arrive after Close, are dropped and counted.
func (s *Sink) Offer(recs []audit.Durable) {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		s.drop(len(recs), "the sink is closed")
		return
	}
	for i, r := range recs {
		select {
		case s.in <- r:
		default:
			s.drop(len(recs)-i, "the buffer is full")
			return
		}
	}
}

func (s *Sink) drop(n int, why string) {
	if n == 0 {
		return
	}
	total := s.dropped.Add(uint64(n))
	// Log when dropping starts, not every drop: a down destination would flood the log. A
	// delivery rearms it.
	if s.dropping.CompareAndSwap(false, true) {
		s.logger.Warn("audit records dropped by an export sink", "records", n, "dropped_total", total, "reason", why)
	}
}

// Dropped returns how many records were never delivered: the buffer was full, the receiver
// refused them, or the sink closed before it could deliver them.
func (s *Sink) Dropped() uint64 { return s.dropped.Load() }

// Delivered returns how many records the destination accepted.
func (s *Sink) Delivered() uint64 { return s.delivered.Load() }

// Failures returns how many writes failed (each is retried or, if refused, dropped).
func (s *Sink) Failures() uint64 { return s.failures.Load() }

// Pending returns how many records wait in the buffer.
func (s *Sink) Pending() int { return len(s.in) }

// Close delivers what is buffered until ctx ends, counts the rest as dropped, and closes the
// destination.
func (s *Sink) Close(ctx context.Context) error {
	s.closeMu.Lock()
	if !s.closed {
		s.closed = true
		close(s.stop)
	}
	s.closeMu.Unlock()
	select {
	case <-s.done:
	case <-ctx.Done():
		close(s.abort)
		<-s.done
	}
	s.logger.Info("audit export sink closed", "delivered", s.Delivered(), "dropped", s.Dropped(), "failed_writes", s.Failures())
	if err := s.dst.close(); err != nil {
		return fmt.Errorf("close export sink %s: %w", s.name, err)
	}
	return nil
}

func (s *Sink) run() {
	defer close(s.done)
	batch := make([]audit.Durable, 0, s.opts.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case r := <-s.in:
			batch = append(batch, r)
		case <-s.stop:
			if len(s.in) == 0 {
				return
			}
			continue
		}
		for len(batch) < s.opts.MaxBatch && len(s.in) > 0 {
			batch = append(batch, <-s.in)
		}
		if !s.deliver(batch) {
			// Aborted: everything still buffered is lost.
			s.drop(len(batch)+len(s.in), "the sink closed before delivering them")
			return
		}
	}
}

// deliver writes batch, retrying with exponential backoff until it succeeds or is refused. It
// returns false if Close gave up waiting.
func (s *Sink) deliver(batch []audit.Durable) bool {
	wait := s.opts.MinBackoff
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.WriteTimeout)
		go func() {
			select {
			case <-s.abort:
				cancel()
			case <-ctx.Done():
			}
		}()
		err := s.dst.write(ctx, batch)
		cancel()
		if err == nil {
			s.delivered.Add(uint64(len(batch)))
			s.dropping.Store(false)
			if attempt > 1 {
				s.logger.Info("audit export resumed", "attempts", attempt)
			}
			return true
		}
		s.failures.Add(1)
		if errors.Is(err, errPermanent) {
			s.logger.Error("audit records refused by the export destination", "records", len(batch), "first_seq", batch[0].Seq, "err", err)
			s.dropped.Add(uint64(len(batch)))
			return true
		}
		if attempt == 1 || attempt%10 == 0 {
			s.logger.Warn("audit export failed; retrying", "attempt", attempt, "first_seq", batch[0].Seq, "retry_in", wait, "err", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.abort:
			t.Stop()
			return false
		}
		wait = min(wait*2, s.opts.MaxBackoff)
	}
}
