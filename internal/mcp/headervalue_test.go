package mcp

import (
	"strings"
	"testing"
)

// The "Encoding examples" table of 2026-07-28 Streamable HTTP, "Value Encoding", followed by
// the values the conformance suite's http-custom-headers scenario sends.
func TestEncodeHeaderValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"spec: plain ASCII", "us-west1", "us-west1"},
		{"spec: contains non-ASCII", "Hello, 世界", "=?base64?SGVsbG8sIOS4lueVjA==?="},
		{"spec: leading/trailing spaces", " padded ", "=?base64?IHBhZGRlZCA=?="},
		{"spec: contains newline", "line1\nline2", "=?base64?bGluZTEKbGluZTI=?="},
		{"spec: matches sentinel pattern", "=?base64?literal?=", "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="},

		{"conformance: empty string stays an empty value", "", ""},
		{"conformance: internal spaces stay plain", "us west 1", "us west 1"},
		{"conformance: leading space only", " us-west1", "=?base64?IHVzLXdlc3Qx?="},
		{"conformance: trailing space only", "us-west1 ", "=?base64?dXMtd2VzdDEg?="},
		{"conformance: CR LF", "line1\r\nline2", "=?base64?bGluZTENCmxpbmUy?="},
		{"conformance: leading tab", "\tindented", "=?base64?CWluZGVudGVk?="},
		{"conformance: hyphenated tool name", "my-hyphenated-tool", "my-hyphenated-tool"},
		{"conformance: URI with percent-encoding", "file:///path/to/file%20name.txt", "file:///path/to/file%20name.txt"},
		{"conformance: URI with query", "https://example.com/resource?id=123", "https://example.com/resource?id=123"},

		{"internal tab is a control character", "a\tb", "=?base64?YQli?="},
		{"DEL is not visible ASCII", "a\x7fb", "=?base64?YX9i?="},
		{"NUL", "\x00", "=?base64?AA==?="},
		{"sentinel prefix alone stays plain", "=?base64?abc", "=?base64?abc"},
		{"sentinel suffix alone stays plain", "abc?=", "abc?="},
		{"overlapping prefix and suffix are encoded too", "=?base64?=", "=?base64?PT9iYXNlNjQ/PQ==?="},
		{"upper-case marker is not the sentinel", "=?BASE64?abc?=", "=?BASE64?abc?="},
		{"every visible ASCII character", "!\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~", "!\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := EncodeHeaderValue(tt.in)
			if got != tt.want {
				t.Errorf("EncodeHeaderValue(%q) = %q, want %q", tt.in, got, tt.want)
			}
			back, err := DecodeHeaderValue(got)
			if err != nil || back != tt.in {
				t.Errorf("DecodeHeaderValue(%q) = %q, %v; want %q", got, back, err, tt.in)
			}
		})
	}
}

// Server-side decoding: the spec's rules plus the conformance suite's
// http-custom-header-server-validation and http-header-validation cases.
func TestDecodeHeaderValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr string // substring; "" means success
	}{
		{"conformance: valid Base64 is decoded", "=?base64?SGVsbG8=?=", "Hello", ""},
		{"conformance: invalid Base64 padding is rejected", "=?base64?SGVsbG8?=", "", "invalid Base64"},
		{"conformance: non-alphabet Base64 characters are rejected", "=?base64?SGVs!!!bG8=?=", "", "invalid Base64"},
		{"conformance: value without prefix is literal", "SGVsbG8=", "SGVsbG8=", ""},
		{"conformance: value without suffix is literal", "=?base64?SGVsbG8=", "=?base64?SGVsbG8=", ""},
		{"conformance: whitespace around a value is not part of it", "  get_weather  ", "get_weather", ""},
		{"spec: encoded non-ASCII", "=?base64?SGVsbG8sIOS4lueVjA==?=", "Hello, 世界", ""},
		{"spec: encoded sentinel-looking literal", "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=", "=?base64?literal?=", ""},
		{"empty value", "", "", ""},
		{"empty Base64 payload", "=?base64??=", "", ""},
		{"overlapping markers are a literal", "=?base64?=", "=?base64?=", ""},
		{"internal tab is a valid field character", "a\tb", "a\tb", ""},
		{"URL-safe alphabet is not Base64 here", "=?base64?_-8=?=", "", "invalid Base64"},
		{"non-canonical trailing bits are rejected", "=?base64?SGVsbG9=?=", "", "invalid Base64"},
		{"space inside the payload is rejected", "=?base64?SGVs bG8=?=", "", "invalid Base64"},
		{"raw UTF-8 bytes are invalid characters", "Hello, 世界", "", "invalid character 0xE4 at offset 7"},
		{"raw control character is invalid", "a\x01b", "", "invalid character 0x01 at offset 1"},
		{"CR LF is invalid", "a\r\nb", "", "invalid character 0x0D"},
		{"payload that is not UTF-8", "=?base64?/w==?=", "", "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeHeaderValue(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("DecodeHeaderValue(%q) = %q, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("DecodeHeaderValue(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParamValueString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw, want, wantErr string
	}{
		{"string as-is", `"us-west1"`, "us-west1", ""},
		{"string with escapes", `"a\u00e9\n"`, "aé\n", ""},
		{"empty string", `""`, "", ""},
		{"true", `true`, "true", ""},
		{"false", `false`, "false", ""},
		{"integer", `42`, "42", ""},
		{"negative integer", `-7`, "-7", ""},
		{"zero", `0`, "0", ""},
		{"negative zero", `-0`, "0", ""},
		{"integral decimal", `42.0`, "42", ""},
		{"integral exponent", `4.2e1`, "42", ""},
		{"integral negative exponent", `420E-1`, "42", ""},
		{"max safe integer", `9007199254740991`, "9007199254740991", ""},
		{"min safe integer", `-9007199254740991`, "-9007199254740991", ""},
		{"surrounding whitespace", " 1 ", "1", ""},
		{"above the safe range", `9007199254740992`, "", "safe range"},
		{"below the safe range", `-9007199254740992`, "", "safe range"},
		{"huge exponent", `1e400`, "", "safe range"},
		{"fraction", `3.14159`, "", "not an integer"},
		{"tiny fraction", `9007199254740990.5`, "", "not an integer"},
		{"null", `null`, "", "null has no header value"},
		{"object", `{"a":1}`, "", "object has no header value"},
		{"array", `[1]`, "", "array has no header value"},
		{"invalid JSON", `"unterminated`, "", "not a single valid JSON value"},
		{"two values", `1 2`, "", "not a single valid JSON value"},
		{"invalid UTF-8 in string", "\"\xff\"", "", "not a single valid JSON value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParamValueString([]byte(tt.raw))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParamValueString(%s) = %q, %v; want error containing %q", tt.raw, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParamValueString(%s) = %q, %v; want %q", tt.raw, got, err, tt.want)
			}
		})
	}
}

func TestSafeIntegerExactness(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"42", 42, true},
		{"42.000", 42, true},
		{"0.42e2", 42, true},
		{"4200e-2", 42, true},
		{"0e999999999999", 0, true},
		{"-0.0", 0, true},
		{"1e-999999999999", 0, false},
		{"9007199254740991.0", MaxSafeInteger, true},
		{"9007199254740991.4", 0, false}, // a float parser rounds this to 2^53-1
		{"90071992547409910e-1", MaxSafeInteger, true},
		{"0.9007199254740991e16", MaxSafeInteger, true},
		{"01", 0, false},
		{"+1", 0, false},
		{"1.", 0, false},
		{".5", 0, false},
		{"1e", 0, false},
		{"0x2A", 0, false},
		{"Infinity", 0, false},
		{"NaN", 0, false},
		{"", 0, false},
		{" 42", 0, false},
	}
	for _, tt := range tests {
		got, err := safeInteger(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("safeInteger(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
