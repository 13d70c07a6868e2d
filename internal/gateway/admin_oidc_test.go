package gateway

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/cmd/mcpguard/wiring"
	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/authn/oidctest"
	"github.com/mcpguard/mcpguard/internal/keystore"
	"github.com/mcpguard/mcpguard/internal/store"
	"github.com/mcpguard/mcpguard/internal/testenv"
)

const oidcClientSecret = "oidc-client-secret-canary"

// oidcAdmin is a gateway whose admin API logs operators in with a fake OpenID provider.
type oidcAdmin struct {
	idp     *oidctest.Provider
	admin   *httptest.Server
	browser *http.Client // keeps the admin API's cookies, follows no redirect
	log     *testenv.Buffer
	auditDB string

	mu    sync.Mutex
	tweak func(claims map[string]any) // applied to the next ID tokens
}

func newOIDCAdmin(t *testing.T) *oidcAdmin {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	a := &oidcAdmin{log: &testenv.Buffer{}, browser: &http.Client{Jar: jar, CheckRedirect: noRedirects.CheckRedirect}}
	a.idp = oidctest.New(t, &oidctest.Options{ClientSecret: oidcClientSecret, Claims: func(c map[string]any) {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.tweak != nil {
			a.tweak(c)
		}
	}})
	t.Setenv("MCPGUARD_TEST_OIDC_SECRET", oidcClientSecret)
	section, auditDB, _ := auditConfig(t)
	a.auditDB = auditDB
	db := filepath.Join(t.TempDir(), "identities.db")
	tg := newTestGatewayWith(t, fmt.Sprintf(`api_keys_database: %q
admin:
  listen: "127.0.0.1:1"
  oidc:
    issuer: %q
    client_id: %q
    client_secret: env:MCPGUARD_TEST_OIDC_SECRET
    redirect_url: "http://127.0.0.1:1/v1/login/oidc/callback"
    required_amr: [mfa]
%s`, db, a.idp.Issuer, a.idp.ClientID(), section), &wiring.Options{Logger: slog.New(slog.NewTextHandler(a.log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	a.admin = httptest.NewServer(tg.g.AdminHandler())
	t.Cleanup(a.admin.Close)

	ctx := context.Background()
	st, err := keystore.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	opStore, err := st.Operators(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := authn.NewOperators(ctx, opStore, opStore, &authn.OperatorsOptions{
		Hasher: authn.NewPasswordHasher(&authn.PasswordHasherOptions{Params: authn.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}}),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"alice", "bob"} {
		if err := ops.Create(ctx, name, "correct horse battery staple", []string{"Desk"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ops.Disable(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	return a
}

func (a *oidcAdmin) setTweak(f func(claims map[string]any)) {
	a.mu.Lock()
	a.tweak = f
	a.mu.Unlock()
}

var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// begin asks the admin API to start a login and lets the provider approve it; it returns the
// callback's query.
func (a *oidcAdmin) begin(t *testing.T) url.Values {
	t.Helper()
	resp, err := a.browser.Get(a.admin.URL + "/v1/login/oidc")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, a.idp.Issuer+"/authorize?") {
		t.Fatalf("GET /v1/login/oidc: %d to %q, want 302 to the provider", resp.StatusCode, loc)
	}
	return a.idp.Authorize(t, loc)
}

// callback delivers the provider's redirect to the admin API.
func (a *oidcAdmin) callback(t *testing.T, q url.Values) (*http.Response, map[string]any) {
	t.Helper()
	return a.callbackFrom(t, a.browser, q)
}

// callbackFrom delivers the provider's redirect to the admin API from the given browser.
func (a *oidcAdmin) callbackFrom(t *testing.T, browser *http.Client, q url.Values) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := browser.Get(a.admin.URL + "/v1/login/oidc/callback?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("callback answered %d %q: not JSON", resp.StatusCode, body)
	}
	return resp, out
}

// TestOperatorOIDCLogin: an operator logs in through the provider and uses the session token on
// the admin API; replayed, forged and refused logins get clear answers without a session; no
// secret reaches the log; every login is in the audit log.
func TestOperatorOIDCLogin(t *testing.T) {
	a := newOIDCAdmin(t)

	first := a.begin(t)
	resp, out := a.callback(t, first)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %v", resp.StatusCode, out)
	}
	token, _ := out["token"].(string)
	if !strings.HasPrefix(token, authn.SessionPrefix) || out["operator"] != "alice" || fmt.Sprint(out["roles"]) != "[Desk]" {
		t.Fatalf("login answered %v, want alice's session token and roles", out)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	if exp, err := time.Parse(time.RFC3339, fmt.Sprint(out["expires"])); err != nil || exp.Before(time.Now().Add(7*time.Hour)) {
		t.Errorf("expires = %v (%v), want the 8-hour session limit", out["expires"], err)
	}
	req, _ := http.NewRequest(http.MethodGet, a.admin.URL+"/v1/approvals", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/approvals with the OIDC session: %v %v", resp.StatusCode, err)
	}
	// The provider reported MFA (amr), so the session may decide held calls: an unknown one is
	// 404, not the 403 of a credential that may not decide.
	req, _ = http.NewRequest(http.MethodPost, a.admin.URL+"/v1/approvals/0123/approve", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotFound || out["mfa"] != true {
		t.Fatalf("deciding with the OIDC session (mfa %v): %v %v, want 404", out["mfa"], resp.StatusCode, err)
	}
	ex := a.idp.Exchanges()
	if len(ex) != 1 || ex[0].Verifier == "" || !ex[0].BasicAuth {
		t.Fatalf("code exchanges = %+v, want one with a PKCE verifier and client_secret_basic", ex)
	}

	for _, tc := range []struct {
		name   string
		alg    string
		tweak  func(c map[string]any)
		status int
		msg    string
	}{
		{"wrong nonce", "", func(c map[string]any) { c["nonce"] = "x" }, http.StatusUnauthorized, "wrong_nonce"},
		{"wrong audience", "", func(c map[string]any) { c["aud"] = "other-client" }, http.StatusUnauthorized, "wrong_audience"},
		{"expired ID token", "", func(c map[string]any) { c["exp"] = time.Now().Add(-5 * time.Minute).Unix() }, http.StatusUnauthorized, "expired"},
		{"alg none", "none", nil, http.StatusUnauthorized, "algorithm_not_allowed"},
		{"HS256", "HS256", nil, http.StatusUnauthorized, "algorithm_not_allowed"},
		{"required amr missing", "", func(c map[string]any) { c["amr"] = []string{"pwd"} }, http.StatusForbidden, "(amr)"},
		{"unknown operator", "", func(c map[string]any) { c["preferred_username"] = "mallory" }, http.StatusForbidden, "no enabled operator account matches this identity"},
		{"disabled operator", "", func(c map[string]any) { c["preferred_username"] = "bob" }, http.StatusForbidden, "no enabled operator account matches this identity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.setTweak(tc.tweak)
			a.idp.SetAlg(cmp.Or(tc.alg, "RS256"))
			t.Cleanup(func() { a.setTweak(nil); a.idp.SetAlg("RS256") })
			resp, out := a.callback(t, a.begin(t))
			if resp.StatusCode != tc.status || !strings.Contains(fmt.Sprint(out["error"]), tc.msg) || out["token"] != nil {
				t.Errorf("callback: %d %v, want %d mentioning %q and no token", resp.StatusCode, out, tc.status, tc.msg)
			}
		})
	}

	t.Run("replayed state", func(t *testing.T) {
		cb := a.begin(t)
		if resp, out := a.callback(t, cb); resp.StatusCode != http.StatusOK {
			t.Fatalf("first use: %d %v", resp.StatusCode, out)
		}
		resp, out := a.callback(t, cb)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["error"]), "already used") {
			t.Errorf("replayed callback: %d %v, want 400 already used", resp.StatusCode, out)
		}
	})
	t.Run("callback in another browser", func(t *testing.T) {
		// Someone starts a login and hands the callback URL to an operator: refused, and the
		// browser that started it can still finish.
		cb := a.begin(t)
		resp, out := a.callbackFrom(t, http.DefaultClient, cb)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["error"]), "not started in this browser") || out["token"] != nil {
			t.Errorf("callback without the login's cookie: %d %v, want 400 and no token", resp.StatusCode, out)
		}
		if resp, out := a.callback(t, cb); resp.StatusCode != http.StatusOK || out["token"] == nil {
			t.Errorf("the starting browser after a foreign attempt: %d %v, want 200 with a token", resp.StatusCode, out)
		}
	})
	t.Run("PKCE verifier checked by the provider", func(t *testing.T) {
		cb := a.begin(t)
		a.idp.CorruptChallenges()
		resp, out := a.callback(t, cb)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(fmt.Sprint(out["error"]), "invalid_grant") {
			t.Errorf("callback after the challenge changed: %d %v, want 401 invalid_grant", resp.StatusCode, out)
		}
	})
	t.Run("provider error not reflected", func(t *testing.T) {
		cb := a.begin(t)
		cb.Del("code")
		cb.Set("error", "access_denied<script>alert(1)</script>")
		cb.Set("error_description", "<h1>phishing text</h1>")
		resp, out := a.callback(t, cb)
		msg := fmt.Sprint(out["error"])
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(msg, "access_denied") || strings.ContainsAny(msg, "<>") || strings.Contains(msg, "phishing") {
			t.Errorf("error callback: %d %q, want 400 naming access_denied with nothing reflected", resp.StatusCode, msg)
		}
	})

	// Nothing secret in the gateway's log; the refusals are there with their reasons.
	logged := a.log.String()
	for _, secret := range []string{token, oidcClientSecret, first.Get("code"), first.Get("state"), ex[0].Verifier} {
		if strings.Contains(logged, secret) {
			t.Errorf("the gateway's log holds %q", secret)
		}
	}
	for _, want := range []string{"operator logged in with OIDC", "reason=wrong_nonce", "reason=unknown_operator", "reason=disabled", "reason=login_state"} {
		if !strings.Contains(logged, want) {
			t.Errorf("the gateway's log lacks %q", want)
		}
	}

	// The audit log has the successes as admin records and the refusals with their reasons.
	st := openStore(t, a.auditDB)
	var got []string
	_ = st.Scan(context.Background(), 0, func(r *store.Record) error {
		if rec, err := audit.ParseRecord(r.Data); err == nil && bytes.Contains(rec.Detail, []byte("operator_login")) {
			got = append(got, fmt.Sprintf("%s:%s:%s", rec.Kind, rec.Principal, strings.Join(rec.Reasons, ",")))
		}
		return nil
	})
	want := "admin:alice:,auth_failure::wrong_nonce,auth_failure::wrong_audience,auth_failure::expired,auth_failure::algorithm_not_allowed,auth_failure::algorithm_not_allowed," +
		"auth_failure::amr_missing,auth_failure:mallory:unknown_operator,auth_failure:bob:disabled,admin:alice:,auth_failure::login_state,auth_failure::login_browser,admin:alice:,auth_failure::code_exchange_failed,auth_failure::idp_refused"
	if strings.Join(got, ",") != want {
		t.Errorf("audit records:\n%s\nwant\n%s", strings.Join(got, ","), want)
	}
	if b, _ := os.ReadFile(a.auditDB); bytes.Contains(b, []byte(token)) {
		t.Error("the audit database holds the session token")
	}
}

// TestOperatorOIDCLoginBoundsPendingLogins: logins started and never finished are bounded; past
// the bound a new one gets 503 with a clear message.
func TestOperatorOIDCLoginBoundsPendingLogins(t *testing.T) {
	a := newOIDCAdmin(t)
	for i := range authn.DefaultMaxPendingLogins {
		resp, err := noRedirects.Get(a.admin.URL + "/v1/login/oidc")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("login %d: status %d", i, resp.StatusCode)
		}
	}
	resp, err := noRedirects.Get(a.admin.URL + "/v1/login/oidc")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "too many OIDC logins") || resp.Header.Get("Retry-After") == "" {
		t.Errorf("login past the bound: %d %s (Retry-After %q), want 503 too many OIDC logins", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
}
