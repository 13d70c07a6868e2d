// Package tracing is the gateway's OpenTelemetry tracing: the OTLP exporter, a call's span and
// its steps' spans, and the W3C trace context a call brings from its client and carries on to
// its upstream.
//
// The sampling decision is taken once per call, before any span exists (Tracer.Begin): a call
// that is not sampled creates no span, allocates nothing and costs a few comparisons. A call
// whose client sent a valid traceparent follows the client's sampled flag; any other call is
// sampled with the configured ratio. Spans wait for export in a bounded queue (the batch span
// processor's); when it is full they are dropped, and an export that fails is counted and
// logged, rate limited: tracing never slows, blocks or fails a call.
//
// A span carries what an operator needs to find a call — its method, principal, tool, upstream,
// decision and outcome — and never its arguments, its result or a credential.
package tracing

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Defaults of Options.
const (
	DefaultServiceName = "mcpguard"
	DefaultTimeout     = 10 * time.Second
	DefaultMaxQueue    = 2048
)

// maxBatch bounds the spans of one export request.
const maxBatch = 512

// warnEvery is the least time between two warnings about failed exports; the failures in
// between are logged at debug and counted.
const warnEvery = time.Minute

// Exporter sends finished spans somewhere: the OTLP exporter, or for tests and benchmarks one
// that keeps or discards them.
type Exporter = sdktrace.SpanExporter

// Options configure a Tracer.
type Options struct {
	// Endpoint is the OTLP/HTTP traces URL, such as "https://collector:4318/v1/traces". An
	// http URL sends spans in clear text (the configuration allows it for loopback only).
	Endpoint string
	// SampleRatio is the share of calls without a client's trace context that are traced,
	// from 0 to 1.
	SampleRatio float64
	// ServiceName names the gateway in the receiver; "" means DefaultServiceName.
	// ServiceVersion, when set, is its version.
	ServiceName, ServiceVersion string
	// Headers are sent with every export request (a receiver's credentials).
	Headers map[string]string
	// Timeout bounds one export request, its retries included; 0 means DefaultTimeout.
	Timeout time.Duration
	// TLS configures an https Endpoint; nil means the system's roots.
	TLS *tls.Config
	// MaxQueue bounds the spans waiting for export; 0 means DefaultMaxQueue.
	MaxQueue int
	// Exporter, when set, replaces the OTLP exporter (Endpoint, Headers, TLS are then unused).
	Exporter Exporter
	// Logger is the operational log; nil discards.
	Logger *slog.Logger
}

// A Tracer traces calls. A nil *Tracer traces nothing: Begin returns the zero Call.
type Tracer struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
	// always and never are the ratios 1 and 0; otherwise a call is sampled when a random
	// uint64 is below threshold.
	always, never bool
	threshold     uint64
	exp           *countingExporter
}

// New builds a Tracer and its exporter. Nothing is sent until a sampled call ends.
func New(opts *Options) (*Tracer, error) {
	if opts.SampleRatio < 0 || opts.SampleRatio > 1 || math.IsNaN(opts.SampleRatio) {
		return nil, fmt.Errorf("tracing: sample ratio %v is not between 0 and 1", opts.SampleRatio)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	queue := opts.MaxQueue
	if queue <= 0 {
		queue = DefaultMaxQueue
	}
	inner := opts.Exporter
	if inner == nil {
		if opts.Endpoint == "" {
			return nil, errors.New("tracing: no endpoint")
		}
		headers := opts.Headers
		if headers == nil {
			headers = map[string]string{} // never the OTEL_EXPORTER_OTLP_HEADERS of the environment
		}
		eo := []otlptracehttp.Option{
			otlptracehttp.WithEndpointURL(opts.Endpoint),
			otlptracehttp.WithHeaders(headers),
			otlptracehttp.WithTimeout(timeout),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{
				Enabled: true, InitialInterval: 500 * time.Millisecond, MaxInterval: 2 * time.Second, MaxElapsedTime: timeout,
			}),
		}
		if opts.TLS != nil {
			eo = append(eo, otlptracehttp.WithTLSClientConfig(opts.TLS))
		}
		var err error
		// New only builds the client; it connects when the first batch is exported.
		if inner, err = otlptracehttp.New(context.Background(), eo...); err != nil {
			return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
		}
	}
	name := opts.ServiceName
	if name == "" {
		name = DefaultServiceName
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", name)}
	if opts.ServiceVersion != "" {
		attrs = append(attrs, attribute.String("service.version", opts.ServiceVersion))
	}
	exp := &countingExporter{inner: inner, logger: logger}
	provider := sdktrace.NewTracerProvider(
		// The sampling decision is Begin's, taken before a span exists.
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
		sdktrace.WithBatcher(exp,
			sdktrace.WithMaxQueueSize(queue),
			sdktrace.WithMaxExportBatchSize(min(maxBatch, queue)),
			sdktrace.WithExportTimeout(timeout),
		),
	)
	t := &Tracer{
		provider: provider,
		tracer:   provider.Tracer("github.com/mcpguard/mcpguard/internal/gateway"),
		always:   opts.SampleRatio >= 1,
		never:    opts.SampleRatio <= 0,
		exp:      exp,
	}
	if !t.always && !t.never {
		t.threshold = math.MaxUint64
		if v := math.Ldexp(opts.SampleRatio, 64); v < math.Ldexp(1, 64) {
			t.threshold = uint64(v)
		}
	}
	return t, nil
}

// Shutdown exports the spans still queued, within ctx's deadline, and stops the exporter. Calls
// that end after it are not exported.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	if err := t.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: flush spans: %w", err)
	}
	return nil
}

// ExportFailures is the number of export requests that failed since the Tracer was built.
func (t *Tracer) ExportFailures() uint64 {
	if t == nil {
		return 0
	}
	return t.exp.failures.Load()
}

// sample decides whether a call without a client's trace context is traced.
func (t *Tracer) sample() bool {
	switch {
	case t.always:
		return true
	case t.never:
		return false
	}
	return rand.Uint64() < t.threshold
}

// countingExporter counts and logs the failures of the exporter it wraps, and reports none to
// the batch processor, whose error handler would log each.
type countingExporter struct {
	inner    Exporter
	logger   *slog.Logger
	failures atomic.Uint64

	mu        sync.Mutex
	lastWarn  time.Time
	sinceWarn uint64 // failures since lastWarn
}

func (e *countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.inner.ExportSpans(ctx, spans)
	if err == nil {
		return nil
	}
	n := e.failures.Add(1)
	now := time.Now()
	e.mu.Lock()
	e.sinceWarn++
	warn := e.lastWarn.IsZero() || now.Sub(e.lastWarn) >= warnEvery
	failed := e.sinceWarn
	if warn {
		e.lastWarn, e.sinceWarn = now, 0
	}
	e.mu.Unlock()
	if warn {
		e.logger.Warn("trace export failed; the spans are dropped, calls are not affected",
			"spans", len(spans), "failed_exports", failed, "failed_exports_total", n, "err", err)
	} else {
		e.logger.Debug("trace export failed", "spans", len(spans), "failed_exports_total", n, "err", err)
	}
	return nil
}

func (e *countingExporter) Shutdown(ctx context.Context) error { return e.inner.Shutdown(ctx) }

// Discard is an Exporter that drops every span: the cost of tracing without a receiver.
func Discard() Exporter { return discard{} }

type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }
