package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestReadBuild: what each way of building mcpguard records, and what version makes of it.
func TestReadBuild(t *testing.T) {
	yes, no := true, false
	platform := runtime.GOOS + "/" + runtime.GOARCH
	for _, tc := range []struct {
		name    string
		info    *debug.BuildInfo
		built   string
		want    buildInfo
		gateway string // serverInfo.version, with "0.1.0" as the fallback
	}{
		{
			name: "go build in a git checkout with local changes",
			info: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261205101500-2be53766613f+dirty"},
				Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "2be53766613fc17b4bfe9be46e05f4d3c78a3291"},
					{Key: "vcs.time", Value: "2026-12-05T10:15:00Z"}, {Key: "vcs.modified", Value: "true"}}},
			built: "2026-12-05T11:00:00Z",
			want: buildInfo{Version: "v0.0.0-20261205101500-2be53766613f+dirty", Commit: "2be53766613fc17b4bfe9be46e05f4d3c78a3291",
				Modified: &yes, CommitTime: "2026-12-05T10:15:00Z", BuildTime: "2026-12-05T11:00:00Z", GoVersion: "go1.26.8", Platform: platform},
			gateway: "v0.0.0-20261205101500-2be53766613f+dirty",
		},
		{
			name: "go build of a clean tagged checkout",
			info: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"},
				Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "aaaabbbbccccddddeeeeffff0000111122223333"}, {Key: "vcs.modified", Value: "false"}}},
			want:    buildInfo{Version: "v1.2.0", Commit: "aaaabbbbccccddddeeeeffff0000111122223333", Modified: &no, GoVersion: "go1.26.8", Platform: platform},
			gateway: "v1.2.0",
		},
		{
			name:    "go install @v1.2.0: the module cache has no VCS",
			info:    &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}},
			want:    buildInfo{Version: "v1.2.0", Commit: unknown, GoVersion: "go1.26.8", Platform: platform},
			gateway: "v1.2.0",
		},
		{
			name:    "go install @latest of an untagged commit: the pseudo-version names it",
			info:    &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261205101500-2be53766613f"}},
			want:    buildInfo{Version: "v0.0.0-20261205101500-2be53766613f", Commit: "2be53766613f", GoVersion: "go1.26.8", Platform: platform},
			gateway: "v0.0.0-20261205101500-2be53766613f",
		},
		{
			name:    "go run, or go build -buildvcs=false",
			info:    &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			want:    buildInfo{Version: "(devel)", Commit: unknown, GoVersion: "go1.26.8", Platform: platform},
			gateway: "0.1.0",
		},
		{
			name:    "no build information",
			want:    buildInfo{Version: unknown, Commit: unknown, GoVersion: runtime.Version(), Platform: platform},
			gateway: "0.1.0",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := readBuild(tc.info, tc.info != nil, tc.built)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("readBuild (-want +got):\n%s", diff)
			}
			if v := got.serverVersion("0.1.0"); v != tc.gateway {
				t.Errorf("serverInfo.version %q, want %q", v, tc.gateway)
			}
		})
	}
}

// TestVersionCommand runs `mcpguard version` in the test binary, which records no commit: it
// prints "unknown" and succeeds, in text and in JSON.
func TestVersionCommand(t *testing.T) {
	out, err := run(t, "version")
	if err != nil {
		t.Fatalf("version: %v\n%s", err, out)
	}
	for _, want := range []string{"version ", "commit ", "go           " + runtime.Version()} {
		if !strings.Contains(out, want) {
			t.Errorf("version output lacks %q:\n%s", want, out)
		}
	}
	out, err = run(t, "version", "--json")
	if err != nil {
		t.Fatalf("version --json: %v\n%s", err, out)
	}
	var b buildInfo
	if err := json.Unmarshal([]byte(out), &b); err != nil {
		t.Fatalf("version --json is not a JSON object: %v\n%s", err, out)
	}
	if b.Commit == "" || b.Version == "" || b.GoVersion != runtime.Version() {
		t.Errorf("version --json: %+v", b)
	}
}

// TestBuiltBinaryPrintsCommit builds mcpguard from this checkout as an operator would and checks
// that `mcpguard version` names the checked-out commit. -buildvcs=true overrides a GOFLAGS that
// turns VCS stamping off.
func TestBuiltBinaryPrintsCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout (or no git): %v", err)
	}
	bin := filepath.Join(t.TempDir(), "mcpguard")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version", "--json").Output()
	if err != nil {
		t.Fatalf("mcpguard version: %v", err)
	}
	var b buildInfo
	if err := json.Unmarshal(out, &b); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if want := strings.TrimSpace(string(head)); b.Commit != want || b.Modified == nil || b.CommitTime == "" {
		t.Errorf("mcpguard version --json = %s\nwant commit %s, with modified and commit_time", out, want)
	}
}
