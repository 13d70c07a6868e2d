package authn

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/golang-jwt/jwt/v5"
)

// Keys are generated once per test binary: RSA generation is slow.
var (
	testRSA = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	})
	testRSA2 = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	})
	testEC = sync.OnceValue(func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
	testEd = sync.OnceValue(func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwkOf renders the public half of key as a JWK.
func jwkOf(kid string, key crypto.Signer) map[string]string {
	switch k := key.Public().(type) {
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		b, _ := k.Bytes()
		return map[string]string{"kty": "EC", "kid": kid, "crv": "P-256", "x": b64(b[1:33]), "y": b64(b[33:])}
	case ed25519.PublicKey:
		return map[string]string{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64(k)}
	}
	panic("unknown key type")
}

// fakeIdP is an authorization server on loopback: discovery documents and a JWKS whose keys the
// test can change, counting every request.
type fakeIdP struct {
	srv      *httptest.Server
	issuer   string
	mu       sync.Mutex
	keys     []map[string]string
	down     bool
	jwksHits atomic.Int64
	allHits  atomic.Int64
}

func newIdP(t testing.TB, path string) *fakeIdP {
	t.Helper()
	idp := &fakeIdP{}
	mux := http.NewServeMux()
	idp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		idp.allHits.Add(1)
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(idp.srv.Close)
	idp.issuer = idp.srv.URL + path
	meta := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.MarshalWrite(w, map[string]any{
			"issuer": idp.issuer, "jwks_uri": idp.srv.URL + "/jwks",
			"authorization_endpoint": idp.srv.URL + "/authorize", "token_endpoint": idp.srv.URL + "/token",
			"response_types_supported": []string{"code"}, "code_challenge_methods_supported": []string{"S256"},
		})
	}
	mux.HandleFunc("/.well-known/openid-configuration"+path, meta)
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		idp.jwksHits.Add(1)
		idp.mu.Lock()
		defer idp.mu.Unlock()
		if idp.down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_ = json.MarshalWrite(w, map[string]any{"keys": idp.keys})
	})
	idp.setKeys(jwkOf("rsa1", testRSA()), jwkOf("ec1", testEC()), jwkOf("ed1", testEd()))
	return idp
}

func (idp *fakeIdP) setKeys(keys ...map[string]string) {
	idp.mu.Lock()
	idp.keys = keys
	idp.mu.Unlock()
}

func (idp *fakeIdP) setDown(down bool) {
	idp.mu.Lock()
	idp.down = down
	idp.mu.Unlock()
}

const testAudience = "https://gw.example.com/mcp"

// claims returns valid claims for the idp at now.
func (idp *fakeIdP) claims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss":       idp.issuer,
		"aud":       testAudience,
		"sub":       "alice",
		"client_id": "agent-1",
		"exp":       now.Add(time.Hour).Unix(),
		"iat":       now.Unix(),
		"nbf":       now.Unix(),
		"scope":     "mcp:tools mcp:read",
		"roles":     []string{"analyst"},
	}
}

func sign(t testing.TB, method jwt.SigningMethod, kid string, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rawToken assembles a token from literal header and payload JSON and a signature.
func rawToken(header, payload string, sig []byte) string {
	return b64([]byte(header)) + "." + b64([]byte(payload)) + "." + b64(sig)
}

func newTestValidator(t testing.TB, idp *fakeIdP, clk *fakeClock, opts *ValidatorOptions) *Validator {
	t.Helper()
	if opts == nil {
		opts = &ValidatorOptions{}
	}
	opts.Now = clk.Now
	v, err := NewValidator(idp.issuer, testAudience, opts)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func b64dec(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
