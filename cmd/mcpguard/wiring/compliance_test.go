package wiring

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
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
	st, err := backend.Opener(nil)(ctx, filepath.Join(dir, "audit.db"))
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
