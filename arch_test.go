// Package tools_test checks the shape of the codebase: which packages may import which, and that
// every package says in one sentence what it is.
package tools_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
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
	"internal/authn":                {"internal/oauthclient"},
	"internal/export":               {"internal/audit"},
	"internal/keystore":             {"internal/authn"},
	"internal/pins":                 {},
	"internal/redact":               {},
	"internal/store":                {},
	"internal/store/sqlite":         {"internal/store"},
	"internal/store/postgres":       {"internal/store"},
	"internal/audit":                {"internal/redact", "internal/store"},
	"internal/policy":               {"internal/problems"},
	"internal/problems":             {},
	"internal/config":               {"internal/problems"},
	"internal/transport/stdio":      {},
	"internal/transport/streamhttp": {"internal/jsonrpc", "internal/mcp", "internal/sse", "internal/mcpguard"},
	"internal/transport/ssehttp":    {"internal/jsonrpc", "internal/mcp", "internal/sse", "internal/mcpguard", "internal/transport/streamhttp"},
	"internal/oauthclient":          {},
	"internal/upstream":             {"internal/config", "internal/jsonrpc", "internal/mcp", "internal/mcpguard", "internal/oauthclient", "internal/transport/stdio", "internal/transport/streamhttp", "internal/transport/ssehttp"},
}

func TestImportRules(t *testing.T) {
	fset := token.NewFileSet()
	err := filepath.WalkDir("internal", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		pkg := filepath.ToSlash(filepath.Dir(path))
		rule, ok := allowed[pkg]
		if !ok {
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
					t.Errorf("%s imports %s: the vocabulary package uses the standard library only", path, p)
				}
				continue
			}
			ours := strings.TrimPrefix(p, module)
			ok := false
			for _, a := range rule {
				ok = ok || a == ours
			}
			if !ok {
				t.Errorf("%s imports %s, which %s may not depend on", path, ours, pkg)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
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
