package authn

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/mcpguard/mcpguard/internal/testenv"
)

const wantMetadataURL = "https://gw.example.com/.well-known/oauth-protected-resource/mcp"

type mwFixture struct {
	idp      *fakeIdP
	clk      *fakeClock
	keys     *APIKeys
	store    *MemoryStore
	handler  http.Handler
	log      *testenv.Buffer
	mu       sync.Mutex
	seen     []*http.Request // requests that reached the next handler
	rejected []Reason
}

func newMWFixture(t *testing.T, opts AuthenticatorOptions) *mwFixture {
	t.Helper()
	f := &mwFixture{idp: newIdP(t, ""), clk: newClock(), store: NewMemoryStore(), log: &testenv.Buffer{}}
	v := newTestValidator(t, f.idp, f.clk, nil)
	f.keys = NewAPIKeys(f.store, &APIKeysOptions{Now: f.clk.Now})
	opts.APIKeys = f.keys
	opts.Logger = slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.OnReject = func(_ context.Context, _ *http.Request, _ int, rej *Rejection) {
		f.mu.Lock()
		f.rejected = append(f.rejected, rej.Reason)
		f.mu.Unlock()
	}
	a, err := NewAuthenticator(testAudience, v, &opts)
	if err != nil {
		t.Fatal(err)
	}
	f.handler = a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.seen = append(f.seen, r)
		f.mu.Unlock()
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			t.Error("next handler called without a principal")
			return
		}
		io.WriteString(w, "hello "+p.Subject)
	}))
	return f
}

func (f *mwFixture) do(mut func(r *http.Request)) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "https://gw.example.com/mcp", strings.NewReader(`{}`))
	mut(r)
	w := httptest.NewRecorder()
	f.handler.ServeHTTP(w, r)
	return w
}

func bearer(tok string) func(r *http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

type answer struct {
	Status    int
	Challenge string
	Body      string
}

func answerOf(w *httptest.ResponseRecorder) answer {
	return answer{w.Code, w.Header().Get("WWW-Authenticate"), w.Body.String()}
}

func TestMiddlewareContract(t *testing.T) {
	t.Parallel()
	f := newMWFixture(t, AuthenticatorOptions{RequiredScopes: []string{"mcp:tools"}})
	now := f.clk.Now()
	good := sign(t, jwt.SigningMethodRS256, "rsa1", testRSA(), f.idp.claims(now))
	expiredClaims := f.idp.claims(now)
	expiredClaims["exp"] = now.Add(-time.Hour).Unix()
	wrongAud := f.idp.claims(now)
	wrongAud["aud"] = "https://other.example.com/mcp"
	noScope := f.idp.claims(now)
	noScope["scope"] = "mcp:read"
	longLived := f.idp.claims(now)
	longLived["exp"] = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).Unix()

	invalid := answer{401,
		`Bearer error="invalid_token", error_description="the access token is invalid", scope="mcp:tools", resource_metadata="` + wantMetadataURL + `"`,
		`{"error":"invalid_token","error_description":"the access token is invalid"}`}
	missing := answer{401,
		`Bearer scope="mcp:tools", resource_metadata="` + wantMetadataURL + `"`,
		`{"error":"invalid_token","error_description":"authentication required"}`}
	badRequest := answer{400,
		`Bearer error="invalid_request", error_description="send the credential once, in the Authorization header (not in the URL)", resource_metadata="` + wantMetadataURL + `"`,
		`{"error":"invalid_request","error_description":"send the credential once, in the Authorization header (not in the URL)"}`}

	tests := []struct {
		name   string
		req    func(r *http.Request)
		want   answer
		reason Reason
	}{
		{"no Authorization", func(*http.Request) {}, missing, ReasonMissing},
		{"Basic scheme", func(r *http.Request) { r.SetBasicAuth("alice", "pw") }, missing, ReasonScheme},
		{"alg none", bearer(rawToken(`{"alg":"none"}`, `{"sub":"alice"}`, nil)), invalid, ReasonAlgorithm},
		{"expired", bearer(sign(t, jwt.SigningMethodRS256, "rsa1", testRSA(), expiredClaims)), invalid, ReasonExpired},
		{"wrong aud", bearer(sign(t, jwt.SigningMethodRS256, "rsa1", testRSA(), wrongAud)), invalid, ReasonAudience},
		{"garbage", bearer("not-a-token"), invalid, ReasonMalformed},
		{"lifetime too long", bearer(sign(t, jwt.SigningMethodRS256, "rsa1", testRSA(), longLived)), answer{401,
			`Bearer error="invalid_token", error_description="the access token's lifetime is longer than this resource accepts", scope="mcp:tools", resource_metadata="` + wantMetadataURL + `"`,
			`{"error":"invalid_token","error_description":"the access token's lifetime is longer than this resource accepts"}`}, ReasonLifetime},
		{"two Authorization headers", func(r *http.Request) {
			r.Header.Add("Authorization", "Bearer "+good)
			r.Header.Add("Authorization", "Bearer "+good)
		}, badRequest, ReasonDuplicateHeader},
		{"token in the query string", func(r *http.Request) { r.URL.RawQuery = "access_token=" + good }, badRequest, ReasonTokenInQuery},
		{"token in the query string beside a header", func(r *http.Request) {
			r.URL.RawQuery = "x=1&access_token=abc"
			r.Header.Set("Authorization", "Bearer "+good)
		}, badRequest, ReasonTokenInQuery},
		{"scope short", bearer(sign(t, jwt.SigningMethodRS256, "rsa1", testRSA(), noScope)), answer{403,
			`Bearer error="insufficient_scope", error_description="the access token lacks a required scope", scope="mcp:tools", resource_metadata="` + wantMetadataURL + `"`,
			`{"error":"insufficient_scope","error_description":"the access token lacks a required scope"}`}, ReasonScope},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.mu.Lock()
			f.rejected, f.seen = nil, nil
			f.mu.Unlock()
			got := answerOf(f.do(tt.req))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.seen) != 0 {
				t.Error("the request reached the next handler")
			}
			if diff := cmp.Diff([]Reason{tt.reason}, f.rejected); diff != "" {
				t.Errorf("audited reasons (-want +got):\n%s", diff)
			}
		})
	}
	if strings.Contains(f.log.String(), good[:40]) || strings.Contains(f.log.String(), good[len(good)-20:]) {
		t.Error("the log contains a token")
	}
	if !strings.Contains(f.log.String(), "reason=expired") {
		t.Errorf("the log does not record the real reason:\n%s", f.log)
	}
}

func TestMiddlewarePassesPrincipalAndStripsAuthorization(t *testing.T) {
	t.Parallel()
	f := newMWFixture(t, AuthenticatorOptions{})
	tok := sign(t, jwt.SigningMethodRS256, "rsa1", testRSA(), f.idp.claims(f.clk.Now()))
	w := f.do(bearer(tok))
	if w.Code != 200 || w.Body.String() != "hello alice" {
		t.Fatalf("got %d %q", w.Code, w.Body)
	}
	if got := f.seen[0].Header.Get("Authorization"); got != "" {
		t.Errorf("Authorization reached the next handler: %q", got)
	}
}

func TestMiddlewareAPIKeyRevokedOnTheNextRequest(t *testing.T) {
	t.Parallel()
	f := newMWFixture(t, AuthenticatorOptions{RequiredScopes: []string{"mcp:tools"}})
	ctx := context.Background()
	secret, rec, err := f.keys.Create(ctx, "billing-agent", []string{"finance"}, 90*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if w := f.do(bearer(secret.Reveal())); w.Code != 200 || w.Body.String() != "hello billing-agent" {
		t.Fatalf("valid API key: %d %q", w.Code, w.Body)
	}
	if err := f.keys.Revoke(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	if w := f.do(bearer(secret.Reveal())); w.Code != 401 {
		t.Fatalf("revoked API key: %d, want 401", w.Code)
	}
	if diff := cmp.Diff([]Reason{ReasonRevoked}, f.rejected); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}
}

type failingKeyStore struct{ *MemoryStore }

func (*failingKeyStore) APIKey(context.Context, string) (APIKey, error) {
	return APIKey{}, errors.New("database is locked")
}

func TestMiddlewareFailsClosedWhenTheKeyStoreIsDown(t *testing.T) {
	t.Parallel()
	keys := NewAPIKeys(&failingKeyStore{NewMemoryStore()}, nil)
	a, err := NewAuthenticator(testAudience, nil, &AuthenticatorOptions{APIKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	h := a.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("request passed") }))
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/mcp", nil)
	r.Header.Set("Authorization", "Bearer mcpg_0123456789abcdef_"+strings.Repeat("A", 43))
	h.ServeHTTP(w, r)
	if w.Code != 503 || w.Header().Get("Retry-After") == "" {
		t.Errorf("got %d (Retry-After %q), want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
}

func TestMiddlewareAcceptsOperatorSessionsWhenConfigured(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newOpFixture(t)
	a, err := NewAuthenticator("https://gw.example.com/admin", nil, &AuthenticatorOptions{Sessions: f.ops.Sessions()})
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := f.ops.Login(ctx, "alice", goodPassword, f.code(t))
	if err != nil {
		t.Fatal(err)
	}
	var got *Principal
	h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got, _ = PrincipalFrom(r.Context()) }))
	for _, tt := range []struct {
		name   string
		token  string
		status int
	}{
		{"session", token.Reveal(), 200},
		{"API key on an endpoint without API keys", "mcpg_0123456789abcdef_" + strings.Repeat("A", 43), 401},
		{"JWT on an endpoint without an issuer", "a.b.c", 401},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got = nil
			w := httptest.NewRecorder()
			r := httptest.NewRequest("GET", "/admin", nil)
			r.Header.Set("Authorization", "Bearer "+tt.token)
			h.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Errorf("status %d, want %d", w.Code, tt.status)
			}
			if tt.status == 200 && (got == nil || got.Subject != "alice" || got.Method != MethodOperator) {
				t.Errorf("principal %+v", got)
			}
		})
	}
}

// TestMiddlewareWithoutResourceNamesNoMetadata: an authenticator for API keys alone has no
// resource metadata to point to (none is served), so its challenges name none rather than a
// URL that answers 404; one that accepts bearer tokens must have the resource.
func TestMiddlewareWithoutResourceNamesNoMetadata(t *testing.T) {
	t.Parallel()
	clk := newClock()
	keys := NewAPIKeys(NewMemoryStore(), &APIKeysOptions{Now: clk.Now})
	a, err := NewAuthenticator("", nil, &AuthenticatorOptions{APIKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if a.MetadataURL() != "" {
		t.Errorf("MetadataURL = %q, want none", a.MetadataURL())
	}
	h := a.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("request passed") }))
	for _, tt := range []struct {
		name string
		req  func(r *http.Request)
		want string
	}{
		{"no credential", func(*http.Request) {}, `Bearer`},
		{"unknown key", bearer("mcpg_0123456789abcdef_" + strings.Repeat("A", 43)), `Bearer error="invalid_token", error_description="the access token is invalid"`},
		{"token in the query string", func(r *http.Request) { r.URL.RawQuery = "access_token=x" },
			`Bearer error="invalid_request", error_description="send the credential once, in the Authorization header (not in the URL)"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8080/mcp", strings.NewReader(`{}`))
			tt.req(r)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if got := w.Header().Get("WWW-Authenticate"); got != tt.want {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.want)
			}
		})
	}

	idp := newIdP(t, "")
	if _, err := NewAuthenticator("", newTestValidator(t, idp, clk, nil), nil); err == nil {
		t.Error("an authenticator accepting bearer tokens was built without the resource")
	}
}

// TestMiddlewareRefusalNamesAPIKey: a refused API key reaches the audit hook and the log with its
// public id, never its secret.
func TestMiddlewareRefusalNamesAPIKey(t *testing.T) {
	t.Parallel()
	var got []*Rejection
	log := &testenv.Buffer{}
	store := NewMemoryStore()
	keys := NewAPIKeys(store, nil)
	a, err := NewAuthenticator("", nil, &AuthenticatorOptions{
		APIKeys:  keys,
		Logger:   slog.New(slog.NewTextHandler(log, nil)),
		OnReject: func(_ context.Context, _ *http.Request, _ int, rej *Rejection) { got = append(got, rej) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	secret, rec, err := keys.Create(ctx, "billing-agent", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Revoke(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	h := a.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("request passed") }))
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	r.Header.Set("Authorization", "Bearer "+secret.Reveal())
	h.ServeHTTP(httptest.NewRecorder(), r)
	if len(got) != 1 || got[0].Reason != ReasonRevoked || got[0].KeyID != rec.ID {
		t.Fatalf("rejections %+v, want one revoked naming key %s", got, rec.ID)
	}
	if !strings.Contains(log.String(), "api_key_id="+rec.ID) {
		t.Errorf("the log does not name the key:\n%s", log)
	}
	if sec := secret.Reveal()[len(secret.Reveal())-apiKeySecLen:]; strings.Contains(log.String(), sec) {
		t.Error("the log contains the key's secret")
	}
}

// TestWithoutCredential: the handler after authentication sees no Authorization header under
// any casing, every other header intact, and changes it makes to its copy leave the request's
// own headers alone.
func TestWithoutCredential(t *testing.T) {
	h := http.Header{"Authorization": {"Bearer a"}, "authorization": {"Bearer b"}, "X-Trace": {"1"}}
	h["Accept"] = []string{"a", "b"}[:1:1]
	out := withoutCredential(h)
	if len(out) != 2 || out.Get("X-Trace") != "1" || out.Get("Accept") != "a" {
		t.Fatalf("copy = %v, want X-Trace and Accept only", out)
	}
	for k := range out {
		if strings.EqualFold(k, "Authorization") {
			t.Fatalf("copy keeps %q", k)
		}
	}
	out.Add("Accept", "c")
	out.Set("X-Trace", "2")
	if len(h["Accept"]) != 1 || h.Get("X-Trace") != "1" || h.Get("Authorization") != "Bearer a" {
		t.Errorf("the request's headers changed with the copy: %v", h)
	}
}
