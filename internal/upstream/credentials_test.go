package upstream

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/oauthclient"
)

// protectedServer is a go-sdk MCP server behind a bearer check, with its Protected Resource
// Metadata and an authorization server that issues tokens for the client credentials grant.
type protectedServer struct {
	mcp, as *httptest.Server
	secret  string
	// assertionKey, when set, makes the authorization server authenticate the client by a
	// client assertion (private_key_jwt) for its issuer, verified with this public key.
	assertionKey crypto.PublicKey

	mu        sync.Mutex
	issued    map[string]bool
	tokenReqs int
	seen      []string // Authorization headers of the MCP requests
}

func newProtectedServer(t *testing.T) *protectedServer {
	t.Helper()
	p := &protectedServer{secret: "cc-s3cret", issued: map[string]bool{}}
	s := sdk.NewServer(&sdk.Implementation{Name: "protected", Version: "1.0.0"}, nil)
	sdk.AddTool(s, &sdk.Tool{Name: "echo"}, func(_ context.Context, _ *sdk.CallToolRequest, args struct {
		Text string `json:"text"`
	}) (*sdk.CallToolResult, any, error) {
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: args.Text}}}, nil, nil
	})
	handler := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, nil)
	sseHandler := sdk.NewSSEHandler(func(*http.Request) *sdk.Server { return s }, nil)

	as := http.NewServeMux()
	as.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": p.as.URL, "token_endpoint": p.as.URL + "/token"})
	})
	as.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, _ := r.BasicAuth()
		if p.assertionKey != nil {
			id, secret = p.verifyAssertion(r), p.secret
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		p.tokenReqs++
		if res := r.PostFormValue("resource"); id != "gateway" || secret != p.secret || (res != p.mcp.URL+"/mcp" && res != p.mcp.URL+"/sse") {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"invalid_client"}`)
			return
		}
		tok := fmt.Sprintf("upstream-token-%d", p.tokenReqs)
		p.issued[tok] = true
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, tok)
	})
	p.as = httptest.NewServer(as)
	t.Cleanup(p.as.Close)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"resource": p.mcp.URL + "/mcp", "authorization_servers": []string{p.as.URL}})
	})
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/sse", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"resource": p.mcp.URL + "/sse", "authorization_servers": []string{p.as.URL}})
	})
	guard := func(path string, next http.Handler) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			auth := r.Header.Get("Authorization")
			p.mu.Lock()
			p.seen = append(p.seen, auth)
			ok := p.issued[strings.TrimPrefix(auth, "Bearer ")]
			p.mu.Unlock()
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", resource_metadata="`+p.mcp.URL+`/.well-known/oauth-protected-resource`+path+`"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		}
	}
	mux.HandleFunc("/sse", guard("/sse", sseHandler))
	mux.HandleFunc("/mcp", guard("/mcp", handler))
	p.mcp = httptest.NewServer(mux)
	t.Cleanup(p.mcp.Close)
	return p
}

// verifyAssertion returns the client id a token request's client assertion proves, or "".
func (p *protectedServer) verifyAssertion(r *http.Request) string {
	if r.PostFormValue("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" || r.PostFormValue("client_secret") != "" {
		return ""
	}
	tok, err := jwt.Parse(r.PostFormValue("client_assertion"), func(*jwt.Token) (any, error) { return p.assertionKey, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience(p.as.URL), jwt.WithExpirationRequired())
	if err != nil {
		return ""
	}
	iss, _ := tok.Claims.GetIssuer()
	sub, _ := tok.Claims.GetSubject()
	if iss != sub || iss != r.PostFormValue("client_id") {
		return ""
	}
	return iss
}

func startCredentialed(t *testing.T, p *protectedServer, cc *oauthclient.Config) *Upstream {
	t.Helper()
	return startUpstream(t, Spec{Name: "protected", Timeout: 10 * time.Second, HTTP: &HTTPSpec{URL: p.mcp.URL + "/mcp", Era: mcpguard.EraLegacy, ClientCredentials: cc}})
}

func startUpstream(t *testing.T, spec Spec) *Upstream {
	t.Helper()
	up, err := New(spec, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	up.Start(t.Context())
	t.Cleanup(func() { up.Close() })
	return up
}

func TestClientCredentialsDiscoveredFromUpstream(t *testing.T) {
	p := newProtectedServer(t)
	up := startCredentialed(t, p, &oauthclient.Config{ClientID: "gateway", ClientSecret: p.secret, AuthMethod: oauthclient.AuthBasic})
	for i := range 3 {
		resp, err := up.Call(t.Context(), &Request{ID: jsonrpc.IntID(int64(i + 1)), Method: "tools/call", Params: []byte(`{"name":"echo","arguments":{"text":"hi"}}`)}, nil)
		if err != nil || resp.Error != nil || !strings.Contains(string(resp.Result), `"hi"`) {
			t.Fatalf("call %d: %v, %+v", i, err, resp)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tokenReqs != 1 {
		t.Errorf("token requests = %d; want 1", p.tokenReqs)
	}
	if p.seen[0] != "" {
		t.Errorf("first request carried %q; discovery starts without a token", p.seen[0])
	}
	for i, a := range p.seen[1:] {
		if a != "Bearer upstream-token-1" {
			t.Errorf("request %d carried %q; want the upstream's own token", i+1, a)
		}
	}
}

func TestClientCredentialsPrivateKeyJWT(t *testing.T) {
	p := newProtectedServer(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.assertionKey = key.Public()
	up := startCredentialed(t, p, &oauthclient.Config{ClientID: "gateway", AuthMethod: oauthclient.AuthPrivateKeyJWT, PrivateKey: key, AssertionAudience: oauthclient.AudienceIssuer})
	for i := range 2 {
		resp, err := up.Call(t.Context(), &Request{ID: jsonrpc.IntID(int64(i + 1)), Method: "tools/call", Params: []byte(`{"name":"echo","arguments":{"text":"signed"}}`)}, nil)
		if err != nil || resp.Error != nil || !strings.Contains(string(resp.Result), `"signed"`) {
			t.Fatalf("call %d: %v, %+v", i, err, resp)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tokenReqs != 1 {
		t.Errorf("token requests = %d; want 1", p.tokenReqs)
	}
}

func TestClientCredentialsWrongSecretIsUpstreamDown(t *testing.T) {
	p := newProtectedServer(t)
	up := startCredentialed(t, p, &oauthclient.Config{ClientID: "gateway", ClientSecret: "wrong", TokenURL: p.as.URL + "/token", AuthMethod: oauthclient.AuthBasic})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_, err := up.Call(ctx, &Request{ID: jsonrpc.IntID(1), Method: "tools/call", Params: []byte(`{"name":"echo","arguments":{"text":"hi"}}`)}, nil)
	if !errors.Is(err, mcpguard.ErrUpstreamDown) || !strings.Contains(err.Error(), "invalid_client") {
		t.Errorf("err = %v; want ErrUpstreamDown saying invalid_client", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.seen) != 0 {
		t.Errorf("the upstream saw %d requests; with a refused secret it must see none", len(p.seen))
	}
}

func TestClientCredentialsOverSSE(t *testing.T) {
	p := newProtectedServer(t)
	up := startUpstream(t, Spec{Name: "protected", Timeout: 10 * time.Second, SSE: &SSESpec{
		URL:               p.mcp.URL + "/sse",
		ClientCredentials: &oauthclient.Config{ClientID: "gateway", ClientSecret: p.secret, AuthMethod: oauthclient.AuthBasic},
	}})
	resp, err := up.Call(t.Context(), &Request{ID: jsonrpc.IntID(1), Method: "tools/call", Params: []byte(`{"name":"echo","arguments":{"text":"over sse"}}`)}, nil)
	if err != nil || resp.Error != nil || !strings.Contains(string(resp.Result), `"over sse"`) {
		t.Fatalf("call: %v, %+v", err, resp)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tokenReqs != 1 || p.seen[0] != "" {
		t.Errorf("token requests %d, first request's Authorization %q; want 1 and none (discovery)", p.tokenReqs, p.seen[0])
	}
	for i, a := range p.seen[1:] {
		if a != "Bearer upstream-token-1" {
			t.Errorf("request %d (stream or message) carried %q; want the upstream's own token", i+1, a)
		}
	}
}
