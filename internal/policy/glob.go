package policy

import (
	"fmt"
	"strings"
)

// glob is a compiled name pattern in which "*" matches any run of
// characters, including none and including separators such as "." or "/".
// A pattern without "*" matches only itself.
type glob struct {
	parts []string // literal pieces between the stars; len(parts) = stars + 1
}

// compileGlob checks and compiles pattern.
func compileGlob(pattern string) (glob, error) {
	if pattern == "" {
		return glob{}, fmt.Errorf("a name or pattern is required")
	}
	if strings.Contains(pattern, "**") {
		return glob{}, fmt.Errorf(`%s: "**" is not a pattern; a single "*" already matches any run of characters`, quote(pattern))
	}
	for _, r := range pattern {
		if r < 0x20 || r == 0x7f {
			return glob{}, fmt.Errorf("%s contains a control character", quote(pattern))
		}
	}
	return glob{parts: strings.Split(pattern, "*")}, nil
}

// literal reports whether the pattern has no "*".
func (g glob) literal() bool { return len(g.parts) == 1 }

// match reports whether name matches the pattern.
func (g glob) match(name string) bool {
	if len(g.parts) == 1 {
		return name == g.parts[0]
	}
	first, last := g.parts[0], g.parts[len(g.parts)-1]
	if len(name) < len(first)+len(last) || !strings.HasPrefix(name, first) || !strings.HasSuffix(name, last) {
		return false
	}
	rest := name[len(first) : len(name)-len(last)]
	for _, p := range g.parts[1 : len(g.parts)-1] {
		i := strings.Index(rest, p)
		if i < 0 {
			return false
		}
		rest = rest[i+len(p):]
	}
	return true
}

// String returns the pattern as written.
func (g glob) String() string { return strings.Join(g.parts, "*") }

// nameSet matches names against literal names (a map) and patterns (a list).
type nameSet struct {
	exact map[string]struct{}
	globs []glob
}

func (s *nameSet) add(g glob) {
	if g.literal() {
		if s.exact == nil {
			s.exact = map[string]struct{}{}
		}
		s.exact[g.parts[0]] = struct{}{}
		return
	}
	s.globs = append(s.globs, g)
}

func (s *nameSet) match(name string) bool {
	if _, ok := s.exact[name]; ok {
		return true
	}
	for _, g := range s.globs {
		if g.match(name) {
			return true
		}
	}
	return false
}
