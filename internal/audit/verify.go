package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/mcpguard/mcpguard/internal/store"
)

// VerifyOptions configures Verify.
type VerifyOptions struct {
	// Verifier checks checkpoint signatures (required).
	Verifier note.Verifier
	// Origin is the log name checkpoints must carry (default DefaultOrigin).
	Origin string
	// CheckpointDir holds the external checkpoints. Without it a truncated tail or a wholly
	// replaced log cannot be detected; the report says so.
	CheckpointDir string
	// Extra are signed checkpoints from elsewhere (those a witness cosigned), checked like the
	// directory's: signature, origin, root against the records, none larger than the log. Path
	// describes where each came from in the report.
	Extra []ExternalCheckpoint
	// Progress, when set, is called every ProgressEvery records and at the end.
	Progress      func(done, total int64)
	ProgressEvery int64
	// MaxProblems stops the report growing (default 20); verification still runs to the end.
	MaxProblems int
	// Now is the verifier's clock (default time.Now): a retention record dated after it pruned
	// by a clock set ahead.
	Now func() time.Time
}

// Problem is one thing verification found wrong.
type Problem struct {
	// Seq is the first record affected, or -1 when the problem is not tied to a record.
	Seq  int64
	What string
}

func (p Problem) String() string {
	if p.Seq < 0 {
		return p.What
	}
	return fmt.Sprintf("record %d: %s", p.Seq, p.What)
}

// Report is the result of Verify.
type Report struct {
	Records        int64
	Checkpoints    int   // valid checkpoints in the database
	External       int   // valid checkpoint files
	NewestExternal int64 // size of the newest valid external checkpoint (0: none)
	Covered        int64 // records covered by a signed checkpoint that matched
	Pruned         int64 // records whose payload retention removed, each covered by a retention record
	Problems       []Problem
	Dropped        int // problems beyond MaxProblems
	Warnings       []string
	Elapsed        time.Duration
}

// OK reports whether no tampering was found.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// First returns the problem with the lowest record number (problems without one come last).
func (r *Report) First() (Problem, bool) {
	if len(r.Problems) == 0 {
		return Problem{}, false
	}
	ps := append([]Problem(nil), r.Problems...)
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i].Seq, ps[j].Seq
		if (a < 0) != (b < 0) {
			return b < 0
		}
		return a < b
	})
	return ps[0], true
}

type expectedTree struct {
	hash   tlog.Hash
	source string
}

type verifier struct {
	opts     VerifyOptions
	rep      *Report
	trees    map[int64][]expectedTree
	lastGood int64 // size of the newest checkpoint that matched
	cpFailed bool  // a checkpoint mismatch was reported; later ones repeat it
}

// firstSince returns the first record problem at or after seq, or seq: the checkpoint that
// fails then points at the record already named.
func (v *verifier) firstSince(seq int64) int64 {
	for _, p := range v.rep.Problems {
		if p.Seq >= seq {
			return p.Seq
		}
	}
	return seq
}

// problem records a finding. When the report is full, a finding about an earlier record
// replaces the one about the latest record, so the first bad record is always named.
func (v *verifier) problem(seq int64, format string, args ...any) {
	p := Problem{Seq: seq, What: fmt.Sprintf(format, args...)}
	if len(v.rep.Problems) < v.opts.MaxProblems {
		v.rep.Problems = append(v.rep.Problems, p)
		return
	}
	v.rep.Dropped++
	if seq < 0 {
		return
	}
	latest := -1
	for i, q := range v.rep.Problems {
		if q.Seq > seq && (latest < 0 || q.Seq > v.rep.Problems[latest].Seq) {
			latest = i
		}
	}
	if latest >= 0 {
		v.rep.Problems[latest] = p
	}
}

// indexed is the part of a record the verifier compares with the indexed columns.
type indexed struct {
	Pruned    bool   `json:"pruned"`
	Version   int    `json:"v"`
	Seq       int64  `json:"seq"`
	Time      string `json:"time"`
	Kind      string `json:"kind"`
	RequestID string `json:"request_id"`
	Principal string `json:"principal"`
	Tool      string `json:"tool"`
	Decision  string `json:"decision"`
	// Subjects are the commitments of the record's "subjects" (the store's subject index
	// keys, with IndexErasures for an erasure record).
	Subjects []string `json:"-"`
}

// Verify recomputes every leaf hash and the Merkle tree from the stored records, compares them
// with the stored tree hashes, checks every checkpoint's signature (in the database and in
// CheckpointDir) against the recomputed tree, and reports what is wrong, naming the first bad
// record. The error is for failures to read; tampering is reported in the Report.
func Verify(ctx context.Context, st store.Store, opts VerifyOptions) (*Report, error) {
	start := time.Now()
	if opts.Verifier == nil {
		return nil, fmt.Errorf("verify audit log: a verifier key is required")
	}
	if opts.Origin == "" {
		opts.Origin = DefaultOrigin
	}
	if opts.MaxProblems <= 0 {
		opts.MaxProblems = 20
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = 100000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	v := &verifier{opts: opts, rep: &Report{}, trees: map[int64][]expectedTree{}}
	total, err := st.Size(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify audit log: %w", err)
	}
	cps, err := st.Checkpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify audit log: %w", err)
	}
	for _, c := range cps {
		src := fmt.Sprintf("database checkpoint at size %d", c.Size)
		t, ok := v.checkpoint(src, c.Note)
		if !ok {
			continue
		}
		if t.Size != c.Size {
			v.problem(-1, "%s: its size column says %d but the signed text says %d", src, c.Size, t.Size)
			continue
		}
		v.rep.Checkpoints++
	}
	if opts.CheckpointDir == "" {
		v.rep.Warnings = append(v.rep.Warnings, "no checkpoint directory given: a truncated tail or a replaced log cannot be detected")
	} else {
		ext, err := ReadCheckpointDir(opts.CheckpointDir)
		if err != nil {
			return nil, fmt.Errorf("verify audit log: %w", err)
		}
		for _, e := range ext {
			t, ok := v.checkpoint("checkpoint file "+e.Path, e.Note)
			if !ok {
				continue
			}
			v.rep.External++
			v.rep.NewestExternal = max(v.rep.NewestExternal, t.Size)
		}
		if v.rep.External == 0 {
			v.rep.Warnings = append(v.rep.Warnings, "the checkpoint directory holds no valid checkpoint")
		}
	}
	for _, e := range opts.Extra {
		v.checkpoint(e.Path, e.Note)
	}
	for size, ts := range v.trees {
		for _, t := range ts[1:] {
			if t.hash != ts[0].hash {
				v.problem(-1, "%s and %s sign different trees of the same size %d: the log was forked or replaced", ts[0].source, t.source, size)
			}
		}
	}

	covers, retentions, err := retentionCovers(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("verify audit log: read retention records: %w", err)
	}
	pr := prunedCheck{v: v, covers: covers, retentions: retentions, now: opts.Now()}

	var f frontier
	mem := f.reader(ctx, nil)
	next := int64(0)
	treeOK := true
	hashReported := false
	var idx indexed
	var dec indexDecoder
	var subjectIndex []subjectEntry
	err = st.Scan(ctx, 0, func(r *store.Record) error {
		seq := r.Seq
		if seq != next {
			if seq > next {
				v.problem(next, "records %d..%d are missing (deleted rows)", next, seq-1)
			} else {
				v.problem(seq, "appears twice")
			}
			treeOK = false
			next = seq
		}
		idx = indexed{}
		if err := dec.decode(r.Data, &idx); err != nil {
			v.problem(seq, "the stored record does not decode (%v): it was edited", err)
		} else {
			v.columns(r, &idx)
		}
		pruned := idx.Pruned && IsPruned(r.Data)
		if pruned {
			pr.pruned(r)
		} else {
			pr.record(r)
			// A pruned record leaves the subject index (store.Compliance.Prune).
			keys := idx.Subjects
			if idx.Kind == string(KindErasure) {
				keys = append(keys, IndexErasures)
			}
			for _, k := range keys {
				subjectIndex = append(subjectIndex, subjectEntry{seq, k})
			}
		}
		if treeOK {
			var hashes []tlog.Hash
			var err error
			if pruned && len(r.Hashes) >= 32 {
				// The payload is gone: the stored leaf hash stands for it, as the covering
				// retention record vouches.
				hashes, err = tlog.StoredHashesForRecordHash(seq, tlog.Hash(r.Hashes[:32]), mem)
			} else {
				hashes, err = tlog.StoredHashes(seq, r.Data, mem)
			}
			if err != nil {
				return fmt.Errorf("record %d: %w", seq, err)
			}
			f.add(seq, hashes)
			if !pruned && len(r.Hashes) >= 32 && bytes.Equal(r.Hashes[:32], hashes[0][:]) {
				pr.leafMatched(r)
			}
			v.compareHashes(seq, hashes, r.Hashes, &hashReported)
			if ts, ok := v.trees[seq+1]; ok {
				th, err := tlog.TreeHash(seq+1, mem)
				if err != nil {
					return fmt.Errorf("tree at size %d: %w", seq+1, err)
				}
				good := true
				for _, t := range ts {
					if t.hash != th {
						good = false
						if !v.cpFailed {
							v.problem(v.firstSince(v.lastGood), "%s does not match records 0..%d: a record from %d on was changed, inserted or removed, or the log was replaced", t.source, seq, v.lastGood)
						}
					}
				}
				v.cpFailed = v.cpFailed || !good
				if good {
					v.lastGood, v.rep.Covered = seq+1, seq+1
				}
			}
		}
		next++
		if opts.Progress != nil && next%opts.ProgressEvery == 0 {
			opts.Progress(next, total)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("verify audit log: %w", err)
	}
	v.rep.Records = next
	if opts.Progress != nil {
		opts.Progress(next, total)
	}
	pr.finish()
	var sizes []int64
	for size := range v.trees {
		sizes = append(sizes, size)
	}
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] < sizes[j] })
	for _, size := range sizes {
		if size > next {
			v.problem(next, "%s covers %d records but the log holds %d: the tail was truncated", v.trees[size][0].source, size, next)
			break
		}
	}
	// The search structures are checked against the records' indexed columns, which were
	// checked against the hashed data above: an edited structure could hide records from
	// `audit search` without changing a single record.
	// They are derived from those columns, so they are checked only once the records verify.
	if ic, ok := st.(store.IndexChecker); ok && len(v.rep.Problems) > 0 {
		v.rep.Warnings = append(v.rep.Warnings, "the search index was not checked: the records themselves are damaged")
	} else if ok {
		if err := ic.CheckIndex(ctx); err != nil {
			var mis *store.IndexMismatch
			if !errors.As(err, &mis) {
				return nil, fmt.Errorf("verify audit log: check search index: %w", err)
			}
			v.problem(mis.FirstSeq, "%s", mis.What)
		}
	}
	if sr, ok := st.(store.SubjectIndexReader); ok && len(v.rep.Problems) > 0 {
		v.rep.Warnings = append(v.rep.Warnings, "the subject index was not checked: the records themselves are damaged")
	} else if ok {
		sort.Slice(subjectIndex, func(i, j int) bool {
			a, b := subjectIndex[i], subjectIndex[j]
			return a.seq < b.seq || a.seq == b.seq && a.key < b.key
		})
		subjectIndex = slices.Compact(subjectIndex)
		if err := v.checkSubjectIndex(ctx, sr, subjectIndex); err != nil {
			return nil, fmt.Errorf("verify audit log: check the subject index: %w", err)
		}
	}
	if !treeOK && len(sizes) > 0 {
		v.rep.Warnings = append(v.rep.Warnings, "checkpoints after the first structural problem were not compared")
	}
	if v.rep.Covered < next {
		v.rep.Warnings = append(v.rep.Warnings, fmt.Sprintf("records %d..%d are not yet covered by a signed checkpoint", v.rep.Covered, next-1))
	}
	sort.SliceStable(v.rep.Problems, func(i, j int) bool {
		a, b := v.rep.Problems[i].Seq, v.rep.Problems[j].Seq
		if (a < 0) != (b < 0) {
			return b < 0
		}
		return a < b
	})
	v.rep.Elapsed = time.Since(start)
	return v.rep, nil
}

// checkpoint verifies one signed checkpoint and remembers its tree.
func (v *verifier) checkpoint(src string, msg []byte) (Tree, bool) {
	t, err := ParseCheckpoint(msg, v.opts.Verifier)
	if err != nil {
		v.problem(-1, "%s: %v", src, err)
		return t, false
	}
	if t.Origin != v.opts.Origin {
		v.problem(-1, "%s: it is for log %q, not %q", src, t.Origin, v.opts.Origin)
		return t, false
	}
	v.trees[t.Size] = append(v.trees[t.Size], expectedTree{hash: t.Hash, source: src})
	return t, true
}

// columns compares the indexed columns with the record they were copied from.
func (v *verifier) columns(r *store.Record, idx *indexed) {
	switch {
	case idx.Version != SchemaVersion:
		v.problem(r.Seq, "schema version %d, want %d", idx.Version, SchemaVersion)
	case idx.Seq != r.Seq:
		v.problem(r.Seq, "the row holds record %d: rows were reordered, renumbered or inserted", idx.Seq)
	case idx.Time != r.Time.UTC().Format(timeFormat):
		v.problem(r.Seq, "column time is %s but the record says %s", r.Time.UTC().Format(timeFormat), idx.Time)
	case idx.Kind != r.Kind:
		v.problem(r.Seq, "column kind is %q but the record says %q", r.Kind, idx.Kind)
	case idx.Principal != r.Principal:
		v.problem(r.Seq, "column principal is %q but the record says %q", r.Principal, idx.Principal)
	case idx.Tool != r.Tool:
		v.problem(r.Seq, "column tool is %q but the record says %q", r.Tool, idx.Tool)
	case idx.Decision != r.Decision:
		v.problem(r.Seq, "column decision is %q but the record says %q", r.Decision, idx.Decision)
	case idx.RequestID != r.RequestID:
		v.problem(r.Seq, "column request_id is %q but the record says %q", r.RequestID, idx.RequestID)
	}
}

// compareHashes compares the recomputed tree hashes of a record with the stored ones. After the
// first mismatch above the leaf level (which every later subtree containing it repeats), only
// leaf mismatches are reported.
func (v *verifier) compareHashes(seq int64, computed []tlog.Hash, stored []byte, reported *bool) {
	if len(stored) != 32*len(computed) {
		v.problem(seq, "stores %d bytes of tree hashes, want %d", len(stored), 32*len(computed))
		return
	}
	if !bytes.Equal(stored[:32], computed[0][:]) {
		v.problem(seq, "its content does not match its stored leaf hash: the record was edited")
		return
	}
	if *reported {
		return
	}
	for level := 1; level < len(computed); level++ {
		if !bytes.Equal(stored[32*level:32*level+32], computed[level][:]) {
			*reported = true
			v.problem(seq, "stored tree hash at level %d does not match the records below it: a record before it or the hash was edited", level)
			return
		}
	}
}

// indexDecoder reads the indexed fields of a record and skips the rest, several times faster
// than decoding the whole record; it is reused across records.
type indexDecoder struct {
	rd  bytes.Reader
	dec jsontext.Decoder
}

func (d *indexDecoder) decode(data []byte, idx *indexed) error {
	d.rd.Reset(data)
	d.dec.Reset(&d.rd)
	if tok, err := d.dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return fmt.Errorf("not a JSON object")
	}
	for d.dec.PeekKind() != '}' {
		tok, err := d.dec.ReadToken()
		if err != nil {
			return err
		}
		name := tok.String() // the token is void after the next read
		var str *string
		switch name {
		case "v", "seq":
			tok, err := d.dec.ReadToken()
			if err != nil {
				return err
			}
			if tok.Kind() != '0' {
				return fmt.Errorf("%s is not a number", name)
			}
			n, err := tok.Int()
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if name == "v" {
				idx.Version = int(n)
			} else {
				idx.Seq = n
			}
			continue
		case "pruned":
			tok, err := d.dec.ReadToken()
			if err != nil {
				return err
			}
			idx.Pruned = tok.Kind() == 't'
			continue
		case "subjects":
			if err := d.subjects(idx); err != nil {
				return fmt.Errorf("subjects: %w", err)
			}
			continue
		case "time":
			str = &idx.Time
		case "kind":
			str = &idx.Kind
		case "request_id":
			str = &idx.RequestID
		case "principal":
			str = &idx.Principal
		case "tool":
			str = &idx.Tool
		case "decision":
			str = &idx.Decision
		default:
			if err := d.dec.SkipValue(); err != nil {
				return err
			}
			continue
		}
		tok, err = d.dec.ReadToken()
		if err != nil {
			return err
		}
		if tok.Kind() != '"' {
			return fmt.Errorf("%s is not a string", name)
		}
		*str = tok.String()
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return err
	}
	if _, err := d.dec.ReadToken(); err != io.EOF {
		return fmt.Errorf("data after the record")
	}
	return nil
}

// subjects reads a record's "subjects" array, keeping each element's commitment ("c").
func (d *indexDecoder) subjects(idx *indexed) error {
	if tok, err := d.dec.ReadToken(); err != nil || tok.Kind() != '[' {
		return fmt.Errorf("not an array")
	}
	for d.dec.PeekKind() != ']' {
		if tok, err := d.dec.ReadToken(); err != nil || tok.Kind() != '{' {
			return fmt.Errorf("an element is not an object")
		}
		for d.dec.PeekKind() != '}' {
			tok, err := d.dec.ReadToken()
			if err != nil {
				return err
			}
			if tok.String() != "c" {
				if err := d.dec.SkipValue(); err != nil {
					return err
				}
				continue
			}
			if tok, err = d.dec.ReadToken(); err != nil || tok.Kind() != '"' {
				return fmt.Errorf("c is not a string")
			}
			idx.Subjects = append(idx.Subjects, tok.String())
		}
		if _, err := d.dec.ReadToken(); err != nil {
			return err
		}
	}
	_, err := d.dec.ReadToken()
	return err
}

// subjectEntry is one subject-index entry the records call for.
type subjectEntry struct {
	seq int64
	key string
}

// checkSubjectIndex compares the store's subject index with want, the entries the records call
// for (sorted by seq, then key): a missing entry hides a record from its subject's export, an
// extra one shows a record to a subject it is not about. It reports at most three of each.
func (v *verifier) checkSubjectIndex(ctx context.Context, sr store.SubjectIndexReader, want []subjectEntry) error {
	short := func(k string) string { return k[:min(len(k), 16)] }
	missing, extra, i := 0, 0, 0
	report := func(e subjectEntry, isMissing bool) {
		switch {
		case isMissing && missing < 3:
			v.problem(e.seq, "the subject index lacks this record for subject %s…: an export for that subject would not find it", short(e.key))
		case !isMissing && extra < 3:
			v.problem(e.seq, "the subject index names this record for %s…, which the record does not name: an export for that subject would show it", short(e.key))
		}
		if isMissing {
			missing++
		} else {
			extra++
		}
	}
	err := sr.SubjectIndex(ctx, func(seq int64, key string) error {
		got := subjectEntry{seq, key}
		for i < len(want) && (want[i].seq < seq || want[i].seq == seq && want[i].key < key) {
			report(want[i], true)
			i++
		}
		if i < len(want) && want[i] == got {
			i++
			return nil
		}
		report(got, false)
		return nil
	})
	if err != nil {
		return err
	}
	for ; i < len(want); i++ {
		report(want[i], true)
	}
	return nil
}

// Clock tolerances of the retention checks: records are dated by their callers, slightly out of
// order, and machines' clocks differ a little.
const (
	retentionFutureSkew = 5 * time.Minute
	retentionOrderSkew  = time.Minute
)

// prunedCheck checks, as the scan reaches them, that every pruned record is covered by a later
// retention record that verifies, of its kind, with a cut-off after its time; and that no
// retention record was dated by a clock set ahead (after the verifier's clock, or after records
// that follow it), which would prune records younger than their retention.
type prunedCheck struct {
	v          *verifier
	covers     []retentionCover
	retentions map[int64]*retentionRead
	now        time.Time
	used       map[int64]int64 // retention record → first pruned record it covers
	// latest is the latest-dated retention record reached, and its time.
	latest     int64
	latestTime time.Time
	misdated   bool
}

func (p *prunedCheck) pruned(r *store.Record) {
	p.v.rep.Pruned++
	c := cover(p.covers, r.Seq)
	if c == nil {
		p.v.problem(r.Seq, "its payload was removed (pruned), but no later retention record covers it: pruning cannot hide a record")
		return
	}
	before, ok := c.before[r.Kind]
	switch {
	case !ok:
		p.v.problem(r.Seq, "pruned as a record of kind %q, which retention record %d does not prune", r.Kind, c.at)
		return
	case !r.Time.Before(before):
		p.v.problem(r.Seq, "pruned although younger than its retention: dated %s, retention record %d pruned only records before %s",
			r.Time.UTC().Format(time.RFC3339), c.at, before.UTC().Format(time.RFC3339))
		return
	}
	if p.used == nil {
		p.used = map[int64]int64{}
	}
	if _, ok := p.used[c.at]; !ok {
		p.used[c.at] = r.Seq
	}
}

// record checks a record that is not pruned against the retention records before it.
func (p *prunedCheck) record(r *store.Record) {
	if !p.misdated && !p.latestTime.IsZero() && r.Time.Before(p.latestTime.Add(-retentionOrderSkew)) {
		p.misdated = true
		p.v.problem(p.latest, "retention record dated %s, after the record %d that follows it (%s): it pruned by a clock set ahead",
			p.latestTime.UTC().Format(time.RFC3339), r.Seq, r.Time.UTC().Format(time.RFC3339))
	}
}

// leafMatched is called for a record whose data matches its leaf hash: a retention record is
// then confirmed, and its date checked.
func (p *prunedCheck) leafMatched(r *store.Record) {
	rr := p.retentions[r.Seq]
	if rr == nil || !bytes.Equal(rr.data, r.Data) {
		return
	}
	rr.confirmed = true
	if rr.time.After(p.now.Add(retentionFutureSkew)) {
		p.v.problem(r.Seq, "retention record dated %s, in the future: it pruned by a clock set ahead", rr.time.UTC().Format(time.RFC3339))
	}
	if rr.time.After(p.latestTime) {
		p.latest, p.latestTime = r.Seq, rr.time
	}
}

// finish reports pruned records covered only by retention records the scan did not confirm.
func (p *prunedCheck) finish() {
	for at, first := range p.used {
		if rr := p.retentions[at]; rr == nil || !rr.confirmed {
			p.v.problem(first, "pruned under retention record %d, which does not verify", at)
		}
	}
}
