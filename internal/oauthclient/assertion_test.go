package oauthclient

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Test keys, generated once: RSA generation is slow.
var (
	testRSAKey = sync.OnceValue(func() *rsa.PrivateKey { return must(rsa.GenerateKey(rand.Reader, 2048)) })
	testP256   = sync.OnceValue(func() *ecdsa.PrivateKey { return must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)) })
	testP384   = sync.OnceValue(func() *ecdsa.PrivateKey { return must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader)) })
	testEd     = sync.OnceValue(func() ed25519.PrivateKey { _, k := must2(ed25519.GenerateKey(rand.Reader)); return k })
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func must2[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		panic(err)
	}
	return a, b
}

// assertionCheck is how the fake authorization server verifies client assertions, as a real
// one does: with the client's registered public key.
type assertionCheck struct {
	pub      crypto.PublicKey
	alg      string
	kid      string           // the key id it requires; "" requires none
	audience string           // the audience it requires; "" means its token endpoint
	now      func() time.Time // its clock; nil means time.Now

	mu      sync.Mutex
	seen    map[string]bool // jti values already used: a replay is refused
	claims  []jwt.MapClaims // of each accepted assertion
	signed  []string        // each assertion received, accepted or not
	headers []map[string]any
}

func newAssertionCheck(key crypto.Signer, alg string) *assertionCheck {
	return &assertionCheck{pub: key.Public(), alg: alg, seen: map[string]bool{}}
}

// verify checks a token request's client assertion: type, signature and algorithm, iss = sub =
// the client id, aud, a short life around now, a jti never seen before, and no client secret.
func (c *assertionCheck) verify(form url.Values, base string) error {
	if got := form.Get("client_assertion_type"); got != AssertionType {
		return fmt.Errorf("client_assertion_type %q", got)
	}
	if form.Has("client_secret") {
		return errors.New("a client secret came with the assertion")
	}
	c.mu.Lock()
	c.signed = append(c.signed, form.Get("client_assertion"))
	c.mu.Unlock()
	aud := c.audience
	if aud == "" {
		aud = base + "/token"
	}
	now := c.now
	if now == nil {
		now = time.Now
	}
	tok, err := jwt.Parse(form.Get("client_assertion"), func(*jwt.Token) (any, error) { return c.pub, nil },
		jwt.WithValidMethods([]string{c.alg}), jwt.WithAudience(aud), jwt.WithIssuer(testClientID),
		jwt.WithSubject(testClientID), jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithTimeFunc(now))
	if err != nil {
		return err
	}
	claims := tok.Claims.(jwt.MapClaims)
	exp, _ := claims.GetExpirationTime()
	iat, _ := claims.GetIssuedAt()
	if iat == nil || exp.Sub(iat.Time) > 5*time.Minute {
		return errors.New("no iat, or the assertion lives longer than 5 minutes")
	}
	if kid, _ := tok.Header["kid"].(string); kid != c.kid {
		return fmt.Errorf("kid %q; want %q", kid, c.kid)
	}
	jti, _ := claims["jti"].(string)
	if len(jti) < 22 { // 128 bits in base64url
		return fmt.Errorf("jti %q is shorter than 128 bits", jti)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen[jti] {
		return fmt.Errorf("jti %q replayed", jti)
	}
	c.seen[jti] = true
	c.claims = append(c.claims, claims)
	c.headers = append(c.headers, tok.Header)
	return nil
}

// newJWTAuthServer returns an authorization server that authenticates the client by a client
// assertion signed with key under alg.
func newJWTAuthServer(t *testing.T, key crypto.Signer, alg string) *authServer {
	as := newAuthServer(t)
	as.method = AuthPrivateKeyJWT
	as.assertion = newAssertionCheck(key, alg)
	return as
}

func TestPrivateKeyJWTKeyTypes(t *testing.T) {
	tests := []struct {
		name    string
		key     crypto.Signer
		alg     string // configured; "" for the default
		wantAlg string
	}{
		{"RSA", testRSAKey(), "", "RS256"},
		{"RSA-PSS", testRSAKey(), "PS256", "PS256"},
		{"RSA with SHA-512", testRSAKey(), "RS512", "RS512"},
		{"P-256", testP256(), "", "ES256"},
		{"P-384", testP384(), "", "ES384"},
		{"P-256 named", testP256(), "ES256", "ES256"},
		{"Ed25519", testEd(), "", "EdDSA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			as := newJWTAuthServer(t, tt.key, tt.wantAlg)
			as.assertion.kid = "key-2026"
			clock := &fakeClock{t: time.Now().Truncate(time.Second)}
			as.assertion.now = clock.Now
			s := newSource(t, "https://mcp.example.com/mcp", Config{
				TokenURL: as.srv.URL + "/token", AuthMethod: AuthPrivateKeyJWT, PrivateKey: tt.key,
				Algorithm: tt.alg, KeyID: "key-2026",
			}, &Options{Now: clock.Now})
			if _, err := s.Token(context.Background()); err != nil {
				t.Fatal(err)
			}
			f := as.forms[0]
			if f.Get("client_id") != testClientID || f.Has("client_secret") {
				t.Errorf("form client_id = %q, has client_secret %v; want the client id and no secret", f.Get("client_id"), f.Has("client_secret"))
			}
			c := as.assertion.claims[0]
			iat, _ := c.GetIssuedAt()
			exp, _ := c.GetExpirationTime()
			if !iat.Equal(clock.Now()) || exp.Sub(iat.Time) != 60*time.Second {
				t.Errorf("iat %v, exp %v; want now (%v) and 60 s later", iat, exp, clock.Now())
			}
		})
	}
}

func TestPrivateKeyJWTFreshAssertionPerRequest(t *testing.T) {
	key := testP256()
	t.Run("the fake server refuses a replayed assertion", func(t *testing.T) {
		as := newJWTAuthServer(t, key, "ES256")
		s := newSource(t, "https://mcp.example.com/mcp", Config{TokenURL: as.srv.URL + "/token", AuthMethod: AuthPrivateKeyJWT, PrivateKey: key}, nil)
		a, err := s.assertion(as.srv.URL + "/token")
		if err != nil {
			t.Fatal(err)
		}
		form := url.Values{"client_assertion_type": {AssertionType}, "client_assertion": {a}}
		if err := as.assertion.verify(form, as.srv.URL); err != nil {
			t.Fatalf("first use refused: %v", err)
		}
		if err := as.assertion.verify(form, as.srv.URL); err == nil || !strings.Contains(err.Error(), "replayed") {
			t.Fatalf("second use: %v; want refused as replayed", err)
		}
	})
	t.Run("each token request signs a new one", func(t *testing.T) {
		as := newJWTAuthServer(t, key, "ES256")
		s := newSource(t, "https://mcp.example.com/mcp", Config{TokenURL: as.srv.URL + "/token", AuthMethod: AuthPrivateKeyJWT, PrivateKey: key}, nil)
		for i := range 3 {
			tok, err := s.Token(context.Background())
			if err != nil {
				t.Fatalf("token %d: %v", i, err)
			}
			s.Invalidate(tok)
		}
		if n := len(as.assertion.claims); n != 3 {
			t.Errorf("the server accepted %d assertions; want 3", n)
		}
	})
}

func TestPrivateKeyJWTAudience(t *testing.T) {
	key := testEd()
	t.Run("issuer, discovered from the upstream", func(t *testing.T) {
		as := newJWTAuthServer(t, key, "EdDSA")
		up := newUpstream(t, as)
		as.assertion.audience = as.srv.URL
		s := newSource(t, up.url(), Config{AuthMethod: AuthPrivateKeyJWT, PrivateKey: key, AssertionAudience: AudienceIssuer}, nil)
		if resp, err := post(t, s, up.url(), `{}`); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%v, %v", resp, err)
		}
	})
	t.Run("issuer, configured", func(t *testing.T) {
		as := newJWTAuthServer(t, key, "EdDSA")
		as.assertion.audience = as.srv.URL
		s := newSource(t, "https://mcp.example.com/mcp", Config{Issuer: as.srv.URL, AuthMethod: AuthPrivateKeyJWT, PrivateKey: key, AssertionAudience: AudienceIssuer}, nil)
		if _, err := s.Token(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("explicit value", func(t *testing.T) {
		as := newJWTAuthServer(t, key, "EdDSA")
		as.assertion.audience = "https://login.example.com/tenant"
		s := newSource(t, "https://mcp.example.com/mcp", Config{TokenURL: as.srv.URL + "/token", AuthMethod: AuthPrivateKeyJWT, PrivateKey: key, AssertionAudience: "https://login.example.com/tenant"}, nil)
		if _, err := s.Token(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("token endpoint by default, refused by a server that wants its issuer", func(t *testing.T) {
		as := newJWTAuthServer(t, key, "EdDSA")
		as.assertion.audience = as.srv.URL
		s := newSource(t, "https://mcp.example.com/mcp", Config{Issuer: as.srv.URL, AuthMethod: AuthPrivateKeyJWT, PrivateKey: key}, nil)
		_, err := s.Token(context.Background())
		if !errors.Is(err, ErrToken) || !strings.Contains(err.Error(), "audience") {
			t.Errorf("err = %v; want ErrToken saying to check the audience", err)
		}
	})
}

func TestPrivateKeyJWTWrongKeyNeverLogged(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	registered, used := testP256(), must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	as := newJWTAuthServer(t, registered, "ES256")
	up := newUpstream(t, as)

	good := newSource(t, up.url(), Config{AuthMethod: AuthPrivateKeyJWT, PrivateKey: registered}, &Options{Logger: logger})
	if resp, err := post(t, good, up.url(), `{}`); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%v, %v", resp, err)
	}
	bad := newSource(t, up.url(), Config{TokenURL: as.srv.URL + "/token", AuthMethod: AuthPrivateKeyJWT, PrivateKey: used}, &Options{Logger: logger})
	_, err := post(t, bad, up.url(), `{}`)
	if !errors.Is(err, ErrToken) || !strings.Contains(err.Error(), "invalid_client") || !strings.Contains(err.Error(), "public key") {
		t.Errorf("err = %v; want ErrToken, invalid_client and a hint about the public key", err)
	}

	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if !strings.Contains(out, "invalid_client") {
		t.Errorf("log lacks the refusal:\n%s", out)
	}
	for _, sec := range append(as.assertion.signed, as.issued...) {
		if strings.Contains(out, sec) || strings.Contains(err.Error(), sec) {
			t.Errorf("log or error reveals %q", sec)
		}
	}
	// A signed assertion's signature alone must not appear either (a log could cut the JWT).
	for _, a := range as.assertion.signed {
		if sig := a[strings.LastIndexByte(a, '.')+1:]; strings.Contains(out, sig) {
			t.Errorf("log reveals an assertion's signature")
		}
	}
}

func TestNewRefusesBadPrivateKeyJWT(t *testing.T) {
	small := must(rsa.GenerateKey(rand.Reader, 1024))
	jwtCfg := func(key crypto.Signer, alg string) Config {
		return Config{ClientID: "a", AuthMethod: AuthPrivateKeyJWT, PrivateKey: key, Algorithm: alg, TokenURL: "https://idp.example.com/token"}
	}
	withSecret := jwtCfg(testP256(), "")
	withSecret.ClientSecret = "b"
	issuerAud := jwtCfg(testP256(), "")
	issuerAud.AssertionAudience = AudienceIssuer
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no key", jwtCfg(nil, ""), "private key is required"},
		{"secret as well", withSecret, "remove the secret"},
		{"key with basic", Config{ClientID: "a", ClientSecret: "b", PrivateKey: testP256()}, "only with private_key_jwt"},
		{"ES256 with an RSA key", jwtCfg(testRSAKey(), "ES256"), "does not fit the key (use RS256)"},
		{"ES384 with a P-256 key", jwtCfg(testP256(), "ES384"), "does not fit the key (use ES256)"},
		{"RS256 with Ed25519", jwtCfg(testEd(), "RS256"), "does not fit the key (use EdDSA)"},
		{"unknown algorithm", jwtCfg(testP256(), "HS256"), "unknown signing algorithm"},
		{"small RSA key", jwtCfg(small, ""), "1024 bits"},
		{"issuer audience with a token URL", issuerAud, "configure the issuer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New("https://mcp.example.com/mcp", tt.cfg, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v; want %q", err, tt.want)
			}
		})
	}
}

// With the key's certificate configured, the assertion names it by its thumbprints, as
// Microsoft Entra ID requires; without it, no x5t header is sent.
func TestPrivateKeyJWTCertificateThumbprints(t *testing.T) {
	key := testRSAKey()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gateway"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der := must(x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key))
	sha1Sum, sha256Sum := sha1.Sum(der), sha256.Sum256(der)
	for _, withCert := range []bool{true, false} {
		as := newJWTAuthServer(t, key, "RS256")
		cfg := Config{TokenURL: as.srv.URL + "/token", AuthMethod: AuthPrivateKeyJWT, PrivateKey: key}
		if withCert {
			cfg.Certificate = der
		}
		if _, err := newSource(t, "https://mcp.example.com/mcp", cfg, nil).Token(context.Background()); err != nil {
			t.Fatal(err)
		}
		h := as.assertion.headers[0]
		want := map[string]any{"x5t": nil, "x5t#S256": nil}
		if withCert {
			want = map[string]any{"x5t": base64.RawURLEncoding.EncodeToString(sha1Sum[:]), "x5t#S256": base64.RawURLEncoding.EncodeToString(sha256Sum[:])}
		}
		for name, v := range want {
			if h[name] != v {
				t.Errorf("certificate configured %v: header %s = %v; want %v", withCert, name, h[name], v)
			}
		}
	}
}
