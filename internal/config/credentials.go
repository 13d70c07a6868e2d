package config

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ClientAuthMethod is how the gateway authenticates to an authorization server's token
// endpoint (RFC 6749 section 2.3.1).
type ClientAuthMethod string

// The client authentication methods.
const (
	// ClientSecretBasic sends the client id and secret in an HTTP Basic Authorization header.
	ClientSecretBasic ClientAuthMethod = "client_secret_basic"
	// ClientSecretPost sends them as client_id and client_secret form parameters.
	ClientSecretPost ClientAuthMethod = "client_secret_post"
)

// Defaults of the OAuth settings, applied by [Parse].
const (
	DefaultClientAuthMethod = ClientSecretBasic
	DefaultOperatorClaim    = "preferred_username"
)

// DefaultOIDCScopes are the scopes an operator login asks for when admin.oidc.scopes is absent.
var DefaultOIDCScopes = []string{"openid"}

// OIDCCallbackPath is the admin API path an OpenID Connect provider redirects operators back to;
// AdminOIDC.RedirectURL must end in it.
const OIDCCallbackPath = "/v1/login/oidc/callback"

// IdentityKeyBytes is the length of the decoded identity encryption key.
const IdentityKeyBytes = 32

// ClientCredentials makes the gateway obtain this upstream's access token itself, with the
// OAuth 2.1 client credentials grant, instead of sending a static BearerToken. The token is
// cached and refreshed before it expires; it is this upstream's own credential, never the
// client's. docs/authentication.md, "Upstream credentials", describes the exchange.
//
// The token endpoint is TokenURL when set; otherwise it is read from the metadata of Issuer
// (RFC 8414, then OpenID Connect discovery); when neither is set, it is discovered from the
// upstream itself as the MCP authorization specification says: its 401 names its Protected
// Resource Metadata (RFC 9728), whose first authorization server's metadata names the token
// endpoint.
type ClientCredentials struct {
	// ClientID is the gateway's client identifier at the authorization server. Required.
	ClientID string

	// ClientSecret is the client's secret, a secret reference ("env:NAME" or "file:/path").
	// Required.
	ClientSecret Secret

	// TokenURL is the token endpoint: https, or http to a loopback host. Optional; exclusive
	// with Issuer.
	TokenURL string

	// Issuer is the authorization server's issuer identifier, whose metadata names the token
	// endpoint: https, or http to a loopback host. Optional; exclusive with TokenURL.
	Issuer string

	// Scopes are requested with every token ("scope", space-separated). Optional: absent, the
	// authorization server's default applies.
	Scopes []string

	// Resource is the RFC 8707 resource indicator sent with every token request: an absolute
	// URL without fragment. Empty means the upstream's URL (when the endpoint is discovered
	// from the upstream, the resource its Protected Resource Metadata names, which must match
	// that URL).
	Resource string

	// AuthMethod is how the client authenticates to the token endpoint:
	// "client_secret_basic" (default) or "client_secret_post".
	AuthMethod ClientAuthMethod
}

// AdminOIDC lets operators log in to the admin API with an OpenID Connect provider
// (authorization code flow with PKCE) instead of a password and TOTP code. The id_token's
// OperatorClaim must name an existing operator account (`mcpguard operators add`): the
// provider proves who the person is, the gateway still decides who is an operator.
type AdminOIDC struct {
	// Issuer is the provider's issuer identifier, exactly as it writes "iss"; its endpoints are
	// read from its discovery document. https, or http to a loopback host. Required.
	Issuer string

	// ClientID is the gateway's client identifier at the provider. Required.
	ClientID string

	// ClientSecret is the client's secret, a secret reference ("env:NAME" or "file:/path").
	// Absent, the gateway is a public client and relies on PKCE alone.
	ClientSecret Secret

	// RedirectURL is where the provider sends the operator back: the admin API's absolute URL
	// of path /v1/login/oidc/callback (OIDCCallbackPath), https unless the host is loopback.
	// It must be registered with the provider exactly as written. Required.
	RedirectURL string

	// Scopes are requested at login. Default ["openid"]; must include "openid".
	Scopes []string

	// OperatorClaim is the id_token claim whose value must equal an existing operator
	// account's name. Default "preferred_username".
	OperatorClaim string

	// RequiredAMR lists authentication methods (RFC 8176 values such as "mfa", "hwk") that
	// must each appear in the id_token's "amr" claim; a login without them is refused.
	// Optional.
	RequiredAMR []string
}

// IdentityKey returns the decoded IdentityEncryptionKey, the 32-byte key that encrypts
// operators' TOTP secrets in the api_keys_database, or nil when the key is not configured.
// A configuration returned by [Parse] or [Load] always decodes; an error means a Config built
// in code holds an unresolved or malformed key, and the caller must not fall back to storing
// secrets in clear.
func (c *Config) IdentityKey() ([]byte, error) {
	k := c.IdentityEncryptionKey
	if k.IsZero() {
		return nil, nil
	}
	if !k.Resolved() {
		return nil, fmt.Errorf("identity_encryption_key: %s is not resolved", k.Reference())
	}
	return decodeIdentityKey(k.Reveal())
}

// decodeIdentityKey decodes a key written as 64 hexadecimal digits or in base64 (standard or
// URL alphabet, padded or not) and checks that it is IdentityKeyBytes long. Errors never
// contain the key.
func decodeIdentityKey(text string) ([]byte, error) {
	text = strings.TrimSpace(text)
	if len(text) == 2*IdentityKeyBytes {
		if key, err := hex.DecodeString(text); err == nil {
			return key, nil
		}
	}
	var key []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err = enc.DecodeString(text); err == nil {
			break
		}
	}
	if err != nil {
		return nil, errors.New("not base64 or hex: want 32 random bytes, base64- or hex-encoded (generate one with: head -c 32 /dev/urandom | base64)")
	}
	if len(key) != IdentityKeyBytes {
		return nil, fmt.Errorf("decodes to %d bytes; want %d (generate one with: head -c 32 /dev/urandom | base64)", len(key), IdentityKeyBytes)
	}
	return key, nil
}
