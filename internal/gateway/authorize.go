package gateway

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/policy"
)

// anonymous is the principal of a request when no authentication is configured (or on stdio):
// a policy can bind roles to it with `principals: [anonymous]`.
const anonymous = "anonymous"

// policyRecordTimeout bounds the wait for the audit record of a policy reload.
const policyRecordTimeout = 10 * time.Second

// policyReloaded logs and records an attempt to reload the policy file (Parts.Hooks); a non-nil
// err rejected the new file, and the last good policy stays in force.
func (g *Gateway) policyReloaded(path string, err error) {
	rec := &audit.Record{Kind: audit.KindPolicyReload, Detail: []byte(`{"file":` + string(jsonrpc.Quote(path)) + `}`), Decision: audit.DecisionAllow}
	if err != nil {
		g.logger.Error("policy rejected; the last good policy stays in force", "file", path, "err", err)
		rec.Decision, rec.Reasons = audit.DecisionDeny, []string{err.Error()}
	} else {
		g.logger.Info("policy reloaded", "file", path)
	}
	ctx, cancel := context.WithTimeout(g.base, policyRecordTimeout)
	defer cancel()
	if aerr := g.record(ctx, &caller{}, rec); aerr != nil {
		g.logger.Error("audit record of a policy reload not written", "err", aerr)
	}
}

// ReloadPolicy re-reads the policy file (SIGHUP). An invalid file leaves the policy in force
// unchanged and is reported with every problem.
func (g *Gateway) ReloadPolicy() error {
	if g.policy == nil {
		return nil
	}
	return g.policy.Reload()
}

// authMethodOf names how the request's principal authenticated ("none" without authentication).
func authMethodOf(r *http.Request) string {
	if p, ok := authn.PrincipalFrom(r.Context()); ok {
		return string(p.Method)
	}
	return "none"
}

// anonymousPrincipal is the principal of every unauthenticated request. It is shared: never
// modify it.
var anonymousPrincipal = &mcpguard.Principal{Subject: anonymous}

// principalOf is who a request comes from and from where: the principal the authenticator
// produced, itself (the policy sees every field, groups and claims included), or
// anonymousPrincipal. Callers must not modify it.
func principalOf(r *http.Request) (*mcpguard.Principal, netip.Addr) {
	var src netip.Addr
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		src, _ = netip.ParseAddr(host)
	}
	p, ok := authn.PrincipalFrom(r.Context())
	if !ok {
		return anonymousPrincipal, src.Unmap()
	}
	return p, src.Unmap()
}

// ownerOf identifies the authenticated principal that may use a legacy session: the session is
// bound to whoever opened it.
func ownerOf(r *http.Request) string {
	p, ok := authn.PrincipalFrom(r.Context())
	if !ok {
		return ""
	}
	return string(p.Method) + "\x00" + p.Issuer + "\x00" + p.Subject + "\x00" + p.ClientID
}

// visible reports whether the caller may see a listed item; lists show only what the caller
// could use.
func (g *Gateway) visible(c *caller, kind policy.Kind, name string) bool {
	return g.policy == nil || g.policy.Policy().Visible(*c.principal, kind, name)
}
