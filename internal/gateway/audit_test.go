package gateway

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/mcpguard/mcpguard/cmd/mcpguard/wiring"
	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/gdpr"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/store"
	"github.com/mcpguard/mcpguard/internal/store/sqlite"
	"github.com/mcpguard/mcpguard/internal/testenv"
)

func openStore(t *testing.T, path string) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path, &sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// auditConfig is an audit section over a fresh SQLite file, signing key and checkpoint
// directory; it returns the YAML and the verifier key.
func auditConfig(t testing.TB) (string, string, string) {
	t.Helper()
	dir := t.TempDir()
	signer, verifier, err := audit.GenerateKey("mcpguard-test")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "audit.key")
	if err := os.WriteFile(keyFile, []byte(signer), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MCPGUARD_TEST_REDACTION_KEY", strings.Repeat("k", 40))
	db := filepath.Join(dir, "audit.db")
	return fmt.Sprintf(`audit:
  database: %q
  signing_key_file: %q
  checkpoint_dir: %q
  checkpoint_every: 2
  redaction_key: env:MCPGUARD_TEST_REDACTION_KEY
`, db, keyFile, filepath.Join(dir, "checkpoints")), db, verifier
}

// TestAuditRecordsRedactsAndFailsClosed: a call through the gateway is recorded with redacted
// arguments, secrets appear nowhere in the database file, the log verifies against the
// checkpoints kept outside it — and once the audit store is down, calls get 503 + Retry-After
// and none reaches the upstream.
func TestAuditRecordsRedactsAndFailsClosed(t *testing.T) {
	section, db, verifier := auditConfig(t)
	tg := newTestGateway(t, section)
	h := tg.initialize(t)
	const awsKey, ghToken, card, password = "AKIAIOSFODNN7EXAMPLE", "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB", "4111 1111 1111 1111", "hunter2-canary"
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"aws %s gh %s card %s","password":%q}}}`, awsKey, ghToken, card, password)
	if st, _, msg := post(t, tg.url, h, body); st != http.StatusOK {
		t.Fatalf("audited call: status %d, %v", st, msg)
	}
	var files []byte // every appended record is durable already: in the file, its WAL or the record segment
	for _, suffix := range []string{"", "-wal", "-shm", sqlite.SegmentSuffix} {
		b, _ := os.ReadFile(db + suffix)
		files = append(files, b...)
	}
	if len(files) == 0 {
		t.Fatal("no audit database was written")
	}
	for _, canary := range []string{awsKey, ghToken, card, "4111111111111111", password} {
		if bytes.Contains(files, []byte(canary)) {
			t.Errorf("the audit database holds %q in clear", canary)
		}
	}
	if !bytes.Contains(files, []byte("hmac:")) {
		t.Error("the audit database holds no redaction tokens: were the arguments recorded?")
	}

	// The outcome record is written after the reply, and with it (checkpoint_every: 2) the first
	// checkpoint: wait for both.
	st := openStore(t, db)
	cpDir := filepath.Join(filepath.Dir(db), "checkpoints")
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		entries, _ := os.ReadDir(cpDir)
		if n, _ := st.Size(context.Background()); n >= 2 && len(entries) > 0 {
			break
		}
	}
	// The log verifies against the checkpoints kept outside the database.
	v, err := note.NewVerifier(verifier)
	if err != nil {
		t.Fatal(err)
	}
	report, err := audit.Verify(context.Background(), st, audit.VerifyOptions{Verifier: v, CheckpointDir: cpDir})
	if err != nil || !report.OK() {
		t.Fatalf("verify: %v %+v", err, report)
	}
	var kinds []string
	_ = st.Scan(context.Background(), 0, func(r *store.Record) error {
		rec, err := audit.ParseRecord(r.Data)
		if err == nil {
			kinds = append(kinds, string(rec.Kind)+":"+rec.Tool)
		}
		return nil
	})
	if got := strings.Join(kinds, ","); got != "call:rec.echo,outcome:rec.echo" {
		t.Errorf("records = %s, want the call and its outcome", got)
	}

	// Take the store away, as a database that went down: fail closed.
	if err := tg.g.closeStores(); err != nil {
		t.Fatal(err)
	}
	before := readRecord(t, tg.record)
	req, _ := http.NewRequest(http.MethodPost, tg.url, strings.NewReader(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"UNRECORDED"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("call with the audit store down: status %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if after := readRecord(t, tg.record); strings.Contains(after[len(before):], "UNRECORDED") {
		t.Error("the upstream received a call that could not be recorded")
	}
}

// TestCanariesStayOutOfTheGatewayLog: secrets sent as arguments never reach the gateway's own
// log, even at debug level, whatever it records about the call.
func TestCanariesStayOutOfTheGatewayLog(t *testing.T) {
	section, _, _ := auditConfig(t)
	var buf testenv.Buffer
	tg := newTestGatewayWith(t, section, &wiring.Options{Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	h := tg.initialize(t)
	const awsKey, ghToken, card, password = "AKIAIOSFODNN7EXAMPLE", "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB", "4111 1111 1111 1111", "hunter2-canary"
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"aws %s gh %s card %s","password":%q}}}`, awsKey, ghToken, card, password)
	if st, _, _ := post(t, tg.url, h, body); st != http.StatusOK {
		t.Fatalf("call: status %d", st)
	}
	// A refused call is logged too; its arguments must not be.
	post(t, tg.url, h, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"rec.nope","arguments":{"password":"`+password+`"}}}`)
	logged := buf.String()
	if !strings.Contains(logged, "upstream connected") {
		t.Fatalf("the gateway logged nothing useful; the test proves nothing:\n%s", logged)
	}
	for _, canary := range []string{awsKey, ghToken, card, password} {
		if strings.Contains(logged, canary) {
			t.Errorf("the gateway's log holds %q in clear", canary)
		}
	}
}

// TestTooManySubjectsIsTheCallersError: a call naming more data subjects than one audit record
// seals is refused with 400 and -32602 saying so (not 503: a retry cannot help), and is not
// forwarded; one naming a few is served with its identifiers sealed.
func TestTooManySubjectsIsTheCallersError(t *testing.T) {
	section, _, _ := auditConfig(t)
	t.Setenv("MCPGUARD_TEST_SUBJECT_KEY", strings.Repeat("s", 40))
	tg := newTestGateway(t, section+`compliance:
  subject_key: env:MCPGUARD_TEST_SUBJECT_KEY
  subjects:
    - tool: rec.echo
      arguments: ["ids[*]"]
`)
	call := func(n int) (int, map[string]any) {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf(`"C-%d"`, i)
		}
		status, _, res := post(t, tg.url, modernHeaders("tools/call", "rec.echo"),
			`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"batch","ids":[`+strings.Join(ids, ",")+`]},`+modernMeta+`}}`)
		return status, res
	}
	status, res := call(gdpr.MaxSubjectsPerRecord + 1)
	e, _ := res["error"].(map[string]any)
	if status != http.StatusBadRequest || e == nil || e["code"] != float64(jsonrpc.CodeInvalidParams) ||
		!strings.Contains(fmt.Sprint(e["message"]), "more than 64 data subjects") {
		t.Fatalf("a call naming 65 subjects: status %d %v, want 400 and -32602 saying why", status, res)
	}
	if got := readRecord(t, tg.record); strings.Contains(got, "batch") {
		t.Fatalf("the refused call reached the upstream: %s", got)
	}
	if status, res := call(3); status != http.StatusOK || res["error"] != nil {
		t.Fatalf("a call naming 3 subjects: status %d %v", status, res)
	}
}
