package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestAuditSinks checks that every sink key lands in its field.
func TestAuditSinks(t *testing.T) {
	data, err := os.ReadFile("testdata/valid_audit_sinks.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseFake(data, "valid_audit_sinks.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []Sink{
		{Name: "local-file", Buffer: 5000, JSONL: &JSONLSink{Path: "/var/log/mcpguard/audit.jsonl", MaxSize: 50 * MiB, MaxAge: time.Hour, Keep: 24}},
		{Name: "siem", Syslog: &SyslogSink{
			Address: "siem.example.com:6514", TLS: true, CAFile: "/etc/mcpguard/siem-ca.pem", ServerName: "siem.example.com",
			Facility: "local4", AppName: "mcpguard", Hostname: "gw-1",
		}},
		{Name: "plain-syslog", Syslog: &SyslogSink{Address: "127.0.0.1:514"}},
		{Name: "hook", Webhook: &WebhookSink{URL: "https://hooks.example.com/audit", BearerToken: NewSecret("env:TOKEN"), BatchSize: 100}},
	}
	if diff := cmp.Diff(want, c.Audit.Sinks, cmp.Comparer(func(a, b Secret) bool { return a.Reference() == b.Reference() })); diff != "" {
		t.Errorf("sinks (-want +got):\n%s", diff)
	}
	if got := c.Audit.Sinks[3].Webhook.BearerToken.Reveal(); got != "t0ken-s3cret" {
		t.Errorf("the webhook token resolves to %q, want the value of TOKEN", got)
	}
}

// TestAuditSinkPathsRelativeToConfig: relative sink paths are read from the configuration
// file's directory, wherever the gateway runs.
func TestAuditSinkPathsRelativeToConfig(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("MCPGUARD_SINKS_TEST_KEY", "0123456789abcdef0123456789abcdef")
	cfg := `upstreams:
  - name: finance
    stdio: {command: /bin/true}
audit:
  database: audit.db
  signing_key_file: audit.key
  checkpoint_dir: checkpoints
  redaction_key: env:MCPGUARD_SINKS_TEST_KEY
  sinks:
    - name: file
      jsonl: {path: export/audit.jsonl}
    - name: siem
      syslog: {address: "127.0.0.1:6514", tls: true, ca_file: ca.pem}
`
	path := filepath.Join(dir, "mcpguard.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{c.Audit.Sinks[0].JSONL.Path, c.Audit.Sinks[1].Syslog.CAFile}
	want := []string{filepath.Join(dir, "export/audit.jsonl"), filepath.Join(dir, "ca.pem")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sink paths (-want +got):\n%s", diff)
	}
}
