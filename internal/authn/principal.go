// Package authn turns a request into a Principal: bearer JWTs issued for this gateway (OAuth 2.1
// resource server), API keys, client certificates, and human operators with passwords, TOTP and
// sessions.
package authn

import (
	"context"
	"slices"
	"time"
)

// Method names how a principal proved who it is.
type Method string

// Authentication methods.
const (
	MethodJWT         Method = "jwt"      // a bearer access token issued by the configured authorization server
	MethodAPIKey      Method = "apikey"   // an API key issued by the gateway
	MethodOperator    Method = "operator" // a human operator's session (password + TOTP)
	MethodCertificate Method = "mtls"     // a client certificate verified by the TLS listener
)

// Principal is an authenticated caller, ready for authorization.
type Principal struct {
	Method   Method
	Subject  string    // the token's sub, the API key's principal name, or the operator's name
	ClientID string    // the OAuth client (client_id, azp, appid or cid); empty for API keys and operators
	Issuer   string    // the token's iss; empty for API keys and operators
	KeyID    string    // the API key's public id, the session's id prefix or the certificate's serial; empty for tokens
	Roles    []string  // from the configured roles claim, the key's roles, or the operator's roles
	Scopes   []string  // the token's granted scopes
	Expires  time.Time // when the credential stops being valid (zero: no expiry)
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

type principalKey struct{}

// WithPrincipal returns a context carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal the authentication middleware put in ctx.
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}
