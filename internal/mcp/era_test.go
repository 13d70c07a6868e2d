package mcp

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestIsModernError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		body   string
		want   bool
	}{
		{"spec: UnsupportedProtocolVersion example", 400,
			`{"jsonrpc":"2.0","id":1,"error":{"code":-32022,"message":"Unsupported protocol version","data":{"supported":["2026-07-28","2025-11-25"],"requested":"1900-01-01"}}}`, true},
		{"spec: HeaderMismatch example", 400,
			`{"jsonrpc":"2.0","id":1,"error":{"code":-32020,"message":"Header mismatch: Mcp-Name header value 'foo' does not match body value 'bar'"}}`, true},
		{"MissingRequiredClientCapability", 400,
			`{"jsonrpc":"2.0","id":1,"error":{"code":-32021,"message":"Missing required client capability","data":{"requiredCapabilities":{"elicitation":{}}}}}`, true},
		{"modern unknown method", 404, `{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found"}}`, true},
		{"go-sdk stateful server: -32022 listing legacy versions only", 400,
			`{"jsonrpc":"2.0","id":1,"error":{"code":-32022,"message":"protocol version \"2026-07-28\" is not supported by this server","data":{"supported":["2025-11-25","2025-06-18","2025-03-26","2024-11-05"],"requested":"2026-07-28"}}}`, true},
		{"id null and whitespace", 400, " \n{\"error\":{\"code\":-32022,\"message\":\"x\"},\"id\":null,\"jsonrpc\":\"2.0\"}\n", true},

		{"TypeScript SDK legacy server: unsupported version", 400,
			`{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: Unsupported protocol version: 2026-07-28 (supported versions: 2025-11-25, 2025-06-18)"},"id":null}`, false},
		{"TypeScript SDK legacy server: session required", 400,
			`{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: Mcp-Session-Id header is required"},"id":null}`, false},
		{"TypeScript SDK legacy server: session not found", 404,
			`{"jsonrpc":"2.0","error":{"code":-32001,"message":"Session not found"},"id":null}`, false},
		{"Invalid params is ambiguous", 400, `{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"Invalid params"}}`, false},
		{"Method not found on 400", 400, `{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found"}}`, false},
		{"modern code on 404", 404, `{"jsonrpc":"2.0","id":1,"error":{"code":-32022,"message":"x"}}`, false},
		{"modern code on 200", 200, `{"jsonrpc":"2.0","id":1,"error":{"code":-32022,"message":"x"}}`, false},
		{"405 from a server without POST", 405, `Method Not Allowed`, false},
		{"empty body", 400, ``, false},
		{"plain-text body", 400, "Bad Request: session ID required\n", false},
		{"HTML 404", 404, `<html><body>Not Found</body></html>`, false},
		{"code as a float", 400, `{"jsonrpc":"2.0","id":1,"error":{"code":-32022.0,"message":"x"}}`, false},
		{"code as a string", 400, `{"jsonrpc":"2.0","id":1,"error":{"code":"-32022","message":"x"}}`, false},
		{"duplicate error member", 400, `{"error":{"code":-32000},"error":{"code":-32022}}`, false},
		{"result, not error", 400, `{"jsonrpc":"2.0","id":1,"result":{}}`, false},
		{"two JSON values", 400, `{"error":{"code":-32022}} {}`, false},
	}
	for _, tt := range tests {
		if got := IsModernError(tt.status, []byte(tt.body)); got != tt.want {
			t.Errorf("%s: IsModernError(%d, ...) = %v, want %v", tt.name, tt.status, got, tt.want)
		}
	}
	// The versions to retry with come along.
	got := ClassifyHTTPError(400, []byte(`{"jsonrpc":"2.0","id":1,"error":{"code":-32022,"message":"Unsupported protocol version","data":{"supported":["2025-11-25","2025-06-18"],"requested":"2026-07-28"}}}`))
	if diff := cmp.Diff(ProbeResult{Modern: true, Supported: []string{"2025-11-25", "2025-06-18"}, Code: -32022}, got); diff != "" {
		t.Errorf("ClassifyHTTPError (-want +got):\n%s", diff)
	}
	if v, ok := Negotiate(got.Supported, Supported()); !ok || !IsLegacy(v) {
		t.Errorf("Negotiate = %q, %v; want a legacy version to initialize with", v, ok)
	}
	if http.StatusBadRequest != 400 || http.StatusNotFound != 404 {
		t.Fatal("status constants changed")
	}
}

func TestClassifyDiscoverResponse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		msg  string
		want ProbeResult
	}{
		{"DiscoverResult", `{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","supportedVersions":["2026-07-28"],"capabilities":{"tools":{}},"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"s","version":"1"}}}}`,
			ProbeResult{Modern: true, Supported: []string{"2026-07-28"}}},
		{"UnsupportedProtocolVersion", `{"jsonrpc":"2.0","id":1,"error":{"code":-32022,"message":"Unsupported protocol version","data":{"supported":["2027-01-01"],"requested":"2026-07-28"}}}`,
			ProbeResult{Modern: true, Supported: []string{"2027-01-01"}, Code: -32022}},
		{"UnsupportedProtocolVersion without data", `{"jsonrpc":"2.0","id":1,"error":{"code":-32022,"message":"no"}}`,
			ProbeResult{Modern: true, Code: -32022}},
		{"TypeScript legacy: Method not found", `{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found"}}`,
			ProbeResult{Code: -32601}},
		{"Python legacy: Invalid params", `{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"Invalid request parameters"}}`,
			ProbeResult{Code: -32602}},
		{"legacy: server not initialized", `{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"Server not initialized"}}`,
			ProbeResult{Code: -32000}},
		{"lenient server answering anything with {}", `{"jsonrpc":"2.0","id":1,"result":{}}`, ProbeResult{}},
		{"empty supportedVersions", `{"jsonrpc":"2.0","id":1,"result":{"supportedVersions":[]}}`, ProbeResult{}},
		{"supportedVersions of the wrong type", `{"jsonrpc":"2.0","id":1,"result":{"supportedVersions":"2026-07-28"}}`, ProbeResult{}},
		{"not JSON", `Content-Length: 42`, ProbeResult{}},
	}
	for _, tt := range tests {
		got := ClassifyDiscoverResponse([]byte(tt.msg))
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: ClassifyDiscoverResponse (-want +got):\n%s", tt.name, diff)
		}
		if IsModernDiscoverResponse([]byte(tt.msg)) != tt.want.Modern {
			t.Errorf("%s: IsModernDiscoverResponse disagrees with ClassifyDiscoverResponse", tt.name)
		}
	}
}

func TestParseUnsupportedVersionData(t *testing.T) {
	t.Parallel()
	supported, requested, err := ParseUnsupportedVersionData([]byte(`{"supported":["2026-07-28","2025-11-25"],"requested":"1900-01-01"}`))
	if err != nil || requested != "1900-01-01" || !cmp.Equal(supported, []string{"2026-07-28", "2025-11-25"}) {
		t.Errorf("ParseUnsupportedVersionData = %v, %q, %v", supported, requested, err)
	}
	for _, bad := range []string{`{"requested":"x"}`, `[]`, `{"supported":[1]}`, ``} {
		if _, _, err := ParseUnsupportedVersionData([]byte(bad)); err == nil {
			t.Errorf("ParseUnsupportedVersionData(%s) succeeded", bad)
		}
	}
}
