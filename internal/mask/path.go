package mask

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// Bounds of the path language.
const (
	// MaxPathBytes bounds the text of one path.
	MaxPathBytes = 512
	// MaxPathSegments bounds the segments of one path after "$".
	MaxPathSegments = 32
	// maxIndex bounds an array index in a path.
	maxIndex = 1 << 20
)

// segKind is what one step of a path selects.
type segKind uint8

const (
	segMember segKind = iota // .name or ["name"]: the member of an object
	segIndex                 // [3]: the element of an array
	segAny                   // .* or [*]: every member of an object, every element of an array
)

type segment struct {
	kind  segKind
	name  string
	index int
}

// Path is a compiled path into a JSON value: "$" followed by segments, a subset of RFC 9535
// JSONPath without filters, slices, negative indices or descendants:
//
//	.name      the member "name" of an object (a name of letters, digits, '_' and '-', not
//	           starting with a digit)
//	["name"]   the member "name", any name, written as a JSON string (escapes allowed)
//	['name']   the same, in single quotes, without escapes
//	[3]        the element at index 3 of an array
//	.* or [*]  every member of an object and every element of an array
//
// For example "$.holdings[*].client_name", "$.iban", "$['full name']". A path selects values;
// it never matches the root "$" alone.
type Path struct {
	text string
	segs []segment
}

// String returns the path as written.
func (p Path) String() string { return p.text }

// ParsePath compiles a path, or says what is wrong with it.
func ParsePath(s string) (Path, error) {
	if len(s) > MaxPathBytes {
		return Path{}, fmt.Errorf("the path is %d bytes; at most %d", len(s), MaxPathBytes)
	}
	if !utf8.ValidString(s) {
		return Path{}, errors.New("the path is not valid UTF-8")
	}
	if !strings.HasPrefix(s, "$") {
		return Path{}, errors.New(`a path starts with "$" (the structured result), as in "$.holdings[*].client_name"`)
	}
	p := Path{text: s}
	i := 1
	for i < len(s) {
		if len(p.segs) == MaxPathSegments {
			return Path{}, fmt.Errorf("more than %d segments", MaxPathSegments)
		}
		var seg segment
		var err error
		switch s[i] {
		case '.':
			seg, i, err = dotSegment(s, i+1)
		case '[':
			seg, i, err = bracketSegment(s, i+1)
		default:
			return Path{}, fmt.Errorf("unexpected %q at offset %d: a segment starts with '.' or '['", s[i], i)
		}
		if err != nil {
			return Path{}, err
		}
		p.segs = append(p.segs, seg)
	}
	if len(p.segs) == 0 {
		return Path{}, errors.New(`"$" alone is the whole result; name a member, such as "$.iban"`)
	}
	return p, nil
}

func dotSegment(s string, i int) (segment, int, error) {
	if i < len(s) && s[i] == '.' {
		return segment{}, 0, errors.New(`".." (descendants) is not supported: write every level, using "*" for any member`)
	}
	if i < len(s) && s[i] == '*' {
		return segment{kind: segAny}, i + 1, nil
	}
	start := i
	for i < len(s) && isNameByte(s[i], i == start) {
		i++
	}
	if i == start {
		if i == len(s) {
			return segment{}, 0, errors.New(`a "." at the end names nothing`)
		}
		return segment{}, 0, fmt.Errorf(`%q at offset %d cannot start a name after "."; write other names as ["name"]`, s[i], i)
	}
	return segment{kind: segMember, name: s[start:i]}, i, nil
}

func isNameByte(c byte, first bool) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		return true
	case c >= '0' && c <= '9', c == '-':
		return !first
	}
	return false
}

func bracketSegment(s string, i int) (segment, int, error) {
	if i >= len(s) {
		return segment{}, 0, errors.New(`an unclosed "["`)
	}
	var seg segment
	switch c := s[i]; {
	case c == '*':
		seg, i = segment{kind: segAny}, i+1
	case c == '"':
		end := i + 1
		for end < len(s) && s[end] != '"' {
			if s[end] == '\\' {
				end++
			}
			end++
		}
		if end >= len(s) {
			return segment{}, 0, errors.New(`an unclosed string in "[…]"`)
		}
		name, err := jsontext.AppendUnquote(nil, s[i:end+1])
		if err != nil {
			return segment{}, 0, fmt.Errorf("the name %s is not a valid JSON string: %v", s[i:end+1], err)
		}
		seg, i = segment{kind: segMember, name: string(name)}, end+1
	case c == '\'':
		end := strings.IndexByte(s[i+1:], '\'')
		if end < 0 {
			return segment{}, 0, errors.New(`an unclosed string in "[…]"`)
		}
		name := s[i+1 : i+1+end]
		if strings.IndexByte(name, '\\') >= 0 {
			return segment{}, 0, errors.New(`a name in single quotes has no escapes; write it in double quotes as a JSON string`)
		}
		seg, i = segment{kind: segMember, name: name}, i+1+end+1
	case c >= '0' && c <= '9':
		end := i
		for end < len(s) && s[end] >= '0' && s[end] <= '9' {
			end++
		}
		digits := s[i:end]
		if len(digits) > 1 && digits[0] == '0' {
			return segment{}, 0, fmt.Errorf("the index %s has a leading zero", digits)
		}
		n, err := strconv.Atoi(digits)
		if err != nil || n > maxIndex {
			return segment{}, 0, fmt.Errorf("the index %s is out of range: at most %d", digits, maxIndex)
		}
		seg, i = segment{kind: segIndex, index: n}, end
	case c == '-':
		return segment{}, 0, errors.New("negative indices are not supported")
	case c == '?':
		return segment{}, 0, errors.New("filters are not supported")
	default:
		return segment{}, 0, fmt.Errorf(`%q at offset %d: "[" holds an index, "*" or a quoted name`, c, i)
	}
	if i >= len(s) || s[i] != ']' {
		if i < len(s) && (s[i] == ':' || s[i] == ',') {
			return segment{}, 0, errors.New("slices and unions are not supported: write one path per selection")
		}
		return segment{}, 0, errors.New(`expected "]"`)
	}
	return seg, i + 1, nil
}
