package audit_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/mod/sumdb/note"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/redact"
	"github.com/mcpguard/mcpguard/internal/store"
	"github.com/mcpguard/mcpguard/internal/store/sqlite"
)

type keys struct {
	signer   note.Signer
	verifier note.Verifier
}

func newKeys(t testing.TB, name string) keys {
	t.Helper()
	skey, vkey, err := audit.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return keys{s, v}
}

type env struct {
	dir   string
	db    string
	cpDir string
	keys  keys
	shift time.Duration // added to every record's time by fill
}

func newEnv(t testing.TB) *env {
	dir := t.TempDir()
	return &env{dir: dir, db: filepath.Join(dir, "audit.db"), cpDir: filepath.Join(dir, "checkpoints"), keys: newKeys(t, "test-log")}
}

func (e *env) open(t testing.TB) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), e.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *env) logOn(t testing.TB, st store.Store, every int64) *audit.Log {
	t.Helper()
	l, err := audit.Open(context.Background(), st, &audit.Options{
		Signer: e.keys.signer, CheckpointDir: e.cpDir, CheckpointEvery: every, CheckpointInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

var t0 = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

func call(i int) *audit.Record {
	return &audit.Record{
		Time: t0.Add(time.Duration(i) * time.Millisecond), Kind: audit.KindToolCall,
		RequestID: fmt.Sprintf("r%d", i), Principal: []string{"alice", "bob"}[i%2], Roles: []string{"analyst"},
		AuthMethod: "jwt", ClientIP: "127.0.0.1", Era: "modern", Method: "tools/call", Upstream: "fin",
		Tool: "fin.transfer", Arguments: json.RawMessage(fmt.Sprintf(`{"amount":%d}`, i)),
		Decision: audit.DecisionAllow, Rule: "analysts-may-transfer",
	}
}

// fill appends n records, sequentially, and closes the log.
func (e *env) fill(t testing.TB, n int, every int64) {
	t.Helper()
	st := e.open(t)
	defer st.Close()
	l := e.logOn(t, st, every)
	for i := range n {
		rec := call(i)
		rec.Time = rec.Time.Add(e.shift)
		if _, err := l.Append(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func (e *env) verify(t testing.TB) *audit.Report {
	t.Helper()
	st := e.open(t)
	defer st.Close()
	rep, err := audit.Verify(context.Background(), st, audit.VerifyOptions{Verifier: e.keys.verifier, CheckpointDir: e.cpDir})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestConcurrentAppendsVerify(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	st := e.open(t)
	defer st.Close()
	l := e.logOn(t, st, 100)
	var wg sync.WaitGroup
	seen := make([]atomic.Bool, 640)
	for w := range 64 {
		wg.Go(func() {
			for i := range 10 {
				seq, err := l.Append(context.Background(), call(w*10+i))
				if err != nil {
					t.Error(err)
					return
				}
				if seen[seq].Swap(true) {
					t.Errorf("sequence %d given twice", seq)
				}
			}
		})
	}
	wg.Wait()
	l.Close()
	rep, err := audit.Verify(context.Background(), st, audit.VerifyOptions{Verifier: e.keys.verifier, CheckpointDir: e.cpDir})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Records != 640 || rep.Covered != 640 || rep.NewestExternal != 640 {
		t.Errorf("report %+v, want 640 records all covered by checkpoints and no problems", rep)
	}
	files, _ := filepath.Glob(filepath.Join(e.cpDir, "checkpoint-*"))
	if len(files) < 2 {
		t.Errorf("%d checkpoint files, want one per 100 records and a final one", len(files))
	}
}

func TestRecordIsRedactedAndCanonical(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	st := e.open(t)
	defer st.Close()
	r, err := redact.New([]byte("a key of at least sixteen bytes"), nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(context.Background(), st, &audit.Options{Redactor: r})
	if err != nil {
		t.Fatal(err)
	}
	rec := call(1)
	rec.Arguments = json.RawMessage(`{"password": "hunter2", "card": "4111 1111 1111 1111", "to": "AKIAIOSFODNN7EXAMPLE"}`)
	seq, err := l.Append(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	got, err := st.Get(context.Background(), seq)
	if err != nil {
		t.Fatal(err)
	}
	for _, canary := range []string{"hunter2", "4111 1111 1111 1111", "AKIAIOSFODNN7EXAMPLE"} {
		if strings.Contains(string(got.Data), canary) {
			t.Errorf("the stored record holds %q in clear: %s", canary, got.Data)
		}
	}
	parsed, err := audit.ParseRecord(got.Data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int{"key": 1, "payment_card": 1, "aws_access_key": 1}, parsed.Redactions); diff != "" {
		t.Errorf("redactions (-want +got):\n%s", diff)
	}
	want := `{"v":1,"seq":0,"time":"2026-11-21T09:00:00.001000000Z","kind":"call","request_id":"r1","principal":"bob","roles":["analyst"],"auth_method":"jwt","client_ip":"127.0.0.1","era":"modern","method":"tools/call","upstream":"fin","tool":"fin.transfer","arguments":{"password":"` + r.Token([]byte("hunter2")) + `","card":"` + r.Token([]byte("4111 1111 1111 1111")) + `","to":"` + r.Token([]byte("AKIAIOSFODNN7EXAMPLE")) + `"},"redactions":{"aws_access_key":1,"key":1,"payment_card":1},"decision":"allow","rule":"analysts-may-transfer"}`
	if diff := cmp.Diff(want, string(got.Data)); diff != "" {
		t.Errorf("canonical encoding (-want +got):\n%s", diff)
	}
}

func TestRestartContinuesTheTree(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fill(t, 37, 10)
	e.fill(t, 29, 10) // a second process continues the same log
	rep := e.verify(t)
	if !rep.OK() || rep.Records != 66 || rep.Covered != 66 {
		t.Errorf("report %+v, want 66 records, all covered, no problems", rep)
	}
}

// tamper edits the database directly, as someone with access to the file would.
func tamper(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func TestVerifyFindsTampering(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		tamper  func(t *testing.T, e *env, db *sql.DB)
		wantSeq int64 // -1: no record named
		want    string
	}{
		{"edited field in the record", func(t *testing.T, _ *env, db *sql.DB) {
			tamper(t, db, `UPDATE audit_records SET record = CAST(replace(CAST(record AS TEXT), '"amount":17', '"amount":99') AS BLOB) WHERE seq = 17`)
		}, 17, "does not match its stored leaf hash"},
		{"edited indexed column", func(t *testing.T, _ *env, db *sql.DB) {
			tamper(t, db, `UPDATE audit_records SET principal = 'mallory' WHERE seq = 17`)
		}, 17, `column principal is "mallory"`},
		{"edited decision in record and column", func(t *testing.T, _ *env, db *sql.DB) {
			tamper(t, db, `UPDATE audit_records SET decision = 'deny', record = CAST(replace(CAST(record AS TEXT), '"decision":"allow"', '"decision":"deny"') AS BLOB) WHERE seq = 17`)
		}, 17, "does not match its stored leaf hash"},
		{"deleted row", func(t *testing.T, _ *env, db *sql.DB) {
			tamper(t, db, `DELETE FROM audit_records WHERE seq = 17`)
		}, 17, "missing (deleted rows)"},
		{"inserted row", func(t *testing.T, _ *env, db *sql.DB) {
			tamper(t, db,
				`UPDATE audit_records SET seq = -seq - 1 WHERE seq >= 17`,
				`UPDATE audit_records SET seq = -seq WHERE seq < 0`,
				`INSERT INTO audit_records SELECT 17, time_ns, kind, principal, tool, decision, request_id, record, hashes FROM audit_records WHERE seq = 16`)
		}, 17, "the row holds record 16"},
		{"reordered rows", func(t *testing.T, _ *env, db *sql.DB) {
			tamper(t, db,
				`UPDATE audit_records SET seq = -1 WHERE seq = 17`,
				`UPDATE audit_records SET seq = 17 WHERE seq = 18`,
				`UPDATE audit_records SET seq = 18 WHERE seq = -1`)
		}, 17, "the row holds record 18"},
		{"rewritten record with recomputed hashes", func(t *testing.T, e *env, db *sql.DB) {
			// Someone who rebuilds every hash after an edit is caught by the signed checkpoints.
			rebuildWithEdit(t, e, db, 23)
		}, 20, "does not match records 0..29"},
		{"truncated tail", func(t *testing.T, _ *env, db *sql.DB) {
			tamper(t, db, `DELETE FROM audit_records WHERE seq >= 45`, `DELETE FROM audit_checkpoints WHERE size > 45`)
		}, 45, "the tail was truncated"},
		{"older copy put back", func(t *testing.T, e *env, db *sql.DB) {
			// Copy at 30 records, then restore it after the log grew.
			tamper(t, db, `DELETE FROM audit_records WHERE seq >= 30`, `DELETE FROM audit_checkpoints WHERE size > 30`)
		}, 30, "the tail was truncated"},
		{"principal removed from the search summary", func(t *testing.T, _ *env, db *sql.DB) {
			// The records verify, but `audit search --principal alice` would find nothing.
			tamper(t, db, `UPDATE audit_blocks SET principals = '["bob"]' WHERE block = 0`)
		}, 0, "search summary that does not match its records"},
		{"search summary deleted", func(t *testing.T, _ *env, db *sql.DB) {
			tamper(t, db, `DELETE FROM audit_blocks`)
		}, 0, "has no search summary"},
		{"search summary narrowed in time", func(t *testing.T, _ *env, db *sql.DB) {
			tamper(t, db, `UPDATE audit_blocks SET max_time_ns = min_time_ns WHERE block = 0`)
		}, 0, "search summary that does not match its records"},
		{"forged database checkpoint", func(t *testing.T, _ *env, db *sql.DB) {
			tamper(t, db, `UPDATE audit_checkpoints SET note = CAST(replace(CAST(note AS TEXT), char(10) || '50' || char(10), char(10) || '51' || char(10)) AS BLOB) WHERE size = 50`)
		}, -1, "signature"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.fill(t, 50, 10)
			st := e.open(t)
			tc.tamper(t, e, st.DB())
			st.Close()
			rep := e.verify(t)
			first, ok := rep.First()
			if !ok {
				t.Fatalf("verify passed a tampered log: %+v", rep)
			}
			if first.Seq != tc.wantSeq || !strings.Contains(first.What, tc.want) {
				t.Errorf("first problem %q, want record %d and %q; all: %v", first, tc.wantSeq, tc.want, rep.Problems)
			}
		})
	}
}

// rebuildWithEdit rewrites the log as an attacker with database access but without the signing
// key would: edit record seq, then recompute every tree hash from there on.
func rebuildWithEdit(t *testing.T, e *env, db *sql.DB, seq int64) {
	t.Helper()
	other := filepath.Join(t.TempDir(), "forged.db")
	fst, err := sqlite.Open(context.Background(), other, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fst.Close()
	l, err := audit.Open(context.Background(), fst, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		rec := call(i)
		if int64(i) == seq {
			rec.Arguments = json.RawMessage(`{"amount":1000000}`)
		}
		if _, err := l.Append(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	tamper(t, db, `DELETE FROM audit_records`, fmt.Sprintf(`ATTACH DATABASE '%s' AS forged`, other),
		`INSERT INTO audit_records SELECT * FROM forged.audit_records`, `DETACH DATABASE forged`)
}

func TestUntouchedLogPasses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fill(t, 50, 10)
	rep := e.verify(t)
	if !rep.OK() || rep.Records != 50 || rep.Checkpoints != 5 || rep.External != 5 || len(rep.Warnings) != 0 {
		t.Errorf("report %+v, want 50 records, 5+5 checkpoints, no problems or warnings", rep)
	}
}

func TestReplacedLogAgainstExternalCheckpoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fill(t, 50, 10)
	// Another log, signed by someone else's key, put in place of the database.
	os.Remove(e.db)
	os.Remove(e.db + "-wal")
	os.Remove(e.db + "-shm")
	other := *e
	other.keys = newKeys(t, "test-log")
	other.cpDir = filepath.Join(e.dir, "elsewhere")
	other.shift = time.Hour
	other.fill(t, 60, 10)
	rep := e.verify(t)
	first, ok := rep.First()
	if !ok {
		t.Fatalf("verify passed a replaced log: %+v", rep)
	}
	if first.Seq != 0 || !strings.Contains(first.What, "does not match records 0..9") {
		t.Errorf("first problem %q, want the external checkpoint at 10 to fail; all: %v", first, rep.Problems)
	}
	if !strings.Contains(fmt.Sprint(rep.Problems), "signature") {
		t.Errorf("problems %v do not mention the database checkpoints' unknown signer", rep.Problems)
	}
}

func TestProofs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fill(t, 50, 10)
	st := e.open(t)
	defer st.Close()
	ctx := context.Background()
	for _, seq := range []int64{0, 1, 9, 10, 33, 49} {
		p, err := audit.ProveInclusion(ctx, st, seq, e.keys.verifier)
		if err != nil {
			t.Fatal(err)
		}
		// Round-trip through JSON, as a third party receives it.
		b, _ := json.Marshal(p)
		var got audit.InclusionProof
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if err := audit.VerifyInclusion(&got, e.keys.verifier, audit.DefaultOrigin); err != nil {
			t.Errorf("record %d: %v", seq, err)
		}
		got.Record = strings.Replace(got.Record, `"amount"`, `"amount" `, 1)
		if err := audit.VerifyInclusion(&got, e.keys.verifier, audit.DefaultOrigin); err == nil {
			t.Errorf("record %d: an edited record passed its inclusion proof", seq)
		}
	}
	cp, err := audit.ProveConsistency(ctx, st, 10, 50, e.keys.verifier)
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.VerifyConsistency(cp, e.keys.verifier, audit.DefaultOrigin); err != nil {
		t.Error(err)
	}
	cp.Old, cp.New = cp.New, cp.Old
	if err := audit.VerifyConsistency(cp, e.keys.verifier, ""); err == nil {
		t.Error("swapped checkpoints passed the consistency check")
	}
	if _, err := audit.ProveConsistency(ctx, st, 10, 45, e.keys.verifier); err == nil {
		t.Error("a consistency proof to a size without a checkpoint was made")
	}
}

// failing wraps a store and fails appends while fail is set.
type failing struct {
	store.Store
	fail    atomic.Bool
	appends atomic.Int64
	gate    chan struct{} // when set, every Append waits for a value
	entered chan struct{} // when set, every Append reports here before waiting at the gate
}

func (f *failing) Append(ctx context.Context, recs []store.Record) error {
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.gate != nil {
		<-f.gate
	}
	f.appends.Add(1)
	if f.fail.Load() {
		return errors.New("disk I/O error")
	}
	return f.Store.Append(ctx, recs)
}

func TestAppendFailsClosed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	st := e.open(t)
	defer st.Close()
	f := &failing{Store: st}
	l := e.logOn(t, f, 10)
	ctx := context.Background()
	if _, err := l.Append(ctx, call(0)); err != nil {
		t.Fatal(err)
	}
	f.fail.Store(true)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, err := l.Append(ctx, call(i)); !errors.Is(err, audit.ErrUnavailable) {
				t.Errorf("Append while the store fails: error %v, want ErrUnavailable", err)
			}
		})
	}
	wg.Wait()
	f.fail.Store(false)
	seq, err := l.Append(ctx, call(9))
	if err != nil || seq != 1 {
		t.Fatalf("Append after recovery = %d, %v; want sequence 1", seq, err)
	}
	l.Close()
	if _, err := l.Append(ctx, call(10)); !errors.Is(err, audit.ErrUnavailable) {
		t.Errorf("Append after Close: error %v, want ErrUnavailable", err)
	}
	if rep := e.verify(t); !rep.OK() || rep.Records != 2 {
		t.Errorf("report %+v, want 2 records and no problems", rep)
	}
}

func TestGroupCommit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	st := e.open(t)
	defer st.Close()
	f := &failing{Store: st, gate: make(chan struct{}), entered: make(chan struct{}, 100)}
	l := e.logOn(t, f, 1000)
	ctx := context.Background()

	// A lone append waits for its own commit.
	done := make(chan error, 1)
	go func() { _, err := l.Append(ctx, call(0)); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("Append returned (%v) before its transaction committed", err)
	case <-time.After(50 * time.Millisecond):
	}
	f.gate <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// While one transaction is in flight, 63 callers queue up and share the next one.
	var wg sync.WaitGroup
	wg.Go(func() { l.Append(ctx, call(1)) })
	<-f.entered // the lone append's transaction
	<-f.entered // the writer holds call 1 at the gate
	for i := range 63 {
		wg.Go(func() { l.Append(ctx, call(2+i)) })
	}
	waitFor(t, func() bool { return l.Pending() == 63 })
	go func() {
		for range 64 {
			f.gate <- struct{}{}
		}
	}()
	wg.Wait()
	if got := f.appends.Load(); got != 3 {
		t.Errorf("65 appends took %d transactions, want 3: the lone one, call 1, and the 63 that queued meanwhile (group commit)", got)
	}
	// Release the final checkpoint's path (no append) and close.
	go func() {
		for {
			select {
			case f.gate <- struct{}{}:
			case <-time.After(time.Second):
				return
			}
		}
	}()
	l.Close()
}

// waitFor polls cond for up to ten seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLoadSigner(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	skey, vkey, err := audit.GenerateKey("ops")
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "ops.key")
	os.WriteFile(good, []byte(skey+"\n"), 0o600)
	open := filepath.Join(dir, "open.key")
	os.WriteFile(open, []byte(skey), 0o644)
	pub := filepath.Join(dir, "ops.pub")
	os.WriteFile(pub, []byte(vkey), 0o600)
	s, err := audit.LoadSigner(good)
	if err != nil || s.Name() != "ops" {
		t.Fatalf("LoadSigner(good) = %v, %v", s, err)
	}
	for _, tc := range []struct{ name, path, want string }{
		{"readable by others", open, "chmod 600"},
		{"public key instead", pub, "not a signing key"},
		{"missing", filepath.Join(dir, "nope"), "no such file"},
	} {
		if _, err := audit.LoadSigner(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

// hanging is a store whose appends never finish on their own: they wait for their context.
type hanging struct{ store.Store }

func (h hanging) Append(ctx context.Context, recs []store.Record) error {
	<-ctx.Done()
	return ctx.Err()
}

// A store that stops answering fails the calls waiting to be recorded once StoreTimeout
// passes; they are refused, not left waiting and not served unrecorded.
func TestAppendFailsWhenTheStoreHangs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	st := e.open(t)
	defer st.Close()
	l, err := audit.Open(context.Background(), hanging{st}, &audit.Options{
		Signer: e.keys.signer, CheckpointDir: e.cpDir, CheckpointInterval: time.Hour, StoreTimeout: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Append(context.Background(), call(0)); !errors.Is(err, audit.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Append on a hanging store: error %v, want ErrUnavailable from a deadline", err)
	}
}

// stuck is a store whose appends wait until the test lets them go, whatever their context.
type stuck struct {
	store.Store
	entered, release chan struct{}
}

func (s stuck) Append(ctx context.Context, recs []store.Record) error {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-s.release
	return s.Store.Append(ctx, recs)
}

// A record nobody waits for (AppendLater) waits for room in a full queue at most StoreTimeout:
// a queue that stays full is a store that does not keep up, and the caller is told so instead of
// waiting for ever.
func TestAppendLaterWaitsForRoomAtMostStoreTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	st := e.open(t)
	defer st.Close()
	s := stuck{st, make(chan struct{}, 1), make(chan struct{})}
	l, err := audit.Open(context.Background(), s, &audit.Options{
		Signer: e.keys.signer, CheckpointDir: e.cpDir, CheckpointInterval: time.Hour, StoreTimeout: 20 * time.Millisecond, Queue: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first := make(chan error, 1)
	go func() { _, err := l.Append(ctx, call(0)); first <- err }()
	<-s.entered // the writer holds it, stuck in the store
	if err := l.AppendLater(ctx, call(1), nil); err != nil {
		t.Fatal(err) // the queue's one place
	}
	if err := l.AppendLater(ctx, call(2), nil); !errors.Is(err, audit.ErrUnavailable) || !strings.Contains(err.Error(), "queue stayed full") {
		t.Errorf("AppendLater on a full queue: %v, want ErrUnavailable, the queue stayed full", err)
	}
	close(s.release)
	<-first // held past StoreTimeout: refused, as TestAppendFailsWhenTheStoreHangs says
	l.Close()
}
