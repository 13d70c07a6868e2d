package wiring

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/oauthclient"
	"github.com/mcpguard/mcpguard/internal/upstream"
)

// TestUpstreamSpec: what the configuration says of an upstream reaches it as written, with its
// secrets revealed: the child's environment, the headers and bearer token sent with every
// request, the era, and the client credentials with their signing key read from its file.
func TestUpstreamSpec(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "gateway.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MCPGUARD_TEST_SPEC_TOKEN", "s3cret")
	resolved := func(text string) config.Secret {
		t.Helper()
		s := config.NewSecret(text)
		if err := s.Resolve(os.LookupEnv, os.ReadFile); err != nil {
			t.Fatal(err)
		}
		return s
	}

	tests := []struct {
		name string
		in   config.Upstream
		want upstream.Spec
	}{
		{
			name: "stdio",
			in: config.Upstream{Name: "fs", Prefix: "files", Timeout: time.Minute, Stdio: &config.Stdio{
				Command: "@self", Args: []string{"demo-server"}, Dir: "/srv",
				Env:        map[string]config.Secret{"TOKEN": resolved("env:MCPGUARD_TEST_SPEC_TOKEN"), "MODE": config.NewSecret("ro")},
				MinBackoff: time.Second, MaxBackoff: time.Minute, ShutdownGrace: 2 * time.Second,
			}},
			want: upstream.Spec{Name: "fs", Prefix: "files", Timeout: time.Minute, Stdio: &upstream.StdioSpec{
				Command: "@self", Args: []string{"demo-server"}, Dir: "/srv",
				Env:        map[string]string{"TOKEN": "s3cret", "MODE": "ro"},
				MinBackoff: time.Second, MaxBackoff: time.Minute, ShutdownGrace: 2 * time.Second,
			}},
		},
		{
			name: "http with headers and a bearer token",
			in: config.Upstream{Name: "crm", HTTP: &config.HTTP{
				URL: "https://crm.example.com/mcp", Era: config.EraModern,
				Headers:     map[string]config.Secret{"X-Tenant": config.NewSecret("acme")},
				BearerToken: resolved("env:MCPGUARD_TEST_SPEC_TOKEN"),
			}},
			want: upstream.Spec{Name: "crm", HTTP: &upstream.HTTPSpec{
				URL: "https://crm.example.com/mcp", Era: mcpguard.EraModern,
				Header: http.Header{"X-Tenant": {"acme"}, "Authorization": {"Bearer s3cret"}},
			}},
		},
		{
			name: "http to a test upstream whose certificate is not verified",
			in:   config.Upstream{Name: "lab", HTTP: &config.HTTP{URL: "https://127.0.0.1:8443/mcp", TLSInsecureSkipVerify: true}},
			want: upstream.Spec{Name: "lab", HTTP: &upstream.HTTPSpec{URL: "https://127.0.0.1:8443/mcp", Header: http.Header{}, TLSInsecureSkipVerify: true}},
		},
		{
			name: "http auto era with a client secret",
			in: config.Upstream{Name: "billing", HTTP: &config.HTTP{
				URL: "https://billing.example.com/mcp", Era: config.EraAuto,
				ClientCredentials: &config.ClientCredentials{
					ClientID: "gateway", ClientSecret: resolved("env:MCPGUARD_TEST_SPEC_TOKEN"), AuthMethod: config.ClientSecretPost,
					Issuer: "https://login.example.com", Scopes: []string{"billing.read"}, Resource: "https://billing.example.com",
				},
			}},
			want: upstream.Spec{Name: "billing", HTTP: &upstream.HTTPSpec{
				URL: "https://billing.example.com/mcp", Era: mcpguard.EraUnknown, Header: http.Header{},
				ClientCredentials: &oauthclient.Config{
					ClientID: "gateway", ClientSecret: "s3cret", AuthMethod: oauthclient.AuthPost,
					Issuer: "https://login.example.com", Scopes: []string{"billing.read"}, Resource: "https://billing.example.com",
				},
			}},
		},
		{
			name: "sse with a private key",
			in: config.Upstream{Name: "ledger", SSE: &config.SSE{
				URL: "http://127.0.0.1:3002/sse",
				ClientCredentials: &config.ClientCredentials{
					ClientID: "gateway", AuthMethod: config.PrivateKeyJWT, PrivateKey: resolved("file:" + keyFile),
					KeyID: "k1", TokenURL: "http://127.0.0.1:9000/token", AssertionAudience: config.AudienceIssuer,
				},
			}},
			want: upstream.Spec{Name: "ledger", SSE: &upstream.SSESpec{
				URL: "http://127.0.0.1:3002/sse", Header: http.Header{},
				ClientCredentials: &oauthclient.Config{
					ClientID: "gateway", AuthMethod: oauthclient.AuthPrivateKeyJWT, PrivateKey: key,
					KeyID: "k1", TokenURL: "http://127.0.0.1:9000/token", AssertionAudience: oauthclient.AudienceIssuer,
				},
			}},
		},
	}
	sameKey := cmp.Comparer(func(a, b crypto.Signer) bool {
		if a == nil || b == nil {
			return a == b
		}
		return a.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(b.Public())
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := upstreamSpec(&tt.in)
			if err != nil {
				t.Fatal(err)
			}
			// An upstream without breaker: gets the documented default breaker.
			tt.want.Breaker = upstream.BreakerSpec{Failures: 5, FailureRatio: 0.5, MinCalls: 20, Window: time.Minute, CoolDown: 5 * time.Second, HalfOpenCalls: 1}
			if diff := cmp.Diff(tt.want, got, sameKey); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
		})
	}
}

// TestUpstreamSpecUnusableKey: a key that cannot sign is reported with the upstream's name and
// the reference, and no upstream is built.
func TestUpstreamSpecUnusableKey(t *testing.T) {
	uc := &config.Upstream{Name: "ledger", HTTP: &config.HTTP{URL: "https://ledger.example.com/mcp", ClientCredentials: &config.ClientCredentials{
		ClientID: "gateway", AuthMethod: config.PrivateKeyJWT, PrivateKey: config.NewSecret("file:/keys/gateway.pem"),
	}}}
	_, err := upstreamSpec(uc)
	if err == nil || !strings.HasPrefix(err.Error(), `upstream "ledger": private_key: file:/keys/gateway.pem is not resolved`) {
		t.Errorf("err = %v; want the upstream and the unresolved reference named", err)
	}
}
