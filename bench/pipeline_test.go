package main

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpguard/mcpguard/cmd/mcpguard/wiring"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/gateway"
	"github.com/mcpguard/mcpguard/internal/mcp"
	"github.com/mcpguard/mcpguard/internal/store/sqlite"
)

// TestFullPipeline runs the configuration the harness generates for the full pipeline in an
// in-process gateway: the harness's client, with the pipeline's headers, gets echo answers in
// both eras; without the token it gets 401; an argument the policy's schema refuses gets 403;
// and every allowed call lands in the audit database.
func TestFullPipeline(t *testing.T) {
	fx, err := newFixture(t.TempDir(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fx.close)
	t.Setenv(redactionKeyEnv, fx.redactionKey)
	echo := httptest.NewServer(newEchoServer(echoOptions{Tools: workEcho.Tools}))
	t.Cleanup(echo.Close)

	pipes := pipelines()
	full := pipes[len(pipes)-1]
	caseDir := t.TempDir()
	e := &env{fx: fx}
	c := benchCase{Path: pathGateway, Upstream: upstreamHTTP, Era: eraModern, Pipeline: full.Name, Workload: workEcho.Name, Concurrency: 1, pipe: full, work: workEcho}
	yaml := e.gatewayConfig(c, echo.URL, caseDir)
	for _, want := range []string{"auth:", "policy_file:", "audit:", "env:" + redactionKeyEnv} {
		if !strings.Contains(yaml, want) {
			t.Errorf("full pipeline configuration lacks %q:\n%s", want, yaml)
		}
	}
	cfg, err := config.Parse([]byte(yaml), filepath.Join(t.TempDir(), "gateway.yaml"))
	if err != nil {
		t.Fatalf("the generated configuration does not load: %v\n%s", err, yaml)
	}
	p, err := wiring.Build(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.Start(ctx)
	srv := httptest.NewServer(g.Handler())
	closed := false
	stop := func() {
		if !closed {
			closed = true
			srv.CloseClientConnections()
			srv.Close()
			cancel()
			g.Close()
		}
	}
	t.Cleanup(stop)
	url := srv.URL + cfg.Path
	header := full.header(fx)

	calls := 0
	for _, era := range []string{eraLegacy, eraModern} {
		t.Run(era, func(t *testing.T) {
			cl := newMCPClient(srv.Client(), url, era, header)
			if err := cl.open(ctx); err != nil {
				t.Fatal(err)
			}
			defer cl.close(ctx)
			do, err := workerFor(cl, workEcho, 1)
			if err != nil {
				t.Fatal(err)
			}
			for seq := int64(1); seq <= 3; seq++ {
				if err := do(ctx, seq); err != nil {
					t.Fatalf("echo call %d through the full pipeline: %v", seq, err)
				}
				calls++
			}
			bad, err := cl.prepare(mcp.MethodToolsCall, []byte(`{"name":"echo","arguments":{"text":5}}`))
			if err != nil {
				t.Fatal(err)
			}
			if res, err := cl.do(ctx, 9, bad); err != nil || !strings.Contains(string(res), `"isError":true`) || !strings.Contains(string(res), "inputSchema") {
				t.Errorf("echo with a number for text: %s, %v; want a tool error from the tool's own inputSchema", res, err)
			}
			big, err := cl.prepare(mcp.MethodToolsCall, []byte(`{"name":"blob","arguments":{"bytes":20000000}}`))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cl.do(ctx, 10, big); err == nil || !strings.Contains(err.Error(), "HTTP 403") {
				t.Errorf("blob over the policy's maximum: err = %v, want HTTP 403 from the policy", err)
			}
		})
	}
	anon := newMCPClient(srv.Client(), url, eraModern, nil)
	list, err := anon.prepare(mcp.MethodToolsList, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.do(ctx, 1, list); err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Errorf("tools/list without the token: err = %v, want HTTP 401", err)
	}

	stop() // the audit log writes what is queued
	st, err := sqlite.Open(context.Background(), filepath.Join(caseDir, "audit.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n, err := st.Size(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n < int64(calls) {
		t.Errorf("audit log holds %d records after %d allowed calls, want at least one per call", n, calls)
	}
}
