package admin

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestApprovalsEndWithoutADecision: a held call nobody decides is refused when its timeout
// passes or its client goes away, and leaves the registry either way.
func TestApprovalsEndWithoutADecision(t *testing.T) {
	a := NewApprovals(nil)
	timedOut, err := a.Hold(Hold{Principal: "agent", Tool: "bank.transfer", ApproverRole: "Desk", Timeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.Wait(context.Background(), timedOut), (Decision{Reason: "no Desk approved it within 20ms"}); got != want {
		t.Errorf("timed out: %+v, want %+v", got, want)
	}

	gone, _ := a.Hold(Hold{Principal: "agent", Tool: "bank.transfer", ApproverRole: "Desk", Timeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got, want := a.Wait(ctx, gone), (Decision{Reason: "the client went away before a decision"}); got != want {
		t.Errorf("client gone: %+v, want %+v", got, want)
	}
	if got := a.List([]string{"Desk"}); len(got) != 0 {
		t.Errorf("%d approvals still pending, want none", len(got))
	}
	if _, err := a.Decide(gone.ID, []string{"Desk"}, Decision{Approve: true, By: "alice"}); err == nil {
		t.Error("an approval whose client went away could still be approved")
	}
}

// TestApprovalsDefaultTimeout: a Hold without a timeout waits DefaultApprovalTimeout.
func TestApprovalsDefaultTimeout(t *testing.T) {
	start := time.Date(2026, 12, 5, 9, 30, 0, 0, time.UTC)
	a := NewApprovals(&ApprovalsOptions{Now: func() time.Time { return start }})
	p, err := a.Hold(Hold{Principal: "agent", Tool: "t", ApproverRole: "Desk"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]time.Time{start, start.Add(15 * time.Minute)}, []time.Time{p.Requested, p.Expires}); diff != "" {
		t.Errorf("requested and expires (-want +got):\n%s", diff)
	}
}

// TestApprovalsAreBounded: past maxPending held calls a new one is refused, and a decided one
// makes room.
func TestApprovalsAreBounded(t *testing.T) {
	a := NewApprovals(nil)
	var last *Approval
	for range maxPending {
		p, err := a.Hold(Hold{Principal: "agent", Tool: "t", ApproverRole: "Desk"})
		if err != nil {
			t.Fatal(err)
		}
		last = p
	}
	if _, err := a.Hold(Hold{Principal: "agent", Tool: "t", ApproverRole: "Desk"}); !errors.Is(err, ErrTooManyPending) {
		t.Fatalf("hold past the bound: %v, want ErrTooManyPending", err)
	}
	if _, err := a.Decide(last.ID, []string{"Desk"}, Decision{By: "alice", Reason: "denied"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Hold(Hold{Principal: "agent", Tool: "t", ApproverRole: "Desk"}); err != nil {
		t.Errorf("hold after a decision made room: %v", err)
	}
}
