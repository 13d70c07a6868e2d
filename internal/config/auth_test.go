package config

import (
	"strings"
	"testing"
	"time"
)

func TestAuthClaimsDecoded(t *testing.T) {
	cfg, err := parseFake([]byte(`
upstreams:
  - name: finance
    stdio: {command: "@self"}
auth:
  resource: "https://mcp.example.com/mcp"
  issuer: "https://idp.example.com"
  roles_claim: realm_access.roles
  groups_claim: "https://example.com/groups"
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Auth == nil {
		t.Fatal("no auth section")
	}
	if got, want := cfg.Auth.RolesClaim, "realm_access.roles"; got != want {
		t.Errorf("roles_claim = %q, want %q", got, want)
	}
	if got, want := cfg.Auth.GroupsClaim, "https://example.com/groups"; got != want {
		t.Errorf("groups_claim = %q, want %q", got, want)
	}
}

// TestAuthMaxTokenLifetime: max_token_lifetime defaults to 24h, takes a YAML duration, and must
// be positive and at most 720h.
func TestAuthMaxTokenLifetime(t *testing.T) {
	const base = `
upstreams:
  - name: finance
    stdio: {command: "@self"}
auth:
  resource: "https://mcp.example.com/mcp"
  issuer: "https://idp.example.com"
`
	tests := []struct {
		name    string
		line    string
		want    time.Duration
		problem string // "" when the file is valid
	}{
		{"default", "", DefaultMaxTokenLifetime, ""},
		{"set", "  max_token_lifetime: 2h\n", 2 * time.Hour, ""},
		{"the bound", "  max_token_lifetime: 720h\n", 720 * time.Hour, ""},
		{"zero", "  max_token_lifetime: 0s\n", 0, "auth.max_token_lifetime: 0s is out of range"},
		{"negative", "  max_token_lifetime: -1h\n", 0, "auth.max_token_lifetime: -1h0m0s is out of range"},
		{"over the bound", "  max_token_lifetime: 721h\n", 0, "auth.max_token_lifetime: 721h0m0s is out of range"},
		{"no unit", "  max_token_lifetime: 3600\n", 0, "a unit is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseFake([]byte(base+tt.line), "t.yaml")
			if tt.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tt.problem) {
					t.Fatalf("error %v, want one containing %q", err, tt.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Auth.MaxTokenLifetime != tt.want {
				t.Errorf("max_token_lifetime = %v, want %v", cfg.Auth.MaxTokenLifetime, tt.want)
			}
		})
	}
}
