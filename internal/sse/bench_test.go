package sse

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
)

// benchStream is a stream of MCP-like events: a priming event, then JSON-RPC messages of
// about 1 KiB with ids, and a keep-alive comment now and then.
func benchStream(events int) []byte {
	var b bytes.Buffer
	b.WriteString("id: s-0\nretry: 1000\ndata: \n\n")
	payload := `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"` + strings.Repeat("x", 960) + `"}]}}`
	for i := range events {
		if i%10 == 0 {
			b.WriteString(": keep-alive\n\n")
		}
		fmt.Fprintf(&b, "event: message\nid: s-%d\ndata: %s\n\n", i+1, payload)
	}
	return b.Bytes()
}

func BenchmarkReader(b *testing.B) {
	stream := benchStream(1000)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		r := NewReader(bytes.NewReader(stream), 0)
		for {
			if _, err := r.Next(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkWriter(b *testing.B) {
	ev := Event{ID: "s-1", Type: "message", Data: bytes.Repeat([]byte("x"), 1024)}
	w := NewWriter(io.Discard)
	b.SetBytes(int64(len(ev.Data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := w.WriteEvent(ev); err != nil {
			b.Fatal(err)
		}
	}
}
