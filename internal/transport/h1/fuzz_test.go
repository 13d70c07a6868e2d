package h1

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
)

// FuzzResponse sends what an upstream answers, whatever its bytes, through the transport:
// it must end in a response or an error, never a panic or a wait for bytes that never come.
func FuzzResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n9\r\ndata: 1\n\n\r\n0\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.0 200 OK\r\n\r\nuntil close",
		"HTTP/1.1 101 Switching Protocols\r\n\r\n",
		"HTTP/1.1 999 x\r\nX: \x00\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, answer []byte) {
		tr := New(&Options{MaxHeaderBytes: 4 << 10, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			client, server := net.Pipe()
			go func() {
				defer server.Close()
				go io.Copy(io.Discard, server)
				server.Write(answer)
			}()
			return client, nil
		}})
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://upstream.test/mcp", nil)
		req.Body, req.ContentLength = Body([]byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)), 40
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return
		}
		if resp.StatusCode < 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			t.Fatalf("status %d given as the final response", resp.StatusCode)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
	})
}
