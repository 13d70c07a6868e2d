package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/store"
)

// Sealer seals the personal data of records about data subjects; internal/gdpr implements it
// (docs/gdpr.md). Append calls it, in the caller's goroutine, for every record with arguments.
type Sealer interface {
	// Seal leaves rec alone when its tool names no data subject. Otherwise it sets
	// rec.Subjects (each subject's commitment, key id and sealed data) and replaces the subjects'
	// identifiers in rec.Arguments with their commitments. redact is the log's redaction, which
	// Seal applies to the arguments it seals. An error refuses the record; one that wraps
	// ErrRecordRefused says the record itself breaks a rule, so that retrying cannot help.
	Seal(ctx context.Context, rec *Record, redact func([]byte) []byte) error
}

// ErrRecordRefused: the record cannot be recorded as it is (its content breaks a rule of the
// log, such as naming too many data subjects); unlike ErrUnavailable, a retry does not help.
// Its message is written for the caller whose call it was.
var ErrRecordRefused = errors.New("the call cannot be recorded as it is")

// IndexErasures is the subject-index key every erasure record is indexed under too, so that the
// keys erasures destroyed are found at start without reading the whole log.
const IndexErasures = "kind:erasure"

// indexKeys returns the store's subject-index keys of rec: its subjects' commitments, and
// IndexErasures for an erasure record.
func indexKeys(rec *Record) []string {
	keys := commitments(rec.Subjects)
	if rec.Kind == KindErasure {
		keys = append(keys, IndexErasures)
	}
	return keys
}

// commitments returns the distinct commitments of subjects, for the store's subject index.
func commitments(subjects []Sealed) []string {
	if len(subjects) == 0 {
		return nil
	}
	out := make([]string, 0, len(subjects))
	for _, s := range subjects {
		dup := false
		for _, c := range out {
			dup = dup || c == s.Commitment
		}
		if !dup && s.Commitment != "" {
			out = append(out, s.Commitment)
		}
	}
	return out
}

// Kinds that retention never prunes: verification needs the retention records, and erasure and
// hold records must outlive what they speak of.
var unprunable = map[Kind]bool{KindRetention: true, KindErasure: true, KindLegalHold: true}

// Prunable reports whether records of kind k may be pruned by retention.
func Prunable(k Kind) bool { return !unprunable[k] }

// RetentionDetail is the Detail of a KindRetention record: which records the pruning that
// follows it removes the payload of, and under which retention.
type RetentionDetail struct {
	// Policies are the retentions applied, one per pruned kind.
	Policies []RetentionPolicy `json:"policies"`
	// Ranges are the pruned records, as runs [first, last] of sequence numbers; each record in
	// a run is of one of the Policies' kinds and older than its cut-off.
	Ranges [][2]int64 `json:"ranges"`
	// Pruned is the number of records the ranges hold.
	Pruned int64 `json:"pruned"`
	// Held counts the records past their retention kept because a legal hold covers them.
	Held int64 `json:"held,omitempty"`
}

// RetentionPolicy is the retention applied to one kind.
type RetentionPolicy struct {
	Kind Kind `json:"kind"`
	// Retention is the retention in force, as configured ("7y").
	Retention string `json:"retention"`
	// Before is the cut-off (the retention record's time less the retention), in the records'
	// time format: only older records are pruned.
	Before string `json:"before"`
}

// MaxPrunedRanges bounds the ranges of one retention record; a pruning that needs more writes
// several records.
const MaxPrunedRanges = 1000

// prunedMark is the member that marks a record's data as pruned; no record has it.
const prunedMark = `"pruned":true`

// PrunedForm returns what replaces a record's data when retention prunes it: its version,
// sequence number and indexed fields (time, kind, request id, principal, tool, decision), and
// the mark "pruned": everything else (arguments, subjects, outcome, detail, client address,
// roles, reasons) is gone. The record's leaf hash is kept by the store; Verify accepts it for a
// pruned record only when a later retention record covers it.
func PrunedForm(r *Record) []byte {
	dst := make([]byte, 0, 200)
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, int64(r.Version), 10)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendInt(dst, r.Seq, 10)
	dst = append(dst, `,"time":`...)
	dst = jsonrpc.AppendQuoteHTML(dst, r.Time.UTC().Format(timeFormat))
	dst = append(dst, `,"kind":`...)
	dst = jsonrpc.AppendQuoteHTML(dst, string(r.Kind))
	dst = appendField(dst, "request_id", r.RequestID)
	dst = appendField(dst, "principal", r.Principal)
	dst = appendField(dst, "tool", r.Tool)
	dst = appendField(dst, "decision", r.Decision)
	dst = append(append(dst, ','), prunedMark...)
	return append(dst, '}')
}

// IsPruned reports whether a stored record's data is a pruned form (PrunedForm) rather than a
// record: ParseRecord refuses it. Readers of the log (search, export, the report) show it as a
// pruned record.
func IsPruned(data []byte) bool {
	return bytes.HasSuffix(data, []byte(","+prunedMark+"}"))
}

// PrunedRecord decodes a pruned form into the fields it keeps.
func PrunedRecord(data []byte) (*Record, error) {
	if !IsPruned(data) {
		return nil, fmt.Errorf("decode pruned audit record: not a pruned record")
	}
	var r struct {
		Record
		Pruned bool `json:"pruned"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("decode pruned audit record: %w", err)
	}
	if !bytes.Equal(PrunedForm(&r.Record), data) {
		return nil, fmt.Errorf("decode pruned audit record: the encoding is not canonical")
	}
	return &r.Record, nil
}

// retentionCover is one range of a retention record, as the verifier checks pruned records
// against it.
type retentionCover struct {
	from, to  int64
	before    map[string]time.Time // cut-off by kind
	at        int64                // the retention record's sequence number
	atTime    time.Time            // and its time
	confirmed *bool                // the scan reached the record and its leaf matched
}

// retentionCovers reads every retention record through the store's kind column, before the
// scan, so that pruned records can be checked as they are reached. The scan then confirms each
// retention record it read: one whose data does not verify covers nothing.
func retentionCovers(ctx context.Context, st store.Store) ([]retentionCover, map[int64]*retentionRead, error) {
	var covers []retentionCover
	read := map[int64]*retentionRead{}
	err := st.Search(ctx, store.Query{Kind: string(KindRetention), AfterSeq: -1}, func(r *store.Record) error {
		rec, err := ParseRecord(r.Data)
		if err != nil || rec.Kind != KindRetention || rec.Seq != r.Seq {
			return nil // the scan reports it
		}
		var d RetentionDetail
		dec := json.NewDecoder(bytes.NewReader(rec.Detail))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&d); err != nil {
			return nil // a detail that does not decode covers nothing
		}
		rr := &retentionRead{data: bytes.Clone(r.Data), time: rec.Time}
		read[r.Seq] = rr
		before := map[string]time.Time{}
		for _, p := range d.Policies {
			if t, err := time.Parse(timeFormat, p.Before); err == nil && Prunable(p.Kind) && !t.After(rec.Time) {
				before[string(p.Kind)] = t
			}
		}
		for _, rg := range d.Ranges {
			if rg[0] <= rg[1] && rg[1] < r.Seq {
				covers = append(covers, retentionCover{from: rg[0], to: rg[1], before: before, at: r.Seq, atTime: rec.Time, confirmed: &rr.confirmed})
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	sort.Slice(covers, func(i, j int) bool { return covers[i].from < covers[j].from })
	return covers, read, nil
}

// retentionRead is a retention record as retentionCovers read it.
type retentionRead struct {
	data      []byte
	time      time.Time
	confirmed bool
}

// cover returns the range that covers seq, or nil. A pruning names only the records it prunes,
// so ranges rarely overlap.
func cover(covers []retentionCover, seq int64) *retentionCover {
	i := sort.Search(len(covers), func(i int) bool { return covers[i].from > seq })
	// Two instances pruning at once may name a record twice; look a few ranges back.
	for j := i - 1; j >= 0 && j >= i-8; j-- {
		if covers[j].to >= seq {
			return &covers[j]
		}
	}
	return nil
}
