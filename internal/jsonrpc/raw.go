package jsonrpc

import (
	"bytes"
	"errors"
	"unicode/utf8"
)

// The helpers in this file read and rewrite raw JSON objects that [Parse] has already
// validated (params, results, arguments). They never panic on other input, but they do not
// validate it either: given an object with duplicate names they see only the first one.

// ErrNotObject is returned by [Members] when its input is not a JSON object.
var ErrNotObject = errors.New("jsonrpc: not a JSON object")

// rawMember locates one member of a raw object.
type rawMember struct {
	keyStart, keyEnd int // the name, quotes included
	valStart, valEnd int
}

// memberIter walks the top-level members of a raw object.
type memberIter struct {
	b     []byte
	i     int
	first bool
	bad   bool // the input is not a well-formed object
	close int  // index of the closing brace once the walk is done
}

func newMemberIter(obj []byte) memberIter {
	countPass()
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return memberIter{b: obj, bad: true}
	}
	return memberIter{b: obj, i: i + 1, first: true, close: -1}
}

func (it *memberIter) next() (rawMember, bool) {
	if it.bad || it.close >= 0 {
		return rawMember{}, false
	}
	b := it.b
	i := skipSpace(b, it.i)
	if i < len(b) && b[i] == '}' {
		it.close = i
		return rawMember{}, false
	}
	if !it.first {
		if i >= len(b) || b[i] != ',' {
			it.bad = true
			return rawMember{}, false
		}
		i = skipSpace(b, i+1)
	}
	it.first = false
	if i >= len(b) || b[i] != '"' {
		it.bad = true
		return rawMember{}, false
	}
	m := rawMember{keyStart: i, keyEnd: skipString(b, i)}
	if m.keyEnd < 0 {
		it.bad = true
		return rawMember{}, false
	}
	i = skipSpace(b, m.keyEnd)
	if i >= len(b) || b[i] != ':' {
		it.bad = true
		return rawMember{}, false
	}
	m.valStart = skipSpace(b, i+1)
	m.valEnd = skipValue(b, m.valStart)
	if m.valEnd < 0 {
		it.bad = true
		return rawMember{}, false
	}
	it.i = m.valEnd
	return m, true
}

// skipString returns the index after the string whose opening quote is b[i], or -1. It jumps
// from quote to quote (bytes.IndexByte is vectorized): a quote ends the string unless an odd
// number of backslashes precede it, since each backslash escapes the byte after it.
func skipString(b []byte, i int) int {
	for j := i + 1; ; {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return -1
		}
		q := j + k
		escaped := false
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			escaped = !escaped
		}
		if !escaped {
			return q + 1
		}
		j = q + 1
	}
}

// skipValue returns the index after the JSON value starting at b[i], or -1. It checks
// bracket balance, not full syntax.
func skipValue(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch c := b[i]; {
		case c == '"':
			if i = skipString(b, i); i < 0 {
				return -1
			}
		case c == '{' || c == '[':
			depth++
			i++
			continue
		case c == '}' || c == ']':
			if depth == 0 {
				return -1
			}
			depth--
			i++
		case depth > 0 && (c == ',' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			i++
			continue
		default:
			j := i
			for j < len(b) && isScalarByte(b[j]) {
				j++
			}
			if j == i {
				return -1
			}
			i = j
		}
		if depth == 0 {
			return i
		}
	}
	return -1
}

func isScalarByte(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || c == '-' || c == '+' || c == '.'
}

// nameIs reports whether the quoted member name raw equals key once unescaped.
func nameIs(raw []byte, key string) bool {
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return string(body) == key
	}
	for i := 0; i < len(body); {
		if key == "" {
			return false
		}
		var r rune
		r, i = nextRune(body, i)
		k, n := utf8.DecodeRuneInString(key)
		if r != k {
			return false
		}
		key = key[n:]
	}
	return key == ""
}

func (it *memberIter) find(key string) (rawMember, bool) {
	for {
		m, ok := it.next()
		if !ok {
			return rawMember{}, false
		}
		if nameIs(it.b[m.keyStart:m.keyEnd], key) {
			return m, true
		}
	}
}

// Lookup returns the raw value of the top-level member key of the raw object obj.
func Lookup(obj []byte, key string) (val []byte, ok bool) {
	it := newMemberIter(obj)
	m, ok := it.find(key)
	if !ok {
		return nil, false
	}
	return obj[m.valStart:m.valEnd:m.valEnd], true
}

// Members calls fn for each top-level member of the raw object obj, in order, with the
// unescaped name and the raw value. It stops at and returns the first error from fn, and
// returns [ErrNotObject] if obj is not a well-formed object.
func Members(obj []byte, fn func(key string, val []byte) error) error {
	it := newMemberIter(obj)
	for {
		m, ok := it.next()
		if !ok {
			break
		}
		name := obj[m.keyStart+1 : m.keyEnd-1]
		if bytes.IndexByte(name, '\\') >= 0 {
			name = appendUnescaped(nil, name)
		}
		if err := fn(string(name), obj[m.valStart:m.valEnd:m.valEnd]); err != nil {
			return err
		}
	}
	if it.bad {
		return ErrNotObject
	}
	return nil
}

// Pick reads the top-level members of the raw object obj named in names (exactly, after
// unescaping) in one pass: vals[i] is set to the raw value of names[i], and left nil when obj has
// no such member. It does not allocate. It returns [ErrNotObject] if obj is not a well-formed
// object; obj is expected to have passed [Parse], which refuses duplicate and case-variant
// names, so each name is found at most once.
func Pick(obj []byte, names []string, vals [][]byte) error {
	it := newMemberIter(obj)
	for {
		m, ok := it.next()
		if !ok {
			break
		}
		key := obj[m.keyStart:m.keyEnd]
		for i, n := range names {
			if vals[i] == nil && nameIs(key, n) {
				vals[i] = obj[m.valStart:m.valEnd:m.valEnd]
				break
			}
		}
	}
	if it.bad {
		return ErrNotObject
	}
	return nil
}

// SetMember returns a copy of the raw object obj in which the top-level member key has the
// raw value val: replaced in place if present, appended otherwise. An empty or all-space obj
// counts as an empty object. obj is not modified. SetMember returns nil if obj is not a
// well-formed object.
func SetMember(obj []byte, key string, val []byte) []byte {
	if skipSpace(obj, 0) == len(obj) {
		out := make([]byte, 0, len(key)+len(val)+5)
		out = append(AppendQuote(append(out, '{'), key), ':')
		return append(append(out, val...), '}')
	}
	it := newMemberIter(obj)
	if m, ok := it.find(key); ok {
		out := make([]byte, 0, len(obj)-(m.valEnd-m.valStart)+len(val))
		out = append(out, obj[:m.valStart]...)
		out = append(out, val...)
		return append(out, obj[m.valEnd:]...)
	}
	if it.bad {
		return nil
	}
	at := it.i // after the last member's value, or after the opening brace
	out := make([]byte, 0, len(obj)+len(key)+len(val)+4)
	out = append(out, obj[:at]...)
	if !it.first {
		out = append(out, ',')
	}
	out = append(AppendQuote(out, key), ':')
	out = append(out, val...)
	return append(out, obj[at:]...)
}

// DeleteMember returns a copy of the raw object obj without its top-level member key, or obj
// itself if there is no such member. obj is not modified. DeleteMember returns nil if obj is
// not a well-formed object.
func DeleteMember(obj []byte, key string) []byte {
	it := newMemberIter(obj)
	prevEnd := -1 // end of the previous member's value
	for {
		m, ok := it.next()
		if !ok {
			break
		}
		if !nameIs(obj[m.keyStart:m.keyEnd], key) {
			prevEnd = m.valEnd
			continue
		}
		from, to := m.keyStart, m.valEnd
		if j := skipSpace(obj, m.valEnd); j < len(obj) && obj[j] == ',' {
			to = skipSpace(obj, j+1) // drop the following comma: the next member moves up
		} else if prevEnd >= 0 {
			from = prevEnd // last member: drop the preceding comma
		}
		out := make([]byte, 0, len(obj)-(to-from))
		out = append(out, obj[:from]...)
		return append(out, obj[to:]...)
	}
	if it.bad {
		return nil
	}
	return obj
}

// String decodes the raw JSON string val. It reports false if val is not exactly one
// well-formed JSON string.
func String(val []byte) (string, bool) {
	if len(val) < 2 || val[0] != '"' || val[len(val)-1] != '"' {
		return "", false
	}
	body := val[1 : len(val)-1]
	simple := true
	for i := 0; i < len(body); {
		c := body[i]
		switch {
		case c == '"' || c < 0x20:
			return "", false
		case c == '\\':
			simple = false
			j, ok := validEscape(body, i)
			if !ok {
				return "", false
			}
			i = j
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(body[i:])
			if r == utf8.RuneError && n == 1 {
				return "", false
			}
			i += n
		default:
			i++
		}
	}
	if simple {
		return string(body), true
	}
	return string(appendUnescaped(make([]byte, 0, len(body)), body)), true
}

// validEscape checks the escape sequence at s[i] == '\\' and returns the index after it.
func validEscape(s []byte, i int) (int, bool) {
	if i+1 >= len(s) {
		return 0, false
	}
	switch s[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return i + 2, true
	case 'u':
	default:
		return 0, false
	}
	r, ok := hex4(s, i+2)
	switch {
	case !ok || (r >= 0xDC00 && r <= 0xDFFF):
		return 0, false
	case r >= 0xD800 && r <= 0xDBFF:
		if i+12 > len(s) || s[i+6] != '\\' || s[i+7] != 'u' {
			return 0, false
		}
		if r2, ok := hex4(s, i+8); !ok || r2 < 0xDC00 || r2 > 0xDFFF {
			return 0, false
		}
		return i + 12, true
	}
	return i + 6, true
}

// Quote returns s encoded as a JSON string.
func Quote(s string) []byte { return AppendQuote(make([]byte, 0, len(s)+2), s) }

// AppendQuote appends s encoded as a JSON string to dst. Only '"', '\\' and control
// characters are escaped; invalid UTF-8 becomes U+FFFD.
func AppendQuote(dst []byte, s string) []byte { return appendQuote(dst, s, false) }

// AppendQuoteHTML is AppendQuote that also escapes <, >, &, U+2028 and U+2029: byte for byte
// what encoding/json writes for a string.
func AppendQuoteHTML(dst []byte, s string) []byte { return appendQuote(dst, s, true) }

func appendQuote(dst []byte, s string, html bool) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (!html || (c != '<' && c != '>' && c != '&')) {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if html && (r == '\u2028' || r == '\u2029') {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += n
			start = i
			continue
		}
		i += n
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
