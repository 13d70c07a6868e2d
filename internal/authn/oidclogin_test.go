package authn

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpguard/mcpguard/internal/authn/oidctest"
)

const testRedirect = "http://127.0.0.1:8081/v1/login/oidc/callback"

type oidcFixture struct {
	idp   *oidctest.Provider
	login *OIDCLogin
	ops   *Operators
	clk   *fakeClock
}

// newOIDCFixture starts a provider and an OIDC login for operators alice (admin, enabled) and
// bob (disabled). The login's clock starts at the real time, which the provider uses.
func newOIDCFixture(t *testing.T, idpOpts *oidctest.Options, cfg OIDCLoginConfig, opts *OIDCLoginOptions) *oidcFixture {
	t.Helper()
	ctx := context.Background()
	f := &oidcFixture{clk: &fakeClock{t: time.Now()}}
	if idpOpts == nil {
		idpOpts = &oidctest.Options{ClientSecret: "s3cret value"}
	}
	f.idp = oidctest.New(t, idpOpts)
	store := NewMemoryStore()
	ops, err := NewOperators(ctx, store, store, &OperatorsOptions{
		Hasher: NewPasswordHasher(&PasswordHasherOptions{Params: cheapArgon2}), Now: f.clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"alice", "bob"} {
		if err := ops.Create(ctx, name, goodPassword, []string{"admin", "approver"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ops.Disable(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	f.ops = ops
	cfg.Issuer, cfg.ClientID, cfg.RedirectURL = f.idp.Issuer, f.idp.ClientID(), testRedirect
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = idpOpts.ClientSecret
	}
	if opts == nil {
		opts = &OIDCLoginOptions{}
	}
	opts.Now = f.clk.Now
	f.login, err = NewOIDCLogin(cfg, ops, opts)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// callback starts a login and lets the provider approve it.
func (f *oidcFixture) callback(t *testing.T) url.Values {
	t.Helper()
	authURL, _, err := f.login.BeginLogin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return f.idp.Authorize(t, authURL)
}

func TestOIDCLoginOpensAnOperatorSession(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secret string
	}{
		{"confidential client", "s3cret value"},
		{"public client", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newOIDCFixture(t, &oidctest.Options{ClientSecret: tc.secret}, OIDCLoginConfig{}, nil)
			ctx := context.Background()
			authURL, _, err := f.login.BeginLogin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(authURL)
			q := u.Query()
			for name, want := range map[string]string{
				"response_type": "code", "client_id": f.idp.ClientID(), "redirect_uri": testRedirect,
				"scope": "openid", "code_challenge_method": "S256",
			} {
				if got := q.Get(name); got != want {
					t.Errorf("authorization request %s = %q, want %q", name, got, want)
				}
			}
			for _, name := range []string{"state", "nonce", "code_challenge"} {
				if len(q.Get(name)) < 43 { // 256 random bits, base64url
					t.Errorf("authorization request %s = %q: want 43 base64url characters", name, q.Get(name))
				}
			}
			token, p, who, err := f.login.FinishLogin(ctx, f.idp.Authorize(t, authURL))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(token.Reveal(), SessionPrefix) {
				t.Fatalf("token %q is not a session token", token.Reveal())
			}
			want := OIDCIdentity{Subject: "user-alice", Operator: "alice", MFA: true}
			if diff := cmp.Diff(want, who); diff != "" {
				t.Errorf("identity (-want +got):\n%s", diff)
			}
			if p.Subject != "alice" || p.Method != MethodOperator || !p.HasRole("approver") {
				t.Errorf("principal = %+v, want operator alice with her roles", p)
			}
			if got, err := f.ops.Sessions().Authenticate(ctx, token.Reveal()); err != nil || got.Subject != "alice" {
				t.Errorf("the session does not authenticate: %+v, %v", got, err)
			}
			ex := f.idp.Exchanges()
			if len(ex) != 1 || ex[0].Verifier == "" {
				t.Fatalf("exchanges = %+v, want one with a code_verifier", ex)
			}
			if confidential := tc.secret != ""; ex[0].BasicAuth != confidential || (ex[0].FormClient != "") == confidential {
				t.Errorf("exchange = %+v: a confidential client uses Basic only, a public one client_id only", ex[0])
			}
		})
	}
}

// TestOIDCLoginMFAFromAMR: an OIDC session may approve held calls (Principal.MFA) only when the
// ID token's amr shows multi-factor authentication; the flag survives in the stored session.
func TestOIDCLoginMFAFromAMR(t *testing.T) {
	for _, tc := range []struct {
		name string
		amr  any // nil: no amr claim
		mfa  bool
	}{
		{"mfa", []string{"mfa"}, true},
		{"password and one-time code", []string{"pwd", "otp"}, true},
		{"security key and fingerprint", []string{"hwk", "fpt"}, true},
		{"password only", []string{"pwd"}, false},
		{"two things known", []string{"pwd", "kba"}, false},
		{"one-time code only", []string{"otp"}, false},
		{"no amr", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newOIDCFixture(t, &oidctest.Options{ClientSecret: "s3cret value", Claims: func(c map[string]any) {
				if tc.amr == nil {
					delete(c, "amr")
				} else {
					c["amr"] = tc.amr
				}
			}}, OIDCLoginConfig{}, nil)
			ctx := context.Background()
			token, p, who, err := f.login.FinishLogin(ctx, f.callback(t))
			if err != nil {
				t.Fatal(err)
			}
			if p.MFA != tc.mfa || who.MFA != tc.mfa {
				t.Errorf("login principal MFA %v, identity MFA %v, want %v", p.MFA, who.MFA, tc.mfa)
			}
			if got, err := f.ops.Sessions().Authenticate(ctx, token.Reveal()); err != nil || got.MFA != tc.mfa {
				t.Errorf("the session authenticates as %+v (%v), want MFA %v", got, err, tc.mfa)
			}
		})
	}
}

func TestOIDCLoginStateIsSingleUseAndExpires(t *testing.T) {
	ctx := context.Background()
	f := newOIDCFixture(t, nil, OIDCLoginConfig{}, nil)
	cb := f.callback(t)
	if _, _, _, err := f.login.FinishLogin(ctx, cb); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := f.login.FinishLogin(ctx, cb); ReasonOf(err) != ReasonLoginState {
		t.Errorf("replayed callback: %v, want %s", err, ReasonLoginState)
	}
	forged := url.Values{"state": {"forged"}, "code": {cb.Get("code")}}
	if _, _, _, err := f.login.FinishLogin(ctx, forged); ReasonOf(err) != ReasonLoginState {
		t.Errorf("unknown state: %v, want %s", err, ReasonLoginState)
	}
	cb = f.callback(t)
	f.clk.Advance(DefaultPendingLoginTTL)
	if _, _, _, err := f.login.FinishLogin(ctx, cb); ReasonOf(err) != ReasonLoginExpired {
		t.Errorf("callback after %v: %v, want %s", DefaultPendingLoginTTL, err, ReasonLoginExpired)
	}
	if n := len(f.idp.Exchanges()); n != 1 {
		t.Errorf("the provider saw %d code exchanges, want 1: refused states must not reach it", n)
	}
}

func TestOIDCLoginRefusesBadIDTokens(t *testing.T) {
	for _, tc := range []struct {
		name   string
		alg    string
		claims func(c map[string]any)
		want   Reason
	}{
		{"wrong nonce", "", func(c map[string]any) { c["nonce"] = "another login's nonce" }, ReasonNonce},
		{"no nonce", "", func(c map[string]any) { delete(c, "nonce") }, ReasonNonce},
		{"wrong audience", "", func(c map[string]any) { c["aud"] = "another-client" }, ReasonAudience},
		{"several audiences without azp", "", func(c map[string]any) { c["aud"] = []string{"mcpguard-admin", "other"} }, ReasonAudience},
		{"azp of another client", "", func(c map[string]any) { c["azp"] = "other" }, ReasonAudience},
		{"wrong issuer", "", func(c map[string]any) { c["iss"] = "https://evil.example.com" }, ReasonIssuer},
		{"expired", "", func(c map[string]any) { c["exp"] = time.Now().Add(-2 * time.Minute).Unix() }, ReasonExpired},
		{"issued before the login began", "", func(c map[string]any) { c["iat"] = time.Now().Add(-time.Hour).Unix() }, ReasonClaims},
		{"issued in the future", "", func(c map[string]any) { c["iat"] = time.Now().Add(time.Hour).Unix() }, ReasonIssuedInFuture},
		{"no iat", "", func(c map[string]any) { delete(c, "iat") }, ReasonClaims},
		{"no sub", "", func(c map[string]any) { delete(c, "sub") }, ReasonClaims},
		{"no operator claim", "", func(c map[string]any) { delete(c, "preferred_username") }, ReasonClaims},
		{"required amr missing", "", func(c map[string]any) { c["amr"] = []string{"pwd"} }, ReasonAMR},
		{"no amr", "", func(c map[string]any) { delete(c, "amr") }, ReasonAMR},
		{"alg none", "none", nil, ReasonAlgorithm},
		{"HS256", "HS256", nil, ReasonAlgorithm},
		{"unknown operator", "", func(c map[string]any) { c["preferred_username"] = "mallory" }, ReasonUnknownOperator},
		{"disabled operator", "", func(c map[string]any) { c["preferred_username"] = "bob" }, ReasonDisabled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newOIDCFixture(t, &oidctest.Options{ClientSecret: "s3cret value", Alg: tc.alg, Claims: tc.claims},
				OIDCLoginConfig{RequiredAMR: []string{"mfa"}}, nil)
			token, p, _, err := f.login.FinishLogin(context.Background(), f.callback(t))
			if ReasonOf(err) != tc.want {
				t.Fatalf("FinishLogin = %v, want %s", err, tc.want)
			}
			if token.Reveal() != "" || p != nil {
				t.Errorf("a refused login returned a session (%v)", p)
			}
		})
	}
}

func TestOIDCLoginAcceptsES256AndNestedClaims(t *testing.T) {
	f := newOIDCFixture(t, &oidctest.Options{ClientSecret: "x", Alg: "ES256", Claims: func(c map[string]any) {
		c["ext"] = map[string]any{"operator": "Alice"} // lower-cased: account names are lower-case
		c["aud"] = []string{"mcpguard-admin", "other"}
		c["azp"] = "mcpguard-admin"
	}}, OIDCLoginConfig{OperatorClaim: "ext.operator"}, nil)
	_, p, _, err := f.login.FinishLogin(context.Background(), f.callback(t))
	if err != nil || p.Subject != "alice" {
		t.Fatalf("FinishLogin = %v, %v; want alice", p, err)
	}
}

func TestOIDCLoginReportsProviderRefusals(t *testing.T) {
	ctx := context.Background()
	f := newOIDCFixture(t, nil, OIDCLoginConfig{}, nil)

	cb := f.callback(t)
	cb.Del("code")
	cb.Set("error", `access_denied<script>"`)
	cb.Set("error_description", "the user said no")
	_, _, _, err := f.login.FinishLogin(ctx, cb)
	var idpErr *IdPError
	if ReasonOf(err) != ReasonIdPRefused || !errors.As(err, &idpErr) || idpErr.Code != "access_deniedscript" {
		t.Errorf("error=access_denied: %v (%+v), want %s with the code cleaned", err, idpErr, ReasonIdPRefused)
	}

	cb = f.callback(t)
	f.idp.CorruptChallenges() // the verifier the gateway sends no longer matches: PKCE is checked
	_, _, _, err = f.login.FinishLogin(ctx, cb)
	if ReasonOf(err) != ReasonCodeExchange || !errors.As(err, &idpErr) || idpErr.Code != "invalid_grant" {
		t.Errorf("wrong verifier: %v, want %s invalid_grant", err, ReasonCodeExchange)
	}

	cb = f.callback(t)
	cb.Del("code")
	if _, _, _, err := f.login.FinishLogin(ctx, cb); ReasonOf(err) != ReasonCallback {
		t.Errorf("no code: %v, want %s", err, ReasonCallback)
	}
}

func TestOIDCLoginBoundsPendingLogins(t *testing.T) {
	ctx := context.Background()
	f := newOIDCFixture(t, nil, OIDCLoginConfig{}, &OIDCLoginOptions{MaxPending: 3})
	for range 3 {
		if _, _, err := f.login.BeginLogin(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := f.login.BeginLogin(ctx); !errors.Is(err, ErrTooManyLogins) {
		t.Fatalf("fourth pending login: %v, want ErrTooManyLogins", err)
	}
	f.clk.Advance(DefaultPendingLoginTTL)
	if _, _, err := f.login.BeginLogin(ctx); err != nil {
		t.Errorf("after the pending logins expired: %v", err)
	}
}

func TestOIDCLoginConfigProblems(t *testing.T) {
	_, err := NewOIDCLogin(OIDCLoginConfig{Issuer: "http://idp.example.com", RedirectURL: "/v1/login/oidc/callback"}, nil,
		&OIDCLoginOptions{Algorithms: []string{"HS256"}})
	for _, want := range []string{"is not https", "client id is required", "redirect url", `algorithm "HS256"`, "operators are required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
}

func TestOIDCLoginUnreachableProvider(t *testing.T) {
	ops, err := NewOperators(context.Background(), NewMemoryStore(), NewMemoryStore(), &OperatorsOptions{
		Hasher: NewPasswordHasher(&PasswordHasherOptions{Params: cheapArgon2})})
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewOIDCLogin(OIDCLoginConfig{Issuer: "http://127.0.0.1:1", ClientID: "c", RedirectURL: testRedirect}, ops, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.BeginLogin(context.Background()); ReasonOf(err) != ReasonIdPUnavailable {
		t.Errorf("BeginLogin with the provider down: %v, want %s", err, ReasonIdPUnavailable)
	}
}

func FuzzParseTokenResponse(f *testing.F) {
	f.Add(200, []byte(`{"access_token":"a","token_type":"Bearer","id_token":"x.y.z"}`))
	f.Add(400, []byte(`{"error":"invalid_grant","error_description":"<b>no</b>"}`))
	f.Add(200, []byte(`{"id_token":"a","id_token":"b"}`))
	f.Add(502, []byte(`<html>bad gateway</html>`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		tok, err := idToken(status, body)
		if err != nil && ReasonOf(err) == "" {
			t.Fatalf("refusal without a reason: %v", err)
		}
		if err == nil && (status != 200 || tok == "") {
			t.Fatalf("HTTP %d %q accepted as id_token %q", status, body, tok)
		}
		var idpErr *IdPError
		if errors.As(err, &idpErr) && strings.ContainsAny(idpErr.Code, "<>\"\\&\n") {
			t.Fatalf("error code %q not cleaned", idpErr.Code)
		}
	})
}

func TestIDTokenOfTokenResponse(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   Reason // "" when the id_token is read
	}{
		{"id_token", 200, `{"access_token":"a","token_type":"Bearer","id_token":"x.y.z"}`, ""},
		{"no id_token", 200, `{"access_token":"a","token_type":"Bearer"}`, ReasonCodeExchange},
		{"duplicate id_token", 200, `{"id_token":"a","id_token":"b"}`, ReasonCodeExchange},
		{"error with 200", 200, `{"id_token":"x.y.z","error":"invalid_grant"}`, ReasonCodeExchange},
		{"refusal", 400, `{"error":"invalid_grant"}`, ReasonCodeExchange},
		{"plain 4xx", 403, `forbidden`, ReasonCodeExchange},
		{"provider down", 503, `<html>`, ReasonIdPUnavailable},
		{"not JSON", 200, `<html>`, ReasonCodeExchange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := idToken(tt.status, []byte(tt.body))
			if got := ReasonOf(err); got != tt.want || (tt.want == "" && tok != "x.y.z") {
				t.Errorf("= %q, %v; want reason %q", tok, err, tt.want)
			}
		})
	}
}
