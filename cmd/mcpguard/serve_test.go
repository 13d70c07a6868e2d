package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/mcp"
	"github.com/mcpguard/mcpguard/internal/transport/streamhttp"
)

// freeAddr is a loopback address no one listens on at the moment.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestServeDrains: after the first signal /readyz answers 503 while new calls are still served
// for limits.drain_delay; a second signal ends the drain at once, serve returns, and the
// listener is closed.
func TestServeDrains(t *testing.T) {
	dir := t.TempDir()
	mcpAddr, adminAddr := freeAddr(t), freeAddr(t)
	yaml := fmt.Sprintf(`listen: %s
admin: {listen: %s}
limits: {drain_delay: 5m, shutdown_grace: 5s}
upstreams:
  - name: finance
    stdio: {command: "@self", args: [demo-server]}
`, mcpAddr, adminAddr)
	cfgPath := filepath.Join(dir, "mcpguard.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	first, signal1 := context.WithCancel(t.Context())
	hard, signal2 := context.WithCancel(t.Context())
	defer signal1()
	defer signal2()
	served := make(chan error, 1)
	go func() { served <- serve(first, hard, cfg, slog.New(slog.DiscardHandler)) }()

	ready := func() int {
		resp, err := http.Get("http://" + adminAddr + "/readyz")
		if err != nil {
			return 0
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	waitReady := func(want int) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for ready() != want {
			select {
			case err := <-served:
				t.Fatalf("serve returned early: %v", err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz never answered %d", want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	call := func() error {
		c := streamhttp.New("http://"+mcpAddr+"/mcp", nil)
		r, err := rpc(t.Context(), c, http.Header{}, 1, "initialize", `{"protocolVersion":"`+mcp.LatestLegacy+`","capabilities":{},"clientInfo":{"name":"t","version":"1"}}`)
		if err != nil {
			return err
		}
		if r.Status != http.StatusOK || r.Error != nil {
			return fmt.Errorf("HTTP %d, error %+v", r.Status, r.Error)
		}
		return nil
	}

	waitReady(http.StatusOK)
	if err := call(); err != nil {
		t.Fatalf("a call before the signal: %v", err)
	}
	signal1()
	waitReady(http.StatusServiceUnavailable)
	if err := call(); err != nil {
		t.Errorf("a call during the drain delay was not served: %v", err)
	}
	select {
	case err := <-served:
		t.Fatalf("serve returned during the drain delay: %v", err)
	default:
	}

	signal2()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("serve after the second signal: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not return after the second signal")
	}
	if conn, err := net.Dial("tcp", mcpAddr); err == nil {
		conn.Close()
		t.Error("the MCP listener still accepts connections after serve returned")
	}
}
