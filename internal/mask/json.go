package mask

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// The JSON text this package reads and writes: a validating scanner, and string quoting and
// unquoting that pass runs of plain ASCII eight bytes at a time.

func skipWS(b []byte, i int) int {
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

// scanValue returns the end of the JSON value at b[i], validating it; depth is the nesting
// already entered.
func scanValue(b []byte, i, depth, maxDepth int) (int, error) {
	if i >= len(b) {
		return 0, fmt.Errorf("%w: unexpected end", ErrInvalid)
	}
	switch c := b[i]; {
	case c == '"':
		end, _, err := scanString(b, i)
		return end, err
	case c == '-' || isDigit(c):
		return scanNumber(b, i)
	case c == 't':
		return literal(b, i, "true")
	case c == 'f':
		return literal(b, i, "false")
	case c == 'n':
		return literal(b, i, "null")
	case c == '{' || c == '[':
		if depth++; depth > maxDepth {
			return 0, fmt.Errorf("%w: more than %d levels", ErrTooDeep, maxDepth)
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1, nil
		}
		for {
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return 0, ErrInvalid
				}
				end, _, err := scanString(b, i)
				if err != nil {
					return 0, err
				}
				i = skipWS(b, end)
				if i >= len(b) || b[i] != ':' {
					return 0, ErrInvalid
				}
				i = skipWS(b, i+1)
			}
			end, err := scanValue(b, i, depth, maxDepth)
			if err != nil {
				return 0, err
			}
			i = skipWS(b, end)
			if i >= len(b) {
				return 0, ErrInvalid
			}
			switch b[i] {
			case ',':
				i = skipWS(b, i+1)
			case closer:
				return i + 1, nil
			default:
				return 0, ErrInvalid
			}
		}
	}
	return 0, fmt.Errorf("%w: unexpected %q", ErrInvalid, b[i])
}

func literal(b []byte, i int, lit string) (int, error) {
	if !bytes.HasPrefix(b[i:], []byte(lit)) {
		return 0, ErrInvalid
	}
	return i + len(lit), nil
}

// scanString returns the end of the string at b[i] (after its closing quote) and whether it
// has escapes, validating its escapes and UTF-8. Plain ASCII is passed eight bytes at a time.
func scanString(b []byte, i int) (int, bool, error) {
	esc := false
	for i++; ; {
		for i+8 <= len(b) && !hasSpecialByte(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		for i < len(b) && plainByte[b[i]] {
			i++
		}
		if i >= len(b) {
			return 0, false, fmt.Errorf("%w: an unterminated string", ErrInvalid)
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, esc, nil
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				return 0, false, ErrInvalid
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !allHex(b[i+2:i+6]) {
					return 0, false, fmt.Errorf("%w: a bad \\u escape", ErrInvalid)
				}
				i += 6
			default:
				return 0, false, fmt.Errorf("%w: a bad escape", ErrInvalid)
			}
		case c < 0x20:
			return 0, false, fmt.Errorf("%w: a control character in a string", ErrInvalid)
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return 0, false, fmt.Errorf("%w: invalid UTF-8", ErrInvalid)
			}
			i += size
		}
	}
}

// plainByte is true for the bytes a string holds as they are: ASCII but controls, '"' and '\\'.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// hasSpecialByte reports whether any of the eight bytes in x is not a plainByte: each term sets
// a byte's high bit for one class (x itself for bytes >= 0x80, then bytes below 0x20, then '"'
// and '\\', zero after the XOR), as in internal/jsonrpc.
func hasSpecialByte(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := x ^ (ones * '"')
	s := x ^ (ones * '\\')
	return (x|(x-ones*0x20)&^x|(q-ones)&^q|(s-ones)&^s)&highs != 0
}

func allHex(b []byte) bool {
	for _, c := range b {
		if !isDigit(c) && (c|0x20 < 'a' || c|0x20 > 'f') {
			return false
		}
	}
	return true
}

// scanNumber returns the end of the number at b[i], validating it.
func scanNumber(b []byte, i int) (int, error) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return 0, ErrInvalid
	case b[i] == '0':
		i++
	case isDigit(b[i]):
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return 0, ErrInvalid
	}
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		if i == start {
			return 0, ErrInvalid
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		if i == start {
			return 0, ErrInvalid
		}
	}
	return i, nil
}

// unquote appends the text of the string at b[i] (its quote) to dst and returns the index
// after its closing quote, validating it as scanString does; a \u escape of a lone surrogate is
// refused, as encoding/json/v2 refuses it.
func unquote(dst, b []byte, i int) ([]byte, int, error) {
	for i++; ; {
		start := i
		for i+8 <= len(b) && !hasSpecialByte(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		for i < len(b) && plainByte[b[i]] {
			i++
		}
		dst = append(dst, b[start:i]...)
		if i >= len(b) {
			return dst, 0, fmt.Errorf("%w: an unterminated string", ErrInvalid)
		}
		switch c := b[i]; {
		case c == '"':
			return dst, i + 1, nil
		case c == '\\':
			if i+1 >= len(b) {
				return dst, 0, ErrInvalid
			}
			switch e := b[i+1]; e {
			case '"', '\\', '/':
				dst = append(dst, e)
				i += 2
			case 'b':
				dst, i = append(dst, '\b'), i+2
			case 'f':
				dst, i = append(dst, '\f'), i+2
			case 'n':
				dst, i = append(dst, '\n'), i+2
			case 'r':
				dst, i = append(dst, '\r'), i+2
			case 't':
				dst, i = append(dst, '\t'), i+2
			case 'u':
				r, ok := hex4(b, i+2)
				if !ok {
					return dst, 0, fmt.Errorf("%w: a bad \\u escape", ErrInvalid)
				}
				i += 6
				if utf16.IsSurrogate(r) {
					r2, ok := rune(0), false
					if i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
						r2, ok = hex4(b, i+2)
					}
					if r = utf16.DecodeRune(r, r2); !ok || r == utf8.RuneError {
						return dst, 0, fmt.Errorf("%w: a lone surrogate in a \\u escape", ErrInvalid)
					}
					i += 6
				}
				dst = utf8.AppendRune(dst, r)
			default:
				return dst, 0, fmt.Errorf("%w: a bad escape", ErrInvalid)
			}
		case c < 0x20:
			return dst, 0, fmt.Errorf("%w: a control character in a string", ErrInvalid)
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return dst, 0, fmt.Errorf("%w: invalid UTF-8", ErrInvalid)
			}
			dst = append(dst, b[i:i+size]...)
			i += size
		}
	}
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case isDigit(c):
			r = r<<4 | rune(c-'0')
		case c|0x20 >= 'a' && c|0x20 <= 'f':
			r = r<<4 | rune(c|0x20-'a'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// appendQuoted appends s, valid UTF-8, as a JSON string: '"', '\\' and control characters
// escaped, everything else as it is.
func appendQuoted(dst, s []byte) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		start := i
		for i+8 <= len(s) && !hasQuoteByte(binary.LittleEndian.Uint64(s[i:])) {
			i += 8
		}
		for i < len(s) && (s[i] >= 0x20 && s[i] != '"' && s[i] != '\\') {
			i++
		}
		dst = append(dst, s[start:i]...)
		if i >= len(s) {
			break
		}
		switch c := s[i]; c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		default:
			const hex = "0123456789abcdef"
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
	}
	return append(dst, '"')
}

// hasQuoteByte reports whether any of the eight bytes in x must be escaped in a JSON string:
// below 0x20, '"' or '\\'.
func hasQuoteByte(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := x ^ (ones * '"')
	s := x ^ (ones * '\\')
	return ((x-ones*0x20)&^x|(q-ones)&^q|(s-ones)&^s)&highs != 0
}
