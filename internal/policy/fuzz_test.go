package policy

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that no input makes Parse panic or hang, that every
// rejection is a well-formed *Problems, and that an accepted policy
// decides without panicking.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.*")
	if err != nil {
		f.Fatal(err)
	}
	files = append(files, "../../examples/policies/finance.yaml")
	for _, file := range files {
		if filepath.Ext(file) == ".golden" {
			continue
		}
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, "fuzz.yaml", nil)
		if err == nil {
			for _, role := range p.roles {
				pr := Principal{Subject: "s", Roles: []string{role.name}}
				for k := range numKinds {
					for name := range role.exact[k] {
						p.Visible(pr, k, name)
						p.Decide(pr, Call{Kind: k, Name: name, Arguments: []byte(`{"a":1,"symbol":"VNM"}`)})
					}
				}
			}
			return
		}
		var probs *Problems
		if !errors.As(err, &probs) {
			t.Fatalf("error is %T, want *Problems: %v", err, err)
		}
		if len(probs.List) == 0 || len(probs.List) > maxProblems+1 {
			t.Fatalf("got %d problems, want 1 to %d", len(probs.List), maxProblems+1)
		}
		lines := bytes.Count(data, []byte("\n")) + bytes.Count(data, []byte("\r")) + 1
		for _, q := range probs.List {
			if q.Line < 0 || q.Line > lines+1 || q.Message == "" {
				t.Fatalf("malformed problem %+v for a %d-line input", q, lines)
			}
		}
	})
}
