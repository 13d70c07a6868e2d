package report

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/store"
)

// Bounds of what the collector keeps in memory, whatever the log holds.
const (
	maxBuckets      = 62    // bars of the activity chart
	maxNames        = 10000 // distinct tools, principals, rules, masking rules counted; the rest are "(other)"
	maxTop          = 20    // names listed per count table
	maxHeld         = 10000 // granted approvals waiting for their call
	maxOpenOrders   = 10000 // listed order calls waiting for their outcome
	maxSummaryBytes = 400   // a Detail summed up
	maxArgBytes     = 4096  // arguments shown per order
)

// other is the name under which counts beyond maxNames are kept.
const other = "(other)"

// collector reads the records of the period in sequence order and fills the report.
type collector struct {
	r    *Report
	opts *Options
	n    int64

	bucket  time.Duration
	byKind  map[string]int64
	byTool  bounded
	byActor bounded
	denials bounded
	actions bounded
	masked  bounded
	redact  bounded
	auth    bounded

	orderTool map[string]bool

	// held are the granted approvals not yet matched with a call, by requester and tool.
	held  map[heldKey][]heldApproval
	nHeld int
	// open are the listed orders waiting for their outcome, by request id.
	open map[string]int

	completions []int64
}

type heldKey struct{ requester, tool string }

type heldApproval struct{ id, approver string }

func newCollector(r *Report, opts *Options) *collector {
	c := &collector{r: r, opts: opts, byKind: map[string]int64{},
		byTool: bounded{}, byActor: bounded{}, denials: bounded{}, actions: bounded{}, masked: bounded{}, redact: bounded{}, auth: bounded{},
		held: map[heldKey][]heldApproval{}, open: map[string]int{}, orderTool: map[string]bool{}}
	span := opts.To.Sub(opts.From)
	c.bucket = 24 * time.Hour
	for span > time.Duration(maxBuckets)*c.bucket {
		c.bucket += 24 * time.Hour
	}
	if span <= 48*time.Hour {
		c.bucket = time.Hour
		if span > time.Duration(maxBuckets)*time.Hour {
			c.bucket = 2 * time.Hour
		}
	}
	n := int((span + c.bucket - 1) / c.bucket)
	start := opts.From.UTC()
	if c.bucket >= 24*time.Hour {
		start = start.Truncate(24 * time.Hour)
		n = int((opts.To.Sub(start) + c.bucket - 1) / c.bucket)
	}
	for i := range n {
		r.Activity.Series = append(r.Activity.Series, Interval{Start: start.Add(time.Duration(i) * c.bucket)})
	}
	switch {
	case c.bucket == time.Hour:
		r.Activity.Bucket = "hour"
	case c.bucket < 24*time.Hour:
		r.Activity.Bucket = fmt.Sprintf("%d hours", c.bucket/time.Hour)
	case c.bucket == 24*time.Hour:
		r.Activity.Bucket = "day"
	default:
		r.Activity.Bucket = fmt.Sprintf("%d days", c.bucket/(24*time.Hour))
	}
	r.GDPR.Masked, r.GDPR.Redacted = map[string]int64{}, map[string]int64{}
	return c
}

// bounded counts names, at most maxNames distinct ones; the rest count as other.
type bounded map[string]int64

func (b bounded) add(name string, n int64) {
	if _, ok := b[name]; !ok && len(b) >= maxNames {
		name = other
	}
	b[name] += n
}

// top returns the maxTop largest counts, largest first, then by name.
func (b bounded) top(limit int) []Count {
	out := make([]Count, 0, len(b))
	for k, v := range b {
		out = append(out, Count{Name: k, Count: v})
	}
	slices.SortFunc(out, func(a, b Count) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

func (b bounded) plain() map[string]int64 {
	m := make(map[string]int64, len(b))
	for k, v := range b {
		m[k] = v
	}
	return m
}

// add reads one stored record. The log verified, so a record that does not decode is a
// failure of this build, not of the log.
func (c *collector) add(sr *store.Record) error {
	var rec audit.Record
	if err := decode(sr.Data, &rec); err != nil {
		return fmt.Errorf("record %d: %w", sr.Seq, err)
	}
	c.n++
	c.r.Activity.Records++
	if isPruned(sr.Data) {
		c.r.Activity.Pruned++
	}
	c.byKind[string(rec.Kind)]++
	ref := Ref{Seq: rec.Seq, Time: rec.Time.UTC()}
	bar := c.bar(rec.Time)
	if rec.Principal != "" {
		c.byActor.add(rec.Principal, 1)
	}
	for reason, n := range rec.Redactions {
		c.redact.add(reason, int64(n))
	}
	switch rec.Kind {
	case audit.KindToolCall:
		if bar != nil {
			bar.Calls++
		}
		if rec.Tool != "" {
			c.byTool.add(rec.Tool, 1)
		}
		c.auth.add(cmp.Or(rec.AuthMethod, "none"), 1)
		if c.isOrder(rec.Tool) {
			c.order(ref, &rec)
		}
	case audit.KindOutcome:
		c.outcome(&rec, bar)
	case audit.KindPolicyDenial, audit.KindRateLimit:
		c.denial(&rec, bar)
		if rec.Kind == audit.KindRateLimit {
			c.r.Security.RateLimited++
		}
		if rec.Kind == audit.KindPolicyDenial && c.isOrder(rec.Tool) {
			c.order(ref, &rec)
		}
	case audit.KindAuthFailure:
		c.r.Security.AuthFailures++
	case audit.KindQuarantine:
		c.r.Security.Quarantines++
	case audit.KindApproval:
		c.approval(ref, &rec)
	case audit.KindAdmin:
		c.admin(ref, &rec)
	case audit.KindPolicyReload:
		c.policy(ref, &rec)
	case audit.KindBlock, audit.KindSuspend:
		if rec.Decision == audit.DecisionDeny {
			c.denial(&rec, bar) // a call refused by containment
			break
		}
		c.response(ref, &rec)
	case audit.KindAlert:
		c.alert(ref, &rec)
	case audit.KindSubject:
		c.r.GDPR.RequestsTotal++
		ev := subjectEvent(ref, &rec)
		ev.Subject = cmp.Or(ev.Subject, commitment(sr.Data))
		if ev.CompletionMillis >= 0 && len(c.completions) < MaxMaxRows {
			c.completions = append(c.completions, ev.CompletionMillis)
		}
		appendBounded(&c.r.GDPR.Requests, ev, c.opts.MaxRows)
	case audit.KindErasure:
		c.r.GDPR.ErasuresTotal++
		ev := subjectEvent(ref, &rec)
		ev.Subject = cmp.Or(ev.Subject, commitment(sr.Data))
		appendBounded(&c.r.GDPR.Erasures, ev, c.opts.MaxRows)
	case audit.KindLegalHold:
		c.r.GDPR.HoldsTotal++
		ev := subjectEvent(ref, &rec)
		ev.Subject = cmp.Or(ev.Subject, commitment(sr.Data))
		appendBounded(&c.r.GDPR.Holds, ev, c.opts.MaxRows)
	case audit.KindRetention:
		c.r.GDPR.PruningTotal++
		appendBounded(&c.r.GDPR.Pruning, subjectEvent(ref, &rec), c.opts.MaxRows)
	}
	return nil
}

// decode reads a record's canonical encoding. The log verified, so the bytes are those the
// gateway wrote; go-json-experiment decodes them about twice as fast as encoding/json, which
// matters over a million records.
func decode(data []byte, rec *audit.Record) error { return jsonv2.Unmarshal(data, rec) }

// prunedMark ends the pruned form of a record: what retention leaves of a record past its
// retention (its indexed fields), which still verifies.
const prunedMark = `,"pruned":true}`

func isPruned(data []byte) bool { return bytes.HasSuffix(data, []byte(prunedMark)) }

// commitment returns the first data-subject commitment a record names ("subjects":[{"c":…}]),
// read from the record's bytes so that any record shape is read; empty when it names none.
func commitment(data []byte) string {
	var s struct {
		Subjects []struct {
			C string `json:"c"`
		} `json:"subjects"`
	}
	if json.Unmarshal(data, &s) != nil || len(s.Subjects) == 0 {
		return ""
	}
	return clip(s.Subjects[0].C, 80)
}

// appendBounded appends v to *list unless it holds limit items already.
func appendBounded[T any](list *[]T, v T, limit int) {
	if len(*list) < limit {
		*list = append(*list, v)
	}
}

// bar is the chart interval t falls in (nil outside the period).
func (c *collector) bar(t time.Time) *Interval {
	s := c.r.Activity.Series
	if len(s) == 0 || t.Before(s[0].Start) {
		return nil
	}
	i := int(t.Sub(s[0].Start) / c.bucket)
	if i >= len(s) {
		return nil
	}
	return &s[i]
}

// isOrder reports whether tool is an order tool, remembering the answer for up to maxNames
// tool names.
func (c *collector) isOrder(tool string) bool {
	if tool == "" {
		return false
	}
	if is, ok := c.orderTool[tool]; ok {
		return is
	}
	is := false
	for _, p := range c.opts.OrderTools {
		if ok, _ := path.Match(p, tool); ok {
			is = true
			break
		}
	}
	if len(c.orderTool) < maxNames {
		c.orderTool[tool] = is
	}
	return is
}

// order lists an order-type call (allowed, or denied by the policy), joining the approval it
// was held for.
func (c *collector) order(ref Ref, rec *audit.Record) {
	c.r.MiFID.OrdersTotal++
	o := Order{Ref: ref, RequestID: rec.RequestID, Principal: rec.Principal, Roles: rec.Roles, Tool: rec.Tool,
		Arguments: clipJSON(rec.Arguments), Rule: rec.Rule, Decision: rec.Decision}
	if o.Decision == "" {
		o.Decision = audit.DecisionAllow
	}
	if rec.Kind == audit.KindPolicyDenial {
		o.Decision, o.Outcome = audit.DecisionDeny, "refused by the policy"
		if len(rec.Reasons) > 0 {
			o.Error = strings.Join(rec.Reasons, "; ")
		}
	} else {
		o.Outcome = "no outcome recorded in the period"
		k := heldKey{rec.Principal, rec.Tool}
		if q := c.held[k]; len(q) > 0 {
			a := q[len(q)-1]
			o.Approval, o.Approver = a.id, a.approver
			c.held[k] = q[:len(q)-1]
			c.nHeld--
			if len(c.held[k]) == 0 {
				delete(c.held, k)
			}
		}
	}
	if len(c.r.MiFID.Orders) >= c.opts.MaxRows {
		return
	}
	c.r.MiFID.Orders = append(c.r.MiFID.Orders, o)
	if rec.Kind == audit.KindToolCall && rec.RequestID != "" && len(c.open) < maxOpenOrders {
		c.open[rec.RequestID] = len(c.r.MiFID.Orders) - 1
	}
}

func (c *collector) outcome(rec *audit.Record, bar *Interval) {
	o := rec.Outcome
	if o == nil {
		return
	}
	if o.Status != "ok" && bar != nil {
		bar.Errors++
	}
	if len(o.Masked) > 0 {
		c.r.GDPR.MaskedResults++
		for rule, n := range o.Masked {
			c.masked.add(rule, int64(n))
		}
	}
	if i, ok := c.open[rec.RequestID]; ok {
		delete(c.open, rec.RequestID)
		ord := &c.r.MiFID.Orders[i]
		ord.Outcome, ord.Error = o.Status, o.Error
	}
}

func (c *collector) denial(rec *audit.Record, bar *Interval) {
	c.r.Security.Denials++
	if bar != nil {
		bar.Denials++
	}
	rule := rec.Rule
	if rule == "" {
		rule = "(" + string(rec.Kind) + ", no rule)"
	}
	c.denials.add(rule, 1)
}

// approvalDetail is the Detail of an approval record (admin.ApprovalDetail), read leniently.
type approvalDetail struct {
	Requester    string `json:"requester"`
	Approver     string `json:"approver"`
	ApproverRole string `json:"approver_role"`
	Status       string `json:"status"`
}

func (c *collector) approval(ref Ref, rec *audit.Record) {
	c.r.SOX.ApprovalsTotal++
	var d approvalDetail
	_ = json.Unmarshal(rec.Detail, &d) // a Detail of another shape leaves the fields empty, which is flagged below
	a := Approval{Ref: ref, ID: rec.RequestID, Tool: rec.Tool, Requester: d.Requester, Approver: d.Approver,
		ApproverRole: d.ApproverRole, Status: d.Status}
	granted := rec.Decision == audit.DecisionAllow
	if a.Status == "" {
		a.Status = "denied"
		if granted {
			a.Status = "approved"
		}
	}
	if a.Approver == "" && granted {
		// The admin API records the operator who decided as the record's principal too.
		a.Approver = rec.Principal
	}
	switch {
	case granted && a.Approver == "":
		a.Violation = "granted with no approver recorded"
	case granted && a.Requester == "":
		a.Violation = "granted with no requester recorded"
	case a.Approver != "" && sameActor(a.Approver, a.Requester):
		a.Violation = "decided by the requester"
	case granted && rec.Principal != "" && sameActor(rec.Principal, a.Requester):
		a.Violation = "recorded by the requester's own session"
	}
	if a.Violation != "" {
		c.r.SOX.ViolationsTotal++
		appendBounded(&c.r.SOX.Violations, a, c.opts.MaxRows)
	}
	appendBounded(&c.r.SOX.Approvals, a, c.opts.MaxRows)
	if granted && a.Requester != "" {
		k := heldKey{a.Requester, a.Tool}
		if c.nHeld >= maxHeld {
			return // more approvals waiting than any real deployment holds: stop matching
		}
		c.held[k] = append(c.held[k], heldApproval{id: a.ID, approver: a.Approver})
		c.nHeld++
	}
}

// sameActor reports whether two principal names name the same person: equal ignoring case and
// surrounding space (an approver must not pass by changing the case of their own name).
func sameActor(a, b string) bool {
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	return a != "" && strings.EqualFold(a, b)
}

// adminDetail is the Detail of an administrative act (journal.Entry.Detail), read leniently.
type adminDetail struct {
	Act    string          `json:"act"`
	Target json.RawMessage `json:"target"`
	Result string          `json:"result"`
	Reason string          `json:"reason"`
}

func (c *collector) admin(ref Ref, rec *audit.Record) {
	c.r.SOX.AccessChangesTotal++
	c.actions.add("admin", 1)
	if len(c.r.SOX.AccessChanges) >= c.opts.MaxRows {
		return
	}
	var d adminDetail
	_ = json.Unmarshal(rec.Detail, &d)
	a := AccessChange{Ref: ref, Actor: rec.Principal, AuthMethod: rec.AuthMethod, Act: d.Act, Result: d.Result,
		Target: clipJSON(d.Target), Reason: d.Reason}
	if a.Act == "" {
		a.Act = strings.TrimSpace(rec.Method + " " + rec.Tool)
	}
	if a.Result == "" {
		a.Result = "ok"
		if rec.Decision == audit.DecisionDeny {
			a.Result = "refused"
		}
	}
	if a.Reason == "" && len(rec.Reasons) > 0 {
		a.Reason = strings.Join(rec.Reasons, "; ")
	}
	c.r.SOX.AccessChanges = append(c.r.SOX.AccessChanges, a)
}

// policyDetail is the Detail of a policy reload, read leniently.
type policyDetail struct {
	File     string `json:"file"`
	SHA256   string `json:"sha256"`
	Previous string `json:"previous_sha256"`
	Change   string `json:"change"`
}

func (c *collector) policy(ref Ref, rec *audit.Record) {
	c.r.SOX.PolicyTotal++
	var d policyDetail
	_ = json.Unmarshal(rec.Detail, &d)
	p := PolicyVersion{Ref: ref, File: d.File, SHA256: d.SHA256, Previous: d.Previous, Change: d.Change,
		Accepted: rec.Decision != audit.DecisionDeny}
	if !p.Accepted {
		p.Reason = strings.Join(rec.Reasons, "; ")
	}
	appendBounded(&c.r.SOX.PolicyVersions, p, c.opts.MaxRows)
}

func (c *collector) response(ref Ref, rec *audit.Record) {
	c.r.Security.ResponsesTotal++
	ev := event(ref, rec)
	c.actions.add(cmp.Or(ev.Action, string(rec.Kind)), 1)
	appendBounded(&c.r.Security.Responses, ev, c.opts.MaxRows)
}

func (c *collector) alert(ref Ref, rec *audit.Record) {
	c.r.Security.AlertsTotal++
	appendBounded(&c.r.Security.Alerts, event(ref, rec), c.opts.MaxRows)
}

// event reads a containment record (gateway containEvent): its Detail's action, target, actor
// and signal.
func event(ref Ref, rec *audit.Record) Event {
	ev := Event{Ref: ref, Kind: string(rec.Kind), Reason: strings.Join(rec.Reasons, "; ")}
	fields := detailFields(rec.Detail)
	ev.Action = fields.str("action")
	ev.Target = cmp.Or(fields.str("target"), rec.Principal, rec.ClientIP)
	ev.Actor = fields.str("actor")
	ev.Signal = fields.text("signal")
	return ev
}

// subjectEvent reads a record of the GDPR kinds (subject, erasure, retention, legal_hold),
// whose Detail may take any shape: known field names are read, the rest summed up.
func subjectEvent(ref Ref, rec *audit.Record) SubjectEvent {
	f := detailFields(rec.Detail)
	ev := SubjectEvent{Ref: ref, Actor: rec.Principal, CompletionMillis: -1}
	ev.Action = cmp.Or(f.str("action"), f.str("request"), f.str("type"), f.str("act"), f.str("operation"), rec.Method)
	ev.Subject = cmp.Or(f.str("subject"), f.str("subject_ref"), f.str("subject_id"), f.str("subject_token"), f.str("subject_hash"))
	ev.Outcome = cmp.Or(f.str("result"), f.str("status"), f.str("outcome"))
	if ev.Outcome == "" && rec.Outcome != nil {
		ev.Outcome = rec.Outcome.Status
	}
	if ev.Outcome == "" && rec.Decision != "" {
		ev.Outcome = rec.Decision
	}
	for _, k := range []string{"requested_at", "received_at", "requested", "received", "started_at", "request_time"} {
		if t, err := time.Parse(time.RFC3339Nano, f.str(k)); err == nil && !t.After(rec.Time) {
			ev.CompletionMillis = rec.Time.Sub(t).Milliseconds()
			break
		}
	}
	if ev.CompletionMillis < 0 {
		if ms, ok := f.num("duration_ms"); ok && ms >= 0 {
			ev.CompletionMillis = ms
		} else if rec.DurationMicros > 0 {
			ev.CompletionMillis = rec.DurationMicros / 1000
		}
	}
	ev.Summary = f.summary("action", "request", "type", "act", "operation", "subject", "subject_ref", "subject_id",
		"subject_token", "subject_hash", "result", "status", "outcome")
	if ev.Summary == "" && len(rec.Reasons) > 0 {
		ev.Summary = clip(strings.Join(rec.Reasons, "; "), maxSummaryBytes)
	}
	return ev
}

// fields is a record's Detail decoded as an object (empty when it is not one).
type fields map[string]json.RawMessage

func detailFields(raw json.RawMessage) fields {
	var f fields
	if len(raw) > 0 && json.Unmarshal(raw, &f) == nil {
		return f
	}
	return nil
}

// str returns a string member, or a number's text.
func (f fields) str(k string) string {
	raw, ok := f[k]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return clip(s, maxSummaryBytes)
	}
	if len(raw) > 0 && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')) {
		return string(raw)
	}
	return ""
}

// text returns a member as text: a string as is, anything else as compact JSON, clipped.
func (f fields) text(k string) string {
	if s := f.str(k); s != "" {
		return s
	}
	raw, ok := f[k]
	if !ok || string(raw) == "null" {
		return ""
	}
	return clip(string(raw), maxSummaryBytes)
}

func (f fields) num(k string) (int64, bool) {
	raw, ok := f[k]
	if !ok {
		return 0, false
	}
	var n float64
	if json.Unmarshal(raw, &n) != nil {
		return 0, false
	}
	return int64(n), true
}

// summary writes the members not in skip as "name=value" pairs, in name order, clipped.
func (f fields) summary(skip ...string) string {
	keys := make([]string, 0, len(f))
	for k := range f {
		if !slices.Contains(skip, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		if b.Len() > maxSummaryBytes {
			break
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(f.text(k))
	}
	return clip(b.String(), maxSummaryBytes)
}

// clip cuts s to at most n bytes on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

// clipJSON returns raw, or a JSON string saying how large it was when it exceeds maxArgBytes.
func clipJSON(raw json.RawMessage) json.RawMessage {
	if len(raw) <= maxArgBytes {
		return raw
	}
	return json.RawMessage(strconv.Quote(fmt.Sprintf("(%d bytes, shown by mcpguard audit search)", len(raw))))
}

// finish turns the counts into the report's tables.
func (c *collector) finish() {
	r := c.r
	r.Activity.ByKind = c.byKind
	r.Activity.ByTool = c.byTool.top(maxTop)
	r.Activity.ByActor = c.byActor.top(maxTop)
	r.Security.DenialsByRule = c.denials.top(0)
	r.Security.ResponsesByKind = c.actions.top(0)
	r.GDPR.Masked = c.masked.plain()
	r.GDPR.Redacted = c.redact.plain()
	if n := len(c.completions); n > 0 {
		slices.Sort(c.completions)
		r.GDPR.CompletionKnown = int64(n)
		r.GDPR.MedianMillis = c.completions[n/2]
		r.GDPR.MaxMillis = c.completions[n-1]
	}
	if len(r.Security.DenialsByRule) > c.opts.MaxRows {
		r.Security.DenialsByRule = r.Security.DenialsByRule[:c.opts.MaxRows]
	}
	r.Activity.ByAuthMethod = c.auth.top(0)
}
