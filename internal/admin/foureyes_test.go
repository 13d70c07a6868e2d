package admin

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/authn"
)

// holdFor holds a call of requester with args for the approver role Desk.
func holdFor(t *testing.T, a *adminFixture, requester *authn.Principal, args string) *Approval {
	t.Helper()
	p, err := a.approvals.Hold(t.Context(), Hold{Requester: requester, Tool: "bank.transfer", Arguments: []byte(args),
		ArgumentsSHA256: ArgumentsDigest([]byte(args)), Rule: "role:Agent/permission:0", ApproverRole: "Desk", Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDecisionNeedsAHumanWithMFA: a held call is decided only by an operator session opened
// with two factors; an API key, an access token or a client certificate holding the approver
// role is refused with 403 naming the credential needed, and so is an operator's OIDC session
// whose amr shows no MFA. The call stays pending, and nothing is recorded.
func TestDecisionNeedsAHumanWithMFA(t *testing.T) {
	a := newAdminFixture(t, nil)
	held := holdFor(t, a, agent, `{"amount":5}`)
	const how = "log in with `mcpguard operators login` (password and TOTP) or /v1/login/oidc at an identity provider that reports multi-factor authentication (amr), and use that session token"
	for _, tc := range []struct{ auth, msg string }{
		{"desk-key", "a held call can be decided only by a human operator, not with API key credentials: " + how},
		{"desk-token", "a held call can be decided only by a human operator, not with access token credentials: " + how},
		{"desk-cert", "a held call can be decided only by a human operator, not with client certificate credentials: " + how},
		{"alice-sso", "this operator session was opened without multi-factor authentication (the identity provider's amr does not show it), so it cannot decide held calls: " + how},
	} {
		for _, verb := range []string{"approve", "deny"} {
			t.Run(tc.auth+"/"+verb, func(t *testing.T) {
				status, out := a.do(t, "POST", "/v1/approvals/"+held.ID+"/"+verb, tc.auth, "", nil)
				if diff := cmp.Diff(map[string]any{"error": tc.msg}, out); status != 403 || diff != "" {
					t.Errorf("status %d, want 403; (-want +got):\n%s", status, diff)
				}
			})
		}
	}
	if got := a.approvals.List(t.Context(), []string{"Desk"}); len(got) != 1 || got[0].Status != StatusPending {
		t.Errorf("after the refusals: %+v, want the call still pending", got)
	}
	if got := a.gw.recorded(); len(got) != 0 {
		t.Errorf("refused decisions were recorded as decisions: %+v", got)
	}
	// A machine credential with the role may still list what waits.
	if status, out := a.do(t, "GET", "/v1/approvals", "desk-key", "", nil); status != 200 || len(out["approvals"].([]any)) != 1 {
		t.Errorf("listing with an API key holding the role: %d %v", status, out)
	}
	if status, out := a.do(t, "POST", "/v1/approvals/"+held.ID+"/approve", "alice", "", nil); status != 200 || out["decision"] != "approved" {
		t.Errorf("alice, an operator with MFA: %d %v", status, out)
	}
}

// TestNoSelfApproval: an operator cannot approve a call made under their own name — whatever
// its case, look-alike letters, separators or mail domain, and whether it is the subject of an
// API key or a name in a token — and gets 403 saying another operator must; another operator
// can. Denying one's own call stays possible.
func TestNoSelfApproval(t *testing.T) {
	a := newAdminFixture(t, nil)
	for _, requester := range []*authn.Principal{
		{Method: authn.MethodAPIKey, Subject: "alice", Roles: []string{"PortfolioManagerAI", "Desk"}}, // the finding: her own key
		{Method: authn.MethodAPIKey, Subject: "Alice"},
		{Method: authn.MethodAPIKey, Subject: "\u0430lice"},  // Cyrillic а
		{Method: authn.MethodAPIKey, Subject: "ａｌｉｃｅ"},       // fullwidth
		{Method: authn.MethodAPIKey, Subject: "al\u200bice"}, // zero-width space
		{Method: authn.MethodCertificate, Subject: "ALICE@corp.example"},
		{Method: authn.MethodJWT, Subject: "00u1f3x9", Issuer: "https://idp.example", Claims: map[string]any{"preferred_username": "a.lice"}},
		{Method: authn.MethodJWT, Subject: "00u1f3x9", Issuer: "https://idp.example", Claims: map[string]any{"email": "alice+trading@corp.example"}},
	} {
		t.Run(requester.Subject, func(t *testing.T) {
			held := holdFor(t, a, requester, `{"amount":5}`)
			status, out := a.do(t, "POST", "/v1/approvals/"+held.ID+"/approve", "alice", "", nil)
			msg, _ := out["error"].(string)
			if status != 403 || !strings.HasPrefix(msg, "self-approval refused: alice made this call") || !strings.Contains(msg, "another operator holding Desk must") {
				t.Errorf("alice approving her own call: %d %q, want 403 self-approval refused", status, msg)
			}
			if status, out := a.do(t, "POST", "/v1/approvals/"+held.ID+"/approve", "dave", "", nil); status != 200 {
				t.Errorf("dave approving alice's call: %d %v", status, out)
			}
		})
	}
	own := holdFor(t, a, &authn.Principal{Method: authn.MethodAPIKey, Subject: "alice"}, `{}`)
	if status, out := a.do(t, "POST", "/v1/approvals/"+own.ID+"/deny", "alice", "", nil); status != 200 {
		t.Errorf("alice denying her own call: %d %v", status, out)
	}
}

// TestSameIdentity: names that are, or look like, the same person's compare equal; different
// names do not.
func TestSameIdentity(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"alice", "alice", true},
		{"alice", "Alice", true},
		{"alice", "ALICE", true},
		{"alice", "\u0430lice", true},           // Cyrillic а
		{"alice", "\u0430l\u0456c\u0435", true}, // Cyrillic а, і, е
		{"alice", "ａｌｉｃｅ", true},                // fullwidth
		{"alice", "al\u200bice", true},          // zero-width space
		{"alice", "al\u202eice", true},          // bidi override
		{"alice", "alicé", true},
		{"alice", "a.lice", true},
		{"alice", "al_ice", true},
		{"alice", "a1ice", true},
		{"alice", "alice@corp.example", true},
		{"alice", "Alice+bot@other.example", true},
		{"martin", "rnartin", true},
		{"bob", "ΒΟΒ", true}, // Greek capitals
		{"alice", "alicia", false},
		{"alice", "bob", false},
		{"bob", "rob", false},
		{"alice", "malice", false},
		{"alice", "", false},
		{"", "", false},
	} {
		if got := SameIdentity(tc.a, tc.b); got != tc.same {
			t.Errorf("SameIdentity(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.same)
		}
		if got := SameIdentity(tc.b, tc.a); got != tc.same {
			t.Errorf("SameIdentity(%q, %q) = %v, want %v", tc.b, tc.a, got, tc.same)
		}
	}
}

// TestApprovalBoundToDigest: the approver sees the SHA-256 of the held call's arguments; a
// decision that names another digest is refused with 409 and changes nothing; the one that
// names the right digest (in either case) reaches the held call with that digest.
func TestApprovalBoundToDigest(t *testing.T) {
	a := newAdminFixture(t, nil)
	args := `{"amount":5,"to":"DE89370400440532013000"}`
	held := holdFor(t, a, agent, args)
	want := ArgumentsDigest([]byte(args))
	_, out := a.do(t, "GET", "/v1/approvals", "alice", "", nil)
	if got := out["approvals"].([]any)[0].(map[string]any)["arguments_sha256"]; got != want {
		t.Fatalf("listed arguments_sha256 %v, want %s", got, want)
	}
	other := ArgumentsDigest([]byte(`{"amount":5000,"to":"DE89370400440532013000"}`))
	status, out := a.do(t, "POST", "/v1/approvals/"+held.ID+"/approve", "alice", `{"arguments_sha256":"`+other+`"}`, nil)
	if msg, _ := out["error"].(string); status != 409 || !strings.Contains(msg, "holds a call with arguments_sha256 "+want+", not "+other) {
		t.Errorf("approve with another digest: %d %v, want 409 naming both digests", status, out)
	}
	if got := a.approvals.List(t.Context(), []string{"Desk"}); len(got) != 1 || got[0].Status != StatusPending {
		t.Fatalf("after a mismatched decision: %+v, want it pending", got)
	}
	decided := make(chan Decision, 1)
	go func() { d, _ := a.approvals.Wait(context.Background(), held); decided <- d }()
	status, out = a.do(t, "POST", "/v1/approvals/"+held.ID+"/approve", "alice", `{"arguments_sha256":"`+strings.ToUpper(want)+`"}`, nil)
	if status != 200 || out["arguments_sha256"] != want {
		t.Fatalf("approve with the listed digest: %d %v", status, out)
	}
	if d := <-decided; !d.Approve || d.ArgumentsSHA256 != want {
		t.Errorf("the held call received %+v, want an approval of %s", d, want)
	}
}

// TestDecisionRecordedFirst: an operator's decision is recorded — requester, approver, role
// and digest — before it takes effect; when it cannot be recorded it is not taken (503) and
// the call keeps waiting.
func TestDecisionRecordedFirst(t *testing.T) {
	a := newAdminFixture(t, nil)
	held := holdFor(t, a, agent, `{"amount":5}`)
	a.gw.mu.Lock()
	a.gw.recordErr = errors.New("audit store unavailable")
	a.gw.mu.Unlock()
	status, out := a.do(t, "POST", "/v1/approvals/"+held.ID+"/approve", "alice", "", nil)
	if diff := cmp.Diff(map[string]any{"error": "the decision could not be recorded in the audit log, so it was not taken: try again later"}, out); status != 503 || diff != "" {
		t.Errorf("approve without an audit log: %d; (-want +got):\n%s", status, diff)
	}
	if got := a.approvals.List(t.Context(), []string{"Desk"}); len(got) != 1 || got[0].Status != StatusPending {
		t.Fatalf("after an unrecorded decision: %+v, want it pending", got)
	}
	a.gw.mu.Lock()
	a.gw.recordErr = nil
	a.gw.mu.Unlock()
	if status, out := a.do(t, "POST", "/v1/approvals/"+held.ID+"/approve", "alice", `{"reason":"checked"}`, nil); status != 200 {
		t.Fatalf("approve: %d %v", status, out)
	}
	recs := a.gw.recorded()
	if len(recs) != 1 {
		t.Fatalf("%d records, want the decision's", len(recs))
	}
	var detail map[string]any
	if err := json.Unmarshal([]byte(recs[0].detail), &detail); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"requester": "agent", "requester_auth_method": "apikey", "approver": "alice", "approver_role": "Desk",
		"arguments_sha256": held.ArgumentsSHA256, "status": "approved"}
	if diff := cmp.Diff(want, detail); diff != "" || recs[0].kind != audit.KindApproval || recs[0].decision != audit.DecisionAllow || recs[0].actor != "alice" || recs[0].authMethod != "operator" {
		t.Errorf("record %+v; detail (-want +got):\n%s", recs[0], diff)
	}
}
