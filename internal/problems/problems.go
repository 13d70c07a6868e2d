// Package problems reports everything wrong with a document at once: each problem with its line
// and the path of the offending value, for the configuration and the policy decoders alike.
package problems

import (
	"fmt"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a document.
type Problem struct {
	// Line is the 1-based line in the file where the problem is, or 0 when
	// it concerns the whole file or a document built in code.
	Line int

	// Path locates the offending value, such as "upstreams[1].stdio.command"
	// or "roles[0].permissions[1].constraints.symbol"; "" is the document itself.
	Path string

	// Message says what is wrong and, where it can, how to fix it. It never
	// contains a secret's value.
	Message string
}

// String formats the problem as "line 12: upstreams[0].http.url: message",
// leaving out the line or the path when unknown.
func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(p.Line))
		b.WriteString(": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is the error returned for an invalid document. It lists every
// problem found, ordered by line.
type Problems struct {
	// Source names the document, usually its file name; it may be "".
	Source string
	// Kind names what the document is ("config", "policy"), shown when Source is "".
	Kind string
	List []Problem
}

// Error lists every problem, one per line, after a first line naming the
// source and counting them.
func (p *Problems) Error() string {
	var b strings.Builder
	src := p.Source
	if src == "" {
		src = p.Kind
	}
	if src == "" {
		src = "document"
	}
	n := len(p.List)
	fmt.Fprintf(&b, "%s: %d problem", src, n)
	if n != 1 {
		b.WriteByte('s')
	}
	b.WriteByte(':')
	for _, q := range p.List {
		b.WriteString("\n\t")
		b.WriteString(q.String())
	}
	return b.String()
}

// MaxQuoted bounds how much of a user's value is echoed in a message, in bytes.
const MaxQuoted = 64

// Quote returns s as a Go string literal, shortened to MaxQuoted bytes of
// the original so that a huge value cannot flood a message.
func Quote(s string) string {
	if len(s) <= MaxQuoted {
		return strconv.Quote(s)
	}
	cut := MaxQuoted
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// PathKey returns the path of key inside the mapping at parent. Keys made
// only of letters, digits, "_" and "-" are joined with a dot; others are
// quoted in brackets.
func PathKey(parent, key string) string {
	plain := key != ""
	for _, c := range []byte(key) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			plain = false
			break
		}
	}
	switch {
	case !plain:
		return parent + "[" + Quote(key) + "]"
	case parent == "":
		return key
	}
	return parent + "." + key
}

// PathIndex returns the path of item i of the list at parent.
func PathIndex(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

// ParentPath strips the last element of path ("a.b[2]" → "a.b" → "a" → "").
func ParentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

// Lines records where each path of a document is written.
type Lines map[string]int

// Of returns the line where path, or the nearest enclosing path, is written; 0 when none is.
func (l Lines) Of(path string) int {
	for {
		if line, ok := l[path]; ok {
			return line
		}
		if path == "" {
			return 0
		}
		path = ParentPath(path)
	}
}
