package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpguard/mcpguard/cmd/mcpguard/wiring"
	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/contain"
	"github.com/mcpguard/mcpguard/internal/keystore"
	"github.com/mcpguard/mcpguard/internal/store"
)

// recordsOf returns the audit records of kind in the audit database at db.
func recordsOf(t *testing.T, db string, kind audit.Kind) []*audit.Record {
	t.Helper()
	var out []*audit.Record
	err := openStore(t, db).Scan(context.Background(), 0, func(r *store.Record) error {
		rec, err := audit.ParseRecord(r.Data)
		if err != nil {
			return err
		}
		if rec.Kind == kind {
			out = append(out, rec)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// newKey creates an API key for principal in the identity database at db.
func newKey(t *testing.T, db, principal string) (string, string) {
	t.Helper()
	st, err := keystore.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	secret, rec, err := authn.NewAPIKeys(st, nil).Create(t.Context(), principal, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	return secret.Reveal(), rec.ID
}

// TestBruteForceBlocksAddress: after five bad API keys from one address within the window, that
// address is refused 403 before authentication — a good key from it too — the block is an
// audit record and is kept in the identity database; once an operator lifts it, the good key
// is served again.
func TestBruteForceBlocksAddress(t *testing.T) {
	keysDB := filepath.Join(t.TempDir(), "keys.db")
	section, db, _ := auditConfig(t)
	tg := newTestGateway(t, fmt.Sprintf("api_keys_database: %q\n%s", keysDB, section))
	good, id := newKey(t, keysDB, "pricing-agent")
	wrong := "mcpg_" + id + "_" + strings.Repeat("A", 43)

	for i := range 5 {
		if st, _, _ := post(t, tg.url, map[string]string{"Authorization": "Bearer " + wrong}, authInitBody); st != http.StatusUnauthorized {
			t.Fatalf("bad key %d: status %d, want 401", i+1, st)
		}
	}
	st, h, msg := post(t, tg.url, map[string]string{"Authorization": "Bearer " + good}, authInitBody)
	if st != http.StatusForbidden || errCode(msg) != -31002 {
		t.Fatalf("good key from the blocked address: status %d %v, want 403 and -31002", st, msg)
	}
	if ra := h.Get("Retry-After"); ra == "" {
		t.Errorf("a block with an expiry sent no Retry-After")
	}
	blocks := recordsOf(t, db, audit.KindBlock)
	if len(blocks) != 1 || !strings.Contains(string(blocks[0].Detail), `"target":"127.0.0.1"`) || blocks[0].ClientIP != "127.0.0.1" {
		t.Fatalf("block records: %+v, want one for 127.0.0.1", blocks)
	}
	if !strings.Contains(blocks[0].Reasons[0], "5 failed authentications") {
		t.Errorf("block reason %q does not say why", blocks[0].Reasons[0])
	}
	// Durable: the identity database holds it.
	ks, err := keystore.Open(t.Context(), keysDB)
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	bs, err := ks.Blocks(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	stored, err := bs.Blocks(t.Context(), time.Now(), 10)
	if err != nil || len(stored) != 1 || stored[0].Value != "127.0.0.1" {
		t.Fatalf("stored blocks: %+v, %v", stored, err)
	}
	if err := tg.g.guard.Lift(t.Context(), contain.BlockAddress, "127.0.0.1", "operator-ann"); err != nil {
		t.Fatal(err)
	}
	if st, _, msg := post(t, tg.url, map[string]string{"Authorization": "Bearer " + good}, authInitBody); st != http.StatusOK {
		t.Fatalf("good key after the lift: status %d %v", st, msg)
	}
	lifts := recordsOf(t, db, audit.KindBlock)
	if len(lifts) != 2 || !strings.Contains(string(lifts[1].Detail), `"actor":"operator-ann"`) {
		t.Errorf("the lift is not recorded with its operator: %+v", lifts)
	}
}

// TestMissingCredentialIsNoGuess: a client that sends no credential (how every OAuth client
// discovers the authorization server) is never blocked for it.
func TestMissingCredentialIsNoGuess(t *testing.T) {
	keysDB := filepath.Join(t.TempDir(), "keys.db")
	tg := newTestGateway(t, fmt.Sprintf("api_keys_database: %q\n", keysDB))
	good, _ := newKey(t, keysDB, "pricing-agent")
	for range 20 {
		if st, _, _ := post(t, tg.url, nil, authInitBody); st != http.StatusUnauthorized {
			t.Fatalf("no credential: status %d, want 401", st)
		}
	}
	if st, _, msg := post(t, tg.url, map[string]string{"Authorization": "Bearer " + good}, authInitBody); st != http.StatusOK {
		t.Fatalf("good key after 20 requests without one: status %d %v", st, msg)
	}
}

// TestRateLimitCountsAPrincipalOnce: per_principal at 5 calls a minute serves five calls of
// one principal — three with its API key, two with its token — and refuses the sixth with 429,
// Retry-After and -31002, never forwarding it; a rate_limit record says so. Another principal
// is not affected.
func TestRateLimitCountsAPrincipalOnce(t *testing.T) {
	iss := newTestIssuer(t)
	const resource = "http://127.0.0.1/mcp"
	const issuer = "https://idp.example.com/realms/bank"
	keysDB := filepath.Join(t.TempDir(), "keys.db")
	section, db, _ := auditConfig(t)
	tg := newTestGateway(t, fmt.Sprintf(`api_keys_database: %q
auth:
  resource: %q
  issuer: %q
  jwks_url: %q
containment:
  rate_limits:
    per_principal: {calls_per_minute: 5, burst: 5}
%s`, keysDB, resource, issuer, iss.jwks.URL, section))
	key, _ := newKey(t, keysDB, "agent-7")
	token := iss.token(t, jwt.MapClaims{"iss": issuer, "aud": resource, "sub": "agent-7", "exp": time.Now().Add(time.Hour).Unix()})
	other := iss.token(t, jwt.MapClaims{"iss": issuer, "aud": resource, "sub": "agent-8", "exp": time.Now().Add(time.Hour).Unix()})

	call := func(bearer string, n int) (int, http.Header, map[string]any) {
		h := modernHeaders("tools/call", "rec.echo")
		h["Authorization"] = "Bearer " + bearer
		return post(t, tg.url, h, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"call-%d"},%s}}`, n, n, modernMeta))
	}
	for i, bearer := range []string{key, token, key, token, key} {
		if st, _, msg := call(bearer, i); st != http.StatusOK || msg["result"] == nil {
			t.Fatalf("call %d: status %d %v", i, st, msg)
		}
	}
	st, h, msg := call(token, 99)
	if st != http.StatusTooManyRequests || errCode(msg) != -31002 {
		t.Fatalf("sixth call: status %d %v, want 429 and -31002", st, msg)
	}
	if ra := h.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After %q, want the seconds until a token is back", ra)
	}
	if strings.Contains(readRecord(t, tg.record), "call-99") {
		t.Error("the refused call reached the upstream")
	}
	if st, _, msg := call(other, 100); st != http.StatusOK {
		t.Errorf("another principal: status %d %v", st, msg)
	}
	recs := recordsOf(t, db, audit.KindRateLimit)
	if len(recs) != 1 || recs[0].Principal != "agent-7" || recs[0].Tool != "rec.echo" || !strings.Contains(recs[0].Rule, "per_principal") {
		t.Fatalf("rate_limit records: %+v", recs)
	}
}

// TestNetworksRefuseOutsiders: a listener serving only 10.0.0.0/8 refuses a loopback client
// 403, and a spoofed X-Forwarded-For from an untrusted peer changes nothing.
func TestNetworksRefuseOutsiders(t *testing.T) {
	tg := newTestGateway(t, `containment:
  allowed_networks: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16]
`)
	st, _, msg := post(t, tg.url, map[string]string{"X-Forwarded-For": "10.1.2.3"}, authInitBody)
	if st != http.StatusForbidden || errCode(msg) != -31001 {
		t.Fatalf("loopback client, spoofed header: status %d %v, want 403 and -31001", st, msg)
	}
	tg2 := newTestGateway(t, `containment:
  trusted_proxies: [127.0.0.0/8]
  allowed_networks: [10.0.0.0/8]
`)
	if st, _, msg := post(t, tg2.url, map[string]string{"X-Forwarded-For": "10.1.2.3"}, authInitBody); st != http.StatusOK {
		t.Fatalf("through a trusted proxy from 10.1.2.3: status %d %v", st, msg)
	}
	if st, _, _ := post(t, tg2.url, map[string]string{"X-Forwarded-For": "8.8.8.8"}, authInitBody); st != http.StatusForbidden {
		t.Fatalf("through a trusted proxy from 8.8.8.8: status %d, want 403", st)
	}
}

// eventually polls cond until it holds or 20 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAnomalyAtThreeInTheMorning: a principal calling at 03:00 (off hours 22 to 6) raises an
// unusual_hour alert that reaches the security team's webhook and the SIEM sink; the playbook
// suspends it, and its next call is refused while another principal's is served.
func TestAnomalyAtThreeInTheMorning(t *testing.T) {
	keysDB := filepath.Join(t.TempDir(), "keys.db")
	section, db, _ := auditConfig(t)
	siem := filepath.Join(t.TempDir(), "siem.jsonl")
	var (
		mu   sync.Mutex
		hook []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		hook = append(hook, string(b))
		mu.Unlock()
	}))
	defer srv.Close()
	at := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	tg := newTestGatewayWith(t, fmt.Sprintf(`api_keys_database: %q
containment:
  notify_webhook: {url: %q}
  anomaly:
    off_hours: {from: 22, to: 6}
    playbook:
      - {signal: unusual_hour, min_severity: medium, actions: [alert, suspend_principal]}
%s  sinks:
    - name: siem
      jsonl: {path: %q}
`, keysDB, srv.URL+"/alerts", section, siem), &wiring.Options{Now: func() time.Time { return at }})
	night, _ := newKey(t, keysDB, "night-owl")
	other, _ := newKey(t, keysDB, "day-agent")

	call := func(key string, n int) (int, map[string]any) {
		h := modernHeaders("tools/call", "rec.echo")
		h["Authorization"] = "Bearer " + key
		st, _, msg := post(t, tg.url, h, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"n%d"},%s}}`, n, n, modernMeta))
		return st, msg
	}
	if st, msg := call(night, 1); st != http.StatusOK {
		t.Fatalf("first call at 03:00: status %d %v (the response comes after the call)", st, msg)
	}
	eventually(t, "the suspension", func() bool {
		_, ok := tg.g.guard.Blocked(contain.BlockPrincipal, "night-owl")
		return ok
	})
	if st, msg := call(night, 2); st != http.StatusForbidden || errCode(msg) != -31001 {
		t.Fatalf("next call of the suspended principal: status %d %v, want 403", st, msg)
	}
	eventually(t, "the webhook notification", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(strings.Join(hook, ""), `"unusual_hour"`)
	})
	eventually(t, "the SIEM sink's alert", func() bool {
		b, _ := os.ReadFile(siem)
		return strings.Contains(string(b), `"kind":"alert"`) && strings.Contains(string(b), `"kind":"suspend"`)
	})
	alerts := recordsOf(t, db, audit.KindAlert)
	if len(alerts) < 1 || alerts[0].Principal != "night-owl" || !strings.Contains(string(alerts[0].Detail), `"severity":"medium"`) {
		t.Fatalf("alert records: %+v", alerts)
	}
	// Another principal is not affected by the suspension (its own 03:00 call is served, and
	// raises its own alert).
	if st, msg := call(other, 3); st != http.StatusOK {
		t.Errorf("another principal: status %d %v", st, msg)
	}
}

// TestBruteForceEveryCredentialKind: five failed access tokens (a forged signature) block the
// address like five bad API keys do; so do five client certificates from a foreign CA, counted
// from the failed TLS handshakes. The good credential is refused afterwards.
func TestBruteForceEveryCredentialKind(t *testing.T) {
	t.Run("access token", func(t *testing.T) {
		iss, forger := newTestIssuer(t), newTestIssuer(t)
		const resource, issuer = "http://127.0.0.1/mcp", "https://idp.example.com/realms/bank"
		tg := newTestGateway(t, fmt.Sprintf("auth:\n  resource: %q\n  issuer: %q\n  jwks_url: %q\n", resource, issuer, iss.jwks.URL))
		claims := jwt.MapClaims{"iss": issuer, "aud": resource, "sub": "agent-7", "exp": time.Now().Add(time.Hour).Unix()}
		forged, good := forger.token(t, claims), iss.token(t, claims)
		for i := range 5 {
			if st, _, _ := post(t, tg.url, map[string]string{"Authorization": "Bearer " + forged}, authInitBody); st != http.StatusUnauthorized {
				t.Fatalf("forged token %d: status %d, want 401", i, st)
			}
		}
		if st, _, _ := post(t, tg.url, map[string]string{"Authorization": "Bearer " + good}, authInitBody); st != http.StatusForbidden {
			t.Fatalf("good token after five forged ones: status %d, want 403", st)
		}
	})
	t.Run("client certificate", func(t *testing.T) {
		dir := t.TempDir()
		serverCA, clientCA, otherCA := newTestCA(t, "server CA"), newTestCA(t, "client CA"), newTestCA(t, "other CA")
		certFile, keyFile, caFile := filepath.Join(dir, "gw.pem"), filepath.Join(dir, "gw.key"), filepath.Join(dir, "clients.pem")
		c, k := serverCA.issue(t, 100, false, "")
		writeFile(t, certFile, c)
		writeFile(t, keyFile, k)
		writeFile(t, caFile, clientCA.pem)
		tg := newTestGateway(t, fmt.Sprintf("tls:\n  cert_file: %q\n  key_file: %q\n  client_ca_file: %q\n  client_roles:\n    \"spiffe://bank/agent-7\": [MarketAnalystAI]\n", certFile, keyFile, caFile))
		tc, err := wiring.TLSConfig(tg.cfg.TLS, nil)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := tls.Listen("tcp", "127.0.0.1:0", tc)
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: tg.g.Handler(), ErrorLog: tg.g.ServerErrorLog(nil)}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		roots := x509.NewCertPool()
		roots.AddCert(serverCA.cert)
		client := func(ca *testCA) *http.Client {
			cp, kp := ca.issue(t, 7, true, "spiffe://bank/agent-7")
			pair, err := tls.X509KeyPair(cp, kp)
			if err != nil {
				t.Fatal(err)
			}
			cfg := &tls.Config{RootCAs: roots, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }}
			return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}, Timeout: 30 * time.Second}
		}
		do := func(c *http.Client) (int, error) {
			req, _ := http.NewRequest(http.MethodPost, "https://"+ln.Addr().String()+"/mcp", strings.NewReader(authInitBody))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			resp, err := c.Do(req)
			if err != nil {
				return 0, err
			}
			resp.Body.Close()
			return resp.StatusCode, nil
		}
		if st, err := do(client(clientCA)); err != nil || st != http.StatusOK {
			t.Fatalf("good certificate: %d %v", st, err)
		}
		foreign := client(otherCA)
		for range 5 {
			if _, err := do(foreign); err == nil {
				t.Fatal("a foreign CA's certificate was accepted")
			}
		}
		eventually(t, "the block after five failed handshakes", func() bool {
			st, err := do(client(clientCA))
			return err == nil && st == http.StatusForbidden
		})
	})
}
