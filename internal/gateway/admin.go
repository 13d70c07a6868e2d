package gateway

import (
	"context"
	"net/http"

	"github.com/mcpguard/mcpguard/internal/admin"
	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/authn"
)

// AdminHandler is the admin API (internal/admin), for its own listener, over this gateway's
// authentication, audit log, Host and Origin checks and held calls.
func (g *Gateway) AdminHandler() http.Handler {
	return withHSTS(admin.NewHandler(adminGateway{g}, g.approvals, &admin.Options{Logger: g.logger, Now: g.now, OIDC: g.oidcLogin}))
}

// adminGateway is what the admin API reaches of the gateway.
type adminGateway struct{ g *Gateway }

// Authenticate accepts what the MCP endpoint accepts, plus operator sessions.
func (a adminGateway) Authenticate(r *http.Request) (*authn.Principal, error) {
	if a.g.adminAuthn == nil {
		return nil, admin.ErrNoAuthentication
	}
	return a.g.adminAuthn.Authenticate(r)
}

// Record appends the act through the gateway's audit log, with the actor's address.
func (a adminGateway) Record(ctx context.Context, r *http.Request, actor *authn.Principal, authMethod string, rec *audit.Record) error {
	c := &caller{authMethod: authMethod, principal: actor}
	_, c.sourceIP = principalOf(r)
	return a.g.record(ctx, c, rec)
}

func (a adminGateway) HostOK(host string) bool     { return a.g.hostOK(host) }
func (a adminGateway) OriginOK(origin string) bool { return a.g.originOK(origin) }
