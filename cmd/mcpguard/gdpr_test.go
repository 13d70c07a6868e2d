package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/cmd/mcpguard/wiring"
	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/gdpr"
)

// TestGDPRCommands runs export, a refused erasure under a legal hold, the erasure, export again
// and the retention through the CLI, with audit verify passing throughout.
func TestGDPRCommands(t *testing.T) {
	a := newAdminAudit(t)
	ctx := context.Background()
	if err := os.WriteFile(filepath.Join(a.dir, "subject.key"), []byte("thirty-two bytes or more of the subject secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml, err := os.ReadFile(a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	yaml = append(yaml, []byte(`compliance:
  subject_key: file:`+filepath.Join(a.dir, "subject.key")+`
  subjects:
    - tool: get_client_portfolio
      arguments: [client_id]
  retention: {call: 7y, auth_failure: 1y}
`)...)
	if err := os.WriteFile(a.cfg, yaml, 0o600); err != nil {
		t.Fatal(err)
	}

	// Calls recorded as the gateway records them: one eight years old, two recent.
	cfg, err := config.Load(a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := wiring.OpenCompliance(ctx, cfg, nil, a.env.now)
	if err != nil {
		t.Fatal(err)
	}
	now := a.env.now()
	for _, r := range []*audit.Record{
		{Time: now.AddDate(-8, 0, 0), Kind: audit.KindToolCall, Principal: "analyst", Tool: "get_client_portfolio", Arguments: json.RawMessage(`{"client_id":"C-0042"}`)},
		{Time: now.Add(-time.Hour), Kind: audit.KindToolCall, Principal: "analyst", Tool: "get_client_portfolio", Arguments: json.RawMessage(`{"client_id":"C-1001"}`)},
		{Time: now.Add(-time.Minute), Kind: audit.KindToolCall, Principal: "analyst", Tool: "get_client_portfolio", Arguments: json.RawMessage(`{"client_id":"C-2002"}`)},
	} {
		if _, err := c.Log.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	verify := func(want string) {
		t.Helper()
		out, err := run(t, "audit", "verify", "--quiet", "--db", a.auditDB, "--key", filepath.Join(a.dir, "ops-log.pub"), "--checkpoints", filepath.Join(a.dir, "checkpoints"))
		if err != nil || !strings.Contains(out, "OK:") || !strings.Contains(out, want) {
			t.Fatalf("audit verify: %v\n%s", err, out)
		}
	}
	verify("OK:")

	export := func(subject string) *gdpr.Export {
		t.Helper()
		out, errOut, err := a.runWith(t, newGDPRCmdWith, "", "export", subject)
		if err != nil {
			t.Fatalf("gdpr export %s: %v\n%s", subject, err, errOut)
		}
		var ex gdpr.Export
		if err := json.Unmarshal([]byte(out), &ex); err != nil {
			t.Fatalf("gdpr export %s printed no export: %v\n%s", subject, err, out)
		}
		return &ex
	}
	if ex := export("C-1001"); ex.Readable != 1 || ex.Records[0].Data.Subject != "C-1001" {
		t.Fatalf("export of C-1001: %+v", ex)
	}
	verify("OK:")

	out, errOut, err := a.runWith(t, newHoldCmdWith, "", "add", "--subject", "C-1001", "--reason", "matter 17")
	if err != nil {
		t.Fatalf("hold add: %v\n%s", err, errOut)
	}
	holdID := regexp.MustCompile(`hold-[0-9a-f]+`).FindString(out)
	_, _, err = a.runWith(t, newGDPRCmdWith, "", "erase", "C-1001", "--reason", "ticket 88")
	if exitCode(err) != exitHeld {
		t.Fatalf("erasure under a legal hold: exit %d (%v), want %d", exitCode(err), err, exitHeld)
	}
	if out, _, err := a.runWith(t, newHoldCmdWith, "", "list"); err != nil || !strings.Contains(out, holdID) || !strings.Contains(out, "in force") {
		t.Fatalf("hold list: %v\n%s", err, out)
	}
	if _, errOut, err := a.runWith(t, newHoldCmdWith, "", "release", holdID); err != nil {
		t.Fatalf("hold release: %v\n%s", err, errOut)
	}
	if _, _, err := a.runWith(t, newGDPRCmdWith, "", "erase", "C-1001", "--reason", "ticket 88", "--received", "last week"); err == nil || !strings.Contains(err.Error(), "give a date such as 2026-11-30") {
		t.Fatalf("gdpr erase --received 'last week': %v, want the form it takes", err)
	}
	received := now.Add(-72 * time.Hour).UTC().Format(time.RFC3339)
	if _, errOut, err := a.runWith(t, newGDPRCmdWith, "", "erase", "C-1001", "--reason", "ticket 88", "--received", received); err != nil {
		t.Fatalf("gdpr erase: %v\n%s", err, errOut)
	}
	// The compliance report shows the erasure's time to completion: three days.
	out, err = run(t, "report", "--db", a.auditDB, "--signing-key", filepath.Join(a.dir, "ops-log.key"), "--checkpoints", filepath.Join(a.dir, "checkpoints"),
		"--from", now.Add(-24*time.Hour).UTC().Format(time.RFC3339), "--to", now.Add(24*time.Hour).UTC().Format(time.RFC3339), "--format", "json")
	if err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	var rep struct {
		Report struct {
			GDPR struct {
				Erasures []struct {
					CompletionMillis int64 `json:"completion_ms"`
				} `json:"erasures"`
			} `json:"gdpr"`
		} `json:"report"`
	}
	if i := strings.Index(out, `{"report":`); i < 0 || json.Unmarshal([]byte(out[i:]), &rep) != nil || len(rep.Report.GDPR.Erasures) != 1 {
		t.Fatalf("the report lists no erasure:\n%s", out)
	}
	if ms := rep.Report.GDPR.Erasures[0].CompletionMillis; ms < (72*time.Hour).Milliseconds()-1000 || ms > (72*time.Hour).Milliseconds()+60_000 {
		t.Errorf("the erasure's time to completion is %d ms, want about three days", ms)
	}
	if ex := export("C-1001"); ex.Readable != 0 || ex.Unreadable != 1 {
		t.Fatalf("export after erasure: %+v", ex)
	}
	_, _, err = a.runWith(t, newGDPRCmdWith, "", "erase", "C-1001")
	if exitCode(err) != exitNoSubject {
		t.Errorf("a second erasure: exit %d (%v), want %d", exitCode(err), err, exitNoSubject)
	}
	verify("OK:")

	// Retention: the eight-year-old call goes, the recent ones stay.
	out, errOut, err = a.runWith(t, newAuditPruneWith, "")
	if err != nil || !strings.Contains(out, "pruned 1 records") {
		t.Fatalf("audit prune: %v\n%s%s", err, out, errOut)
	}
	verify("pruned: 1 records")
	if ex := export("C-2002"); ex.Readable != 1 {
		t.Errorf("export of C-2002 after pruning: %+v", ex)
	}
	if ex := export("C-0042"); len(ex.Records) != 0 {
		t.Errorf("export of the pruned subject C-0042: %+v", ex)
	}
}
