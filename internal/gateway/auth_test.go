package gateway

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/keystore"
)

// testIssuer is an authorization server's key and JWKS endpoint on loopback.
type testIssuer struct {
	key  *rsa.PrivateKey
	jwks *httptest.Server
}

func newTestIssuer(t *testing.T) *testIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwk := map[string]any{"keys": []any{map[string]any{
		"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
		"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
	}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(jwk)
	}))
	t.Cleanup(srv.Close)
	return &testIssuer{key: key, jwks: srv}
}

func (i *testIssuer) token(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(i.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBearerAuthentication: with auth configured, a request without a token gets 401 with the
// metadata link, the metadata names the issuer, a token for this gateway is accepted, and a
// token for another audience is not — and the upstream sees none of the refused requests.
func TestBearerAuthentication(t *testing.T) {
	iss := newTestIssuer(t)
	const resource = "http://127.0.0.1/mcp"
	const issuer = "https://idp.example.com/realms/bank"
	tg := newTestGateway(t, fmt.Sprintf(`auth:
  resource: %q
  issuer: %q
  jwks_url: %q
`, resource, issuer, iss.jwks.URL))
	base := strings.TrimSuffix(tg.url, "/mcp")
	initBody := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

	// No token: 401 naming the metadata.
	req, _ := http.NewRequest(http.MethodPost, tg.url, strings.NewReader(initBody))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	challenge := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(challenge, `resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource/mcp"`) {
		t.Fatalf("no token: status %d, WWW-Authenticate %q; want 401 with the metadata link", resp.StatusCode, challenge)
	}
	// A client follows the link (here: the same path on this listener) and discovers the issuer.
	resp, err = http.Get(base + "/.well-known/oauth-protected-resource/mcp")
	if err != nil {
		t.Fatal(err)
	}
	meta, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(meta), issuer) || !strings.Contains(string(meta), resource) {
		t.Fatalf("metadata: status %d, %s", resp.StatusCode, meta)
	}

	now := time.Now()
	good := iss.token(t, jwt.MapClaims{"iss": issuer, "aud": resource, "sub": "agent-7", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "roles": []string{"MarketAnalystAI"}})
	status, h, msg := post(t, tg.url, map[string]string{"Authorization": "Bearer " + good}, initBody)
	if status != http.StatusOK || msg["result"] == nil {
		t.Fatalf("valid token: status %d, %v", status, msg)
	}
	sess := map[string]string{"Authorization": "Bearer " + good, "Mcp-Session-Id": h.Get("Mcp-Session-Id"), "MCP-Protocol-Version": "2025-11-25"}
	if status, _, msg := post(t, tg.url, sess, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"authorized"}}}`); status != http.StatusOK || !strings.Contains(fmt.Sprint(msg), "echo: authorized") {
		t.Fatalf("call with a valid token: status %d, %v", status, msg)
	}

	refused := []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"other audience", map[string]string{"Authorization": "Bearer " + iss.token(t, jwt.MapClaims{"iss": issuer, "aud": "https://other.example.com/mcp", "sub": "x", "exp": now.Add(time.Hour).Unix()})}, 401},
		{"expired", map[string]string{"Authorization": "Bearer " + iss.token(t, jwt.MapClaims{"iss": issuer, "aud": resource, "sub": "x", "exp": now.Add(-time.Hour).Unix()})}, 401},
		{"garbage", map[string]string{"Authorization": "Bearer not.a.jwt"}, 401},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{"Mcp-Session-Id": sess["Mcp-Session-Id"], "MCP-Protocol-Version": "2025-11-25"}
			for k, v := range tt.header {
				hdr[k] = v
			}
			status, _, _ := post(t, tg.url, hdr, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"REFUSED-`+tt.name+`"}}}`)
			if status != tt.want {
				t.Errorf("status %d, want %d", status, tt.want)
			}
		})
	}
	req, _ = http.NewRequest(http.MethodPost, tg.url+"?access_token="+good, strings.NewReader(initBody))
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("token in the query string: status %d, want 400", resp.StatusCode)
	}
	rec := readRecord(t, tg.record)
	if strings.Contains(rec, "REFUSED") || strings.Contains(rec, good) || strings.Contains(rec, "Bearer") {
		t.Errorf("the upstream saw a refused request or a client credential:\n%s", rec)
	}
}

// TestAPIKeys: a key created out of band (as `mcpguard keys create` does) works, and the very
// next request after its revocation gets 401.
func TestAPIKeys(t *testing.T) {
	db := filepath.Join(t.TempDir(), "keys.db")
	tg := newTestGateway(t, fmt.Sprintf("api_keys_database: %q\n", db))
	ctx := context.Background()
	st, err := keystore.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys := authn.NewAPIKeys(st, nil)
	secret, rec, err := keys.Create(ctx, "pricing-agent", []string{"MarketAnalystAI"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bearer := map[string]string{"Authorization": "Bearer " + secret.Reveal()}
	initBody := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	if st, _, _ := post(t, tg.url, nil, initBody); st != http.StatusUnauthorized {
		t.Fatalf("no key: status %d, want 401", st)
	}
	st2, h, msg := post(t, tg.url, bearer, initBody)
	if st2 != http.StatusOK {
		t.Fatalf("with the key: status %d %v", st2, msg)
	}
	sess := map[string]string{"Authorization": bearer["Authorization"], "Mcp-Session-Id": h.Get("Mcp-Session-Id"), "MCP-Protocol-Version": "2025-11-25"}
	call := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"keyed"}}}`
	if st, _, msg := post(t, tg.url, sess, call); st != http.StatusOK || !strings.Contains(fmt.Sprint(msg), "echo: keyed") {
		t.Fatalf("call with the key: %d %v", st, msg)
	}
	if err := keys.Revoke(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := post(t, tg.url, sess, call); st != http.StatusUnauthorized {
		t.Errorf("the request right after revocation: status %d, want 401", st)
	}
}
