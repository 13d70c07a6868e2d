package gdpr_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/gdpr"
	"github.com/mcpguard/mcpguard/internal/redact"
	"github.com/mcpguard/mcpguard/internal/sqldb/sqldbtest"
	"github.com/mcpguard/mcpguard/internal/store"
	"github.com/mcpguard/mcpguard/internal/store/postgres"
	"github.com/mcpguard/mcpguard/internal/store/sqlite"
)

var secret = []byte("0123456789abcdef0123456789abcdef-subject-secret")

// backends runs fn on SQLite and, when MCPGUARD_TEST_POSTGRES names a database, PostgreSQL.
func backends(t *testing.T, fn func(t *testing.T, open func(t *testing.T) store.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.db")
		fn(t, func(t *testing.T) store.Store {
			st, err := sqlite.Open(context.Background(), path, nil)
			if err != nil {
				t.Fatal(err)
			}
			return st
		})
	})
	t.Run("postgres", func(t *testing.T) {
		dsn, schema := sqldbtest.NewSchema(t)
		fn(t, func(t *testing.T) store.Store {
			st, err := postgres.Open(context.Background(), dsn, &postgres.Options{Schema: schema})
			if err != nil {
				t.Fatal(err)
			}
			return st
		})
	})
}

// env is an audit log with data subjects configured, and the service over it.
type env struct {
	st       store.Store
	log      *audit.Log
	svc      *gdpr.Service
	verifier note.Verifier
	dir      string
}

var tools = map[string][]string{
	"get_client_portfolio": {"client_id"},
	"execute_trade":        {"client_id", "counterparty.client_id"},
	"transfer_batch":       {"transfers[*].client_id", "watch[*]"},
}

func newEnv(t *testing.T, open func(t *testing.T) store.Store) *env {
	t.Helper()
	skey, vkey, err := audit.GenerateKey("gdpr-test")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	e := &env{verifier: verifier, dir: t.TempDir()}
	e.open(t, open, signer)
	return e
}

func (e *env) open(t *testing.T, open func(t *testing.T) store.Store, signer note.Signer) {
	t.Helper()
	ctx := context.Background()
	e.st = open(t)
	subjects, err := gdpr.NewSubjects(e.st.(store.Compliance), secret, &gdpr.Options{Tools: tools})
	if err != nil {
		t.Fatal(err)
	}
	red, err := redact.New([]byte("redaction-key-of-at-least-16-bytes"), nil)
	if err != nil {
		t.Fatal(err)
	}
	e.log, err = audit.Open(ctx, e.st, &audit.Options{Signer: signer, CheckpointDir: e.dir, Sealer: subjects, Redactor: red, CheckpointEvery: 3})
	if err != nil {
		t.Fatal(err)
	}
	e.svc, err = gdpr.NewService(e.st, subjects, e.log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.log.Close()
		e.st.Close()
	})
}

func (e *env) call(t *testing.T, at time.Time, principal, tool, args string) int64 {
	t.Helper()
	seq, err := e.log.Append(context.Background(), &audit.Record{Time: at, Kind: audit.KindToolCall, Principal: principal, Tool: tool,
		Arguments: json.RawMessage(args), Decision: audit.DecisionAllow, RequestID: "r-" + principal})
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// verify runs the verifier as `mcpguard audit verify` does, at now, and fails the test on any
// problem.
func (e *env) verify(t *testing.T, now time.Time) *audit.Report {
	t.Helper()
	rep := e.verifyReport(t, now)
	if !rep.OK() {
		t.Fatalf("verify found problems: %v", rep.Problems)
	}
	return rep
}

func (e *env) verifyReport(t *testing.T, now time.Time) *audit.Report {
	t.Helper()
	rep, err := audit.Verify(context.Background(), e.st, audit.VerifyOptions{Verifier: e.verifier, CheckpointDir: e.dir, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

var operator = gdpr.Actor{Principal: "dpo@bank.example", Roles: []string{"ComplianceOfficer"}, AuthMethod: "operator", Via: "test"}

func TestExportEraseExport(t *testing.T) {
	backends(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		ctx := context.Background()
		e := newEnv(t, open)
		now := time.Now()
		e.call(t, now, "analyst", "get_client_portfolio", `{"client_id":"C-1001","fields":["positions"]}`)
		e.call(t, now, "analyst", "get_client_portfolio", `{"client_id":"C-2002"}`)
		e.call(t, now, "trader", "execute_trade", `{"client_id":"C-1001","symbol":"ACME","quantity":10,"counterparty":{"client_id":"C-2002"}}`)
		e.call(t, now, "trader", "get_market_data", `{"symbol":"ACME"}`)

		// The log holds no subject identifier in clear.
		err := e.st.Scan(ctx, 0, func(r *store.Record) error {
			for _, id := range []string{"C-1001", "C-2002"} {
				if bytes.Contains(r.Data, []byte(id)) {
					t.Errorf("record %d holds %s in clear: %s", r.Seq, id, r.Data)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}

		ex, err := e.svc.Export(ctx, "C-1001", operator)
		if err != nil {
			t.Fatal(err)
		}
		if ex.Readable != 2 || ex.Unreadable != 0 {
			t.Fatalf("export of C-1001: %d readable, %d unreadable records; want 2 and 0: %+v", ex.Readable, ex.Unreadable, ex.Records)
		}
		out, _ := json.Marshal(ex)
		if bytes.Contains(out, []byte("C-2002")) {
			t.Errorf("the export of C-1001 names C-2002: %s", out)
		}
		trade := ex.Records[1].Data
		if trade == nil || trade.Subject != "C-1001" || !strings.Contains(string(trade.Arguments), `"quantity":10`) || !strings.Contains(string(trade.Arguments), `"[another data subject]"`) {
			t.Errorf("the trade as exported: %+v", trade)
		}
		e.verify(t, now)

		// A legal hold on the subject refuses the erasure.
		h, err := e.svc.AddHold(ctx, gdpr.HoldRequest{Subject: "C-1001", Reason: "matter 2026-17"}, operator)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Erase(ctx, "C-1001", "art. 17 request", operator); !errors.Is(err, gdpr.ErrHeld) {
			t.Fatalf("erasure under a legal hold: %v, want ErrHeld", err)
		}
		// So does a hold on a principal whose records name the subject.
		h2, err := e.svc.AddHold(ctx, gdpr.HoldRequest{Principal: "trader", Reason: "desk review"}, operator)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.ReleaseHold(ctx, h.ID, operator); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Erase(ctx, "C-1001", "art. 17 request", operator); !errors.Is(err, gdpr.ErrHeld) {
			t.Fatalf("erasure under a principal's legal hold: %v, want ErrHeld", err)
		}
		if err := e.svc.ReleaseHold(ctx, h2.ID, operator); err != nil {
			t.Fatal(err)
		}

		// A copy of the key table as a backup would hold it.
		backup, err := e.st.(store.Compliance).SubjectKey(ctx, e.svc.Subjects().Commitment("C-1001"))
		if err != nil {
			t.Fatal(err)
		}
		er, err := e.svc.Erase(ctx, "C-1001", "art. 17 request", operator)
		if err != nil {
			t.Fatal(err)
		}
		erasure, err := e.st.Get(ctx, er.RecordSeq)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(erasure.Data, []byte("C-1001")) || erasure.Kind != string(audit.KindErasure) {
			t.Errorf("erasure record: %s", erasure.Data)
		}
		ex, err = e.svc.Export(ctx, "C-1001", operator)
		if err != nil {
			t.Fatal(err)
		}
		if ex.Readable != 0 || ex.Unreadable != 2 {
			t.Fatalf("export after erasure: %d readable, %d unreadable; want 0 and 2", ex.Readable, ex.Unreadable)
		}
		if _, err := e.svc.Erase(ctx, "C-1001", "", operator); !errors.Is(err, gdpr.ErrNoSubject) {
			t.Errorf("a second erasure: %v, want ErrNoSubject", err)
		}
		// The other subject is untouched.
		other, err := e.svc.Export(ctx, "C-2002", operator)
		if err != nil || other.Readable != 2 {
			t.Fatalf("export of C-2002 after erasing C-1001: %v, %+v", err, other)
		}
		e.verify(t, now)

		// The backup is restored: the key is back in the table. The next export finds the
		// erasure record naming it, deletes it and reads nothing.
		if _, err := e.st.(store.Compliance).PutSubjectKey(ctx, backup); err != nil {
			t.Fatal(err)
		}
		ex, err = e.svc.Export(ctx, "C-1001", operator)
		if err != nil {
			t.Fatal(err)
		}
		if ex.Readable != 0 || ex.Neutralised != 1 {
			t.Fatalf("export after restoring the old key table: %d readable, %d keys neutralised; want 0 and 1", ex.Readable, ex.Neutralised)
		}
		// And at start: Neutralise deletes it too.
		if _, err := e.st.(store.Compliance).PutSubjectKey(ctx, backup); err != nil {
			t.Fatal(err)
		}
		if n, err := e.svc.Neutralise(ctx); err != nil || n != 1 {
			t.Fatalf("Neutralise = %d, %v; want 1 key deleted", n, err)
		}
		// A new call about the erased subject is sealed under a new key, readable again.
		e.call(t, now, "analyst", "get_client_portfolio", `{"client_id":"C-1001"}`)
		ex, err = e.svc.Export(ctx, "C-1001", operator)
		if err != nil || ex.Readable != 1 || ex.Unreadable != 2 {
			t.Fatalf("export after a new call: %v, %d readable, %d unreadable; want 1 and 2", err, ex.Readable, ex.Unreadable)
		}
		e.verify(t, now)
	})
}

func TestRetention(t *testing.T) {
	backends(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		ctx := context.Background()
		e := newEnv(t, open)
		t0 := time.Now().AddDate(-8, 0, 0)
		old := []int64{
			e.call(t, t0, "analyst", "get_client_portfolio", `{"client_id":"C-1001"}`),
			e.call(t, t0.Add(time.Second), "analyst", "get_market_data", `{"symbol":"ACME"}`),
		}
		held := e.call(t, t0.Add(2*time.Second), "trader", "execute_trade", `{"client_id":"C-3003","symbol":"ACME","quantity":1}`)
		af, err := e.log.Append(ctx, &audit.Record{Time: t0.Add(3 * time.Second), Kind: audit.KindAuthFailure, ClientIP: "203.0.113.9", Reasons: []string{"bad token"}})
		if err != nil {
			t.Fatal(err)
		}
		recent := e.call(t, time.Now().AddDate(-2, 0, 0), "analyst", "get_market_data", `{"symbol":"XYZ"}`)
		if _, err := e.svc.AddHold(ctx, gdpr.HoldRequest{Principal: "trader", Reason: "litigation 42"}, operator); err != nil {
			t.Fatal(err)
		}

		// The clock moved forward one year: calls are kept seven years, auth failures one.
		now := time.Now().AddDate(1, 0, 0)
		policies := []gdpr.Policy{
			{Kind: audit.KindToolCall, Retention: "7y", Before: now.AddDate(-7, 0, 0)},
			{Kind: audit.KindAuthFailure, Retention: "1y", Before: now.AddDate(-1, 0, 0)},
		}
		res, err := e.svc.Prune(ctx, now, policies, gdpr.Actor{Principal: "mcpguard", AuthMethod: "schedule", Via: "test"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Pruned != 3 || res.Held != 1 || len(res.Records) != 1 {
			t.Fatalf("prune: %+v; want 3 pruned, 1 held, one retention record", res)
		}
		for _, seq := range append(old, af) {
			r, err := e.st.Get(ctx, seq)
			if err != nil {
				t.Fatal(err)
			}
			if !audit.IsPruned(r.Data) || bytes.Contains(r.Data, []byte("arguments")) || bytes.Contains(r.Data, []byte("203.0.113.9")) {
				t.Errorf("record %d after pruning: %s", seq, r.Data)
			}
		}
		for _, seq := range []int64{held, recent} {
			r, _ := e.st.Get(ctx, seq)
			if audit.IsPruned(r.Data) {
				t.Errorf("record %d was pruned: %s", seq, r.Data)
			}
		}
		ret, err := e.st.Get(ctx, res.Records[0])
		if err != nil || ret.Kind != string(audit.KindRetention) {
			t.Fatalf("retention record: %+v, %v", ret, err)
		}
		rep := e.verify(t, now)
		if rep.Pruned != 3 {
			t.Errorf("verify counted %d pruned records, want 3", rep.Pruned)
		}
		// A pruned record is no longer found by its subject.
		ex, err := e.svc.Export(ctx, "C-1001", operator)
		if err != nil || len(ex.Records) != 0 {
			t.Errorf("export of a pruned subject: %v, %+v", err, ex)
		}
		// Run again: nothing more to prune, nothing written.
		res, err = e.svc.Prune(ctx, now, policies, gdpr.Actor{Principal: "mcpguard", AuthMethod: "schedule"})
		if err != nil || res.Pruned != 0 || len(res.Records) != 0 {
			t.Errorf("second prune: %+v, %v; want nothing", res, err)
		}

		// Verified with today's clock, the retention record is dated in the future: it pruned by
		// a clock set ahead.
		if rep := e.verifyReport(t, time.Now()); rep.OK() || !strings.Contains(rep.Problems[0].What, "in the future") {
			t.Errorf("a retention record dated ahead of the verifier's clock verified: %v", rep.Problems)
		}

		// An insider marks the recent record pruned, without a retention record: verify fails
		// and names it.
		r, _ := e.st.Get(ctx, recent)
		rec, err := audit.ParseRecord(r.Data)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.st.(store.Compliance).Prune(ctx, []store.Pruned{{Seq: recent, Data: audit.PrunedForm(rec)}}); err != nil {
			t.Fatal(err)
		}
		rep = e.verifyReport(t, now)
		if p, ok := rep.First(); !ok || p.Seq != recent || !strings.Contains(p.What, "no later retention record covers it") {
			t.Errorf("a forged pruned record: problems %v", rep.Problems)
		}
	})
}

// TestArraySubjects: a path through arrays ("transfers[*].client_id", "watch[*]") names every
// element's subject; each is sealed on its own with the others hidden, the record keeps only
// commitments, and each subject's export reads its own copy. A call naming more subjects than
// one record seals is refused whole.
func TestArraySubjects(t *testing.T) {
	backends(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		e := newEnv(t, open)
		ctx := context.Background()
		now := time.Now()
		e.call(t, now, "desk", "transfer_batch", `{"transfers":[{"client_id":"C-1","amount":5},{"client_id":"C-2","amount":7},{"note":"no client"}],"watch":["C-3",42,"C-1",{"x":"C-9"}]}`)
		var stored string
		if err := e.st.Scan(ctx, 0, func(r *store.Record) error { stored = string(r.Data); return nil }); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"C-1", "C-2", "C-3", `"42"`, `,42,`} { // 42 sits between two elements
			if strings.Contains(stored, id) {
				t.Errorf("the stored record still holds %s: %s", id, stored)
			}
		}
		if !strings.Contains(stored, `C-9`) {
			t.Errorf("an object inside watch[*] is not an identifier, yet it was replaced: %s", stored)
		}
		for _, c := range []struct {
			id, want string
			paths    []string
		}{
			{"C-1", `"transfers":[{"amount":5,"client_id":"C-1"},{"amount":7,"client_id":"[another data subject]"}`, []string{"transfers[*].client_id", "watch[*]"}},
			{"C-2", `{"amount":7,"client_id":"C-2"}`, []string{"transfers[*].client_id"}},
			{"42", `"watch":["[another data subject]","42","[another data subject]"`, []string{"watch[*]"}},
		} {
			ex, err := e.svc.Export(ctx, c.id, operator)
			if err != nil {
				t.Fatal(err)
			}
			if ex.Readable != 1 {
				t.Fatalf("export of %s: %d readable records, want 1", c.id, ex.Readable)
			}
			got := ex.Records[0].Data
			if got.Subject != c.id || !slices.Equal(got.Paths, c.paths) || !strings.Contains(string(got.Arguments), c.want) {
				t.Errorf("export of %s: subject %q paths %v arguments %s; want paths %v and arguments holding %s", c.id, got.Subject, got.Paths, got.Arguments, c.paths, c.want)
			}
		}

		var many strings.Builder
		many.WriteString(`{"watch":[`)
		for i := range gdpr.MaxSubjectsPerRecord + 1 {
			if i > 0 {
				many.WriteByte(',')
			}
			fmt.Fprintf(&many, `"M-%d"`, i)
		}
		many.WriteString(`]}`)
		_, err := e.log.Append(ctx, &audit.Record{Time: now, Kind: audit.KindToolCall, Principal: "desk", Tool: "transfer_batch",
			Arguments: json.RawMessage(many.String()), Decision: audit.DecisionAllow, RequestID: "r-many"})
		if !errors.Is(err, gdpr.ErrTooManySubjects) {
			t.Errorf("a call naming %d subjects: %v, want ErrTooManySubjects", gdpr.MaxSubjectsPerRecord+1, err)
		}
		e.verify(t, now.Add(time.Minute))
	})
}

// TestVerifyChecksTheSubjectIndex: the subject index lives beside the hashed records, so
// `audit verify` recomputes it from them: a deleted entry (a record hidden from its subject's
// export) and an added one (a record shown to a subject it is not about) are each reported at
// the record, while the untouched log verifies.
func TestVerifyChecksTheSubjectIndex(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	e := newEnv(t, func(t *testing.T) store.Store {
		st, err := sqlite.Open(ctx, path, nil)
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
	now := time.Now()
	first := e.call(t, now, "analyst", "get_client_portfolio", `{"client_id":"C-1001"}`)
	e.call(t, now, "analyst", "get_client_portfolio", `{"client_id":"C-2002"}`)
	plain := e.call(t, now, "analyst", "get_market_news", `{"topic":"rates"}`)
	if _, err := e.svc.Erase(ctx, "C-2002", "DSR-1", operator); err != nil {
		t.Fatal(err)
	}
	at := now.Add(time.Minute)
	e.verify(t, at)

	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	var c string
	if err := db.QueryRowContext(ctx, "SELECT commitment FROM audit_subjects WHERE seq = ?", first).Scan(&c); err != nil {
		t.Fatal(err)
	}
	has := func(rep *audit.Report, seq int64, what string) bool {
		for _, p := range rep.Problems {
			if p.Seq == seq && strings.Contains(p.What, what) {
				return true
			}
		}
		return false
	}

	exec("DELETE FROM audit_subjects WHERE seq = ?", first)
	if rep := e.verifyReport(t, at); !has(rep, first, "the subject index lacks this record") {
		t.Errorf("an index entry deleted: problems %v, want record %d reported as hidden", rep.Problems, first)
	}
	exec("INSERT INTO audit_subjects (commitment, seq) VALUES (?, ?)", c, first)
	exec("INSERT INTO audit_subjects (commitment, seq) VALUES (?, ?)", c, plain)
	if rep := e.verifyReport(t, at); !has(rep, plain, "which the record does not name") {
		t.Errorf("an index entry added: problems %v, want record %d reported", rep.Problems, plain)
	}
	exec("DELETE FROM audit_subjects WHERE seq = ?", plain)
	e.verify(t, at)
}
