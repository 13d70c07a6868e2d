package authn

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-json-experiment/json"

	"github.com/mcpguard/mcpguard/internal/oauthclient"
)

// WellKnownPath is where RFC 9728 Protected Resource Metadata is served.
const WellKnownPath = "/.well-known/oauth-protected-resource"

// CanonicalResource checks that s is a canonical resource URI as RFC 8707 and the MCP
// authorization specification use it — an absolute https URI (http only on loopback) with no
// fragment, query or credentials — and returns it with the scheme and host in lower case and no
// trailing slash. Tokens must name exactly this string in aud.
func CanonicalResource(s string) (string, error) {
	if s == "" {
		return "", errors.New("the gateway's canonical URI is required (for example https://mcp.example.com/mcp)")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("canonical URI %q: %w", truncate(s), err)
	}
	switch {
	case u.Scheme == "" || u.Host == "":
		return "", fmt.Errorf("canonical URI %q must be absolute", truncate(s))
	case u.Fragment != "" || strings.Contains(s, "#"):
		return "", fmt.Errorf("canonical URI %q must not have a fragment", truncate(s))
	case u.RawQuery != "" || u.ForceQuery:
		return "", fmt.Errorf("canonical URI %q must not have a query", truncate(s))
	case u.User != nil:
		return "", fmt.Errorf("canonical URI %q must not carry credentials", truncate(s))
	}
	if err := oauthclient.CheckEndpoint(s); err != nil {
		return "", fmt.Errorf("canonical URI: %w", err)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// MetadataURL returns the URL of the metadata for resource (RFC 9728 section 3.1): the
// well-known segment inserted between the host and the resource's path.
func MetadataURL(resource string) string {
	u, err := url.Parse(resource)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host + MetadataPath(resource)
}

// MetadataPath returns the path-inserted well-known path for resource, e.g.
// "/.well-known/oauth-protected-resource/mcp" for "https://gw.example.com/mcp".
func MetadataPath(resource string) string {
	u, err := url.Parse(resource)
	if err != nil {
		return WellKnownPath
	}
	return WellKnownPath + strings.TrimSuffix(u.EscapedPath(), "/")
}

// ResourceMetadata is the RFC 9728 document describing the gateway as a protected resource.
type ResourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers,omitempty"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name,omitempty"`
	ResourceDocumentation  string   `json:"resource_documentation,omitempty"`
}

// MetadataHandler serves meta at both WellKnownPath and the path-inserted form for its resource
// (GET and HEAD; 404 for other paths). The document is public and may be fetched by browser
// clients, so it allows any origin. Mount it on both paths (MetadataPaths).
func MetadataHandler(meta ResourceMetadata) (http.Handler, error) {
	if _, err := CanonicalResource(meta.Resource); err != nil {
		return nil, err
	}
	if len(meta.BearerMethodsSupported) == 0 {
		meta.BearerMethodsSupported = []string{"header"}
	}
	body, err := json.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("encode resource metadata: %w", err)
	}
	paths := MetadataPaths(meta.Resource)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		found := false
		for _, p := range paths {
			found = found || r.URL.Path == p
		}
		if !found {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=3600")
		h.Set("Access-Control-Allow-Origin", "*")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
	}), nil
}

// MetadataPaths lists the paths the metadata for resource is served on: the path-inserted form
// and, when different, the bare well-known path.
func MetadataPaths(resource string) []string {
	p := MetadataPath(resource)
	if p == WellKnownPath {
		return []string{p}
	}
	return []string{p, WellKnownPath}
}

// Challenge builds a WWW-Authenticate value for the Bearer scheme (RFC 6750 section 3).
type Challenge struct {
	ResourceMetadata string   // the metadata URL (RFC 9728 section 5.1)
	Error            string   // "", "invalid_request", "invalid_token" or "insufficient_scope"
	Description      string   // a fixed, public text: never the internal reason
	Scopes           []string // scopes the request needs, when useful
}

// String renders the challenge.
func (c Challenge) String() string {
	var b strings.Builder
	b.WriteString("Bearer")
	sep := " "
	param := func(name, value string) {
		if value == "" {
			return
		}
		b.WriteString(sep)
		b.WriteString(name)
		b.WriteString(`="`)
		b.WriteString(quote(value))
		b.WriteString(`"`)
		sep = ", "
	}
	param("error", c.Error)
	param("error_description", c.Description)
	param("scope", strings.Join(c.Scopes, " "))
	param("resource_metadata", c.ResourceMetadata)
	return b.String()
}

// quote escapes a value for an auth-param quoted-string and drops control characters.
func quote(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
