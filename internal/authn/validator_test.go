package authn

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestValidateAcceptsTokensForThisGateway(t *testing.T) {
	t.Parallel()
	idp := newIdP(t, "/realms/main")
	clk := newClock()
	v := newTestValidator(t, idp, clk, nil)
	now := clk.Now()
	tests := []struct {
		name   string
		method jwt.SigningMethod
		kid    string
		key    any
	}{
		{"RS256", jwt.SigningMethodRS256, "rsa1", testRSA()},
		{"PS256", jwt.SigningMethodPS256, "rsa1", testRSA()},
		{"ES256", jwt.SigningMethodES256, "ec1", testEC()},
		{"EdDSA", jwt.SigningMethodEdDSA, "ed1", testEd()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Validate(context.Background(), sign(t, tt.method, tt.kid, tt.key, idp.claims(now)))
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			want := &Principal{Method: MethodJWT, Subject: "alice", ClientID: "agent-1", Issuer: idp.issuer,
				Roles: []string{"analyst"}, Scopes: []string{"mcp:tools", "mcp:read"}, Expires: now.Add(time.Hour)}
			if diff := cmp.Diff(want, p, cmpopts.EquateApproxTime(time.Second), cmpopts.IgnoreFields(Principal{}, "Claims")); diff != "" {
				t.Errorf("principal (-want +got):\n%s", diff)
			}
			// The claims are kept as decoded JSON, for the policy.
			if p.Claims["sub"] != "alice" || p.Claims["iss"] != idp.issuer || !cmp.Equal(p.Claims["roles"], []any{"analyst"}) {
				t.Errorf("claims = %v, want the token's claims", p.Claims)
			}
		})
	}
}

// TestValidateRejectsAttacks names every attack the gateway must refuse, and the internal reason
// it is refused for. The client sees the same 401 for all of them (TestMiddlewareContract).
func TestValidateRejectsAttacks(t *testing.T) {
	t.Parallel()
	idp := newIdP(t, "")
	clk := newClock()
	now := clk.Now()

	// A server the attacker controls; no test may cause a request to it.
	var attackerHits atomic.Int64
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attackerHits.Add(1)
		w.Write([]byte(`{"keys":[]}`))
	}))
	defer attacker.Close()

	pubDER, _ := x509.MarshalPKIXPublicKey(&testRSA().PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	withClaims := func(mut func(c jwt.MapClaims)) jwt.MapClaims {
		c := idp.claims(now)
		mut(c)
		return c
	}
	withHeader := func(name string, value any) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, idp.claims(now))
		tok.Header["kid"] = "rsa1"
		tok.Header[name] = value
		s, err := tok.SignedString(testRSA())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := sign(t, jwt.SigningMethodRS256, "rsa1", testRSA(), idp.claims(now))
	parts := strings.Split(good, ".")

	tests := []struct {
		name  string
		token string
		want  Reason
	}{
		{"alg none", rawToken(`{"alg":"none","typ":"JWT"}`, `{"sub":"alice","exp":9999999999}`, nil) + "", ReasonAlgorithm},
		{"alg none with a signature", rawToken(`{"alg":"none"}`, `{"sub":"alice"}`, []byte("x")), ReasonAlgorithm},
		{"HS256 signed with the RSA public key", hs256WithKey(t, idp.claims(now), pubPEM), ReasonAlgorithm},
		{"unknown kid", sign(t, jwt.SigningMethodRS256, "nope", testRSA(), idp.claims(now)), ReasonUnknownKey},
		{"signed by another key under a known kid", sign(t, jwt.SigningMethodRS256, "rsa1", testRSA2(), idp.claims(now)), ReasonSignature},
		{"jku pointing elsewhere", withHeader("jku", attacker.URL+"/jwks"), ReasonForbiddenHeader},
		{"x5u pointing elsewhere", withHeader("x5u", attacker.URL+"/cert.pem"), ReasonForbiddenHeader},
		{"embedded jwk", withHeader("jwk", jwkOf("evil", testRSA2())), ReasonForbiddenHeader},
		{"embedded x5c", withHeader("x5c", []string{"MIIB"}), ReasonForbiddenHeader},
		{"crit header", withHeader("crit", []string{"exp"}), ReasonForbiddenHeader},
		{"expired", sign(t, jwt.SigningMethodRS256, "rsa1", testRSA(), withClaims(func(c jwt.MapClaims) { c["exp"] = now.Add(-2 * time.Minute).Unix() })), ReasonExpired},
		{"nbf in the future", sign(t, jwt.SigningMethodRS256, "rsa1", testRSA(), withClaims(func(c jwt.MapClaims) { c["nbf"] = now.Add(5 * time.Minute).Unix() })), ReasonNotYetValid},
		{"iat in the future", sign(t, jwt.SigningMethodRS256, "rsa1", testRSA(), withClaims(func(c jwt.MapClaims) { c["iat"] = now.Add(5 * time.Minute).Unix() })), ReasonIssuedInFuture},
		{"wrong aud", sign(t, jwt.SigningMethodRS256, "rsa1", testRSA(), withClaims(func(c jwt.MapClaims) { c["aud"] = "https://other.example.com/mcp" })), ReasonAudience},
		{"aud of a prefix of this gateway", sign(t, jwt.SigningMethodRS256, "rsa1", testRSA(), withClaims(func(c jwt.MapClaims) { c["aud"] = "https://gw.example.com" })), ReasonAudience},
		{"no aud", sign(t, jwt.SigningMethodRS256, "rsa1", testRSA(), withClaims(func(c jwt.MapClaims) { delete(c, "aud") })), ReasonAudience},
		{"wrong iss", sign(t, jwt.SigningMethodRS256, "rsa1", testRSA(), withClaims(func(c jwt.MapClaims) { c["iss"] = "https://evil.example.com" })), ReasonIssuer},
		{"missing exp", sign(t, jwt.SigningMethodRS256, "rsa1", testRSA(), withClaims(func(c jwt.MapClaims) { delete(c, "exp") })), ReasonMissingExp},
		{"over-size token", sign(t, jwt.SigningMethodRS256, "rsa1", testRSA(), withClaims(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("a", 9000) })), ReasonTooLarge},
		{"malformed base64", parts[0] + ".!!!." + parts[2], ReasonMalformed},
		{"padded base64", parts[0] + "=." + parts[1] + "." + parts[2], ReasonMalformed},
		{"malformed JSON payload", parts[0] + "." + b64([]byte(`{"sub":"alice"`)) + "." + parts[2], ReasonMalformed},
		{"duplicate claim", rawToken(`{"alg":"RS256","kid":"rsa1"}`, `{"sub":"alice","sub":"admin"}`, []byte("sig")), ReasonMalformed},
		{"payload not an object", rawToken(`{"alg":"RS256","kid":"rsa1"}`, `["sub"]`, []byte("sig")), ReasonMalformed},
		{"two segments", parts[0] + "." + parts[1], ReasonMalformed},
		{"empty signature", parts[0] + "." + parts[1] + ".", ReasonMalformed},
		{"tampered payload", parts[0] + "." + b64([]byte(strings.Replace(mustB64(t, parts[1]), "alice", "admin", 1))) + "." + parts[2], ReasonSignature},
		{"empty", "", ReasonMalformed},
	}
	v := newTestValidator(t, idp, clk, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Validate(context.Background(), tt.token)
			if err == nil {
				t.Fatalf("Validate accepted the token: %+v", p)
			}
			if !errors.Is(err, ErrRejected) {
				t.Errorf("error %v is not ErrRejected", err)
			}
			if got := ReasonOf(err); got != tt.want {
				t.Errorf("reason = %q, want %q (%v)", got, tt.want, err)
			}
		})
	}
	if n := attackerHits.Load(); n != 0 {
		t.Errorf("the attacker's server received %d requests; jku/x5u must never be fetched", n)
	}
}

func mustB64(t *testing.T, s string) string {
	t.Helper()
	b, err := b64dec(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// hs256WithKey forges the classic confusion token: HS256 keyed with the issuer's RSA public key.
func hs256WithKey(t *testing.T, claims jwt.MapClaims, key []byte) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["kid"] = "rsa1"
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	// Sanity: the forgery is a real HMAC over the public key.
	i := strings.LastIndexByte(s, '.')
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s[:i]))
	if b64(m.Sum(nil)) != s[i+1:] {
		t.Fatal("forged token is not HMAC-SHA256 keyed by the public key")
	}
	return s
}

func TestValidateUnknownKidRefetchesOnceAndPicksUpRotation(t *testing.T) {
	t.Parallel()
	idp := newIdP(t, "")
	clk := newClock()
	v := newTestValidator(t, idp, clk, &ValidatorOptions{MinRefetchInterval: time.Minute})
	ctx := context.Background()
	if _, err := v.Validate(ctx, sign(t, jwt.SigningMethodRS256, "rsa1", testRSA(), idp.claims(clk.Now()))); err != nil {
		t.Fatal(err)
	}
	if n := idp.jwksHits.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times for the first token, want 1", n)
	}

	// The issuer rotates: rsa2 appears. A token under rsa2 triggers one refetch and verifies.
	clk.Advance(2 * time.Minute)
	idp.setKeys(jwkOf("rsa1", testRSA()), jwkOf("rsa2", testRSA2()))
	if _, err := v.Validate(ctx, sign(t, jwt.SigningMethodRS256, "rsa2", testRSA2(), idp.claims(clk.Now()))); err != nil {
		t.Fatalf("token under the rotated-in key: %v", err)
	}
	if n := idp.jwksHits.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times after rotation, want 2", n)
	}

	// A flood of tokens with unknown kids, concurrently: no more fetches within the interval.
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			tok := sign(t, jwt.SigningMethodRS256, "unknown-"+string(rune('a'+i%26)), testRSA(), idp.claims(clk.Now()))
			if _, err := v.Validate(ctx, tok); ReasonOf(err) != ReasonUnknownKey {
				t.Errorf("unknown kid: reason %q (%v)", ReasonOf(err), err)
			}
		})
	}
	wg.Wait()
	if n := idp.jwksHits.Load(); n != 2 {
		t.Errorf("JWKS fetched %d times during an unknown-kid flood, want still 2", n)
	}

	// After the interval, one unknown kid may trigger exactly one more fetch.
	clk.Advance(61 * time.Second)
	for range 5 {
		_, _ = v.Validate(ctx, sign(t, jwt.SigningMethodRS256, "unknown-z", testRSA(), idp.claims(clk.Now())))
	}
	if n := idp.jwksHits.Load(); n != 3 {
		t.Errorf("JWKS fetched %d times after the interval, want 3", n)
	}
}

func TestValidateKeepsCachedKeysWhileJWKSIsDownUntilMaxAge(t *testing.T) {
	t.Parallel()
	idp := newIdP(t, "")
	clk := newClock()
	v := newTestValidator(t, idp, clk, &ValidatorOptions{RefreshInterval: time.Hour, MaxKeyAge: 3 * time.Hour, CacheSize: -1})
	ctx := context.Background()
	tok := func() string { return sign(t, jwt.SigningMethodES256, "ec1", testEC(), idp.claims(clk.Now())) }
	if _, err := v.Validate(ctx, tok()); err != nil {
		t.Fatal(err)
	}
	idp.setDown(true)
	clk.Advance(2 * time.Hour) // stale: a background refresh fails, the cached keys still verify
	if _, err := v.Validate(ctx, tok()); err != nil {
		t.Fatalf("within MaxKeyAge with the JWKS down: %v", err)
	}
	clk.Advance(2 * time.Hour) // past MaxKeyAge
	if _, err := v.Validate(ctx, tok()); ReasonOf(err) != ReasonKeysUnavailable {
		t.Fatalf("past MaxKeyAge: reason %q (%v), want %q", ReasonOf(err), err, ReasonKeysUnavailable)
	}
	idp.setDown(false)
	clk.Advance(2 * time.Minute)
	if _, err := v.Validate(ctx, tok()); err != nil {
		t.Fatalf("after the JWKS recovered: %v", err)
	}
}

func TestValidateCachesVerifiedTokensButNeverPastExp(t *testing.T) {
	t.Parallel()
	idp := newIdP(t, "")
	clk := newClock()
	v := newTestValidator(t, idp, clk, &ValidatorOptions{CacheSize: 2, CacheTTL: time.Hour})
	ctx := context.Background()
	c := idp.claims(clk.Now())
	c["exp"] = clk.Now().Add(90 * time.Second).Unix()
	tok := sign(t, jwt.SigningMethodRS256, "rsa1", testRSA(), c)
	if _, err := v.Validate(ctx, tok); err != nil {
		t.Fatal(err)
	}
	// Keys gone, at the issuer and in memory: only the token cache can accept the token now.
	idp.setKeys()
	v.keys.mu.Lock()
	v.keys.keys = nil
	v.keys.mu.Unlock()
	clk.Advance(10 * time.Second)
	if _, err := v.Validate(ctx, tok); err != nil {
		t.Fatalf("cached token: %v", err)
	}
	if _, err := v.Validate(ctx, sign(t, jwt.SigningMethodRS256, "rsa1", testRSA(), idp.claims(clk.Now()))); err == nil {
		t.Fatal("a token never seen was accepted without keys")
	}
	clk.Advance(81 * time.Second) // past exp (inside the clock skew and CacheTTL)
	if _, err := v.Validate(ctx, tok); err == nil {
		t.Fatal("a cached token was served after its exp")
	}
	idp.setKeys(jwkOf("rsa1", testRSA()))
	clk.Advance(2 * time.Minute) // past the refetch interval
	for i := range 3 {
		c := idp.claims(clk.Now())
		c["sub"] = string(rune('a' + i))
		if _, err := v.Validate(ctx, sign(t, jwt.SigningMethodRS256, "rsa1", testRSA(), c)); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.cache.len(); n != 2 {
		t.Errorf("cache holds %d tokens, want its bound 2", n)
	}
}

func TestValidateMapsGroupClaims(t *testing.T) {
	t.Parallel()
	idp := newIdP(t, "")
	clk := newClock()
	tests := []struct {
		name        string
		groupsClaim string
		set         jwt.MapClaims
		wantGroups  []string
		wantReject  bool
	}{
		{"default groups claim", "", jwt.MapClaims{"groups": []string{"portfolio-managers", "ops"}}, []string{"portfolio-managers", "ops"}, false},
		{"one group as a string", "", jwt.MapClaims{"groups": "Portfolio Managers"}, []string{"Portfolio Managers"}, false},
		{"no groups claim", "", jwt.MapClaims{}, nil, false},
		{"dotted path", "resource_access.gw.groups", jwt.MapClaims{"resource_access": map[string]any{"gw": map[string]any{"groups": []string{"traders"}}}}, []string{"traders"}, false},
		{"namespaced claim", "https://mcpguard.example/groups", jwt.MapClaims{"https://mcpguard.example/groups": []string{"risk"}, "groups": []string{"ignored"}}, []string{"risk"}, false},
		{"not strings", "", jwt.MapClaims{"groups": []any{1, 2}}, nil, true},
		{"not an array", "", jwt.MapClaims{"groups": map[string]any{"a": "b"}}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newTestValidator(t, idp, clk, &ValidatorOptions{GroupsClaim: tt.groupsClaim})
			c := idp.claims(clk.Now())
			c["department"] = "trading"
			for k, val := range tt.set {
				c[k] = val
			}
			p, err := v.Validate(context.Background(), sign(t, jwt.SigningMethodRS256, "rsa1", testRSA(), c))
			if tt.wantReject {
				var rej *Rejection
				if !errors.As(err, &rej) || rej.Reason != ReasonClaims {
					t.Fatalf("Validate = %v, %v; want a %s rejection", p, err, ReasonClaims)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantGroups, p.Groups); diff != "" {
				t.Errorf("groups (-want +got):\n%s", diff)
			}
			if p.Claims["department"] != "trading" {
				t.Errorf("claims[department] = %v, want trading", p.Claims["department"])
			}
		})
	}
}

func TestValidateMapsRoleClaims(t *testing.T) {
	t.Parallel()
	idp := newIdP(t, "")
	clk := newClock()
	tests := []struct {
		name       string
		rolesClaim string
		set        jwt.MapClaims
		wantRoles  []string
		wantScopes []string
		wantClient string
	}{
		{"Entra roles and scp", "roles", jwt.MapClaims{"roles": []string{"Tools.Admin"}, "scp": "mcp.tools", "azp": "app-1"}, []string{"Tools.Admin"}, []string{"mcp.tools"}, "app-1"},
		{"Okta groups, scp array and cid", "groups", jwt.MapClaims{"groups": []string{"ops", "dev"}, "scp": []string{"a", "b"}, "cid": "0oa1"}, []string{"ops", "dev"}, []string{"a", "b"}, "0oa1"},
		{"Keycloak realm roles by path", "realm_access.roles", jwt.MapClaims{"realm_access": map[string]any{"roles": []string{"auditor"}}}, []string{"auditor"}, []string{"mcp:tools", "mcp:read"}, "agent-1"},
		{"Auth0 namespaced claim", "https://mcpguard.example/roles", jwt.MapClaims{"https://mcpguard.example/roles": []string{"finance"}}, []string{"finance"}, []string{"mcp:tools", "mcp:read"}, "agent-1"},
		{"roles from scope", "scope", jwt.MapClaims{"scope": "read write"}, []string{"read", "write"}, []string{"read", "write"}, "agent-1"},
		{"no roles claim", "groups", jwt.MapClaims{}, nil, []string{"mcp:tools", "mcp:read"}, "agent-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newTestValidator(t, idp, clk, &ValidatorOptions{RolesClaim: tt.rolesClaim})
			c := idp.claims(clk.Now())
			delete(c, "roles")
			delete(c, "scope")
			c["scope"] = "mcp:tools mcp:read"
			if _, ok := tt.set["scp"]; ok {
				delete(c, "scope")
			}
			if _, ok := tt.set["azp"]; ok {
				delete(c, "client_id")
			}
			if _, ok := tt.set["cid"]; ok {
				delete(c, "client_id")
			}
			for k, val := range tt.set {
				c[k] = val
			}
			p, err := v.Validate(context.Background(), sign(t, jwt.SigningMethodRS256, "rsa1", testRSA(), c))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantRoles, p.Roles); diff != "" {
				t.Errorf("roles (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantScopes, p.Scopes); diff != "" {
				t.Errorf("scopes (-want +got):\n%s", diff)
			}
			if p.ClientID != tt.wantClient {
				t.Errorf("client id %q, want %q", p.ClientID, tt.wantClient)
			}
		})
	}
}

func TestValidateExtraAudience(t *testing.T) {
	t.Parallel()
	idp := newIdP(t, "")
	clk := newClock()
	v := newTestValidator(t, idp, clk, &ValidatorOptions{ExtraAudiences: []string{"6f1c2d3e-0000-4000-8000-000000000001"}})
	for _, tt := range []struct {
		name string
		aud  any
		ok   bool
	}{
		{"canonical URI", testAudience, true},
		{"application id", "6f1c2d3e-0000-4000-8000-000000000001", true},
		{"array naming this gateway among others", []string{"https://other.example.com", testAudience}, true},
		{"another application", "6f1c2d3e-0000-4000-8000-000000000002", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := idp.claims(clk.Now())
			c["aud"] = tt.aud
			_, err := v.Validate(context.Background(), sign(t, jwt.SigningMethodRS256, "rsa1", testRSA(), c))
			if (err == nil) != tt.ok {
				t.Errorf("accepted=%v (%v), want %v", err == nil, err, tt.ok)
			}
		})
	}
}

func TestDiscoveryRefusesAnotherIssuersMetadata(t *testing.T) {
	t.Parallel()
	idp := newIdP(t, "/tenant")
	clk := newClock()
	// Configured issuer differs from what the document names (trailing slash): refuse.
	v, err := NewValidator(idp.issuer+"/", testAudience, &ValidatorOptions{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Validate(context.Background(), sign(t, jwt.SigningMethodRS256, "rsa1", testRSA(), idp.claims(clk.Now())))
	if ReasonOf(err) != ReasonKeysUnavailable || !strings.Contains(err.Error(), "names issuer") {
		t.Errorf("got %v, want keys unavailable because the metadata names another issuer", err)
	}
	if n := idp.jwksHits.Load(); n != 0 {
		t.Errorf("JWKS fetched %d times from a mismatched issuer's metadata", n)
	}
}

func TestNewValidatorReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := NewValidator("http://idp.example.com", "https://gw.example.com/mcp#x", &ValidatorOptions{Algorithms: []string{"HS256", "none"}, ClockSkew: time.Hour})
	if err == nil {
		t.Fatal("NewValidator accepted a bad configuration")
	}
	for _, want := range []string{"issuer", "fragment", `"HS256"`, `"none"`, "clock skew"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
}

// TestValidateRefusesOverlongLifetime: a validly signed token meant to live longer than the
// maximum lifetime (exp - iat, or without iat exp - now) is refused, so that one leaked token
// does not stay usable for years.
func TestValidateRefusesOverlongLifetime(t *testing.T) {
	t.Parallel()
	idp := newIdP(t, "")
	clk := newClock()
	now := clk.Now()
	year2100 := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		max      time.Duration // 0: the default
		iat, exp time.Time     // iat zero: no iat claim
		want     Reason        // "": accepted
	}{
		{"one hour", 0, now, now.Add(time.Hour), ""},
		{"exactly the default maximum", 0, now, now.Add(DefaultMaxTokenLifetime), ""},
		{"a second over the default maximum", 0, now, now.Add(DefaultMaxTokenLifetime + time.Second), ReasonLifetime},
		{"expires in 2100", 0, now, year2100, ReasonLifetime},
		{"expires in 2100, no iat", 0, time.Time{}, year2100, ReasonLifetime},
		{"issued long ago, still over", 0, now.Add(-30 * 24 * time.Hour), now.Add(time.Hour), ReasonLifetime},
		{"no iat, expires within the maximum", 0, time.Time{}, now.Add(23 * time.Hour), ""},
		{"no iat, within the maximum plus the clock skew", 0, time.Time{}, now.Add(DefaultMaxTokenLifetime + DefaultClockSkew), ""},
		{"no iat, beyond the maximum plus the clock skew", 0, time.Time{}, now.Add(DefaultMaxTokenLifetime + DefaultClockSkew + time.Second), ReasonLifetime},
		{"configured 1h: 2h refused", time.Hour, now, now.Add(2 * time.Hour), ReasonLifetime},
		{"configured 1h: 1h accepted", time.Hour, now, now.Add(time.Hour), ""},
		{"configured 7 days: 3 days accepted", 7 * 24 * time.Hour, now, now.Add(3 * 24 * time.Hour), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newTestValidator(t, idp, clk, &ValidatorOptions{MaxTokenLifetime: tt.max})
			c := idp.claims(now)
			c["exp"] = tt.exp.Unix()
			delete(c, "iat")
			if !tt.iat.IsZero() {
				c["iat"] = tt.iat.Unix()
			}
			_, err := v.Validate(context.Background(), sign(t, jwt.SigningMethodRS256, "rsa1", testRSA(), c))
			if got := ReasonOf(err); got != tt.want || (tt.want == "" && err != nil) {
				t.Errorf("Validate: reason %q (%v), want %q", got, err, tt.want)
			}
		})
	}
	for _, max := range []time.Duration{-time.Hour, MaxTokenLifetimeBound + time.Second} {
		_, err := NewValidator(idp.issuer, testAudience, &ValidatorOptions{MaxTokenLifetime: max})
		if err == nil || !strings.Contains(err.Error(), "max token lifetime") {
			t.Errorf("NewValidator with MaxTokenLifetime %v: %v, want an error about it", max, err)
		}
	}
}

func TestParseJWKSRefusesWeakAndPrivateKeys(t *testing.T) {
	t.Parallel()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		doc     string
		wantErr string
		want    int
	}{
		{"RSA 1024 skipped", `{"keys":[` + mustJSON(jwkOf("s", small)) + `]}`, "under 2048", 0},
		{"private key published", `{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB"}]}`, "private key", 0},
		{"duplicate member", `{"keys":[],"keys":[]}`, "duplicate", 0},
		{"encryption key ignored, signature key kept", `{"keys":[{"kty":"RSA","use":"enc","n":"x","e":"AQAB"},` + mustJSON(jwkOf("k", testRSA())) + `]}`, "", 1},
		{"unknown kty ignored", `{"keys":[{"kty":"oct","k":"c2VjcmV0"},` + mustJSON(jwkOf("k", testEd())) + `]}`, "", 1},
		{"EC point off the curve", `{"keys":[{"kty":"EC","crv":"P-256","x":"` + b64(make([]byte, 32)) + `","y":"` + b64(make([]byte, 32)) + `"}]}`, "EC point", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := parseJWKS([]byte(tt.doc))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(keys) != tt.want {
				t.Fatalf("got %d keys, err %v; want %d", len(keys), err, tt.want)
			}
		})
	}
}

var _ crypto.Signer = testEd()
