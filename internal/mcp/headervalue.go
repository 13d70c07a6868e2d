package mcp

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// The Base64 sentinel that wraps a header value which is not safe as plain ASCII. The markers
// are case-sensitive.
const (
	base64Prefix = "=?base64?"
	base64Suffix = "?="
)

// MaxSafeInteger is the largest integer an x-mcp-header parameter may carry: 2^53-1, the
// largest integer an IEEE-754 double represents exactly (JavaScript's
// Number.MAX_SAFE_INTEGER). The smallest is its negation.
const MaxSafeInteger = 1<<53 - 1

// EncodeHeaderValue returns s as an Mcp-Name or Mcp-Param-{Name} header value (Streamable
// HTTP, "Value Encoding"). s is used as-is when every byte is visible ASCII or space and it
// neither starts nor ends with a space; otherwise — non-ASCII, control characters (including
// tab, CR and LF), leading or trailing whitespace — it is sent as "=?base64?{Base64 of the
// UTF-8 bytes}?=". A plain value that itself looks like the sentinel (starts with "=?base64?"
// and ends with "?=") is encoded too, so that it cannot be mistaken for an encoded one.
//
// s should be valid UTF-8 (every string decoded from JSON is); [DecodeHeaderValue] rejects
// an encoded value whose bytes are not.
func EncodeHeaderValue(s string) string {
	if !needsBase64(s) {
		return s
	}
	return base64Prefix + base64.StdEncoding.EncodeToString([]byte(s)) + base64Suffix
}

func needsBase64(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == ' ' || s[len(s)-1] == ' ' {
		return true
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return true
		}
	}
	return strings.HasPrefix(s, base64Prefix) && strings.HasSuffix(s, base64Suffix)
}

// isSentinel reports whether v is a complete Base64 sentinel: the prefix and the suffix do not
// overlap ("=?base64?=" is a plain value).
func isSentinel(v string) bool {
	return len(v) >= len(base64Prefix)+len(base64Suffix) &&
		strings.HasPrefix(v, base64Prefix) && strings.HasSuffix(v, base64Suffix)
}

// strict is the Base64 decoding the sentinel uses: the standard alphabet, padding required,
// non-zero trailing bits rejected, so that one value has exactly one encoding.
var strict = base64.StdEncoding.Strict()

// DecodeHeaderValue returns the value an Mcp-Name or Mcp-Param-{Name} header carries. The
// optional whitespace around a field value is not part of it (RFC 9110 §5.5) and is dropped.
// A value wrapped in the Base64 sentinel is decoded; any other value is taken literally
// (a value with only the prefix or only the suffix is a literal).
//
// The error reports a value that is not a valid header value (a character other than visible
// ASCII, space or horizontal tab), an invalid Base64 payload (wrong alphabet, missing or
// wrong padding) or a payload that is not UTF-8. Servers MUST reject such headers.
func DecodeHeaderValue(v string) (string, error) {
	v = trimOWS(v)
	if i := invalidHeaderByte(v); i >= 0 {
		return "", fmt.Errorf("invalid character %s at offset %d", quoteByte(v[i]), i)
	}
	if !isSentinel(v) {
		return v, nil
	}
	payload := v[len(base64Prefix) : len(v)-len(base64Suffix)]
	b, err := strict.DecodeString(payload)
	if err != nil {
		var ce base64.CorruptInputError
		if errors.As(err, &ce) {
			return "", fmt.Errorf("invalid Base64 in sentinel-encoded value at offset %d", len(base64Prefix)+int(ce))
		}
		return "", fmt.Errorf("invalid Base64 in sentinel-encoded value: %w", err)
	}
	if !utf8.Valid(b) {
		return "", errors.New("sentinel-encoded value is not valid UTF-8")
	}
	return string(b), nil
}

// trimOWS removes the optional whitespace (space and horizontal tab) around a field value.
func trimOWS(v string) string {
	return strings.TrimFunc(v, func(r rune) bool { return r == ' ' || r == '\t' })
}

// invalidHeaderByte returns the offset of the first byte of v that may not appear in a header
// field value (RFC 9110 §5.5: visible ASCII, space and horizontal tab), or -1.
func invalidHeaderByte(v string) int {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c > 0x7e {
			return i
		}
	}
	return -1
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("0x%02X", c)
}

// ParamValueString converts the JSON value raw of an x-mcp-header parameter to the string
// form mirrored into its header ("Value Encoding", type conversion): a string as-is, a
// boolean as "true" or "false", an integer as its decimal representation. An integer is any
// JSON number with an integral value (42, 42.0 and 4.2e1 all give "42") within
// ±[MaxSafeInteger]. Other numbers, null, objects and arrays have no header form and give an
// error. The result still needs [EncodeHeaderValue].
func ParamValueString(raw []byte) (string, error) {
	v := jsontext.Value(bytes.TrimSpace(raw))
	if !v.IsValid() {
		return "", errors.New("not a single valid JSON value")
	}
	switch v.Kind() {
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", err
		}
		return s, nil
	case 't':
		return "true", nil
	case 'f':
		return "false", nil
	case '0':
		n, err := safeInteger(string(v))
		if err != nil {
			return "", err
		}
		return strconv.FormatInt(n, 10), nil
	case 'n':
		return "", errors.New("null has no header value (the header is omitted)")
	default:
		return "", fmt.Errorf("a JSON %s has no header value (only strings, integers and booleans do)", kindName(v.Kind()))
	}
}

func kindName(k jsontext.Kind) string {
	switch k {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case '0':
		return "number"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "value"
}

var (
	errNotNumber  = errors.New("not a decimal number")
	errNotInteger = errors.New("not an integer (x-mcp-header parameters cannot be of type number)")
	errUnsafe     = errors.New("integer outside the safe range ±(2^53-1)")
)

// safeInteger parses s, which must follow the JSON number grammar, and returns its value when
// that value is an integer within ±MaxSafeInteger. The comparison is exact: "42.0", "4.2e1"
// and "420e-1" are all 42, and "9007199254740991.5" is not an integer.
func safeInteger(s string) (int64, error) {
	i := 0
	neg := false
	if i < len(s) && s[i] == '-' {
		neg = true
		i++
	}
	intStart := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intPart := s[intStart:i]
	if intPart == "" || (len(intPart) > 1 && intPart[0] == '0') {
		return 0, errNotNumber
	}
	var frac string
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		frac = s[fs:i]
		if frac == "" {
			return 0, errNotNumber
		}
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		expNeg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			expNeg = s[i] == '-'
			i++
		}
		es := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		ed := strings.TrimLeft(s[es:i], "0")
		if es == i {
			return 0, errNotNumber
		}
		if len(ed) > 6 {
			exp = 1_000_000 // far beyond any safe integer; only zero survives
		} else if ed != "" {
			exp, _ = strconv.Atoi(ed)
		}
		if expNeg {
			exp = -exp
		}
	}
	if i != len(s) {
		return 0, errNotNumber
	}

	// value = digits × 10^(exp - len(frac)), with digits stripped of leading zeros.
	digits := strings.TrimLeft(intPart+frac, "0")
	if digits == "" {
		return 0, nil // any spelling of zero, including -0
	}
	exp -= len(frac)
	for exp < 0 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
		exp++
	}
	if exp < 0 {
		return 0, errNotInteger
	}
	if len(digits)+exp > len("9007199254740991") {
		return 0, errUnsafe
	}
	n, err := strconv.ParseInt(digits+strings.Repeat("0", exp), 10, 64)
	if err != nil || n > MaxSafeInteger {
		return 0, errUnsafe
	}
	if neg {
		n = -n
	}
	return n, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
