package gateway

import (
	"context"
	"fmt"
	"net/http"

	"github.com/mcpguard/mcpguard/internal/admin"
	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/policy"
)

// holdForApproval keeps a call waiting for a human decision, taken through the admin API. It
// returns nil when approved, or the refusal to send: denied by the approver, or the approval
// timed out. The call never reaches the upstream unless approved.
func (g *Gateway) holdForApproval(ctx context.Context, c *caller, tool, rule string, need *policy.Approval, args []byte) *reply {
	shown := args
	if g.auditRedactor != nil && len(args) > 0 {
		shown, _ = g.auditRedactor.Value(args) // an approver sees the call as the audit log does
	}
	p, err := g.approvals.Hold(admin.Hold{
		Principal: c.principal.Subject, Tool: tool, Arguments: shown, Rule: rule, ApproverRole: need.ApproverRole, Timeout: need.Timeout,
	})
	if err != nil {
		return &reply{err: jsonrpc.NewError(mcpguard.CodeGatewayOverloaded, "too many calls are waiting for approval"), status: http.StatusServiceUnavailable}
	}
	g.logger.Info("call held for approval", "approval", p.ID, "principal", p.Principal, "tool", tool, "approver_role", need.ApproverRole, "timeout", p.Expires.Sub(p.Requested))

	d := g.approvals.Wait(ctx, p)
	rec := &audit.Record{Kind: audit.KindApproval, RequestID: p.ID, Tool: tool, Rule: rule, Decision: audit.DecisionDeny,
		Reasons: []string{d.Reason}, Detail: []byte(`{"approver":` + string(jsonrpc.Quote(d.By)) + `,"approver_role":` + string(jsonrpc.Quote(need.ApproverRole)) + `}`)}
	if d.Approve {
		rec.Decision = audit.DecisionAllow
	}
	if err := g.record(context.WithoutCancel(ctx), c, rec); err != nil {
		g.logger.Error("audit record of an approval decision not written", "err", err, "approval", p.ID)
		if d.Approve {
			return &reply{err: jsonrpc.NewError(mcpguard.CodeAuditUnavailable, "the approval could not be recorded, so the call was not forwarded: retry later"), status: http.StatusServiceUnavailable}
		}
	}
	if d.Approve {
		g.logger.Info("call approved", "approval", p.ID, "by", d.By)
		return nil
	}
	msg := fmt.Sprintf("denied by policy (rule %s): approval %s refused: %s", rule, p.ID, d.Reason)
	if d.By != "" {
		msg = fmt.Sprintf("denied by policy (rule %s): %s refused approval %s: %s", rule, d.By, p.ID, d.Reason)
	}
	return &reply{err: &jsonrpc.Error{Code: mcpguard.CodeDeniedByPolicy, Message: msg}, status: http.StatusForbidden}
}
