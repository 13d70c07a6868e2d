package audit

import (
	"sync/atomic"
	"time"
)

// BatchSizeBounds are the upper bounds, in records, of the buckets of Stats.BatchSizes.
var BatchSizeBounds = [...]int{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096}

// Stats is what the log has done since Open, for metrics: Stats may be called from any
// goroutine at any time, and costs the request path nothing (the writer and the settler keep
// the counts, with atomic adds once per batch).
type Stats struct {
	// Queued records wait for the writer; QueueCapacity is how many may (Options.Queue). An
	// Append waits while the queue is full.
	Queued, QueueCapacity int
	// Batches and Records count the transactions committed and the records in them.
	Batches, Records uint64
	// BatchSizes[i] counts the committed batches of at most BatchSizeBounds[i] records (and
	// more than the bound before it); the last element counts those larger than every bound.
	BatchSizes [len(BatchSizeBounds) + 1]uint64
	// Signed says the log signs checkpoints (Options.Signer); the next two are zero otherwise.
	Signed bool
	// LastCheckpoint is when the newest checkpoint was signed; when the store held none at
	// Open, when the log opened.
	LastCheckpoint time.Time
	// Unsigned counts the durable records the newest checkpoint does not cover yet.
	Unsigned int64
	// Checked says Open compared the store with the newest checkpoint of Options.CheckpointDir
	// and found the log it vouches for (a Signer and a CheckpointDir are configured; without
	// them there is nothing to compare with). A mismatch refuses Open, so a running log that
	// was checked is one that matched.
	Checked bool
	// Failed says a sync or a checkpoint failed: the log refuses every append until mcpguard
	// restarts (ErrUnavailable).
	Failed bool
}

// logStats are the counts behind Stats.
type logStats struct {
	batches, records atomic.Uint64
	sizes            [len(BatchSizeBounds) + 1]atomic.Uint64
	checkpointAt     atomic.Int64 // unix nanoseconds
	unsigned         atomic.Int64
	checked          bool // set by Open, before the goroutines start
}

// committed counts one committed batch of n records (the writer).
func (s *logStats) committed(n int) {
	s.batches.Add(1)
	s.records.Add(uint64(n))
	i := 0
	for i < len(BatchSizeBounds) && n > BatchSizeBounds[i] {
		i++
	}
	s.sizes[i].Add(1)
}

// checkpointed records a checkpoint signed at t and the durable records it leaves uncovered
// (the settler).
func (s *logStats) checkpointed(t time.Time, unsigned int64) {
	s.checkpointAt.Store(t.UnixNano())
	s.unsigned.Store(unsigned)
}

// Stats reports what the log has done since Open.
func (l *Log) Stats() Stats {
	st := Stats{
		Queued: len(l.queue), QueueCapacity: cap(l.queue),
		Batches: l.stats.batches.Load(), Records: l.stats.records.Load(),
		Signed: l.opts.Signer != nil, Checked: l.stats.checked, Failed: l.failure() != nil,
	}
	for i := range st.BatchSizes {
		st.BatchSizes[i] = l.stats.sizes[i].Load()
	}
	if st.Signed {
		st.LastCheckpoint = time.Unix(0, l.stats.checkpointAt.Load())
		st.Unsigned = l.stats.unsigned.Load()
	}
	return st
}
