package config

import (
	"net/http"
	"net/url"
	"time"

	"go.yaml.in/yaml/v3"
)

// Tracing sends a trace of each sampled call — a span for the call, a child span for each step
// of the pipeline — to an OpenTelemetry receiver over OTLP/HTTP (docs/tracing.md). Absent: no
// tracing, and the request path makes no span.
type Tracing struct {
	// Endpoint is the receiver's OTLP/HTTP traces URL, such as
	// "https://otel-collector.internal:4318/v1/traces". Required. An http URL (no TLS) is
	// accepted for a loopback host only; any other host needs https.
	Endpoint string
	// SampleRatio is the share of calls traced, from 0 to 1, among the calls whose client sent
	// no trace context; a client's traceparent decides for its own calls (its sampled flag).
	// Default 1.
	SampleRatio float64
	// ServiceName is the service.name the receiver shows. Default "mcpguard", at most 255
	// characters.
	ServiceName string
	// Headers are sent with every export request: the receiver's credentials. Literals or secret
	// references; Authorization and Proxy-Authorization must be references.
	Headers map[string]Secret
	// Timeout bounds one export request, its retries included. Default 10s, between 1s and 1m.
	Timeout time.Duration
	// MaxQueue bounds the spans waiting for export; beyond it spans are dropped, never calls
	// slowed. Default 2048, between 64 and 1000000.
	MaxQueue int
	// CAFile, when set, is a PEM bundle of the CAs that sign the receiver's certificate, in place
	// of the system's (https endpoints only): absolute, or relative to the configuration file.
	CAFile string
}

// Defaults of the tracing section.
const (
	DefaultTraceSampleRatio = 1.0
	DefaultTraceServiceName = "mcpguard"
	DefaultTraceTimeout     = 10 * time.Second
	DefaultTraceMaxQueue    = 2048
)

// tracing decodes the tracing section into c.Tracing, with its defaults.
func (d *decoder) tracing(n *yaml.Node, path string, c *Config) {
	t := &Tracing{SampleRatio: DefaultTraceSampleRatio, ServiceName: DefaultTraceServiceName,
		Timeout: DefaultTraceTimeout, MaxQueue: DefaultTraceMaxQueue}
	c.Tracing = t
	d.mapping(n, path, []field{
		{"endpoint", d.str(&t.Endpoint)},
		{"sample_ratio", d.number(&t.SampleRatio)},
		{"service_name", d.str(&t.ServiceName)},
		{"headers", d.secrets(&t.Headers)},
		{"timeout", d.duration(&t.Timeout)},
		{"max_queue", d.integer(&t.MaxQueue)},
		{"ca_file", d.str(&t.CAFile)},
	}, nil)
}

// tracing checks the tracing section.
func (v *validator) tracing(t *Tracing) {
	const p = "tracing"
	switch u, err := url.Parse(t.Endpoint); {
	case t.Endpoint == "":
		v.add(p+".endpoint", `required: the receiver's OTLP/HTTP traces URL, such as "https://otel-collector:4318/v1/traces"`)
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		v.add(p+".endpoint", "%s is not an http or https URL with a host (and without credentials, query or fragment)", quote(t.Endpoint))
	case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
		v.add(p+".endpoint", "%s would send traces in clear text to another machine; use an https URL", quote(t.Endpoint))
	case u.Scheme == "http" && t.CAFile != "":
		v.add(p+".ca_file", "applies to an https endpoint only; %s is http", quote(t.Endpoint))
	}
	if !(t.SampleRatio >= 0 && t.SampleRatio <= 1) {
		v.add(p+".sample_ratio", "%v is not between 0 and 1", t.SampleRatio)
	}
	if t.ServiceName == "" || len(t.ServiceName) > 255 || !validHeaderValue(t.ServiceName) {
		v.add(p+".service_name", "%s: want 1 to 255 printable characters", quote(t.ServiceName))
	}
	if t.Timeout < time.Second || t.Timeout > time.Minute {
		v.add(p+".timeout", "%v is not between 1s and 1m", t.Timeout)
	}
	if t.MaxQueue < 64 || t.MaxQueue > 1_000_000 {
		v.add(p+".max_queue", "%d is not between 64 and 1000000", t.MaxQueue)
	}
	for _, name := range sortedKeys(t.Headers) {
		// Content-Type and the like are refused by credentials, as for an upstream.
		if validHeaderName(name) && http.CanonicalHeaderKey(name) == "Content-Encoding" {
			v.add(pathKey(p+".headers", name), "Content-Encoding is set by the exporter and cannot be configured")
		}
	}
	// Clear text goes to loopback only (the endpoint's check), so credentials may go over http.
	v.credentials(p, t.Headers, Secret{}, false)
}
