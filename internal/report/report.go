// Package report builds the compliance report from a verified audit log: the evidence SOX,
// MiFID II, GDPR and GLBA ask for, rendered as HTML (and PDF from it) or JSON, and signed with
// the log's checkpoint key so that `mcpguard report verify` can show it was not edited.
//
// Build verifies the whole log first and refuses a log that does not verify: a report is
// derived from verified records only. It then reads the records of the period once, in
// sequence order, keeping counts of everything and at most Options.MaxRows rows per table (the
// report says how many were left out), so that memory does not grow with the log.
package report

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/store"
	"github.com/mcpguard/mcpguard/internal/witness"
)

// SchemaVersion is the version of the report's JSON form (the "version" field).
const SchemaVersion = 1

// DefaultMaxRows is the default Options.MaxRows.
const DefaultMaxRows = 2000

// MaxMaxRows bounds Options.MaxRows.
const MaxMaxRows = 100000

// DefaultOrderTools are the tools whose calls are orders when Options.OrderTools is empty: the
// demo server's trade tool, bare or behind any upstream's namespace.
var DefaultOrderTools = []string{"execute_trade_order", "*.execute_trade_order"}

// ErrNotVerified is returned by Build when the log does not verify; the error says why.
var ErrNotVerified = errors.New("the audit log does not verify, so no report was built")

// Options configures Build.
type Options struct {
	// From (inclusive) and To (exclusive) bound the period by record time. Required; To after From.
	From, To time.Time
	// Signer is the log's checkpoint signing key: it checks the log's checkpoints and signs
	// the report. Required.
	Signer note.Signer
	// Origin is the log's name in its checkpoints (default audit.DefaultOrigin).
	Origin string
	// CheckpointDir is the log's external checkpoint directory. Without it a truncated or
	// replaced log cannot be detected, and the report says so.
	CheckpointDir string
	// Witnesses are the verifier keys of the witnesses whose cosignatures the report shows;
	// with RequireWitnesses, each must have cosigned a checkpoint the log extends.
	Witnesses        []note.Verifier
	RequireWitnesses bool
	// Extra are cosigned checkpoints from elsewhere (what a witness holds), checked like
	// the directory's.
	Extra []audit.ExternalCheckpoint
	// OrderTools are path.Match patterns of the tool names (as exposed) whose calls are orders
	// for MiFID II (default DefaultOrderTools).
	OrderTools []string
	// MaxRows bounds every table of the report (default DefaultMaxRows, at most MaxMaxRows);
	// counts and charts always cover every record.
	MaxRows int
	// Now is the clock of the build time (default time.Now).
	Now func() time.Time
	// Progress, when set, is told what the build is doing.
	Progress func(stage string, done, total int64)
}

// Build verifies the log in st and, if it verifies, collects the report of the period from it.
// An error wrapping ErrNotVerified says what verification found; any other error is a failure
// to read.
func Build(ctx context.Context, st store.Store, opts Options) (*Report, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if opts.Origin == "" {
		opts.Origin = audit.DefaultOrigin
	}
	if opts.MaxRows == 0 {
		opts.MaxRows = DefaultMaxRows
	}
	if len(opts.OrderTools) == 0 {
		opts.OrderTools = DefaultOrderTools
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	start := now()
	logKey := audit.SignerVerifier(opts.Signer)
	extra, cps, err := checkpointChain(ctx, st, logKey, &opts)
	if err != nil {
		return nil, err
	}
	vopts := audit.VerifyOptions{Verifier: logKey, Origin: opts.Origin, CheckpointDir: opts.CheckpointDir, Extra: extra}
	if opts.Progress != nil {
		vopts.Progress = func(done, total int64) { opts.Progress("verify", done, total) }
	}
	vrep, err := audit.Verify(ctx, st, vopts)
	if err != nil {
		return nil, err
	}
	if opts.RequireWitnesses {
		for _, w := range opts.Witnesses {
			if !cps.cosigned[w.Name()] {
				vrep.Problems = append(vrep.Problems, audit.Problem{Seq: -1,
					What: fmt.Sprintf("witness %s: no checkpoint of this log cosigned by it was found, and the report requires one", w.Name())})
			}
		}
	}
	if !vrep.OK() {
		first, _ := vrep.First()
		n := len(vrep.Problems) + vrep.Dropped
		return nil, fmt.Errorf("%w: %d problems; first: %s", ErrNotVerified, n, first)
	}
	r := &Report{
		Version: SchemaVersion, Origin: opts.Origin, From: opts.From.UTC(), To: opts.To.UTC(),
		Built: now().UTC(), LogKey: logKey.Name(),
		Verification: Verification{
			Status: "verified", Records: vrep.Records, Covered: vrep.Covered,
			DatabaseCheckpoints: vrep.Checkpoints, ExternalCheckpoints: vrep.External,
			NewestExternal: vrep.NewestExternal, Warnings: vrep.Warnings,
			ElapsedMillis: vrep.Elapsed.Milliseconds(),
		},
		Checkpoints: cps.list, CheckpointsTotal: cps.total,
		OrderTools: opts.OrderTools, MaxRows: opts.MaxRows,
	}
	for _, w := range opts.Witnesses {
		r.Witnesses = append(r.Witnesses, w.Name())
	}
	// One pass over the log: the records of the period, and the retention records before its
	// end (the retention in force may have been recorded before the period began). Time is
	// the indexed column, which verification checked against the record. Records a running
	// gateway appended after verification are not read: the report covers verified records
	// only.
	c := newCollector(r, &opts)
	var seen int64
	err = st.Scan(ctx, 0, func(rec *store.Record) error {
		if rec.Seq >= vrep.Records {
			return nil
		}
		seen++
		if opts.Progress != nil && seen%100000 == 0 {
			opts.Progress("collect", seen, vrep.Records)
		}
		if !rec.Time.Before(opts.To) {
			return nil
		}
		if rec.Kind == string(audit.KindRetention) {
			if err := c.retention(rec); err != nil {
				return err
			}
		}
		if rec.Time.Before(opts.From) {
			return nil
		}
		if err := c.add(rec); err != nil {
			return err
		}
		if c.n%4096 == 0 {
			return ctx.Err()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the audit log: %w", err)
	}
	c.finish()
	r.Controls = controls(r)
	r.Elapsed = now().Sub(start).Milliseconds()
	return r, nil
}

func (o *Options) check() error {
	var errs []error
	if o.From.IsZero() || o.To.IsZero() {
		errs = append(errs, errors.New("the period needs both a start (--from) and an end (--to)"))
	} else if !o.To.After(o.From) {
		errs = append(errs, fmt.Errorf("the period ends (%s) before it starts (%s)", o.To.UTC().Format(time.RFC3339), o.From.UTC().Format(time.RFC3339)))
	}
	if o.Signer == nil {
		errs = append(errs, errors.New("the log's signing key is required: it checks the checkpoints and signs the report"))
	}
	if o.MaxRows < 0 || o.MaxRows > MaxMaxRows {
		errs = append(errs, fmt.Errorf("the row limit %d is outside 1..%d", o.MaxRows, MaxMaxRows))
	}
	for _, p := range o.OrderTools {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			errs = append(errs, fmt.Errorf("order tool pattern %q is not a valid pattern", p))
		}
	}
	return errors.Join(errs...)
}

// chain is the checkpoint chain: the newest checkpoints, at most maxCheckpoints of them.
type chain struct {
	list     []Checkpoint
	total    int64
	cosigned map[string]bool // the witnesses that cosigned any checkpoint, listed or not
}

// maxCheckpoints bounds the checkpoints listed in a report (the newest are kept).
const maxCheckpoints = 200

// checkpointChain reads the log's checkpoints (database, directory, witnessed copies and
// Extra) and which witnesses cosigned each. It returns the cosigned checkpoints for Verify to
// check against the records, and the chain to show. Signatures are checked by Verify; here a
// checkpoint whose log signature does not verify is left out of the chain (Verify reports it).
func checkpointChain(ctx context.Context, st store.Store, logKey note.Verifier, opts *Options) ([]audit.ExternalCheckpoint, chain, error) {
	bySize := map[int64]*Checkpoint{}
	add := func(source string, t time.Time, msg []byte) {
		tree, by, err := witness.Cosigners(msg, logKey, opts.Witnesses)
		if err != nil || tree.Origin != opts.Origin {
			return
		}
		c := bySize[tree.Size]
		if c == nil {
			c = &Checkpoint{Size: tree.Size, RootHash: fmt.Sprintf("%x", tree.Hash[:])}
			bySize[tree.Size] = c
		}
		if !t.IsZero() && (c.Time.IsZero() || t.Before(c.Time)) {
			c.Time = t.UTC()
		}
		if !slices.Contains(c.Sources, source) {
			c.Sources = append(c.Sources, source)
		}
		for _, w := range by {
			if !slices.Contains(c.Witnesses, w.Name()) {
				c.Witnesses = append(c.Witnesses, w.Name())
			}
		}
	}
	dbcps, err := st.Checkpoints(ctx)
	if err != nil {
		return nil, chain{}, fmt.Errorf("read checkpoints: %w", err)
	}
	for _, c := range dbcps {
		add("database", c.Time, c.Note)
	}
	var extra []audit.ExternalCheckpoint
	if opts.CheckpointDir != "" {
		files, err := audit.ReadCheckpointDir(opts.CheckpointDir)
		if err != nil {
			return nil, chain{}, err
		}
		for _, f := range files {
			add("checkpoint directory", time.Time{}, f.Note)
		}
		wfiles, err := witness.ReadWitnessedDir(opts.CheckpointDir)
		if err != nil {
			return nil, chain{}, err
		}
		for _, f := range wfiles {
			add("cosigned copy", time.Time{}, f.Note)
		}
		extra = append(extra, wfiles...)
	}
	for _, e := range opts.Extra {
		add("witness", time.Time{}, e.Note)
	}
	extra = append(extra, opts.Extra...)
	sizes := make([]int64, 0, len(bySize))
	for s := range bySize {
		sizes = append(sizes, s)
	}
	slices.Sort(sizes)
	ch := chain{total: int64(len(sizes)), cosigned: map[string]bool{}}
	for _, c := range bySize {
		for _, w := range c.Witnesses {
			ch.cosigned[w] = true
		}
	}
	if len(sizes) > maxCheckpoints {
		sizes = sizes[len(sizes)-maxCheckpoints:]
	}
	for _, s := range sizes {
		c := bySize[s]
		slices.Sort(c.Witnesses)
		ch.list = append(ch.list, *c)
	}
	return extra, ch, nil
}
