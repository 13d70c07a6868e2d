package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/keystore"
)

const authInitBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

// authFailures returns the auth_failure records in the audit database at db.
func authFailures(t *testing.T, db string) []*audit.Record {
	t.Helper()
	return recordsOf(t, db, audit.KindAuthFailure)
}

// TestTokenLifetimeIsBounded: a validly signed token that lives longer than
// auth.max_token_lifetime — one that expires in 2100 above all — gets 401 invalid_token saying
// why, and an auth_failure record with reason lifetime_too_long; the upstream never sees it.
func TestTokenLifetimeIsBounded(t *testing.T) {
	iss := newTestIssuer(t)
	const resource = "http://127.0.0.1/mcp"
	const issuer = "https://idp.example.com/realms/bank"
	section, db, _ := auditConfig(t)
	tg := newTestGateway(t, fmt.Sprintf(`auth:
  resource: %q
  issuer: %q
  jwks_url: %q
  max_token_lifetime: 2h
%s`, resource, issuer, iss.jwks.URL, section))

	now := time.Now()
	claims := func(life time.Duration, withIat bool) jwt.MapClaims {
		c := jwt.MapClaims{"iss": issuer, "aud": resource, "sub": "agent-7", "exp": now.Add(life).Unix()}
		if withIat {
			c["iat"] = now.Unix()
		}
		return c
	}
	if status, _, msg := post(t, tg.url, map[string]string{"Authorization": "Bearer " + iss.token(t, claims(time.Hour, true))}, authInitBody); status != http.StatusOK {
		t.Fatalf("a token living 1h: status %d %v, want 200", status, msg)
	}
	const wantChallenge = `Bearer error="invalid_token", error_description="the access token's lifetime is longer than this resource accepts", resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource/mcp"`
	for _, tt := range []struct {
		name  string
		token string
	}{
		// 3h passes the 24h default: refusing it shows the configured value is the one in force.
		{"3h, configured maximum 2h", iss.token(t, claims(3*time.Hour, true))},
		{"expires in 2100", iss.token(t, claims(time.Until(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)), true))},
		{"expires in 2100, no iat", iss.token(t, claims(time.Until(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)), false))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, tg.url, strings.NewReader(authInitBody))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Authorization", "Bearer "+tt.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || got != wantChallenge {
				t.Errorf("status %d, WWW-Authenticate %q; want 401 with %q", resp.StatusCode, got, wantChallenge)
			}
			if want := `{"error":"invalid_token","error_description":"the access token's lifetime is longer than this resource accepts"}`; string(body) != want {
				t.Errorf("body %s, want %s", body, want)
			}
		})
	}
	recs := authFailures(t, db)
	if len(recs) != 3 {
		t.Fatalf("%d auth_failure records, want 3", len(recs))
	}
	for _, rec := range recs {
		if strings.Join(rec.Reasons, ",") != string(authn.ReasonLifetime) || rec.Outcome == nil || rec.Outcome.ErrorCode != http.StatusUnauthorized {
			t.Errorf("auth_failure record: reasons %v, outcome %+v; want [%s] with 401", rec.Reasons, rec.Outcome, authn.ReasonLifetime)
		}
	}
}

// TestChallengeWithoutAuthNamesNoMetadata: with API keys only (no auth: section) no Protected
// Resource Metadata is served, so the 401 names none — before, it named
// https://127.0.0.1:0/.well-known/…, the configured listen address on a plain-HTTP listener, a
// link no client could follow.
func TestChallengeWithoutAuthNamesNoMetadata(t *testing.T) {
	db := filepath.Join(t.TempDir(), "keys.db")
	tg := newTestGateway(t, fmt.Sprintf("api_keys_database: %q\n", db))
	base := strings.TrimSuffix(tg.url, "/mcp")
	for _, tt := range []struct {
		name   string
		header map[string]string
		want   string
	}{
		{"no credential", nil, `Bearer`},
		{"unknown API key", map[string]string{"Authorization": "Bearer mcpg_0123456789abcdef_" + strings.Repeat("A", 43)},
			`Bearer error="invalid_token", error_description="the access token is invalid"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, tg.url, strings.NewReader(authInitBody))
			req.Header.Set("Content-Type", "application/json")
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || got != tt.want {
				t.Errorf("status %d, WWW-Authenticate %q; want 401 with %q", resp.StatusCode, got, tt.want)
			}
		})
	}
	// The reason for naming none: there is no document to name.
	for _, p := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("GET %s: 200; the test assumes no metadata is served without auth:", p)
		}
	}
}

// TestAPIKeyAuthFailureNamesKey: the auth_failure record of a refused API key — unknown,
// wrong secret, revoked, expired — names the key's public id, so an operator can see which key
// is being tried; the secret appears nowhere in the audit database, and a credential that is not
// of the key form names no key.
func TestAPIKeyAuthFailureNamesKey(t *testing.T) {
	keysDB := filepath.Join(t.TempDir(), "keys.db")
	section, db, _ := auditConfig(t)
	tg := newTestGateway(t, fmt.Sprintf("api_keys_database: %q\n%s", keysDB, section))
	ctx := context.Background()
	st, err := keystore.Open(ctx, keysDB)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys := authn.NewAPIKeys(st, nil)
	live, liveRec, err := keys.Create(ctx, "pricing-agent", []string{"MarketAnalystAI"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	revoked, revokedRec, err := keys.Create(ctx, "old-agent", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Revoke(ctx, revokedRec.ID); err != nil {
		t.Fatal(err)
	}
	expiring, expiringRec, err := keys.Create(ctx, "brief-agent", nil, time.Nanosecond)
	if err != nil {
		t.Fatal(err)
	}
	secretOf := func(k authn.Secret) string { s := k.Reveal(); return s[len(s)-43:] } // mcpg_<16 hex id>_<43 characters>
	wrong := "mcpg_" + liveRec.ID + "_" + strings.Repeat("A", 43)
	unknown := "mcpg_00000000deadbeef_" + secretOf(live)

	tests := []struct {
		name, token, reason, keyID string
	}{
		{"unknown key", unknown, string(authn.ReasonUnknownAPIKey), "00000000deadbeef"},
		{"wrong secret", wrong, string(authn.ReasonUnknownAPIKey), liveRec.ID},
		{"revoked", revoked.Reveal(), string(authn.ReasonRevoked), revokedRec.ID},
		{"expired", expiring.Reveal(), string(authn.ReasonExpired), expiringRec.ID},
		{"not of the key form", "mcpg_nothex_" + strings.Repeat("A", 43), string(authn.ReasonMalformed), ""},
	}
	for _, tt := range tests {
		if status, _, _ := post(t, tg.url, map[string]string{"Authorization": "Bearer " + tt.token}, authInitBody); status != http.StatusUnauthorized {
			t.Fatalf("%s: status %d, want 401", tt.name, status)
		}
	}
	recs := authFailures(t, db)
	if len(recs) != len(tests) {
		t.Fatalf("%d auth_failure records, want %d", len(recs), len(tests))
	}
	for i, tt := range tests {
		rec := recs[i]
		want := ""
		if tt.keyID != "" {
			want = `{"api_key_id":"` + tt.keyID + `"}`
		}
		if got := strings.Join(rec.Reasons, ","); got != tt.reason || string(rec.Detail) != want {
			t.Errorf("%s: reasons %s, detail %s; want %s, detail %s", tt.name, got, rec.Detail, tt.reason, want)
		}
		if tt.keyID != "" && rec.AuthMethod != string(authn.MethodAPIKey) {
			t.Errorf("%s: auth_method %q, want %q", tt.name, rec.AuthMethod, authn.MethodAPIKey)
		}
	}
	raw, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	wal, _ := os.ReadFile(db + "-wal")
	raw = append(raw, wal...)
	for _, s := range []string{secretOf(live), secretOf(revoked), secretOf(expiring)} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("the audit database holds a key's secret %q", s)
		}
	}
}
