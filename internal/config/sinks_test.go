package config

import (
	"os"
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
