package gateway

import (
	"runtime"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/cmd/mcpguard/wiring"
	"github.com/mcpguard/mcpguard/internal/tracing"
)

// BenchmarkPipelineTracing is what tracing and metrics cost a call, in one run: four gateways
// that differ only in them, called in turn with a modern tools/call through the whole request
// path (as BenchmarkPipelineMetrics): "off" has neither, and so has "again", whose difference
// with "off" is the method's noise; "unsampled" has metrics and tracing at
// sample_ratio 0; "traced" has metrics and tracing at sample_ratio 1, its spans handed to an
// exporter that discards them (the export itself runs on another goroutine, off the call's
// thread). CPU is the calling thread's, per call (<mode>-cpu-ns); <mode>-added-cpu-ns is the
// difference with "off", which the issue bounds by 2 µs for "unsampled"; <mode>-allocs are the
// allocations of one call, every goroutine counted.
func BenchmarkPipelineTracing(b *testing.B) {
	modes := []string{"off", "again", "unsampled", "traced"}
	calls := map[string]func(){}
	for _, mode := range modes {
		extra := ""
		switch mode {
		case "unsampled":
			extra = "  metrics: {}\ntracing: {endpoint: \"http://127.0.0.1:9/v1/traces\", sample_ratio: 0}\n"
		case "traced":
			extra = "  metrics: {}\ntracing: {endpoint: \"http://127.0.0.1:9/v1/traces\", sample_ratio: 1}\n"
		}
		var tg *testGateway
		tg, calls[mode] = benchPipeline(b, mode, extra, &wiring.Options{TraceExporter: tracing.Discard()})
		if (tg.g.tracer != nil) != (mode == "unsampled" || mode == "traced") {
			b.Fatalf("mode %s, but the gateway has tracer %v", mode, tg.g.tracer)
		}
	}
	allocs := map[string]float64{}
	for _, mode := range modes {
		allocs[mode] = testing.AllocsPerRun(1000, calls[mode])
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu := map[string]time.Duration{}
	n := 0
	for b.Loop() {
		for _, mode := range modes {
			t0 := threadCPU(b)
			calls[mode]()
			cpu[mode] += threadCPU(b) - t0
		}
		n++
	}
	for _, mode := range modes {
		b.ReportMetric(float64(cpu[mode])/float64(n), mode+"-cpu-ns")
		b.ReportMetric(allocs[mode], mode+"-allocs")
		if mode != "off" {
			b.ReportMetric(float64(cpu[mode]-cpu["off"])/float64(n), mode+"-added-cpu-ns")
		}
	}
}
