package authn

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCanonicalResource(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"https://GW.Example.com/mcp/", "https://gw.example.com/mcp", true},
		{"https://gw.example.com", "https://gw.example.com", true},
		{"https://gw.example.com:8443/mcp", "https://gw.example.com:8443/mcp", true},
		{"http://127.0.0.1:8080/mcp", "http://127.0.0.1:8080/mcp", true},
		{"http://gw.example.com/mcp", "", false},
		{"https://gw.example.com/mcp#frag", "", false},
		{"https://gw.example.com/mcp?x=1", "", false},
		{"https://user@gw.example.com/mcp", "", false},
		{"/mcp", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := CanonicalResource(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("CanonicalResource(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestMetadataHandlerServesBothPaths(t *testing.T) {
	t.Parallel()
	h, err := MetadataHandler(ResourceMetadata{
		Resource:             "https://gw.example.com/mcp",
		AuthorizationServers: []string{"https://idp.example.com/realms/main"},
		ScopesSupported:      []string{"mcp:tools"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"resource":"https://gw.example.com/mcp","authorization_servers":["https://idp.example.com/realms/main"],"scopes_supported":["mcp:tools"],"bearer_methods_supported":["header"]}`
	if got := MetadataURL("https://gw.example.com/mcp"); got != wantMetadataURL {
		t.Errorf("MetadataURL = %q, want %q", got, wantMetadataURL)
	}
	tests := []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/.well-known/oauth-protected-resource/mcp", 200, want},
		{"GET", "/.well-known/oauth-protected-resource", 200, want},
		{"HEAD", "/.well-known/oauth-protected-resource/mcp", 200, ""},
		{"POST", "/.well-known/oauth-protected-resource/mcp", 405, "method not allowed\n"},
		{"GET", "/.well-known/oauth-protected-resource/other", 404, "404 page not found\n"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
			body, _ := io.ReadAll(w.Body)
			if w.Code != tt.status || string(body) != tt.body {
				t.Errorf("got %d %s, want %d %s", w.Code, body, tt.status, tt.body)
			}
			if tt.status == 200 {
				if diff := cmp.Diff([]string{"application/json", "*"}, []string{w.Header().Get("Content-Type"), w.Header().Get("Access-Control-Allow-Origin")}); diff != "" {
					t.Errorf("headers (-want +got):\n%s", diff)
				}
			}
		})
	}
	if diff := cmp.Diff([]string{"/.well-known/oauth-protected-resource"}, MetadataPaths("https://gw.example.com")); diff != "" {
		t.Errorf("MetadataPaths for a bare host (-want +got):\n%s", diff)
	}
	_ = http.MethodGet
}

func TestChallengeQuotesValues(t *testing.T) {
	t.Parallel()
	c := Challenge{Error: "invalid_token", Description: `say "hi"\` + "\n", Scopes: []string{"a", "b"}, ResourceMetadata: "https://x/.well-known/oauth-protected-resource"}
	want := `Bearer error="invalid_token", error_description="say \"hi\"\\", scope="a b", resource_metadata="https://x/.well-known/oauth-protected-resource"`
	if got := c.String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
