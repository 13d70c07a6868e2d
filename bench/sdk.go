package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The go-sdk stack: the official Go SDK's Streamable HTTP server as the echo upstream and its
// client as the load generator, both with the SDK's defaults (a stateful session per client,
// answers as event streams, the client's standalone GET stream) — what a real deployment runs.
// The client pins protocol version 2025-11-25, the legacy era every peer speaks, so that every
// path carries the same protocol; a session that negotiated anything else fails its case.
const sdkProtocolVersion = "2025-11-25"

// sdkEchoMain is "bench sdk-echo": the go-sdk echo upstream over Streamable HTTP at /mcp.
func sdkEchoMain(args []string) int {
	fs := flag.NewFlagSet("bench sdk-echo", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "serve Streamable HTTP at /mcp on this loopback address")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	host, _, err := net.SplitHostPort(*listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		fmt.Fprintln(os.Stderr, "sdk-echo: -listen must be a loopback IP address and port")
		return 2
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sdk-echo:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	mux := http.NewServeMux()
	mux.Handle("/mcp", newSDKEchoHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	fmt.Fprintf(os.Stderr, "echo: serving MCP at http://%s/mcp\n", ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "sdk-echo:", err)
		return 1
	}
	return 0
}

// sdkEchoArgs is the echo tool's input.
type sdkEchoArgs struct {
	Text string `json:"text" jsonschema:"text to return"`
}

// newSDKEchoHandler is a go-sdk server with one tool, echo, behind the SDK's Streamable HTTP
// handler with its default options.
func newSDKEchoHandler() http.Handler {
	s := mcp.NewServer(&mcp.Implementation{Name: "mcpguard-bench-sdk-echo", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Returns its text argument unchanged."},
		func(_ context.Context, _ *mcp.CallToolRequest, in sdkEchoArgs) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
		})
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
}

// headerTransport adds fixed headers (the pipeline's bearer token) to every request.
type headerTransport struct {
	base   http.RoundTripper
	header map[string]string
}

func (t headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if len(t.header) == 0 {
		return t.base.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	for k, v := range t.header {
		r.Header.Set(k, v)
	}
	return t.base.RoundTrip(r)
}

// sdkWorker opens a go-sdk client session to url for client i and returns its request loop (an
// echo tools/call whose answer is checked) and the function that ends the session.
func sdkWorker(ctx context.Context, hc *http.Client, url string, i int) (func(context.Context, int64) error, func(), error) {
	client := mcp.NewClient(&mcp.Implementation{Name: "mcpguard-bench", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: hc}, &mcp.ClientSessionOptions{ProtocolVersion: sdkProtocolVersion})
	if err != nil {
		return nil, nil, fmt.Errorf("go-sdk connect: %w", err)
	}
	if v := cs.InitializeResult().ProtocolVersion; v != sdkProtocolVersion {
		_ = cs.Close()
		return nil, nil, fmt.Errorf("go-sdk session negotiated %s, want %s", v, sdkProtocolVersion)
	}
	text := fmt.Sprintf("bench payload from client %d: the quick brown fox", i)
	params := &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": text}}
	do := func(ctx context.Context, _ int64) error {
		res, err := cs.CallTool(ctx, params)
		if err != nil {
			return err
		}
		return checkSDKEcho(res, text)
	}
	return do, func() { _ = cs.Close() }, nil
}

// checkSDKEcho reports an error unless res is a successful echo of text.
func checkSDKEcho(res *mcp.CallToolResult, text string) error {
	if res.IsError {
		return errors.New("echo returned a tool error")
	}
	if len(res.Content) != 1 {
		return fmt.Errorf("echo returned %d content blocks, want 1", len(res.Content))
	}
	tc, ok := res.Content[0].(*mcp.TextContent)
	if !ok || tc.Text != text {
		return errors.New("echo result is not the text sent")
	}
	return nil
}
