package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
)

// operatorLogin plays an operator's browser through mcpguard's OpenID Connect login, one hop at
// a time: the admin API redirects to the IdP's authorization endpoint with PKCE S256, state and
// nonce; the IdP redirects back to the admin API's callback with a code; the callback answers a
// session token, which the admin API then accepts. A replayed callback is refused.
func operatorLogin(ctx context.Context, o options) error {
	// A browser keeps cookies: the admin API binds the login to the browser that started it.
	jar, err := cookiejar.New(nil)
	if err != nil {
		return err
	}
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	hop := func(target string) (*http.Response, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return nil, nil, err
		}
		resp, err := browser.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		return resp, body, err
	}

	// 1. The admin API sends the browser to the IdP.
	resp, body, err := hop(o.adminURL + "/v1/login/oidc")
	if err != nil {
		return err
	}
	authURL, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(authURL.String(), o.issuer+"/") {
		return fmt.Errorf("GET /v1/login/oidc: %d to %q (%s), want 302 to the IdP %s", resp.StatusCode, resp.Header.Get("Location"), clip(string(body), 200), o.issuer)
	}
	q := authURL.Query()
	for name, want := range map[string]string{"response_type": "code", "code_challenge_method": "S256", "client_id": o.operatorClient} {
		if q.Get(name) != want {
			return fmt.Errorf("the authorization request has %s=%q, want %q", name, q.Get(name), want)
		}
	}
	for _, name := range []string{"state", "nonce", "code_challenge", "redirect_uri"} {
		if q.Get(name) == "" {
			return fmt.Errorf("the authorization request has no %s", name)
		}
	}
	okf("GET /v1/login/oidc: 302 to %s%s with PKCE S256, state, nonce, scope %q", authURL.Host, authURL.Path, q.Get("scope"))

	// 2. The IdP approves and sends the browser back to the admin API.
	resp, body, err = hop(authURL.String())
	if err != nil {
		return err
	}
	back, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || back.Query().Get("code") == "" {
		return fmt.Errorf("the IdP's authorization endpoint: %d to %q (%s), want 302 with a code", resp.StatusCode, resp.Header.Get("Location"), clip(string(body), 200))
	}
	if !strings.HasPrefix(back.String(), o.adminURL+"/v1/login/oidc/callback?") || back.Query().Get("state") != q.Get("state") {
		return fmt.Errorf("the IdP redirected to %s%s, want the admin API's callback with the same state", back.Host, back.Path)
	}
	okf("the IdP redirected back to %s%s with a code and the state", back.Host, back.Path)

	// 3. The same callback in another browser (no cookie from step 1) is refused and leaves the
	// login pending; in the browser that started it, it exchanges the code and answers a session.
	stranger, err := http.NewRequestWithContext(ctx, http.MethodGet, back.String(), nil)
	if err != nil {
		return err
	}
	sresp, err := (&http.Client{CheckRedirect: browser.CheckRedirect}).Do(stranger)
	if err != nil {
		return err
	}
	sbody, _ := io.ReadAll(io.LimitReader(sresp.Body, maxBody))
	sresp.Body.Close()
	if sresp.StatusCode != http.StatusBadRequest || !strings.Contains(string(sbody), "not started in this browser") {
		return fmt.Errorf("the callback from another browser: %d %s, want 400 not started in this browser", sresp.StatusCode, clip(string(sbody), 200))
	}
	okf("the callback from another browser (no login cookie): 400 %s", clip(string(sbody), 120))
	resp, body, err = hop(back.String())
	if err != nil {
		return err
	}
	var session struct {
		Token    string   `json:"token"`
		Operator string   `json:"operator"`
		Roles    []string `json:"roles"`
		Expires  string   `json:"expires"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &session) != nil || !strings.HasPrefix(session.Token, "mcps_") {
		return fmt.Errorf("the callback: %d %s, want 200 with a session token", resp.StatusCode, clip(string(body), 300))
	}
	if session.Operator != o.operator {
		return fmt.Errorf("the callback logged in %q, want %q", session.Operator, o.operator)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		return fmt.Errorf("the callback's Cache-Control is %q, want no-store", cc)
	}
	okf("callback: 200, operator %s, roles %q, session until %s (Cache-Control: no-store)", session.Operator, session.Roles, session.Expires)

	// 4. The admin API accepts the session; without it, it refuses.
	for _, tc := range []struct {
		auth string
		want int
	}{{"Bearer " + session.Token, http.StatusOK}, {"", http.StatusUnauthorized}} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.adminURL+"/v1/approvals", nil)
		if err != nil {
			return err
		}
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			return fmt.Errorf("GET /v1/approvals (session: %t): %d %s, want %d", tc.auth != "", resp.StatusCode, clip(string(b), 200), tc.want)
		}
	}
	okf("GET /v1/approvals with the session token: 200; without it: 401")

	// 5. The same callback again: its state was used.
	resp, body, err = hop(back.String())
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "already used") {
		return fmt.Errorf("the replayed callback: %d %s, want 400 already used", resp.StatusCode, clip(string(body), 200))
	}
	okf("the replayed callback: 400 %s", strings.TrimSpace(string(body)))
	return nil
}
