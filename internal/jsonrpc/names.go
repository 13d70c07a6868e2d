package jsonrpc

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// linearDuplicateScan is the largest object whose names are compared pairwise; larger
// objects are sorted by folded name instead, so the check stays O(n log n).
const linearDuplicateScan = 16

// maxQuotedName bounds how much of a member name an error message repeats.
const maxQuotedName = 64

// maxPathBytes bounds the JSON path an error message shows.
const maxPathBytes = 256

// checkName applies the exact-spelling rules of role r to the member name k of the object at
// stack index fi. It returns the role of the member's value and, for envelope and error
// members, which member it is (-1 otherwise).
func (p *parser) checkName(r role, k *keySpan, fi int) (role, int) {
	name := p.name(k)
	switch r {
	case roleEnvelope:
		switch string(name) {
		case "jsonrpc":
			return roleOther, memJSONRPC
		case "id":
			return roleOther, memID
		case "method":
			return roleOther, memMethod
		case "params":
			return roleParams, memParams
		case "result":
			return roleOther, memResult
		case "error":
			return roleError, memError
		}
		names := [...]string{"jsonrpc", "id", "method", "params", "result", "error"}
		if want := foldMatch(name, names[:]); want != "" {
			if want == "id" {
				p.idAmbiguous = true
			}
			p.fail(caseVariant(name, want, p.path(fi)))
		} else {
			p.fail(invalidRequestf("unknown member %s in %s", quoteName(string(name)), p.path(fi)))
		}
	case roleParams:
		switch string(name) {
		case "name", "arguments", "uri", "_meta", "cursor", "ref", "argument", "level",
			"protocolVersion", "capabilities", "clientInfo":
			return roleOther, -1
		}
		names := [...]string{"name", "arguments", "uri", "_meta", "cursor", "ref", "argument",
			"level", "protocolVersion", "capabilities", "clientInfo"}
		if want := foldMatch(name, names[:]); want != "" {
			p.fail(caseVariant(name, want, p.path(fi)))
		}
	case roleError:
		switch string(name) {
		case "code":
			return roleOther, memCode
		case "message":
			return roleOther, memMessage
		case "data":
			return roleOther, memData
		}
		names := [...]string{"code", "message", "data"}
		if want := foldMatch(name, names[:]); want != "" {
			p.fail(caseVariant(name, want, p.path(fi)))
		} else {
			p.fail(invalidRequestf("unknown member %s in %s", quoteName(string(name)), p.path(fi)))
		}
	}
	return roleOther, -1
}

func caseVariant(name []byte, want, where string) *Error {
	return invalidRequestf("key %s differs only in case from %q in %s", quoteName(string(name)), want, where)
}

// name returns the unescaped member name k; it aliases the input or p.scratch.
func (p *parser) name(k *keySpan) []byte {
	raw := p.b[k.start:k.end]
	if k.flags&strEscaped == 0 {
		return raw
	}
	p.scratch = appendUnescaped(p.scratch[:0], raw)
	return p.scratch
}

// checkDuplicates reports the first pair of names, in document order of the second one, that
// are equal or equal under case folding in the object at stack index fi.
func (p *parser) checkDuplicates(fi int) {
	keys := p.keysFrom(p.frame(fi).keysStart)
	n := len(keys)
	if n < 2 {
		return
	}
	if n <= linearDuplicateScan {
		for j := 1; j < n; j++ {
			for i := range j {
				if keys[i].hash == keys[j].hash && p.foldEqualKeys(&keys[i], &keys[j]) {
					p.reportDuplicate(fi, &keys[i], &keys[j])
					return
				}
			}
		}
		return
	}
	// The names are not needed in document order any more: sort them by folded name, then
	// by position, so that names equal under folding are adjacent, earliest first.
	slices.SortFunc(keys, func(x, y keySpan) int {
		if c := cmp.Compare(x.hash, y.hash); c != 0 {
			return c
		}
		if c := p.compareFold(&x, &y); c != 0 {
			return c
		}
		return cmp.Compare(x.start, y.start)
	})
	first, second := -1, -1
	group := 0
	for j := 1; j < n; j++ {
		if keys[j-1].hash != keys[j].hash || p.compareFold(&keys[j-1], &keys[j]) != 0 {
			group = j
			continue
		}
		if j == group+1 && (second < 0 || keys[j].start < keys[second].start) {
			first, second = group, j
		}
	}
	if second >= 0 {
		p.reportDuplicate(fi, &keys[first], &keys[second])
	}
}

func (p *parser) reportDuplicate(fi int, x, y *keySpan) {
	nx := string(appendUnescaped(nil, p.b[x.start:x.end]))
	ny := string(appendUnescaped(nil, p.b[y.start:y.end]))
	if nx == ny {
		p.fail(invalidRequestf("duplicate key %s in %s", quoteName(nx), p.path(fi)))
		return
	}
	p.fail(invalidRequestf("keys %s and %s differ only in case in %s", quoteName(nx), quoteName(ny), p.path(fi)))
}

// foldHash summarizes the name raw (the text between its quotes) so that most names that
// differ under case folding are told apart by one comparison: the rune count and the folded
// first and last runes. Names equal under folding have equal summaries; a collision only
// costs a full comparison. plain says raw has no escapes and only ASCII.
func foldHash(raw []byte, plain bool) uint64 {
	if len(raw) == 0 {
		return 0
	}
	if plain {
		return uint64(len(raw))<<42 | uint64(upperASCII(raw[0]))<<21 | uint64(upperASCII(raw[len(raw)-1]))
	}
	var count uint64
	var first, last rune
	for i := 0; i < len(raw); count++ {
		last, i = nextRune(raw, i)
		if count == 0 {
			first = last
		}
	}
	return count<<42 | uint64(foldRune(first))<<21 | uint64(foldRune(last))
}

func (p *parser) foldEqualKeys(x, y *keySpan) bool {
	if x.plain() && y.plain() {
		a, b := p.b[x.start:x.end], p.b[y.start:y.end]
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if upperASCII(a[i]) != upperASCII(b[i]) {
				return false
			}
		}
		return true
	}
	return p.compareFold(x, y) == 0
}

// compareFold orders two names by their case-folded runes.
func (p *parser) compareFold(x, y *keySpan) int {
	a, b := p.b[x.start:x.end], p.b[y.start:y.end]
	if x.plain() && y.plain() {
		// Skip the identical prefix a word at a time: long shared prefixes are how an
		// adversary would make this sort slow.
		i := 0
		for i+8 <= len(a) && i+8 <= len(b) && binary.LittleEndian.Uint64(a[i:]) == binary.LittleEndian.Uint64(b[i:]) {
			i += 8
		}
		for ; i < len(a) && i < len(b); i++ {
			if ca, cb := upperASCII(a[i]), upperASCII(b[i]); ca != cb {
				return cmp.Compare(ca, cb)
			}
		}
		return cmp.Compare(len(a), len(b))
	}
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		var ra, rb rune
		ra, i = nextRune(a, i)
		rb, j = nextRune(b, j)
		if ra != rb {
			if fa, fb := foldRune(ra), foldRune(rb); fa != fb {
				return cmp.Compare(fa, fb)
			}
		}
	}
	return cmp.Compare(len(a)-i, len(b)-j)
}

func upperASCII(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

// foldRune maps r to the smallest rune of its case-folding orbit, so that two runes are equal
// under [strings.EqualFold] exactly when their foldRune values are equal.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		return rune(upperASCII(byte(r)))
	}
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		m = min(m, f)
	}
	return m
}

// foldMatch returns the candidate equal to name under case folding, or "".
func foldMatch(name []byte, candidates []string) string {
	for _, c := range candidates {
		if foldEqual(name, c) {
			return c
		}
	}
	return ""
}

// foldEqual is [strings.EqualFold] for a byte slice and a string, without allocating.
func foldEqual(a []byte, s string) bool {
	for len(a) > 0 && len(s) > 0 {
		ra, n := utf8.DecodeRune(a)
		a = a[n:]
		rs, m := utf8.DecodeRuneInString(s)
		s = s[m:]
		if ra != rs && foldRune(ra) != foldRune(rs) {
			return false
		}
	}
	return len(a) == 0 && len(s) == 0
}

// nextRune decodes the rune at s[i] of the text between the quotes of a JSON string,
// resolving escapes. Malformed input yields utf8.RuneError and always advances.
func nextRune(s []byte, i int) (rune, int) {
	c := s[i]
	if c >= utf8.RuneSelf {
		r, n := utf8.DecodeRune(s[i:])
		return r, i + n
	}
	if c != '\\' {
		return rune(c), i + 1
	}
	if i+1 >= len(s) {
		return utf8.RuneError, len(s)
	}
	switch s[i+1] {
	case '"', '\\', '/':
		return rune(s[i+1]), i + 2
	case 'b':
		return '\b', i + 2
	case 'f':
		return '\f', i + 2
	case 'n':
		return '\n', i + 2
	case 'r':
		return '\r', i + 2
	case 't':
		return '\t', i + 2
	case 'u':
		r, ok := hex4(s, i+2)
		if !ok {
			return utf8.RuneError, i + 2
		}
		if r < 0xD800 || r > 0xDFFF {
			return r, i + 6
		}
		if r <= 0xDBFF && i+12 <= len(s) && s[i+6] == '\\' && s[i+7] == 'u' {
			if r2, ok := hex4(s, i+8); ok && r2 >= 0xDC00 && r2 <= 0xDFFF {
				return 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00), i + 12
			}
		}
		return utf8.RuneError, i + 6
	}
	return utf8.RuneError, i + 2
}

// appendUnescaped appends the decoded text of the JSON string contents raw to dst.
func appendUnescaped(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		j := bytes.IndexByte(raw[i:], '\\')
		if j < 0 {
			return append(dst, raw[i:]...)
		}
		dst = append(dst, raw[i:i+j]...)
		var r rune
		r, i = nextRune(raw, i+j)
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}

// quoteName quotes a member name for an error message, keeping at most maxQuotedName bytes.
func quoteName(name string) string {
	if len(name) <= maxQuotedName {
		return strconv.Quote(name)
	}
	cut := maxQuotedName
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return strconv.Quote(name[:cut]) + "…"
}

// path describes where the value inside the first depth open containers is, such as
// params.arguments.items[3], or "the message" for the message object itself.
func (p *parser) path(depth int) string {
	if depth == 0 {
		return "the message"
	}
	var b []byte
	for n := range depth {
		f := p.frame(n)
		if !f.obj {
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(f.cur), 10)
			b = append(b, ']')
			continue
		}
		if f.cur < 0 {
			break // reading this object's next member name
		}
		k := p.key(f.cur)
		name := string(appendUnescaped(nil, p.b[k.start:k.end]))
		if isIdentifier(name) {
			if n > 0 {
				b = append(b, '.')
			}
			b = append(b, name...)
		} else {
			b = append(b, '[')
			b = append(b, quoteName(name)...)
			b = append(b, ']')
		}
	}
	if len(b) == 0 {
		return "the message"
	}
	if len(b) > maxPathBytes {
		head, tail := maxPathBytes/2, len(b)-maxPathBytes/2
		for head > 0 && !utf8.RuneStart(b[head]) {
			head--
		}
		for tail < len(b) && !utf8.RuneStart(b[tail]) {
			tail++
		}
		b = append(append(b[:head:head], "…"...), b[tail:]...)
	}
	return string(b)
}

func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c == '$' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || (i > 0 && '0' <= c && c <= '9') {
			continue
		}
		return false
	}
	return true
}
