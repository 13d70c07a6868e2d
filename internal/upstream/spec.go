package upstream

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/oauthclient"
)

// Spec says how to reach one upstream. Its secrets (header values, the child's environment, the
// client credentials) are resolved values: they are sent where they belong and shown nowhere, and
// LogValue prints none of them.
type Spec struct {
	// Name identifies the upstream in logs and errors.
	Name string
	// Prefix namespaces the upstream's tools and prompts; "" means none.
	Prefix string
	// Timeout is the deadline of one call. Zero means New's defaultTimeout.
	Timeout time.Duration

	// Breaker, when enabled, fails calls fast while the upstream keeps failing; Bulkhead caps
	// its calls in flight. Zero values: no breaker, no cap.
	Breaker  BreakerSpec
	Bulkhead BulkheadSpec

	// Exactly one transport is set.
	Stdio *StdioSpec
	HTTP  *HTTPSpec
	SSE   *SSESpec
}

// StdioSpec describes an upstream child process.
type StdioSpec struct {
	// Command is "@self" (Options.Executable), an absolute path, or a name looked up on PATH.
	Command string
	Args    []string
	// Env is the child's environment on top of the PATH, HOME and LANG it inherits, which it
	// may override.
	Env map[string]string
	// Dir is the child's working directory; empty means the gateway's.
	Dir string
	// MinBackoff and MaxBackoff bound the delay before a child that exited is restarted. Zero
	// means 250ms and 30s.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// ShutdownGrace is how long the child has to exit once its stdin is closed. Zero means the
	// stdio transport's default.
	ShutdownGrace time.Duration
}

// HTTPSpec describes a Streamable HTTP upstream.
type HTTPSpec struct {
	URL string
	// Era is the protocol era to speak: mcpguard.EraModern, mcpguard.EraLegacy, or
	// mcpguard.EraUnknown to probe modern and fall back to legacy.
	Era mcpguard.Era
	// Header is sent with every request, the upstream's own Authorization included.
	Header http.Header
	// ClientCredentials, when set, obtains the upstream's bearer token with the OAuth client
	// credentials grant.
	ClientCredentials *oauthclient.Config
	// TLSInsecureSkipVerify accepts any certificate from an https upstream (tests only). The
	// token endpoint of ClientCredentials is verified all the same.
	TLSInsecureSkipVerify bool
}

// SSESpec describes an HTTP+SSE upstream (protocol 2024-11-05).
type SSESpec struct {
	URL string
	// Header and ClientCredentials are as for HTTPSpec.
	Header            http.Header
	ClientCredentials *oauthclient.Config
}

// LogValue shows the upstream's name and transport, never its headers, environment or
// credentials.
func (s Spec) LogValue() slog.Value {
	transport := "none"
	switch {
	case s.Stdio != nil:
		transport = "stdio"
	case s.HTTP != nil:
		transport = "http"
	case s.SSE != nil:
		transport = "sse"
	}
	return slog.GroupValue(slog.String("name", s.Name), slog.String("transport", transport))
}
