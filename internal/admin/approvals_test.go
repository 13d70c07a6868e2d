package admin

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpguard/mcpguard/internal/authn"
)

// TestApprovalsEndWithoutADecision: a held call nobody decides is refused when its timeout
// passes, and leaves the registry; one whose client goes away is refused too, but its approval
// stays decidable until it expires, for the call's retry.
func TestApprovalsEndWithoutADecision(t *testing.T) {
	ctx := t.Context()
	a := NewApprovals(nil)
	timedOut, err := a.Hold(ctx, Hold{Requester: agent, Tool: "bank.transfer", ApproverRole: "Desk", Timeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.Wait(context.Background(), timedOut); err != nil || got != (Decision{Reason: "no Desk approved it within 20ms"}) {
		t.Errorf("timed out: %+v %v", got, err)
	}
	if _, err := a.Decide(ctx, timedOut.ID, alice, Decision{Approve: true}, noRecord); !errors.Is(err, ErrNoApproval) {
		t.Errorf("a timed-out approval could still be decided: %v", err)
	}

	gone, _ := a.Hold(ctx, Hold{Requester: agent, Tool: "bank.transfer", ApproverRole: "Desk", Timeout: time.Hour})
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got, err := a.Wait(cctx, gone); err != nil || got != (Decision{Reason: "the client went away before a decision"}) {
		t.Errorf("client gone: %+v %v", got, err)
	}
	if got := a.List(ctx, []string{"Desk"}); len(got) != 1 || got[0].ID != gone.ID || got[0].Status != StatusPending {
		t.Errorf("after its client went away the approval is %+v, want it still pending", got)
	}
}

// TestApprovalsDefaultTimeout: a Hold without a timeout waits DefaultApprovalTimeout.
func TestApprovalsDefaultTimeout(t *testing.T) {
	start := time.Date(2026, 12, 5, 9, 30, 0, 0, time.UTC)
	a := NewApprovals(&ApprovalsOptions{Now: func() time.Time { return start }})
	p, err := a.Hold(t.Context(), Hold{Requester: agent, Tool: "t", ApproverRole: "Desk"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]time.Time{start, start.Add(15 * time.Minute)}, []time.Time{p.Requested, p.Expires}); diff != "" {
		t.Errorf("requested and expires (-want +got):\n%s", diff)
	}
}

// TestApprovalsAreBounded: past maxPending held calls a new one is refused, and a decided one
// makes room; a requester's names kept with an approval are bounded too.
func TestApprovalsAreBounded(t *testing.T) {
	ctx := t.Context()
	a := NewApprovals(nil)
	var last *Approval
	for i := range maxPending {
		p, err := a.Hold(ctx, Hold{Requester: agent, Tool: "t", ArgumentsSHA256: ArgumentsDigest([]byte{byte(i), byte(i >> 8)}), ApproverRole: "Desk"})
		if err != nil {
			t.Fatal(err)
		}
		last = p
	}
	if _, err := a.Hold(ctx, Hold{Requester: agent, Tool: "t", ApproverRole: "Desk"}); !errors.Is(err, ErrTooManyPending) {
		t.Fatalf("hold past the bound: %v, want ErrTooManyPending", err)
	}
	if _, err := a.Decide(ctx, last.ID, alice, Decision{Reason: "denied"}, noRecord); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Hold(ctx, Hold{Requester: agent, Tool: "t", ApproverRole: "Desk"}); err != nil {
		t.Errorf("hold after a decision made room: %v", err)
	}

	long := &authn.Principal{Method: authn.MethodJWT, Subject: string(make([]byte, 10000)), Claims: map[string]any{"email": string(make([]byte, 10000))}}
	for _, n := range requesterNames(long) {
		if len(n) > maxNameBytes {
			t.Errorf("a requester name of %d bytes is kept, want at most %d", len(n), maxNameBytes)
		}
	}
}

// noRecord is a decision's audit record that always succeeds.
func noRecord(Approval, Decision) error { return nil }

// memoryStore is an ApprovalStore in memory, shared by the registries "restarted" over it.
type memoryStore struct {
	mu   sync.Mutex
	recs map[string][]byte
	exp  map[string]time.Time
	fail error // every write fails with it
}

func newMemoryStore() *memoryStore {
	return &memoryStore{recs: map[string][]byte{}, exp: map[string]time.Time{}}
}

func (m *memoryStore) PutApproval(_ context.Context, id string, expires time.Time, rec []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.recs[id], m.exp[id] = slices.Clone(rec), expires
	return nil
}

func (m *memoryStore) DeleteApproval(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	delete(m.recs, id)
	delete(m.exp, id)
	return nil
}

func (m *memoryStore) LoadApprovals(_ context.Context, now time.Time, limit int) ([][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out [][]byte
	for _, id := range slices.Sorted(maps.Keys(m.recs)) {
		if !now.Before(m.exp[id]) {
			delete(m.recs, id)
			continue
		}
		if len(out) < limit {
			out = append(out, m.recs[id])
		}
	}
	return out, nil
}

// TestApprovalsRetryAfterRestart: a held call's approval is stored; after a restart it is still
// listed and decidable, and once approved, the same requester retrying the same tool with the
// same arguments is let through once — another requester, tool or digest is not.
func TestApprovalsRetryAfterRestart(t *testing.T) {
	ctx := t.Context()
	store := newMemoryStore()
	clock := func() time.Time { return testNow }
	a, err := OpenApprovals(ctx, store, &ApprovalsOptions{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	digest := ArgumentsDigest([]byte(`{"amount":5}`))
	hold := Hold{Requester: agent, Tool: "bank.transfer", ArgumentsSHA256: digest, Rule: "r", ApproverRole: "Desk", Timeout: time.Hour}
	p, err := a.Hold(ctx, hold)
	if err != nil {
		t.Fatal(err)
	}
	// The gateway stops while the call waits: a new registry over the same store.
	b, err := OpenApprovals(ctx, store, &ApprovalsOptions{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if got := b.List(ctx, []string{"Desk"}); len(got) != 1 || got[0].ID != p.ID || got[0].ArgumentsSHA256 != digest || got[0].Principal != "agent" {
		t.Fatalf("after the restart: %+v, want the held call", got)
	}
	if _, err := b.Decide(ctx, p.ID, alice, Decision{Approve: true, Reason: "ok"}, noRecord); err != nil {
		t.Fatal(err)
	}
	// Restarted again: the approval is still there, approved.
	c, err := OpenApprovals(ctx, store, &ApprovalsOptions{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.List(ctx, []string{"Desk"}); len(got) != 1 || got[0].Status != StatusApproved || got[0].ApprovedBy != "alice" {
		t.Fatalf("after the second restart: %+v, want it approved by alice", got)
	}
	// Not the same call: each is held anew, and waits.
	other := &authn.Principal{Method: authn.MethodAPIKey, Subject: "other-agent"}
	for name, h := range map[string]Hold{
		"another requester": {Requester: other, Tool: hold.Tool, ArgumentsSHA256: digest, Rule: "r", ApproverRole: "Desk"},
		"another tool":      {Requester: agent, Tool: "bank.close", ArgumentsSHA256: digest, Rule: "r", ApproverRole: "Desk"},
		"other arguments":   {Requester: agent, Tool: hold.Tool, ArgumentsSHA256: ArgumentsDigest([]byte(`{"amount":5000}`)), Rule: "r", ApproverRole: "Desk"},
	} {
		q, err := c.Hold(ctx, h)
		if err != nil || q.ID == p.ID || q.Status != StatusPending {
			t.Errorf("%s: held %+v (%v), want a new pending approval", name, q, err)
		}
	}
	// The same call: through at once, and once.
	q, err := c.Hold(ctx, hold)
	if err != nil || q.ID != p.ID {
		t.Fatalf("the retry: %+v %v, want approval %s", q, err, p.ID)
	}
	if d, err := c.Wait(ctx, q); err != nil || !d.Approve || d.By != "alice" || d.ArgumentsSHA256 != digest {
		t.Fatalf("the retry's decision: %+v %v", d, err)
	}
	if _, ok := store.recs[p.ID]; ok {
		t.Error("the consumed approval is still stored")
	}
	again, err := c.Hold(ctx, hold)
	if err != nil || again.ID == p.ID || again.Status != StatusPending {
		t.Errorf("a second retry: %+v %v, want a new pending approval (an approval is used once)", again, err)
	}
}

// TestApprovalsFailClosedOnTheStore: a call that cannot be stored is not held, a decision that
// cannot be stored is not taken, and an approval that cannot be consumed lets nothing through.
func TestApprovalsFailClosedOnTheStore(t *testing.T) {
	ctx := t.Context()
	store := newMemoryStore()
	a, err := OpenApprovals(ctx, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	hold := Hold{Requester: agent, Tool: "bank.transfer", ApproverRole: "Desk", Timeout: time.Hour}
	p, err := a.Hold(ctx, hold)
	if err != nil {
		t.Fatal(err)
	}
	store.fail = errors.New("disk full")
	if _, err := a.Hold(ctx, Hold{Requester: agent, Tool: "other", ApproverRole: "Desk"}); !errors.Is(err, ErrApprovalStore) {
		t.Errorf("hold with a failing store: %v, want ErrApprovalStore", err)
	}
	if _, err := a.Decide(ctx, p.ID, alice, Decision{Approve: true}, noRecord); !errors.Is(err, ErrApprovalStore) {
		t.Errorf("approve with a failing store: %v, want ErrApprovalStore", err)
	}
	if got := a.List(ctx, []string{"Desk"}); len(got) != 1 || got[0].Status != StatusPending {
		t.Fatalf("after a decision that could not be stored: %+v, want it pending", got)
	}
	store.fail = nil
	if _, err := a.Decide(ctx, p.ID, alice, Decision{Approve: true}, noRecord); err != nil {
		t.Fatal(err)
	}
	store.fail = errors.New("disk full")
	if d, err := a.Wait(ctx, p); !errors.Is(err, ErrApprovalStore) || d.Approve {
		t.Errorf("consuming with a failing store: %+v %v, want no approval and ErrApprovalStore", d, err)
	}
	store.fail = nil
	if q, _ := a.Hold(ctx, hold); q == nil || q.ID != p.ID {
		t.Fatalf("the retry after a failed consumption: %+v, want approval %s again", q, p.ID)
	}
}
