package mcp

import (
	"bytes"
	"testing"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
)

// FuzzReadParams checks that the one-pass split of params finds exactly what a member lookup
// finds, for every params object the strict parser accepts.
func FuzzReadParams(f *testing.F) {
	f.Add([]byte(`{"name":"echo","arguments":{"text":"hi"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}`))
	f.Add([]byte(`{"uri":"file:///a","_meta":[]}`))
	f.Add([]byte(`{"ref":{"type":"ref/prompt","name":"p"},"argument":{"name":"a","value":"b"}}`))
	f.Add([]byte(`{"n\u0061me":"escaped","level":"debug","cursor":null}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := CheckParams(raw)
		if err != nil || len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
			return
		}
		lookup := func(obj []byte, key string) []byte {
			v, _ := jsonrpc.Lookup(obj, key)
			return v
		}
		for key, got := range map[string][]byte{
			"name": p.Name, "uri": p.URI, "taskId": p.TaskID, "arguments": p.Arguments,
			"ref": p.Ref, "level": p.Level, "cursor": p.Cursor, "_meta": p.Meta,
		} {
			if want := lookup(raw, key); !bytes.Equal(got, want) {
				t.Fatalf("params %s: %q = %q, Lookup says %q", raw, key, got, want)
			}
		}
		if p.Meta.Kind() != '{' {
			if p.ProtocolVersion != nil || p.Traceparent != nil {
				t.Fatalf("params %s: _meta fields read from a _meta that is not an object", raw)
			}
			return
		}
		for key, got := range map[string][]byte{
			MetaProtocolVersion: p.ProtocolVersion, MetaClientCapabilities: p.ClientCapabilities,
			MetaClientInfo: p.ClientInfo, MetaLogLevel: p.LogLevel, MetaTraceparent: p.Traceparent,
		} {
			if want := lookup(p.Meta, key); !bytes.Equal(got, want) {
				t.Fatalf("params %s: _meta %q = %q, Lookup says %q", raw, key, got, want)
			}
		}
	})
}

func TestCheckParamsRefusesWhatTheParserRefuses(t *testing.T) {
	for _, raw := range []string{
		`{"name":"a","name":"b"}`,
		`{"name":"a","Name":"b"}`,
		`{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/protocolVersion":"2025-11-25"}}`,
		`[1,2]`,
		`{"name":"a"} {}`,
	} {
		if _, err := CheckParams([]byte(raw)); err == nil {
			t.Errorf("CheckParams(%s) = nil error, want one", raw)
		}
	}
}
