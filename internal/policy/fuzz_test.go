package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
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
	files = append(files, "../../examples/policies/finance.yaml", "../../examples/policies/seed-role.json")
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
						for _, ip := range []netip.Addr{{}, netip.MustParseAddr("10.1.2.3")} {
							d := p.Decide(pr, Call{Kind: k, Name: name, Arguments: []byte(`{"a":1,"symbol":"VNM"}`), SourceIP: ip})
							if !d.Allow && (d.Charges != nil || d.Requires != nil || d.Marks != nil || d.RateLimits != nil) {
								t.Fatalf("a denial carries limits: %+v", d)
							}
						}
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

// FuzzStripJSONComments: blanking comments never moves a line, never changes the length and
// never touches a byte of a JSON string.
func FuzzStripJSONComments(f *testing.F) {
	for _, s := range []string{
		"{\"a\": 1 // c\n}", "[/* x\ny */ 1]", `{"u": "http://x"}`, "{\"s\": \"a\\\"//b\"} /* open", "a: b // yaml",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out := stripJSONComments(data)
		if len(out) != len(data) {
			t.Fatalf("length %d, want %d", len(out), len(data))
		}
		for i := range data {
			if (data[i] == '\n') != (out[i] == '\n') || (out[i] != data[i] && out[i] != ' ') {
				t.Fatalf("byte %d: %q became %q", i, data[i], out[i])
			}
		}
		var v any
		if json.Unmarshal(data, &v) == nil && !bytes.Equal(out, data) {
			// Valid JSON has no comments: nothing may change.
			t.Fatalf("valid JSON changed:\n%s\n%s", data, out)
		}
	})
}
