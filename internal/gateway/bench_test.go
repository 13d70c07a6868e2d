package gateway

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mcpguard/mcpguard/cmd/mcpguard/wiring"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
)

// benchGateway is a gateway with four prefixed upstreams that are never started: routing a
// prefixed name needs no connection.
func benchGateway(b *testing.B) *Gateway {
	b.Helper()
	yaml := `
listen: 127.0.0.1:0
upstreams:
  - name: finance
    http: {url: "http://127.0.0.1:9/mcp", era: modern}
  - name: crm
    http: {url: "http://127.0.0.1:9/mcp", era: legacy}
  - name: files
    stdio: {command: /bin/true}
  - name: search
    sse: {url: "http://127.0.0.1:9/sse"}
`
	cfg, err := config.Parse([]byte(yaml), "bench.yaml")
	if err != nil {
		b.Fatal(err)
	}
	g, err := newFromConfig(b.Context(), cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Close() })
	return g
}

// BenchmarkParseAndRoute measures the gateway's per-call envelope work before forwarding: the
// strict parse of a realistic tools/call, reading its name, and routing it to the upstream of
// its prefix.
func BenchmarkParseAndRoute(b *testing.B) {
	cases := []struct {
		name string
		era  mcpguard.Era
		body string
	}{
		{
			name: "legacy",
			era:  mcpguard.EraLegacy,
			body: `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"crm.lookup_customer",` +
				`"arguments":{"customer_id":"C-100234","fields":["name","email","tier","open_tickets"],"include_history":true,"limit":25},` +
				`"_meta":{"progressToken":"tok-42"}}}`,
		},
		{
			name: "modern",
			era:  mcpguard.EraModern,
			body: `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"crm.lookup_customer",` +
				`"arguments":{"customer_id":"C-100234","fields":["name","email","tier","open_tickets"],"include_history":true,"limit":25},` +
				`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","progressToken":"tok-42",` +
				`"io.modelcontextprotocol/clientCapabilities":{"sampling":{},"elicitation":{}},` +
				`"io.modelcontextprotocol/clientInfo":{"name":"agent","version":"1.4.2"}}}}`,
		},
	}
	g := benchGateway(b)
	ctx := context.Background()
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			body := []byte(tc.body)
			c := &caller{era: tc.era}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				msg, err := jsonrpc.Parse(body, g.lim)
				if err != nil {
					b.Fatal(err)
				}
				raw, _ := jsonrpc.Lookup(msg.Params, "name")
				name, _ := jsonrpc.String(raw)
				up, orig, err := g.routeName(ctx, c, kindTools, name)
				if err != nil || up.Name() != "crm" || orig != "lookup_customer" {
					b.Fatalf("routeName(%q) = %v, %q, %v", name, up, orig, err)
				}
			}
		})
	}
}

// benchPipeline is a gateway for the pipeline's CPU benchmarks: API keys, a role policy, tool
// pinning, a rate limit and the signed audit log in front of the stdio test upstream, with
// admin holding the admin section's further keys (after its listen) and what follows it. It
// returns the gateway and a modern tools/call through its whole request path, already made
// 200 times (the upstream connected, the key and the tool list cached); what names the
// gateway in a failure.
func benchPipeline(b *testing.B, what, admin string, opts *wiring.Options) (*testGateway, func()) {
	b.Helper()
	dir := b.TempDir()
	keysDB := filepath.Join(dir, "keys.db")
	policyFile := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte("roles:\n  - role: Echoer\n    permissions:\n      - tool_name: rec.echo\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	section, _, _ := auditConfig(b)
	section = strings.Replace(section, "  checkpoint_every: 2\n", "", 1) // the default: a checkpoint per 10000 records
	tg := newTestGatewayWith(b, fmt.Sprintf(`api_keys_database: %q
policy_file: %q
tool_pinning: {database: %q, trust_on_first_use: true}
admin:
  listen: 127.0.0.1:1
%scontainment:
  rate_limits:
    per_principal: {calls_per_second: 1000000}
%s`, keysDB, policyFile, filepath.Join(dir, "pins.db"), admin, section), opts)
	key := newRoleKey(b, keysDB, "bench-agent", "Echoer")
	h := tg.g.Handler()
	body := []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"quote VNM"},` + modernMeta + `}}`)
	call := func() {
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/mcp", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+key)
		for k, v := range modernHeaders("tools/call", "rec.echo") {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "echo: quote VNM") {
			b.Fatalf("call with %s: %d %s", what, rec.Code, rec.Body)
		}
	}
	for range 200 {
		call()
	}
	return tg, call
}

// BenchmarkPipelineMetrics is what the metrics cost a call, with metrics off and on in one run:
// a modern tools/call through the whole request path (Handler: API key authentication, then
// route, contain, pin, the policy, the rate limits, the audit record, the stdio upstream, the
// outcome record) of two gateways that differ only in admin.metrics, called in turn. The CPU
// time is that of the thread the calls run on (locked to it): the request path's own work,
// where every measurement the metrics make is taken, without the audit log's fsyncs and the
// other gateway's background work, which would drown a few microseconds in noise. off-cpu-ns
// and on-cpu-ns are per call; added-cpu-ns is their difference, which the issue bounds by 2 µs.
func BenchmarkPipelineMetrics(b *testing.B) {
	calls := map[string]func(){}
	for _, mode := range []string{"off", "on"} {
		metricsSection := ""
		if mode == "on" {
			metricsSection = "  metrics: {}\n"
		}
		var tg *testGateway
		tg, calls[mode] = benchPipeline(b, "metrics "+mode, metricsSection, nil)
		if (tg.g.metrics != nil) != (mode == "on") {
			b.Fatalf("metrics %s, but the gateway has metrics %v", mode, tg.g.metrics)
		}
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var off, on time.Duration
	n := 0
	for b.Loop() {
		t0 := threadCPU(b)
		calls["off"]()
		t1 := threadCPU(b)
		calls["on"]()
		t2 := threadCPU(b)
		off, on = off+(t1-t0), on+(t2-t1)
		n++
	}
	b.ReportMetric(float64(off)/float64(n), "off-cpu-ns")
	b.ReportMetric(float64(on)/float64(n), "on-cpu-ns")
	b.ReportMetric(float64(on-off)/float64(n), "added-cpu-ns")
}

// threadCPU is the CPU time of the calling thread.
func threadCPU(b *testing.B) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ts.Nano())
}
