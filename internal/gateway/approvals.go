package gateway

import (
	"context"
	"encoding/json"
	"errors"
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
// timed out. The call never reaches the upstream unless approved, and then only with the
// arguments whose digest the operator approved (args, the raw bytes the gateway forwards).
//
// The operator's decision is recorded in the audit log by the admin API before it reaches this
// call; an approval that expires is recorded here. A retry of a call whose client went away
// finds its approval again (admin.Approvals.Hold).
func (g *Gateway) holdForApproval(ctx context.Context, c *caller, tool, rule string, need *policy.Approval, args []byte) *reply {
	shown := args
	if g.auditRedactor != nil && len(args) > 0 {
		shown, _ = g.auditRedactor.Value(args) // an approver sees the call as the audit log does
	}
	digest := admin.ArgumentsDigest(args)
	p, err := g.approvals.Hold(ctx, admin.Hold{
		Requester: c.principal, Tool: tool, Arguments: shown, ArgumentsSHA256: digest,
		Rule: rule, ApproverRole: need.ApproverRole, Timeout: need.Timeout,
	})
	if errors.Is(err, admin.ErrTooManyPending) {
		return &reply{err: jsonrpc.NewError(mcpguard.CodeGatewayOverloaded, "too many calls are waiting for approval"), status: http.StatusServiceUnavailable}
	}
	if err != nil {
		g.logger.Error("call not held for approval", "err", err, "tool", tool)
		return &reply{err: jsonrpc.NewError(mcpguard.CodeGatewayOverloaded, "the call could not be held for approval: retry later"), status: http.StatusServiceUnavailable}
	}
	// An operator may decide it at once, on another goroutine: read its state under the lock.
	held := g.approvals.Snapshot(p)
	g.logger.Debug("call held for approval", "approval", held.ID, "status", held.Status, "principal", held.Principal, "tool", tool,
		"approver_role", need.ApproverRole, "arguments_sha256", digest, "expires", held.Expires)

	d, err := g.approvals.Wait(ctx, p)
	if err != nil {
		g.logger.Error("approval not consumed; the call was not forwarded", "err", err, "approval", p.ID)
		return &reply{err: jsonrpc.NewError(mcpguard.CodeGatewayOverloaded, "the approval could not be consumed, so the call was not forwarded: retry later"), status: http.StatusServiceUnavailable}
	}
	if d.Approve && d.ArgumentsSHA256 == digest {
		g.logger.Debug("call approved", "approval", p.ID, "by", d.By, "arguments_sha256", digest)
		return nil
	}
	if d.Approve { // unreachable: Hold matches approvals by digest; refuse rather than trust it
		g.logger.Error("an approval of other arguments reached a call; refused", "approval", p.ID, "approved", d.ArgumentsSHA256, "call", digest)
		d = admin.Decision{Reason: "the approval is for other arguments"}
	}
	if d.By == "" { // not an operator's decision, so the admin API recorded nothing
		status := "expired"
		if ctx.Err() != nil {
			status = "client_gone" // the approval stays held until it expires, for a retry
		}
		detail, _ := json.Marshal(admin.ApprovalDetail{Requester: p.Principal, RequesterAuth: p.AuthMethod,
			ApproverRole: need.ApproverRole, ArgumentsSHA256: digest, Status: status})
		rec := &audit.Record{Kind: audit.KindApproval, RequestID: p.ID, Tool: tool, Rule: rule, Decision: audit.DecisionDeny,
			Reasons: []string{d.Reason}, Detail: detail}
		if err := g.record(context.WithoutCancel(ctx), c, rec); err != nil {
			g.logger.Error("audit record of an approval ended without a decision not written", "err", err, "approval", p.ID)
		}
	}
	msg := fmt.Sprintf("denied by policy (rule %s): approval %s refused: %s", rule, p.ID, d.Reason)
	if d.By != "" {
		msg = fmt.Sprintf("denied by policy (rule %s): %s refused approval %s: %s", rule, d.By, p.ID, d.Reason)
	}
	return &reply{err: &jsonrpc.Error{Code: mcpguard.CodeDeniedByPolicy, Message: msg}, status: http.StatusForbidden}
}
