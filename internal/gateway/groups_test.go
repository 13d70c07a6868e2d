package gateway

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/policy"
)

// TestGroupAndClaimBindingsAtRuntime: a policy that grants a role only through groups: or
// claims: allows a token carrying the group (the default "groups" claim) or the claim value,
// and denies the same token without it — and policy.Decide, given the principal the gateway's
// authenticator produced and the principal `mcpguard policy test` builds from a case, reaches the
// same verdicts.
func TestGroupAndClaimBindingsAtRuntime(t *testing.T) {
	const tool = "finance.get_market_overview"
	tests := []struct {
		name    string
		binding string
		with    jwt.MapClaims // claims of a token the binding matches
		without jwt.MapClaims // the same token without what the binding needs
		// the principals a `policy test` case would give for the same two tokens
		withCase, withoutCase policy.Principal
	}{
		{
			name:        "groups",
			binding:     "groups: [portfolio-managers]",
			with:        jwt.MapClaims{"sub": "pm-agent", "groups": []string{"analysts", "portfolio-managers"}},
			without:     jwt.MapClaims{"sub": "pm-agent", "groups": []string{"analysts"}},
			withCase:    policy.Principal{Subject: "pm-agent", Groups: []string{"analysts", "portfolio-managers"}},
			withoutCase: policy.Principal{Subject: "pm-agent", Groups: []string{"analysts"}},
		},
		{
			name:        "claims",
			binding:     "claims: {department: [trading]}",
			with:        jwt.MapClaims{"sub": "desk-agent", "department": "trading"},
			without:     jwt.MapClaims{"sub": "desk-agent", "department": "research"},
			withCase:    policy.Principal{Subject: "desk-agent", Claims: map[string]any{"department": "trading"}},
			withoutCase: policy.Principal{Subject: "desk-agent", Claims: map[string]any{"department": "research"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			policyFile := filepath.Join(t.TempDir(), "policy.yaml")
			writeFile(t, policyFile, []byte(`
roles:
  - role: Overview
    permissions:
      - tool_name: `+tool+`
bindings:
  - role: Overview
    `+tt.binding+`
`))
			g, url, session := newPolicyGateway(t, policyFile)
			call := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"` + tool + `","arguments":{}}}`

			// decide asks the policy offline about the principal the gateway authenticates
			// from the same request headers.
			decide := func(h map[string]string) policy.Decision {
				t.Helper()
				r := httptest.NewRequest(http.MethodPost, url, nil)
				r.Header.Set("Authorization", h["Authorization"])
				p, err := g.authn.Authenticate(r)
				if err != nil {
					t.Fatalf("Authenticate: %v", err)
				}
				// The policy sees the authenticated principal itself, not a copy.
				if got, _ := principalOf(r.WithContext(authn.WithPrincipal(r.Context(), p))); got != p {
					t.Errorf("principalOf returned %p, want the authenticated principal %p", got, p)
				}
				return g.policy.Policy().Decide(*p, policy.Call{Kind: policy.KindTool, Name: tool, Arguments: []byte(`{}`)})
			}

			allowed := session(tt.with)
			st, _, msg := post(t, url, allowed, call)
			if st != http.StatusOK || msg["result"] == nil {
				t.Errorf("with the %s binding matched: %d %v; want 200 with a result", tt.name, st, msg)
			}
			if d := decide(allowed); !d.Allow || d.Rule != "role:Overview/permission:0" {
				t.Errorf("policy.Decide on the gateway's principal = %+v; want allowed by role:Overview/permission:0", d)
			}
			if d := g.policy.Policy().Decide(tt.withCase, policy.Call{Kind: policy.KindTool, Name: tool}); !d.Allow {
				t.Errorf("policy.Decide on the policy-test principal %+v = %+v; want allowed", tt.withCase, d)
			}

			denied := session(tt.without)
			st, _, msg = post(t, url, denied, call)
			if st != http.StatusForbidden || errCode(msg) != -31001 || !strings.Contains(errMessage(msg), "denied by policy") {
				t.Errorf("without the %s binding matched: %d %v; want 403 -31001 denied by policy", tt.name, st, msg)
			}
			if d := decide(denied); d.Allow || d.Rule != policy.RuleDefaultDeny {
				t.Errorf("policy.Decide on the gateway's principal = %+v; want denied by %s", d, policy.RuleDefaultDeny)
			}
			if d := g.policy.Policy().Decide(tt.withoutCase, policy.Call{Kind: policy.KindTool, Name: tool}); d.Allow {
				t.Errorf("policy.Decide on the policy-test principal %+v = %+v; want denied", tt.withoutCase, d)
			}
		})
	}
}

func errMessage(msg map[string]any) string {
	e, _ := msg["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}
