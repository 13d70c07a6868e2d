package jsonrpc

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Default limits applied by [Parse] when a [Limits] field is zero or negative.
const (
	DefaultMaxBytes = 4 << 20
	DefaultMaxDepth = 64
	DefaultMaxKeys  = 10000

	// maxDepthCeiling bounds MaxDepth so that recursion stays shallow whatever is configured.
	maxDepthCeiling = 10000
)

// Limits bounds the resources one message may claim. Zero or negative fields take defaults.
type Limits struct {
	MaxBytes       int // whole message, in bytes; default 4 MiB
	MaxDepth       int // nesting of objects and arrays, the message object being level 1; default 64, at most 10000
	MaxKeys        int // members in any one object; default 10000
	MaxStringBytes int // encoded length of any one string, keys included, quotes excluded; default MaxBytes
}

func (l Limits) resolve() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	l.MaxDepth = min(l.MaxDepth, maxDepthCeiling)
	if l.MaxKeys <= 0 {
		l.MaxKeys = DefaultMaxKeys
	}
	if l.MaxStringBytes <= 0 {
		l.MaxStringBytes = l.MaxBytes
	}
	return l
}

// Parse validates b as exactly one JSON-RPC 2.0 message and decodes its envelope.
//
// Validation covers the whole document in one pass: RFC 8259 syntax, UTF-8 (raw and escaped),
// the limits in lim, and in every object at any depth: no duplicate member names and no two
// names equal under Unicode case folding ([strings.EqualFold]), names compared after
// unescaping. Names in the envelope, in the error object and the well-known names of the
// params object must be spelled exactly. Batches, positional params, unknown envelope members,
// and ids that are null (in requests), fractional, out of int64 range or longer than
// [MaxIDBytes] are rejected.
//
// The error is always an *[Error]: [CodeParseError] when b is not one well-formed JSON value,
// [CodeInvalidRequest] when it is well-formed but not an acceptable message or exceeds a
// limit. Limit violations stop the scan where they occur. Error messages quote at most 64
// bytes of any name and never echo values.
//
// When the error is [CodeInvalidRequest] and the message carried one well-formed, unambiguous,
// non-null id, Parse also returns a Message of [KindInvalid] holding only that ID, so the
// caller can address its error response; otherwise the Message is nil on error.
func Parse(b []byte, lim Limits) (*Message, error) {
	m, err := parse(b, lim.resolve())
	if err != nil {
		return m, err
	}
	return m, nil
}

// CheckValue validates b as exactly one JSON value under the rules [Parse] applies inside a
// message: RFC 8259 syntax, UTF-8, the limits in lim, and no two member names in any object
// that are equal or equal under case folding. It is for JSON that did not arrive inside a
// parsed message.
func CheckValue(b []byte, lim Limits) error {
	countPass()
	lim = lim.resolve()
	if len(b) > lim.MaxBytes {
		return invalidRequestf("value is %d bytes, over the %d-byte limit", len(b), lim.MaxBytes)
	}
	p := parser{envelope: envelope{b: b}, lim: lim}
	i := skipSpace(b, 0)
	if i == len(b) {
		return parseErrorf("empty value")
	}
	i, err := p.value(i, roleOther)
	if err != nil {
		return err
	}
	if i = skipSpace(b, i); i < len(b) {
		return parseErrorf("unexpected data after the JSON value at offset %d", i)
	}
	if p.err != nil {
		return p.err
	}
	return nil
}

// Members of the envelope and of the error object that the parser captures.
const (
	memJSONRPC = iota
	memID
	memMethod
	memParams
	memResult
	memError
	memCode
	memMessage
	memData
	numMembers
)

// role says which exact-spelling rules apply to an object's member names.
type role uint8

const (
	roleOther    role = iota
	roleEnvelope      // the message object
	roleParams        // the top-level params object
	roleError         // the error object of a response
)

// keySpan locates an object member name: b[start:end] is the text between its quotes.
type keySpan struct {
	start, end int
	hash       uint64 // see foldHash: equal for names equal under case folding
	flags      uint8  // strEscaped, strNonASCII
}

// Flags describing a scanned string.
const (
	strEscaped  uint8 = 1 << iota // contains a backslash escape
	strNonASCII                   // contains a byte >= 0x80
)

func (k *keySpan) plain() bool { return k.flags == 0 }

// frame is one open object or array.
type frame struct {
	obj       bool
	keysStart int // objects: index in parser.keys of this object's first name
	cur       int // objects: index in parser.keys of the current member's name, -1 before the first; arrays: element index
}

type valueSpan struct{ start, end int } // end == 0: absent

// Open containers and the member names of open objects live in arrays inside the parser, on
// the caller's stack, until they outgrow them. No field ever holds a slice of those arrays:
// that would make the compiler move the whole parser to the heap.
const (
	inlineFrames = 16
	inlineKeys   = 32
)

type parser struct {
	envelope
	lim     Limits
	scratch []byte // unescaped name, reused

	depth      int // open containers
	frames     [inlineFrames]frame
	moreFrames []frame // frames beyond inlineFrames

	nkeys   int // names of the open objects, innermost last
	keys    [inlineKeys]keySpan
	allKeys []keySpan // all names, once more than inlineKeys have been open at once
}

func (p *parser) frame(i int) *frame {
	if i < inlineFrames {
		return &p.frames[i]
	}
	return &p.moreFrames[i-inlineFrames]
}

func (p *parser) key(i int) *keySpan {
	if p.allKeys != nil {
		return &p.allKeys[i]
	}
	return &p.keys[i]
}

// pushKey makes room for one more name and returns it, to be filled in place (building a
// keySpan elsewhere and copying it costs a store-forwarding stall).
func (p *parser) pushKey() *keySpan {
	switch {
	case p.allKeys != nil:
		p.allKeys = append(p.allKeys[:p.nkeys], keySpan{})
	case p.nkeys == inlineKeys:
		p.allKeys = make([]keySpan, p.nkeys+1, 4*inlineKeys)
		copy(p.allKeys, p.keys[:])
	}
	p.nkeys++
	return p.key(p.nkeys - 1)
}

// keysFrom returns the open names from index i on; it aliases the parser.
func (p *parser) keysFrom(i int) []keySpan {
	if p.allKeys != nil {
		return p.allKeys[i:p.nkeys]
	}
	return p.keys[i:p.nkeys]
}

// envelope is what the scan learns about the message as a whole. It is kept apart from the
// parser so that the parser's stack-allocated buffers never flow into the returned Message.
type envelope struct {
	b           []byte
	err         *Error // first problem found that does not stop the scan; reported if the syntax is valid
	mem         [numMembers]valueSpan
	idAmbiguous bool // "id" appears twice or with a case variant: do not trust any of them
}

func parse(b []byte, lim Limits) (*Message, *Error) {
	countPass()
	if len(b) > lim.MaxBytes {
		return nil, invalidRequestf("message is %d bytes, over the %d-byte limit", len(b), lim.MaxBytes)
	}
	p := parser{envelope: envelope{b: b}, lim: lim}

	i := skipSpace(b, 0)
	if i == len(b) {
		return nil, parseErrorf("empty message")
	}
	r := roleOther
	switch b[i] {
	case '{':
		r = roleEnvelope
	case '[':
		p.fail(invalidRequestf("batch requests are not supported"))
	default:
		p.fail(invalidRequestf("message must be a JSON object"))
	}
	i, err := p.value(i, r)
	if err != nil {
		if err.Code == CodeInvalidRequest && p.err != nil {
			err = p.err // an earlier problem in document order
		}
		return nil, err
	}
	if i = skipSpace(b, i); i < len(b) {
		return nil, parseErrorf("unexpected data after the JSON value at offset %d", i)
	}
	env := p.envelope
	return env.message()
}

// fail records a problem that does not stop the scan; the first one wins.
func (p *envelope) fail(e *Error) {
	if p.err == nil {
		p.err = e
	}
}

func skipSpace(b []byte, i int) int {
	if i < len(b) && b[i] > ' ' {
		return i // the common case in compact JSON
	}
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

func (p *parser) value(i int, r role) (int, *Error) {
	if i >= len(p.b) {
		return i, p.unexpectedEnd()
	}
	switch c := p.b[i]; c {
	case '{':
		return p.object(i, r)
	case '[':
		return p.array(i)
	case '"':
		j, _, err := p.str(i)
		return j, err
	case 't':
		return p.literal(i, "true")
	case 'f':
		return p.literal(i, "false")
	case 'n':
		return p.literal(i, "null")
	default:
		if c == '-' || ('0' <= c && c <= '9') {
			return p.number(i)
		}
		return i, p.badChar(i, "looking for the start of a value")
	}
}

func (p *parser) push(f frame) *Error {
	if p.depth >= p.lim.MaxDepth {
		return invalidRequestf("nesting deeper than %d levels in %s", p.lim.MaxDepth, p.path(p.depth))
	}
	if p.depth < inlineFrames {
		p.frames[p.depth] = f
	} else {
		p.moreFrames = append(p.moreFrames[:p.depth-inlineFrames], f)
	}
	p.depth++
	return nil
}

func (p *parser) object(i int, r role) (int, *Error) {
	if err := p.push(frame{obj: true, keysStart: p.nkeys, cur: -1}); err != nil {
		return i, err
	}
	fi := p.depth - 1
	b := p.b
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		p.depth = fi
		return i + 1, nil
	}
	for {
		if i >= len(b) {
			return i, p.unexpectedEnd()
		}
		if b[i] != '"' {
			return i, p.badChar(i, "looking for an object member name")
		}
		p.frame(fi).cur = -1 // an error in the name is located in the object
		j, flags, err := p.str(i)
		if err != nil {
			return j, err
		}
		ki := p.nkeys
		if ki-p.frame(fi).keysStart >= p.lim.MaxKeys {
			return i, invalidRequestf("object has more than %d members in %s", p.lim.MaxKeys, p.path(fi))
		}
		k := p.pushKey()
		k.start, k.end, k.flags = i+1, j-1, flags
		k.hash = foldHash(b[i+1:j-1], flags == 0)
		p.frame(fi).cur = ki
		child, mem := roleOther, -1
		if r != roleOther {
			child, mem = p.checkName(r, k, fi)
		}
		if i = skipSpace(b, j); i >= len(b) {
			return i, p.unexpectedEnd()
		}
		if b[i] != ':' {
			return i, p.badChar(i, "after object member name")
		}
		start := skipSpace(b, i+1)
		if i, err = p.value(start, child); err != nil {
			return i, err
		}
		if mem >= 0 {
			p.capture(mem, start, i)
		}
		if i = skipSpace(b, i); i >= len(b) {
			return i, p.unexpectedEnd()
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
			continue
		case '}':
			i++
		default:
			return i, p.badChar(i, "after object member")
		}
		break
	}
	if p.err == nil {
		p.checkDuplicates(fi)
	}
	p.nkeys = p.frame(fi).keysStart
	p.depth = fi
	return i, nil
}

func (p *parser) array(i int) (int, *Error) {
	if err := p.push(frame{}); err != nil {
		return i, err
	}
	fi := p.depth - 1
	b := p.b
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		p.depth = fi
		return i + 1, nil
	}
	for {
		var err *Error
		if i, err = p.value(i, roleOther); err != nil {
			return i, err
		}
		if i = skipSpace(b, i); i >= len(b) {
			return i, p.unexpectedEnd()
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
			p.frame(fi).cur++
			continue
		case ']':
			i++
		default:
			return i, p.badChar(i, "after array element")
		}
		break
	}
	p.depth = fi
	return i, nil
}

// plainStringByte[c] is 'x' when byte c stands for itself inside a JSON string: not a control
// character, '"', '\\' or the start of a multi-byte UTF-8 sequence (validated separately).
const plainStringByte = "" +
	"................................" + // 0x00-0x1f
	"xx.xxxxxxxxxxxxxxxxxxxxxxxxxxxxx" + // 0x20-0x3f: '"' is 0x22
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxx.xxx" + // 0x40-0x5f: '\\' is 0x5c
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" + // 0x60-0x7f
	"................................" + // 0x80-0xff
	"................................" +
	"................................" +
	"................................"

// hasSpecialStringByte reports whether any of the eight bytes in x is not a plainStringByte.
// Each term sets a byte's high bit for one class: x itself for bytes >= 0x80, then bytes
// below 0x20, then bytes equal to '"' and '\\' (zero after the XOR).
func hasSpecialStringByte(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := x ^ (ones * '"')
	s := x ^ (ones * '\\')
	return (x|(x-ones*0x20)&^x|(q-ones)&^q|(s-ones)&^s)&highs != 0
}

// str scans the string starting at the quote b[i] and returns the index after its closing
// quote and what the string contains.
func (p *parser) str(i int) (int, uint8, *Error) {
	b := p.b
	var flags uint8
	j := i + 1
	for {
		for j+8 <= len(b) && !hasSpecialStringByte(binary.LittleEndian.Uint64(b[j:])) {
			j += 8
		}
		for j < len(b) && plainStringByte[b[j]] == 'x' {
			j++
		}
		if j >= len(b) {
			return j, flags, p.unexpectedEnd()
		}
		switch c := b[j]; {
		case c == '"':
			if j-(i+1) > p.lim.MaxStringBytes {
				return j, flags, invalidRequestf("string longer than %d bytes in %s", p.lim.MaxStringBytes, p.path(p.depth))
			}
			return j + 1, flags, nil
		case c == '\\':
			flags |= strEscaped
			var err *Error
			if j, err = p.escape(j); err != nil {
				return j, flags, err
			}
		case c < 0x20:
			return j, flags, parseErrorf("control character %U in string at offset %d", c, j)
		default:
			r, size := utf8.DecodeRune(b[j:])
			if r == utf8.RuneError && size == 1 {
				return j, flags, parseErrorf("invalid UTF-8 in string at offset %d", j)
			}
			flags |= strNonASCII
			j += size
		}
	}
}

// escape validates the escape sequence at b[i] == '\\' and returns the index after it.
func (p *parser) escape(i int) (int, *Error) {
	b := p.b
	if i+1 >= len(b) {
		return i, p.unexpectedEnd()
	}
	switch b[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return i + 2, nil
	case 'u':
	default:
		return i, parseErrorf("invalid escape sequence in string at offset %d", i)
	}
	r, ok := hex4(b, i+2)
	if !ok {
		if i+6 > len(b) && allHex(b[i+2:]) {
			return i, p.unexpectedEnd()
		}
		return i, parseErrorf("invalid \\u escape in string at offset %d", i)
	}
	switch {
	case r >= 0xDC00 && r <= 0xDFFF:
		return i, parseErrorf("unpaired surrogate escape in string at offset %d", i)
	case r >= 0xD800 && r <= 0xDBFF:
		if i+12 > len(b) && i+6 <= len(b) && isEscapePrefix(b[i+6:]) {
			return i, p.unexpectedEnd()
		}
		if i+8 > len(b) || b[i+6] != '\\' || b[i+7] != 'u' {
			return i, parseErrorf("unpaired surrogate escape in string at offset %d", i)
		}
		r2, ok := hex4(b, i+8)
		if !ok || r2 < 0xDC00 || r2 > 0xDFFF {
			return i, parseErrorf("unpaired surrogate escape in string at offset %d", i)
		}
		return i + 12, nil
	}
	return i + 6, nil
}

// isEscapePrefix reports whether b, cut short by the end of input, may begin a \uXXXX escape.
func isEscapePrefix(b []byte) bool {
	for n, c := range b {
		switch n {
		case 0:
			if c != '\\' {
				return false
			}
		case 1:
			if c != 'u' {
				return false
			}
		default:
			if _, ok := hexVal(c); !ok {
				return false
			}
		}
	}
	return true
}

func hexVal(c byte) (rune, bool) {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0'), true
	case 'a' <= c && c <= 'f':
		return rune(c-'a') + 10, true
	case 'A' <= c && c <= 'F':
		return rune(c-'A') + 10, true
	}
	return 0, false
}

func allHex(b []byte) bool {
	for _, c := range b {
		if _, ok := hexVal(c); !ok {
			return false
		}
	}
	return true
}

// hex4 decodes the four hex digits at b[i:i+4].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		v, ok := hexVal(c)
		if !ok {
			return 0, false
		}
		r = r<<4 | v
	}
	return r, true
}

func (p *parser) number(i int) (int, *Error) {
	b := p.b
	j := i
	if b[j] == '-' {
		j++
	}
	if j >= len(b) {
		return j, p.unexpectedEnd()
	}
	switch c := b[j]; {
	case c == '0':
		j++
	case '1' <= c && c <= '9':
		j = digits(b, j+1)
	default:
		return j, p.badChar(j, "in number")
	}
	if j < len(b) && b[j] == '.' {
		j++
		if j >= len(b) {
			return j, p.unexpectedEnd()
		}
		if c := b[j]; c < '0' || c > '9' {
			return j, p.badChar(j, "after decimal point in number")
		}
		j = digits(b, j+1)
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if j >= len(b) {
			return j, p.unexpectedEnd()
		}
		if c := b[j]; c < '0' || c > '9' {
			return j, p.badChar(j, "in exponent of number")
		}
		j = digits(b, j+1)
	}
	return j, nil
}

func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

func (p *parser) literal(i int, lit string) (int, *Error) {
	b := p.b
	for n := 0; n < len(lit); n++ {
		if i+n >= len(b) {
			return i + n, p.unexpectedEnd()
		}
		if b[i+n] != lit[n] {
			return i + n, p.badChar(i+n, "in literal "+lit)
		}
	}
	return i + len(lit), nil
}

func (p *parser) unexpectedEnd() *Error {
	return parseErrorf("unexpected end of input at offset %d", len(p.b))
}

// badChar describes the byte at b[i] without echoing more than one character of input.
func (p *parser) badChar(i int, context string) *Error {
	c := p.b[i]
	if c < utf8.RuneSelf {
		return parseErrorf("invalid character %s %s at offset %d", strconv.QuoteRune(rune(c)), context, i)
	}
	r, size := utf8.DecodeRune(p.b[i:])
	if r == utf8.RuneError && size == 1 {
		return parseErrorf("invalid UTF-8 at offset %d", i)
	}
	return parseErrorf("invalid character %s %s at offset %d", strconv.QuoteRune(r), context, i)
}

// capture remembers where an envelope or error-object member's value lies.
func (p *envelope) capture(mem int, start, end int) {
	if p.mem[mem].end != 0 {
		if mem == memID {
			p.idAmbiguous = true
		}
		return // a duplicate: checkDuplicates reports it
	}
	p.mem[mem] = valueSpan{start, end}
}

func parseErrorf(format string, args ...any) *Error {
	return &Error{Code: CodeParseError, Message: fmt.Sprintf(format, args...)}
}

func invalidRequestf(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidRequest, Message: fmt.Sprintf(format, args...)}
}
