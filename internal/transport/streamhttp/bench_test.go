package streamhttp

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkPostJSON measures one request/response round trip through Post and Next against
// a trivial in-process JSON upstream on loopback.
func BenchmarkPostJSON(b *testing.B) {
	resp := []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(resp)
	}))
	defer srv.Close()
	c := New(srv.URL, &Options{Header: http.Header{"Authorization": {"Bearer upstream"}}})
	msg := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"ok"}}}`)
	id := []byte("1")
	h := http.Header{"Mcp-Protocol-Version": {"2026-07-28"}, "Mcp-Method": {"tools/call"}, "Mcp-Name": {"echo"}}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		r, err := c.Post(ctx, msg, id, h)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Next(ctx); err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}

// BenchmarkPostSSE is the same round trip with the response on an event stream.
func BenchmarkPostSSE(b *testing.B) {
	resp := "id: 1\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"ok\"}]}}\n\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, resp)
	}))
	defer srv.Close()
	c := New(srv.URL, nil)
	msg := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"ok"}}}`)
	id := []byte("1")
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		r, err := c.Post(ctx, msg, id, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Next(ctx); err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}
