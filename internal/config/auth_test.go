package config

import "testing"

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
