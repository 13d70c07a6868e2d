package policy

import (
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"unicode/utf8"
)

// fastCheck confirms, without allocating, that a value satisfies a simple
// constraint fragment — one made only of type, pattern, enum or const of
// strings, integer bounds and length bounds. It only ever says "valid":
// when it cannot be sure, the full JSON Schema validator decides, and any
// failure is explained by that validator, so its messages stay the
// authority.
type fastCheck struct {
	types         uint8 // bit set of jsonType; 0 = any
	pattern       *regexp.Regexp
	strEnum       []string
	hasEnum       bool
	minLen        int // -1 = none
	maxLen        int // -1 = none
	min, max      int64
	hasMin        bool
	hasMax        bool
	exMin, exMax  int64
	hasExMin      bool
	hasExMax      bool
	stringKeyword bool // pattern, enum, minLength or maxLength: the value must be a string to be confirmed
}

const (
	tString uint8 = 1 << iota
	tInteger
	tNumber
	tBoolean
	tNull
	tArray
	tObject
)

var typeBits = map[string]uint8{
	"string": tString, "integer": tInteger, "number": tNumber, "boolean": tBoolean,
	"null": tNull, "array": tArray, "object": tObject,
}

// newFastCheck returns a checker for doc, or nil when doc is not simple.
func newFastCheck(doc any) *fastCheck {
	m, ok := doc.(map[string]any)
	if !ok {
		return nil
	}
	fc := &fastCheck{minLen: -1, maxLen: -1}
	for k, v := range m {
		switch k {
		case "description", "title", "examples", "$comment":
		case "type":
			switch v := v.(type) {
			case string:
				b, ok := typeBits[v]
				if !ok {
					return nil
				}
				fc.types |= b
			case []any:
				for _, e := range v {
					s, _ := e.(string)
					b, ok := typeBits[s]
					if !ok {
						return nil
					}
					fc.types |= b
				}
			default:
				return nil
			}
		case "pattern":
			s, ok := v.(string)
			if !ok {
				return nil
			}
			re, err := regexp.Compile(s)
			if err != nil {
				return nil
			}
			fc.pattern, fc.stringKeyword = re, true
		case "enum", "const":
			list, ok := v.([]any)
			if k == "const" {
				list, ok = []any{v}, true
			}
			if !ok || fc.hasEnum {
				return nil
			}
			for _, e := range list {
				s, ok := e.(string)
				if !ok {
					return nil
				}
				fc.strEnum = append(fc.strEnum, s)
			}
			fc.hasEnum, fc.stringKeyword = true, true
		case "minLength", "maxLength":
			n, ok := intOf(v)
			if !ok || n < 0 || n > 1<<31 {
				return nil
			}
			if k == "minLength" {
				fc.minLen = int(n)
			} else {
				fc.maxLen = int(n)
			}
			fc.stringKeyword = true
		case "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum":
			n, ok := intOf(v)
			if !ok {
				return nil
			}
			switch k {
			case "minimum":
				fc.min, fc.hasMin = n, true
			case "maximum":
				fc.max, fc.hasMax = n, true
			case "exclusiveMinimum":
				fc.exMin, fc.hasExMin = n, true
			default:
				fc.exMax, fc.hasExMax = n, true
			}
		default:
			return nil
		}
	}
	return fc
}

func intOf(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	return i, err == nil
}

// valid reports true only when v certainly satisfies the fragment.
func (fc *fastCheck) valid(v any) bool {
	switch v := v.(type) {
	case string:
		if fc.types != 0 && fc.types&tString == 0 {
			return false
		}
		if fc.hasEnum && !slices.Contains(fc.strEnum, v) {
			return false
		}
		if fc.minLen >= 0 || fc.maxLen >= 0 {
			n := utf8.RuneCountInString(v)
			if fc.minLen >= 0 && n < fc.minLen || fc.maxLen >= 0 && n > fc.maxLen {
				return false
			}
		}
		if fc.pattern != nil && !fc.pattern.MatchString(v) {
			return false
		}
		return true // numeric bounds do not apply to strings
	case json.Number:
		if fc.stringKeyword {
			return false
		}
		i, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return false // a fraction, an exponent or a large number: let the validator decide
		}
		if fc.types != 0 && fc.types&(tInteger|tNumber) == 0 {
			return false
		}
		return (!fc.hasMin || i >= fc.min) && (!fc.hasMax || i <= fc.max) &&
			(!fc.hasExMin || i > fc.exMin) && (!fc.hasExMax || i < fc.exMax)
	case bool:
		return !fc.stringKeyword && (fc.types == 0 || fc.types&tBoolean != 0)
	}
	return false
}
