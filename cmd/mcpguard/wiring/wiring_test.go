package wiring

import (
	"testing"

	"github.com/mcpguard/mcpguard/internal/admin"
	"github.com/mcpguard/mcpguard/internal/config"
)

// TestOIDCCallbackPathsAgree: the configuration accepts only redirect URLs of the path the admin
// API serves the callback at; if the two drifted, every operator login would end in a 404.
func TestOIDCCallbackPathsAgree(t *testing.T) {
	if admin.OIDCCallbackPath != config.OIDCCallbackPath {
		t.Fatalf("admin serves the OIDC callback at %q, the configuration requires redirect_url path %q", admin.OIDCCallbackPath, config.OIDCCallbackPath)
	}
}
