package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/testenv"
)

// jaegerConfig runs Jaeger (v2, an OpenTelemetry Collector distribution) with in-memory storage,
// its OTLP/HTTP receiver and its query API on loopback ports, and nothing else listening: no
// gRPC receiver, no self-telemetry endpoint.
const jaegerConfig = `
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:%d
    grpc:
      endpoint: 127.0.0.1:%d
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 1000
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`

// jaegerTrace is a trace as Jaeger's query API (/api/traces/{id}) returns it.
type jaegerTrace struct {
	Spans []struct {
		SpanID        string `json:"spanID"`
		OperationName string `json:"operationName"`
		References    []struct {
			RefType string `json:"refType"`
			TraceID string `json:"traceID"`
			SpanID  string `json:"spanID"`
		} `json:"references"`
		Tags []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		} `json:"tags"`
		ProcessID string `json:"processID"`
	} `json:"spans"`
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
	} `json:"processes"`
}

// TestTracingReachesJaeger: the spans of one call, sent by the gateway's OTLP exporter, arrive in
// a real receiver (Jaeger, MCPGUARD_TEST_JAEGER) as one trace: the call's span under the
// client's span, a span per pipeline step under the call's, the upstream told the upstream
// step's span; the call's span names the principal, the tool and the decision, and no span
// carries the arguments.
func TestTracingReachesJaeger(t *testing.T) {
	bin := os.Getenv("MCPGUARD_TEST_JAEGER")
	if bin == "" {
		testenv.Missing(t, "MCPGUARD_TEST_JAEGER is not set: build Jaeger v1.75.0 (cmd/jaeger; .ci/run does) and set it to the binary")
	}
	if _, err := os.Stat(bin); err != nil {
		testenv.Missing(t, "MCPGUARD_TEST_JAEGER: %v", err)
	}
	ports := freePorts(t, 3)
	otlp, query, queryGRPC := ports[0], ports[1], ports[2]
	cfgFile := filepath.Join(t.TempDir(), "jaeger.yaml")
	writeFile(t, cfgFile, fmt.Appendf(nil, jaegerConfig, query, queryGRPC, otlp))
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config", cfgFile)
	var out testenv.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start jaeger: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("jaeger's output:\n%s", out.String())
		}
	})
	api := fmt.Sprintf("http://127.0.0.1:%d", query)
	client := &http.Client{Timeout: 5 * time.Second}
	waitFor(t, 60*time.Second, "jaeger's query API", exited, func() bool {
		resp, err := client.Get(api + "/api/services")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	tg := newTracedGateway(t, fmt.Sprintf("tracing: {endpoint: \"http://127.0.0.1:%d/v1/traces\", sample_ratio: 1, service_name: mcpguard-test}", otlp), nil)
	tg.call(t, clientTraceparent)

	var tr jaegerTrace
	waitFor(t, 60*time.Second, "the call's trace in jaeger, every step's span with it", exited, func() bool {
		resp, err := client.Get(api + "/api/traces/" + clientTraceID)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var body struct{ Data []jaegerTrace }
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil || len(body.Data) != 1 {
			return false
		}
		tr = body.Data[0]
		return len(tr.Spans) >= 1+len(tracedSteps)
	})

	byName := map[string]int{}
	var found []string
	for i, s := range tr.Spans {
		byName[s.OperationName] = i
		found = append(found, s.OperationName)
	}
	t.Logf("trace %s in jaeger: %d spans %v", clientTraceID, len(tr.Spans), found)
	ci, ok := byName["tools/call"]
	if !ok {
		t.Fatalf("no tools/call span in the trace: %+v", tr)
	}
	call := tr.Spans[ci]
	if p := tr.Processes[call.ProcessID]; p.ServiceName != "mcpguard-test" {
		t.Errorf("call span's service %q, want mcpguard-test", p.ServiceName)
	}
	if len(call.References) != 1 || call.References[0].SpanID != clientSpanID || call.References[0].RefType != "CHILD_OF" {
		t.Errorf("call span references %+v; want CHILD_OF the client's span %s", call.References, clientSpanID)
	}
	for _, step := range tracedSteps {
		i, ok := byName[step]
		if !ok {
			t.Errorf("no span for step %s in jaeger", step)
			continue
		}
		if refs := tr.Spans[i].References; len(refs) != 1 || refs[0].SpanID != call.SpanID || refs[0].TraceID != clientTraceID {
			t.Errorf("step %s references %+v; want CHILD_OF the call's span %s", step, refs, call.SpanID)
		}
	}
	if i, ok := byName["upstream"]; ok {
		want := "00-" + clientTraceID + "-" + tr.Spans[i].SpanID + "-01"
		if h := tg.lastHeard(t); h.header != want || h.meta != want {
			t.Errorf("the upstream heard traceparent header %q, _meta %q; want the upstream step's %s", h.header, h.meta, want)
		}
	}
	tags := map[string]string{}
	for _, kv := range call.Tags {
		tags[kv.Key] = fmt.Sprint(kv.Value)
	}
	for k, v := range map[string]string{"enduser.id": "anonymous", "gen_ai.tool.name": "finance.get_stock_analysis", "mcpguard.decision": "allow", "mcpguard.outcome": "ok"} {
		if tags[k] != v {
			t.Errorf("call span tag %s = %q, want %q", k, tags[k], v)
		}
	}
	raw, _ := json.Marshal(tr.Spans)
	if bytes.Contains(raw, []byte(`"`+secretArgument+`"`)) || bytes.Contains(raw, []byte("symbol")) {
		t.Errorf("the trace in jaeger carries the call's arguments: %s", raw)
	}
}

// freePorts returns n distinct free loopback ports.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		_, p, _ := net.SplitHostPort(l.Addr().String())
		port, _ := strconv.Atoi(p)
		ports = append(ports, port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// waitFor polls cond until it holds, the process behind exited ends, or within passes.
func waitFor(t *testing.T, within time.Duration, what string, exited <-chan struct{}, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		select {
		case <-exited:
			t.Fatalf("waiting for %s: the receiver exited", what)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
