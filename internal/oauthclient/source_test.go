package oauthclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testClientID = "gateway"
	testSecret   = "s3cret-client-value"
)

// authServer is an in-process OAuth authorization server with the client credentials grant.
type authServer struct {
	srv       *httptest.Server
	issuer    string          // what its metadata names; defaults to srv.URL
	expiresIn int             // seconds; 0 omits expires_in
	method    string          // the client authentication it requires: AuthBasic, AuthPost or AuthPrivateKeyJWT
	assertion *assertionCheck // with AuthPrivateKeyJWT, how it verifies the client assertion
	oidcOnly  bool            // serves only /.well-known/openid-configuration
	hold      chan struct{}

	mu       sync.Mutex
	requests int
	forms    []url.Values
	issued   []string
}

func newAuthServer(t *testing.T) *authServer {
	t.Helper()
	as := &authServer{expiresIn: 3600, method: AuthBasic}
	mux := http.NewServeMux()
	meta := func(w http.ResponseWriter, r *http.Request) {
		issuer := as.issuer
		if issuer == "" {
			issuer = as.srv.URL
		}
		json.NewEncoder(w).Encode(map[string]any{"issuer": issuer, "token_endpoint": as.srv.URL + "/token"})
	}
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		if as.oidcOnly {
			http.NotFound(w, r)
			return
		}
		meta(w, r)
	})
	mux.HandleFunc("GET /.well-known/openid-configuration", meta)
	mux.HandleFunc("POST /token", as.token)
	as.srv = httptest.NewServer(mux)
	t.Cleanup(as.srv.Close)
	return as
}

func (as *authServer) token(w http.ResponseWriter, r *http.Request) {
	if as.hold != nil {
		<-as.hold
	}
	r.ParseForm()
	as.mu.Lock()
	as.requests++
	as.forms = append(as.forms, r.PostForm)
	n := as.requests
	as.mu.Unlock()
	id, secret, basic := r.BasicAuth()
	refusal := "Invalid client credentials"
	switch as.method {
	case AuthPost:
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		basic = false
	case AuthPrivateKeyJWT:
		id, secret = r.PostForm.Get("client_id"), testSecret
		if err := as.assertion.verify(r.PostForm, as.srv.URL); err != nil {
			id, refusal = "", fmt.Sprintf("client assertion refused: %v", err)
		}
	}
	if basic != (as.method == AuthBasic) || id != testClientID || secret != testSecret || r.PostForm.Get("grant_type") != "client_credentials" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client", "error_description": refusal})
		return
	}
	tok := fmt.Sprintf("at-%d-%d", n, time.Now().UnixNano())
	as.mu.Lock()
	as.issued = append(as.issued, tok)
	as.mu.Unlock()
	resp := map[string]any{"access_token": tok, "token_type": "bearer"}
	if as.expiresIn > 0 {
		resp["expires_in"] = as.expiresIn
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

func (as *authServer) count() int {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.requests
}

func (as *authServer) valid(tok string) bool {
	as.mu.Lock()
	defer as.mu.Unlock()
	for _, t := range as.issued {
		if t == tok {
			return true
		}
	}
	return false
}

// upstream is a protected resource that accepts the tokens its authorization server issued.
type upstream struct {
	srv        *httptest.Server
	as         *authServer
	prmPath    string // where its metadata is; "" serves none and names none
	resource   string // what its metadata names; defaults to the MCP URL
	revoked    map[string]bool
	refuseAll  bool
	mu         sync.Mutex
	anonymous  int      // requests without a token
	authorized []string // bodies of the requests with a valid token
}

func newUpstream(t *testing.T, as *authServer) *upstream {
	t.Helper()
	u := &upstream{as: as, prmPath: "/.well-known/oauth-protected-resource/mcp", revoked: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, r *http.Request) {
		res := u.resource
		if res == "" {
			res = u.srv.URL + "/mcp"
		}
		json.NewEncoder(w).Encode(map[string]any{"resource": res, "authorization_servers": []string{as.srv.URL}})
	})
	mux.HandleFunc("/mcp", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		u.mu.Lock()
		defer u.mu.Unlock()
		if !ok {
			u.anonymous++
		}
		if !ok || !as.valid(tok) || u.revoked[tok] || u.refuseAll {
			c := `Bearer error="invalid_token", error_description="The access token is missing or invalid"`
			if u.prmPath != "" {
				c += `, resource_metadata="` + u.srv.URL + u.prmPath + `"`
			}
			w.Header().Set("WWW-Authenticate", c)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		u.authorized = append(u.authorized, string(body))
		io.WriteString(w, "ok")
	})
	u.srv = httptest.NewServer(mux)
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) url() string { return u.srv.URL + "/mcp" }

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

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

func newSource(t *testing.T, upstreamURL string, cfg Config, opts *Options) *Source {
	t.Helper()
	if cfg.ClientID == "" {
		cfg.ClientID = testClientID
	}
	if cfg.ClientSecret == "" && cfg.AuthMethod != AuthPrivateKeyJWT {
		cfg.ClientSecret = testSecret
	}
	s, err := New(upstreamURL, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// post sends body to the upstream through the Source's transport.
func post(t *testing.T, s *Source, target, body string) (*http.Response, error) {
	t.Helper()
	hc := &http.Client{Transport: s.Transport(nil)}
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

func TestTokenFetchedOnceAndReused(t *testing.T) {
	as := newAuthServer(t)
	up := newUpstream(t, as)
	s := newSource(t, up.url(), Config{TokenURL: as.srv.URL + "/token"}, nil)
	for i := range 20 {
		resp, err := post(t, s, up.url(), fmt.Sprintf(`{"call":%d}`, i))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("call %d: %v %v", i, resp, err)
		}
	}
	if n := as.count(); n != 1 {
		t.Errorf("token requests = %d, want 1 for 20 calls", n)
	}
	if up.anonymous != 0 {
		t.Errorf("the upstream saw %d requests without a token; with token_url it should see none", up.anonymous)
	}
}

func TestTokenRefreshedBeforeExpiry(t *testing.T) {
	as := newAuthServer(t)
	as.expiresIn = 100
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := newSource(t, "https://mcp.example.com/mcp", Config{TokenURL: as.srv.URL + "/token"}, &Options{Now: clock.Now})
	ctx := context.Background()
	first, err := s.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(60 * time.Second)
	if tok, _ := s.Token(ctx); tok != first || as.count() != 1 {
		t.Errorf("after 60s of 100s: new token %v, %d requests; want the cached token", tok != first, as.count())
	}
	clock.Advance(11 * time.Second) // 71s: inside the last 30s
	second, err := s.Token(ctx)
	if err != nil || second == first || as.count() != 2 {
		t.Errorf("after 71s of 100s: err %v, same token %v, %d requests; want a fresh token", err, second == first, as.count())
	}
}

func TestRefreshFailureKeepsUnexpiredToken(t *testing.T) {
	as := newAuthServer(t)
	as.expiresIn = 100
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := newSource(t, "https://mcp.example.com/mcp", Config{TokenURL: as.srv.URL + "/token"}, &Options{Now: clock.Now})
	first, err := s.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	as.srv.Close() // the authorization server goes away
	clock.Advance(80 * time.Second)
	if tok, err := s.Token(context.Background()); tok != first || err != nil {
		t.Errorf("refresh failed before expiry: got %v; want the cached token", err)
	}
	clock.Advance(30 * time.Second) // expired
	if _, err := s.Token(context.Background()); !errors.Is(err, ErrToken) {
		t.Errorf("after expiry with the server down: err = %v; want ErrToken", err)
	}
}

func TestConcurrentCallersShareOneFetch(t *testing.T) {
	as := newAuthServer(t)
	as.hold = make(chan struct{})
	s := newSource(t, "https://mcp.example.com/mcp", Config{TokenURL: as.srv.URL + "/token"}, nil)
	var wg sync.WaitGroup
	var failed atomic.Int32
	tokens := make([]string, 32)
	for i := range tokens {
		wg.Go(func() {
			tok, err := s.Token(context.Background())
			if err != nil {
				failed.Add(1)
			}
			tokens[i] = tok
		})
	}
	close(as.hold)
	wg.Wait()
	if failed.Load() != 0 || as.count() != 1 {
		t.Errorf("%d callers failed, %d token requests; want none and 1", failed.Load(), as.count())
	}
	for _, tok := range tokens {
		if tok != tokens[0] {
			t.Fatalf("callers got different tokens")
		}
	}
}

func TestWrongSecretFailsWithoutReachingUpstream(t *testing.T) {
	as := newAuthServer(t)
	up := newUpstream(t, as)
	s := newSource(t, up.url(), Config{TokenURL: as.srv.URL + "/token", ClientSecret: "wrong-secret-value"}, nil)
	_, err := post(t, s, up.url(), `{"method":"tools/call"}`)
	if !errors.Is(err, ErrToken) {
		t.Fatalf("err = %v; want ErrToken", err)
	}
	for _, want := range []string{"401", "invalid_client", "check the client id and secret"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "wrong-secret-value") {
		t.Errorf("error reveals the secret: %v", err)
	}
	if up.anonymous != 0 || len(up.authorized) != 0 {
		t.Errorf("the upstream saw %d anonymous and %d authorized requests; want none", up.anonymous, len(up.authorized))
	}
}

func TestUnreachableTokenEndpoint(t *testing.T) {
	as := newAuthServer(t)
	up := newUpstream(t, as)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL + "/token"
	dead.Close()
	s := newSource(t, up.url(), Config{TokenURL: deadURL}, nil)
	_, err := post(t, s, up.url(), `{}`)
	if !errors.Is(err, ErrToken) || !strings.Contains(err.Error(), "token endpoint") {
		t.Errorf("err = %v; want ErrToken naming the token endpoint", err)
	}
}

func TestClientAuthMethods(t *testing.T) {
	for _, method := range []string{AuthBasic, AuthPost} {
		t.Run(method, func(t *testing.T) {
			as := newAuthServer(t)
			as.method = method
			s := newSource(t, "https://mcp.example.com/mcp", Config{
				TokenURL: as.srv.URL + "/token", AuthMethod: method, Scopes: []string{"tools.read", "tools.call"},
			}, nil)
			if _, err := s.Token(context.Background()); err != nil {
				t.Fatal(err)
			}
			f := as.forms[0]
			if f.Get("scope") != "tools.read tools.call" || f.Get("resource") != "https://mcp.example.com/mcp" {
				t.Errorf("scope, resource = %q, %q", f.Get("scope"), f.Get("resource"))
			}
			if got := f.Has("client_secret"); got != (method == AuthPost) {
				t.Errorf("client_secret in the form = %v with %s", got, method)
			}
		})
	}
}

func TestDiscoveryFromUpstream(t *testing.T) {
	as := newAuthServer(t)
	up := newUpstream(t, as)
	s := newSource(t, up.url(), Config{}, nil)
	for i := range 3 {
		resp, err := post(t, s, up.url(), fmt.Sprintf(`{"call":%d}`, i))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("call %d: %v, %v", i, resp, err)
		}
	}
	if up.anonymous != 1 || as.count() != 1 {
		t.Errorf("anonymous requests %d, token requests %d; want 1 and 1 (discovery once)", up.anonymous, as.count())
	}
	want := []string{`{"call":0}`, `{"call":1}`, `{"call":2}`}
	if fmt.Sprint(up.authorized) != fmt.Sprint(want) {
		t.Errorf("the upstream received %q; want %q (the first call replayed after discovery)", up.authorized, want)
	}
	if got := as.forms[0].Get("resource"); got != up.url() {
		t.Errorf("resource = %q; want the one the metadata names, %q", got, up.url())
	}
}

func TestDiscoveryVariants(t *testing.T) {
	t.Run("OpenID Connect metadata", func(t *testing.T) {
		as := newAuthServer(t)
		as.oidcOnly = true
		up := newUpstream(t, as)
		if resp, err := post(t, newSource(t, up.url(), Config{}, nil), up.url(), `{}`); err != nil || resp.StatusCode != 200 {
			t.Errorf("%v %v", resp, err)
		}
	})
	t.Run("well-known metadata when the 401 names none", func(t *testing.T) {
		as := newAuthServer(t)
		up := newUpstream(t, as)
		up.prmPath = ""
		if resp, err := post(t, newSource(t, up.url(), Config{}, nil), up.url(), `{}`); err != nil || resp.StatusCode != 200 {
			t.Errorf("%v %v", resp, err)
		}
	})
	t.Run("configured issuer", func(t *testing.T) {
		as := newAuthServer(t)
		up := newUpstream(t, as)
		s := newSource(t, up.url(), Config{Issuer: as.srv.URL}, nil)
		if resp, err := post(t, s, up.url(), `{}`); err != nil || resp.StatusCode != 200 || up.anonymous != 0 {
			t.Errorf("%v %v, %d anonymous requests; want success with none", resp, err, up.anonymous)
		}
	})
	refused := []struct {
		name  string
		setup func(as *authServer, up *upstream)
		want  string
	}{
		{"metadata for another resource", func(as *authServer, up *upstream) { up.resource = "https://evil.example.com/mcp" }, "not for the upstream"},
		{"issuer mismatch", func(as *authServer, up *upstream) { as.issuer = "https://evil.example.com" }, "names the issuer"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			as := newAuthServer(t)
			up := newUpstream(t, as)
			tt.setup(as, up)
			_, err := post(t, newSource(t, up.url(), Config{}, nil), up.url(), `{}`)
			if !errors.Is(err, ErrToken) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v; want ErrToken saying %q", err, tt.want)
			}
			if as.count() != 0 {
				t.Errorf("%d token requests; the secret must not be sent", as.count())
			}
		})
	}
}

func TestInvalidTokenRefetchedAndRetriedOnce(t *testing.T) {
	as := newAuthServer(t)
	up := newUpstream(t, as)
	s := newSource(t, up.url(), Config{TokenURL: as.srv.URL + "/token"}, nil)
	if _, err := post(t, s, up.url(), `{"n":1}`); err != nil {
		t.Fatal(err)
	}
	first, _ := s.Token(context.Background())
	up.mu.Lock()
	up.revoked[first] = true
	up.mu.Unlock()
	resp, err := post(t, s, up.url(), `{"n":2}`)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("after revocation: %v, %v; want the call retried with a new token", resp, err)
	}
	if as.count() != 2 || fmt.Sprint(up.authorized) != `[{"n":1} {"n":2}]` {
		t.Errorf("token requests %d, upstream received %q", as.count(), up.authorized)
	}

	// A token the server keeps refusing is retried once, not forever.
	up.mu.Lock()
	up.refuseAll = true
	up.mu.Unlock()
	before := as.count()
	resp, err = post(t, s, up.url(), `{"n":3}`)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || as.count()-before != 1 {
		t.Errorf("got %v, %v after %d token requests; want the 401 after exactly 1", resp, err, as.count()-before)
	}
}

func TestTokenOnlyForUpstreamOrigin(t *testing.T) {
	as := newAuthServer(t)
	up := newUpstream(t, as)
	var got atomic.Value
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("Authorization"))
	}))
	defer other.Close()
	s := newSource(t, up.url(), Config{TokenURL: as.srv.URL + "/token"}, nil)
	if _, err := post(t, s, other.URL+"/elsewhere", `{}`); err != nil {
		t.Fatal(err)
	}
	if v, _ := got.Load().(string); v != "" {
		t.Errorf("another origin received Authorization %q", v)
	}
}

func TestNoSecretOrTokenInLogs(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	as := newAuthServer(t)
	up := newUpstream(t, as)
	s := newSource(t, up.url(), Config{}, &Options{Logger: logger, Name: "crm"})
	if resp, err := post(t, s, up.url(), `{}`); err != nil || resp.StatusCode != 200 {
		t.Fatal(resp, err)
	}
	bad := newSource(t, up.url(), Config{TokenURL: as.srv.URL + "/token", ClientSecret: "wrong-s3cret"}, &Options{Logger: logger})
	post(t, bad, up.url(), `{}`)

	mu.Lock()
	out := buf.String()
	mu.Unlock()
	for _, lit := range []string{"discovered the upstream's token endpoint", "obtained the upstream's access token", "cannot obtain", "invalid_client"} {
		if !strings.Contains(out, lit) {
			t.Errorf("log lacks %q:\n%s", lit, out)
		}
	}
	secrets := append([]string{testSecret, "wrong-s3cret"}, as.issued...)
	for _, sec := range secrets {
		if strings.Contains(out, sec) {
			t.Errorf("log reveals %q:\n%s", sec, out)
		}
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestParseTokenResponse(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		lifetime time.Duration
		wantErr  string
	}{
		{"bearer with lifetime", 200, `{"access_token":"abc","token_type":"Bearer","expires_in":3600}`, time.Hour, ""},
		{"lower-case type, no lifetime", 200, `{"access_token":"abc","token_type":"bearer"}`, 0, ""},
		{"DPoP type", 200, `{"access_token":"abc","token_type":"DPoP"}`, 0, `token_type is "DPoP"; want Bearer`},
		{"no type", 200, `{"access_token":"abc"}`, 0, "token_type is none"},
		{"no token", 200, `{"token_type":"Bearer"}`, 0, "no access_token"},
		{"empty token", 200, `{"access_token":"","token_type":"Bearer"}`, 0, "no access_token"},
		{"token with a line break", 200, `{"access_token":"a\nb","token_type":"Bearer"}`, 0, "header cannot carry"},
		{"string lifetime", 200, `{"access_token":"abc","token_type":"Bearer","expires_in":"3600"}`, 0, "expires_in"},
		{"negative lifetime", 200, `{"access_token":"abc","token_type":"Bearer","expires_in":-1}`, 0, "expires_in"},
		{"not JSON", 200, `<html>`, 0, "not a JSON token response"},
		{"duplicate token", 200, `{"access_token":"abc","access_token":"xyz","token_type":"Bearer"}`, 0, "not a JSON token response"},
		{"OAuth error with 200", 200, `{"access_token":"abc","token_type":"Bearer","error":"invalid_client"}`, 0, `answered 200 "invalid_client"`},
		{"OAuth error", 400, `{"error":"invalid_scope","error_description":"no such scope"}`, 0, `answered 400 "invalid_scope" ("no such scope")`},
		{"plain error", 503, `down`, 0, "answered 503 Service Unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, lifetime, err := bearer(tt.status, []byte(tt.body))
			if tt.wantErr == "" {
				if err != nil || tok != "abc" || lifetime != tt.lifetime {
					t.Errorf("= %q, %v, %v; want abc, %v", tok, lifetime, err, tt.lifetime)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v; want %q", err, tt.wantErr)
			}
		})
	}
}

// bearer reads an answer as the client credentials grant does.
func bearer(status int, body []byte) (string, time.Duration, error) {
	r, err := ParseTokenResponse(status, body)
	if err != nil {
		return "", 0, err
	}
	return r.Bearer()
}

func TestParseChallenge(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   bearerChallenge
	}{
		{"MCP server", []string{`Bearer error="invalid_token", error_description="Missing Authorization header", resource_metadata="http://localhost:1/.well-known/oauth-protected-resource/mcp"`},
			bearerChallenge{true, "invalid_token", "http://localhost:1/.well-known/oauth-protected-resource/mcp"}},
		{"after another scheme", []string{`Basic realm="x", Bearer resource_metadata="https://a/b", error=invalid_token`},
			bearerChallenge{true, "invalid_token", "https://a/b"}},
		{"second header", []string{`Basic realm="x"`, `bearer error="insufficient_scope"`}, bearerChallenge{true, "insufficient_scope", ""}},
		{"quoted pair", []string{`Bearer error_description="a \"b\"", error="invalid_token"`}, bearerChallenge{true, "invalid_token", ""}},
		{"token68", []string{`Negotiate abc==, Bearer error="x"`}, bearerChallenge{true, "x", ""}},
		{"none", []string{`Basic realm="x"`}, bearerChallenge{}},
		{"junk", []string{`"Bearer`, `,,, =`}, bearerChallenge{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseChallenge(tt.values); got != tt.want {
				t.Errorf("= %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no secret", Config{ClientID: "a"}, "required"},
		{"both endpoints", Config{ClientID: "a", ClientSecret: "b", TokenURL: "https://a/t", Issuer: "https://a"}, "exclusive"},
		{"cleartext token URL", Config{ClientID: "a", ClientSecret: "b", TokenURL: "http://idp.example.com/token"}, "not https"},
		{"unknown method", Config{ClientID: "a", ClientSecret: "b", AuthMethod: "tls_client_auth"}, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New("https://mcp.example.com/mcp", tt.cfg, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v; want %q", err, tt.want)
			}
		})
	}
}
