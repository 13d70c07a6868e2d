package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/mcpguard/mcpguard/internal/admin"
	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/contain"
	"github.com/mcpguard/mcpguard/internal/gateway/parts"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
)

// AdminHandler is the admin API (internal/admin), for its own listener, over this gateway's
// authentication, audit log, Host and Origin checks and held calls, and its metrics when
// configured.
func (g *Gateway) AdminHandler() http.Handler {
	opts := &admin.Options{Logger: g.logger, Now: g.now, OIDC: g.oidcLogin, Blocks: g.adminBlocks(), Subjects: g.subjects,
		Metrics: g.metrics.Handler(), MetricsNeedAuth: g.metricsNeedAuth}
	if g.console != nil {
		c, err := g.consoleHandler()
		if err != nil {
			// The wiring checked what the console needs; a console that cannot start answers
			// 503 rather than leaving the admin API down.
			g.logger.Error("operator console not started", "err", err)
			c = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, "the operator console could not start: see the gateway's log", http.StatusServiceUnavailable)
			})
		}
		opts.Console = c
	}
	h := admin.NewHandler(adminGateway{g}, g.approvals, opts)
	return withHSTS(g.admitAdmin(g.health(h)))
}

// consoleHandler is the operators' web console over this gateway's approvals, blocks, pins and
// audit log (internal/console).
func (g *Gateway) consoleHandler() (http.Handler, error) {
	d := parts.ConsoleDeps{Gateway: consoleGateway{adminGateway{g}}, Logger: g.logger, Now: g.now, Approvals: g.approvals, Blocks: g.adminBlocks(), Pins: g.pins}
	if g.audit != nil {
		d.AuditStats = g.audit.Stats
	}
	return g.console(d)
}

// consoleGateway is what the console reaches of the gateway: the admin API's, and the
// brute-force count of refused logins.
type consoleGateway struct{ adminGateway }

// AuthFailed counts a refused console login as a refused credential on the MCP endpoint
// counts (metrics, containment); its audit record is the console's.
func (c consoleGateway) AuthFailed(ctx context.Context, r *http.Request, rej *authn.Rejection) {
	c.g.metrics.AuthFailed(string(rej.Reason))
	c.g.authFailed(ctx, r, rej)
}

// admitAdmin refuses a client of the admin listener whose address is outside its networks or
// blocked, as admit does for the MCP listener.
func (g *Gateway) admitAdmin(next http.Handler) http.Handler {
	if g.guard == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := g.guard.Address(r)
		var ref *contain.Refusal
		if !contain.Admits(g.adminAllowed, g.adminDenied, addr) {
			ref = &contain.Refusal{Kind: contain.KindNetwork, Name: "admin.allowed_networks", Reason: "the client's address is not in the networks the admin listener serves"}
		} else if b, ok := g.guard.Blocked(contain.BlockAddress, addrKeyOf(addr)); ok {
			ref = &contain.Refusal{Kind: contain.KindBlocked, Name: b.Kind, Reason: "the client's address is blocked", RetryAfter: b.Expires.Sub(g.now())}
			if b.Expires.IsZero() {
				ref.RetryAfter = 0
			}
		}
		if ref != nil {
			g.recordContainment(r.Context(), &caller{principal: anonymousPrincipal, sourceIP: addr}, nil, ref)
			if s := ref.RetryAfterSeconds(); s > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(s))
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(ref.Status())
			_, _ = w.Write([]byte(`{"error":` + string(jsonrpc.Quote(ref.Reason)) + `}`))
			return
		}
		if g.guard.Forwarding() {
			r = r.WithContext(contain.WithClientAddr(r.Context(), addr))
		}
		next.ServeHTTP(w, r)
	})
}

// adminGateway is what the admin API reaches of the gateway.
type adminGateway struct{ g *Gateway }

// Authenticate accepts what the MCP endpoint accepts, plus operator sessions.
func (a adminGateway) Authenticate(r *http.Request) (*authn.Principal, error) {
	if a.g.adminAuthn == nil {
		return nil, admin.ErrNoAuthentication
	}
	p, err := a.g.adminAuthn.Authenticate(r)
	var rej *authn.Rejection
	if errors.As(err, &rej) {
		// Recorded and counted as on the MCP endpoint: guessing an operator session here is
		// brute force too.
		a.g.recordAuthFailure(r.Context(), r, http.StatusUnauthorized, rej)
	}
	return p, err
}

// Record appends the act through the gateway's audit log, with the actor's address.
func (a adminGateway) Record(ctx context.Context, r *http.Request, actor *authn.Principal, authMethod string, rec *audit.Record) error {
	c := &caller{authMethod: authMethod, principal: actor}
	_, c.sourceIP = principalOf(r)
	return a.g.record(ctx, c, rec)
}

func (a adminGateway) HostOK(host string) bool     { return a.g.hostOK(host) }
func (a adminGateway) OriginOK(origin string) bool { return a.g.originOK(origin) }

// adminBlocks is the containment's blocks for the admin API; nil without containment.
func (g *Gateway) adminBlocks() admin.Blocks {
	if g.guard == nil {
		return nil
	}
	return g.guard
}
