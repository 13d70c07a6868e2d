package authn

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// TestClientDiscoversTheIdPFromThe401 follows the path an MCP client takes, with the official
// go-sdk's own parsers: request without a token → 401 → resource_metadata → Protected Resource
// Metadata → the authorization server's metadata; then the request with a token passes.
func TestClientDiscoversTheIdPFromThe401(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	idp := newIdP(t, "/realms/main")
	clk := newClock()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	resource := "http://" + ln.Addr().String() + "/mcp"
	v, err := NewValidator(idp.issuer, resource, &ValidatorOptions{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAuthenticator(resource, v, &AuthenticatorOptions{RequiredScopes: []string{"mcp:tools"}})
	if err != nil {
		t.Fatal(err)
	}
	meta, err := MetadataHandler(ResourceMetadata{Resource: resource, AuthorizationServers: []string{idp.issuer}, ScopesSupported: []string{"mcp:tools"}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, p := range MetadataPaths(resource) {
		mux.Handle(p, meta)
	}
	mux.Handle("/mcp", a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Error("Authorization reached the MCP handler")
		}
		w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
	})))
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()

	resp, err := http.Post(resource, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without a token: %d, want 401", resp.StatusCode)
	}
	challenges, err := oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate"))
	if err != nil || len(challenges) != 1 || challenges[0].Scheme != "bearer" {
		t.Fatalf("challenges %+v, %v", challenges, err)
	}
	if got := challenges[0].Params["scope"]; got != "mcp:tools" {
		t.Errorf("challenge scope %q", got)
	}
	prm, err := oauthex.GetProtectedResourceMetadata(ctx, challenges[0].Params["resource_metadata"], resource, http.DefaultClient)
	if err != nil {
		t.Fatalf("the SDK refused the metadata: %v", err)
	}
	if len(prm.AuthorizationServers) != 1 || prm.AuthorizationServers[0] != idp.issuer {
		t.Fatalf("authorization servers %v, want [%s]", prm.AuthorizationServers, idp.issuer)
	}
	urls, _ := discoveryURLs(prm.AuthorizationServers[0])
	asm, err := oauthex.GetAuthServerMeta(ctx, urls[1], idp.issuer, http.DefaultClient)
	if err != nil || asm == nil || asm.TokenEndpoint == "" {
		t.Fatalf("authorization server metadata %+v, %v", asm, err)
	}

	c := idp.claims(clk.Now())
	c["aud"] = resource
	req, _ := http.NewRequest(http.MethodPost, resource, strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+sign(t, jwt.SigningMethodRS256, "rsa1", testRSA(), c))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with a token: %d, want 200", resp.StatusCode)
	}
}
