package config

import (
	"strings"
	"testing"
	"time"
)

const complianceBase = `
upstreams:
  - name: fin
    stdio: {command: /bin/true}
audit:
  database: /tmp/audit.db
  signing_key_file: /tmp/k
  checkpoint_dir: /tmp/cp
  redaction_key: env:MCPGUARD_TEST_REDACTION_KEY
`

func TestComplianceDecodes(t *testing.T) {
	t.Setenv("MCPGUARD_TEST_REDACTION_KEY", strings.Repeat("r", 32))
	t.Setenv("MCPGUARD_TEST_SUBJECT_KEY", strings.Repeat("s", 32))
	cfg, err := parse([]byte(complianceBase+`
compliance:
  subject_key: env:MCPGUARD_TEST_SUBJECT_KEY
  subjects:
    - tool: get_client_portfolio
      arguments: [client_id]
  retention: {call: 7y, auth_failure: 1y}
`), "test.yaml", func(k string) (string, bool) {
		switch k {
		case "MCPGUARD_TEST_REDACTION_KEY":
			return strings.Repeat("r", 32), true
		case "MCPGUARD_TEST_SUBJECT_KEY":
			return strings.Repeat("s", 32), true
		}
		return "", false
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Compliance
	if c == nil || c.SubjectKey.Reveal() != strings.Repeat("s", 32) || c.Subjects[0].Arguments[0] != "client_id" ||
		c.Retention["call"] != "7y" || c.RetentionEvery != time.Hour {
		t.Errorf("decoded %+v", c)
	}
}

func TestComplianceProblems(t *testing.T) {
	_, err := parse([]byte(complianceBase+`
compliance:
  subjects:
    - tool: get_client_portfolio
      arguments: [client_id, "a..b", "clients[*].id", "ids[*][*]", "clients[0].id", "[*].id"]
    - tool: get_client_portfolio
      arguments: []
  retention: {call: 7 years, erasure: 1y, calls: 1y, outcome: 0d}
  retention_every: 1s
`), "test.yaml", func(string) (string, bool) { return strings.Repeat("r", 32), true }, nil)
	if err == nil {
		t.Fatal("a broken compliance section was accepted")
	}
	for _, ok := range []string{"arguments[2]", "arguments[3]"} {
		if strings.Contains(err.Error(), "compliance.subjects[0]."+ok) {
			t.Errorf("a path through arrays is refused (%s):\n%v", ok, err)
		}
	}
	for _, want := range []string{
		"compliance.subject_key: required with subjects",
		`compliance.subjects[0].arguments[1]: "a..b" is not an argument path`,
		`compliance.subjects[0].arguments[4]: "clients[0].id" is not an argument path`,
		`compliance.subjects[0].arguments[5]: "[*].id" is not an argument path`,
		`compliance.subjects[1].tool: "get_client_portfolio" is listed twice`,
		"compliance.subjects[1].arguments: want 1 to 16 argument paths, got 0",
		`compliance.retention.call: "7 years" has unit " years"`,
		"compliance.retention.erasure: erasure records are never pruned",
		`compliance.retention.calls: "calls" is not a record kind`,
		`compliance.retention.outcome: "0d" is not a retention: it must be more than zero`,
		"compliance.retention_every: 1s: at least 1m",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the problems do not say %q:\n%v", want, err)
		}
	}
}

func TestParseRetention(t *testing.T) {
	now := time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"7y", time.Date(2019, 12, 6, 5, 0, 0, 0, time.UTC)},
		{"18mo", time.Date(2025, 6, 6, 5, 0, 0, 0, time.UTC)},
		{"2w", time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)},
		{"90d", time.Date(2026, 9, 7, 5, 0, 0, 0, time.UTC)},
		{"12h", time.Date(2026, 12, 5, 17, 0, 0, 0, time.UTC)},
	} {
		r, err := ParseRetention(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if got := r.Before(now); !got.Equal(tc.want) {
			t.Errorf("%s before %s = %s, want %s", tc.in, now, got, tc.want)
		}
	}
	for _, bad := range []string{"", "y", "7", "-7y", "7Y", "7 y", "101y", "0y", "1234567d", "7yy"} {
		if _, err := ParseRetention(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

func FuzzParseRetention(f *testing.F) {
	for _, s := range []string{"7y", "18mo", "90d", "12h", "2w", "", "0y", "999999h", "7 y"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRetention(s)
		if err != nil {
			return
		}
		if !r.Before(now).Before(now) {
			t.Errorf("%q: a retention that is accepted must reach into the past", s)
		}
		if r.Years < 0 || r.Months < 0 || r.Days < 0 || r.Hours < 0 {
			t.Errorf("%q parsed to a negative period %+v", s, r)
		}
	})
}
