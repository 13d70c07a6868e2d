package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that no input makes Parse panic, that every rejection is
// a well-formed *Problems that reveals no secret, and that every accepted
// configuration passes Validate again.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	files = append(files, "../../examples/quickstart.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parseFake(data, "fuzz.yaml")
		if err == nil {
			if verr := cfg.Validate(); verr != nil {
				t.Fatalf("Parse accepted a config that Validate rejects: %v\ninput:\n%s", verr, data)
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
		lines := bytes.Count(data, []byte("\n")) + bytes.Count(data, []byte("\r")) + 1 // YAML breaks lines at either
		for _, p := range probs.List {
			if p.Line < 0 || p.Line > lines+1 || p.Message == "" {
				t.Fatalf("malformed problem %+v for a %d-line input", p, lines)
			}
		}
		msg := err.Error()
		for _, s := range secretValues {
			if strings.Contains(msg, s) && !bytes.Contains(data, []byte(s)) {
				t.Fatalf("error reveals secret %q:\n%s", s, msg)
			}
		}
	})
}
