package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/authn/oidctest"
)

// liveSessions is an operator store that counts the sessions open.
type liveSessions struct {
	*authn.MemoryStore
	mu   sync.Mutex
	open map[[32]byte]bool
}

func (s *liveSessions) CreateSession(ctx context.Context, sess authn.Session) error {
	s.mu.Lock()
	s.open[sess.ID] = true
	s.mu.Unlock()
	return s.MemoryStore.CreateSession(ctx, sess)
}

func (s *liveSessions) DeleteSession(ctx context.Context, id [32]byte) error {
	s.mu.Lock()
	delete(s.open, id)
	s.mu.Unlock()
	return s.MemoryStore.DeleteSession(ctx, id)
}

func (s *liveSessions) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

// oidcFixture is an admin API whose operators alice (role Desk) log in with a fake provider.
type oidcFixture struct {
	gw       *fakeGateway
	sessions *liveSessions
	idp      *oidctest.Provider
	srv      *httptest.Server
	browser  *http.Client // keeps the admin API's cookies, follows no redirect
}

func newOIDCFixture(t *testing.T, gw *fakeGateway) *oidcFixture {
	t.Helper()
	ctx := context.Background()
	f := &oidcFixture{gw: gw, sessions: &liveSessions{MemoryStore: authn.NewMemoryStore(), open: map[[32]byte]bool{}}}
	ops, err := authn.NewOperators(ctx, f.sessions, f.sessions, &authn.OperatorsOptions{
		Hasher: authn.NewPasswordHasher(&authn.PasswordHasherOptions{Params: authn.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := ops.Create(ctx, "alice", "correct horse battery staple", []string{"Desk"}); err != nil {
		t.Fatal(err)
	}
	f.idp = oidctest.New(t, &oidctest.Options{ClientSecret: "s3cret"})
	login, err := NewOIDCLogin(authn.OIDCLoginConfig{
		Issuer: f.idp.Issuer, ClientID: f.idp.ClientID(), ClientSecret: "s3cret",
		RedirectURL: "http://127.0.0.1:1" + OIDCCallbackPath, Scopes: []string{"openid"}, OperatorClaim: "preferred_username",
	}, ops, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(NewHandler(gw, NewApprovals(nil), &Options{OIDC: login}))
	t.Cleanup(f.srv.Close)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	f.browser = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return f
}

// login starts a login in the fixture's browser, lets the provider approve it and delivers the
// callback from browser.
func (f *oidcFixture) login(t *testing.T, browser *http.Client) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := f.browser.Get(f.srv.URL + "/v1/login/oidc")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET /v1/login/oidc: %d, want 302 to the provider", resp.StatusCode)
	}
	q := f.idp.Authorize(t, resp.Header.Get("Location"))
	resp, err = browser.Get(f.srv.URL + OIDCCallbackPath + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("callback answered %d %q: not JSON", resp.StatusCode, b)
	}
	return resp, out
}

// TestOIDCLoginIsRecorded: a login is an admin record whose actor is the operator, a refused one
// an auth_failure record with its reason; both through the gateway's audit log.
func TestOIDCLoginIsRecorded(t *testing.T) {
	f := newOIDCFixture(t, &fakeGateway{})
	if resp, out := f.login(t, f.browser); resp.StatusCode != http.StatusOK || out["operator"] != "alice" {
		t.Fatalf("login: %d %v", resp.StatusCode, out)
	}
	if resp, out := f.login(t, &http.Client{}); resp.StatusCode != http.StatusBadRequest || out["token"] != nil {
		t.Fatalf("callback from a browser that did not start the login: %d %v, want 400 and no token", resp.StatusCode, out)
	}
	want := []recorded{
		{actor: "alice", roles: []string{"Desk"}, authMethod: "oidc", kind: audit.KindAdmin, decision: audit.DecisionAllow,
			detail: `{"action":"operator_login","sub":"user-alice","via":"oidc"}`},
		{authMethod: "oidc", kind: audit.KindAuthFailure, decision: audit.DecisionDeny, reasons: []string{"login_browser"},
			detail: `{"action":"operator_login","sub":"","via":"oidc"}`},
	}
	if diff := cmp.Diff(want, f.gw.recorded(), cmp.AllowUnexported(recorded{})); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

// TestOIDCLoginFailsClosed: a login the audit log cannot record answers 503 and leaves no
// session open.
func TestOIDCLoginFailsClosed(t *testing.T) {
	f := newOIDCFixture(t, &fakeGateway{recordErr: errors.New("audit store down")})
	resp, out := f.login(t, f.browser)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" || out["token"] != nil ||
		out["error"] != "the login could not be recorded in the audit log: try again later" {
		t.Errorf("login with the audit log down: %d %v (Retry-After %q), want 503 without a token", resp.StatusCode, out, resp.Header.Get("Retry-After"))
	}
	if n := f.sessions.count(); n != 0 {
		t.Errorf("%d operator sessions open after the unrecorded login, want 0", n)
	}

	// The same login with the audit log up keeps its session: the count above proves something.
	f.gw.mu.Lock()
	f.gw.recordErr = nil
	f.gw.mu.Unlock()
	if resp, out := f.login(t, f.browser); resp.StatusCode != http.StatusOK || !strings.HasPrefix(fmt.Sprint(out["token"]), authn.SessionPrefix) {
		t.Fatalf("login: %d %v", resp.StatusCode, out)
	}
	if n := f.sessions.count(); n != 1 {
		t.Errorf("%d operator sessions open after a recorded login, want 1", n)
	}
}

// TestNewOIDCLoginNeedsOperatorAccounts: without api_keys_database there is nobody to log in.
func TestNewOIDCLoginNeedsOperatorAccounts(t *testing.T) {
	_, err := NewOIDCLogin(authn.OIDCLoginConfig{Issuer: "https://idp.example", ClientID: "c", RedirectURL: "https://admin.example" + OIDCCallbackPath}, nil, nil)
	if err == nil || err.Error() != "admin.oidc: operator accounts live in api_keys_database, which is not configured" {
		t.Errorf("NewOIDCLogin without operators: %v", err)
	}
}

// TestOIDCLoginToConsole: a login started with to=console ends in the console's session cookie
// (HttpOnly, Secure, SameSite=Strict), never in the page, and a page that moves the browser on
// to the console; the next login without it answers JSON again; an unknown to is refused.
func TestOIDCLoginToConsole(t *testing.T) {
	f := newOIDCFixture(t, &fakeGateway{})
	resp, err := f.browser.Get(f.srv.URL + "/v1/login/oidc?to=console")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET /v1/login/oidc?to=console: %d, want 302 to the provider", resp.StatusCode)
	}
	q := f.idp.Authorize(t, resp.Header.Get("Location"))
	resp, err = f.browser.Get(f.srv.URL + OIDCCallbackPath + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == ConsoleSessionCookie {
			session = c
		}
	}
	switch {
	case resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html"):
		t.Fatalf("callback of a console login: %d %q %q, want 200 and a page", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	case session == nil || !strings.HasPrefix(session.Value, authn.SessionPrefix):
		t.Fatalf("callback of a console login set no console session cookie: %v", resp.Header["Set-Cookie"])
	case !session.HttpOnly || !session.Secure || session.SameSite != http.SameSiteStrictMode || session.Path != "/" || session.MaxAge <= 0 || session.MaxAge > 8*3600:
		t.Errorf("console session cookie %+v: want HttpOnly, Secure, SameSite=Strict, Path=/ and at most 8 hours", session)
	case strings.Contains(string(body), session.Value):
		t.Errorf("the page carries the session token: %q", body)
	case !strings.Contains(string(body), `url=/console/`) || !strings.Contains(string(body), "Logged in as alice"):
		t.Errorf("the page does not move the browser on to the console: %q", body)
	}
	if n := f.sessions.count(); n != 1 {
		t.Errorf("%d operator sessions open after the console login, want 1", n)
	}
	if resp, out := f.login(t, f.browser); resp.StatusCode != http.StatusOK || out["operator"] != "alice" {
		t.Errorf("a later login without to=console: %d %v, want the token as JSON", resp.StatusCode, out)
	}

	// A refused console login answers a page with the reason and the way back, not JSON.
	resp, err = f.browser.Get(f.srv.URL + "/v1/login/oidc?to=console")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	q = f.idp.Authorize(t, resp.Header.Get("Location"))
	q.Set("state", "not-the-state-this-browser-started")
	resp, err = f.browser.Get(f.srv.URL + OIDCCallbackPath + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(body), "not started in this browser") || !strings.Contains(string(body), `href="/console/login"`) {
		t.Errorf("a refused console login: %d %q %s, want 400 and a page with the reason and a link to the console's login", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}

	resp, err = f.browser.Get(f.srv.URL + "/v1/login/oidc?to=https://evil.example/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "use to=console") {
		t.Errorf("GET /v1/login/oidc?to=https://evil.example/: %d %s, want 400 naming to=console", resp.StatusCode, body)
	}
}
