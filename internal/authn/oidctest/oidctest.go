// Package oidctest is an OpenID provider for tests, on loopback: discovery, a JWKS of real RSA
// and ECDSA keys, an authorization endpoint that approves the configured user at once, and a
// token endpoint that checks the client, the redirect URI and the PKCE (S256) verifier.
package oidctest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Keys are generated once per test binary: RSA generation is slow.
var (
	rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	})
	ecKey = sync.OnceValue(func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

// Options configures a Provider. The zero value is a confidential client "mcpguard-admin" whose
// user "alice" logs in with a password and a one-time code.
type Options struct {
	ClientID     string // default "mcpguard-admin"
	ClientSecret string // empty: a public client (client_id in the form, PKCE only)
	User         string // the preferred_username of whoever logs in (default "alice")
	// Alg signs ID tokens: RS256 (default), ES256, HS256 (keyed with the client secret) or none.
	Alg string
	// Claims, when set, edits each ID token's claims before signing.
	Claims func(claims map[string]any)
	// Now is the provider's clock (default time.Now).
	Now func() time.Time
}

// Exchange is one code exchange the token endpoint accepted.
type Exchange struct {
	Verifier   string // the code_verifier sent
	BasicAuth  bool   // the client authenticated with client_secret_basic
	FormClient string // the client_id sent in the form
}

// Provider is a running OpenID provider.
type Provider struct {
	Issuer string
	opts   Options

	mu        sync.Mutex
	codes     map[string]grant
	exchanges []Exchange
}

type grant struct {
	challenge, method, nonce, redirect string
}

// New starts a provider on 127.0.0.1, stopped when the test ends.
func New(t testing.TB, opts *Options) *Provider {
	t.Helper()
	p := &Provider{codes: map[string]grant{}}
	if opts != nil {
		p.opts = *opts
	}
	if p.opts.ClientID == "" {
		p.opts.ClientID = "mcpguard-admin"
	}
	if p.opts.User == "" {
		p.opts.User = "alice"
	}
	if p.opts.Alg == "" {
		p.opts.Alg = "RS256"
	}
	if p.opts.Now == nil {
		p.opts.Now = time.Now
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p.Issuer = srv.URL
	return p
}

// ClientID is the client registered at the provider.
func (p *Provider) ClientID() string { return p.opts.ClientID }

// SetAlg changes the algorithm later ID tokens are signed with (see Options.Alg).
func (p *Provider) SetAlg(alg string) {
	p.mu.Lock()
	p.opts.Alg = alg
	p.mu.Unlock()
}

// Exchanges returns the code exchanges the token endpoint accepted, in order.
func (p *Provider) Exchanges() []Exchange {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Exchange(nil), p.exchanges...)
}

// CorruptChallenges replaces the code challenge of every code not yet exchanged, as if the
// authorization request had carried another one: a correct verifier no longer matches.
func (p *Provider) CorruptChallenges() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c, g := range p.codes {
		g.challenge = "corrupted" + g.challenge
		p.codes[c] = g
	}
}

// Authorize plays the browser: it GETs the authorization URL and returns the query of the
// redirect back to the client (code and state, or error).
func (p *Provider) Authorize(t testing.TB, authURL string) url.Values {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorization endpoint answered %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc.Query()
}

func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer": p.Issuer, "jwks_uri": p.Issuer + "/jwks",
		"authorization_endpoint": p.Issuer + "/authorize", "token_endpoint": p.Issuer + "/token",
		"response_types_supported": []string{"code"}, "code_challenge_methods_supported": []string{"S256"},
		"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "none"},
	})
}

func (p *Provider) jwks(w http.ResponseWriter, r *http.Request) {
	b64 := base64.RawURLEncoding.EncodeToString
	rk, ek := &rsaKey().PublicKey, &ecKey().PublicKey
	point, _ := ek.Bytes()
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]string{
		{"kty": "RSA", "kid": "rsa1", "use": "sig", "alg": "RS256", "n": b64(rk.N.Bytes()), "e": b64(big.NewInt(int64(rk.E)).Bytes())},
		{"kty": "EC", "kid": "ec1", "use": "sig", "alg": "ES256", "crv": "P-256", "x": b64(point[1:33]), "y": b64(point[33:])},
	}})
}

func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || !redirect.IsAbs() || q.Get("client_id") != p.opts.ClientID {
		http.Error(w, "unknown client or redirect_uri", http.StatusBadRequest)
		return
	}
	back := redirect.Query()
	back.Set("state", q.Get("state"))
	switch {
	case q.Get("response_type") != "code":
		back.Set("error", "unsupported_response_type")
	case q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "":
		back.Set("error", "invalid_request")
	default:
		code := random()
		p.mu.Lock()
		p.codes[code] = grant{challenge: q.Get("code_challenge"), method: q.Get("code_challenge_method"), nonce: q.Get("nonce"), redirect: q.Get("redirect_uri")}
		p.mu.Unlock()
		back.Set("code", code)
	}
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	ex := Exchange{Verifier: r.PostForm.Get("code_verifier"), FormClient: r.PostForm.Get("client_id")}
	id, secret, basic := r.BasicAuth()
	ex.BasicAuth = basic
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id = ex.FormClient
	}
	if id != p.opts.ClientID || secret != p.opts.ClientSecret || (p.opts.ClientSecret != "") != basic {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	code := r.PostForm.Get("code")
	p.mu.Lock()
	g, ok := p.codes[code]
	delete(p.codes, code)
	p.mu.Unlock()
	sum := sha256.Sum256([]byte(ex.Verifier))
	switch {
	case r.PostForm.Get("grant_type") != "authorization_code":
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	case !ok || g.redirect != r.PostForm.Get("redirect_uri"):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
		return
	case subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(g.challenge)) != 1:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "PKCE verification failed"})
		return
	}
	p.mu.Lock()
	p.exchanges = append(p.exchanges, ex)
	p.mu.Unlock()
	now := p.opts.Now()
	claims := map[string]any{
		"iss": p.Issuer, "aud": p.opts.ClientID, "sub": "user-" + p.opts.User, "preferred_username": p.opts.User,
		"nonce": g.nonce, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "amr": []string{"pwd", "otp", "mfa"},
	}
	if p.opts.Claims != nil {
		p.opts.Claims(claims)
	}
	idToken, err := p.sign(claims)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"access_token": random(), "token_type": "Bearer", "expires_in": 300, "id_token": idToken})
}

func (p *Provider) sign(claims map[string]any) (string, error) {
	var method jwt.SigningMethod
	var key any
	kid := ""
	p.mu.Lock()
	alg := p.opts.Alg
	p.mu.Unlock()
	switch alg {
	case "ES256":
		method, key, kid = jwt.SigningMethodES256, ecKey(), "ec1"
	case "HS256":
		method, key = jwt.SigningMethodHS256, []byte(p.opts.ClientSecret+"-hmac-key-material-000000000000")
	case "none":
		method, key = jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType
	default:
		method, key, kid = jwt.SigningMethodRS256, rsaKey(), "rsa1"
	}
	tok := jwt.NewWithClaims(method, jwt.MapClaims(claims))
	if kid != "" {
		tok.Header["kid"] = kid
	}
	return tok.SignedString(key)
}

func random() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
