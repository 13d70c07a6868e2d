package redact

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestLeaks: what the review saw relayed to a client (a PostgreSQL DSN with its password, a Go
// stack trace, a dial error naming an internal address) comes out without the secret, the trace
// or the address; ordinary messages come out unchanged.
func TestLeaks(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`connect failed: postgres://app:S3cr3t!@db.prod.internal:5432/trades?sslmode=disable`,
			`connect failed: [redacted url_credentials]`},
		{`cannot connect (host=10.1.2.3 port=5432 user=app password=S3cr3t dbname=trades)`,
			`cannot connect (host=[redacted internal_address] port=5432 user=app [redacted secret_assignment] dbname=trades)`},
		{"panic: runtime error: index out of range\n\ngoroutine 7 [running]:\nmain.handler(...)\n\t/srv/app/main.go:42 +0x1d",
			"[stack trace removed]"},
		{"query failed\ngoroutine 7 [running]:\nmain.handler()", "query failed [stack trace removed]"},
		{"Traceback (most recent call last):\n  File \"/app/x.py\", line 3", "[stack trace removed]"},
		{"boom\n    at com.bank.Trade.execute(Trade.java:88)", "boom [stack trace removed]"},
		{`dial tcp 127.0.0.1:21382: connect: connection refused`, `dial tcp [redacted internal_address]: connect: connection refused`},
		{`dial tcp [::1]:8080: refused`, `dial tcp [redacted internal_address]: refused`},
		{`upstream crm-api.svc.cluster.local:8443 timed out`, `upstream [redacted internal_host] timed out`},
		{`Authorization: Bearer abcdefghijklmnop failed`, `Authorization: [redacted bearer_token] failed`},
		{`key mcpg_0123456789abcdef_QWERTYuiop-asdf revoked`, `key [redacted api_key] revoked`},
		{`IBAN DE89370400440532013000 exists`, `IBAN [redacted iban] exists`},
		// Nothing to hide: unchanged, public addresses and version numbers included.
		{`unknown symbol "VNM"`, `unknown symbol "VNM"`},
		{`see https://docs.example.com/errors/42 or 8.8.8.8`, `see https://docs.example.com/errors/42 or 8.8.8.8`},
		{`version 1.2.3.4 not supported at 12:30`, `version 1.2.3.4 not supported at 12:30`},
	} {
		got, _ := Leaks(c.in)
		if got != c.want {
			t.Errorf("Leaks(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
	long, st := Leaks(strings.Repeat("é", MaxErrorMessage))
	if len(long) > MaxErrorMessage || st["too_long"] != 1 || !strings.HasSuffix(long, "é") {
		t.Errorf("a long message: %d bytes, stats %v", len(long), st)
	}
}

func TestLeaksJSON(t *testing.T) {
	got, st := LeaksJSON([]byte(`{"dsn":"postgres://u:p@10.0.0.5/db","detail":{"db_password":"x","trace":"a\ngoroutine 1 [running]:"},"n":12345678901234567890}`))
	want := `{"detail":{"db_password":"[redacted]","trace":"a [stack trace removed]"},"dsn":"[redacted url_credentials]","n":12345678901234567890}`
	if string(got) != want || st["key"] != 1 || st["stack_trace"] != 1 {
		t.Errorf("LeaksJSON = %s (%v)\nwant %s", got, st, want)
	}
	if got, st := LeaksJSON([]byte(`{"a":"` + strings.Repeat("x", MaxErrorData) + `"}`)); got != nil || st["too_large"] != 1 {
		t.Errorf("large data kept: %d bytes", len(got))
	}
	if got, _ := LeaksJSON([]byte(`{"symbol":"VNM","retry":true}`)); string(got) != `{"retry":true,"symbol":"VNM"}` {
		t.Errorf("harmless data changed: %s", got)
	}
}

func FuzzLeaks(f *testing.F) {
	f.Add("postgres://a:b@10.0.0.1:5432/x\ngoroutine 1 [running]:")
	f.Add("dial tcp [fe80::1]:80 password=x Bearer abcdefghij")
	f.Fuzz(func(t *testing.T, s string) {
		out, _ := Leaks(s)
		if len(out) > MaxErrorMessage+64 {
			t.Fatalf("Leaks returned %d bytes", len(out))
		}
		if utf8.ValidString(s) && !utf8.ValidString(out) {
			t.Fatalf("valid UTF-8 became invalid: %q", out)
		}
	})
}

// The operational log keeps what an operator needs to find the fault (trace, address) and loses
// the credentials.
func TestSecretsKeepsTheFaultAndDropsCredentials(t *testing.T) {
	in := "dial postgres://app:S3cr3t@10.1.2.3:5432/db failed (password=hunter2)\ngoroutine 1 [running]:\nmain.go:12"
	got := Secrets(in)
	for _, gone := range []string{"S3cr3t", "hunter2"} {
		if strings.Contains(got, gone) {
			t.Errorf("Secrets(%q) = %q: still holds %q", in, got, gone)
		}
	}
	for _, kept := range []string{"goroutine 1 [running]", "main.go:12"} {
		if !strings.Contains(got, kept) {
			t.Errorf("Secrets(%q) = %q: lost %q", in, got, kept)
		}
	}
}
