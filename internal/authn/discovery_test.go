package authn

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpguard/mcpguard/internal/oauthclient"
)

func TestDiscoveryURLsFollowTheMCPOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		issuer string
		want   []string
	}{
		{"https://tenant.auth0.com/", []string{
			"https://tenant.auth0.com/.well-known/oauth-authorization-server",
			"https://tenant.auth0.com/.well-known/openid-configuration",
		}},
		{"https://kc.example.com/realms/main", []string{
			"https://kc.example.com/.well-known/oauth-authorization-server/realms/main",
			"https://kc.example.com/.well-known/openid-configuration/realms/main",
			"https://kc.example.com/realms/main/.well-known/openid-configuration",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.issuer, func(t *testing.T) {
			got, err := discoveryURLs(tt.issuer)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckFetchURL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"https://idp.example.com/jwks", true},
		{"http://127.0.0.1:8080/jwks", true},
		{"http://[::1]:8080/jwks", true},
		{"http://localhost/jwks", true},
		{"http://idp.example.com/jwks", false},
		{"https://user:pw@idp.example.com/jwks", false},
		{"file:///etc/passwd", false},
		{"idp.example.com/jwks", false},
	} {
		if err := oauthclient.CheckEndpoint(tt.in); (err == nil) != tt.ok {
			t.Errorf("oauthclient.CheckEndpoint(%q) = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
}
