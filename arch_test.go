// Package tools_test checks the shape of the codebase: which packages may import which, and that
// every package says in one sentence what it is.
package tools_test

import (
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/mcpguard/mcpguard/"

// allowed lists, per package, the only packages of ours it may import. Dependencies point
// inward: the vocabulary and the wire format import nothing of ours, and nothing below the
// gateway imports the gateway.
var allowed = map[string][]string{
	"internal/mcpguard":             {},
	"internal/jsonrpc":              {},
	"internal/sse":                  {},
	"internal/mcp":                  {"internal/mcpguard", "internal/jsonrpc"},
	"internal/authn":                {"internal/mcpguard", "internal/oauthclient"},
	"internal/export":               {"internal/audit"},
	"internal/witness":              {"internal/audit"},
	"internal/report":               {"internal/audit", "internal/store", "internal/witness"},
	"internal/keystore":             {"internal/authn", "internal/contain", "internal/journal", "internal/sqldb"},
	"internal/pins":                 {"internal/journal", "internal/sqldb"},
	"internal/journal":              {"internal/sqldb"},
	"internal/sqldb":                {},
	"internal/sqldb/sqldbtest":      {"internal/testenv"},
	"internal/redact":               {},
	"internal/store":                {},
	"internal/store/sqlite":         {"internal/store"},
	"internal/store/postgres":       {"internal/store"},
	"internal/store/backend":        {"internal/sqldb", "internal/store", "internal/store/postgres", "internal/store/sqlite"},
	"internal/audit":                {"internal/jsonrpc", "internal/redact", "internal/store"},
	"internal/policy":               {"internal/jsonrpc", "internal/mask", "internal/mcpguard", "internal/problems"},
	"internal/mask":                 {"internal/redact"},
	"internal/problems":             {},
	"internal/anomaly":              {},
	"internal/contain":              {"internal/policy"},
	"internal/config":               {"internal/problems"},
	"internal/transport/stdio":      {},
	"internal/transport/h1":         {},
	"internal/transport/streamhttp": {"internal/jsonrpc", "internal/mcp", "internal/sse", "internal/mcpguard", "internal/transport/h1"},
	"internal/transport/ssehttp":    {"internal/jsonrpc", "internal/mcp", "internal/sse", "internal/mcpguard", "internal/transport/streamhttp"},
	"internal/oauthclient":          {},
	"internal/upstream":             {"internal/jsonrpc", "internal/mcp", "internal/mcpguard", "internal/oauthclient", "internal/transport/stdio", "internal/transport/streamhttp", "internal/transport/ssehttp"},
	"internal/toolschema":           {"internal/jsonrpc"},
	"internal/demo":                 {},
	"internal/authn/oidctest":       {},
	"internal/store/storetest":      {"internal/store"},
	"internal/gdpr":                 {"internal/audit", "internal/store"},
	"internal/testenv":              {},
	"internal/metrics":              {"internal/audit", "internal/mcp", "internal/mcpguard"},
	"internal/tracing":              {},

	// The admin API reaches the gateway only through admin.Gateway, which the gateway implements:
	// never internal/gateway.
	"internal/admin": {"internal/audit", "internal/authn", "internal/contain"},
	// The operators' console is served by the admin listener over stores the wiring opened: it
	// reaches the gateway only through console.Gateway, never internal/gateway or internal/config.
	"internal/console": {"internal/admin", "internal/audit", "internal/authn", "internal/contain", "internal/journal", "internal/keystore", "internal/pins", "internal/store"},

	// The gateway is built from parts (internal/gateway/parts) that the program's wiring builds:
	// it reads no configuration and opens no store, so never internal/config, internal/store or a
	// storage driver.
	"internal/gateway":       {"internal/admin", "internal/anomaly", "internal/audit", "internal/authn", "internal/contain", "internal/gateway/parts", "internal/journal", "internal/jsonrpc", "internal/mask", "internal/mcp", "internal/mcpguard", "internal/metrics", "internal/pins", "internal/policy", "internal/redact", "internal/sse", "internal/toolschema", "internal/tracing", "internal/upstream"},
	"internal/gateway/parts": {"internal/admin", "internal/anomaly", "internal/audit", "internal/authn", "internal/contain", "internal/journal", "internal/metrics", "internal/pins", "internal/policy", "internal/redact", "internal/tracing", "internal/upstream"},

	// The programs. Their wiring reads the configuration, chooses the storage backends
	// (internal/store/backend) and builds the gateway's parts; it never imports the gateway, whose
	// tests build gateways through it.
	"cmd/mcpguard/wiring":     {"internal/admin", "internal/anomaly", "internal/audit", "internal/authn", "internal/console", "internal/config", "internal/contain", "internal/export", "internal/gdpr", "internal/gateway/parts", "internal/keystore", "internal/mcpguard", "internal/metrics", "internal/oauthclient", "internal/pins", "internal/policy", "internal/redact", "internal/store", "internal/store/backend", "internal/tracing", "internal/upstream", "internal/witness"},
	"cmd/mcpguard":            {"cmd/mcpguard/wiring", "internal/admin", "internal/audit", "internal/authn", "internal/config", "internal/contain", "internal/demo", "internal/gdpr", "internal/gateway", "internal/journal", "internal/keystore", "internal/mcp", "internal/mcpguard", "internal/pins", "internal/policy", "internal/store", "internal/store/postgres", "internal/store/sqlite", "internal/transport/streamhttp", "internal/witness", "internal/report"},
	"bench":                   {"cmd/mcpguard/wiring", "internal/audit", "internal/config", "internal/gateway", "internal/jsonrpc", "internal/mcp", "internal/sse", "internal/store"},
	"scripts/interop/idp":     {},
	"scripts/interop/console": {},
	"scripts/interop/ha":      {},
	"scripts/ci/testsummary":  {},
}

// restricted lists third-party modules that only the listed packages may import from their
// non-test files; any _test.go file may import them.
var restricted = map[string][]string{
	// The official Go SDK is the reference peer mcpguard is tested against, never part of the
	// gateway. The demo server (mcpguard demo-server) is built on it, and so is the interop suite's
	// identity provider fixture, a standalone program (scripts/interop/idp) that serves the
	// SDK's OAuth protected-resource side to the interop peers. The benchmark harness runs the
	// SDK's echo server and client (bench/sdk.go) as the reference stack mcpguard and its peers
	// are measured with.
	"github.com/modelcontextprotocol/go-sdk": {"bench", "internal/demo", "scripts/interop/idp", "scripts/interop/console"},
	// The Prometheus client stays inside internal/metrics: the gateway sees a *metrics.Metrics
	// and its typed methods, never a Prometheus type.
	"github.com/prometheus/client_golang": {"internal/metrics"},
	// OpenTelemetry stays inside internal/tracing: the gateway sees a *tracing.Tracer and its
	// typed calls, never an OpenTelemetry type.
	"go.opentelemetry.io/otel": {"internal/tracing"},
}

// importRoots are the trees every package of which must have an entry in allowed.
var importRoots = []string{"internal", "cmd", "bench", "scripts"}

func TestImportRules(t *testing.T) {
	for _, err := range checkImports(".", allowed, restricted) {
		t.Error(err)
	}
}

// TestImportRulesFailOnAnUnlistedPackage: the rules are strict. A package with no entry in
// allowed, an import its entry does not list, a restricted module imported outside its list and
// a non-standard import of the vocabulary package are each reported; a test file importing a
// restricted module, and a directory holding tests only, are not.
func TestImportRulesFailOnAnUnlistedPackage(t *testing.T) {
	root := t.TempDir()
	write := func(path, src string) {
		t.Helper()
		path = filepath.Join(root, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("internal/listed/listed.go", "package listed\n\nimport _ \""+module+"internal/vocab\"\n")
	write("internal/unlisted/unlisted.go", "package unlisted\n")
	write("internal/mcpguard/vocab.go", "package mcpguard\n\nimport _ \"golang.org/x/text/language\"\n")
	write("cmd/tool/main.go", "package main\n\nimport _ \"github.com/modelcontextprotocol/go-sdk/mcp\"\n")
	write("cmd/tool/main_test.go", "package main\n\nimport _ \"github.com/modelcontextprotocol/go-sdk/mcp\"\n")
	write("internal/testsonly/x_test.go", "package testsonly\n")
	write("internal/listed/testdata/fixture.go", "package fixture\n")
	rules := map[string][]string{"internal/listed": {}, "internal/mcpguard": {}, "cmd/tool": {}}
	var got []string
	for _, err := range checkImports(root, rules, restricted) {
		got = append(got, err.Error())
	}
	want := []string{
		"package internal/unlisted has no entry",
		"internal/listed/listed.go imports internal/vocab",
		"internal/mcpguard/vocab.go imports golang.org/x/text/language",
		"cmd/tool/main.go imports github.com/modelcontextprotocol/go-sdk/mcp",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.Contains(g, w) }) {
			t.Errorf("no error says %q; got:\n%s", w, strings.Join(got, "\n"))
		}
	}
}

// checkImports checks the non-test Go files of every package under root's importRoots: the
// package has an entry in allowed and imports only the packages of ours it lists, imports a
// restricted module only when listed for it, and internal/mcpguard imports the standard library
// only. Directories the go command ignores (testdata, names starting with . or _) are skipped.
func checkImports(root string, allowed, restricted map[string][]string) []error {
	var errs []error
	fset := token.NewFileSet()
	unlisted := map[string]bool{}
	for _, top := range importRoots {
		top = filepath.Join(root, top)
		if _, err := os.Stat(top); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		err := filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if n := d.Name(); path != top && (n == "testdata" || n == "node_modules" || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_")) {
					return fs.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			file := filepath.ToSlash(rel)
			pkg := filepath.ToSlash(filepath.Dir(rel))
			rule, ok := allowed[pkg]
			if !ok {
				if !unlisted[pkg] {
					unlisted[pkg] = true
					errs = append(errs, fmt.Errorf("package %s has no entry in allowed: list the packages of ours it may import", pkg))
				}
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			for _, imp := range f.Imports {
				p := strings.Trim(imp.Path.Value, `"`)
				if !strings.HasPrefix(p, module) {
					if pkg == "internal/mcpguard" && strings.Contains(strings.SplitN(p, "/", 2)[0], ".") {
						errs = append(errs, fmt.Errorf("%s imports %s: the vocabulary package uses the standard library only", file, p))
					}
					for mod, who := range restricted {
						if (p == mod || strings.HasPrefix(p, mod+"/")) && !slices.Contains(who, pkg) {
							errs = append(errs, fmt.Errorf("%s imports %s: only %s and tests may import %s", file, p, strings.Join(who, ", "), mod))
						}
					}
					continue
				}
				if ours := strings.TrimPrefix(p, module); !slices.Contains(rule, ours) {
					errs = append(errs, fmt.Errorf("%s imports %s, which %s may not depend on", file, ours, pkg))
				}
			}
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func TestEveryPackageHasADoc(t *testing.T) {
	fset := token.NewFileSet()
	docs := map[string]bool{}
	seen := map[string]bool{}
	for _, root := range []string{"internal", "cmd", "bench"} {
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Errorf("%s: %v", path, err)
				return nil
			}
			dir := filepath.Dir(path)
			seen[dir] = true
			if f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "" {
				docs[dir] = true
			}
			return nil
		})
	}
	for dir := range seen {
		if !docs[dir] {
			t.Errorf("package %s has no package doc comment", dir)
		}
	}
}
