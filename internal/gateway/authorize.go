package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/policy"
)

// anonymous is the principal of a request when no authentication is configured (or on stdio):
// a policy can bind roles to it with `principals: [anonymous]`.
const anonymous = "anonymous"

// setupPolicy loads the role policy; the first load must succeed.
func (g *Gateway) setupPolicy(path string) error {
	l, err := policy.NewLoader(path, &policy.LoaderOptions{
		Logger: g.logger,
		OnReload: func(_ *policy.Policy, err error) {
			rec := &audit.Record{Kind: audit.KindPolicyReload, Detail: []byte(`{"file":` + string(jsonrpc.Quote(path)) + `}`), Decision: audit.DecisionAllow}
			if err != nil {
				g.logger.Error("policy rejected; the last good policy stays in force", "file", path, "err", err)
				rec.Decision, rec.Reasons = audit.DecisionDeny, []string{err.Error()}
			} else {
				g.logger.Info("policy reloaded", "file", path)
			}
			if aerr := g.record(context.Background(), &caller{}, rec); aerr != nil {
				g.logger.Error("audit record of a policy reload not written", "err", aerr)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("policy_file: %w", err)
	}
	g.policy = l
	return nil
}

// ReloadPolicy re-reads the policy file (SIGHUP). An invalid file leaves the policy in force
// unchanged and is reported with every problem.
func (g *Gateway) ReloadPolicy() error {
	if g.policy == nil {
		return nil
	}
	return g.policy.Reload()
}

// principalOf is who a request comes from, as the policy sees it.
// authMethodOf names how the request's principal authenticated ("none" without authentication).
func authMethodOf(r *http.Request) string {
	if p, ok := authn.PrincipalFrom(r.Context()); ok {
		return string(p.Method)
	}
	return "none"
}

func principalOf(r *http.Request) (policy.Principal, netip.Addr) {
	var src netip.Addr
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		src, _ = netip.ParseAddr(host)
	}
	p, ok := authn.PrincipalFrom(r.Context())
	if !ok {
		return policy.Principal{Subject: anonymous}, src.Unmap()
	}
	return policy.Principal{Subject: p.Subject, Roles: p.Roles, Scopes: p.Scopes}, src.Unmap()
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

// authorize asks the policy whether the caller may make this call. It returns the rule that
// allowed it, or the denial to send — 403 with -31001, "denied by policy", the rule and the
// reasons — which it has also recorded in the audit log.
func (g *Gateway) authorize(ctx context.Context, c *caller, kind policy.Kind, name, method string, args []byte) (string, *reply) {
	if g.policy == nil {
		return "", nil
	}
	d := g.policy.Policy().Decide(c.principal, policy.Call{Kind: kind, Name: name, Arguments: args, Time: g.now(), SourceIP: c.sourceIP})
	if d.Allow && d.RequireApproval != nil {
		if !g.adminEnabled {
			// Without the admin API nobody can approve: refuse, never let the call through.
			d.Allow = false
			d.Reasons = append(d.Reasons, fmt.Sprintf("requires approval by %s, and no admin API is configured to approve it (admin.listen)", d.RequireApproval.ApproverRole))
		} else {
			g.logger.Info("policy decision", "principal", c.principal.Subject, "kind", kind.String(), "name", name, "allow", true, "rule", d.Rule, "approval", d.RequireApproval.ApproverRole)
			return d.Rule, g.holdForApproval(ctx, c, name, d.Rule, d.RequireApproval, args)
		}
	}
	g.logger.Info("policy decision", "principal", c.principal.Subject, "kind", kind.String(), "name", name,
		"allow", d.Allow, "rule", d.Rule, "reasons", strings.Join(d.Reasons, "; "))
	if d.Allow {
		return d.Rule, nil
	}
	g.recordDenial(ctx, c, method, name, d.Rule, d.Reasons, args)
	data := []byte(`{}`)
	data = jsonrpc.SetMember(data, "rule", jsonrpc.Quote(d.Rule))
	reasons := []byte{'['}
	for i, r := range d.Reasons {
		if i > 0 {
			reasons = append(reasons, ',')
		}
		reasons = jsonrpc.AppendQuote(reasons, r)
	}
	data = jsonrpc.SetMember(data, "reasons", append(reasons, ']'))
	msg := "denied by policy (rule " + d.Rule + ")"
	if len(d.Reasons) > 0 {
		msg += ": " + strings.Join(d.Reasons, "; ")
	}
	return d.Rule, &reply{err: &jsonrpc.Error{Code: mcpguard.CodeDeniedByPolicy, Message: msg, Data: data}, status: http.StatusForbidden}
}

// visible reports whether the caller may see a listed item; lists show only what the caller
// could use.
func (g *Gateway) visible(c *caller, kind policy.Kind, name string) bool {
	return g.policy == nil || g.policy.Policy().Visible(c.principal, kind, name)
}
