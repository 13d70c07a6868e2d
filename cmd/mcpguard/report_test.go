package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/store/sqlite"
	"github.com/mcpguard/mcpguard/internal/testenv"
)

// reportFixture makes a key with the CLI and a log of a trading day: reads, orders approved by
// a desk head, one order its trader approved herself, a refused order and an API key created.
func reportFixture(t *testing.T) (dir, db, cps, key, pub string) {
	t.Helper()
	dir = t.TempDir()
	if out, err := run(t, "audit", "keygen", "--name", "ops-log", "--dir", dir); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	key, pub = filepath.Join(dir, "ops-log.key"), filepath.Join(dir, "ops-log.pub")
	signer, err := audit.LoadSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	db, cps = filepath.Join(dir, "audit.db"), filepath.Join(dir, "checkpoints")
	st, err := sqlite.Open(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, err := audit.Open(context.Background(), st, &audit.Options{Signer: signer, CheckpointDir: cps, CheckpointEvery: 10})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	var recs []*audit.Record
	for i := range 30 {
		at := t0.Add(time.Duration(i) * time.Minute)
		id := fmt.Sprintf("r%d", i)
		recs = append(recs,
			&audit.Record{Time: at, Kind: audit.KindToolCall, RequestID: id, Principal: "analyst", Tool: "fin.get_client_portfolio", Decision: "allow", Rule: "read",
				Arguments: json.RawMessage(fmt.Sprintf(`{"client_id":"C-%d"}`, i))},
			&audit.Record{Time: at, Kind: audit.KindOutcome, RequestID: id, Principal: "analyst", Tool: "fin.get_client_portfolio",
				Outcome: &audit.Outcome{Status: "ok", Masked: map[string]int{"client-names": 2}}})
	}
	for i, pair := range [][2]string{{"alice", "bob"}, {"dave", "bob"}, {"erin", "erin"}} {
		at := t0.Add(time.Duration(40+i) * time.Minute)
		d, _ := json.Marshal(map[string]string{"requester": pair[0], "approver": pair[1], "approver_role": "desk-head", "status": "approved"})
		id := fmt.Sprintf("o%d", i)
		recs = append(recs,
			&audit.Record{Time: at, Kind: audit.KindApproval, RequestID: "ap" + id, Principal: pair[1], Tool: "fin.execute_trade_order", Decision: "allow", Detail: d},
			&audit.Record{Time: at, Kind: audit.KindToolCall, RequestID: id, Principal: pair[0], Tool: "fin.execute_trade_order", Decision: "allow", Rule: "trades",
				Arguments: json.RawMessage(fmt.Sprintf(`{"symbol":"ACME","quantity":%d}`, 100*(i+1)))},
			&audit.Record{Time: at, Kind: audit.KindOutcome, RequestID: id, Principal: pair[0], Tool: "fin.execute_trade_order", Outcome: &audit.Outcome{Status: "ok"}})
	}
	recs = append(recs,
		&audit.Record{Time: t0.Add(50 * time.Minute), Kind: audit.KindPolicyDenial, RequestID: "x", Principal: "analyst", Tool: "fin.execute_trade_order", Decision: "deny", Rule: "no-trading"},
		&audit.Record{Time: t0.Add(51 * time.Minute), Kind: audit.KindAdmin, RequestID: "j", Principal: "root-op", Decision: "allow",
			Detail: json.RawMessage(`{"act":"api_key.create","target":{"key_id":"k1","principal":"alice"},"result":"ok","via":"cli"}`)})
	for _, r := range recs {
		if _, err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, db, cps, key, pub
}

func runCode(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := run(t, args...)
	if err != nil {
		return out + "\nerror: " + err.Error(), exitCode(err)
	}
	return out, 0
}

// TestReportCLI: report writes HTML and JSON that report verify accepts with the log's key; a
// one-byte edit is refused (exit 1), and without --key the report is intact but not
// authenticated (exit 3); the JSON flags the segregation-of-duties violation.
func TestReportCLI(t *testing.T) {
	dir, db, cps, key, pub := reportFixture(t)
	base := []string{"report", "--db", db, "--signing-key", key, "--checkpoints", cps, "--from", "2026-11-23T00:00:00Z", "--to", "2026-11-24T00:00:00Z",
		"--order-tool", "*.execute_trade_order"}
	htmlFile := filepath.Join(dir, "report.html")
	if out, code := runCode(t, append(base, "-o", htmlFile)...); code != 0 || !strings.Contains(out, "1 segregation-of-duties violations") {
		t.Fatalf("report --format html: exit %d\n%s", code, out)
	}
	if out, code := runCode(t, "report", "verify", htmlFile, "--key", pub); code != 0 || !strings.Contains(out, "OK: signed by ops-log") {
		t.Fatalf("report verify of the report as written: exit %d\n%s", code, out)
	}
	if out, code := runCode(t, "report", "verify", htmlFile); code != exitUnauthenticated || !strings.Contains(out, "INTACT, NOT AUTHENTICATED") {
		t.Errorf("report verify without --key: exit %d, want 3\n%s", code, out)
	}
	page, err := os.ReadFile(htmlFile)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(page, []byte(`"quantity":300`))
	if i < 0 {
		i = bytes.Index(page, []byte(`&#34;quantity&#34;:300`))
	}
	if i < 0 {
		t.Fatalf("erin's order is not in the report")
	}
	edited := bytes.Clone(page)
	edited[bytes.Index(edited[i:], []byte("300"))+i] = '9' // 300 shares become 900
	editedFile := filepath.Join(dir, "edited.html")
	if err := os.WriteFile(editedFile, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := runCode(t, "report", "verify", editedFile, "--key", pub); code != exitTampered || !strings.Contains(out, "REFUSED: the content does not match the signed digest") {
		t.Errorf("report verify of an edited report: exit %d, want 1 and the reason\n%s", code, out)
	}

	// JSON on standard output.
	out, code := runCode(t, append(base, "--format", "json")...)
	if code != 0 {
		t.Fatalf("report --format json: exit %d\n%s", code, out)
	}
	start := strings.Index(out, `{"report":`)
	if start < 0 {
		t.Fatalf("no JSON report in the output:\n%s", out)
	}
	jsonFile := filepath.Join(dir, "report.json")
	js := []byte(out[start:])
	if err := os.WriteFile(jsonFile, js, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := runCode(t, "report", "verify", jsonFile, "--key", pub); code != 0 {
		t.Errorf("report verify of the JSON report: exit %d\n%s", code, out)
	}
	var doc struct {
		Report struct {
			SOX struct {
				ViolationsTotal int `json:"violations_total"`
				Violations      []struct {
					Requester, Approver, Violation string
				} `json:"violations"`
			} `json:"sox"`
			MiFID struct {
				OrdersTotal int `json:"orders_total"`
			} `json:"mifid"`
		} `json:"report"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		t.Fatal(err)
	}
	if v := doc.Report.SOX; v.ViolationsTotal != 1 || v.Violations[0].Requester != "erin" || v.Violations[0].Approver != "erin" {
		t.Errorf("segregation of duties = %+v, want erin approving her own order", v)
	}
	if doc.Report.MiFID.OrdersTotal != 4 {
		t.Errorf("orders = %d, want 3 approved and 1 refused", doc.Report.MiFID.OrdersTotal)
	}
	other, _ := run(t, "audit", "keygen", "--name", "other", "--dir", dir)
	_ = other
	if out, code := runCode(t, "report", "verify", jsonFile, "--key", filepath.Join(dir, "other.pub")); code != exitTampered || !strings.Contains(out, "signed by ops-log") {
		t.Errorf("report verify with another log's key: exit %d, want 1\n%s", code, out)
	}
}

func TestReportRefusesALogThatDoesNotVerify(t *testing.T) {
	dir, db, cps, key, _ := reportFixture(t)
	raw, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(raw, []byte(`"quantity":200`))
	if i < 0 {
		t.Fatal("dave's order not found in the database file")
	}
	raw[i+len(`"quantity":`)] = '9'
	if err := os.WriteFile(db, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "report.html")
	out, code := runCode(t, "report", "--db", db, "--signing-key", key, "--checkpoints", cps, "--from", "2026-11-23T00:00:00Z", "--to", "2026-11-24T00:00:00Z", "-o", file)
	if code != exitTampered || !strings.Contains(out, "does not verify") || !strings.Contains(out, "record ") {
		t.Errorf("report over an edited log: exit %d, want 1 and the reason\n%s", code, out)
	}
	if _, err := os.Stat(file); err == nil {
		t.Error("a report was written for a log that does not verify")
	}
}

func TestReportUsage(t *testing.T) {
	dir, db, cps, key, pub := reportFixture(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no period", []string{"report", "--db", db, "--signing-key", key}},
		{"bad format", []string{"report", "--db", db, "--signing-key", key, "--from", "24h", "--to", "0s", "--format", "docx"}},
		{"pdf to stdout", []string{"report", "--db", db, "--signing-key", key, "--from", "24h", "--to", "0s", "--format", "pdf"}},
		{"public key as signing key", []string{"report", "--db", db, "--signing-key", pub, "--from", "24h", "--to", "0s"}},
		{"no signing key", []string{"report", "--db", db, "--from", "24h", "--to", "0s"}},
		{"missing database", []string{"report", "--db", filepath.Join(dir, "none.db"), "--signing-key", key, "--checkpoints", cps, "--from", "24h", "--to", "0s"}},
		{"verify without a file", []string{"report", "verify"}},
		{"verify a missing file", []string{"report", "verify", filepath.Join(dir, "none.html")}},
	} {
		if out, code := runCode(t, tc.args...); code != exitUsage {
			t.Errorf("%s: exit %d, want 2\n%s", tc.name, code, out)
		}
	}
}

func TestReportPDF(t *testing.T) {
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		testenv.Missing(t, "chromium is not installed (apt-get install chromium): %v", err)
	}
	dir, db, cps, key, pub := reportFixture(t)
	file := filepath.Join(dir, "report.pdf")
	out, code := runCode(t, "report", "--db", db, "--signing-key", key, "--checkpoints", cps, "--from", "2026-11-23T00:00:00Z", "--to", "2026-11-24T00:00:00Z",
		"--format", "pdf", "-o", file)
	if code != 0 {
		t.Fatalf("report --format pdf: exit %d\n%s", code, out)
	}
	pdf, err := os.ReadFile(file)
	if err != nil || !bytes.HasPrefix(pdf, []byte("%PDF")) {
		t.Fatalf("no PDF written (%v): %q", err, pdf[:min(len(pdf), 8)])
	}
	if out, code := runCode(t, "report", "verify", file, "--key", pub); code != 0 {
		t.Fatalf("report verify of the PDF: exit %d\n%s", code, out)
	}
	if err := os.Remove(file + ".sig"); err != nil {
		t.Fatal(err)
	}
	if out, code := runCode(t, "report", "verify", file, "--key", pub); code != exitTampered || !strings.Contains(out, ".sig") {
		t.Errorf("report verify of a PDF without its .sig: exit %d, want 1\n%s", code, out)
	}
}
