// Command idp-client is the client side of the idp interop stage: it discovers the identity
// provider from mcpguard's 401, obtains tokens with the client-credentials grant, calls a tool
// through mcpguard with the official go-sdk client in both protocol eras, and shows that tokens
// for another audience or already expired are refused before anything reaches the upstream.
// With -admin, it then logs an operator in to the admin API through the IdP (OpenID Connect,
// authorization code with PKCE) and uses the session token.
//
// It prints one "ok:" line per passed check and exits 1 after the first failure, naming it.
// Client secrets come from the environment (IDP_CLIENT_SECRET, IDP_EXPIRED_CLIENT_SECRET),
// never from the command line.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// maxBody bounds every response body this program reads.
const maxBody = 1 << 20

type options struct {
	mcpURL         string
	issuer         string
	clientID       string
	clientSecret   string
	expiredID      string
	expiredSecret  string
	otherResource  string
	tool           string
	symbol         string
	eras           []string
	adminURL       string // the admin API, for the operator login (optional)
	operator       string // the operator the IdP's user must log in as
	operatorClient string // the admin API's client id at the IdP
}

func main() {
	var o options
	var eras string
	flag.StringVar(&o.mcpURL, "mcp", "", "the gateway's MCP endpoint, which is also its canonical resource URI")
	flag.StringVar(&o.issuer, "issuer", "", "the issuer the gateway's metadata must name")
	flag.StringVar(&o.clientID, "client", "", "client id at the IdP (secret in IDP_CLIENT_SECRET)")
	flag.StringVar(&o.expiredID, "expired-client", "", "client id whose tokens the IdP issues already expired (secret in IDP_EXPIRED_CLIENT_SECRET)")
	flag.StringVar(&o.otherResource, "other-resource", "", "another resource registered at the IdP, to get a token for the wrong audience")
	flag.StringVar(&o.tool, "tool", "finance.get_stock_analysis", "tool to call through the gateway")
	flag.StringVar(&o.symbol, "symbol", "VNM", "the tool's symbol argument")
	flag.StringVar(&eras, "eras", "2025-11-25,2026-07-28", "protocol versions to connect with, comma-separated")
	flag.StringVar(&o.adminURL, "admin", "", "the admin API's base URL: also log an operator in with OpenID Connect")
	flag.StringVar(&o.operator, "operator", "", "with -admin: the operator account the IdP's user must be logged in as")
	flag.StringVar(&o.operatorClient, "operator-client", "", "with -admin: the admin API's client id at the IdP")
	flag.Parse()
	o.clientSecret = os.Getenv("IDP_CLIENT_SECRET")
	o.expiredSecret = os.Getenv("IDP_EXPIRED_CLIENT_SECRET")
	o.eras = strings.Split(eras, ",")
	if o.mcpURL == "" || o.issuer == "" || o.clientID == "" || o.clientSecret == "" ||
		o.expiredID == "" || o.expiredSecret == "" || o.otherResource == "" {
		fmt.Fprintln(os.Stderr, "idp-client: -mcp, -issuer, -client, -expired-client, -other-resource, IDP_CLIENT_SECRET and IDP_EXPIRED_CLIENT_SECRET are required")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	if err := run(ctx, o); err != nil {
		fmt.Printf("FAIL: %v\n", err)
		os.Exit(1)
	}
	fmt.Println("ok: all checks passed")
}

func okf(format string, args ...any) { fmt.Printf("ok: "+format+"\n", args...) }

func run(ctx context.Context, o options) error {
	plain := &http.Client{Timeout: 10 * time.Second}

	// 1. No token: 401 and a challenge that names the Protected Resource Metadata.
	tokenURL, err := discover(ctx, plain, o)
	if err != nil {
		return err
	}

	// 2. A token for the gateway, from the IdP's token endpoint.
	good, err := clientToken(ctx, tokenURL, o.clientID, o.clientSecret, o.mcpURL)
	if err != nil {
		return fmt.Errorf("client credentials for %s: %w", o.mcpURL, err)
	}
	if err := checkClaims(good, o.issuer, o.mcpURL, true); err != nil {
		return fmt.Errorf("the IdP's token for the gateway: %w", err)
	}
	okf("the IdP issued %s a token with iss=%s aud=%s", o.clientID, o.issuer, o.mcpURL)

	wrongAud, err := clientToken(ctx, tokenURL, o.clientID, o.clientSecret, o.otherResource)
	if err != nil {
		return fmt.Errorf("client credentials for %s: %w", o.otherResource, err)
	}
	if err := checkClaims(wrongAud, o.issuer, o.otherResource, true); err != nil {
		return fmt.Errorf("the IdP's token for the other resource: %w", err)
	}
	expired, err := clientToken(ctx, tokenURL, o.expiredID, o.expiredSecret, o.mcpURL)
	if err != nil {
		return fmt.Errorf("client credentials for %s as %s: %w", o.mcpURL, o.expiredID, err)
	}
	if err := checkClaims(expired, o.issuer, o.mcpURL, false); err != nil {
		return fmt.Errorf("the IdP's expired token: %w", err)
	}
	okf("the IdP issued a token for aud=%s and an already expired token for the gateway", o.otherResource)

	// 3. The official client, both eras; each recorded tools/call is then replayed with the
	// refused tokens (and once with the good one, as the control). Everything sent with a
	// refused token comes from another loopback address per era (127.0.0.2, 127.0.0.3), as
	// from another machine: the gateway's brute-force detection (on by default: 5 failed
	// authentications from one address in 5 minutes block it) counts each era's few refused
	// tokens against that address, never against 127.0.0.1, which the good token and the
	// operator login use, and no address reaches the threshold.
	for i, era := range o.eras {
		from := net.IPv4(127, 0, 0, byte(2+i))
		if err := callInEra(ctx, o, era, good, map[string]string{"WRONGAUD": wrongAud, "EXPIRED": expired}, from); err != nil {
			return fmt.Errorf("protocol %s: %w", era, err)
		}
	}

	// 4. An operator logs in to the admin API through the IdP.
	if o.adminURL != "" {
		if err := operatorLogin(ctx, o); err != nil {
			return fmt.Errorf("operator login: %w", err)
		}
	}
	return nil
}

// discover sends an MCP request without a token, follows the 401's resource_metadata to the
// gateway's Protected Resource Metadata and from there to the IdP's metadata, and returns the
// IdP's token endpoint.
func discover(ctx context.Context, c *http.Client, o options) (string, error) {
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"idp-client","version":"1"}}}`
	status, hdr, _, err := post(ctx, c, o.mcpURL, nil, []byte(body))
	if err != nil {
		return "", err
	}
	if status != http.StatusUnauthorized {
		return "", fmt.Errorf("a request without a token got %d, want 401", status)
	}
	challenges, err := oauthex.ParseWWWAuthenticate(hdr.Values("WWW-Authenticate"))
	if err != nil {
		return "", fmt.Errorf("WWW-Authenticate %q: %w", hdr.Values("WWW-Authenticate"), err)
	}
	var metaURL string
	for _, ch := range challenges {
		if ch.Scheme == "bearer" {
			metaURL = ch.Params["resource_metadata"]
		}
	}
	if metaURL == "" {
		return "", fmt.Errorf("the 401's WWW-Authenticate %q has no Bearer resource_metadata", hdr.Values("WWW-Authenticate"))
	}
	okf("no token: 401 with WWW-Authenticate %s", hdr.Get("WWW-Authenticate"))

	prm, err := oauthex.GetProtectedResourceMetadata(ctx, metaURL, o.mcpURL, c)
	if err != nil {
		return "", err
	}
	if !slices.Contains(prm.AuthorizationServers, o.issuer) {
		return "", fmt.Errorf("the metadata at %s names authorization servers %q, want %s", metaURL, prm.AuthorizationServers, o.issuer)
	}
	okf("%s: resource=%s authorization_servers=%q", metaURL, prm.Resource, prm.AuthorizationServers)

	// The MCP authorization specification's discovery order for an issuer.
	for _, u := range asMetadataURLs(prm.AuthorizationServers[0]) {
		asm, err := oauthex.GetAuthServerMeta(ctx, u, prm.AuthorizationServers[0], c)
		if err != nil {
			return "", fmt.Errorf("authorization server metadata at %s: %w", u, err)
		}
		if asm == nil {
			continue // 4xx: try the next location
		}
		if asm.TokenEndpoint == "" || !slices.Contains(asm.GrantTypesSupported, "client_credentials") {
			return "", fmt.Errorf("%s: token_endpoint %q, grant_types_supported %q: no client-credentials grant", u, asm.TokenEndpoint, asm.GrantTypesSupported)
		}
		okf("the IdP discovered from the metadata link: %s (issuer %s, token_endpoint %s, jwks_uri %s)", u, asm.Issuer, asm.TokenEndpoint, asm.JWKSURI)
		return asm.TokenEndpoint, nil
	}
	return "", fmt.Errorf("no authorization server metadata for %s at %q", prm.AuthorizationServers[0], asMetadataURLs(prm.AuthorizationServers[0]))
}

// asMetadataURLs lists where an issuer's metadata may be: RFC 8414 and OpenID Connect
// path-inserted, then OpenID Connect appended.
func asMetadataURLs(issuer string) []string {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil
	}
	p := strings.TrimSuffix(u.Path, "/")
	origin := u.Scheme + "://" + u.Host
	urls := []string{origin + "/.well-known/oauth-authorization-server" + p, origin + "/.well-known/openid-configuration" + p}
	if p != "" {
		urls = append(urls, origin+p+"/.well-known/openid-configuration")
	}
	return urls
}

func clientToken(ctx context.Context, tokenURL, id, secret, resource string) (string, error) {
	cc := clientcredentials.Config{
		ClientID:       id,
		ClientSecret:   secret,
		TokenURL:       tokenURL,
		AuthStyle:      oauth2.AuthStyleInHeader,
		EndpointParams: url.Values{"resource": {resource}},
	}
	tok, err := cc.Token(ctx)
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

// checkClaims decodes (without verifying: the gateway does that) a token's payload and checks
// the claims the test depends on.
func checkClaims(token, issuer, aud string, live bool) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return fmt.Errorf("not a JWS compact token (%d segments)", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	var claims struct {
		Iss string          `json:"iss"`
		Aud json.RawMessage `json:"aud"`
		Exp int64           `json:"exp"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	var auds []string
	if err := json.Unmarshal(claims.Aud, &auds); err != nil {
		var one string
		if err := json.Unmarshal(claims.Aud, &one); err != nil {
			return fmt.Errorf("aud %s is neither a string nor an array", claims.Aud)
		}
		auds = []string{one}
	}
	switch now := time.Now().Unix(); {
	case claims.Iss != issuer:
		return fmt.Errorf("iss %q, want %q", claims.Iss, issuer)
	case !slices.Equal(auds, []string{aud}):
		return fmt.Errorf("aud %q, want %q", auds, aud)
	case live && claims.Exp <= now:
		return fmt.Errorf("exp %d is not in the future", claims.Exp)
	case !live && claims.Exp > now-120:
		return fmt.Errorf("exp %d is not more than the gateway's clock skew in the past", claims.Exp)
	}
	return nil
}

// recorder adds the bearer token to every request and keeps the last tools/call it sent.
type recorder struct {
	base  http.RoundTripper
	token string

	mu       sync.Mutex
	call     *http.Request
	callBody []byte
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+r.token)
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(io.LimitReader(req.Body, maxBody)); err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	r.mu.Lock()
	if bytes.Contains(body, []byte(`"method":"tools/call"`)) {
		r.call, r.callBody = req, body
	}
	r.mu.Unlock()
	return r.base.RoundTrip(req)
}

// fromAddress is an HTTP transport whose connections come from the local address ip.
func fromAddress(ip net.IP) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: ip}}).DialContext
	return t
}

func callInEra(ctx context.Context, o options, era, good string, refused map[string]string, from net.IP) error {
	rec := &recorder{base: http.DefaultTransport, token: good}
	client := mcp.NewClient(&mcp.Implementation{Name: "mcpguard-idp-interop", Version: "1.0.0"}, nil)
	transport := &mcp.StreamableClientTransport{
		Endpoint:   o.mcpURL,
		HTTPClient: &http.Client{Transport: rec, Timeout: 20 * time.Second},
		MaxRetries: -1,
	}
	cs, err := client.Connect(ctx, transport, &mcp.ClientSessionOptions{ProtocolVersion: era})
	if err != nil {
		return fmt.Errorf("connect with the IdP's token: %w", err)
	}
	defer cs.Close()
	if got := cs.InitializeResult().ProtocolVersion; got != era {
		return fmt.Errorf("negotiated protocol %q, want %q", got, era)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: o.tool, Arguments: map[string]any{"symbol": o.symbol}})
	if err != nil {
		return fmt.Errorf("tools/call %s: %w", o.tool, err)
	}
	text := resultText(res)
	if res.IsError || !strings.Contains(text, `"symbol":"`+o.symbol+`"`) || !strings.Contains(text, `"recommendation":`) {
		return fmt.Errorf("tools/call %s returned isError=%v, text %q; want the analysis of %s", o.tool, res.IsError, text, o.symbol)
	}
	okf("[%s] go-sdk client with the IdP's token: %s {symbol: %s} -> %s", era, o.tool, o.symbol, clip(text, 160))

	rec.mu.Lock()
	call, body := rec.call, rec.callBody
	rec.mu.Unlock()
	if call == nil {
		return errors.New("the go-sdk client sent no tools/call the recorder saw")
	}
	// Replay the very request the go-sdk client sent (same session in the legacy era, same
	// headers), changing only the argument, which marks the replay in the upstream's record,
	// and the token.
	quoted := []byte(`"` + o.symbol + `"`)
	if bytes.Count(body, quoted) != 1 {
		return fmt.Errorf("the recorded tools/call does not hold the symbol exactly once: %s", body)
	}
	refusedTransport := fromAddress(from)
	defer refusedTransport.CloseIdleConnections()
	replay := func(marker, token string) (int, http.Header, []byte, error) {
		hdr := call.Header.Clone()
		hdr.Set("Authorization", "Bearer "+token)
		c := &http.Client{Timeout: 20 * time.Second}
		if token != good {
			c.Transport = refusedTransport
		}
		return post(ctx, c, o.mcpURL, hdr, bytes.Replace(body, quoted, []byte(`"`+marker+`"`), 1))
	}
	status, _, resp, err := replay("CONTROL", good)
	if err != nil {
		return err
	}
	if status != http.StatusOK || !bytes.Contains(resp, []byte(`CONTROL`)) {
		return fmt.Errorf("control replay with the good token: %d %s; want 200 with the CONTROL analysis", status, clip(string(resp), 300))
	}
	okf("[%s] control: the same tools/call replayed with the good token -> 200", era)
	for _, marker := range []string{"WRONGAUD", "EXPIRED"} {
		status, hdr, resp, err := replay(marker, refused[marker])
		if err != nil {
			return err
		}
		challenge := hdr.Get("WWW-Authenticate")
		if status != http.StatusUnauthorized || !strings.Contains(challenge, `error="invalid_token"`) || !strings.Contains(challenge, `resource_metadata="`) {
			return fmt.Errorf("replay with the %s token: %d, WWW-Authenticate %q, body %s; want 401 invalid_token with resource_metadata", marker, status, challenge, clip(string(resp), 300))
		}
		if bytes.Contains(resp, []byte(marker)) {
			return fmt.Errorf("replay with the %s token: the refusal echoes the request: %s", marker, clip(string(resp), 300))
		}
		okf("[%s] the same tools/call with the %s token (from %s) -> 401, WWW-Authenticate %s", era, marker, from, challenge)
	}
	// The go-sdk client with a refused token cannot connect at all.
	for _, marker := range []string{"WRONGAUD", "EXPIRED"} {
		bad := &mcp.StreamableClientTransport{
			Endpoint:   o.mcpURL,
			HTTPClient: &http.Client{Transport: &recorder{base: refusedTransport, token: refused[marker]}, Timeout: 20 * time.Second},
			MaxRetries: -1,
		}
		cs, err := client.Connect(ctx, bad, &mcp.ClientSessionOptions{ProtocolVersion: era})
		if err == nil {
			cs.Close()
			return fmt.Errorf("the go-sdk client connected with the %s token", marker)
		}
		okf("[%s] go-sdk client with the %s token cannot connect: %s", era, marker, clip(err.Error(), 160))
	}
	return nil
}

func resultText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

func post(ctx context.Context, c *http.Client, target string, hdr http.Header, body []byte) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	if hdr != nil {
		req.Header = hdr
	}
	req.Header.Set("Content-Type", "application/json")
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json, text/event-stream")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("POST %s: %w", target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("POST %s: reading the response: %w", target, err)
	}
	return resp.StatusCode, resp.Header, b, nil
}

func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
