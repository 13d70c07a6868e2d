// Command bench measures mcpguard against a direct connection to a fast loopback echo MCP
// server, in both protocol eras and over HTTP and stdio upstreams, and reports latency,
// throughput, errors and the gateway process's CPU time and memory.
//
//	go run ./bench                    # every scenario; prints the tables, writes bench/results/*.json
//	go run ./bench -record            # the same, and appends the tables to BENCHMARKS.md
//	go run ./bench -smoke             # a few seconds, to prove the harness works (CI)
//	go run ./bench -only gateway/http/modern/none/echo/c64 -profile /tmp/prof
//	go run ./bench -peers -peers-src ~/src/peers    # also hyprmcp, TBXark mcp-proxy and mcp-audit
//	go run ./bench -tables bench/results/X.json     # the tables of a kept run, measuring nothing
//
// The harness builds cmd/mcpguard once and runs it as a child process per case, so that the
// gateway's CPU time and peak RSS can be read from /proc. It also serves as the echo upstream
// ("bench echo"), as the go-sdk's echo upstream ("bench sdk-echo") and, with -profile, as a
// gateway that writes pprof profiles ("bench gateway"). With -peers it builds the peer gateways
// from their checkouts (bench/peers.go) and measures them in the same run.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "echo":
			os.Exit(echoMain(os.Args[2:]))
		case "gateway":
			os.Exit(gatewayMain(os.Args[2:]))
		case "sdk-echo":
			os.Exit(sdkEchoMain(os.Args[2:]))
		}
	}
	os.Exit(benchMain(os.Args[1:]))
}

func benchMain(args []string) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	smoke := fs.Bool("smoke", false, "run every code path briefly (a few seconds) and fail on any error; writes nothing unless -out is given")
	warmup := fs.Duration("warmup", time.Second, "warm-up per case, not measured")
	duration := fs.Duration("duration", 4*time.Second, "measured time per case")
	only := fs.String("only", "", "run only the cases whose name contains one of these comma-separated strings")
	sessions := fs.Int("sessions", 10000, "legacy sessions to open and hold (0 skips; the gateway's limits.max_sessions is set to this)")
	out := fs.String("out", "", "write the raw results as JSON to this file (default bench/results/<time>-<commit>.json; none with -smoke, -profile or -against)")
	record := fs.Bool("record", false, "append the tables to BENCHMARKS.md")
	profile := fs.String("profile", "", "run the selected cases on a gateway that writes CPU and heap profiles into this directory")
	repeat := fs.Int("repeat", 1, "run the selected cases this many times over, one round after the other (1 to 20)")
	against := fs.String("against", "", "also run every selected gateway case on this mcpguard binary (case@against), alternating, to compare two builds in one run")
	peers := fs.Bool("peers", false, "also build and measure the peer gateways (hyprmcp, TBXark mcp-proxy, mcp-audit) next to direct and mcpguard; ignored with -smoke")
	peersSrc := fs.String("peers-src", defaultPeersSrc(), "directory holding the peers' git checkouts (mcp-gateway, mcp-proxy, mcp-audit); a missing one is cloned from GitHub ($MCPGUARD_PEERS_SRC)")
	tables := fs.String("tables", "", "print the tables of this raw results file (bench/results/*.json) and exit, measuring nothing")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *tables != "" {
		return printTables(*tables)
	}
	if *repeat < 1 || *repeat > 20 {
		fmt.Fprintln(os.Stderr, "bench: -repeat must be between 1 and 20")
		return 2
	}
	concurrency := []int{1, 64}
	if *smoke {
		*warmup, *duration, concurrency = 50*time.Millisecond, 250*time.Millisecond, []int{4}
		*sessions = min(*sessions, 100)
	}
	timeout := 60 * time.Minute
	if *smoke {
		timeout = 5 * time.Minute
	}
	if *peers && *smoke {
		fmt.Fprintln(os.Stderr, "bench: -peers is ignored in a smoke run (the peers are built from checkouts CI does not have)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	rep, err := run(ctx, runOptions{
		smoke: *smoke, warmup: *warmup, duration: *duration, concurrency: concurrency,
		only: *only, sessions: *sessions, profileDir: *profile, against: *against, repeat: *repeat, logf: logf,
		peers: *peers && !*smoke, peersSrc: *peersSrc,
	})
	if err != nil {
		logf("bench: %v", err)
		return 1
	}
	md := rep.markdown()
	fmt.Println(md)
	if *out == "" && !*smoke && *profile == "" && *against == "" {
		*out = filepath.Join(rep.root, "bench", "results", rep.fileName())
	}
	if *out != "" {
		if err := rep.writeJSON(*out); err != nil {
			logf("bench: %v", err)
			return 1
		}
		logf("bench: raw results in %s", *out)
	}
	if *record {
		if err := appendFile(filepath.Join(rep.root, "BENCHMARKS.md"), "\n"+md); err != nil {
			logf("bench: %v", err)
			return 1
		}
		logf("bench: appended to BENCHMARKS.md")
	}
	if n := rep.failures(); n > 0 {
		logf("bench: %d requests or checks failed; see the errors column", n)
		return 1
	}
	return 0
}

// printTables renders the tables of a kept results file, so a run's numbers can be read
// again (or pasted into BENCHMARKS.md) without measuring anew.
func printTables(name string) int {
	rep, err := readReport(name)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	fmt.Println(rep.markdown())
	return 0
}

type runOptions struct {
	smoke            bool
	warmup, duration time.Duration
	concurrency      []int
	only             string
	sessions         int
	profileDir       string
	against          string
	repeat           int
	peers            bool   // build and measure the peer gateways
	peersSrc         string // where their checkouts are
	logf             func(string, ...any)
}

// run measures every selected case, the fsync baseline and the held sessions.
func run(ctx context.Context, o runOptions) (*report, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mcpguard-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if o.profileDir != "" {
		if o.profileDir, err = filepath.Abs(o.profileDir); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return nil, err
		}
	}
	o.logf("bench: building cmd/mcpguard")
	bin, err := buildGateway(ctx, root, dir)
	if err != nil {
		return nil, err
	}
	if o.against != "" {
		if o.against, err = filepath.Abs(o.against); err != nil {
			return nil, err
		}
	}
	e := &env{self: self, gateway: bin, against: o.against, dir: dir, profileDir: o.profileDir, warmup: o.warmup, duration: o.duration, logf: o.logf}
	rep := newReport(ctx, root, o)

	fsyncDir := filepath.Join(root, "bench", "results")
	if o.smoke {
		fsyncDir = dir
	}
	n := 200
	if o.smoke {
		n = 20
	}
	fr, err := measureFsync(fsyncDir, n)
	if err != nil {
		return nil, fmt.Errorf("fsync probe: %w", err)
	}
	rep.Fsync = &fr

	// The pipeline stages' identity provider, policy and keys; each case's audit database goes
	// next to the fsync probe, on the same disk.
	fx, err := newFixture(dir, fsyncDir)
	if err != nil {
		return nil, fmt.Errorf("pipeline fixture: %w", err)
	}
	defer fx.close()
	e.fx = fx

	var peerNames []string
	if o.peers {
		e.peers = map[string]*peerBuild{}
		for _, b := range buildPeers(ctx, o.peersSrc, dir, o.logf) {
			rep.Peers = append(rep.Peers, b)
			if b.Error == "" {
				e.peers[b.Name] = &b
				peerNames = append(peerNames, b.Name)
			}
		}
		if e.auth, err = startAuthServer(fx.jwksURL); err != nil {
			return nil, fmt.Errorf("authorization server for hyprmcp: %w", err)
		}
		defer e.auth.close()
	}
	cases, skipped := plan(o.concurrency, peerNames)
	rep.NotBuilt = skipped
	cases = selectCases(cases, o.only)
	if o.against != "" {
		cases = withAgainst(cases)
	}
	cases = repeated(cases, o.repeat)
	for i, c := range cases {
		o.logf("bench: [%d/%d] %s", i+1, len(cases), c.Name())
		res, err := e.runCase(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Name(), err)
		}
		o.logf("        %8.0f req/s  p50 %8.1fµs  p99 %8.1fµs  errors %d%s", res.Throughput, res.Latency.P50, res.Latency.P99, res.Errors, gatewayLine(res.Gateway))
		rep.Cases = append(rep.Cases, res)
	}
	if o.sessions > 0 && (o.only == "" || strings.Contains(o.only, "sessions")) {
		o.logf("bench: holding %d legacy sessions", o.sessions)
		sr, err := e.runSessions(ctx, o.sessions)
		if err != nil {
			return nil, fmt.Errorf("sessions: %w", err)
		}
		rep.Sessions = &sr
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	rep.Machine.LoadAvg[1] = loadAvg()
	return rep, nil
}

func gatewayLine(u *usage) string {
	if u == nil {
		return ""
	}
	return fmt.Sprintf("  gateway %.1fµs CPU/call, peak RSS %s", u.CPUPerCallUS, mib(u.PeakRSSBytes))
}

func appendFile(name, text string) error {
	f, err := os.OpenFile(name, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
