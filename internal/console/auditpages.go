package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/store"
)

// The audit pages read the store with bounded queries only: a page lists at most pageRows
// records, and examines at most maxScan records' index columns to find them, newest first, in
// windows walking back from the newest record (or from the one before ?before=N). A search
// that has not found pageRows matches within maxScan records says so and links on.
const (
	pageRows     = 100
	maxScan      = 1 << 16
	firstWindow  = 4096
	maxWindow    = 1 << 16
	maxFieldText = 256 // a search field
)

// kinds are the record kinds the search offers.
var kinds = []audit.Kind{audit.KindToolCall, audit.KindOutcome, audit.KindAuthFailure, audit.KindPolicyDenial,
	audit.KindRateLimit, audit.KindApproval, audit.KindQuarantine, audit.KindAdmin, audit.KindPolicyReload,
	audit.KindBlock, audit.KindSuspend, audit.KindAlert, audit.KindErasure, audit.KindRetention,
	audit.KindLegalHold, audit.KindSubject}

// row is one record as a list shows it.
type row struct {
	Seq                             int64
	Time                            time.Time
	Kind, Principal, Tool, Decision string
}

var errStop = errors.New("stop")

// newest returns the records matching q with seq < before, newest first, at most want, and the
// lowest seq it examined (0 when it reached the start of the log). It examines at most budget
// records: windows of growing size, each searched in sequence order, keeping its last matches.
func newest(ctx context.Context, st store.Store, q store.Query, before int64, want int, budget int64) ([]row, int64, error) {
	filtered := q.Principal != "" || q.Tool != "" || q.Decision != "" || q.Kind != "" || !q.Since.IsZero() || !q.Until.IsZero()
	window := int64(want)
	if filtered {
		window = firstWindow
	}
	// Time bounds become sequence bounds, found by binary search, so that the walk starts in
	// the range and ends with it; the time filters stay in the query.
	var floor int64
	if !q.Until.IsZero() {
		n, err := seqAt(ctx, st, q.Until, 0, before)
		if err != nil {
			return nil, 0, err
		}
		before = min(before, n+timeSlack)
	}
	if !q.Since.IsZero() {
		n, err := seqAt(ctx, st, q.Since, 0, before)
		if err != nil {
			return nil, 0, err
		}
		floor = max(0, n-timeSlack)
	}
	var rows []row
	hi := before
	buf := make([]row, want)
	for hi > floor && len(rows) < want && before-hi < budget {
		lo := max(floor, hi-min(window, budget-(before-hi)))
		need, n := want-len(rows), 0
		q.AfterSeq, q.Limit = lo-1, 0
		end := hi
		err := st.Search(ctx, q, func(r *store.Record) error {
			if r.Seq >= end {
				return errStop
			}
			buf[n%need] = row{Seq: r.Seq, Time: r.Time, Kind: r.Kind, Principal: r.Principal, Tool: r.Tool, Decision: r.Decision}
			n++
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			return nil, 0, err
		}
		for i := range min(n, need) {
			rows = append(rows, buf[(n-1-i)%need])
		}
		hi = lo
		window = min(window*2, maxWindow)
	}
	return rows, hi, nil
}

// timeSlack is how far, in records, a search reaches past the sequence numbers seqAt finds for
// its time bounds: records are appended in about, not exactly, time order.
const timeSlack = 4096

// seqAt returns the first sequence number in [lo, hi) whose record's time is at or after t, or
// hi: a binary search by Get, for logs appended in time order (about twenty reads for a
// million records).
func seqAt(ctx context.Context, st store.Store, t time.Time, lo, hi int64) (int64, error) {
	for lo < hi {
		mid := lo + (hi-lo)/2
		r, err := st.Get(ctx, mid)
		if err != nil {
			return 0, err
		}
		if r.Time.Before(t) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// verifyStatus is the audit page's status block.
type verifyStatus struct {
	State        string // "verified", "failed", "unsigned", "off"
	Reason       string
	Records      int64
	TreeSize     int64
	CheckpointAt time.Time
	Age          string
	Unsigned     int64
}

// status checks the newest signed checkpoint against the store: its signature, and the stored
// tree hashes leading from its last record to its root (an inclusion proof), plus the running
// log's own state. It reads the checkpoints and a logarithmic number of hashes, never the
// records.
func (c *Console) status(ctx context.Context) verifyStatus {
	st := c.st.Audit
	if st == nil {
		return verifyStatus{State: "off", Reason: "no audit log is configured (audit:)"}
	}
	var v verifyStatus
	var err error
	if v.Records, err = st.Size(ctx); err != nil {
		return verifyStatus{State: "failed", Reason: "the audit store cannot be read: " + err.Error()}
	}
	if c.opts.AuditStats != nil {
		s := c.opts.AuditStats()
		v.Unsigned = s.Unsigned
		if s.Failed {
			v.State, v.Reason = "failed", "the audit log refuses appends: a sync or a checkpoint failed; restart mcpguard and run mcpguard audit verify"
		}
	}
	cps, err := st.Checkpoints(ctx)
	if err != nil {
		return verifyStatus{State: "failed", Reason: "the checkpoints cannot be read: " + err.Error(), Records: v.Records}
	}
	if len(cps) > 0 {
		last := cps[len(cps)-1]
		v.TreeSize, v.CheckpointAt = last.Size, last.Time
		v.Age = c.now().Sub(last.Time).Round(time.Second).String()
	}
	switch {
	case v.State != "":
	case c.st.Verifier == nil:
		v.State, v.Reason = "unsigned", "the audit log has no signing key (audit.signing_key_file): its checkpoints cannot be verified"
	case len(cps) == 0:
		v.State, v.Reason = "unsigned", "no checkpoint has been signed yet"
	case v.TreeSize == 0:
		v.State, v.Reason = "verified", "the newest checkpoint names an empty log"
	default:
		if _, err := audit.ProveInclusion(ctx, st, v.TreeSize-1, c.st.Verifier); err != nil {
			v.State, v.Reason = "failed", err.Error()
		} else {
			v.State, v.Reason = "verified", fmt.Sprintf("the newest checkpoint (%d records) is signed by the log's key and the stored tree hashes lead to its root", v.TreeSize)
		}
	}
	return v
}

// searchForm is the audit search as the form sends it.
type searchForm struct {
	Principal, Tool, Decision, Kind, Since, Until string
}

type auditData struct {
	Status   verifyStatus
	Form     searchForm
	Kinds    []audit.Kind
	Rows     []row
	Searched int64  // records examined
	Older    string // the link to older matches, "" at the start of the log
}

// parseTime reads a search bound: RFC 3339, or a date and time in UTC as a browser's
// datetime-local input sends it.
func parseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%s %q is not a time: write it as 2026-12-06T09:30 (UTC) or in RFC 3339", field, s)
}

// query reads the search form into a store query; a bad field is a specific error.
func query(v url.Values) (searchForm, store.Query, error) {
	f := searchForm{Principal: v.Get("principal"), Tool: v.Get("tool"), Decision: v.Get("decision"), Kind: v.Get("kind"),
		Since: v.Get("since"), Until: v.Get("until")}
	q := store.Query{Principal: f.Principal, Tool: f.Tool, Decision: f.Decision, Kind: f.Kind}
	for name, s := range map[string]string{"principal": f.Principal, "tool": f.Tool} {
		if len(s) > maxFieldText {
			return f, q, fmt.Errorf("%s is longer than %d bytes", name, maxFieldText)
		}
	}
	switch f.Decision {
	case "", audit.DecisionAllow, audit.DecisionDeny:
	default:
		return f, q, fmt.Errorf("decision must be %q or %q", audit.DecisionAllow, audit.DecisionDeny)
	}
	if f.Kind != "" {
		known := false
		for _, k := range kinds {
			known = known || string(k) == f.Kind
		}
		if !known {
			return f, q, fmt.Errorf("kind %q is not a record kind", f.Kind)
		}
	}
	var err error
	if q.Since, err = parseTime("since", f.Since); err != nil {
		return f, q, err
	}
	if q.Until, err = parseTime("until", f.Until); err != nil {
		return f, q, err
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return f, q, errors.New("since must be before until")
	}
	return f, q, nil
}

// auditPage is the console's home: the log's verify status and checkpoint age, and the newest
// records, or a search.
func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, s *session) {
	p := &page{Title: "Audit log", Nav: "audit"}
	d := &auditData{Kinds: kinds}
	p.Data = d
	if c.st.Audit == nil {
		d.Status = verifyStatus{State: "off", Reason: "no audit log is configured (audit:)"}
		c.render(w, r, http.StatusOK, "audit", s, p)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	d.Status = c.status(ctx)
	f, q, err := query(r.URL.Query())
	d.Form = f
	if err != nil {
		p.Flash = &flash{Message: "search refused: " + err.Error(), Error: true}
		c.render(w, r, http.StatusBadRequest, "audit", s, p)
		return
	}
	before := d.Status.Records
	if b := r.URL.Query().Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 0 {
			p.Flash = &flash{Message: "before must be a record number", Error: true}
			c.render(w, r, http.StatusBadRequest, "audit", s, p)
			return
		}
		before = min(n, before)
	}
	rows, from, err := newest(ctx, c.st.Audit, q, before, pageRows, maxScan)
	if err != nil {
		c.logger.Error("console audit search failed", "err", err)
		p.Flash = &flash{Message: "the audit store cannot be searched: try again later", Error: true}
		c.render(w, r, http.StatusServiceUnavailable, "audit", s, p)
		return
	}
	d.Rows, d.Searched = rows, before-from
	if from > 0 {
		v := r.URL.Query()
		v.Set("before", strconv.FormatInt(from, 10))
		if len(rows) == pageRows {
			v.Set("before", strconv.FormatInt(rows[len(rows)-1].Seq, 10))
		}
		d.Older = "/console/audit?" + v.Encode()
	}
	c.render(w, r, http.StatusOK, "audit", s, p)
}

type recordData struct {
	Seq    int64
	Record *audit.Record
	JSON   string
	Proof  *proofView
}

type proofView struct {
	Hashes     []string
	Checkpoint string
	TreeSize   int64
	Checks     bool
	Problem    string
}

// recordPage shows one record, its canonical JSON and its inclusion proof against the first
// signed checkpoint that covers it, checked with the log's public key.
func (c *Console) recordPage(w http.ResponseWriter, r *http.Request, s *session) {
	p := &page{Title: "Audit record", Nav: "audit"}
	seq, err := strconv.ParseInt(r.PathValue("seq"), 10, 64)
	if err != nil || seq < 0 {
		p.Error = "no such record: the record number must be a non-negative integer"
		c.render(w, r, http.StatusNotFound, "record", s, p)
		return
	}
	if c.st.Audit == nil {
		p.Error = "no audit log is configured (audit:)"
		c.render(w, r, http.StatusNotFound, "record", s, p)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	sr, err := c.st.Audit.Get(ctx, seq)
	if errors.Is(err, store.ErrNotFound) {
		p.Error = fmt.Sprintf("no record %d in the audit log", seq)
		c.render(w, r, http.StatusNotFound, "record", s, p)
		return
	}
	if err != nil {
		c.logger.Error("console record read failed", "seq", seq, "err", err)
		p.Error = "the audit store cannot be read: try again later"
		c.render(w, r, http.StatusServiceUnavailable, "record", s, p)
		return
	}
	d := &recordData{Seq: seq, JSON: prettyJSON(string(sr.Data))}
	p.Title = fmt.Sprintf("Audit record %d", seq)
	p.Data = d
	if d.Record, err = audit.ParseRecord(sr.Data); err != nil {
		p.Flash = &flash{Message: "the record does not parse: " + err.Error() + " (run mcpguard audit verify)", Error: true}
	}
	d.Proof = &proofView{}
	if c.st.Verifier == nil {
		d.Proof.Problem = "the audit log has no signing key (audit.signing_key_file): there is no signed checkpoint to prove the record against"
	} else if ip, err := audit.ProveInclusion(ctx, c.st.Audit, seq, c.st.Verifier); err != nil {
		d.Proof.Problem = err.Error()
	} else {
		for _, h := range ip.Proof {
			d.Proof.Hashes = append(d.Proof.Hashes, fmt.Sprintf("%x", h[:]))
		}
		d.Proof.Checkpoint = ip.Checkpoint
		if t, err := audit.ParseCheckpoint([]byte(ip.Checkpoint), c.st.Verifier); err == nil {
			d.Proof.TreeSize = t.Size
		}
		if err := audit.VerifyInclusion(ip, c.st.Verifier, c.opts.Origin); err != nil {
			d.Proof.Problem = err.Error()
		} else {
			d.Proof.Checks = true
		}
	}
	c.render(w, r, http.StatusOK, "record", s, p)
}
