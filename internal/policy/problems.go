package policy

import (
	"fmt"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a policy file.
type Problem struct {
	// Line is the 1-based line where the problem is, or 0 when it concerns
	// the whole file.
	Line int

	// Path locates the offending value, such as
	// "roles[0].permissions[1].constraints.symbol"; "" is the document.
	Path string

	// Message says what is wrong and, where it can, how to fix it.
	Message string
}

// String formats the problem as "line 12: roles[0].role: message", leaving
// out the line or the path when unknown.
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

// Problems is the error returned for an invalid policy. It lists every
// problem found, ordered by line.
type Problems struct {
	// Source names the policy, usually its file name; it may be "".
	Source string
	List   []Problem
}

// Error lists every problem, one per line, after a first line naming the
// source and counting them.
func (p *Problems) Error() string {
	var b strings.Builder
	src := p.Source
	if src == "" {
		src = "policy"
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

// maxQuoted bounds how much of a user's value is echoed in a message.
const maxQuoted = 64

// quote returns s as a Go string literal, shortened to maxQuoted bytes of
// the original so that a huge value cannot flood a message.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}

// pathKey returns the path of key inside the mapping at parent.
func pathKey(parent, key string) string {
	plain := key != ""
	for _, c := range []byte(key) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			plain = false
			break
		}
	}
	switch {
	case !plain:
		return parent + "[" + quote(key) + "]"
	case parent == "":
		return key
	}
	return parent + "." + key
}

// pathIndex returns the path of item i of the list at parent.
func pathIndex(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

// parentPath strips the last element of path ("a.b[2]" → "a.b" → "a" → "").
func parentPath(path string) string {
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
