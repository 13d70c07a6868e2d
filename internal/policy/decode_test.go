package policy

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the .golden files under testdata")

// TestParseGolden parses every file under testdata and compares the
// problems reported (or "OK") with its .golden file.
func TestParseGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/*.*")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		if strings.HasSuffix(file, ".golden") {
			continue
		}
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got := "OK\n"
			if _, err := Parse(data, filepath.Base(file), nil); err != nil {
				var probs *Problems
				if !errors.As(err, &probs) {
					t.Fatalf("error is %T, want *Problems: %v", err, err)
				}
				got = err.Error() + "\n"
			}
			golden := strings.TrimSuffix(file, filepath.Ext(file)) + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"no roles", "bindings: []", []string{"roles: no roles: a policy defines at least one role (everything is denied without one)"}},
		{"unknown key in a role", "roles:\n  - role: A\n    permission: []\n", []string{`line 3: roles[0]: unknown key "permission"; known keys: role, description, permissions, deny_tools, deny_resources, deny_prompts, rate_limit, allowed_networks, denied_networks, unmasked, see_unmasked`}},
		{"wrong type", "roles:\n  - role: [A]\n", []string{"line 2: roles[0].role: expected a string, got a list"}},
		{"resource constraints", "roles:\n  - role: A\n    permissions:\n      - resource_uri: 'file:///*'\n        constraints: {x: {}}\n", []string{"line 5: roles[0].permissions[0].constraints: a resource read has no arguments to constrain; use when: on name (the URI) instead"}},
		{"unknown CEL variable", "roles:\n  - role: A\n    permissions:\n      - tool_name: t\n        when: user == 'x'\n", []string{"line 5: roles[0].permissions[0].when: invalid condition: ERROR: <input>:1:1: undeclared reference to 'user'  | user == 'x'  | ^"}},
		{"schema from another draft", "roles:\n  - role: A\n    permissions:\n      - tool_name: t\n        constraints: {x: {$schema: 'http://json-schema.org/draft-07/schema#'}}\n", []string{"line 5: roles[0].permissions[0].constraints.x: $schema http://json-schema.org/draft-07/schema# is not supported: constraints are JSON Schema 2020-12 (leave $schema out)"}},
		{"file ref", "roles:\n  - role: A\n    permissions:\n      - tool_name: t\n        constraints: {x: {$ref: 'file:///etc/passwd'}}\n", []string{`line 5: roles[0].permissions[0].constraints.x: $ref "file:///etc/passwd" is refused: a constraint may not load another schema; write it inline or under $defs`}},
		{"second document", "roles: []\n---\nroles: []\n", []string{"line 2: a second YAML document; a policy file holds exactly one"}},
		{"too large", "roles: []\n" + strings.Repeat("#", MaxPolicyBytes), []string{"the file is 4194314 bytes; a policy may be at most 4194304"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.src), "p.yaml", nil)
			var probs *Problems
			if !errors.As(err, &probs) {
				t.Fatalf("Parse error = %v, want *Problems", err)
			}
			var got []string
			for _, p := range probs.List {
				got = append(got, p.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}
