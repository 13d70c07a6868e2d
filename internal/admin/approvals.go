package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
)

// maxPending bounds the calls held for a human decision at once.
const maxPending = 1024

// DefaultApprovalTimeout is how long a held call waits when its Hold names no timeout.
const DefaultApprovalTimeout = 15 * time.Minute

// ErrTooManyPending refuses a Hold while maxPending calls already wait for a decision.
var ErrTooManyPending = errors.New("too many calls are waiting for approval")

// Approval is a call held until an operator with the approver role decides.
type Approval struct {
	ID           string          `json:"id"`
	Principal    string          `json:"principal"`
	Tool         string          `json:"tool"`
	Arguments    json.RawMessage `json:"arguments,omitempty"`
	Rule         string          `json:"rule"`
	ApproverRole string          `json:"approver_role"`
	Requested    time.Time       `json:"requested"`
	Expires      time.Time       `json:"expires"`
	timeout      time.Duration
	decided      chan Decision
}

// Hold describes a call to hold for a human decision.
type Hold struct {
	Principal string // who made the call
	Tool      string
	// Arguments are shown to the approvers as they are: the caller redacts them first.
	Arguments    []byte
	Rule         string // the policy rule that requires the approval
	ApproverRole string // the role an operator must hold to see and decide the call
	// Timeout is how long the call waits; zero or less means DefaultApprovalTimeout.
	Timeout time.Duration
}

// Decision is what became of a held call. By is the operator who decided, empty when the call
// timed out or its client went away.
type Decision struct {
	Approve bool
	By      string
	Reason  string
}

// ApprovalsOptions configures NewApprovals.
type ApprovalsOptions struct {
	// Now is the clock of the requested and expiry times; nil means time.Now.
	Now func() time.Time
}

// Approvals is the registry of calls held for a human decision. The request path holds a call
// (Hold) and waits for it (Wait); the admin API lists them (List) and decides them (Decide). It
// is safe for concurrent use.
type Approvals struct {
	now     func() time.Time
	mu      sync.Mutex
	pending map[string]*Approval
}

// NewApprovals returns an empty registry.
func NewApprovals(opts *ApprovalsOptions) *Approvals {
	a := &Approvals{now: time.Now, pending: map[string]*Approval{}}
	if opts != nil && opts.Now != nil {
		a.now = opts.Now
	}
	return a
}

// Hold registers a call to wait for a decision; Wait then waits for it. ErrTooManyPending when
// the registry is full.
func (a *Approvals) Hold(h Hold) (*Approval, error) {
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultApprovalTimeout
	}
	p := &Approval{
		ID: newID(), Principal: h.Principal, Tool: h.Tool, Arguments: h.Arguments, Rule: h.Rule,
		ApproverRole: h.ApproverRole, Requested: a.now().UTC(), timeout: timeout, decided: make(chan Decision, 1),
	}
	p.Expires = p.Requested.Add(timeout)
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.pending) >= maxPending {
		return nil, ErrTooManyPending
	}
	a.pending[p.ID] = p
	return p, nil
}

// Wait blocks until an operator decides the held call, its timeout passes or ctx ends, and
// removes it from the registry. Only an operator's decision can approve it.
func (a *Approvals) Wait(ctx context.Context, p *Approval) Decision {
	timer := time.NewTimer(p.timeout)
	defer timer.Stop()
	var d Decision
	select {
	case d = <-p.decided:
	case <-timer.C:
		d = Decision{Reason: fmt.Sprintf("no %s approved it within %s", p.ApproverRole, p.timeout)}
	case <-ctx.Done():
		d = Decision{Reason: "the client went away before a decision"}
	}
	a.mu.Lock()
	delete(a.pending, p.ID)
	a.mu.Unlock()
	return d
}

// List returns the pending approvals an operator with roles may decide, oldest first.
func (a *Approvals) List(roles []string) []*Approval {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*Approval
	for _, p := range a.pending {
		if slices.Contains(roles, p.ApproverRole) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Requested.Before(out[j].Requested) })
	return out
}

// Decide hands an operator's decision to the held call. The error says why it cannot be taken:
// unknown id, already decided or expired, or the operator lacks the approver role.
func (a *Approvals) Decide(id string, roles []string, d Decision) (*Approval, error) {
	a.mu.Lock()
	p := a.pending[id]
	if p == nil {
		a.mu.Unlock()
		return nil, fmt.Errorf("no pending approval %q: it was decided, timed out or never existed", id)
	}
	if !slices.Contains(roles, p.ApproverRole) {
		a.mu.Unlock()
		return nil, fmt.Errorf("approval %s needs the role %s", id, p.ApproverRole)
	}
	delete(a.pending, id)
	a.mu.Unlock()
	p.decided <- d
	return p, nil
}

// newID is a random identifier for an approval or an audit record.
func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
