package mcp

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
)

// Seed corpora live in testdata/fuzz/<FuzzName>; the f.Add seeds below repeat the spec's
// examples so that a plain "go test" runs them too.

// FuzzHeaderValueRoundTrip checks that every UTF-8 string survives EncodeHeaderValue then
// DecodeHeaderValue, and that the encoded form is always a safe header value.
func FuzzHeaderValueRoundTrip(f *testing.F) {
	for _, s := range []string{"us-west1", "Hello, 世界", " padded ", "line1\nline2", "=?base64?literal?=", "", "=?base64?=", "\t", "a\x00b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := EncodeHeaderValue(s)
		if i := invalidHeaderByte(enc); i >= 0 || strings.ContainsRune(enc, '\t') {
			t.Fatalf("EncodeHeaderValue(%q) = %q contains an unsafe byte", s, enc)
		}
		if enc != trimOWS(enc) {
			t.Fatalf("EncodeHeaderValue(%q) = %q has surrounding whitespace", s, enc)
		}
		dec, err := DecodeHeaderValue(enc)
		if !utf8.ValidString(s) {
			if err == nil && dec != s {
				t.Fatalf("invalid UTF-8 %q decoded to a different %q without error", s, dec)
			}
			return
		}
		if err != nil || dec != s {
			t.Fatalf("DecodeHeaderValue(EncodeHeaderValue(%q)) = %q, %v", s, dec, err)
		}
	})
}

// FuzzDecodeHeaderValue checks that decoding arbitrary header values never panics, yields
// UTF-8 for encoded values, and that a decoded value re-encodes to something that decodes to
// it again.
func FuzzDecodeHeaderValue(f *testing.F) {
	for _, s := range []string{"=?base64?SGVsbG8=?=", "=?base64?SGVsbG8?=", "=?base64?SGVs!!!bG8=?=", "SGVsbG8=", "=?base64?SGVsbG8=", "  get_weather  ", "=?base64??=", "=?base64?/w==?="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		dec, err := DecodeHeaderValue(v)
		if err != nil {
			return
		}
		if isSentinel(trimOWS(v)) && !utf8.ValidString(dec) {
			t.Fatalf("DecodeHeaderValue(%q) = %q is not UTF-8", v, dec)
		}
		if !isSentinel(trimOWS(v)) && dec != trimOWS(v) {
			t.Fatalf("plain value %q decoded to %q", v, dec)
		}
		again, err := DecodeHeaderValue(EncodeHeaderValue(dec))
		if err != nil || again != dec {
			t.Fatalf("re-encoding %q: got %q, %v", dec, again, err)
		}
	})
}

// FuzzParamValueString checks that converting arbitrary JSON never panics, and that an
// integer's header form reads back as the same integer.
func FuzzParamValueString(f *testing.F) {
	for _, s := range []string{`"us-west1"`, `42`, `42.0`, `4.2e1`, `-0`, `true`, `null`, `3.14`, `9007199254740992`, `{"a":1}`, `1e999999999`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := ParamValueString(raw)
		if err != nil {
			return
		}
		if k := strings.TrimSpace(string(raw)); k != "" && (k[0] == '-' || isDigit(k[0])) {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n > MaxSafeInteger || n < -MaxSafeInteger {
				t.Fatalf("ParamValueString(%s) = %q, not a safe integer", raw, s)
			}
			if back, err := safeInteger(s); err != nil || back != n {
				t.Fatalf("safeInteger(%q) = %d, %v", s, back, err)
			}
		}
	})
}

// FuzzParamBindings checks that no inputSchema makes ParamBindings panic, and that the
// bindings it accepts obey the specification's constraints.
func FuzzParamBindings(f *testing.F) {
	f.Add([]byte(specExecuteSQLSchema))
	f.Add([]byte(conformanceCustomHeadersSchema))
	f.Add([]byte(`{"properties":{"list":{"type":"array","items":{"type":"string","x-mcp-header":"Item"}}}}`))
	f.Add([]byte(`{"properties":{"a":{"type":"string","x-mcp-header":"A"},"b":{"type":"string","x-mcp-header":"a"}}}`))
	f.Fuzz(func(t *testing.T, schema []byte) {
		bindings, err := ParamBindings(schema)
		if err != nil {
			var ise *InvalidSchemaError
			if !errors.As(err, &ise) || len(ise.Problems) == 0 || len(ise.Problems) > maxReportedProblems {
				t.Fatalf("ParamBindings error %v is not a bounded *InvalidSchemaError", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, b := range bindings {
			if b.Name == "" || strings.IndexFunc(b.Name, func(r rune) bool { return !isTokenChar(r) }) >= 0 {
				t.Fatalf("binding name %q is not a token", b.Name)
			}
			if l := strings.ToLower(b.Name); seen[l] {
				t.Fatalf("binding name %q is not unique", b.Name)
			} else {
				seen[l] = true
			}
			if len(b.Path) == 0 || !isHeaderType(b.Type) {
				t.Fatalf("binding %+v has no path or a non-primitive type", b)
			}
		}
	})
}

// FuzzRequestHeadersAccepted builds a tools/call from fuzzed values, and checks that the
// headers RequestHeaders builds for it are accepted by ValidateRequestHeaders: what a
// conforming client sends, the gateway never rejects. It also feeds the fuzzed strings as raw
// header values to ValidateRequestHeaders, which must not panic.
func FuzzRequestHeadersAccepted(f *testing.F) {
	f.Add("execute_sql", "us-west1", int64(42), true, "Region")
	f.Add("天気", " padded ", int64(-9007199254740991), false, "x")
	f.Add("=?base64?x?=", "line1\r\nline2", int64(0), true, "Region")
	f.Fuzz(func(t *testing.T, name, region string, priority int64, verbose bool, raw string) {
		if !utf8.ValidString(name) || !utf8.ValidString(region) {
			return
		}
		if priority > MaxSafeInteger || priority < -MaxSafeInteger {
			priority %= MaxSafeInteger
		}
		params, err := json.Marshal(map[string]any{
			"name":      name,
			"arguments": map[string]any{"region": region, "priority": priority, "verbose": verbose, "debug": nil},
			"_meta": map[string]any{
				MetaProtocolVersion:    Latest,
				MetaClientCapabilities: map[string]any{},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		bindings, err := ParamBindings([]byte(conformanceCustomHeadersSchema))
		if err != nil {
			t.Fatal(err)
		}
		h, err := RequestHeaders(MethodToolsCall, params, bindings)
		if err != nil {
			t.Fatalf("RequestHeaders: %v", err)
		}
		if err := ValidateRequestHeaders(h, MethodToolsCall, params, bindings); err != nil {
			t.Fatalf("ValidateRequestHeaders rejects what RequestHeaders built: %v\nheaders: %v\nparams: %s", err, h, params)
		}
		// Arbitrary raw header values: any outcome but a panic.
		bad := http.Header{}
		for k, v := range h {
			bad[k] = v
		}
		bad.Set("Mcp-Name", raw)
		bad.Set("Mcp-Param-Region", raw)
		bad.Set("Mcp-Param-Priority", raw)
		_ = ValidateRequestHeaders(bad, MethodToolsCall, params, bindings)
	})
}
