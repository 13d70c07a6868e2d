package mcp

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// modernMeta is the _meta of the spec's request examples (Streamable HTTP, "Standard Request
// Headers").
const modernMeta = `"_meta": {
  "io.modelcontextprotocol/protocolVersion": "2026-07-28",
  "io.modelcontextprotocol/clientInfo": {"name": "ExampleClient", "version": "1.0.0"},
  "io.modelcontextprotocol/clientCapabilities": {}
}`

// withMeta returns the params object with the spec's _meta added to its members.
func withMeta(members string) []byte {
	if members == "" {
		return []byte("{" + modernMeta + "}")
	}
	return []byte("{" + members + "," + modernMeta + "}")
}

// hdr builds a header from name/value pairs, keeping the names exactly as given (as a peer
// that does not canonicalize would), repeating a name appends a value.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h[kv[i]] = append(h[kv[i]], kv[i+1])
	}
	return h
}

// pv is the protocol version header as the specification spells it.
const pv = "MCP-Protocol-Version"

func TestValidateRequestHeaders(t *testing.T) {
	t.Parallel()
	sqlBindings := mustBindings(t, specExecuteSQLSchema)
	customBindings := mustBindings(t, conformanceCustomHeadersSchema)
	nestedBindings := mustBindings(t, `{"properties":{"target":{"type":"object","properties":{"tenant":{"type":"string","x-mcp-header":"Tenant"}}}}}`)
	// The conformance suite's custom-header server cases call a tool whose string parameter
	// "region" carries x-mcp-header "Region".
	region := []ParamBinding{{Path: []string{"region"}, Name: "Region", Type: "string"}}

	tests := []struct {
		name     string
		header   http.Header
		method   string
		params   []byte
		bindings []ParamBinding
		wantCode int64  // 0: accepted
		wantMsg  string // exact message when set
		wantSub  string // substring of the message when set
	}{
		// Spec examples.
		{
			name:   "spec: tools/call example",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "get_weather"),
			method: "tools/call", params: withMeta(`"name":"get_weather","arguments":{"location":"Seattle, WA"}`),
		},
		{
			name:   "spec: resources/read example",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "resources/read", "Mcp-Name", "file:///projects/myapp/config.json"),
			method: "resources/read", params: withMeta(`"uri":"file:///projects/myapp/config.json"`),
		},
		{
			name:   "spec: execute_sql with Mcp-Param-Region",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "execute_sql", "Mcp-Param-Region", "us-west1"),
			method: "tools/call", params: withMeta(`"name":"execute_sql","arguments":{"region":"us-west1","query":"SELECT * FROM users"}`),
			bindings: sqlBindings,
		},
		{
			name:   "spec: error example message",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "foo"),
			method: "tools/call", params: withMeta(`"name":"bar"`),
			wantCode: CodeHeaderMismatch, wantMsg: "Header mismatch: Mcp-Name header value 'foo' does not match body value 'bar'",
		},

		// Conformance http-header-validation (SEP-2243 server standard headers).
		{
			name:   "conformance: ServerRejectsMismatchedMethodHeader",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "prompts/list"),
			method: "tools/list", params: withMeta(""),
			wantCode: CodeHeaderMismatch, wantMsg: "Header mismatch: Mcp-Method header value 'prompts/list' does not match body value 'tools/list'",
		},
		{
			name:   "conformance: ServerRejectsMissingMethodHeader",
			header: hdr(pv, "2026-07-28"),
			method: "tools/list", params: withMeta(""),
			wantCode: CodeHeaderMismatch, wantMsg: "Header mismatch: missing required Mcp-Method header",
		},
		{
			name:   "conformance: ServerRejectsMismatchedNameHeader",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "wrong_tool_name"),
			method: "tools/call", params: withMeta(`"name":"test_simple_text","arguments":{}`),
			wantCode: CodeHeaderMismatch, wantMsg: "Header mismatch: Mcp-Name header value 'wrong_tool_name' does not match body value 'test_simple_text'",
		},
		{
			name:   "conformance: ServerAcceptsWhitespaceHeaderValue",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "  test_simple_text  "),
			method: "tools/call", params: withMeta(`"name":"test_simple_text","arguments":{}`),
		},
		{
			name:   "conformance: ServerRejectsMissingNameHeader",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call"),
			method: "tools/call", params: withMeta(`"name":"test_simple_text","arguments":{}`),
			wantCode: CodeHeaderMismatch, wantMsg: "Header mismatch: missing required Mcp-Name header for tools/call",
		},
		{
			name:   "conformance: ServerAcceptsLowercaseHeaderName",
			header: hdr("mcp-protocol-version", "2026-07-28", "mcp-method", "tools/list"),
			method: "tools/list", params: withMeta(""),
		},
		{
			name:   "conformance: ServerAcceptsUppercaseHeaderName",
			header: hdr("MCP-PROTOCOL-VERSION", "2026-07-28", "MCP-METHOD", "tools/list"),
			method: "tools/list", params: withMeta(""),
		},
		{
			name:   "conformance: ServerRejectsCaseMismatchValue",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "TOOLS/LIST"),
			method: "tools/list", params: withMeta(""),
			wantCode: CodeHeaderMismatch, wantMsg: "Header mismatch: Mcp-Method header value 'TOOLS/LIST' does not match body value 'tools/list'",
		},

		// Conformance http-custom-header-server-validation.
		{
			name:   "conformance: ServerAcceptsValidBase64",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "t", "Mcp-Param-Region", "=?base64?SGVsbG8=?="),
			method: "tools/call", params: withMeta(`"name":"t","arguments":{"region":"Hello"}`), bindings: region,
		},
		{
			name:   "conformance: ServerRejectsInvalidBase64Padding",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "t", "Mcp-Param-Region", "=?base64?SGVsbG8?="),
			method: "tools/call", params: withMeta(`"name":"t","arguments":{"region":"Hello"}`), bindings: region,
			wantCode: CodeHeaderMismatch, wantSub: "Mcp-Param-Region header value is malformed: invalid Base64",
		},
		{
			name:   "conformance: ServerRejectsInvalidBase64Chars",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "t", "Mcp-Param-Region", "=?base64?SGVs!!!bG8=?="),
			method: "tools/call", params: withMeta(`"name":"t","arguments":{"region":"Hello"}`), bindings: region,
			wantCode: CodeHeaderMismatch, wantSub: "invalid Base64",
		},
		{
			name:   "conformance: ServerLiteralMissingBase64Prefix",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "t", "Mcp-Param-Region", "SGVsbG8="),
			method: "tools/call", params: withMeta(`"name":"t","arguments":{"region":"SGVsbG8="}`), bindings: region,
		},
		{
			name:   "conformance: ServerLiteralMissingBase64Suffix",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "t", "Mcp-Param-Region", "=?base64?SGVsbG8="),
			method: "tools/call", params: withMeta(`"name":"t","arguments":{"region":"=?base64?SGVsbG8="}`), bindings: region,
		},
		{
			name:   "conformance: ServerRejectsMissingCustomHeader",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "t"),
			method: "tools/call", params: withMeta(`"name":"t","arguments":{"region":"test-value"}`), bindings: region,
			wantCode: CodeHeaderMismatch, wantMsg: "Header mismatch: missing Mcp-Param-Region header for arguments.region",
		},

		// Protocol version and _meta.
		{
			name:   "missing MCP-Protocol-Version",
			header: hdr("Mcp-Method", "tools/list"),
			method: "tools/list", params: withMeta(""),
			wantCode: CodeHeaderMismatch, wantMsg: "Header mismatch: missing required MCP-Protocol-Version header",
		},
		{
			name:   "missing _meta",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/list"),
			method: "tools/list", params: []byte(`{}`),
			wantCode: CodeInvalidParams, wantMsg: `missing required _meta fields "io.modelcontextprotocol/protocolVersion", "io.modelcontextprotocol/clientCapabilities"`,
		},
		{
			name:   "absent params",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/list"),
			method: "tools/list", params: nil,
			wantCode: CodeInvalidParams, wantSub: "missing required _meta fields",
		},
		{
			name:   "missing clientCapabilities",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/list"),
			method: "tools/list", params: []byte(`{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}`),
			wantCode: CodeInvalidParams, wantMsg: `missing required _meta field "io.modelcontextprotocol/clientCapabilities"`,
		},
		{
			name:   "protocolVersion not a string",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/list"),
			method: "tools/list", params: []byte(`{"_meta":{"io.modelcontextprotocol/protocolVersion":20260728,"io.modelcontextprotocol/clientCapabilities":{}}}`),
			wantCode: CodeInvalidParams, wantMsg: `_meta "io.modelcontextprotocol/protocolVersion" must be a string`,
		},
		{
			name:   "_meta keys are case-sensitive",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/list"),
			method: "tools/list", params: []byte(`{"_meta":{"io.modelcontextprotocol/ProtocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}`),
			wantCode: CodeInvalidParams, wantSub: `missing required _meta field "io.modelcontextprotocol/protocolVersion"`,
		},
		{
			name:   "duplicate _meta key",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/list"),
			method: "tools/list", params: []byte(`{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/protocolVersion":"2025-11-25","io.modelcontextprotocol/clientCapabilities":{}}}`),
			wantCode: CodeInvalidParams, wantSub: "duplicate",
		},
		{
			name:   "header does not match _meta",
			header: hdr(pv, "2025-11-25", "Mcp-Method", "tools/list"),
			method: "tools/list", params: withMeta(""),
			wantCode: CodeHeaderMismatch, wantMsg: "Header mismatch: MCP-Protocol-Version header value '2025-11-25' does not match body value '2026-07-28'",
		},
		{
			name:   "unknown version",
			header: hdr(pv, "1900-01-01", "Mcp-Method", "tools/list"),
			method: "tools/list", params: []byte(`{"_meta":{"io.modelcontextprotocol/protocolVersion":"1900-01-01","io.modelcontextprotocol/clientCapabilities":{}}}`),
			wantCode: CodeUnsupportedProtocolVersion, wantMsg: "Unsupported protocol version '1900-01-01' (supported: 2026-07-28, 2025-11-25, 2025-06-18, 2025-03-26)",
		},
		{
			name:   "legacy version in per-request _meta",
			header: hdr(pv, "2025-11-25", "Mcp-Method", "tools/list"),
			method: "tools/list", params: []byte(`{"_meta":{"io.modelcontextprotocol/protocolVersion":"2025-11-25","io.modelcontextprotocol/clientCapabilities":{}}}`),
			wantCode: CodeUnsupportedProtocolVersion, wantSub: "Unsupported protocol version '2025-11-25'",
		},
		{
			name:   "two MCP-Protocol-Version field lines",
			header: hdr(pv, "2026-07-28", "mcp-protocol-version", "2026-07-28", "Mcp-Method", "tools/list"),
			method: "tools/list", params: withMeta(""),
			wantCode: CodeHeaderMismatch, wantMsg: "Header mismatch: 2 MCP-Protocol-Version header field lines where one is allowed",
		},

		// Mcp-Method and Mcp-Name edge cases.
		{
			name:   "two Mcp-Method field lines",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/list", "Mcp-Method", "tools/call"),
			method: "tools/list", params: withMeta(""),
			wantCode: CodeHeaderMismatch, wantSub: "2 Mcp-Method header field lines",
		},
		{
			name:   "comma-joined Mcp-Method",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/list, tools/call"),
			method: "tools/list", params: withMeta(""),
			wantCode: CodeHeaderMismatch, wantSub: "does not match body value 'tools/list'",
		},
		{
			name:   "raw UTF-8 in Mcp-Method",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/lïst"),
			method: "tools/lïst", params: withMeta(""),
			wantCode: CodeHeaderMismatch, wantMsg: "Header mismatch: Mcp-Method header value contains invalid character 0xC3 at offset 7",
		},
		{
			name:   "Base64-encoded Mcp-Name for a non-ASCII tool name",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", EncodeHeaderValue("天気")),
			method: "tools/call", params: withMeta(`"name":"天気"`),
		},
		{
			name:   "raw UTF-8 Mcp-Name",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "天気"),
			method: "tools/call", params: withMeta(`"name":"天気"`),
			wantCode: CodeHeaderMismatch, wantSub: "Mcp-Name header value is malformed: invalid character 0xE5",
		},
		{
			name:   "sentinel-looking tool name sent plain is decoded, then mismatches",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "=?base64?YWRtaW4=?="),
			method: "tools/call", params: withMeta(`"name":"=?base64?YWRtaW4=?="`),
			wantCode: CodeHeaderMismatch, wantMsg: "Header mismatch: Mcp-Name header value 'admin' does not match body value '=?base64?YWRtaW4=?='",
		},
		{
			name:   "prompts/get name",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "prompts/get", "Mcp-Name", "code_review"),
			method: "prompts/get", params: withMeta(`"name":"code_review","arguments":{"code":"x"}`),
		},
		{
			name:   "resources/read checks uri, not name",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "resources/read", "Mcp-Name", "file:///a"),
			method: "resources/read", params: withMeta(`"name":"file:///a","uri":"file:///b"`),
			wantCode: CodeHeaderMismatch, wantSub: "'file:///a' does not match body value 'file:///b'",
		},
		{
			name:   "tasks extension: tasks/get taskId",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tasks/get", "Mcp-Name", "786512e2-9e0d-44bd-8f29-789f320fe840"),
			method: "tasks/get", params: withMeta(`"taskId":"786512e2-9e0d-44bd-8f29-789f320fe840"`),
		},
		{
			name:   "tasks extension: tasks/cancel without Mcp-Name",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tasks/cancel"),
			method: "tasks/cancel", params: withMeta(`"taskId":"t1"`),
			wantCode: CodeHeaderMismatch, wantMsg: "Header mismatch: missing required Mcp-Name header for tasks/cancel",
		},
		{
			name:   "tools/call without a name",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "x"),
			method: "tools/call", params: withMeta(`"arguments":{}`),
			wantCode: CodeInvalidParams, wantMsg: "params.name of tools/call must be a string",
		},
		{
			name:   "Mcp-Name on a method without a name is not checked",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/list", "Mcp-Name", "whatever"),
			method: "tools/list", params: withMeta(""),
		},
		{
			name:   "long mismatched values are truncated and escaped in the message",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", EncodeHeaderValue("a\x00"+strings.Repeat("b", 300))),
			method: "tools/call", params: withMeta(`"name":"c"`),
			wantCode: CodeHeaderMismatch, wantMsg: `Header mismatch: Mcp-Name header value 'a\x00` + strings.Repeat("b", 126) + `...' does not match body value 'c'`,
		},

		// Mcp-Param-{Name}.
		{
			name:   "conformance call: every annotated parameter mirrored",
			header: conformanceCustomHeaders(),
			method: "tools/call", params: withMeta(conformanceCustomArgs), bindings: customBindings,
		},
		{
			name:   "integer compared numerically",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "test_custom_headers", "Mcp-Param-Priority", "42.0"),
			method: "tools/call", params: withMeta(`"name":"test_custom_headers","arguments":{"priority":42}`), bindings: customBindings,
		},
		{
			name:   "integer body in exponent form",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "test_custom_headers", "Mcp-Param-Priority", "42"),
			method: "tools/call", params: withMeta(`"name":"test_custom_headers","arguments":{"priority":4.2e1}`), bindings: customBindings,
		},
		{
			name:   "integer mismatch",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "test_custom_headers", "Mcp-Param-Priority", "43"),
			method: "tools/call", params: withMeta(`"name":"test_custom_headers","arguments":{"priority":42}`), bindings: customBindings,
			wantCode: CodeHeaderMismatch, wantMsg: "Header mismatch: Mcp-Param-Priority header value '43' does not match body value '42'",
		},
		{
			name:   "integer header that is not a number",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "test_custom_headers", "Mcp-Param-Priority", "0x2A"),
			method: "tools/call", params: withMeta(`"name":"test_custom_headers","arguments":{"priority":42}`), bindings: customBindings,
			wantCode: CodeHeaderMismatch, wantSub: "'0x2A' does not match body value '42'",
		},
		{
			name:   "integer beyond the safe range in the body",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "test_custom_headers", "Mcp-Param-Priority", "9007199254740992"),
			method: "tools/call", params: withMeta(`"name":"test_custom_headers","arguments":{"priority":9007199254740992}`), bindings: customBindings,
			wantCode: CodeInvalidParams, wantSub: "arguments.priority cannot be mirrored into the Mcp-Param-Priority header: integer outside the safe range",
		},
		{
			name:   "fractional number in the body",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "test_custom_headers"),
			method: "tools/call", params: withMeta(`"name":"test_custom_headers","arguments":{"priority":1.5}`), bindings: customBindings,
			wantCode: CodeInvalidParams, wantSub: "not an integer",
		},
		{
			name:   "object in the body",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "test_custom_headers", "Mcp-Param-Region", "x"),
			method: "tools/call", params: withMeta(`"name":"test_custom_headers","arguments":{"region":{"x":1}}`), bindings: customBindings,
			wantCode: CodeInvalidParams, wantSub: "a JSON object has no header value",
		},
		{
			name:   "boolean values are case-sensitive",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "test_custom_headers", "Mcp-Param-Verbose", "False"),
			method: "tools/call", params: withMeta(`"name":"test_custom_headers","arguments":{"verbose":false}`), bindings: customBindings,
			wantCode: CodeHeaderMismatch, wantMsg: "Header mismatch: Mcp-Param-Verbose header value 'False' does not match body value 'false'",
		},
		{
			name:   "conformance: null parameter, header omitted",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "test_custom_headers_null", "Mcp-Param-Region", "us-east1", "Mcp-Param-Priority", "1"),
			method: "tools/call", params: withMeta(`"name":"test_custom_headers_null","arguments":{"region":"us-east1","priority":1,"verbose":null,"query":"SELECT 1"}`), bindings: customBindings,
		},
		{
			name:   "null parameter with a header",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "t", "Mcp-Param-Verbose", "true"),
			method: "tools/call", params: withMeta(`"name":"t","arguments":{"verbose":null}`), bindings: customBindings,
			wantCode: CodeHeaderMismatch, wantMsg: "Header mismatch: unexpected Mcp-Param-Verbose header: arguments.verbose is absent or null",
		},
		{
			name:   "absent parameter with a header",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "t", "Mcp-Param-Region", "eu"),
			method: "tools/call", params: withMeta(`"name":"t"`), bindings: region,
			wantCode: CodeHeaderMismatch, wantSub: "unexpected Mcp-Param-Region header",
		},
		{
			name:   "empty string needs a present, empty header",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "t", "Mcp-Param-Region", ""),
			method: "tools/call", params: withMeta(`"name":"t","arguments":{"region":""}`), bindings: region,
		},
		{
			name:   "empty string without header",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "t"),
			method: "tools/call", params: withMeta(`"name":"t","arguments":{"region":""}`), bindings: region,
			wantCode: CodeHeaderMismatch, wantSub: "missing Mcp-Param-Region header",
		},
		{
			name:   "param header names are case-insensitive",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "t", "mcp-param-REGION", "eu"),
			method: "tools/call", params: withMeta(`"name":"t","arguments":{"region":"eu"}`), bindings: region,
		},
		{
			name:   "two Mcp-Param field lines",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "t", "Mcp-Param-Region", "eu", "Mcp-Param-Region", "us"),
			method: "tools/call", params: withMeta(`"name":"t","arguments":{"region":"eu"}`), bindings: region,
			wantCode: CodeHeaderMismatch, wantSub: "2 Mcp-Param-Region header field lines",
		},
		{
			name:   "raw UTF-8 in Mcp-Param",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "t", "Mcp-Param-Region", "é"),
			method: "tools/call", params: withMeta(`"name":"t","arguments":{"region":"é"}`), bindings: region,
			wantCode: CodeHeaderMismatch, wantSub: "Mcp-Param-Region header value is malformed: invalid character 0xC3 at offset 0",
		},
		{
			name:   "nested parameter",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "t", "Mcp-Param-Tenant", "acme"),
			method: "tools/call", params: withMeta(`"name":"t","arguments":{"target":{"tenant":"acme"}}`), bindings: nestedBindings,
		},
		{
			name:   "nested parameter mismatch",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "t", "Mcp-Param-Tenant", "acme"),
			method: "tools/call", params: withMeta(`"name":"t","arguments":{"target":{"tenant":"evil"}}`), bindings: nestedBindings,
			wantCode: CodeHeaderMismatch, wantMsg: "Header mismatch: Mcp-Param-Tenant header value 'acme' does not match body value 'evil'",
		},
		{
			name:   "nested parameter under a non-object is absent",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "t"),
			method: "tools/call", params: withMeta(`"name":"t","arguments":{"target":"acme"}`), bindings: nestedBindings,
		},
		{
			name:   "unrecognized Mcp-Param headers are ignored",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "t", "Mcp-Param-Other", "x"),
			method: "tools/call", params: withMeta(`"name":"t","arguments":{}`),
		},
		{
			name:   "bindings only apply to tools/call",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "prompts/get", "Mcp-Name", "t"),
			method: "prompts/get", params: withMeta(`"name":"t","arguments":{"region":"eu"}`), bindings: region,
		},
		{
			name:   "argument names are case-sensitive",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "t", "Mcp-Param-Region", "eu"),
			method: "tools/call", params: withMeta(`"name":"t","arguments":{"Region":"eu"}`), bindings: region,
			wantCode: CodeHeaderMismatch, wantSub: "unexpected Mcp-Param-Region header",
		},
		{
			name:   "escaped member names are unescaped before matching",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "get_weather"),
			method: "tools/call", params: withMeta(`"n\u0061me":"get_weather"`),
		},
		{
			name:   "a name given twice, once escaped, is a duplicate",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "get_weather"),
			method: "tools/call", params: withMeta(`"name":"get_weather","n\u0061me":"delete_all"`),
			wantCode: CodeInvalidParams, wantSub: "duplicate",
		},
		{
			name:   "escaped argument names are unescaped before matching",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "t", "Mcp-Param-Region", "eu"),
			method: "tools/call", params: withMeta(`"name":"t","arguments":{"r\u0065gion":"eu"}`), bindings: region,
		},
		{
			name:   "duplicate argument names are rejected",
			header: hdr(pv, "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "t", "Mcp-Param-Region", "eu"),
			method: "tools/call", params: withMeta(`"name":"t","arguments":{"region":"eu","region":"us"}`), bindings: region,
			wantCode: CodeInvalidParams, wantSub: "params must be a JSON object",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateRequestHeaders(tt.header, tt.method, tt.params, tt.bindings)
			if tt.wantCode == 0 {
				if err != nil {
					t.Fatalf("ValidateRequestHeaders = %v, want nil", err)
				}
				return
			}
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("ValidateRequestHeaders = %v, want a *ProtocolError", err)
			}
			if pe.Code != tt.wantCode {
				t.Errorf("code = %d, want %d (message %q)", pe.Code, tt.wantCode, pe.Message)
			}
			if pe.HTTPStatus() != http.StatusBadRequest {
				t.Errorf("HTTPStatus() = %d, want 400", pe.HTTPStatus())
			}
			if tt.wantMsg != "" && pe.Message != tt.wantMsg {
				t.Errorf("message = %q\nwant      %q", pe.Message, tt.wantMsg)
			}
			if tt.wantSub != "" && !strings.Contains(pe.Message, tt.wantSub) {
				t.Errorf("message = %q\nwant it to contain %q", pe.Message, tt.wantSub)
			}
		})
	}
}

func TestUnsupportedVersionErrorData(t *testing.T) {
	t.Parallel()
	params := []byte(`{"_meta":{"io.modelcontextprotocol/protocolVersion":"1900-01-01","io.modelcontextprotocol/clientCapabilities":{}}}`)
	err := ValidateRequestHeaders(hdr(pv, "1900-01-01", "Mcp-Method", "tools/list"), "tools/list", params, nil)
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Code != CodeUnsupportedProtocolVersion {
		t.Fatalf("err = %v, want an UnsupportedProtocolVersion *ProtocolError", err)
	}
	want := `{"supported":["2026-07-28","2025-11-25","2025-06-18","2025-03-26"],"requested":"1900-01-01"}`
	if got := string(pe.Data()); got != want {
		t.Errorf("Data() = %s\nwant     %s", got, want)
	}
	// What a client does with it: read it back and pick a version.
	supported, requested, err := ParseUnsupportedVersionData(pe.Data())
	if err != nil || requested != "1900-01-01" {
		t.Fatalf("ParseUnsupportedVersionData = %v, %q, %v", supported, requested, err)
	}
	if got, ok := Negotiate(supported, SupportedModern()); !ok || got != Version20260728 {
		t.Errorf("Negotiate = %q, %v; want 2026-07-28", got, ok)
	}
	if (&ProtocolError{Code: CodeHeaderMismatch}).Data() != nil {
		t.Errorf("HeaderMismatch error has data")
	}
}

// conformanceCustomArgs are the arguments the conformance suite's http-custom-headers
// scenario calls test_custom_headers with.
const conformanceCustomArgs = `"name":"test_custom_headers","arguments":{"region":"us-west1","priority":42,"verbose":false,"debug":true,
  "empty_val":"","method_val":"test-method","float_val":3.14159,"non_ascii_val":"Hello, 世界",
  "whitespace_val":" padded ","leading_space_val":" us-west1","trailing_space_val":"us-west1 ",
  "internal_space_val":"us west 1","control_char_val":"line1\nline2","crlf_val":"line1\r\nline2",
  "tab_val":"\tindented","query":"SELECT * FROM users"}`

// conformanceCustomHeaders are the headers a conforming client sends for that call.
func conformanceCustomHeaders() http.Header {
	return http.Header{
		"Mcp-Protocol-Version":    {"2026-07-28"},
		"Mcp-Method":              {"tools/call"},
		"Mcp-Name":                {"test_custom_headers"},
		"Mcp-Param-Region":        {"us-west1"},
		"Mcp-Param-Priority":      {"42"},
		"Mcp-Param-Verbose":       {"false"},
		"Mcp-Param-Debug":         {"true"},
		"Mcp-Param-Emptyval":      {""},
		"Mcp-Param-Method":        {"test-method"},
		"Mcp-Param-Nonascii":      {"=?base64?SGVsbG8sIOS4lueVjA==?="},
		"Mcp-Param-Whitespace":    {"=?base64?IHBhZGRlZCA=?="},
		"Mcp-Param-Leadingspace":  {"=?base64?IHVzLXdlc3Qx?="},
		"Mcp-Param-Trailingspace": {"=?base64?dXMtd2VzdDEg?="},
		"Mcp-Param-Internalspace": {"us west 1"},
		"Mcp-Param-Controlchar":   {"=?base64?bGluZTEKbGluZTI=?="},
		"Mcp-Param-Crlf":          {"=?base64?bGluZTENCmxpbmUy?="},
		"Mcp-Param-Tab":           {"=?base64?CWluZGVudGVk?="},
	}
}

func TestRequestHeaders(t *testing.T) {
	t.Parallel()
	customBindings := mustBindings(t, conformanceCustomHeadersSchema)
	tests := []struct {
		name     string
		method   string
		params   []byte
		bindings []ParamBinding
		want     http.Header
		wantErr  string
	}{
		{
			name:   "spec: execute_sql",
			method: "tools/call", params: withMeta(`"name":"execute_sql","arguments":{"region":"us-west1","query":"SELECT * FROM users"}`),
			bindings: mustBindings(t, specExecuteSQLSchema),
			want: http.Header{
				"Mcp-Protocol-Version": {"2026-07-28"},
				"Mcp-Method":           {"tools/call"},
				"Mcp-Name":             {"execute_sql"},
				"Mcp-Param-Region":     {"us-west1"},
			},
		},
		{
			name:   "spec: resources/read",
			method: "resources/read", params: withMeta(`"uri":"file:///projects/myapp/config.json"`),
			want: http.Header{
				"Mcp-Protocol-Version": {"2026-07-28"},
				"Mcp-Method":           {"resources/read"},
				"Mcp-Name":             {"file:///projects/myapp/config.json"},
			},
		},
		{
			name:   "conformance http-standard-headers: tools/list has no Mcp-Name",
			method: "tools/list", params: withMeta(""),
			want: http.Header{"Mcp-Protocol-Version": {"2026-07-28"}, "Mcp-Method": {"tools/list"}},
		},
		{
			name:   "conformance http-standard-headers: prompts/get",
			method: "prompts/get", params: withMeta(`"name":"test_prompt"`),
			want: http.Header{"Mcp-Protocol-Version": {"2026-07-28"}, "Mcp-Method": {"prompts/get"}, "Mcp-Name": {"test_prompt"}},
		},
		{
			name:   "conformance http-custom-headers: test_custom_headers",
			method: "tools/call", params: withMeta(conformanceCustomArgs), bindings: customBindings,
			want: conformanceCustomHeaders(),
		},
		{
			name:   "conformance http-custom-headers: null parameter omitted",
			method: "tools/call", params: withMeta(`"name":"test_custom_headers_null","arguments":{"region":"us-east1","priority":1,"verbose":null,"query":"SELECT 1"}`),
			bindings: customBindings,
			want: http.Header{
				"Mcp-Protocol-Version": {"2026-07-28"},
				"Mcp-Method":           {"tools/call"},
				"Mcp-Name":             {"test_custom_headers_null"},
				"Mcp-Param-Region":     {"us-east1"},
				"Mcp-Param-Priority":   {"1"},
			},
		},
		{
			name:   "non-ASCII tool name is encoded",
			method: "tools/call", params: withMeta(`"name":"天気"`),
			want: http.Header{"Mcp-Protocol-Version": {"2026-07-28"}, "Mcp-Method": {"tools/call"}, "Mcp-Name": {"=?base64?5aSp5rCX?="}},
		},
		{
			name:   "tasks extension: taskId",
			method: "tasks/update", params: withMeta(`"taskId":"t-1","inputResponses":{}`),
			want: http.Header{"Mcp-Protocol-Version": {"2026-07-28"}, "Mcp-Method": {"tasks/update"}, "Mcp-Name": {"t-1"}},
		},
		{
			name:   "missing _meta",
			method: "tools/list", params: []byte(`{}`),
			wantErr: `build tools/list headers: missing required _meta fields`,
		},
		{
			name:   "missing name",
			method: "tools/call", params: withMeta(`"arguments":{}`),
			wantErr: `build tools/call headers: params.name must be a string`,
		},
		{
			name:   "fractional argument",
			method: "tools/call", params: withMeta(`"name":"t","arguments":{"priority":0.5}`), bindings: customBindings,
			wantErr: `arguments.priority cannot be mirrored into the Mcp-Param-Priority header: not an integer`,
		},
		{
			name:   "method that is not header-safe",
			method: "tools/call\n", params: withMeta(""),
			wantErr: `cannot be sent as a header value`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := RequestHeaders(tt.method, tt.params, tt.bindings)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("RequestHeaders = %v, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("RequestHeaders: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
			// What the client sends, the server accepts.
			if err := ValidateRequestHeaders(got, tt.method, tt.params, tt.bindings); err != nil {
				t.Errorf("ValidateRequestHeaders rejects the headers RequestHeaders built: %v", err)
			}
		})
	}
}

func TestRequestEra(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		header http.Header
		method string
		params string
		want   Era
	}{
		{"initialize", hdr(pv, "2026-07-28"), "initialize", `{"protocolVersion":"2025-11-25"}`, EraLegacy},
		{"modern _meta", nil, "tools/list", string(withMeta("")), EraModern},
		{"legacy version in _meta is still a modern-shaped request", nil, "tools/list", `{"_meta":{"io.modelcontextprotocol/protocolVersion":"2025-11-25"}}`, EraModern},
		{"modern header without _meta", hdr("mcp-protocol-version", " 2026-07-28 "), "tools/list", `{}`, EraModern},
		{"legacy header", hdr(pv, "2025-11-25", "Mcp-Session-Id", "abc"), "tools/list", `{}`, EraLegacy},
		{"no header, no _meta", nil, "tools/list", ``, EraLegacy},
		{"unknown future header", hdr(pv, "2099-01-01"), "tools/list", `{}`, EraLegacy},
		{"_meta without protocolVersion", nil, "tools/call", `{"name":"x","_meta":{"progressToken":1}}`, EraLegacy},
		{"unreadable params", nil, "tools/list", `[`, EraLegacy},
	}
	for _, tt := range tests {
		if got := RequestEra(tt.header, tt.method, []byte(tt.params)); got != tt.want {
			t.Errorf("%s: RequestEra = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestParseRequestMeta(t *testing.T) {
	t.Parallel()
	got, err := ParseRequestMeta([]byte(`{"_meta":{
		"io.modelcontextprotocol/protocolVersion":"2026-07-28",
		"io.modelcontextprotocol/clientCapabilities":{"elicitation":{}},
		"io.modelcontextprotocol/clientInfo":{"name":"c","version":"1"},
		"io.modelcontextprotocol/logLevel":"debug",
		"traceparent":"00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01"}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := RequestMeta{
		ProtocolVersion:    "2026-07-28",
		ClientCapabilities: []byte(`{"elicitation":{}}`),
		ClientInfo:         []byte(`{"name":"c","version":"1"}`),
		LogLevel:           "debug",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RequestMeta (-want +got):\n%s", diff)
	}
	for _, bad := range []string{
		`{"_meta":[]}`,
		`{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":[]}}`,
		`{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":"c"}}`,
		`{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/logLevel":3}}`,
		`"params"`,
		`{} {}`,
	} {
		var pe *ProtocolError
		if _, err := ParseRequestMeta([]byte(bad)); !errors.As(err, &pe) || pe.Code != CodeInvalidParams {
			t.Errorf("ParseRequestMeta(%s) = %v, want an Invalid params *ProtocolError", bad, err)
		}
	}
}

func mustBindings(t *testing.T, schema string) []ParamBinding {
	t.Helper()
	b, err := ParamBindings([]byte(schema))
	if err != nil {
		t.Fatalf("ParamBindings: %v", err)
	}
	return b
}
