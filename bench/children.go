package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/mcpguard/mcpguard/cmd/mcpguard/wiring"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/gateway"
)

// echoMain is "bench echo": the echo upstream, over HTTP (-listen) or stdio (-stdio).
func echoMain(args []string) int {
	fs := flag.NewFlagSet("bench echo", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "serve Streamable HTTP at /mcp on this loopback address")
	stdio := fs.Bool("stdio", false, "serve newline-delimited JSON-RPC on stdin/stdout instead of HTTP")
	legacy := fs.Bool("legacy", false, "answer server/discover as a legacy server does (-32601)")
	tools := fs.Int("tools", 2, "tools to list (echo, blob and fillers), 2 to 100000")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	s := newEchoServer(echoOptions{Tools: *tools, LegacyOnly: *legacy})
	if *stdio {
		if err := s.serveStdio(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "echo:", err)
			return 1
		}
		return 0
	}
	host, _, err := net.SplitHostPort(*listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		fmt.Fprintln(os.Stderr, "echo: -listen must be a loopback IP address and port")
		return 2
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(os.Stderr, "echo: serving MCP at http://%s/mcp\n", ln.Addr())
	if err := serveEchoHTTP(ctx, ln, s); err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		return 1
	}
	return 0
}

// gatewayMain is "bench gateway": the gateway as `mcpguard serve` runs it, with a CPU profile
// for its whole life and a heap profile (allocations included) written when it is stopped.
// It exists so that profiling needs nothing in the product itself.
func gatewayMain(args []string) int {
	fs := flag.NewFlagSet("bench gateway", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "configuration file")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile here")
	memProfile := fs.String("memprofile", "", "write a heap profile here on exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := profiledGateway(*cfgPath, *cpuProfile, *memProfile); err != nil {
		fmt.Fprintln(os.Stderr, "bench gateway:", err)
		return 1
	}
	return 0
}

func profiledGateway(cfgPath, cpuProfile, memProfile string) error {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.Log.Level}))
	p, err := wiring.Build(context.Background(), cfg, &wiring.Options{Logger: logger})
	if err != nil {
		return err
	}
	g, err := gateway.New(context.Background(), p)
	if err != nil {
		return err
	}
	defer g.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g.Start(ctx)
	srv := &http.Server{
		Handler:           g.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    int(cfg.Limits.MaxHeaderBytes) + 4096,
	}
	fmt.Fprintf(os.Stderr, "mcpguard: serving MCP at http://%s%s\n", ln.Addr(), cfg.Path)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	_ = srv.Close()
	if memProfile != "" {
		f, err := os.Create(memProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return err
		}
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
