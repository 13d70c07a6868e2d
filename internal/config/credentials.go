package config

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
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
	// PrivateKeyJWT sends a short-lived JWT signed with the client's private key as
	// client_assertion (RFC 7523 section 2.2, OpenID Connect Core section 9); no secret is sent.
	PrivateKeyJWT ClientAuthMethod = "private_key_jwt"
)

// AudienceIssuer, as ClientCredentials.AssertionAudience, makes the client assertion's audience
// the authorization server's issuer identifier rather than its token endpoint URL.
const AudienceIssuer = "issuer"

// assertionAlgorithms are the JWS algorithms a client assertion can be signed with.
var assertionAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

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
	// Required with client_secret_basic and client_secret_post; an error with private_key_jwt.
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
	// "client_secret_basic" (default), "client_secret_post" or "private_key_jwt".
	AuthMethod ClientAuthMethod

	// The rest is for private_key_jwt only, and an error with another method.

	// PrivateKey is the PEM private key that signs the client assertion, a secret reference
	// (normally "file:/path"): RSA of at least 2048 bits, ECDSA on P-256, P-384 or P-521, or
	// Ed25519; PKCS#8, PKCS#1 or SEC 1, unencrypted. Required with private_key_jwt; read it with
	// [ClientCredentials.AssertionKey].
	PrivateKey Secret

	// KeyID is sent as the assertion's "kid" header, naming the key among those registered at
	// the authorization server. Optional.
	KeyID string

	// Algorithm is the JWS algorithm of the assertion. Empty means the key's usual one: RS256,
	// ES256, ES384 or ES512 by curve, EdDSA. An RSA key may also use RS384, RS512 or PS256-512.
	Algorithm string

	// AssertionAudience is the assertion's "aud". Empty means the token endpoint URL (OpenID
	// Connect Core section 9); "issuer" (AudienceIssuer) means the authorization server's issuer
	// identifier, configured or discovered; any other value is an absolute URL sent as is.
	AssertionAudience string

	// Certificate is the X.509 certificate of PrivateKey, PEM, as a reference ("file:/path").
	// Optional: when set, the assertion's header carries its thumbprints "x5t" (SHA-1) and
	// "x5t#S256", which is how Microsoft Entra ID finds the registered certificate. Its public
	// key must be PrivateKey's.
	Certificate Secret
}

// AssertionKey returns the private key that signs the client assertion with private_key_jwt, or
// nil when PrivateKey is not set. A configuration returned by [Parse] or [Load] always decodes;
// an error means a ClientCredentials built in code holds an unresolved or unusable key.
func (cc *ClientCredentials) AssertionKey() (crypto.Signer, error) {
	k := cc.PrivateKey
	if k.IsZero() {
		return nil, nil
	}
	if !k.Resolved() {
		return nil, fmt.Errorf("private_key: %s is not resolved", k.Reference())
	}
	key, err := parsePrivateKey([]byte(k.Reveal()))
	if err != nil {
		return nil, fmt.Errorf("private_key: %s: %w", k.Reference(), err)
	}
	return key, nil
}

// AssertionCertificate returns the DER bytes of Certificate, or nil when it is not set. As with
// AssertionKey, an error means a ClientCredentials built in code holds an unusable value.
func (cc *ClientCredentials) AssertionCertificate() ([]byte, error) {
	c := cc.Certificate
	if c.IsZero() {
		return nil, nil
	}
	if !c.Resolved() {
		return nil, fmt.Errorf("certificate: %s is not resolved", c.Reference())
	}
	cert, err := parseCertificate([]byte(c.Reveal()))
	if err != nil {
		return nil, fmt.Errorf("certificate: %s: %w", c.Reference(), err)
	}
	return cert.Raw, nil
}

// parseCertificate reads the first CERTIFICATE block of a PEM text.
func parseCertificate(text []byte) (*x509.Certificate, error) {
	for rest := text; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("no PEM CERTIFICATE block")
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("the certificate does not parse: %w", err)
		}
		return cert, nil
	}
}

// checkAssertionCertificate reports a certificate that does not parse or is not the key's.
func checkAssertionCertificate(path string, cc *ClientCredentials) []Problem {
	ref := cc.Certificate.Reference()
	cert, err := parseCertificate([]byte(cc.Certificate.Reveal()))
	if err != nil {
		return []Problem{{Path: path + ".certificate", Message: fmt.Sprintf("%s: %v", ref, err)}}
	}
	key, err := parsePrivateKey([]byte(cc.PrivateKey.Reveal()))
	if err != nil {
		return nil // reported for private_key
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return []Problem{{Path: path + ".certificate", Message: fmt.Sprintf("%s is not the certificate of the key in %s: its public key differs", ref, cc.PrivateKey.Reference())}}
	}
	return nil
}

// checkAssertionKey reports a resolved private_key of the client_credentials section at path that
// does not parse or does not fit its algorithm. Problems name the reference, never the key.
func checkAssertionKey(path string, cc *ClientCredentials) []Problem {
	ref := cc.PrivateKey.Reference()
	key, err := parsePrivateKey([]byte(cc.PrivateKey.Reveal()))
	if err != nil {
		return []Problem{{Path: path + ".private_key", Message: fmt.Sprintf("%s: %v", ref, err)}}
	}
	algs, _ := keyAlgorithms(key) // parsePrivateKey checked it
	if cc.Algorithm != "" && slices.Contains(assertionAlgorithms, cc.Algorithm) && !slices.Contains(algs, cc.Algorithm) {
		return []Problem{{Path: path + ".algorithm", Message: fmt.Sprintf("%s does not fit the key in %s, which signs with %s: change the algorithm or leave it out", quote(cc.Algorithm), ref, strings.Join(algs, ", "))}}
	}
	return nil
}

// privateKeyTypes are the PEM block types that hold an unencrypted private key.
var privateKeyTypes = []string{"PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"}

// parsePrivateKey reads the one private key of a PEM text: PKCS#8 ("PRIVATE KEY"), PKCS#1 ("RSA
// PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY"), unencrypted, among other blocks such as the "EC
// PARAMETERS" that openssl writes before an EC key. The key must be able to sign a client
// assertion: RSA of at least 2048 bits, ECDSA on P-256, P-384 or P-521, or Ed25519. Errors never
// contain the key.
func parsePrivateKey(text []byte) (crypto.Signer, error) {
	var found *pem.Block
	var others []string
	for rest := text; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch {
		case slices.Contains(privateKeyTypes, b.Type) && found != nil:
			return nil, errors.New("holds more than one private key: keep only the one that signs")
		case slices.Contains(privateKeyTypes, b.Type):
			found = b
		default:
			others = append(others, fmt.Sprintf("%q", printableBlockType(b.Type)))
		}
	}
	switch {
	case found == nil && slices.Contains(others, `"ENCRYPTED PRIVATE KEY"`):
		return nil, errors.New("the private key is encrypted: decrypt it (openssl pkey -in key.pem -out plain.pem) and protect the file instead")
	case found == nil && len(others) > 0:
		return nil, fmt.Errorf("holds no private key, only PEM blocks of type %s", strings.Join(others, ", "))
	case found == nil:
		return nil, errors.New("not PEM: want a private key that begins with -----BEGIN PRIVATE KEY-----")
	case found.Headers["Proc-Type"] != "":
		return nil, errors.New("the private key is encrypted: decrypt it (openssl pkey -in key.pem -out plain.pem) and protect the file instead")
	}
	var key any
	var err error
	switch found.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(found.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(found.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(found.Bytes)
	}
	if err != nil {
		// x509's messages describe the structure, never the key material.
		return nil, fmt.Errorf("the %s block does not parse: %w", found.Type, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a %T key cannot sign: want RSA, ECDSA or Ed25519", key)
	}
	if _, err := keyAlgorithms(signer); err != nil {
		return nil, err
	}
	return signer, nil
}

// printableBlockType bounds a PEM block type for a message.
func printableBlockType(t string) string {
	if len(t) > 40 {
		return t[:40] + "..."
	}
	return t
}

// keyAlgorithms returns the JWS algorithms key can sign a client assertion with, its usual
// one first.
func keyAlgorithms(key crypto.Signer) ([]string, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < 2048 {
			return nil, fmt.Errorf("the RSA key has %d bits; want at least 2048", bits)
		}
		return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, nil
	case *ecdsa.PrivateKey:
		switch name := k.Curve.Params().Name; name {
		case "P-256":
			return []string{"ES256"}, nil
		case "P-384":
			return []string{"ES384"}, nil
		case "P-521":
			return []string{"ES512"}, nil
		default:
			return nil, fmt.Errorf("the ECDSA key is on curve %s: want P-256, P-384 or P-521", name)
		}
	case ed25519.PrivateKey:
		return []string{"EdDSA"}, nil
	}
	return nil, fmt.Errorf("a %T key cannot sign: want RSA, ECDSA or Ed25519", key)
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
