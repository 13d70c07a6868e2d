package wiring

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/tracing"
	"github.com/mcpguard/mcpguard/internal/upstream"
)

// flushTimeout bounds the export of the spans still queued when the gateway closes.
const flushTimeout = 5 * time.Second

// tracing builds the tracer of the tracing section (nil c: none). exp, when set, replaces the
// OTLP exporter (Options.TraceExporter).
func (b *builder) tracing(c *config.Tracing, exp tracing.Exporter) error {
	if c == nil {
		return nil
	}
	opts := &tracing.Options{
		Endpoint:       c.Endpoint,
		SampleRatio:    c.SampleRatio,
		ServiceName:    c.ServiceName,
		ServiceVersion: upstream.Version,
		Timeout:        c.Timeout,
		MaxQueue:       c.MaxQueue,
		Exporter:       exp,
		Logger:         b.logger,
	}
	if len(c.Headers) > 0 {
		opts.Headers = make(map[string]string, len(c.Headers))
		for name, v := range c.Headers {
			opts.Headers[name] = v.Reveal()
		}
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return fmt.Errorf("tracing.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("tracing.ca_file: %s holds no PEM certificate", c.CAFile)
		}
		opts.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	t, err := tracing.New(opts)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	b.p.Tracer = t
	return nil
}

// closeTracer exports the spans still queued, within flushTimeout, and stops the tracer.
func (b *builder) closeTracer() error {
	if b.p.Tracer == nil {
		return nil
	}
	// The gateway is closing: no request's context is left to bound the flush.
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	if err := b.p.Tracer.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
