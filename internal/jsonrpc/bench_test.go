package jsonrpc_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
)

// toolsCall is a typical 2026-07-28 tools/call of about 300 bytes.
const toolsCall = `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"transfer_funds",` +
	`"arguments":{"from":"ACC-1001","to":"ACC-2002","amount":{"value":125.5,"currency":"EUR"},"memo":"rent for March"},` +
	`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","progressToken":"tok-42",` +
	`"io.modelcontextprotocol/clientCapabilities":{}}}}`

// largeCall is a tools/call whose arguments hold about 64 KiB of records and text.
func largeCall() []byte {
	var b strings.Builder
	b.WriteString(`{"jsonrpc":"2.0","id":"batch-import-7","method":"tools/call","params":{"name":"import_rows","arguments":{"table":"customers","rows":[`)
	for i := 0; b.Len() < 60<<10; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"Customer %d","email":"customer%d@example.com","tags":["retail","eu"],"balance":%d.%02d,"active":%t}`,
			i, i, i, i*37, i%100, i%3 != 0)
	}
	b.WriteString(`],"note":"`)
	b.WriteString(strings.Repeat("Imported from the nightly export; values in EUR. ", 80))
	b.WriteString(`"}}}`)
	return []byte(b.String())
}

func BenchmarkParseToolsCall(b *testing.B) {
	in := []byte(toolsCall)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := jsonrpc.Parse(in, jsonrpc.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseLarge(b *testing.B) {
	in := largeCall()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := jsonrpc.Parse(in, jsonrpc.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendResult(b *testing.B) {
	id := jsonrpc.IntID(42)
	result := []byte(`{"content":[{"type":"text","text":"Transferred 125.50 EUR from ACC-1001 to ACC-2002."}],"isError":false}`)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = jsonrpc.AppendResult(buf[:0], id, result)
	}
}
