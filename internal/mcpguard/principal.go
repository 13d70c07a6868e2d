package mcpguard

import (
	"slices"
	"time"
)

// AuthMethod names how a principal proved who it is.
type AuthMethod string

// Authentication methods.
const (
	MethodJWT         AuthMethod = "jwt"      // a bearer access token issued by the configured authorization server
	MethodAPIKey      AuthMethod = "apikey"   // an API key issued by the gateway
	MethodOperator    AuthMethod = "operator" // a human operator's session (password + TOTP)
	MethodCertificate AuthMethod = "mtls"     // a client certificate verified by the TLS listener
)

// Principal is an authenticated caller: what the authenticators produce and what the policy
// decides on. One value serves both, so that what a policy sees at runtime is what the
// authenticator found, field for field.
type Principal struct {
	// Method is how the caller authenticated.
	Method AuthMethod
	// Subject is the token's sub, the API key's principal name, the certificate's mapped name
	// or the operator's name. Policy bindings match it with principals:.
	Subject string
	// ClientID is the OAuth client (client_id, azp, appid or cid); empty for API keys,
	// certificates and operators.
	ClientID string
	// Issuer is the token's iss; empty for non-token credentials.
	Issuer string
	// KeyID is the API key's public id, the session's id prefix or the certificate's serial;
	// empty for tokens.
	KeyID string
	// Roles come from the configured roles claim, the key's roles, the certificate mapping or
	// the operator's roles. The policy adds the roles its bindings grant; names it does not
	// define grant nothing.
	Roles []string
	// Scopes are the token's granted scopes, matched by policy bindings' scopes:.
	Scopes []string
	// Groups come from the configured groups claim of a token (default "groups"), matched by
	// policy bindings' groups:; nil for non-token credentials.
	Groups []string
	// Claims are the token's claims as JSON values: string, float64, bool, []any,
	// map[string]any. Policy bindings' claims: match them, and when: conditions see them as
	// principal.claims. Nil for non-token credentials. Treat as read-only: the map may be
	// shared by every request carrying the same token.
	Claims map[string]any
	// Expires is when the credential stops being valid (zero: no expiry).
	Expires time.Time
	// MFA says a human operator proved who they are with more than one factor: an operator
	// session opened with password and TOTP, or by an OpenID Connect login whose amr claim
	// shows multi-factor authentication. Only such a principal may approve a held call. Always
	// false for machine credentials (tokens, API keys, client certificates).
	MFA bool
}

// HasScope reports whether the principal was granted scope.
func (p *Principal) HasScope(scope string) bool { return p != nil && slices.Contains(p.Scopes, scope) }

// HasRole reports whether the principal holds role.
func (p *Principal) HasRole(role string) bool { return p != nil && slices.Contains(p.Roles, role) }

// MissingScopes returns the scopes in want that the principal was not granted, in want's order.
func (p *Principal) MissingScopes(want []string) []string {
	var missing []string
	for _, s := range want {
		if !p.HasScope(s) {
			missing = append(missing, s)
		}
	}
	return missing
}
