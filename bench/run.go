package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcp"
)

// env is what every case needs: how to start the gateway and the echo upstream.
type env struct {
	self       string // this harness's executable (serves the echo upstream)
	gateway    string // the mcpguard binary built for this run
	against    string // another mcpguard binary to compare with (-against), or ""
	dir        string // scratch directory for configurations and profiles
	fx         *fixture
	peers      map[string]*peerBuild // the peers built for this run, by name
	auth       *authServer           // what hyprmcp reads at start, when peers run
	profileDir string                // when set, cases run the profiling gateway and write pprof files here
	warmup     time.Duration
	duration   time.Duration
	logf       func(format string, args ...any)
}

// usage is one process's resource use over a measured window.
type usage struct {
	CPUSeconds    float64 `json:"cpu_seconds"`
	CPUPerCallUS  float64 `json:"cpu_per_call_us"`
	RSSBytes      int64   `json:"rss_bytes"`
	PeakRSSBytes  int64   `json:"peak_rss_bytes"`
	sampleAtStart procSample
}

// caseResult is one measured case.
type caseResult struct {
	Name string `json:"name"`
	benchCase
	loadResult
	Gateway *usage `json:"gateway,omitempty"`
	Echo    *usage `json:"echo,omitempty"` // the echo upstream process
	// ClientCPUSeconds is the load generator's own CPU time in the window: on a small machine
	// the client, the gateway and the upstream share the cores.
	ClientCPUSeconds float64 `json:"client_cpu_seconds"`
}

// startEcho runs the case's echo upstream over HTTP on a free loopback port: the go-sdk's for
// the sdk stack, else the in-repo fast echo.
func (e *env) startEcho(ctx context.Context, c benchCase) (*child, error) {
	argv := []string{e.self, "echo", "-listen", "127.0.0.1:0", "-tools", strconv.Itoa(c.work.Tools)}
	if c.Upstream == upstreamSDK {
		argv = []string{e.self, "sdk-echo", "-listen", "127.0.0.1:0"}
	}
	return startChild(ctx, "echo upstream", argv, "echo: serving MCP at ", nil)
}

// gatewayConfig is the configuration of a case: one upstream named echo, exposed unprefixed so
// that the client's requests are byte for byte those of the direct case, and the sections of the
// case's pipeline stages (caseDir holds what they write).
func (e *env) gatewayConfig(c benchCase, echoURL, caseDir string) string {
	var up string
	switch c.Upstream {
	case upstreamHTTP, upstreamSDK:
		up = fmt.Sprintf("    http:\n      url: %q\n      era: %s\n", echoURL, c.Era)
	case upstreamHTTPLegacy:
		up = fmt.Sprintf("    http:\n      url: %q\n      era: %s\n", echoURL, eraLegacy)
	case upstreamStdio:
		args := fmt.Sprintf("[echo, -stdio, -tools, %q]", strconv.Itoa(c.work.Tools))
		if c.Era == eraLegacy {
			args = fmt.Sprintf("[echo, -stdio, -legacy, -tools, %q]", strconv.Itoa(c.work.Tools))
		}
		up = fmt.Sprintf("    stdio:\n      command: %q\n      args: %s\n      shutdown_grace: 2s\n", e.self, args)
	}
	cfg := "listen: 127.0.0.1:0\n" +
		"limits:\n  request_timeout: 30s\n" +
		"log:\n  level: info\n" +
		"upstreams:\n  - name: echo\n    prefix: \"\"\n" + up
	return cfg + c.pipe.config(e.fx, caseDir)
}

// startGateway runs mcpguard with cfg (or, when profiling, the harness's profiling gateway)
// and waits until a stateless tools/list through it, sent with header, succeeds.
func (e *env) startGateway(ctx context.Context, name, cfg, build string, header map[string]string) (*child, error) {
	file := filepath.Join(e.dir, "gateway.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	argv := []string{e.gateway, "serve", "--config", file}
	if build == "against" {
		argv[0] = e.against
	} else if e.profileDir != "" {
		base := filepath.Join(e.profileDir, sanitize(name))
		argv = []string{e.self, "gateway", "-config", file, "-cpuprofile", base + ".cpu.pprof", "-memprofile", base + ".mem.pprof"}
	}
	var childEnv []string
	if e.fx != nil {
		childEnv = e.fx.gatewayEnv()
	}
	gw, err := startChild(ctx, "gateway", argv, "serving MCP at ", childEnv)
	if err != nil {
		return nil, err
	}
	if err := waitReady(ctx, gw, header); err != nil {
		gw.stop()
		return nil, err
	}
	return gw, nil
}

func sanitize(name string) string {
	b := []byte(name)
	for i, c := range b {
		if c == '/' {
			b[i] = '_'
		}
	}
	return string(b)
}

// waitReady polls a server with a stateless tools/list, sent with header, until it answers
// (20 s at most).
func waitReady(ctx context.Context, p *child, header map[string]string) error {
	hc := &http.Client{Transport: newTransport(1)}
	defer hc.CloseIdleConnections()
	c := newMCPClient(hc, p.url, eraModern, header)
	req, err := c.prepare(mcp.MethodToolsList, []byte(`{}`))
	if err != nil {
		return err
	}
	return poll(ctx, p, func(ctx context.Context) error {
		_, err := c.do(ctx, 1, req)
		return err
	})
}

// waitReadyLegacy polls a server that may speak only the legacy era (the go-sdk echo, a peer)
// by opening and closing a session, until one opens (20 s at most).
func waitReadyLegacy(ctx context.Context, p *child, header map[string]string) error {
	hc := &http.Client{Transport: newTransport(1)}
	defer hc.CloseIdleConnections()
	return poll(ctx, p, func(ctx context.Context) error {
		c := newMCPClient(hc, p.url, eraLegacy, header)
		c.sessionOptional = true
		if err := c.open(ctx); err != nil {
			return err
		}
		c.close(ctx)
		return nil
	})
}

// poll calls try until it succeeds, p exits, or 20 s have passed.
func poll(ctx context.Context, p *child, try func(context.Context) error) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := try(rctx)
		cancel()
		if err == nil {
			return nil
		}
		if aerr := p.alive(); aerr != nil {
			return aerr
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not ready after 20s: %v\n%s", p.name, err, p.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runCase starts what the case needs, measures it and stops everything.
func (e *env) runCase(ctx context.Context, c benchCase) (caseResult, error) {
	res := caseResult{Name: c.Name(), benchCase: c}
	var echo, gw *child
	var err error
	if c.Upstream != upstreamStdio || c.Path == pathDirect {
		if echo, err = e.startEcho(ctx, c); err != nil {
			return res, err
		}
		defer echo.stop()
	}
	target := ""
	if echo != nil {
		target = echo.url
	}
	var header map[string]string
	var checkPeer func(calls int64) error // the peer's own check once the load is over
	switch c.Path {
	case pathDirect:
		ready := waitReady
		if c.Upstream == upstreamSDK {
			ready = waitReadyLegacy
		}
		if err := ready(ctx, echo, nil); err != nil {
			return res, err
		}
	case pathGateway:
		caseDir := ""
		if len(c.pipe.Stages) > 0 {
			if caseDir, err = os.MkdirTemp(e.fx.diskDir, ".bench-case-"); err != nil {
				return res, err
			}
			defer os.RemoveAll(caseDir)
			header = c.pipe.header(e.fx)
		}
		if gw, err = e.startGateway(ctx, c.Name(), e.gatewayConfig(c, target, caseDir), c.Build, header); err != nil {
			return res, err
		}
		defer gw.stop()
		target = gw.url
	default: // a peer
		b := e.peers[c.Path]
		if b == nil || b.bin == "" {
			return res, fmt.Errorf("peer %s was not built", c.Path)
		}
		caseDir, err := os.MkdirTemp(e.fx.diskDir, ".bench-case-")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(caseDir)
		if gw, err = e.startPeer(ctx, b, target, caseDir); err != nil {
			return res, err
		}
		defer gw.stop()
		target = gw.url
		if b.peer.records != nil {
			checkPeer = func(calls int64) error {
				n, err := b.peer.records(caseDir)
				if err == nil && n < calls {
					err = fmt.Errorf("%d audit records for %d calls", n, calls)
				}
				if err != nil {
					return fmt.Errorf("%s audit: %w", b.Name, err)
				}
				return nil
			}
		}
	}
	upstreamPID := 0
	if echo != nil {
		upstreamPID = echo.pid()
	} else if kids := childPIDs(gw.pid()); len(kids) == 1 {
		upstreamPID = kids[0]
	}

	tr := newTransport(c.Concurrency)
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	// closers end each client's session when the case is over.
	closers := make([]func(context.Context), c.Concurrency)
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, end := range closers {
			if end != nil {
				end(cctx)
			}
		}
	}()

	var gwUse, upUse usage
	var clientCPU time.Duration
	sample := func(start bool) {
		if gw != nil {
			gwUse.observe(gw.pid(), start)
		}
		if upstreamPID != 0 {
			upUse.observe(upstreamPID, start)
		}
		cpu := selfCPU()
		if start {
			clientCPU = -cpu
		} else {
			clientCPU += cpu
		}
	}
	lr, err := runLoad(ctx, loadSpec{
		Concurrency: c.Concurrency,
		Warmup:      e.warmup,
		Duration:    e.duration,
		OnMeasure:   sample,
		NewWorker: func(ctx context.Context, i int) (func(context.Context, int64) error, error) {
			if c.Upstream == upstreamSDK {
				sdkHC := &http.Client{Transport: headerTransport{base: tr, header: header}}
				do, end, err := sdkWorker(ctx, sdkHC, target, i)
				if err != nil {
					return nil, err
				}
				closers[i] = func(context.Context) { end() }
				return do, nil
			}
			cl := newMCPClient(hc, target, c.Era, header)
			cl.sessionOptional = c.Path != pathDirect && c.Path != pathGateway
			if err := cl.open(ctx); err != nil {
				return nil, err
			}
			closers[i] = cl.close
			return workerFor(cl, c.work, i)
		},
	})
	if err != nil {
		return res, err
	}
	res.loadResult = lr
	res.ClientCPUSeconds = round2(clientCPU.Seconds()*1000) / 1000
	done := lr.Requests
	if gw != nil {
		if err := gw.alive(); err != nil {
			return res, err
		}
		gwUse.finish(done)
		res.Gateway = &gwUse
	}
	if checkPeer != nil {
		if err := checkPeer(done); err != nil {
			return res, err
		}
	}
	if upstreamPID != 0 {
		upUse.finish(done)
		res.Echo = &upUse
	}
	return res, nil
}

// observe samples pid at the start or the end of the window.
func (u *usage) observe(pid int, start bool) {
	s, err := readProc(pid)
	if err != nil {
		return
	}
	if start {
		u.sampleAtStart = s
		return
	}
	u.CPUSeconds = (s.CPU - u.sampleAtStart.CPU).Seconds()
	u.RSSBytes, u.PeakRSSBytes = s.RSS, s.PeakRS
}

func (u *usage) finish(calls int64) {
	if calls > 0 {
		u.CPUPerCallUS = round2(u.CPUSeconds * 1e6 / float64(calls))
	}
	u.CPUSeconds = round2(u.CPUSeconds*1000) / 1000
}

// selfCPU is this process's user + system time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// workerFor returns the request loop of client i for a workload, with a check of each result
// that catches a gateway answering something else than the upstream's answer.
func workerFor(cl *mcpClient, w workload, i int) (func(context.Context, int64) error, error) {
	switch {
	case w.List:
		req, err := cl.prepare(mcp.MethodToolsList, []byte(`{}`))
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, seq int64) error {
			res, err := cl.do(ctx, seq, req)
			if err != nil {
				return err
			}
			tools, _ := jsonrpc.Lookup(res, "tools")
			n := 0
			_ = jsonrpc.Elements(tools, func([]byte) error { n++; return nil })
			if n != w.Tools {
				return fmt.Errorf("tools/list returned %d tools, want %d", n, w.Tools)
			}
			return nil
		}, nil
	case w.Blob > 0:
		req, err := cl.prepare(mcp.MethodToolsCall, []byte(`{"name":"blob","arguments":{"bytes":`+strconv.Itoa(w.Blob)+`}}`))
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, seq int64) error {
			res, err := cl.do(ctx, seq, req)
			if err != nil {
				return err
			}
			if len(res) < w.Blob {
				return fmt.Errorf("blob result of %d bytes, want more than %d", len(res), w.Blob)
			}
			return nil
		}, nil
	}
	text := fmt.Sprintf("bench payload from client %d: the quick brown fox", i)
	req, err := cl.prepare(mcp.MethodToolsCall, []byte(`{"name":"echo","arguments":{"text":`+string(jsonrpc.Quote(text))+`}}`))
	if err != nil {
		return nil, err
	}
	want := jsonrpc.Quote(text)
	return func(ctx context.Context, seq int64) error {
		res, err := cl.do(ctx, seq, req)
		if err != nil {
			return err
		}
		if !bytes.Contains(res, want) {
			return errors.New("echo result does not contain the text sent")
		}
		return nil
	}, nil
}
