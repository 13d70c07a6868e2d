package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// buildTime is when the binary was built, for builds that say so:
//
//	go build -ldflags "-X main.buildTime=$(date -u +%Y-%m-%dT%H:%M:%SZ)" ./cmd/mcpguard
//
// The Go toolchain records no build time of its own (builds are reproducible).
var buildTime string

// unknown is what version prints for what the binary does not record.
const unknown = "unknown"

// buildInfo describes this binary, as `mcpguard version` prints it.
type buildInfo struct {
	// Version is the module version: a release tag (v1.2.0) or pseudo-version when installed
	// with go install …@version or built from a git checkout, "(devel)" for go run and builds
	// without version control information.
	Version string `json:"version"`
	// Commit is the revision the binary was built from, or "unknown" (go run, go test, builds
	// with -buildvcs=false); a pseudo-version's abbreviated revision when that is all there is.
	Commit string `json:"commit"`
	// Modified reports uncommitted changes in the work tree it was built from; absent when not
	// known.
	Modified   *bool  `json:"modified,omitempty"`
	CommitTime string `json:"commit_time,omitempty"` // RFC 3339, when recorded
	BuildTime  string `json:"build_time,omitempty"`  // see buildTime
	GoVersion  string `json:"go_version"`
	Platform   string `json:"platform"` // GOOS/GOARCH
}

// currentBuild describes the running binary.
func currentBuild() buildInfo {
	info, ok := debug.ReadBuildInfo()
	return readBuild(info, ok, buildTime)
}

// readBuild describes a binary from its build information (nil or !ok: none recorded) and
// build time ("" when not given). It never fails: what is not recorded is "unknown".
func readBuild(info *debug.BuildInfo, ok bool, built string) buildInfo {
	b := buildInfo{Version: unknown, Commit: unknown, BuildTime: built, GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if !ok || info == nil {
		return b
	}
	if info.Main.Version != "" {
		b.Version = info.Main.Version
	}
	if info.GoVersion != "" {
		b.GoVersion = info.GoVersion
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Commit = s.Value
		case "vcs.time":
			b.CommitTime = s.Value
		case "vcs.modified":
			modified := s.Value == "true"
			b.Modified = &modified
		}
	}
	// go install …@<pseudo-version> records no VCS settings, but the version names the commit.
	if v := strings.TrimSuffix(b.Version, semver.Build(b.Version)); b.Commit == unknown && module.IsPseudoVersion(v) {
		if rev, err := module.PseudoVersionRev(v); err == nil {
			b.Commit = rev
		}
	}
	return b
}

// serverVersion is the version the gateway reports as serverInfo.version: the module version
// when the binary records one, else fallback.
func (b buildInfo) serverVersion(fallback string) string {
	if semver.IsValid(b.Version) {
		return b.Version
	}
	return fallback
}

func (b buildInfo) write(w io.Writer) error {
	commit := b.Commit
	if b.Modified != nil && *b.Modified {
		commit += " (modified)"
	}
	lines := [][2]string{{"version", b.Version}, {"commit", commit}, {"commit time", b.CommitTime},
		{"build time", b.BuildTime}, {"go", b.GoVersion + " " + b.Platform}}
	var sb strings.Builder
	for _, l := range lines {
		if l[1] != "" {
			fmt.Fprintf(&sb, "%-12s %s\n", l[0], l[1])
		}
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

func newVersionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version [--json]",
		Short: "Print the version, commit and Go version this binary was built with",
		Long: `Prints what the Go toolchain recorded in the binary: the module version, the commit it was
built from and whether the work tree had uncommitted changes, the commit time, the build
time when the build gave one (-ldflags "-X main.buildTime=…"), and the Go version.

A binary built with go build in a git checkout records its commit; go install …@version records
the version (a pseudo-version names the commit); go run and builds with -buildvcs=false record
no commit, which is printed as "unknown".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b := currentBuild()
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), b)
			}
			return b.write(cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON object (version, commit, modified, commit_time, build_time, go_version, platform)")
	return cmd
}
