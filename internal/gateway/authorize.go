package gateway

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/contain"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/policy"
)

// anonymous is the principal of a request when no authentication is configured (or on stdio):
// a policy can bind roles to it with `principals: [anonymous]`.
const anonymous = "anonymous"

// policyRecordTimeout bounds the wait for the audit record of a policy reload.
const policyRecordTimeout = 10 * time.Second

// policyReloaded logs and records an attempt to reload the policy file with new content
// (Parts.Hooks): the file's SHA-256, the one it replaces and what changed, by role. A non-nil
// ev.Err rejected the new file, and the last good policy stays in force.
func (g *Gateway) policyReloaded(path string, ev policy.Reload) {
	detail := struct {
		File           string   `json:"file"`
		SHA256         string   `json:"sha256,omitempty"`
		PreviousSHA256 string   `json:"previous_sha256"`
		Change         string   `json:"change,omitempty"`
		RolesAdded     []string `json:"roles_added,omitempty"`
		RolesRemoved   []string `json:"roles_removed,omitempty"`
		RolesChanged   []string `json:"roles_changed,omitempty"`
	}{File: path, SHA256: ev.SHA256, PreviousSHA256: ev.Previous.SHA256()}
	rec := &audit.Record{Kind: audit.KindPolicyReload, Decision: audit.DecisionAllow}
	if ev.Err != nil {
		rec.Decision, rec.Reasons = audit.DecisionDeny, []string{ev.Err.Error()}
	} else {
		detail.Change = ev.Change.String()
		detail.RolesAdded, detail.RolesRemoved, detail.RolesChanged = ev.Change.Added, ev.Change.Removed, ev.Change.Changed
	}
	rec.Detail, _ = json.Marshal(detail)
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
	src, ok := contain.ClientAddrFrom(r.Context())
	if !ok {
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			src, _ = netip.ParseAddr(host)
		}
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
