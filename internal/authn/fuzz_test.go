package authn

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// fuzzValidator has its keys loaded and refetching disabled, so fuzzing makes no requests.
func fuzzValidator(f *testing.F) *Validator {
	clk := newClock()
	v, err := NewValidator("https://idp.example.com", testAudience, &ValidatorOptions{
		JWKSURL: "http://127.0.0.1:1/jwks", Now: clk.Now, MinRefetchInterval: 1000 * time.Hour, CacheSize: -1,
	})
	if err != nil {
		f.Fatal(err)
	}
	keys, err := parseJWKS([]byte(`{"keys":[` + mustJSON(jwkOf("rsa1", testRSA())) + `,` + mustJSON(jwkOf("ec1", testEC())) + `]}`))
	if err != nil {
		f.Fatal(err)
	}
	v.keys.keys, v.keys.fetched, v.keys.lastAttempt = keys, clk.Now(), clk.Now()
	return v
}

func FuzzValidate(f *testing.F) {
	v := fuzzValidator(f)
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.")
	f.Add(rawToken(`{"alg":"RS256","kid":"rsa1"}`, `{"sub":"a","exp":1e99}`, []byte("sig")))
	f.Fuzz(func(t *testing.T, token string) {
		p, err := v.Validate(context.Background(), token)
		if err == nil {
			t.Fatalf("a fuzzed token verified: %+v", p)
		}
		if ReasonOf(err) == "" {
			t.Fatalf("rejection without a reason: %v", err)
		}
	})
}

func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[` + mustJSON(jwkOf("rsa1", testRSA())) + `]}`))
	f.Add([]byte(`{"keys":[` + mustJSON(jwkOf("ec1", testEC())) + `,` + mustJSON(jwkOf("ed1", testEd())) + `]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := parseJWKS(data)
		if err == nil && (len(keys) == 0 || len(keys) > maxJWKSKeys) {
			t.Fatalf("parseJWKS returned %d keys without an error", len(keys))
		}
	})
}

func FuzzParseAPIKey(f *testing.F) {
	f.Add("mcpg_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("mcpg_")
	f.Fuzz(func(t *testing.T, token string) {
		id, err := ParseAPIKey(token)
		if err == nil && (len(id) != apiKeyIDLen || len(token) != apiKeyLen) {
			t.Fatalf("ParseAPIKey(%q) = %q", token, id)
		}
	})
}

func FuzzParsePHC(f *testing.F) {
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := parsePHC(s)
		if err != nil {
			return
		}
		if p.Memory > maxArgonMemory || p.Time > maxArgonTime || p.Threads == 0 || len(salt) < 8 || len(key) < 16 {
			t.Fatalf("parsePHC(%q) accepted out-of-bounds parameters %+v", s, p)
		}
	})
}

func FuzzAuthenticate(f *testing.F) {
	v := fuzzValidator(f)
	a, err := NewAuthenticator(testAudience, v, &AuthenticatorOptions{APIKeys: NewAPIKeys(NewMemoryStore(), nil)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("Bearer abc", "")
	f.Add("bearer mcpg_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "x=1")
	f.Add("Basic YTpi", "access_token=x")
	f.Fuzz(func(t *testing.T, header, query string) {
		r := httptest.NewRequest(http.MethodPost, "https://gw.example.com/mcp", nil)
		r.URL.RawQuery = query
		r.Header.Set("Authorization", header)
		if p, err := a.Authenticate(r); err == nil {
			t.Fatalf("authenticated %+v from a fuzzed header", p)
		}
		w := httptest.NewRecorder()
		a.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Fatal("request passed") })).ServeHTTP(w, r)
		if w.Code != 400 && w.Code != 401 {
			t.Fatalf("status %d", w.Code)
		}
	})
}
