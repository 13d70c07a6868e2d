package tracing

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

const validTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestParseTraceparent(t *testing.T) {
	cases := []struct {
		name, in string
		ok       bool
		sampled  bool
	}{
		{"sampled", validTraceparent, true, true},
		{"not sampled", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true, false},
		{"random flag kept, sampled", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03", true, true},
		{"later version with more fields", "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-the-future-holds", true, true},
		{"empty", "", false, false},
		{"version ff", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false, false},
		{"upper-case hex", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", false, false},
		{"zero trace-id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", false, false},
		{"zero parent-id", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false, false},
		{"version 00 with more fields", validTraceparent + "-extra", false, false},
		{"version 00 with unknown flags", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09", false, false},
		{"later version glued to more", "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09x", false, false},
		{"short trace-id", "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", false, false},
		{"not hex", "00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01", false, false},
		{"wrong separators", "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := ParseTraceparent(tc.in)
			if ok != tc.ok {
				t.Fatalf("ParseTraceparent(%q) ok = %v, want %v", tc.in, ok, tc.ok)
			}
			if ok && c.TraceFlags.IsSampled() != tc.sampled {
				t.Errorf("sampled = %v, want %v", c.TraceFlags.IsSampled(), tc.sampled)
			}
		})
	}
}

func TestFormatTraceparentRoundTrips(t *testing.T) {
	c, ok := ParseTraceparent(validTraceparent)
	if !ok {
		t.Fatal("the valid traceparent did not parse")
	}
	if got := FormatTraceparent(trace.NewSpanContext(c)); got != validTraceparent {
		t.Errorf("FormatTraceparent = %q, want %q", got, validTraceparent)
	}
}

func TestParseTraceparentAllocatesNothing(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { ParseTraceparent(validTraceparent) }); n != 0 {
		t.Errorf("ParseTraceparent allocates %v times per call, want 0", n)
	}
}

// FuzzParseTraceparent checks the parser against OpenTelemetry's own (propagation.TraceContext),
// an independent reading of the same specification: both accept the same values and read the
// same trace-id, parent-id and flags. They differ on one form only: a version 00 value followed by
// a lone "-", which OpenTelemetry accepts and the specification does not (version 00 is exactly
// 55 characters); ParseTraceparent refuses it.
func FuzzParseTraceparent(f *testing.F) {
	for _, s := range []string{
		validTraceparent,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-x",
		"fe-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff-",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
		validTraceparent + "-",
		"",
		"-",
		"00---",
	} {
		f.Add(s)
	}
	ref := propagation.TraceContext{}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseTraceparent(s)
		if len(s) == 56 && s[:2] == "00" && s[55] == '-' {
			if ok {
				t.Fatalf("ParseTraceparent(%q) accepted a version 00 value longer than 55 characters", s)
			}
			return
		}
		want := trace.SpanContextFromContext(ref.Extract(context.Background(), propagation.MapCarrier{"traceparent": s}))
		if ok != want.IsValid() {
			t.Fatalf("ParseTraceparent(%q) ok = %v; OpenTelemetry's reading: valid = %v", s, ok, want.IsValid())
		}
		if !ok {
			return
		}
		if got.TraceID != want.TraceID() || got.SpanID != want.SpanID() || got.TraceFlags != want.TraceFlags() {
			t.Fatalf("ParseTraceparent(%q) = %v %v %v; OpenTelemetry reads %v %v %v", s,
				got.TraceID, got.SpanID, got.TraceFlags, want.TraceID(), want.SpanID(), want.TraceFlags())
		}
		if f := FormatTraceparent(trace.NewSpanContext(got)); f[3:52] != s[3:52] {
			t.Fatalf("FormatTraceparent of %q = %q: trace-id or parent-id changed", s, f)
		}
	})
}

// TestTransportSendsTheTraceContext: a request made under a trace context carries it as headers;
// one made without carries none, and a stale traceparent on the request is replaced.
func TestTransportSendsTheTraceContext(t *testing.T) {
	got := make(chan http.Header, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() }))
	defer srv.Close()
	client := &http.Client{Transport: Transport(nil)}

	c, _ := ParseTraceparent(validTraceparent)
	c.TraceState, _ = trace.ParseTraceState("vendor=abc")
	ctx := trace.ContextWithRemoteSpanContext(t.Context(), trace.NewSpanContext(c))
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, nil)
	req.Header.Set("Traceparent", "00-11111111111111111111111111111111-2222222222222222-01")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := <-got
	if h.Get("Traceparent") != validTraceparent || h.Get("Tracestate") != "vendor=abc" {
		t.Errorf("headers under a trace context: traceparent %q tracestate %q; want %q and vendor=abc",
			h.Get("Traceparent"), h.Get("Tracestate"), validTraceparent)
	}
	if req.Header.Get("Traceparent") == validTraceparent {
		t.Error("the transport changed the caller's request")
	}

	req, _ = http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
	if resp, err = client.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := <-got; h.Get("Traceparent") != "" || h.Get("Tracestate") != "" {
		t.Errorf("a request without a trace context got traceparent %q tracestate %q", h.Get("Traceparent"), h.Get("Tracestate"))
	}
}
