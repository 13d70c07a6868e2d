package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/mcpguard/mcpguard/internal/authn"
)

// maxPending bounds the calls held for a human decision at once, approved calls waiting for
// their retry included.
const maxPending = 1024

// DefaultApprovalTimeout is how long a held call waits when its Hold names no timeout.
const DefaultApprovalTimeout = 15 * time.Minute

// Approval statuses.
const (
	// StatusPending: the call waits for a decision.
	StatusPending = "pending"
	// StatusApproved: an operator approved the call after its client went away (or the gateway
	// restarted); the same principal retrying the same tool with arguments of the same digest
	// before the approval expires is forwarded, once.
	StatusApproved = "approved"
)

// Errors of Hold, Wait and Decide. The admin API answers each with its own status.
var (
	// ErrTooManyPending refuses a Hold while maxPending calls already wait.
	ErrTooManyPending = errors.New("too many calls are waiting for approval")
	// ErrNoApproval: the id names no pending approval (decided, expired, never existed), or
	// one whose approver role the operator lacks.
	ErrNoApproval = errors.New("no pending approval")
	// ErrSelfApproval refuses an approval by the person who made the call.
	ErrSelfApproval = errors.New("self-approval refused")
	// ErrDigestMismatch refuses a decision taken on other arguments than the held call's.
	ErrDigestMismatch = errors.New("arguments digest mismatch")
	// ErrAlreadyApproved refuses a second decision on an approved call that waits for its retry.
	ErrAlreadyApproved = errors.New("already approved")
	// ErrApprovalStore: the approvals database could not be written; nothing changed.
	ErrApprovalStore = errors.New("the approvals database cannot be written")
)

// ApprovalStore keeps held calls across restarts (keystore.ApprovalStore, in the identity
// database). The registry writes through it: a call is stored before any approver can see it,
// a decision before it takes effect, and an approved call is deleted — consumed — before it is
// forwarded. Records are the registry's own encoding; the store does not read them.
type ApprovalStore interface {
	// PutApproval stores the record of approval id, replacing the one stored before.
	PutApproval(ctx context.Context, id string, expires time.Time, record []byte) error
	// DeleteApproval removes approval id; absent is not an error.
	DeleteApproval(ctx context.Context, id string) error
	// LoadApprovals deletes the approvals expired at now and returns at most limit others.
	LoadApprovals(ctx context.Context, now time.Time, limit int) ([][]byte, error)
}

// ArgumentsDigest is the digest an approval is bound to: the SHA-256, in lower-case hex, of the
// arguments exactly as the client sent them and the gateway forwards them (the raw JSON of the
// "arguments" member; no arguments digest as zero bytes).
func ArgumentsDigest(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// Approval is a call held until an operator with the approver role decides. It is also the
// admin API's view of it.
type Approval struct {
	ID string `json:"id"`
	// Principal is the requester's subject; AuthMethod and Issuer say how it authenticated.
	Principal  string `json:"principal"`
	AuthMethod string `json:"auth_method,omitempty"`
	Issuer     string `json:"issuer,omitempty"`
	// RequesterNames are the names the requester is known by — its subject, and a token's
	// preferred_username, email and upn — which an approver's name must not match
	// (SameIdentity).
	RequesterNames []string `json:"requester_names"`
	Tool           string   `json:"tool"`
	// Arguments are shown as the audit log stores them (redacted); ArgumentsSHA256 is the
	// ArgumentsDigest of the arguments the gateway forwards if the call is approved.
	Arguments       json.RawMessage `json:"arguments,omitempty"`
	ArgumentsSHA256 string          `json:"arguments_sha256"`
	Rule            string          `json:"rule"`
	ApproverRole    string          `json:"approver_role"`
	// Status is StatusPending or StatusApproved; ApprovedBy and Reason say who approved it
	// and why.
	Status     string    `json:"status"`
	ApprovedBy string    `json:"approved_by,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	Requested  time.Time `json:"requested"`
	Expires    time.Time `json:"expires"`

	key      string        // requesterKey: who may retry the approved call
	waiting  bool          // a live call waits on it (Wait)
	wake     chan struct{} // signalled once a decision is set
	decision *Decision
}

// Hold describes a call to hold for a human decision.
type Hold struct {
	// Requester is who made the call; nil is the anonymous caller.
	Requester *authn.Principal
	Tool      string
	// Arguments are shown to the approvers as they are: the caller redacts them first.
	Arguments []byte
	// ArgumentsSHA256 is the ArgumentsDigest of the raw arguments the gateway would forward.
	ArgumentsSHA256 string
	Rule            string // the policy rule that requires the approval
	ApproverRole    string // the role an operator must hold to see and decide the call
	// Timeout is how long the call waits; zero or less means DefaultApprovalTimeout.
	Timeout time.Duration
}

// Decision is what became of a held call. By is the operator who decided, empty when the call
// timed out or its client went away; ArgumentsSHA256 is the digest of the arguments decided on.
type Decision struct {
	Approve         bool
	By              string
	Reason          string
	ArgumentsSHA256 string
}

// ApprovalsOptions configures NewApprovals and OpenApprovals.
type ApprovalsOptions struct {
	// Now is the clock of the requested and expiry times; nil means time.Now.
	Now func() time.Time
}

// Approvals is the registry of calls held for a human decision. The request path holds a call
// (Hold) and waits for it (Wait); the admin API lists them (List) and decides them (Decide). It
// is safe for concurrent use: one mutex guards the registry, and is held across the writes to
// the store and the audit record of a decision, so that what the store holds, what the audit
// log says and what the waiting call sees never disagree. Decisions are human-paced.
type Approvals struct {
	now     func() time.Time
	store   ApprovalStore // nil: in memory only
	mu      sync.Mutex
	pending map[string]*Approval
}

// NewApprovals returns an empty registry kept in memory only.
func NewApprovals(opts *ApprovalsOptions) *Approvals {
	a := &Approvals{now: time.Now, pending: map[string]*Approval{}}
	if opts != nil && opts.Now != nil {
		a.now = opts.Now
	}
	return a
}

// OpenApprovals returns the registry kept in store, with the approvals it holds that have not
// expired: pending ones can be listed and decided, approved ones wait for their retry.
func OpenApprovals(ctx context.Context, store ApprovalStore, opts *ApprovalsOptions) (*Approvals, error) {
	a := NewApprovals(opts)
	a.store = store
	recs, err := store.LoadApprovals(ctx, a.now(), maxPending)
	if err != nil {
		return nil, fmt.Errorf("load held calls: %w", err)
	}
	for _, rec := range recs {
		p := &Approval{}
		if err := json.Unmarshal(rec, p); err != nil {
			return nil, fmt.Errorf("load held calls: a stored approval is not readable: %w", err)
		}
		p.key = string(p.AuthMethod) + "\x00" + p.Issuer + "\x00" + p.Principal
		p.wake = make(chan struct{}, 1)
		switch p.Status {
		case StatusPending:
		case StatusApproved:
			p.decision = &Decision{Approve: true, By: p.ApprovedBy, Reason: p.Reason, ArgumentsSHA256: p.ArgumentsSHA256}
		default:
			return nil, fmt.Errorf("load held calls: approval %s has status %q", p.ID, p.Status)
		}
		a.pending[p.ID] = p
	}
	return a, nil
}

// requesterKey identifies a requester exactly, for the retry of an approved call.
func requesterKey(p *authn.Principal) string {
	return string(p.Method) + "\x00" + p.Issuer + "\x00" + p.Subject
}

// maxNameBytes bounds each of a requester's names kept with an approval.
const maxNameBytes = 256

// requesterNames lists the names p is known by: its subject, and the token claims that name a
// person (preferred_username, email, upn).
func requesterNames(p *authn.Principal) []string {
	names := []string{p.Subject}
	for _, claim := range []string{"preferred_username", "email", "upn"} {
		if s, _ := p.Claims[claim].(string); s != "" && !slices.Contains(names, s) {
			names = append(names, s)
		}
	}
	for i, n := range names {
		if len(n) > maxNameBytes {
			names[i] = n[:maxNameBytes]
		}
	}
	return names
}

// anonymous is the requester of a call made without authentication.
var anonymous = &authn.Principal{Subject: "anonymous"}

// Hold registers a call to wait for a decision; Wait then waits for it. A call the same
// requester made before with the same tool, rule and arguments digest, whose approval is still
// held without a client waiting (the client went away, or the gateway restarted), is that
// approval again: approved, the call goes through at once; pending, it waits for it. Otherwise
// a new approval is held, and stored before anyone can see it. ErrTooManyPending when the
// registry is full; ErrApprovalStore when it cannot be stored.
func (a *Approvals) Hold(ctx context.Context, h Hold) (*Approval, error) {
	req := h.Requester
	if req == nil {
		req = anonymous
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultApprovalTimeout
	}
	now := a.now().UTC()
	key := requesterKey(req)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.expireLocked(ctx, now)
	var again *Approval // an approved one first, else the oldest pending one
	for _, p := range a.pending {
		if p.waiting || p.key != key || p.Tool != h.Tool || p.Rule != h.Rule || p.ApproverRole != h.ApproverRole || p.ArgumentsSHA256 != h.ArgumentsSHA256 {
			continue
		}
		if again == nil || (p.Status == StatusApproved) != (again.Status == StatusApproved) && p.Status == StatusApproved ||
			p.Status == again.Status && p.Requested.Before(again.Requested) {
			again = p
		}
	}
	if again != nil {
		again.waiting = true
		return again, nil
	}
	if len(a.pending) >= maxPending {
		return nil, ErrTooManyPending
	}
	p := &Approval{
		ID: newID(), Principal: req.Subject, AuthMethod: string(req.Method), Issuer: req.Issuer, RequesterNames: requesterNames(req),
		Tool: h.Tool, Arguments: h.Arguments, ArgumentsSHA256: h.ArgumentsSHA256, Rule: h.Rule, ApproverRole: h.ApproverRole,
		Status: StatusPending, Requested: now, Expires: now.Add(timeout),
		key: key, waiting: true, wake: make(chan struct{}, 1),
	}
	if err := a.put(ctx, p); err != nil {
		return nil, err
	}
	a.pending[p.ID] = p
	return p, nil
}

// put stores p; ErrApprovalStore when it cannot.
func (a *Approvals) put(ctx context.Context, p *Approval) error {
	if a.store == nil {
		return nil
	}
	rec, err := json.Marshal(p)
	if err == nil {
		err = a.store.PutApproval(context.WithoutCancel(ctx), p.ID, p.Expires, rec)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrApprovalStore, err)
	}
	return nil
}

// drop deletes p from the store; ErrApprovalStore when it cannot.
func (a *Approvals) drop(ctx context.Context, p *Approval) error {
	if a.store == nil {
		return nil
	}
	if err := a.store.DeleteApproval(context.WithoutCancel(ctx), p.ID); err != nil {
		return fmt.Errorf("%w: %w", ErrApprovalStore, err)
	}
	return nil
}

// expireLocked forgets the approvals past their expiry that no call waits on (a waiting call's
// own timer ends its approval). A failed delete leaves a row that the next start drops.
func (a *Approvals) expireLocked(ctx context.Context, now time.Time) {
	for id, p := range a.pending {
		if !p.waiting && !now.Before(p.Expires) {
			delete(a.pending, id)
			_ = a.drop(ctx, p)
		}
	}
}

// Wait blocks until an operator decides the held call, its approval expires or ctx ends. An
// approval is consumed — deleted from the store — before Wait returns it: an error (wrapping
// ErrApprovalStore) when that fails, and the call must not be forwarded; the approval then
// stays for a retry. When ctx ends first, the approval stays, pending or approved, until it
// expires, for the same call's retry. Only an operator's decision can approve the call.
func (a *Approvals) Wait(ctx context.Context, p *Approval) (Decision, error) {
	a.mu.Lock()
	ready := p.decision != nil
	a.mu.Unlock()
	var expired bool
	if !ready {
		timer := time.NewTimer(p.Expires.Sub(a.now()))
		defer timer.Stop()
		select {
		case <-p.wake:
		case <-timer.C:
			expired = true
		case <-ctx.Done():
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	// An approval that arrives as the client leaves is kept for the retry, not consumed.
	gone := ctx.Err() != nil && (p.decision == nil || p.decision.Approve)
	switch d := p.decision; {
	case gone:
		p.waiting = false
		return Decision{Reason: "the client went away before a decision"}, nil
	case d != nil && d.Approve:
		if err := a.drop(ctx, p); err != nil {
			p.waiting = false
			return Decision{}, err
		}
		delete(a.pending, p.ID)
		return *d, nil
	case d != nil: // denied: Decide removed it already
		return *d, nil
	case expired:
		delete(a.pending, p.ID)
		_ = a.drop(ctx, p) // an expired row is dropped at the next start if not now
		return Decision{Reason: fmt.Sprintf("no %s approved it within %s", p.ApproverRole, p.Expires.Sub(p.Requested))}, nil
	}
	return Decision{}, errors.New("approval wait ended without a cause") // unreachable
}

// Snapshot is a copy of p as it is now. A held call's Approval changes when an operator decides
// it, on another goroutine: read its mutable fields (Status, ApprovedBy, Reason) through this.
func (a *Approvals) Snapshot(p *Approval) Approval {
	a.mu.Lock()
	defer a.mu.Unlock()
	return *p
}

// Pending counts the held calls no operator has decided yet and whose approval has not
// expired (a gauge for metrics).
func (a *Approvals) Pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	now, n := a.now(), 0
	for _, p := range a.pending {
		if p.decision == nil && now.Before(p.Expires) {
			n++
		}
	}
	return n
}

// List returns copies of the approvals an operator with roles may decide or see decided,
// oldest first.
func (a *Approvals) List(ctx context.Context, roles []string) []Approval {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.expireLocked(ctx, a.now())
	var out []Approval
	for _, p := range a.pending {
		if slices.Contains(roles, p.ApproverRole) {
			c := *p
			c.RequesterNames = slices.Clone(p.RequesterNames)
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Requested.Before(out[j].Requested) })
	return out
}

// Decide takes approver's decision d on approval id, if approver may take it: it holds the
// approval's role, the approval is pending and unexpired, d.ArgumentsSHA256 (when set) is the
// held call's digest, and — to approve — approver is not the requester (SameIdentity against
// each of the requester's names). record is called with the approval and the decision before
// anything changes; its error leaves the approval as it was. The decision is then stored, and
// handed to the call waiting on it. The error wraps ErrNoApproval, ErrAlreadyApproved,
// ErrDigestMismatch, ErrSelfApproval, ErrApprovalStore, or is record's.
func (a *Approvals) Decide(ctx context.Context, id string, approver *authn.Principal, d Decision, record func(Approval, Decision) error) (Approval, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.pending[id]
	switch {
	case p == nil || !slices.Contains(approver.Roles, p.ApproverRole):
		return Approval{}, fmt.Errorf("%w %q: it was decided, expired or never existed, or needs an approver role you do not hold", ErrNoApproval, id)
	case !a.now().Before(p.Expires):
		return Approval{}, fmt.Errorf("%w %q: it expired at %s", ErrNoApproval, id, p.Expires.Format(time.RFC3339))
	case p.Status == StatusApproved:
		return Approval{}, fmt.Errorf("%w: approval %s was approved by %s and waits for its call to be retried", ErrAlreadyApproved, id, p.ApprovedBy)
	case d.ArgumentsSHA256 != "" && d.ArgumentsSHA256 != p.ArgumentsSHA256:
		return Approval{}, fmt.Errorf("%w: approval %s holds a call with arguments_sha256 %s, not %s: list the approvals again and check what you decide", ErrDigestMismatch, id, p.ArgumentsSHA256, d.ArgumentsSHA256)
	}
	if d.Approve {
		for _, name := range p.RequesterNames {
			if SameIdentity(approver.Subject, name) {
				return Approval{}, fmt.Errorf("%w: %s made this call (as %q) and cannot approve it: another operator holding %s must", ErrSelfApproval, approver.Subject, name, p.ApproverRole)
			}
		}
	}
	d.By, d.ArgumentsSHA256 = approver.Subject, p.ArgumentsSHA256
	if err := record(*p, d); err != nil {
		return Approval{}, err
	}
	if d.Approve {
		before := *p
		p.Status, p.ApprovedBy, p.Reason = StatusApproved, d.By, d.Reason
		if err := a.put(ctx, p); err != nil {
			p.Status, p.ApprovedBy, p.Reason = before.Status, before.ApprovedBy, before.Reason
			return Approval{}, err
		}
	} else {
		if err := a.drop(ctx, p); err != nil {
			return Approval{}, err
		}
		delete(a.pending, id)
	}
	p.decision = &d
	p.wake <- struct{}{} // buffered, and a decision is taken once
	return *p, nil
}

// newID is a random identifier for an approval or an audit record.
func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
