package oauthclient

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// AssertionType is the client_assertion_type of a JWT client assertion (RFC 7523 section 2.2).
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// AudienceIssuer, as Config.AssertionAudience, makes the assertion's audience the authorization
// server's issuer identifier (configured, or read from the upstream's metadata) instead of the
// token endpoint URL.
const AudienceIssuer = "issuer"

// assertionLifetime is how long a client assertion is valid. A new one is signed for every token
// request, so it only has to survive the request.
const assertionLifetime = 60 * time.Second

// signingMethods are the JWS algorithms a client assertion can be signed with, by name.
var signingMethods = map[string]jwt.SigningMethod{
	"RS256": jwt.SigningMethodRS256, "RS384": jwt.SigningMethodRS384, "RS512": jwt.SigningMethodRS512,
	"PS256": jwt.SigningMethodPS256, "PS384": jwt.SigningMethodPS384, "PS512": jwt.SigningMethodPS512,
	"ES256": jwt.SigningMethodES256, "ES384": jwt.SigningMethodES384, "ES512": jwt.SigningMethodES512,
	"EdDSA": jwt.SigningMethodEdDSA,
}

// signingMethod returns the method that signs with key under the algorithm alg, or when alg is
// "" the usual one for the key: RS256, ES256/ES384/ES512 by curve, EdDSA. The key's type (and
// an ECDSA key's curve) must be the one alg names.
func signingMethod(key crypto.Signer, alg string) (jwt.SigningMethod, error) {
	var fits func(string) bool
	var usual string
	switch k := key.(type) {
	case *rsa.PrivateKey:
		usual = "RS256"
		fits = func(a string) bool { return a[0] == 'R' || a[0] == 'P' }
	case *ecdsa.PrivateKey:
		usual = map[elliptic.Curve]string{elliptic.P256(): "ES256", elliptic.P384(): "ES384", elliptic.P521(): "ES512"}[k.Curve]
		if usual == "" {
			return nil, fmt.Errorf("ECDSA curve %s is not supported: want P-256, P-384 or P-521", k.Curve.Params().Name)
		}
		fits = func(a string) bool { return a == usual }
	case ed25519.PrivateKey:
		usual = "EdDSA"
		fits = func(a string) bool { return a == usual }
	default:
		return nil, fmt.Errorf("a %T key cannot sign a client assertion: want RSA, ECDSA or Ed25519", key)
	}
	if alg == "" {
		alg = usual
	}
	m, ok := signingMethods[alg]
	if !ok {
		return nil, fmt.Errorf("unknown signing algorithm %q", alg)
	}
	if !fits(alg) {
		return nil, fmt.Errorf("signing algorithm %s does not fit the key (use %s)", alg, usual)
	}
	return m, nil
}

// assertion returns a new client assertion (RFC 7523 section 2.2, OpenID Connect Core section 9):
// a JWT issued by and about the client, for audience, with a random jti and a short life.
func (s *Source) assertion(audience string) (string, error) {
	var jti [18]byte // 144 bits
	rand.Read(jti[:])
	now := s.now()
	claims := jwt.MapClaims{
		"iss": s.cfg.ClientID,
		"sub": s.cfg.ClientID,
		"aud": audience,
		"jti": base64.RawURLEncoding.EncodeToString(jti[:]),
		"iat": now.Unix(),
		"exp": now.Add(assertionLifetime).Unix(),
	}
	t := jwt.NewWithClaims(s.signer, claims)
	if s.cfg.KeyID != "" {
		t.Header["kid"] = s.cfg.KeyID
	}
	if c := s.cfg.Certificate; len(c) > 0 {
		sha1Sum, sha256Sum := sha1.Sum(c), sha256.Sum256(c)
		t.Header["x5t"] = base64.RawURLEncoding.EncodeToString(sha1Sum[:])
		t.Header["x5t#S256"] = base64.RawURLEncoding.EncodeToString(sha256Sum[:])
	}
	signed, err := t.SignedString(s.cfg.PrivateKey)
	if err != nil {
		// The message of a signing error names neither the key nor the claims.
		return "", fmt.Errorf("sign the client assertion: %w", err)
	}
	return signed, nil
}
