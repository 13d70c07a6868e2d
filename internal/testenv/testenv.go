// Package testenv decides what a test does when the machine lacks something it needs: a
// database, a daemon, root. On a developer's machine the test is skipped and says what to
// install; in CI (CI=true), where .ci/run provides every capability, the test fails instead,
// so that a capability test can never pass by not running.
package testenv

import (
	"os"
	"testing"
)

// InCI reports whether the tests run under CI (the environment variable CI is "true", as
// .ci/run and most CI systems set it).
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing reports that the machine lacks a capability the test needs, described by format and
// args (say what to install or set): the test is skipped, or fails in CI.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI must provide what this test needs: "+format, args...)
	}
	t.Skipf(format, args...)
}
