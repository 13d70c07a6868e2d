package wiring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/admin"
	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/store/backend"
)

// TestComplianceWiring: with a compliance section the gateway's audit log seals the configured
// tool's subject, serves exports on the admin API, and prunes on its schedule what is past its
// retention, starting right away.
func TestComplianceWiring(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	skey, _, err := audit.GenerateKey("wiring-test")
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
upstreams:
  - name: demo
    stdio: {command: /bin/true}
audit:
  database: %s
  signing_key_file: %s
  checkpoint_dir: %s
  redaction_key: file:%s
compliance:
  subject_key: file:%s
  subjects:
    - tool: get_client_portfolio
      arguments: [client_id]
  retention: {call: 7y}
`, filepath.Join(dir, "audit.db"), write("log.key", skey+"\n"), filepath.Join(dir, "checkpoints"),
		write("redaction.key", "redaction key of thirty-two bytes or more"), write("subject.key", "subject secret of thirty-two bytes or more"))
	cfg, err := config.Parse([]byte(yaml), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}

	// An eight-year-old call, recorded before the gateway starts.
	c, err := OpenCompliance(ctx, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	old, err := c.Log.Append(ctx, &audit.Record{Time: time.Now().AddDate(-8, 0, 0), Kind: audit.KindToolCall, Tool: "get_client_portfolio",
		Arguments: json.RawMessage(`{"client_id":"C-0042"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	p, err := Build(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		p.Audit.Close()
		p.Close()
	}()
	if p.Subjects == nil {
		t.Error("the admin API was given no data-subject exports")
	}
	rec := &audit.Record{Kind: audit.KindToolCall, Tool: "get_client_portfolio", Arguments: json.RawMessage(`{"client_id":"C-1001"}`)}
	if _, err := p.Audit.Append(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.Subjects) != 1 || string(rec.Arguments) == `{"client_id":"C-1001"}` {
		t.Errorf("the gateway's log did not seal the subject: %s %+v", rec.Arguments, rec.Subjects)
	}
	subjectRequestsOnTheRunningLog(t, p.Subjects)
	st, err := backend.Open(ctx, filepath.Join(dir, "audit.db"), backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := st.Get(ctx, old)
		if err == nil && audit.IsPruned(r.Data) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the eight-year-old call was not pruned by the schedule: %s, %v", r.Data, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// subjectRequestsOnTheRunningLog: through the admin API's adapter, on the running gateway's log
// (C-1001 has one sealed call): export reads it; a hold on the subject makes erasure refuse with
// 409; released, the erasure destroys the key and export reads nothing; each refusal carries
// the status the admin API answers.
func subjectRequestsOnTheRunningLog(t *testing.T, s admin.Subjects) {
	t.Helper()
	ctx := context.Background()
	dpo := &authn.Principal{Subject: "dpo", Roles: []string{"DPO"}, MFA: true}
	status := func(err error) int {
		var ref *admin.SubjectRefusal
		if errors.As(err, &ref) {
			return ref.Status
		}
		return 0
	}
	readable := func() float64 {
		t.Helper()
		doc, err := s.Export(ctx, "C-1001", "", dpo)
		if err != nil {
			t.Fatal(err)
		}
		var ex struct{ Readable float64 }
		if err := json.Unmarshal(doc, &ex); err != nil {
			t.Fatalf("export %s: %v", doc, err)
		}
		return ex.Readable
	}
	if n := readable(); n != 1 {
		t.Fatalf("export before erasure: %v readable records, want 1", n)
	}
	doc, err := s.PlaceHold(ctx, admin.HoldRequest{Subject: "C-1001", Reason: "matter 12"}, dpo)
	if err != nil {
		t.Fatal(err)
	}
	var hold struct{ ID, Kind, Value string }
	if err := json.Unmarshal(doc, &hold); err != nil || hold.Kind != "subject" || hold.Value == "" || strings.Contains(string(doc), "C-1001") {
		t.Fatalf("placed hold %s (%v): want a subject hold naming only the commitment", doc, err)
	}
	if _, err := s.Erase(ctx, "C-1001", "DSR-1", "", dpo); status(err) != http.StatusConflict {
		t.Fatalf("erasure under a hold: %v, want a 409 refusal", err)
	}
	if _, err := s.PlaceHold(ctx, admin.HoldRequest{Principal: "p", Subject: "C-1001", Reason: "x"}, dpo); status(err) != http.StatusBadRequest {
		t.Errorf("a hold on two things: %v, want a 400 refusal", err)
	}
	if doc, err := s.Holds(ctx); err != nil || !strings.Contains(string(doc), hold.ID) {
		t.Errorf("holds %s (%v): want %s listed", doc, err, hold.ID)
	}
	if _, err := s.ReleaseHold(ctx, hold.ID, dpo); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReleaseHold(ctx, hold.ID, dpo); status(err) != http.StatusNotFound {
		t.Errorf("releasing a released hold: %v, want a 404 refusal", err)
	}
	if _, err := s.Erase(ctx, "C-1001", strings.Repeat("r", 513), "", dpo); status(err) != http.StatusBadRequest {
		t.Errorf("an erasure with a 513-byte reason: %v, want a 400 refusal", err)
	}
	if _, err := s.Erase(ctx, "C-1001", "DSR-1", "yesterday", dpo); status(err) != http.StatusBadRequest {
		t.Errorf("an erasure received %q: %v, want a 400 refusal", "yesterday", err)
	}
	if _, err := s.Erase(ctx, "C-1001", "DSR-1", time.Now().Add(48*time.Hour).Format(time.RFC3339), dpo); status(err) != http.StatusBadRequest {
		t.Errorf("an erasure received the day after tomorrow: %v, want a 400 refusal", err)
	}
	if doc, err := s.Erase(ctx, "C-1001", "DSR-1", time.Now().AddDate(0, 0, -3).Format(time.DateOnly), dpo); err != nil || !strings.Contains(string(doc), `"record_seq"`) {
		t.Fatalf("erasure: %s %v", doc, err)
	}
	if n := readable(); n != 0 {
		t.Errorf("export after erasure: %v readable records, want 0", n)
	}
	if _, err := s.Erase(ctx, "C-1001", "DSR-1", "", dpo); status(err) != http.StatusNotFound {
		t.Errorf("a second erasure: %v, want a 404 refusal", err)
	}
}
