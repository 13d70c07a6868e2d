// Command mcpguard is a security gateway for the Model Context Protocol.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpguard/mcpguard/cmd/mcpguard/wiring"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/demo"
	"github.com/mcpguard/mcpguard/internal/gateway"
)

func main() {
	gateway.Version = currentBuild().serverVersion(gateway.Version)
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "mcpguard:", err)
		os.Exit(exitCode(err))
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "mcpguard",
		Short:         "A security gateway for the Model Context Protocol",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newQuickstart())
	root.AddCommand(newServe())
	root.AddCommand(newStdio())
	root.AddCommand(newDemoServer())
	root.AddCommand(newConfigCmd())
	root.AddCommand(newKeysCmd())
	root.AddCommand(newOperatorsCmd())
	root.AddCommand(newToolsCmd())
	root.AddCommand(newApprovalsCmd())
	root.AddCommand(newPolicyCmd())
	root.AddCommand(newBlocksCmd())
	root.AddCommand(newAuditCmd())
	root.AddCommand(newGDPRCmd())
	root.AddCommand(newHoldCmd())
	root.AddCommand(newVersionCmd())
	root.AddCommand(newWitnessCmd())
	root.AddCommand(newReportCmd())
	rejectUnknownSubcommands(root)
	return root
}

// rejectUnknownSubcommands makes every command group refuse a word that names none of its
// subcommands (exit 1), instead of printing its help and exiting 0: a scheduled
// `mcpguard audit verfy` must fail, not pass.
func rejectUnknownSubcommands(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		rejectUnknownSubcommands(sub)
	}
	if !cmd.HasSubCommands() || cmd.Run != nil || cmd.RunE != nil || cmd == cmd.Root() {
		return
	}
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return c.Help()
		}
		return fmt.Errorf("unknown command %q for %q: see %s --help", args[0], c.CommandPath(), c.CommandPath())
	}
}

// loadConfig reads and validates the configuration, applying a --listen override.
func loadConfig(path, listen string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if listen != "" {
		cfg.Listen = listen
		if err := cfg.Validate(); err != nil {
			return nil, fmt.Errorf("--listen: %w", err)
		}
	}
	return cfg, nil
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.Log.Level}
	if cfg.Log.Format == config.LogFormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func newServe() *cobra.Command {
	var cfgPath, listen string
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Serve MCP over Streamable HTTP in front of the configured upstreams",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cfgPath, listen)
			if err != nil {
				return err
			}
			logger := newLogger(cfg, os.Stderr)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serve(ctx, secondSignal(ctx), cfg, logger)
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "configuration file (YAML)")
	cmd.Flags().StringVar(&listen, "listen", "", "override the configured listen address (host:port)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// newGateway builds the gateway the configuration describes: its parts (wiring.Build), then the
// gateway over them.
func newGateway(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*gateway.Gateway, error) {
	p, err := wiring.Build(ctx, cfg, &wiring.Options{Logger: logger})
	if err != nil {
		return nil, err
	}
	return gateway.New(ctx, p)
}

// secondSignal is a context that ends at a SIGINT or SIGTERM received after first ended.
func secondSignal(first context.Context) context.Context {
	hard, cancel := context.WithCancel(context.WithoutCancel(first))
	go func() {
		<-first.Done()
		c := make(chan os.Signal, 1)
		signal.Notify(c, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(c)
		<-c
		cancel()
	}()
	return hard
}

// serve serves until ctx ends (the first SIGINT or SIGTERM), then drains: /readyz answers 503
// at once, new calls are still served for limits.drain_delay (the time a load balancer takes to
// see it), then the listener closes and calls in flight get limits.shutdown_grace to finish.
// The gateway's own work (upstreams, the containment's sync, the journal's drain into the audit
// log) lives until then, not until the signal. When hard ends (a second signal) the drain stops
// at once: connections are closed, the gateway closes (its audit log flushed), serve returns.
func serve(ctx, hard context.Context, cfg *config.Config, logger *slog.Logger) error {
	life, endLife := context.WithCancel(context.WithoutCancel(ctx))
	defer endLife()
	g, err := newGateway(life, cfg, logger)
	if err != nil {
		return err
	}
	defer g.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	g.Start(life)
	reloadOnHangup(life, g, logger)
	srv := &http.Server{
		Handler:           g.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    int(cfg.Limits.MaxHeaderBytes) + 4096,
		ErrorLog:          g.ServerErrorLog(logger),
	}
	scheme := "http"
	if cfg.TLS != nil {
		if srv.TLSConfig, err = wiring.TLSConfig(cfg.TLS, logger); err != nil {
			return err
		}
		scheme = "https"
	}
	// Both servers are built before either serves: serving sets up HTTP/2 in the server's
	// TLSConfig, so each gets a config of its own, cloned while nothing uses it.
	var admin *http.Server
	var aln net.Listener
	if cfg.Admin != nil {
		if aln, err = net.Listen("tcp", cfg.Admin.Listen); err != nil {
			return fmt.Errorf("admin.listen %s: %w", cfg.Admin.Listen, err)
		}
		admin = &http.Server{Handler: g.AdminHandler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: g.ServerErrorLog(logger)}
		if srv.TLSConfig != nil {
			admin.TLSConfig = srv.TLSConfig.Clone()
		}
		defer admin.Close()
	}
	url := scheme + "://" + ln.Addr().String() + cfg.Path
	logger.Info("mcpguard listening", "url", url, "upstreams", len(cfg.Upstreams))
	fmt.Fprintf(os.Stderr, "mcpguard: serving MCP at %s\n", url)
	errc := make(chan error, 2)
	serveOn := func(s *http.Server, l net.Listener) {
		if cfg.TLS != nil {
			errc <- s.ServeTLS(l, "", "")
			return
		}
		errc <- s.Serve(l)
	}
	go serveOn(srv, ln)
	if admin != nil {
		logger.Info("admin API listening", "addr", aln.Addr().String())
		go serveOn(admin, aln)
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Readiness drops first, so that load balancers stop sending calls here; calls are still
	// served while they notice; then the calls in flight finish within the grace period.
	g.Drain()
	delay, grace := cfg.Limits.DrainDelay, cfg.Limits.ShutdownGrace
	logger.Info("draining: /readyz answers 503; a second signal stops at once", "drain_delay", delay, "shutdown_grace", grace)
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-hard.Done():
			t.Stop()
		case err := <-errc:
			t.Stop()
			return err
		}
	}
	shutdown, cancel := context.WithTimeout(hard, grace)
	defer cancel()
	err = srv.Shutdown(shutdown)
	switch {
	case hard.Err() != nil:
		logger.Warn("stopped by a second signal: calls still in flight are cut off")
		_ = srv.Close()
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		logger.Warn("shutdown grace over: calls still in flight are cut off", "shutdown_grace", grace)
		_ = srv.Close()
		return nil
	}
	logger.Info("drained: every call in flight finished")
	return err
}

// reloadOnHangup re-reads the policy on SIGHUP; a policy that fails validation is logged with
// every problem and the last good one stays in force.
func reloadOnHangup(ctx context.Context, g *gateway.Gateway, logger *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := g.ReloadPolicy(); err != nil {
					logger.Error("SIGHUP: policy not reloaded", "err", err)
				}
			}
		}
	}()
}

func newStdio() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "stdio --config FILE",
		Short: "Serve one MCP client over stdin/stdout (for clients that launch a command)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cfgPath, "")
			if err != nil {
				return err
			}
			logger := newLogger(cfg, os.Stderr)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			g, err := newGateway(ctx, cfg, logger)
			if err != nil {
				return err
			}
			defer g.Close()
			g.Start(ctx)
			reloadOnHangup(ctx, g, logger)
			return g.ServeStdio(ctx, os.Stdin, os.Stdout)
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "configuration file (YAML)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func newDemoServer() *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "demo-server",
		Short: "Run the built-in demo finance MCP server (stdio, or HTTP with --listen)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
			opts := &demo.Options{Logger: logger}
			if listen == "" {
				return demo.ServeStdio(ctx, os.Stdin, os.Stdout, opts)
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", listen, err)
			}
			mux := http.NewServeMux()
			mux.Handle("/mcp", demo.HTTPHandler(opts))
			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(os.Stderr, "demo-server: serving MCP at http://%s/mcp\n", ln.Addr())
			go func() {
				<-ctx.Done()
				_ = srv.Close()
			}()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "serve Streamable HTTP on host:port at /mcp instead of stdio")
	return cmd
}

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with configuration files"}
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Validate a configuration file and the files it names, and report every problem",
		Long: `Parses the configuration as serve does (every problem at once, with its line), then checks
the files and directories it names as serve will use them: the policy, certificates and keys
exist and are readable, private keys are not readable by others, databases, the checkpoint
directory and export files can be created or written, and stdio commands can be run. It
creates and changes nothing. Run it as the user the gateway runs as.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(args[0])
			if err != nil {
				return err
			}
			if err := config.CheckFiles(cfg, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: OK\n", args[0])
			return nil
		},
	})
	return cmd
}
