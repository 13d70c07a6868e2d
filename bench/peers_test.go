package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/mcpguard/mcpguard/cmd/mcpguard/wiring"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/gateway"
	"github.com/mcpguard/mcpguard/internal/mcp"
)

func peerByName(t *testing.T, name string) peer {
	t.Helper()
	i := slices.IndexFunc(peerList, func(p peer) bool { return p.Name == name })
	if i < 0 {
		t.Fatalf("no peer %s", name)
	}
	return peerList[i]
}

func readYAML(t *testing.T, file string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s is not YAML: %v\n%s", file, err, b)
	}
	return m
}

// dig walks nested maps and lists (an int key indexes a list).
func dig(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, k := range path {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("at %q: not a map: %#v", k, v)
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("at [%d]: not a list that long: %#v", k, v)
			}
			v = l[k]
		}
	}
	return v
}

var testPeerInput = peerInput{Bin: "/bin/peer", Port: 40123, Upstream: "http://127.0.0.1:40999/mcp", AuthURL: "http://127.0.0.1:40888/"}

// TestHyprmcpSetup: one route, /mcp, to the upstream with authentication off, and the
// authorization server it insists on reading at start.
func TestHyprmcpSetup(t *testing.T) {
	in := testPeerInput
	in.Dir = t.TempDir()
	l, err := peerByName(t, "hyprmcp").setup(in)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(in.Dir, "config.yaml")
	if diff := cmp.Diff([]string{"/bin/peer", "--config", file, "--addr", "127.0.0.1:40123"}, l.Argv); diff != "" {
		t.Errorf("argv (-want +got):\n%s", diff)
	}
	if l.URL != "http://127.0.0.1:40123/mcp" {
		t.Errorf("URL = %s", l.URL)
	}
	m := readYAML(t, file)
	for _, tt := range []struct {
		path []any
		want any
	}{
		{[]any{"host"}, "http://127.0.0.1:40123/"},
		{[]any{"authorization", "server"}, "http://127.0.0.1:40888/"},
		{[]any{"proxy", 0, "path"}, "/mcp"},
		{[]any{"proxy", 0, "http", "url"}, "http://127.0.0.1:40999/mcp"},
		{[]any{"proxy", 0, "authentication", "enabled"}, false},
		{[]any{"proxy", 0, "webhook"}, nil},
	} {
		if got := dig(t, m, tt.path...); got != tt.want {
			t.Errorf("%v = %#v, want %#v", tt.path, got, tt.want)
		}
	}
}

// TestMCPProxySetup: a streamable HTTP server in front of one streamable HTTP upstream named
// echo, with no auth tokens and no request log.
func TestMCPProxySetup(t *testing.T) {
	in := testPeerInput
	in.Dir = t.TempDir()
	l, err := peerByName(t, "mcp-proxy").setup(in)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(in.Dir, "config.json")
	if diff := cmp.Diff([]string{"/bin/peer", "-config", file, "-expand-env=false"}, l.Argv); diff != "" {
		t.Errorf("argv (-want +got):\n%s", diff)
	}
	if l.URL != "http://127.0.0.1:40123/echo/" {
		t.Errorf("URL = %s, want the route mcp-proxy derives from the server's name", l.URL)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path []any
		want any
	}{
		{[]any{"mcpProxy", "addr"}, "127.0.0.1:40123"},
		{[]any{"mcpProxy", "type"}, "streamable-http"},
		{[]any{"mcpProxy", "options", "logEnabled"}, false},
		{[]any{"mcpServers", "echo", "transportType"}, "streamable-http"},
		{[]any{"mcpServers", "echo", "url"}, "http://127.0.0.1:40999/mcp"},
		{[]any{"mcpServers", "echo", "options", "logEnabled"}, false},
	} {
		if got := dig(t, m, tt.path...); got != tt.want {
			t.Errorf("%v = %#v, want %#v", tt.path, got, tt.want)
		}
	}
	if toks := dig(t, m, "mcpServers", "echo", "options", "authTokens"); len(toks.([]any)) != 0 {
		t.Errorf("authTokens = %v, want none", toks)
	}
}

// TestMCPAuditSetup: an HTTP proxy with signed JSONL audit in the case directory and its rate
// limit off (60 calls a minute by default would throttle the load, not measure it).
func TestMCPAuditSetup(t *testing.T) {
	in := testPeerInput
	in.Dir = t.TempDir()
	l, err := peerByName(t, "mcp-audit").setup(in)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(in.Dir, "config.yaml")
	if diff := cmp.Diff([]string{"/bin/peer", "-config", file, "-log-level", "warn"}, l.Argv); diff != "" {
		t.Errorf("argv (-want +got):\n%s", diff)
	}
	if l.URL != "http://127.0.0.1:40123/mcp" {
		t.Errorf("URL = %s: mcp-audit joins the request path to the upstream's", l.URL)
	}
	if len(l.Env) != 1 || !strings.HasPrefix(l.Env[0], "AUDIT_SECRET=") || len(l.Env[0]) != len("AUDIT_SECRET=")+64 {
		t.Errorf("Env = %v, want AUDIT_SECRET with 32 bytes in hex (signing is off without a secret)", l.Env)
	}
	m := readYAML(t, file)
	for _, tt := range []struct {
		path []any
		want any
	}{
		{[]any{"proxy", "transport"}, "http"},
		{[]any{"proxy", "upstream"}, "http://127.0.0.1:40999"},
		{[]any{"proxy", "port"}, 40123},
		{[]any{"audit", "storage"}, "jsonl"},
		{[]any{"audit", "path"}, filepath.Join(in.Dir, "audit.jsonl")},
		{[]any{"audit", "sign"}, true},
		{[]any{"audit", "async", "enabled"}, false},
		{[]any{"middleware", "rate_limit", "enabled"}, false},
		{[]any{"middleware", "redact", "enabled"}, true},
		{[]any{"dashboard", "enabled"}, false},
		{[]any{"metrics", "enabled"}, false},
	} {
		if got := dig(t, m, tt.path...); got != tt.want {
			t.Errorf("%v = %#v, want %#v", tt.path, got, tt.want)
		}
	}
	if n, err := mcpAuditRecords(in.Dir); err == nil {
		t.Errorf("records before any audit = %d, want an error (no log yet)", n)
	}
	if err := os.WriteFile(filepath.Join(in.Dir, "audit.jsonl"), []byte("{}\n{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := mcpAuditRecords(in.Dir); err != nil || n != 2 {
		t.Errorf("records = %d, %v; want 2", n, err)
	}
}

func TestSplitEndpoint(t *testing.T) {
	tests := []struct {
		in      string
		want    endpoint
		wantErr bool
	}{
		{in: "http://127.0.0.1:9/mcp", want: endpoint{"http://127.0.0.1:9", "/mcp"}},
		{in: "http://127.0.0.1:9", want: endpoint{"http://127.0.0.1:9", "/"}},
		{in: "https://h/a/b", want: endpoint{"https://h", "/a/b"}},
		{in: "127.0.0.1:9/mcp", wantErr: true},
		{in: "ftp://h/x", wantErr: true},
		{in: "http:///x", wantErr: true},
	}
	for _, tt := range tests {
		got, err := splitEndpoint(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("splitEndpoint(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestPlanPeers: each peer runs on the echo workload in the legacy era, on both upstream stacks
// and at every concurrency, between direct and mcpguard, and has its direct baseline; without
// -peers no peer case is planned.
func TestPlanPeers(t *testing.T) {
	names := []string{"hyprmcp", "mcp-audit"}
	run, _ := plan([]int{1, 64}, names)
	index := map[string]int{}
	for i, c := range run {
		index[c.Name()] = i
	}
	for _, p := range names {
		for _, up := range []string{upstreamHTTP, upstreamSDK} {
			for _, n := range []string{"c1", "c64"} {
				name := p + "/" + up + "/legacy/echo/" + n
				i, ok := index[name]
				if !ok {
					t.Errorf("plan lacks %s", name)
					continue
				}
				base, ok := index[run[i].baseline()]
				if !ok || base > i {
					t.Errorf("%s: baseline %s missing or after it", name, run[i].baseline())
				}
				gw := "gateway/" + up + "/legacy/none/echo/" + n
				if g, ok := index[gw]; !ok || g < i {
					t.Errorf("%s: %s missing or before it (the paths of one comparison run together)", name, gw)
				}
			}
		}
	}
	for _, c := range run {
		if c.Path != pathDirect && c.Path != pathGateway && (c.Era != eraLegacy || c.Workload != workEcho.Name) {
			t.Errorf("peer case %s outside the legacy echo comparison", c.Name())
		}
	}
	without, _ := plan([]int{1, 64}, nil)
	for _, c := range without {
		if c.Path != pathDirect && c.Path != pathGateway {
			t.Errorf("peer case %s planned without peers", c.Name())
		}
	}
	pipes := pipelines()
	for _, want := range []string{"direct/sdk/legacy/echo/c1", "gateway/sdk/legacy/none/echo/c64", "gateway/sdk/legacy/" + pipes[len(pipes)-1].Name + "/echo/c1"} {
		if _, ok := index[want]; !ok {
			t.Errorf("plan lacks %s", want)
		}
	}
}

// TestRoundNames: every round of a case, direct ones included, has its own name, and a case is
// compared with direct of its own round.
func TestRoundNames(t *testing.T) {
	run, _ := plan([]int{1}, []string{"hyprmcp"})
	seen := map[string]bool{}
	for _, c := range repeated(run, 2) {
		if seen[c.Name()] {
			t.Errorf("%s twice", c.Name())
		}
		seen[c.Name()] = true
	}
	c := benchCase{Path: "hyprmcp", Upstream: upstreamSDK, Era: eraLegacy, Workload: "echo", Concurrency: 64, Round: 2}
	if got, want := c.Name(), "hyprmcp/sdk/legacy/echo/c64#2"; got != want {
		t.Errorf("Name = %s, want %s", got, want)
	}
	if got, want := c.baseline(), "direct/sdk/legacy/echo/c64#2"; got != want {
		t.Errorf("baseline = %s, want %s", got, want)
	}
}

// TestSessionOptional: a stateless legacy server (no Mcp-Session-Id, as TBXark mcp-proxy) is
// usable by a client that allows it, and refused by the one that checks mcpguard.
func TestSessionOptional(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(mcp.HeaderSessionID) != "" {
			http.Error(w, "unexpected session", http.StatusBadRequest)
			return
		}
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		if req.ID == nil {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(req.ID) + `,"result":{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"x","version":"1"}}}`))
	}))
	defer srv.Close()
	ctx := context.Background()
	strict := newMCPClient(srv.Client(), srv.URL, eraLegacy, nil)
	if err := strict.open(ctx); err == nil || !strings.Contains(err.Error(), "no Mcp-Session-Id") {
		t.Errorf("strict open: %v, want a missing-session error", err)
	}
	lax := newMCPClient(srv.Client(), srv.URL, eraLegacy, nil)
	lax.sessionOptional = true
	if err := lax.open(ctx); err != nil {
		t.Errorf("open without a session: %v", err)
	}
}

// TestSDKStackThroughFullPipeline runs the go-sdk stack as the harness does, in process: the
// go-sdk client echoes through the go-sdk server directly, and through mcpguard with the full
// pipeline configured for an sdk case (legacy era, bearer token).
func TestSDKStackThroughFullPipeline(t *testing.T) {
	echo := httptest.NewServer(newSDKEchoHandler())
	t.Cleanup(echo.Close)
	ctx := t.Context()
	call := func(t *testing.T, hc *http.Client, url string) {
		t.Helper()
		do, end, err := sdkWorker(ctx, hc, url, 7)
		if err != nil {
			t.Fatal(err)
		}
		defer end()
		for seq := int64(1); seq <= 3; seq++ {
			if err := do(ctx, seq); err != nil {
				t.Fatalf("echo call %d: %v", seq, err)
			}
		}
	}
	t.Run("direct", func(t *testing.T) { call(t, echo.Client(), echo.URL) })

	fx, err := newFixture(t.TempDir(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fx.close)
	t.Setenv(redactionKeyEnv, fx.redactionKey)
	pipes := pipelines()
	full := pipes[len(pipes)-1]
	c := benchCase{Path: pathGateway, Upstream: upstreamSDK, Era: eraLegacy, Pipeline: full.Name, Workload: workEcho.Name, Concurrency: 1, pipe: full, work: workEcho}
	yamlCfg := (&env{fx: fx}).gatewayConfig(c, echo.URL, t.TempDir())
	cfg, err := config.Parse([]byte(yamlCfg), filepath.Join(t.TempDir(), "gateway.yaml"))
	if err != nil {
		t.Fatalf("the generated configuration does not load: %v\n%s", err, yamlCfg)
	}
	p, err := wiring.Build(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	gctx, cancel := context.WithCancel(context.Background())
	g.Start(gctx)
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		cancel()
		g.Close()
	})
	hc := &http.Client{Transport: headerTransport{base: srv.Client().Transport, header: full.header(fx)}}
	t.Run("gateway", func(t *testing.T) { call(t, hc, srv.URL+cfg.Path) })
	t.Run("gateway without the token", func(t *testing.T) {
		if _, _, err := sdkWorker(ctx, srv.Client(), srv.URL+cfg.Path, 1); err == nil {
			t.Error("a go-sdk session opened through the full pipeline without a token")
		}
	})
}

// TestPeerTables: the peers table lists direct, each peer and mcpguard's two pipelines with the
// median over rounds, added latency against direct of the same round, and says why a peer that
// did not build is missing.
func TestPeerTables(t *testing.T) {
	pipes := pipelines()
	full := pipes[len(pipes)-1].Name
	mk := func(path, pipe string, n, round int, p50, p99, rps, cpu float64) caseResult {
		c := benchCase{Path: path, Upstream: upstreamSDK, Era: eraLegacy, Pipeline: pipe, Workload: "echo", Concurrency: n, Round: round}
		r := caseResult{Name: c.Name(), benchCase: c, loadResult: loadResult{Throughput: rps, Latency: latencyStats{P50: p50, P99: p99}}}
		if path != pathDirect {
			r.Gateway = &usage{CPUPerCallUS: cpu, PeakRSSBytes: 20 << 20}
		}
		return r
	}
	r := &report{Date: "2026-01-02T03:04:05Z", Commit: "abc",
		Peers: []peerBuild{
			{Name: "hyprmcp", Repo: "github.com/hyprmcp/mcp-gateway", Commit: "776bbc3e54b337ee", Describe: "v0.4.0", Work: "proxy"},
			{Name: "mcp-proxy", Repo: "github.com/TBXark/mcp-proxy", Error: "go build .: exit status 1"},
		}}
	for round, d := range []float64{100, 300, 200} {
		r.Cases = append(r.Cases,
			mk(pathDirect, "", 1, round+1, d, 2*d, 1000, 0),
			mk("hyprmcp", "", 1, round+1, d+300, 2*d+500, 800, 250),
			mk("hyprmcp", "", 64, round+1, 0, 0, 3000+float64(round)*100, 200),
			mk(pathDirect, "", 64, round+1, 0, 0, 6000, 0),
			mk(pathGateway, full, 64, round+1, 0, 0, 1500, 400),
		)
	}
	md := r.markdown()
	for _, want := range []string{
		"- **hyprmcp**: github.com/hyprmcp/mcp-gateway v0.4.0 (commit 776bbc3e54b3); proxy",
		"- **mcp-proxy** (github.com/TBXark/mcp-proxy): not measured: go build .: exit status 1",
		"median of 3 round(s)",
		"| direct (no gateway) | 0.200 ms | — | — | 6000 | 1.00 | — · — | — | 0 |",
		"| hyprmcp | 0.500 ms | +0.300 ms | +0.500 ms | 3100 | 0.52 | 250 µs · 200 µs | 20.0 MiB | 0 |",
		"| mcpguard, full pipeline (" + full + ") | — | — | — | 1500 | 0.25 | — · 400 µs | 20.0 MiB | 0 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "| mcp-proxy |") {
		t.Errorf("a peer that did not build has a row:\n%s", md)
	}
	if strings.Contains(md, "nothing enabled (none)") {
		t.Errorf("a path that did not run has a row:\n%s", md)
	}
}
