package gdpr

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/store"
)

// Policy is the retention of one record kind at one moment: records of Kind dated before
// Before are past Retention.
type Policy struct {
	Kind      audit.Kind
	Retention string // as configured ("7y"), for the record
	Before    time.Time
}

// PruneResult says what a pruning did.
type PruneResult struct {
	Pruned  int64   // records whose payload was removed
	Held    int64   // records past retention kept because a legal hold covers them
	Records []int64 // the retention records written
}

// pruneBatch bounds the records one retention record and one store transaction cover.
const pruneBatch = 5000

// Prune removes the payload of every record past its kind's retention at now, except those a
// legal hold covers. For each batch it first appends a retention record naming the records and
// the policies, then has the store replace their data with their pruned form (the leaf hash is
// kept, so the tree and every checkpoint still verify, and Verify accepts each pruned record
// because the retention record covers it). A crash between the two leaves records covered and
// not yet pruned, which verifies; the next run prunes them under a new record.
func (s *Service) Prune(ctx context.Context, now time.Time, policies []Policy, actor Actor) (*PruneResult, error) {
	res := &PruneResult{}
	byKind := map[string]Policy{}
	var latest time.Time
	for _, p := range policies {
		if !audit.Prunable(p.Kind) {
			return res, fmt.Errorf("records of kind %s are never pruned", p.Kind)
		}
		if p.Before.After(now) {
			return res, fmt.Errorf("the retention of %s ends after now", p.Kind)
		}
		byKind[string(p.Kind)] = p
		if p.Before.After(latest) {
			latest = p.Before
		}
	}
	if len(byKind) == 0 {
		return res, nil
	}
	holds, err := s.activeHolds(ctx)
	if err != nil {
		return res, err
	}
	after := int64(-1)
	for {
		batch, ranges, held, last, err := s.pruneCandidates(ctx, after, latest, byKind, holds)
		if err != nil {
			return res, err
		}
		res.Held += held
		if len(batch) > 0 {
			d := audit.RetentionDetail{Ranges: ranges, Pruned: int64(len(batch)), Held: held}
			for _, p := range policies {
				d.Policies = append(d.Policies, audit.RetentionPolicy{Kind: p.Kind, Retention: p.Retention, Before: p.Before.UTC().Format("2006-01-02T15:04:05.000000000Z")})
			}
			seq, err := s.record(ctx, audit.KindRetention, actor, "", d, now)
			if err != nil {
				return res, fmt.Errorf("prune: %w", err)
			}
			res.Records = append(res.Records, seq)
			if err := s.comp.Prune(ctx, batch); err != nil {
				return res, fmt.Errorf("prune: retention record %d written, records not pruned (the next run prunes them): %w", seq, err)
			}
			res.Pruned += int64(len(batch))
		}
		if last < 0 {
			return res, nil
		}
		after = last
	}
}

var errBatchFull = errors.New("batch full")

// pruneCandidates reads, after seq after, the records older than latest, and returns up to
// pruneBatch of those to prune (pruned forms and their runs), how many a hold kept, and the
// last sequence number read when the batch is full (-1 when the log was read to its end).
func (s *Service) pruneCandidates(ctx context.Context, after int64, latest time.Time, byKind map[string]Policy, holds []store.Hold) ([]store.Pruned, [][2]int64, int64, int64, error) {
	var batch []store.Pruned
	var ranges [][2]int64
	var held int64
	last := int64(-1)
	err := s.st.Search(ctx, store.Query{AfterSeq: after, Until: latest}, func(r *store.Record) error {
		if len(batch) >= pruneBatch || len(ranges) >= audit.MaxPrunedRanges {
			return errBatchFull
		}
		last = r.Seq
		p, ok := byKind[r.Kind]
		if !ok || !r.Time.Before(p.Before) || audit.IsPruned(r.Data) {
			return nil
		}
		rec, err := audit.ParseRecord(r.Data)
		if err != nil {
			return fmt.Errorf("record %d does not decode, so it is not pruned: run mcpguard audit verify: %w", r.Seq, err)
		}
		var cs []string
		for _, sl := range rec.Subjects {
			cs = append(cs, sl.Commitment)
		}
		if covering(holds, rec.Principal, rec.Time, cs) != nil {
			held++
			return nil
		}
		batch = append(batch, store.Pruned{Seq: r.Seq, Data: audit.PrunedForm(rec)})
		if n := len(ranges); n > 0 && ranges[n-1][1] == r.Seq-1 {
			ranges[n-1][1] = r.Seq
		} else {
			ranges = append(ranges, [2]int64{r.Seq, r.Seq})
		}
		return nil
	})
	switch {
	case errors.Is(err, errBatchFull):
		// Resume after the last record read; the one that did not fit is read again.
		return batch, ranges, held, last, nil
	case err != nil:
		return nil, nil, 0, -1, fmt.Errorf("prune: read records: %w", err)
	}
	return batch, ranges, held, -1, nil
}
