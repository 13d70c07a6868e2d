package wiring

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpguard/mcpguard/internal/config"
)

// TestTracingSection: a tracing section builds the gateway's tracer, and the parts' Close stops
// it; without the section there is none; a CA file that holds no certificate is refused when
// the parts are built, naming the key.
func TestTracingSection(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	parse := func(tracing string) *config.Config {
		cfg, err := config.Parse([]byte("upstreams:\n  - name: a\n    stdio: {command: /bin/true}\n"+tracing), "t.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cfg := parse("tracing: {endpoint: \"http://127.0.0.1:4318/v1/traces\", sample_ratio: 0.5}\n")
	p, err := Build(t.Context(), cfg, nil)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if p.Tracer == nil {
		t.Error("a tracing section built no tracer")
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}

	if p, err = Build(t.Context(), parse(""), nil); err != nil {
		t.Fatalf("Build without tracing: %v", err)
	}
	if p.Tracer != nil {
		t.Error("without a tracing section, a tracer was built")
	}
	p.Close()

	cfg = parse(fmt.Sprintf("tracing: {endpoint: \"https://otel.example.com/v1/traces\", ca_file: %q}\n", notPEM))
	if _, err = Build(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "tracing.ca_file") {
		t.Errorf("a CA file without a certificate: %v; want an error naming tracing.ca_file", err)
	}
}
