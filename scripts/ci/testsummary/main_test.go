package main

import (
	"strings"
	"testing"
)

// A skip is listed with its reason, a failure prints its output and fails the run, and a stream
// without any test fails it too (a run that tested nothing proves nothing).
func TestSummary(t *testing.T) {
	stream := strings.Join([]string{
		`{"Action":"run","Package":"p","Test":"TestA"}`,
		`{"Action":"pass","Package":"p","Test":"TestA"}`,
		`{"Action":"output","Package":"p","Test":"TestB","Output":"=== RUN   TestB\n"}`,
		`{"Action":"output","Package":"p","Test":"TestB","Output":"    b_test.go:9: rsyslogd is not installed\n"}`,
		`{"Action":"output","Package":"p","Test":"TestB","Output":"--- SKIP: TestB (0.00s)\n"}`,
		`{"Action":"skip","Package":"p","Test":"TestB"}`,
		`{"Action":"output","Package":"p","Test":"TestC","Output":"    c_test.go:3: want 1, got 2\n"}`,
		`{"Action":"fail","Package":"p","Test":"TestC"}`,
		`{"Action":"fail","Package":"p"}`,
	}, "\n")
	var out strings.Builder
	if code := run(strings.NewReader(stream), &out); code != 1 {
		t.Errorf("exit %d with a failed test, want 1", code)
	}
	for _, want := range []string{"=== FAILED p TestC", "want 1, got 2", "1 passed, 1 failed, 1 skipped", "p TestB: b_test.go:9: rsyslogd is not installed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run(strings.NewReader(`{"Action":"pass","Package":"p","Test":"TestA"}`), &out); code != 0 {
		t.Errorf("exit %d for a passing run:\n%s", code, out.String())
	}
	if code := run(strings.NewReader(""), &out); code != 1 {
		t.Errorf("exit %d for a run without tests, want 1", code)
	}
}
