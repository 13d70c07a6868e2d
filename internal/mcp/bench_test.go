package mcp

import "testing"

// The spec's execute_sql call, as the gateway sees it on every tools/call.
var benchParams = withMeta(`"name":"execute_sql","arguments":{"region":"us-west1","query":"SELECT * FROM users"}`)

func BenchmarkValidateRequestHeaders(b *testing.B) {
	bindings, err := ParamBindings([]byte(specExecuteSQLSchema))
	if err != nil {
		b.Fatal(err)
	}
	h := hdr("Mcp-Protocol-Version", "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "execute_sql", "Mcp-Param-Region", "us-west1")
	b.ReportAllocs()
	for b.Loop() {
		if err := ValidateRequestHeaders(h, "tools/call", benchParams, bindings); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRequestHeaders(b *testing.B) {
	bindings, err := ParamBindings([]byte(specExecuteSQLSchema))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := RequestHeaders("tools/call", benchParams, bindings); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParamBindings(b *testing.B) {
	schema := []byte(conformanceCustomHeadersSchema)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParamBindings(schema); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeHeaderValue(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeHeaderValue("=?base64?SGVsbG8sIOS4lueVjA==?="); err != nil {
			b.Fatal(err)
		}
	}
}
