package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/authn"
)

// fakeGateway authenticates the Authorization headers it was given, accepts the hosts and
// origins it was given, and keeps the records the admin API appends.
type fakeGateway struct {
	principals map[string]*authn.Principal // by Authorization header; nil: no authentication configured
	hosts      []string
	origins    []string
	recordErr  error

	mu      sync.Mutex
	records []recorded
}

type recorded struct {
	actor      string
	roles      []string
	authMethod string
	kind       audit.Kind
	decision   string
	reasons    []string
	detail     string
}

func (f *fakeGateway) Authenticate(r *http.Request) (*authn.Principal, error) {
	if f.principals == nil {
		return nil, ErrNoAuthentication
	}
	if p := f.principals[r.Header.Get("Authorization")]; p != nil {
		return p, nil
	}
	return nil, errors.New("unknown credential")
}

func (f *fakeGateway) Record(_ context.Context, _ *http.Request, actor *authn.Principal, authMethod string, rec *audit.Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.recordErr != nil {
		return f.recordErr
	}
	f.records = append(f.records, recorded{actor.Subject, actor.Roles, authMethod, rec.Kind, rec.Decision, rec.Reasons, string(rec.Detail)})
	return nil
}

func (f *fakeGateway) HostOK(host string) bool {
	return strings.HasPrefix(host, "127.0.0.1:") || slices.Contains(f.hosts, host)
}

func (f *fakeGateway) OriginOK(origin string) bool { return slices.Contains(f.origins, origin) }

func (f *fakeGateway) recorded() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.records...)
}

var (
	alice = &authn.Principal{Method: authn.MethodOperator, Subject: "alice", Roles: []string{"Desk"}, MFA: true}
	bob   = &authn.Principal{Method: authn.MethodOperator, Subject: "bob", Roles: []string{"Compliance"}, MFA: true}
	carol = &authn.Principal{Method: authn.MethodAPIKey, Subject: "carol"}
	dave  = &authn.Principal{Method: authn.MethodOperator, Subject: "dave", Roles: []string{"Desk"}, MFA: true}
	// Credentials that hold the approver role but are not a person who proved two factors.
	deskKey   = &authn.Principal{Method: authn.MethodAPIKey, Subject: "desk-bot", Roles: []string{"Desk"}}
	deskToken = &authn.Principal{Method: authn.MethodJWT, Subject: "desk-bot", Issuer: "https://idp.example", Roles: []string{"Desk"}}
	deskCert  = &authn.Principal{Method: authn.MethodCertificate, Subject: "desk-bot", Roles: []string{"Desk"}}
	aliceSSO  = &authn.Principal{Method: authn.MethodOperator, Subject: "alice", Roles: []string{"Desk"}} // OIDC, amr without MFA
	agent     = &authn.Principal{Method: authn.MethodAPIKey, Subject: "agent", KeyID: "0123456789abcdef", Roles: []string{"Agent"}}
)

var testNow = time.Date(2026, 12, 5, 9, 30, 0, 0, time.UTC)

// adminFixture is an admin API over a fake gateway whose credentials are "alice" and "dave"
// (operators with MFA and the approver role Desk), "bob" (an operator without it), "carol" (an API
// key without a role), "desk-key", "desk-token", "desk-cert" (machine credentials with Desk) and
// "alice-sso" (alice's session from an OIDC login whose amr shows no MFA).
type adminFixture struct {
	gw        *fakeGateway
	approvals *Approvals
	srv       *httptest.Server
}

func newAdminFixture(t *testing.T, gw *fakeGateway) *adminFixture {
	t.Helper()
	if gw == nil {
		gw = &fakeGateway{principals: map[string]*authn.Principal{"alice": alice, "bob": bob, "carol": carol, "dave": dave,
			"desk-key": deskKey, "desk-token": deskToken, "desk-cert": deskCert, "alice-sso": aliceSSO}}
	}
	clock := func() time.Time { return testNow }
	a := &adminFixture{gw: gw, approvals: NewApprovals(&ApprovalsOptions{Now: clock})}
	a.srv = httptest.NewServer(NewHandler(gw, a.approvals, &Options{Now: clock}))
	t.Cleanup(a.srv.Close)
	return a
}

// do sends an admin request; auth is the Authorization header, "" for none.
func (a *adminFixture) do(t *testing.T, method, path, auth, body string, header map[string]string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s answered %d %q: not a JSON object", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

// TestAdminRefusals: every refusal of the admin API, in the order its checks run, with the
// status and message a client sees.
func TestAdminRefusals(t *testing.T) {
	a := newAdminFixture(t, nil)
	held, err := a.approvals.Hold(t.Context(), Hold{Requester: agent, Tool: "rec.echo", ArgumentsSHA256: ArgumentsDigest(nil), Rule: "r", ApproverRole: "Desk", Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	unauthenticated := newAdminFixture(t, &fakeGateway{})
	for _, tc := range []struct {
		name         string
		fixture      *adminFixture
		method, path string
		auth, body   string
		header       map[string]string
		status       int
		msg          string
	}{
		{"foreign Host", a, "GET", "/v1/approvals", "alice", "", map[string]string{"Host": "evil.example"}, 403, "forbidden Host header"},
		{"foreign Origin", a, "GET", "/v1/approvals", "alice", "", map[string]string{"Origin": "https://evil.example"}, 403, "forbidden Origin"},
		{"no authentication configured", unauthenticated, "GET", "/v1/approvals", "alice", "", nil, 401, "the admin API needs authentication: configure auth:, api_keys_database: or tls client certificates"},
		{"no credential", a, "GET", "/v1/approvals", "", "", nil, 401, "authentication required"},
		{"unknown credential", a, "POST", "/v1/approvals/" + held.ID + "/approve", "mallory", "", nil, 401, "authentication required"},
		{"no role", a, "GET", "/v1/approvals", "carol", "", nil, 403, "no role: only an operator holding an approver role may use approvals"},
		{"body too large", a, "POST", "/v1/approvals/" + held.ID + "/approve", "alice", `{"reason":"` + strings.Repeat("x", 64<<10) + `"}`, nil, 413, "request body too large"},
		{"body not JSON", a, "POST", "/v1/approvals/" + held.ID + "/deny", "alice", "yes", nil, 400, `the body must be JSON such as {"reason":"…","arguments_sha256":"…"}`},
		{"digest not a SHA-256", a, "POST", "/v1/approvals/" + held.ID + "/approve", "alice", `{"arguments_sha256":"abc"}`, nil, 400, "arguments_sha256 must be the 64 hex digits of a SHA-256, as `mcpguard approvals list` shows it"},
		{"reason too long", a, "POST", "/v1/approvals/" + held.ID + "/deny", "alice", `{"reason":"` + strings.Repeat("x", 1025) + `"}`, nil, 400, "reason longer than 1024 bytes"},
		{"unknown approval", a, "POST", "/v1/approvals/nope/approve", "alice", "", nil, 404, `no pending approval "nope": it was decided, expired or never existed, or needs an approver role you do not hold`},
		{"approver role missing", a, "POST", "/v1/approvals/" + held.ID + "/approve", "bob", "", nil, 404, `no pending approval "` + held.ID + `": it was decided, expired or never existed, or needs an approver role you do not hold`},
		{"OIDC login not configured", a, "GET", "/v1/login/oidc", "", "", nil, 404, "OIDC login is not configured: add admin.oidc to the gateway's configuration"},
		{"OIDC callback not configured", a, "GET", "/v1/login/oidc/callback?state=x", "", "", nil, 404, "OIDC login is not configured: add admin.oidc to the gateway's configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out := tc.fixture.do(t, tc.method, tc.path, tc.auth, tc.body, tc.header)
			if diff := cmp.Diff(map[string]any{"error": tc.msg}, out); status != tc.status || diff != "" {
				t.Errorf("status %d, want %d; body (-want +got):\n%s", status, tc.status, diff)
			}
		})
	}
	if got := a.approvals.List(t.Context(), []string{"Desk"}); len(got) != 1 {
		t.Errorf("after the refusals %d calls are pending, want the one held, undecided", len(got))
	}
}

// TestAdminDecides: an operator lists the calls held for its role, oldest first, and approves
// or denies them; the held call receives the operator's decision and reason.
func TestAdminDecides(t *testing.T) {
	a := newAdminFixture(t, nil)
	ctx := t.Context()
	first, _ := a.approvals.Hold(ctx, Hold{Requester: agent, Tool: "bank.transfer", Arguments: []byte(`{"amount":5}`), ArgumentsSHA256: ArgumentsDigest([]byte(`{"amount":5}`)), Rule: "role:Agent/permission:0", ApproverRole: "Desk", Timeout: time.Minute})
	a.approvals.now = func() time.Time { return testNow.Add(time.Second) }
	second, _ := a.approvals.Hold(ctx, Hold{Requester: agent, Tool: "bank.close", ArgumentsSHA256: ArgumentsDigest(nil), Rule: "role:Agent/permission:1", ApproverRole: "Desk", Timeout: time.Minute})
	_, _ = a.approvals.Hold(ctx, Hold{Requester: agent, Tool: "hr.fire", ArgumentsSHA256: ArgumentsDigest(nil), Rule: "role:Agent/permission:2", ApproverRole: "HR"})

	status, out := a.do(t, "GET", "/v1/approvals", "alice", "", nil)
	want := map[string]any{"now": "2026-12-05T09:30:00Z", "approvals": []any{
		map[string]any{"id": first.ID, "principal": "agent", "auth_method": "apikey", "requester_names": []any{"agent"}, "tool": "bank.transfer",
			"arguments": map[string]any{"amount": 5.0}, "arguments_sha256": "7e84cbf0f7a7c92c037058665d66152f8eb8580ab2534e52c877bccceb9cc7bf", "rule": "role:Agent/permission:0",
			"approver_role": "Desk", "status": "pending", "requested": "2026-12-05T09:30:00Z", "expires": "2026-12-05T09:31:00Z"},
		map[string]any{"id": second.ID, "principal": "agent", "auth_method": "apikey", "requester_names": []any{"agent"}, "tool": "bank.close",
			"arguments_sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "rule": "role:Agent/permission:1",
			"approver_role": "Desk", "status": "pending", "requested": "2026-12-05T09:30:01Z", "expires": "2026-12-05T09:31:01Z"},
	}}
	if diff := cmp.Diff(want, out); status != 200 || diff != "" {
		t.Errorf("GET /v1/approvals: status %d; (-want +got):\n%s", status, diff)
	}
	if status, out := a.do(t, "GET", "/v1/approvals", "bob", "", nil); status != 200 || fmt.Sprint(out["approvals"]) != "[]" {
		t.Errorf("an operator without the approver role: %d %v, want an empty list", status, out)
	}

	for _, tc := range []struct {
		name, verb, body string
		held             *Approval
		want             Decision
	}{
		{"approve with a reason", "approve", `{"reason":"checked with the desk"}`, first, Decision{Approve: true, By: "alice", Reason: "checked with the desk", ArgumentsSHA256: first.ArgumentsSHA256}},
		{"deny without a body", "deny", "", second, Decision{By: "alice", Reason: "denied", ArgumentsSHA256: second.ArgumentsSHA256}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			decided := make(chan Decision, 1)
			go func() {
				d, err := a.approvals.Wait(context.Background(), tc.held)
				if err != nil {
					t.Error(err)
				}
				decided <- d
			}()
			status, out := a.do(t, "POST", "/v1/approvals/"+tc.held.ID+"/"+tc.verb, "alice", tc.body, nil)
			verb := map[bool]string{true: "approved", false: "denied"}[tc.want.Approve]
			wantOut := map[string]any{"id": tc.held.ID, "tool": tc.held.Tool, "principal": "agent", "arguments_sha256": tc.held.ArgumentsSHA256, "decision": verb, "by": "alice"}
			if diff := cmp.Diff(wantOut, out); status != 200 || diff != "" {
				t.Errorf("status %d; (-want +got):\n%s", status, diff)
			}
			if diff := cmp.Diff(tc.want, <-decided); diff != "" {
				t.Errorf("the held call received (-want +got):\n%s", diff)
			}
			if status, _ := a.do(t, "POST", "/v1/approvals/"+tc.held.ID+"/approve", "alice", "", nil); status != 404 {
				t.Errorf("a second decision: status %d, want 404", status)
			}
		})
	}
}
