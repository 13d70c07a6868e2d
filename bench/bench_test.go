package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcp"
)

func TestSummarize(t *testing.T) {
	tests := []struct {
		name string
		ns   []int64
		want latencyStats
	}{
		{name: "empty", ns: nil, want: latencyStats{}},
		{name: "one", ns: []int64{1500}, want: latencyStats{Mean: 1.5, P50: 1.5, P90: 1.5, P99: 1.5, Max: 1.5}},
		{
			name: "hundred, shuffled",
			ns: func() []int64 {
				var v []int64
				for i := 100; i >= 1; i-- {
					v = append(v, int64(i)*1000)
				}
				return v
			}(),
			want: latencyStats{Mean: 50.5, P50: 50, P90: 90, P99: 99, Max: 100},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, summarize(tt.ns)); diff != "" {
				t.Errorf("summarize (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantCPU  time.Duration
		wantPPID int
		wantErr  bool
	}{
		{
			name:     "plain",
			in:       "4242 (mcpguard) S 4000 4242 4000 0 -1 4194560 1017 0 0 0 150 25 0 0 20 0 9 0 12345 1300000000 4000 18446744073709551615",
			wantCPU:  1750 * time.Millisecond,
			wantPPID: 4000,
		},
		{
			name:     "command with spaces and parentheses",
			in:       "7 (a) b (c) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 5 0 0",
			wantCPU:  70 * time.Millisecond,
			wantPPID: 1,
		},
		{name: "truncated", in: "7 (x) R 1 7 7", wantErr: true},
		{name: "no command", in: "7 x R 1", wantErr: true},
		{name: "negative time", in: "7 (x) R 1 7 7 0 -1 0 0 0 0 0 -3 4 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cpu, ppid, err := parseStat([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseStat error = %v, want error %v", err, tt.wantErr)
			}
			if cpu != tt.wantCPU || ppid != tt.wantPPID {
				t.Errorf("parseStat = %v, %d; want %v, %d", cpu, ppid, tt.wantCPU, tt.wantPPID)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name             string
		in               string
		wantRSS, wantHWM int64
		wantErr          bool
	}{
		{name: "both", in: "Name:\tmcpguard\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t9\n", wantRSS: 10 << 20, wantHWM: 20 << 20},
		{name: "missing", in: "Name:\tx\nVmRSS:\t 1 kB\n", wantErr: true},
		{name: "unit", in: "VmHWM:\t1 MB\nVmRSS:\t1 kB\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rss, hwm, err := parseStatus([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseStatus error = %v, want error %v", err, tt.wantErr)
			}
			if rss != tt.wantRSS || hwm != tt.wantHWM {
				t.Errorf("parseStatus = %d, %d; want %d, %d", rss, hwm, tt.wantRSS, tt.wantHWM)
			}
		})
	}
}

func TestReadProcSelf(t *testing.T) {
	s, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 || s.PeakRS < s.RSS {
		t.Errorf("readProc(self) = %+v: want a positive RSS no larger than the peak", s)
	}
}

// TestEchoHTTP drives the echo upstream with the load client in both eras, as the harness does.
func TestEchoHTTP(t *testing.T) {
	srv := httptest.NewServer(newEchoServer(echoOptions{Tools: 50}))
	defer srv.Close()
	hc := srv.Client()
	ctx := context.Background()
	for _, era := range []string{eraLegacy, eraModern} {
		t.Run(era, func(t *testing.T) {
			cl := newMCPClient(hc, srv.URL, era, nil)
			if err := cl.open(ctx); err != nil {
				t.Fatal(err)
			}
			defer cl.close(ctx)
			for _, w := range []workload{workEcho, {Name: "list", Tools: 50, List: true}, {Name: "blob", Blob: 100000}} {
				do, err := workerFor(cl, w, 3)
				if err != nil {
					t.Fatal(err)
				}
				for seq := int64(1); seq <= 3; seq++ {
					if err := do(ctx, seq); err != nil {
						t.Errorf("%s request %d: %v", w.Name, seq, err)
					}
				}
			}
		})
	}
}

func TestEchoHTTPRefusesUnknownSession(t *testing.T) {
	srv := httptest.NewServer(newEchoServer(echoOptions{}))
	defer srv.Close()
	cl := newMCPClient(srv.Client(), srv.URL, eraLegacy, nil)
	cl.session = "never-opened"
	req, err := cl.prepare(mcp.MethodToolsList, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.do(context.Background(), 1, req)
	if err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Errorf("tools/list on an unknown session: err = %v, want HTTP 404", err)
	}
}

// TestEchoStdio checks the stdio framing and the era detection answers a gateway relies on.
func TestEchoStdio(t *testing.T) {
	tests := []struct {
		name   string
		legacy bool
		in     string
		want   []string // substrings of each reply line, in order
	}{
		{
			name: "modern",
			in: `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":` + modernMeta + `}}` + "\n" +
				`{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n" +
				`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},"_meta":` + modernMeta + `}}` + "\n",
			want: []string{`"supportedVersions":["2026-07-28"`, `"resultType":"complete","content":[{"type":"text","text":"hi"}]`},
		},
		{
			name:   "legacy only",
			legacy: true,
			in: `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":` + modernMeta + `}}` + "\n" +
				`{"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{}}}` + "\n" +
				`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}`,
			want: []string{`"code":-32601`, `"protocolVersion":"2025-06-18"`, `{"content":[{"type":"text","text":"hi"}]`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := newEchoServer(echoOptions{LegacyOnly: tt.legacy}).serveStdio(strings.NewReader(tt.in), &out); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d reply lines, want %d:\n%s", len(lines), len(tt.want), out.String())
			}
			for i, w := range tt.want {
				if _, err := jsonrpc.Parse([]byte(lines[i]), jsonrpc.Limits{}); err != nil {
					t.Errorf("line %d is not JSON-RPC: %v", i+1, err)
				}
				if !strings.Contains(lines[i], w) {
					t.Errorf("line %d = %s\nwant it to contain %s", i+1, lines[i], w)
				}
			}
		})
	}
}

func TestResponseEvent(t *testing.T) {
	body := "id: 1_0\nretry: 1000\ndata:\n\n" +
		"id: 1_1\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":1,\"progress\":1}}\n\n" +
		"id: 1_2\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"ok\":true}}\n\n"
	got, err := responseEvent([]byte(body), jsonrpc.IntID(7))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"jsonrpc":"2.0","id":7,"result":{"ok":true}}`; string(got) != want {
		t.Errorf("responseEvent = %s, want %s", got, want)
	}
	if _, err := responseEvent([]byte(body), jsonrpc.IntID(8)); err == nil {
		t.Error("responseEvent found a response to id 8 in a stream without one")
	}
}

// TestPlan checks that every gateway case has its direct baseline in the plan and that the
// stages not built yet are reported rather than run.
func TestPlan(t *testing.T) {
	run, skipped := plan([]int{1, 64}, nil)
	names := map[string]bool{}
	for _, c := range run {
		if names[c.Name()] {
			t.Errorf("case %s planned twice", c.Name())
		}
		names[c.Name()] = true
	}
	for _, c := range run {
		if c.Path == pathGateway && !names[c.baseline()] {
			t.Errorf("%s has no baseline %s in the plan", c.Name(), c.baseline())
		}
	}
	for _, want := range []string{
		"direct/http/legacy/echo/c1", "gateway/http/modern/none/echo/c64", "gateway/stdio/legacy/none/echo/c64",
		"gateway/http/modern/none/list1000/c1", "gateway/stdio/modern/none/blob1MiB/c64",
		"gateway/http-legacy/modern/none/echo/c1", "gateway/http-legacy/modern/+limits/echo/c64",
	} {
		if !names[want] {
			t.Errorf("plan lacks %s", want)
		}
	}
	for _, p := range pipelines() {
		if ok, _ := p.built(); ok {
			continue
		}
		name := "gateway/http/modern/" + p.Name + "/echo/c1"
		if names[name] {
			t.Errorf("%s is planned although its pipeline is not built", name)
		}
		if !strings.Contains(skipped[name], "not yet built") {
			t.Errorf("skipped[%s] = %q, want a not-yet-built reason", name, skipped[name])
		}
	}
}

func TestMarkdownComparesWithDirect(t *testing.T) {
	r := &report{Date: "2026-01-02T03:04:05Z", Commit: "abc", Machine: machine{Cores: 2}}
	r.Cases = []caseResult{
		{Name: "direct/http/modern/echo/c1", benchCase: benchCase{Path: pathDirect, Upstream: upstreamHTTP, Era: eraModern, Workload: "echo", Concurrency: 1},
			loadResult: loadResult{Throughput: 4000, Latency: latencyStats{P50: 200, P99: 1000}}},
		{Name: "gateway/http/modern/none/echo/c1", benchCase: benchCase{Path: pathGateway, Upstream: upstreamHTTP, Era: eraModern, Pipeline: "none", Workload: "echo", Concurrency: 1},
			loadResult: loadResult{Throughput: 3000, Latency: latencyStats{P50: 300, P99: 1500}}, Gateway: &usage{CPUPerCallUS: 35}},
	}
	md := r.markdown()
	for _, want := range []string{
		"| http modern none echo | 1 | 0.200 ms → 0.300 ms | +0.100 ms | 1.000 ms → 1.500 ms | +0.500 ms | 4000 → 3000 | 75 % | 35.0 µs |",
		"| gateway CPU ≤ 40 µs per call (echo, pipeline none) | 35.0 µs",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestMeasureFsync(t *testing.T) {
	r, err := measureFsync(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if r.Latency.Max <= 0 {
		t.Errorf("fsync latency %+v, want positive", r.Latency)
	}
}

func TestEchoHTTPMethodNotAllowed(t *testing.T) {
	srv := httptest.NewServer(newEchoServer(echoOptions{}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET = %d, want 405 (no standalone stream)", resp.StatusCode)
	}
}

// TestMarkdownFullPipeline checks the targets are judged on the full pipeline against one fsync,
// and that the stage table shows each pipeline's cost next to the others.
func TestMarkdownFullPipeline(t *testing.T) {
	pipes := pipelines()
	full := pipes[len(pipes)-1].Name
	gwCase := func(pipe string, p50, p99 float64, cpu float64) caseResult {
		c := benchCase{Path: pathGateway, Upstream: upstreamHTTP, Era: eraModern, Pipeline: pipe, Workload: "echo", Concurrency: 1}
		return caseResult{Name: c.Name(), benchCase: c, loadResult: loadResult{Throughput: 1000, Latency: latencyStats{P50: p50, P99: p99}}, Gateway: &usage{CPUPerCallUS: cpu}}
	}
	r := &report{Date: "2026-01-02T03:04:05Z", Commit: "abc", Machine: machine{Cores: 2},
		Fsync: &fsyncResult{Records: 10, Bytes: 512, Latency: latencyStats{P50: 300, P99: 1500}}}
	r.Cases = []caseResult{
		{Name: "direct/http/modern/echo/c1", benchCase: benchCase{Path: pathDirect, Upstream: upstreamHTTP, Era: eraModern, Workload: "echo", Concurrency: 1},
			loadResult: loadResult{Throughput: 4000, Latency: latencyStats{P50: 200, P99: 1000}}},
		gwCase("none", 300, 1500, 100),
		gwCase(full, 700, 4000, 900),
	}
	md := r.markdown()
	for _, want := range []string{
		"| full pipeline (" + full + "), c=1, http modern: p50 added ≤ fsync p50 + 0.15 ms | 0.500 ms added, fsync p50 0.300 ms | **no** |",
		"| full pipeline (" + full + "), c=1, http modern: p99 added ≤ fsync p99 + 1 ms | 3.000 ms added, fsync p99 1.500 ms | **no** |",
		"| http modern | 1 | 0.300 ms · 100 µs |",
		"0.700 ms · 900 µs |",
		"| gateway CPU ≤ 40 µs per call (echo, pipeline " + full + ") | 900.0 µs",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

// TestRepeatedAlternatesOrder: every second round runs the cases in the opposite order, so that
// drift over a run favours no path; each round holds every case once.
func TestRepeatedAlternatesOrder(t *testing.T) {
	cases := []benchCase{{Path: pathDirect}, {Path: "hyprmcp"}, {Path: pathGateway}}
	got := repeated(cases, 3)
	var order []string
	for _, c := range got {
		order = append(order, fmt.Sprintf("%s#%d", c.Path, c.Round))
	}
	want := "direct#1 hyprmcp#1 gateway#1 gateway#2 hyprmcp#2 direct#2 direct#3 hyprmcp#3 gateway#3"
	if strings.Join(order, " ") != want {
		t.Errorf("order %v, want %s", order, want)
	}
}

// TestTablesFromKeptResults: the tables printed from a kept results file (-tables) are the ones
// the run printed, and a file that is not this harness's is refused with its name.
func TestTablesFromKeptResults(t *testing.T) {
	r := &report{Date: "2026-01-02T03:04:05Z", Commit: "abc", Machine: machine{Cores: 2},
		Fsync: &fsyncResult{Records: 10, Bytes: 512, Latency: latencyStats{P50: 300, P99: 1500}}}
	direct := benchCase{Path: pathDirect, Upstream: upstreamHTTP, Era: eraLegacy, Workload: "echo", Concurrency: 64}
	gw := benchCase{Path: pathGateway, Upstream: upstreamHTTP, Era: eraLegacy, Pipeline: "none", Workload: "echo", Concurrency: 64}
	r.Cases = []caseResult{
		{Name: direct.Name(), benchCase: direct, loadResult: loadResult{Throughput: 4000, Latency: latencyStats{P50: 200, P99: 1000}}},
		{Name: gw.Name(), benchCase: gw, loadResult: loadResult{Throughput: 3000, Latency: latencyStats{P50: 300, P99: 1500}}, Gateway: &usage{CPUPerCallUS: 120}},
	}
	name := filepath.Join(t.TempDir(), "run.json")
	if err := r.writeJSON(name); err != nil {
		t.Fatal(err)
	}
	back, err := readReport(name)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := back.markdown(), r.markdown(); got != want {
		t.Errorf("tables from the kept file differ from the run's:\n got: %s\nwant: %s", got, want)
	}

	other := filepath.Join(t.TempDir(), "other.json")
	if err := os.WriteFile(other, []byte(`{"date":"x","cases":[{}],"surprise":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readReport(other); err == nil || !strings.Contains(err.Error(), "other.json: not a results file") {
		t.Errorf("a foreign file: err = %v, want it refused by name", err)
	}
}
