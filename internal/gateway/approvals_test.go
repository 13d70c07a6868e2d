package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/keystore"
	"github.com/mcpguard/mcpguard/internal/store"
)

// approvalPolicy holds every call of rec.echo by an Agent for a Desk operator's approval.
const approvalPolicy = `
roles:
  - role: Agent
    permissions:
      - tool_name: rec.echo
        require_approval: {approver_role: Desk, timeout: %s}
`

// approvalFixture is a gateway whose policy holds rec.echo calls for approval, its admin API,
// and the identity database where its API keys and operators live.
type approvalFixture struct {
	tg    *testGateway
	admin *httptest.Server
	keys  *authn.APIKeys
	ops   *authn.Operators
	early bool // the operators' clock runs three TOTP steps behind, for enrolment
}

// newApprovalFixture starts a gateway over the identity database db (shared by the gateways a
// test restarts) with the given approval timeout and extra configuration.
func newApprovalFixture(t *testing.T, db, timeout, extra string) *approvalFixture {
	t.Helper()
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, policyFile, fmt.Appendf(nil, approvalPolicy, timeout))
	tg := newTestGateway(t, fmt.Sprintf("api_keys_database: %q\npolicy_file: %q\nadmin: {listen: \"127.0.0.1:1\"}\n%s", db, policyFile, extra))
	f := &approvalFixture{tg: tg, admin: httptest.NewServer(tg.g.AdminHandler())}
	t.Cleanup(f.admin.Close)
	ctx := context.Background()
	st, err := keystore.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	opStore, err := st.Operators(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.keys = authn.NewAPIKeys(st, nil)
	f.ops, err = authn.NewOperators(ctx, opStore, opStore, &authn.OperatorsOptions{
		Hasher: authn.NewPasswordHasher(&authn.PasswordHasherOptions{Params: authn.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}}),
		Now: func() time.Time {
			if f.early {
				return time.Now().Add(-90 * time.Second)
			}
			return time.Now()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// apiKey issues an API key and returns its Authorization header.
func (f *approvalFixture) apiKey(t *testing.T, who string, roles ...string) string {
	t.Helper()
	s, _, err := f.keys.Create(context.Background(), who, roles, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + s.Reveal()
}

// operator creates an operator, enrols TOTP and logs in with password and code, as `mcpguard
// operators login` does; it returns the session's Authorization header.
func (f *approvalFixture) operator(t *testing.T, name string, roles ...string) string {
	t.Helper()
	ctx := context.Background()
	const password = "correct horse battery staple"
	if err := f.ops.Create(ctx, name, password, roles); err != nil {
		t.Fatal(err)
	}
	e, err := f.ops.BeginEnrollment(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	// Enrolment consumes a code: confirm with one from three steps ago, log in with the current one.
	f.early = true
	early, _ := totp.GenerateCode(e.Secret.Reveal(), time.Now().Add(-90*time.Second))
	err = f.ops.ConfirmEnrollment(ctx, name, early)
	f.early = false
	if err != nil {
		t.Fatal(err)
	}
	code, _ := totp.GenerateCode(e.Secret.Reveal(), time.Now())
	tok, _, err := f.ops.Login(ctx, name, password, code)
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + tok.Reveal()
}

// session opens a legacy MCP session as auth.
func (f *approvalFixture) session(t *testing.T, auth string) map[string]string {
	t.Helper()
	_, h, _ := post(t, f.tg.url, map[string]string{"Authorization": auth}, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	return map[string]string{"Authorization": auth, "Mcp-Session-Id": h.Get("Mcp-Session-Id"), "MCP-Protocol-Version": "2025-11-25"}
}

type callResult struct {
	status int
	msg    map[string]any
}

// call sends tools/call rec.echo with the raw arguments args, in the background.
func (f *approvalFixture) call(t *testing.T, sess map[string]string, args string) chan callResult {
	ch := make(chan callResult, 1)
	go func() {
		st, _, msg := post(t, f.tg.url, sess, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"rec.echo","arguments":`+args+`}}`)
		ch <- callResult{st, msg}
	}()
	return ch
}

// do sends an admin API request.
func (f *approvalFixture) do(t *testing.T, method, path, auth, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, f.admin.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// waitPending polls the list, as auth, until an approval of the given status shows up, and
// returns it.
func (f *approvalFixture) waitPending(t *testing.T, auth, status string) map[string]any {
	t.Helper()
	return f.waitFor(t, auth, func(a map[string]any) bool { return a["status"] == status })
}

// waitFor polls the list, as auth, until an approval matching ok shows up, and returns it.
func (f *approvalFixture) waitFor(t *testing.T, auth string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		_, out := f.do(t, http.MethodGet, "/v1/approvals", auth, "")
		list, _ := out["approvals"].([]any)
		for _, a := range list {
			if a := a.(map[string]any); ok(a) {
				return a
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the awaited approval never showed up")
	return nil
}

// forwarded returns the arguments of every tools/call the recording upstream received.
func (f *approvalFixture) forwarded(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(readRecord(t, f.tg.record), "\n") {
		var msg struct {
			Method string `json:"method"`
			Params struct {
				Arguments json.RawMessage `json:"arguments"`
			} `json:"params"`
		}
		if json.Unmarshal([]byte(line), &msg) == nil && msg.Method == "tools/call" {
			out = append(out, string(msg.Params.Arguments))
		}
	}
	return out
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestHumanApproval: a call whose permission requires approval waits until an operator with the
// approver role approves it through the admin API, then runs; a denied or timed-out call never
// reaches the upstream; an operator without the role neither sees nor decides it.
func TestHumanApproval(t *testing.T) {
	f := newApprovalFixture(t, filepath.Join(t.TempDir(), "keys.db"), "3s", "")
	agent := f.session(t, f.apiKey(t, "trading-agent", "Agent"))
	alice, bob := f.operator(t, "alice", "Desk"), f.operator(t, "bob", "Compliance")

	// Approved: the call runs.
	done := f.call(t, agent, `{"text":"APPROVED"}`)
	a := f.waitPending(t, alice, "pending")
	id := a["id"].(string)
	if a["tool"] != "rec.echo" || a["principal"] != "trading-agent" {
		t.Fatalf("pending approval %v", a)
	}
	if _, out := f.do(t, http.MethodGet, "/v1/approvals", bob, ""); len(out["approvals"].([]any)) != 0 {
		t.Errorf("an operator without the approver role sees %v", out["approvals"])
	}
	if st, _ := f.do(t, http.MethodPost, "/v1/approvals/"+id+"/approve", bob, ""); st != http.StatusNotFound {
		t.Errorf("an operator without the role approved: status %d", st)
	}
	if st, _ := f.do(t, http.MethodPost, "/v1/approvals/"+id+"/approve", "", ""); st != http.StatusUnauthorized {
		t.Errorf("an unauthenticated approval: status %d, want 401", st)
	}
	if st, out := f.do(t, http.MethodPost, "/v1/approvals/"+id+"/approve", alice, `{"reason":"test"}`); st != http.StatusOK || out["decision"] != "approved" {
		t.Fatalf("approve: %d %v", st, out)
	}
	if r := <-done; r.status != http.StatusOK || !strings.Contains(fmt.Sprint(r.msg["result"]), "echo: APPROVED") {
		t.Fatalf("approved call: %d %v", r.status, r.msg)
	}

	// Denied: refused, never forwarded.
	done = f.call(t, agent, `{"text":"DENIED"}`)
	id = f.waitPending(t, alice, "pending")["id"].(string)
	f.do(t, http.MethodPost, "/v1/approvals/"+id+"/deny", alice, `{"reason":"test"}`)
	if r := <-done; r.status != http.StatusForbidden || errCode(r.msg) != -31001 || !strings.Contains(fmt.Sprint(r.msg["error"]), "alice refused") {
		t.Fatalf("denied call: %d %v", r.status, r.msg)
	}

	// Timed out: refused, never forwarded.
	done = f.call(t, agent, `{"text":"TIMEDOUT"}`)
	f.waitPending(t, alice, "pending")
	if r := <-done; r.status != http.StatusForbidden || !strings.Contains(fmt.Sprint(r.msg["error"]), "within") {
		t.Fatalf("timed-out call: %d %v", r.status, r.msg)
	}
	if got := f.forwarded(t); len(got) != 1 || !strings.Contains(got[0], "APPROVED") {
		t.Errorf("the upstream saw %q, want only the approved call", got)
	}
}

// TestApprovalIsFourEyes is the security review's finding: an API key holding both the agent's
// role and the approver role cannot approve its own trade — nor any held call, since only a
// human operator's MFA session can — and an operator cannot approve a call made under their
// own name, in any case or with look-alike letters. Another operator can. The upstream sees
// only the call that another person approved.
func TestApprovalIsFourEyes(t *testing.T) {
	f := newApprovalFixture(t, filepath.Join(t.TempDir(), "keys.db"), "1h", "")
	both := f.apiKey(t, "alice", "Agent", "Desk") // the key of the finding
	agent := f.session(t, both)
	alice, dave := f.operator(t, "alice", "Desk"), f.operator(t, "dave", "Desk")

	done := f.call(t, agent, `{"text":"SELF"}`)
	id := f.waitPending(t, both, "pending")["id"].(string) // the key may list what waits
	st, out := f.do(t, http.MethodPost, "/v1/approvals/"+id+"/approve", both, "")
	if msg, _ := out["error"].(string); st != http.StatusForbidden || !strings.Contains(msg, "only by a human operator, not with API key credentials") || !strings.Contains(msg, "mcpguard operators login") {
		t.Errorf("the API key approving its own call: %d %v, want 403 naming the credential needed", st, out)
	}
	st, out = f.do(t, http.MethodPost, "/v1/approvals/"+id+"/approve", alice, "")
	if msg, _ := out["error"].(string); st != http.StatusForbidden || !strings.Contains(msg, "self-approval refused: alice made this call") {
		t.Errorf("operator alice approving the call of her key: %d %v, want 403 self-approval", st, out)
	}
	if got := f.forwarded(t); len(got) != 0 {
		t.Fatalf("the upstream saw %q before anyone else approved", got)
	}

	// A look-alike of alice's name is still alice.
	lookalike := f.session(t, f.apiKey(t, "\u0410lice", "Agent")) // Cyrillic А
	other := f.call(t, lookalike, `{"text":"LOOKALIKE"}`)
	id2 := f.waitFor(t, alice, func(a map[string]any) bool { return a["principal"] == "\u0410lice" })["id"].(string)
	if st, out := f.do(t, http.MethodPost, "/v1/approvals/"+id2+"/approve", alice, ""); st != http.StatusForbidden {
		t.Errorf("alice approving the call of \u0410lice: %d %v, want 403", st, out)
	}

	if st, out := f.do(t, http.MethodPost, "/v1/approvals/"+id+"/approve", dave, ""); st != http.StatusOK {
		t.Fatalf("dave approving: %d %v", st, out)
	}
	if r := <-done; r.status != http.StatusOK {
		t.Fatalf("the call dave approved: %d %v", r.status, r.msg)
	}
	f.do(t, http.MethodPost, "/v1/approvals/"+id2+"/deny", dave, "")
	<-other
	if got := f.forwarded(t); len(got) != 1 || !strings.Contains(got[0], "SELF") {
		t.Errorf("the upstream saw %q, want only the call dave approved", got)
	}
}

// TestApprovalBoundToArguments: the approver sees the SHA-256 of the arguments exactly as the
// client sent them (spacing and key order included) and the admin API refuses a decision on
// another digest; the upstream receives those very bytes. The decision's audit record, written
// before the call is forwarded, names requester, approver, role and digest.
func TestApprovalBoundToArguments(t *testing.T) {
	section, auditDB, _ := auditConfig(t)
	f := newApprovalFixture(t, filepath.Join(t.TempDir(), "keys.db"), "1h", section)
	agent := f.session(t, f.apiKey(t, "trading-agent", "Agent"))
	alice := f.operator(t, "alice", "Desk")

	const args = `{ "text" : "BUY 100 VNM",  "z":1 }`
	done := f.call(t, agent, args)
	a := f.waitPending(t, alice, "pending")
	id, want := a["id"].(string), sha256Hex(args)
	if a["arguments_sha256"] != want {
		t.Fatalf("listed arguments_sha256 %v, want the SHA-256 of the raw arguments %s", a["arguments_sha256"], want)
	}
	st, out := f.do(t, http.MethodPost, "/v1/approvals/"+id+"/approve", alice, `{"arguments_sha256":"`+sha256Hex(`{"text":"BUY 100 VNM","z":1}`)+`"}`)
	if st != http.StatusConflict {
		t.Errorf("approving another digest: %d %v, want 409", st, out)
	}
	if got := f.forwarded(t); len(got) != 0 {
		t.Fatalf("the upstream saw %q after a refused decision", got)
	}
	if st, out := f.do(t, http.MethodPost, "/v1/approvals/"+id+"/approve", alice, `{"arguments_sha256":"`+want+`"}`); st != http.StatusOK || out["arguments_sha256"] != want {
		t.Fatalf("approving the listed digest: %d %v", st, out)
	}
	if r := <-done; r.status != http.StatusOK {
		t.Fatalf("the approved call: %d %v", r.status, r.msg)
	}
	if got := f.forwarded(t); len(got) != 1 || sha256Hex(got[0]) != want {
		t.Errorf("the upstream received %q, want the approved bytes %q", got, args)
	}

	st2 := openStore(t, auditDB)
	var kinds []string
	var detail map[string]any
	// The outcome record is written after the call is answered: wait for it.
	eventually(t, "the call's outcome record", func() bool {
		kinds, detail = nil, nil
		_ = st2.Scan(context.Background(), 0, func(r *store.Record) error {
			rec, err := audit.ParseRecord(r.Data)
			if err != nil || rec.Tool != "rec.echo" {
				return nil
			}
			kinds = append(kinds, string(rec.Kind))
			if rec.Kind == audit.KindApproval {
				if err := json.Unmarshal(rec.Detail, &detail); err != nil || rec.Principal != "alice" || rec.Decision != audit.DecisionAllow {
					t.Errorf("approval record %+v (%v)", rec, err)
				}
			}
			return nil
		})
		return len(kinds) >= 3
	})
	if got := strings.Join(kinds, ","); got != "approval,call,outcome" {
		t.Errorf("records %v: want the approval before the call", kinds)
	}
	for k, v := range map[string]string{"requester": "trading-agent", "approver": "alice", "approver_role": "Desk", "arguments_sha256": want} {
		if detail[k] != v {
			t.Errorf("approval record detail %s = %v, want %q", k, detail[k], v)
		}
	}
}

// TestApprovalSurvivesRestart: a held call's approval outlives the gateway. The client gives
// up, the gateway stops; a new gateway over the same identity database lists the call, an
// operator approves it, and the agent's retry of the same call is forwarded — once: a second
// retry is held anew. A retry with other arguments is not covered by the approval.
func TestApprovalSurvivesRestart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "keys.db")
	f := newApprovalFixture(t, db, "1h", "")
	key := f.apiKey(t, "trading-agent", "Agent")
	alice := f.operator(t, "alice", "Desk")

	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan struct{})
	go func() {
		defer close(gaveUp)
		sess := f.session(t, key)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.tg.url, strings.NewReader(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"RESTART"}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for k, v := range sess {
			req.Header.Set(k, v)
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	held := f.waitPending(t, alice, "pending")
	cancel()
	<-gaveUp
	f.admin.Close()
	if err := f.tg.g.Close(); err != nil {
		t.Fatal(err)
	}

	g := newApprovalFixture(t, db, "1h", "")
	a := g.waitPending(t, alice, "pending")
	if a["id"] != held["id"] || a["arguments_sha256"] != sha256Hex(`{"text":"RESTART"}`) {
		t.Fatalf("after the restart: %v, want %v", a, held)
	}
	if st, out := g.do(t, http.MethodPost, "/v1/approvals/"+a["id"].(string)+"/approve", alice, ""); st != http.StatusOK {
		t.Fatalf("approve after the restart: %d %v", st, out)
	}
	if got := g.waitPending(t, alice, "approved"); got["approved_by"] != "alice" {
		t.Errorf("listed after approval: %v", got)
	}
	agent := g.session(t, key)
	if r := <-g.call(t, agent, `{"text":"RESTART"}`); r.status != http.StatusOK || !strings.Contains(fmt.Sprint(r.msg["result"]), "echo: RESTART") {
		t.Fatalf("the retry: %d %v", r.status, r.msg)
	}
	if got := g.forwarded(t); len(got) != 1 {
		t.Fatalf("the upstream saw %q, want the retried call once", got)
	}

	// Used once: the same call again waits for a new approval, which is denied.
	again := g.call(t, agent, `{"text":"RESTART"}`)
	b := g.waitPending(t, alice, "pending")
	if b["id"] == a["id"] {
		t.Fatal("the consumed approval is pending again")
	}
	g.do(t, http.MethodPost, "/v1/approvals/"+b["id"].(string)+"/deny", alice, "")
	if r := <-again; r.status != http.StatusForbidden {
		t.Errorf("the second retry: %d %v, want 403", r.status, r.msg)
	}
	if got := g.forwarded(t); len(got) != 1 {
		t.Errorf("the upstream saw %q, want the approved call once", got)
	}
}
