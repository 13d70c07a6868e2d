package demo_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/demo"
)

// stdioPeer runs ServeStdio on pipes and exchanges raw lines with it.
type stdioPeer struct {
	in   *io.PipeWriter
	out  *bufio.Reader
	done chan error
}

func startStdio(t *testing.T, ctx context.Context) *stdioPeer {
	t.Helper()
	serverIn, in := io.Pipe()
	out, serverOut := io.Pipe()
	p := &stdioPeer{in: in, out: bufio.NewReader(out), done: make(chan error, 1)}
	go func() {
		p.done <- demo.ServeStdio(ctx, serverIn, serverOut, optionsAt(fixedNow))
		serverOut.Close()
	}()
	t.Cleanup(func() { in.Close(); out.Close() })
	return p
}

func (p *stdioPeer) exchange(t *testing.T, line string) string {
	t.Helper()
	if _, err := io.WriteString(p.in, line+"\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	reply, err := p.out.ReadString('\n')
	if err != nil {
		t.Fatalf("read reply to %s: %v", line, err)
	}
	return reply
}

func (p *stdioPeer) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("ServeStdio did not return")
		return nil
	}
}

// TestStdioWire pins the era detection a gateway does on stdio: a 2026-07-28 client probes
// with server/discover, a legacy client sends initialize, on the same kind of pipe.
func TestStdioWire(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		lines []string
		want  []string // substring of each reply
	}{
		{
			name: "2026-07-28",
			lines: []string{
				`{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{` + modernMeta + `}}`,
				`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_stock_analysis","arguments":{"symbol":"VNM"},` + modernMeta + `}}`,
			},
			want: []string{`"supportedVersions":["2026-07-28"`, `"symbol":"VNM"`},
		},
		{
			name: "2025-11-25",
			lines: []string{
				`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"wire","version":"1"}}}`,
				`{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n" +
					`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_stock_analysis","arguments":{"symbol":"VNM"}}}`,
			},
			want: []string{`"protocolVersion":"2025-11-25"`, `"symbol":"VNM"`},
		},
		{
			name:  "legacy request before initialize",
			lines: []string{`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`},
			want:  []string{`"error"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := startStdio(t, context.Background())
			for i, line := range tc.lines {
				if got := p.exchange(t, line); !strings.Contains(got, tc.want[i]) {
					t.Errorf("reply %d = %s, want it to contain %s", i+1, got, tc.want[i])
				}
			}
			p.in.Close()
			if err := p.wait(t); err != nil {
				t.Errorf("ServeStdio at end of input = %v, want nil", err)
			}
		})
	}
}

func TestServeStdioStopsOnCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	p := startStdio(t, ctx)
	p.exchange(t, `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{`+modernMeta+`}}`)
	// The server is now blocked reading its input, which never ends.
	cancel()
	if err := p.wait(t); !errors.Is(err, context.Canceled) {
		t.Errorf("ServeStdio after cancel = %v, want context.Canceled", err)
	}
}

func TestServeStdioRejectsOversizedLine(t *testing.T) {
	t.Parallel()
	p := startStdio(t, context.Background())
	go func() {
		// More than the 1 MiB limit, without a newline: the server must stop reading
		// rather than buffer it.
		io.WriteString(p.in, `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"pad":"`+strings.Repeat("x", 2<<20))
	}()
	go io.Copy(io.Discard, p.out)
	err := p.wait(t)
	if err == nil || !strings.Contains(err.Error(), "exceeded the configured maximum line length") {
		t.Errorf("ServeStdio with a line over the limit = %v, want an error saying it exceeded the limit", err)
	}
}
