package policy

import (
	"encoding/json"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/message"
)

// fastCheck confirms, without allocating, that a value satisfies a simple
// constraint fragment — one made only of type, pattern, enum or const of
// strings, integer bounds and length bounds. When it cannot be sure, the
// full JSON Schema validator decides. It explains the common failures (a
// string or an integer that breaks its keywords) itself, with exactly the
// reasons the validator's error would give, and leaves every other
// failure to the validator, whose messages stay the authority.
type fastCheck struct {
	types         uint8 // bit set of jsonType; 0 = any
	pattern       *regexp.Regexp
	strEnum       []string
	hasEnum       bool
	isConst       bool   // strEnum is the one value of const
	enumText      string // strEnum as a reason lists it
	minLen        int    // -1 = none
	maxLen        int    // -1 = none
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
			fc.hasEnum, fc.isConst, fc.stringKeyword = true, k == "const", true
			quoted := make([]string, len(fc.strEnum))
			for i, e := range fc.strEnum {
				quoted[i] = quote(e)
			}
			fc.enumText = strings.Join(quoted, ", ")
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

// explain appends to reasons why v fails the fragment, exactly as
// schemaReasons words the validator's error, and reports whether it
// could; where names the argument ("argument \"x\""). It explains a
// string of an allowed type and an integer when the fragment has no string
// keyword; anything else (a wrong type, a fraction, an object) is left to
// the validator. It must be called only for a value valid rejected.
func (fc *fastCheck) explain(reasons []string, where string, v any, pr *message.Printer) ([]string, bool) {
	start := len(reasons)
	switch v := v.(type) {
	case string:
		if fc.types != 0 && fc.types&tString == 0 {
			return reasons, false
		}
		// The validator stops at a failed enum or const; otherwise it
		// reports each failed length and pattern keyword.
		if fc.hasEnum && !slices.Contains(fc.strEnum, v) {
			verb := " is not one of "
			if fc.isConst {
				verb = " is not "
			}
			return append(reasons, joinReason(where, v, verb, fc.enumText)), true
		}
		if fc.minLen >= 0 || fc.maxLen >= 0 {
			n := utf8.RuneCountInString(v)
			if fc.minLen >= 0 && n < fc.minLen {
				reasons = append(reasons, where+": "+(&kind.MinLength{Got: n, Want: fc.minLen}).LocalizedString(pr))
			}
			if fc.maxLen >= 0 && n > fc.maxLen {
				reasons = append(reasons, where+": "+(&kind.MaxLength{Got: n, Want: fc.maxLen}).LocalizedString(pr))
			}
		}
		if fc.pattern != nil && !fc.pattern.MatchString(v) {
			reasons = append(reasons, joinReason(where, v, " does not match ", fc.pattern.String()))
		}
	case json.Number:
		if fc.stringKeyword || fc.types != 0 && fc.types&(tInteger|tNumber) == 0 {
			return reasons, false
		}
		i, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return reasons, false
		}
		rat := func(n int64) *big.Rat { return new(big.Rat).SetInt64(n) }
		if fc.hasMin && i < fc.min {
			reasons = append(reasons, where+": "+(&kind.Minimum{Got: rat(i), Want: rat(fc.min)}).LocalizedString(pr))
		}
		if fc.hasMax && i > fc.max {
			reasons = append(reasons, where+": "+(&kind.Maximum{Got: rat(i), Want: rat(fc.max)}).LocalizedString(pr))
		}
		if fc.hasExMin && i <= fc.exMin {
			reasons = append(reasons, where+": "+(&kind.ExclusiveMinimum{Got: rat(i), Want: rat(fc.exMin)}).LocalizedString(pr))
		}
		if fc.hasExMax && i >= fc.exMax {
			reasons = append(reasons, where+": "+(&kind.ExclusiveMaximum{Got: rat(i), Want: rat(fc.exMax)}).LocalizedString(pr))
		}
	default:
		return reasons, false
	}
	if len(reasons) == start {
		return reasons, false // valid after all: let the validator decide
	}
	slices.Sort(reasons[start:]) // as schemaReasons orders them
	return reasons, true
}

// joinReason returns where + ": " + quote(got) + verb + want in one
// allocation.
func joinReason(where, got, verb, want string) string {
	var b strings.Builder
	b.Grow(len(where) + 2 + quotedLen(got) + len(verb) + len(want))
	b.WriteString(where)
	b.WriteString(": ")
	writeQuoted(&b, got)
	b.WriteString(verb)
	b.WriteString(want)
	return b.String()
}
