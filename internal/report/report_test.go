package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/report"
	"github.com/mcpguard/mcpguard/internal/store/sqlite"
	"github.com/mcpguard/mcpguard/internal/testenv"
	"github.com/mcpguard/mcpguard/internal/witness"
)

// day0 is the first day of the test period.
var day0 = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

// hostile is what an attacker may put in a tool name, a principal or a reason.
const hostile = `<script>alert(1)</script>"><img src=x onerror=alert(2)>`

// testLog is an audit log written through the audit package, closed, with its key.
type testLog struct {
	db, cpDir string
	key       *report.Key
	verifier  note.Verifier
}

func newKey(t testing.TB, name string) (*report.Key, note.Verifier) {
	t.Helper()
	skey, vkey, err := audit.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	k, err := report.ParseKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	if k.Verifier != vkey {
		t.Fatalf("derived verifier key %q, want %q", k.Verifier, vkey)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return k, v
}

// writeLog appends recs through the audit log (group commit, checkpoints every 5 records and
// a final one at Close).
func writeLog(t testing.TB, recs []*audit.Record) *testLog {
	t.Helper()
	key, v := newKey(t, "test-log")
	return writeLogWith(t, recs, key, v, nil)
}

// writeLogWith is writeLog with the log's key given and the witnesses the log offers its
// checkpoints to (made once the checkpoint directory is known).
func writeLogWith(t testing.TB, recs []*audit.Record, key *report.Key, v note.Verifier, witnesses func(cpDir string) []audit.Witness) *testLog {
	t.Helper()
	dir := t.TempDir()
	l := &testLog{db: filepath.Join(dir, "audit.db"), cpDir: filepath.Join(dir, "checkpoints"), key: key, verifier: v}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, l.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	opts := &audit.Options{Signer: l.key.Signer, CheckpointDir: l.cpDir, CheckpointEvery: 5}
	if witnesses != nil {
		opts.Witnesses = witnesses(l.cpDir)
	}
	lg, err := audit.Open(ctx, st, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if _, err := lg.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := lg.Close(); err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *testLog) build(t testing.TB, opts report.Options) (*report.Report, error) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), l.db, &sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if opts.From.IsZero() {
		opts.From, opts.To = day0, day0.Add(7*24*time.Hour)
	}
	opts.Signer, opts.CheckpointDir = l.key.Signer, l.cpDir
	opts.Now = func() time.Time { return day0.Add(8 * 24 * time.Hour) }
	return report.Build(context.Background(), st, opts)
}

func at(h int) time.Time { return day0.Add(time.Duration(h) * time.Hour) }

func detail(t testing.TB, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mixedRecords is a realistic week: calls and outcomes (one masked), orders allowed after an
// approval by another person, an order its requester approved, a refused order, administrative
// acts, a policy reload, an alert and a block, a data-subject request and an erasure, and a
// tool and principal chosen by an attacker.
func mixedRecords(t testing.TB) []*audit.Record {
	approval := func(id, requester, approver string, h int) *audit.Record {
		return &audit.Record{Time: at(h), Kind: audit.KindApproval, RequestID: id, Principal: approver, Tool: "finance.execute_trade_order",
			Rule: "trades-need-approval", Decision: audit.DecisionAllow, Reasons: []string{"ok"},
			Detail: detail(t, map[string]string{"requester": requester, "approver": approver, "approver_role": "desk-head", "arguments_sha256": "ab", "status": "approved"})}
	}
	return []*audit.Record{
		{Time: at(1), Kind: audit.KindToolCall, RequestID: "r1", Principal: "analyst", AuthMethod: "api_key", Tool: "finance.get_client_portfolio", Decision: audit.DecisionAllow, Rule: "read", Arguments: json.RawMessage(`{"client_id":"C-1"}`)},
		{Time: at(1), Kind: audit.KindOutcome, RequestID: "r1", Principal: "analyst", Tool: "finance.get_client_portfolio", Outcome: &audit.Outcome{Status: "ok", Masked: map[string]int{"client-names": 3, "iban": 2}}},
		approval("ap1", "alice", "bob", 25),
		{Time: at(25), Kind: audit.KindToolCall, RequestID: "r2", Principal: "alice", AuthMethod: "jwt", Tool: "finance.execute_trade_order", Decision: audit.DecisionAllow, Rule: "trades-need-approval", Arguments: json.RawMessage(`{"symbol":"ACME","quantity":100,"account":"tok_1a2b"}`)},
		{Time: at(25), Kind: audit.KindOutcome, RequestID: "r2", Principal: "alice", Tool: "finance.execute_trade_order", Outcome: &audit.Outcome{Status: "ok"}},
		approval("ap2", "carol", "Carol", 30),
		{Time: at(30), Kind: audit.KindToolCall, RequestID: "r3", Principal: "carol", AuthMethod: "jwt", Tool: "finance.execute_trade_order", Decision: audit.DecisionAllow, Rule: "trades-need-approval", Arguments: json.RawMessage(`{"symbol":"XYZ","quantity":5}`)},
		{Time: at(30), Kind: audit.KindOutcome, RequestID: "r3", Principal: "carol", Tool: "finance.execute_trade_order", Outcome: &audit.Outcome{Status: "tool_error", Error: "market closed"}},
		{Time: at(31), Kind: audit.KindPolicyDenial, RequestID: "r4", Principal: "mallory", Tool: "finance.execute_trade_order", Decision: audit.DecisionDeny, Rule: "deny-trades", Reasons: []string{"role analyst may not trade"}},
		{Time: at(32), Kind: audit.KindPolicyDenial, RequestID: "r5", Principal: hostile, Tool: hostile, Decision: audit.DecisionDeny, Rule: hostile, Reasons: []string{hostile}},
		{Time: at(40), Kind: audit.KindAdmin, RequestID: "j1", Principal: "root-op", AuthMethod: "operator_session", Decision: audit.DecisionAllow, Outcome: &audit.Outcome{Status: "ok"},
			Detail: detail(t, map[string]any{"act": "api_key.create", "target": map[string]any{"key_id": "k1", "principal": "alice", "roles": []string{"trader"}}, "result": "ok", "via": "cli"})},
		{Time: at(41), Kind: audit.KindPolicyReload, Decision: audit.DecisionAllow,
			Detail: detail(t, map[string]string{"file": "policy.yaml", "sha256": "1111", "previous_sha256": "0000", "change": "roles changed: trader"})},
		{Time: at(50), Kind: audit.KindAlert, RequestID: "a1", Principal: "mallory", Reasons: []string{"denials spiked"},
			Detail: detail(t, map[string]any{"action": "alert", "target_kind": "principal", "target": "mallory", "signal": map[string]any{"name": "denial_rate", "value": 12}})},
		{Time: at(50), Kind: audit.KindSuspend, RequestID: "b1", Principal: "mallory", Reasons: []string{"denials spiked"},
			Detail: detail(t, map[string]any{"action": "suspend", "target_kind": "principal", "target": "mallory", "actor": "anomaly"})},
		{Time: at(60), Kind: audit.KindSubject, RequestID: "s1", Principal: "dpo", Detail: detail(t, map[string]any{"action": "export", "subject": "subj_77", "requested_at": at(58).Format(time.RFC3339), "records": 4})},
		{Time: at(61), Kind: audit.KindErasure, RequestID: "e1", Principal: "dpo", Detail: detail(t, map[string]any{"subject": "subj_77", "keys_destroyed": 1})},
		{Time: at(62), Kind: audit.KindLegalHold, RequestID: "h1", Principal: "dpo", Detail: detail(t, map[string]any{"action": "place", "hold": "hold-1", "kind": "principal", "principal": "carol", "reason": "investigation 7"})},
		{Time: at(70), Kind: audit.KindRetention, RequestID: "p1", Principal: "retention", Detail: detail(t, map[string]any{
			"policies": []map[string]string{{"kind": "call", "retention": "7y", "before": "2019-11-04T22:00:00.000000000Z"}, {"kind": "auth_failure", "retention": "1y", "before": "2025-11-04T22:00:00.000000000Z"}},
			"ranges":   [][2]int64{{0, 3}}, "pruned": 4, "held": 2})},
		// Outside the period: counted nowhere.
		{Time: day0.Add(9 * 24 * time.Hour), Kind: audit.KindToolCall, RequestID: "late", Principal: "alice", Tool: "finance.execute_trade_order", Decision: audit.DecisionAllow},
	}
}

func TestBuildCollectsTheEvidence(t *testing.T) {
	t.Parallel()
	l := writeLog(t, mixedRecords(t))
	r, err := l.build(t, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Activity.Records != 18 {
		t.Errorf("records in the period = %d, want 18 (the late one is outside)", r.Activity.Records)
	}
	if r.Verification.Records != 19 || r.Verification.Covered != 19 {
		t.Errorf("verification: %+v, want 19 records, all covered", r.Verification)
	}
	// Segregation of duties: carol approved her own trade (case differs), bob approved alice's.
	if r.SOX.ApprovalsTotal != 2 || r.SOX.ViolationsTotal != 1 || len(r.SOX.Violations) != 1 {
		t.Fatalf("approvals %d, violations %d: %+v", r.SOX.ApprovalsTotal, r.SOX.ViolationsTotal, r.SOX.Violations)
	}
	if v := r.SOX.Violations[0]; v.ID != "ap2" || v.Violation != "decided by the requester" {
		t.Errorf("violation = %+v, want ap2 decided by the requester", v)
	}
	// MiFID II: two allowed orders and one refused, each with its approval and outcome.
	if r.MiFID.OrdersTotal != 3 || len(r.MiFID.Orders) != 3 {
		t.Fatalf("orders = %d %+v", r.MiFID.OrdersTotal, r.MiFID.Orders)
	}
	o := r.MiFID.Orders
	if o[0].Principal != "alice" || o[0].Approval != "ap1" || o[0].Approver != "bob" || o[0].Outcome != "ok" || !strings.Contains(string(o[0].Arguments), "tok_1a2b") {
		t.Errorf("alice's order = %+v", o[0])
	}
	if o[1].Approver != "Carol" || o[1].Outcome != "tool_error" || o[1].Error != "market closed" {
		t.Errorf("carol's order = %+v", o[1])
	}
	if o[2].Decision != audit.DecisionDeny || o[2].Rule != "deny-trades" {
		t.Errorf("refused order = %+v", o[2])
	}
	if len(r.MiFID.Retention) != 1 || r.MiFID.Retention[0].Summary != "call kept 7y (records before 2019-11-04T22:00:00.000000000Z pruned); auth_failure kept 1y (records before 2025-11-04T22:00:00.000000000Z pruned); 4 records pruned, 2 kept under a legal hold" {
		t.Errorf("retention in force = %+v", r.MiFID.Retention)
	}
	if r.GDPR.HoldsTotal != 1 || r.GDPR.Holds[0].Action != "place" || !strings.Contains(r.GDPR.Holds[0].Summary, "reason=investigation 7") {
		t.Errorf("legal holds = %+v", r.GDPR.Holds)
	}
	// SOX access changes and policy versions.
	if len(r.SOX.AccessChanges) != 1 || r.SOX.AccessChanges[0].Act != "api_key.create" || r.SOX.AccessChanges[0].Actor != "root-op" {
		t.Errorf("access changes = %+v", r.SOX.AccessChanges)
	}
	if len(r.SOX.PolicyVersions) != 1 || r.SOX.PolicyVersions[0].SHA256 != "1111" || r.SOX.PolicyVersions[0].Previous != "0000" {
		t.Errorf("policy versions = %+v", r.SOX.PolicyVersions)
	}
	// GDPR.
	if r.GDPR.Masked["client-names"] != 3 || r.GDPR.Masked["iban"] != 2 || r.GDPR.MaskedResults != 1 {
		t.Errorf("masking = %v in %d results", r.GDPR.Masked, r.GDPR.MaskedResults)
	}
	if len(r.GDPR.Requests) != 1 || r.GDPR.Requests[0].Subject != "subj_77" || r.GDPR.Requests[0].CompletionMillis != 2*3600*1000 {
		t.Errorf("subject requests = %+v", r.GDPR.Requests)
	}
	if r.GDPR.ErasuresTotal != 1 || !strings.Contains(r.GDPR.Erasures[0].Summary, "keys_destroyed=1") {
		t.Errorf("erasures = %+v", r.GDPR.Erasures)
	}
	// Denials, anomalies, responses.
	if r.Security.Denials != 2 || r.Security.AlertsTotal != 1 || r.Security.ResponsesTotal != 1 {
		t.Errorf("security = %+v", r.Security)
	}
	if ev := r.Security.Responses[0]; ev.Action != "suspend" || ev.Target != "mallory" || ev.Actor != "anomaly" {
		t.Errorf("response = %+v", ev)
	}
	if len(r.Controls) != 5 {
		t.Errorf("controls = %d rows, want the seed's 5", len(r.Controls))
	}
	var calls int64
	for _, b := range r.Activity.Series {
		calls += b.Calls
	}
	if calls != 3 || r.Activity.Bucket != "day" || len(r.Activity.Series) != 7 {
		t.Errorf("chart: %d calls in %d %s bars, want 3 in 7 day bars", calls, len(r.Activity.Series), r.Activity.Bucket)
	}
}

func TestHTMLAndJSONVerifyAndAnEditIsRefused(t *testing.T) {
	t.Parallel()
	l := writeLog(t, mixedRecords(t))
	r, err := l.build(t, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	page, err := report.HTML(r, l.key)
	if err != nil {
		t.Fatal(err)
	}
	js, err := report.JSON(r, l.key)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		at   string // a string in the body to change one byte of
	}{
		{"html", page, "market closed"},
		{"json", js, "market closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := report.VerifyFile(tc.data, nil, l.verifier)
			if err != nil {
				t.Fatalf("the report as written is refused: %v", err)
			}
			if !v.Trusted || v.Format != report.Format(tc.name) || v.Records != 19 || !v.From.Equal(day0) {
				t.Errorf("verified = %+v", v)
			}
			i := bytes.Index(tc.data, []byte(tc.at))
			if i < 0 {
				t.Fatalf("%q is not in the report", tc.at)
			}
			edited := bytes.Clone(tc.data)
			edited[i] = 'M' // "market" → "Market"
			if _, err := report.VerifyFile(edited, nil, l.verifier); !errors.Is(err, report.ErrRefused) || !strings.Contains(err.Error(), "does not match the signed digest") {
				t.Errorf("a report with one byte changed: err = %v, want a digest mismatch", err)
			}
			other, otherV := newKey(t, "other-log")
			_ = other
			if _, err := report.VerifyFile(tc.data, nil, otherV); !errors.Is(err, report.ErrRefused) || !strings.Contains(err.Error(), "signed by test-log") {
				t.Errorf("checked with another key: err = %v, want 'signed by test-log'", err)
			}
			// Without a key, the report's own key is used: intact, but not authenticated.
			if v, err := report.VerifyFile(tc.data, nil, nil); err != nil || v.Trusted {
				t.Errorf("without a key: %+v, %v; want intact and not trusted", v, err)
			}
		})
	}
	// A report re-signed by someone else, claiming their key, passes only without --key.
	forger, _ := newKey(t, "test-log")
	forged, err := report.HTML(r, forger)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := report.VerifyFile(forged, nil, l.verifier); err == nil {
		t.Error("a report signed by another key named like the log's was accepted with the log's key")
	}
	// The signature block edited or extended.
	if _, err := report.VerifyFile(append(bytes.Clone(page), "<p>added</p>\n"...), nil, l.verifier); err == nil {
		t.Error("a report with content added after its signature was accepted")
	}
	if _, err := report.VerifyFile(bytes.Replace(page, []byte(`<pre id="report-signature">`), []byte(`<pre id="x">`), 1), nil, l.verifier); err == nil {
		t.Error("a report without its signature block was accepted")
	}
	spaced := bytes.Replace(js, []byte(`{"report":`), []byte(`{ "report":`), 1)
	if _, err := report.VerifyFile(spaced, nil, l.verifier); err == nil {
		t.Error("a JSON report with a byte added outside its report member was accepted")
	}
}

func TestHTMLEscapesHostileRecords(t *testing.T) {
	t.Parallel()
	l := writeLog(t, mixedRecords(t))
	r, err := l.build(t, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	page, err := report.HTML(r, l.key)
	if err != nil {
		t.Fatal(err)
	}
	s := string(page)
	for _, bad := range []string{"<script", "<img"} {
		if strings.Contains(s, bad) {
			t.Errorf("the page contains %q from a record", bad)
		}
	}
	if !strings.Contains(s, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("the hostile tool name is not shown escaped")
	}
	if !strings.Contains(s, `http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;; style-src &#39;sha256-`) {
		t.Error("no strict Content-Security-Policy")
	}
	for _, id := range []string{"controls", "verification", "checkpoints", "activity", "sox-access", "sox-policy", "sox-duties",
		"mifid-orders", "mifid-retention", "gdpr-requests", "gdpr-erasure", "gdpr-masking", "security", "signature"} {
		if !strings.Contains(s, `id="`+id+`"`) {
			t.Errorf("section %s is missing", id)
		}
	}
	if !strings.Contains(s, "<svg") || !strings.Contains(s, `class="calls"`) {
		t.Error("no activity chart")
	}
}

func TestALogWithoutGDPRRecordsSaysNone(t *testing.T) {
	t.Parallel()
	recs := mixedRecords(t)
	var kept []*audit.Record
	for _, r := range recs {
		if r.Kind != audit.KindSubject && r.Kind != audit.KindErasure && r.Kind != audit.KindLegalHold && r.Kind != audit.KindRetention {
			kept = append(kept, r)
		}
	}
	l := writeLog(t, kept)
	r, err := l.build(t, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.GDPR.RequestsTotal != 0 || r.GDPR.ErasuresTotal != 0 || r.GDPR.HoldsTotal != 0 || r.GDPR.PruningTotal != 0 {
		t.Errorf("GDPR = %+v, want nothing", r.GDPR)
	}
	page, err := report.HTML(r, l.key)
	if err != nil {
		t.Fatal(err)
	}
	sec := section(t, string(page), "gdpr-erasure", "gdpr-masking")
	if n := strings.Count(sec, "none in the period"); n != 3 {
		t.Errorf("the erasure section says 'none in the period' %d times, want 3 (erasures, holds, pruning):\n%s", n, sec)
	}
	if !strings.Contains(section(t, string(page), "mifid-retention", "gdpr-requests"), "the log records no retention run") {
		t.Error("the retention section does not say that no retention ran")
	}
}

// section returns the HTML from the heading with id from to the one with id to.
func section(t *testing.T, page, from, to string) string {
	t.Helper()
	i, j := strings.Index(page, `id="`+from+`"`), strings.Index(page, `id="`+to+`"`)
	if i < 0 || j < i {
		t.Fatalf("sections %s..%s not found", from, to)
	}
	return page[i:j]
}

func TestALogThatDoesNotVerifyIsRefused(t *testing.T) {
	t.Parallel()
	l := writeLog(t, mixedRecords(t))
	st, err := sqlite.Open(context.Background(), l.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.DB().Exec(`UPDATE audit_records SET record = CAST(replace(CAST(record AS TEXT), '"quantity":100', '"quantity":900') AS BLOB) WHERE seq = 3`)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.build(t, report.Options{})
	if !errors.Is(err, report.ErrNotVerified) || !strings.Contains(err.Error(), "record 3") {
		t.Fatalf("err = %v, want ErrNotVerified naming record 3", err)
	}
	// A truncated log whose checkpoint directory still remembers the tail.
	l2 := writeLog(t, mixedRecords(t))
	st, err = sqlite.Open(context.Background(), l2.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.DB().Exec(`DELETE FROM audit_records WHERE seq >= 15`)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l2.build(t, report.Options{}); !errors.Is(err, report.ErrNotVerified) {
		t.Fatalf("truncated log: err = %v, want ErrNotVerified", err)
	}
}

func TestOptionsAreChecked(t *testing.T) {
	t.Parallel()
	l := writeLog(t, mixedRecords(t)[:2])
	for _, tc := range []struct {
		name string
		opts report.Options
		want string
	}{
		{"backwards", report.Options{From: day0, To: day0.Add(-time.Hour)}, "ends"},
		{"rows", report.Options{From: day0, To: day0.Add(time.Hour), MaxRows: report.MaxMaxRows + 1}, "row limit"},
		{"pattern", report.Options{From: day0, To: day0.Add(time.Hour), OrderTools: []string{"["}}, "pattern"},
	} {
		if _, err := l.build(t, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}

func TestMaxRowsBoundsTablesNotCounts(t *testing.T) {
	t.Parallel()
	var recs []*audit.Record
	for i := range 30 {
		recs = append(recs, &audit.Record{Time: at(i), Kind: audit.KindPolicyDenial, Principal: "p", Tool: "execute_trade_order",
			Decision: audit.DecisionDeny, Rule: "deny"})
	}
	l := writeLog(t, recs)
	r, err := l.build(t, report.Options{MaxRows: 10})
	if err != nil {
		t.Fatal(err)
	}
	if r.MiFID.OrdersTotal != 30 || len(r.MiFID.Orders) != 10 || r.Security.Denials != 30 {
		t.Fatalf("orders %d listed of %d, denials %d; want 10 of 30, 30", len(r.MiFID.Orders), r.MiFID.OrdersTotal, r.Security.Denials)
	}
	page, err := report.HTML(r, l.key)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(page, []byte("Showing 10 of 30")) {
		t.Error("the page does not say how many orders were left out")
	}
}

// chromium returns the browser's path, or marks the test as missing it.
func chromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(report.DefaultChromium); err != nil {
		testenv.Missing(t, "chromium is not installed (apt-get install chromium): %v", err)
	}
	return report.DefaultChromium
}

func TestPDFIsPrintedAndSigned(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	l := writeLog(t, mixedRecords(t))
	r, err := l.build(t, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	page, err := report.HTML(r, l.key)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pdf, err := report.PDF(ctx, browser, page)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(pdf, []byte("%PDF")) || len(pdf) < 5000 {
		t.Fatalf("not a PDF of the report: %d bytes starting %q", len(pdf), pdf[:min(len(pdf), 8)])
	}
	sig, err := report.SignPDF(r, l.key, pdf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := report.VerifyFile(pdf, sig, l.verifier); err != nil {
		t.Fatalf("the signed PDF is refused: %v", err)
	}
	edited := bytes.Clone(pdf)
	edited[len(edited)/2] ^= 1
	if _, err := report.VerifyFile(edited, sig, l.verifier); !errors.Is(err, report.ErrRefused) {
		t.Errorf("an edited PDF: err = %v, want refused", err)
	}
	if _, err := report.VerifyFile(pdf, nil, l.verifier); !errors.Is(err, report.ErrRefused) || !strings.Contains(err.Error(), ".sig") {
		t.Errorf("a PDF without its .sig: err = %v", err)
	}
}

// TestChromiumRendersTheReport loads the page in headless Chromium: every section is in the
// rendered document, and the browser reports nothing on its console (a style refused by the
// Content-Security-Policy, a resource it tried to load).
func TestChromiumRendersTheReport(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	l := writeLog(t, mixedRecords(t))
	r, err := l.build(t, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	page, err := report.HTML(r, l.key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "report.html")
	if err := os.WriteFile(file, page, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--enable-logging=stderr", "--v=0", "--dump-dom", "file://"+file)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	dom := stdout.String()
	for _, want := range []string{`id="controls"`, `id="sox-duties"`, `id="mifid-orders"`, `id="gdpr-masking"`, `id="security"`,
		`id="report-signature"`, "decided by the requester", "<svg", "&lt;script&gt;alert(1)&lt;/script&gt;"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the rendered document lacks %q", want)
		}
	}
	if strings.Contains(dom, "<script>alert") {
		t.Error("a hostile record became markup in the rendered document")
	}
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(line, "CONSOLE") || strings.Contains(line, "Content Security Policy") || strings.Contains(line, "Refused to") {
			t.Errorf("the browser reported: %s", line)
		}
	}
}

// TestCheckpointChainShowsWitnessCosignatures: with a witness cosigning the log's checkpoints,
// the chain names it on the checkpoints it cosigned; a required witness that cosigned nothing
// makes the log fail verification, and no report is built.
func TestCheckpointChainShowsWitnessCosignatures(t *testing.T) {
	t.Parallel()
	key, logV := newKey(t, "test-log")
	wkey, _, err := witness.GenerateKey("w1.example")
	if err != nil {
		t.Fatal(err)
	}
	cos, err := witness.NewCosigner(wkey, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := witness.New(t.TempDir(), cos, []witness.Log{{Origin: audit.DefaultOrigin, Verifiers: []note.Verifier{logV}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w.Handler())
	defer srv.Close()
	l := writeLogWith(t, mixedRecords(t), key, logV, func(cpDir string) []audit.Witness {
		return []audit.Witness{witness.NewClient(srv.URL, cos.Verifier(), &witness.ClientOptions{Dir: cpDir, MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond})}
	})
	r, err := l.build(t, report.Options{Witnesses: []note.Verifier{cos.Verifier()}, RequireWitnesses: true})
	if err != nil {
		t.Fatal(err)
	}
	newest := r.Checkpoints[len(r.Checkpoints)-1]
	if newest.Size != r.Verification.Records || !slices.Contains(newest.Witnesses, "w1.example") || !slices.Contains(newest.Sources, "cosigned copy") {
		t.Errorf("the newest checkpoint = %+v, want all %d records cosigned by w1.example", newest, r.Verification.Records)
	}
	page, err := report.HTML(r, l.key)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(page, []byte("<td>w1.example</td>")) {
		t.Error("the page does not show the witness's cosignature")
	}

	wkey2, _, err := witness.GenerateKey("w2.example")
	if err != nil {
		t.Fatal(err)
	}
	absent, err := witness.NewCosigner(wkey2, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.build(t, report.Options{Witnesses: []note.Verifier{cos.Verifier(), absent.Verifier()}, RequireWitnesses: true})
	if !errors.Is(err, report.ErrNotVerified) || !strings.Contains(err.Error(), "w2.example") {
		t.Errorf("a required witness that cosigned nothing: err = %v, want ErrNotVerified naming it", err)
	}
}
