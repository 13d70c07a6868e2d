package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/policy"
)

// maxPendingApprovals bounds the calls held for a human decision at once.
const maxPendingApprovals = 1024

// Approval is a call held until an operator with the approver role decides.
type Approval struct {
	ID           string     `json:"id"`
	Principal    string     `json:"principal"`
	Tool         string     `json:"tool"`
	Arguments    jsonrpcRaw `json:"arguments,omitempty"`
	Rule         string     `json:"rule"`
	ApproverRole string     `json:"approver_role"`
	Requested    time.Time  `json:"requested"`
	Expires      time.Time  `json:"expires"`
	decided      chan approvalDecision
}

// jsonrpcRaw is raw JSON that marshals as itself.
type jsonrpcRaw []byte

func (r jsonrpcRaw) MarshalJSON() ([]byte, error) {
	if len(r) == 0 {
		return []byte("null"), nil
	}
	return r, nil
}

type approvalDecision struct {
	approve bool
	by      string
	reason  string
}

// approvals is the registry of held calls.
type approvals struct {
	mu      sync.Mutex
	pending map[string]*Approval
}

func newApprovalID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// list returns the pending approvals an operator with roles may decide, oldest first.
func (a *approvals) list(roles []string) []*Approval {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*Approval
	for _, p := range a.pending {
		if hasRole(roles, p.ApproverRole) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Requested.Before(out[j].Requested) })
	return out
}

func hasRole(roles []string, want string) bool {
	for _, r := range roles {
		if r == want {
			return true
		}
	}
	return false
}

// decide records an operator's decision. The error says why it cannot be taken: unknown id,
// already decided or expired, or the operator lacks the approver role.
func (a *approvals) decide(id string, roles []string, d approvalDecision) (*Approval, error) {
	a.mu.Lock()
	p := a.pending[id]
	if p == nil {
		a.mu.Unlock()
		return nil, fmt.Errorf("no pending approval %q: it was decided, timed out or never existed", id)
	}
	if !hasRole(roles, p.ApproverRole) {
		a.mu.Unlock()
		return nil, fmt.Errorf("approval %s needs the role %s", id, p.ApproverRole)
	}
	delete(a.pending, id)
	a.mu.Unlock()
	p.decided <- d
	return p, nil
}

// holdForApproval keeps a call waiting for a human decision. It returns nil when approved, or
// the refusal to send: denied by the approver, or the approval timed out. The call never
// reaches the upstream unless approved.
func (g *Gateway) holdForApproval(ctx context.Context, c *caller, tool, rule string, need *policy.Approval, args []byte) *reply {
	timeout := need.Timeout
	if timeout <= 0 {
		timeout = 15 * time.Minute
	}
	shown := args
	if g.auditRedactor != nil && len(args) > 0 {
		shown, _ = g.auditRedactor.Value(args) // an approver sees the call as the audit log does
	}
	p := &Approval{
		ID: newApprovalID(), Principal: c.principal.Subject, Tool: tool, Arguments: jsonrpcRaw(shown), Rule: rule,
		ApproverRole: need.ApproverRole, Requested: g.now().UTC(), decided: make(chan approvalDecision, 1),
	}
	p.Expires = p.Requested.Add(timeout)
	g.approvals.mu.Lock()
	if g.approvals.pending == nil {
		g.approvals.pending = map[string]*Approval{}
	}
	if len(g.approvals.pending) >= maxPendingApprovals {
		g.approvals.mu.Unlock()
		return &reply{err: jsonrpc.NewError(mcpguard.CodeGatewayOverloaded, "too many calls are waiting for approval"), status: http.StatusServiceUnavailable}
	}
	g.approvals.pending[p.ID] = p
	g.approvals.mu.Unlock()
	g.logger.Info("call held for approval", "approval", p.ID, "principal", p.Principal, "tool", tool, "approver_role", need.ApproverRole, "timeout", timeout)

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var d approvalDecision
	select {
	case d = <-p.decided:
	case <-timer.C:
		d = approvalDecision{reason: fmt.Sprintf("no %s approved it within %s", need.ApproverRole, timeout)}
	case <-ctx.Done():
		d = approvalDecision{reason: "the client went away before a decision"}
	}
	g.approvals.mu.Lock()
	delete(g.approvals.pending, p.ID)
	g.approvals.mu.Unlock()

	rec := &audit.Record{Kind: audit.KindApproval, RequestID: p.ID, Tool: tool, Rule: rule, Decision: audit.DecisionDeny,
		Reasons: []string{d.reason}, Detail: []byte(`{"approver":` + string(jsonrpc.Quote(d.by)) + `,"approver_role":` + string(jsonrpc.Quote(need.ApproverRole)) + `}`)}
	if d.approve {
		rec.Decision = audit.DecisionAllow
	}
	if err := g.record(context.WithoutCancel(ctx), c, rec); err != nil {
		g.logger.Error("audit record of an approval decision not written", "err", err, "approval", p.ID)
		if d.approve {
			return &reply{err: jsonrpc.NewError(mcpguard.CodeAuditUnavailable, "the approval could not be recorded, so the call was not forwarded: retry later"), status: http.StatusServiceUnavailable}
		}
	}
	if d.approve {
		g.logger.Info("call approved", "approval", p.ID, "by", d.by)
		return nil
	}
	msg := fmt.Sprintf("denied by policy (rule %s): approval %s refused: %s", rule, p.ID, d.reason)
	if d.by != "" {
		msg = fmt.Sprintf("denied by policy (rule %s): %s refused approval %s: %s", rule, d.by, p.ID, d.reason)
	}
	return &reply{err: &jsonrpc.Error{Code: mcpguard.CodeDeniedByPolicy, Message: msg}, status: http.StatusForbidden}
}
