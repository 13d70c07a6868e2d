package problems

import "testing"

func TestErrorNamesTheDocument(t *testing.T) {
	tests := []struct {
		name string
		p    Problems
		want string
	}{
		{"source", Problems{Source: "a.yaml", Kind: "policy", List: []Problem{{Line: 2, Path: "roles[0]", Message: "bad"}}}, "a.yaml: 1 problem:\n\tline 2: roles[0]: bad"},
		{"kind when no source", Problems{Kind: "policy", List: []Problem{{Message: "empty"}, {Path: "x", Message: "y"}}}, "policy: 2 problems:\n\tempty\n\tx: y"},
		{"neither", Problems{List: []Problem{{Message: "m"}}}, "document: 1 problem:\n\tm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPaths(t *testing.T) {
	if got := PathKey(PathIndex("upstreams", 1), "stdio"); got != "upstreams[1].stdio" {
		t.Errorf("PathKey = %q", got)
	}
	if got := PathKey("headers", "X Odd"); got != `headers["X Odd"]` {
		t.Errorf("PathKey of an odd key = %q", got)
	}
	if got := ParentPath("a.b[2]"); got != "a.b" {
		t.Errorf("ParentPath = %q", got)
	}
}

func TestLinesOfFallsBackToTheEnclosingPath(t *testing.T) {
	l := Lines{"": 1, "upstreams": 4, "upstreams[0]": 5, "upstreams[0].http": 7}
	for path, want := range map[string]int{
		"upstreams[0].http":     7,
		"upstreams[0].http.url": 7, // not written itself: its parent's line
		"upstreams[1].stdio":    4,
		"listen":                1,
	} {
		if got := l.Of(path); got != want {
			t.Errorf("Of(%q) = %d, want %d", path, got, want)
		}
	}
	if got := (Lines{}).Of("a.b"); got != 0 {
		t.Errorf("Of in an empty document = %d, want 0", got)
	}
}
