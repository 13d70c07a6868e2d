// Package authn turns a request into a Principal: bearer JWTs issued for this gateway (OAuth 2.1
// resource server), API keys, client certificates, and human operators with passwords, TOTP and
// sessions.
package authn

import (
	"context"

	"github.com/mcpguard/mcpguard/internal/mcpguard"
)

// Method names how a principal proved who it is.
type Method = mcpguard.AuthMethod

// Authentication methods.
const (
	MethodJWT         = mcpguard.MethodJWT         // a bearer access token issued by the configured authorization server
	MethodAPIKey      = mcpguard.MethodAPIKey      // an API key issued by the gateway
	MethodOperator    = mcpguard.MethodOperator    // a human operator's session (password + TOTP)
	MethodCertificate = mcpguard.MethodCertificate // a client certificate verified by the TLS listener
)

// Principal is an authenticated caller, ready for authorization: the program's one principal
// type, shared with the policy.
type Principal = mcpguard.Principal

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
