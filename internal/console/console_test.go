package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/pquerna/otp/totp"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/authn/oidctest"
	"github.com/mcpguard/mcpguard/internal/console"
)

// TestLogin: an operator logs in with password and a current TOTP code and gets a session
// cookie a script cannot read, sent only over a secure channel to this site, for at most eight
// hours; a wrong code is refused with 401 and one message, counted and recorded.
func TestLogin(t *testing.T) {
	f := newFixture(t)
	f.operator(t, "alice", "Desk")

	bad := f.browser(t)
	wrong := "000000"
	if f.code(t, "alice") == wrong {
		wrong = "111111"
	}
	r := bad.login("alice", password, wrong)
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, `class="error"`) || !strings.Contains(r.body, `id="login"`) {
		t.Fatalf("wrong code: status %d, want 401 and the login form again with an error:\n%.1500s", r.status, r.body)
	}
	if _, ok := bad.cookies[console.SessionCookie]; ok {
		t.Fatal("a refused login set a session cookie")
	}
	if r := bad.get("/console/audit"); !strings.Contains(r.body, `id="login"`) {
		t.Fatalf("without a session the audit page shows:\n%.1500s", r.body)
	}
	f.record(t, "the refused console login", func(rec *audit.Record) bool {
		return rec.Kind == audit.KindAuthFailure && rec.Principal == "alice" && strings.Contains(string(rec.Detail), `"console"`) &&
			len(rec.Reasons) == 1 && rec.Reasons[0] == "bad_totp"
	})

	b := f.browser(t)
	r = b.login("alice", password, f.code(t, "alice"))
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/console/" {
		t.Fatalf("good login: status %d, Location %q, want 303 to /console/:\n%.1500s", r.status, r.header.Get("Location"), r.body)
	}
	var set string
	for _, h := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(h, console.SessionCookie+"=") {
			set = h
		}
	}
	for _, attr := range []string{"HttpOnly", "Secure", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(set, attr) {
			t.Errorf("session cookie %q lacks %s", set, attr)
		}
	}
	if age := b.cookies[console.SessionCookie].MaxAge; age <= 0 || age > 8*3600 {
		t.Errorf("session cookie Max-Age %d, want at most 8 hours", age)
	}
	if r := b.do(http.MethodGet, "/", nil); r.status != http.StatusSeeOther || r.header.Get("Location") != "/console/" {
		t.Errorf("GET / on the admin listener: status %d, Location %q; want 303 to /console/", r.status, r.header.Get("Location"))
	}
	home := b.get("/console/")
	for _, want := range []string{`href="/console/audit"`, `href="/console/approvals"`, `href="/console/tools"`, `href="/console/keys"`,
		`href="/console/operators"`, `href="/console/blocks"`, `href="/console/charts"`, `id="logout"`, `id="verify-status"`, `id="checkpoint-age"`, `id="search"`} {
		if !strings.Contains(home.body, want) {
			t.Errorf("the logged-in home page lacks %s", want)
		}
	}
	f.record(t, "the console login", func(rec *audit.Record) bool {
		return rec.Kind == audit.KindAdmin && rec.Principal == "alice" && strings.Contains(string(rec.Detail), `"operator_login"`)
	})

	// Logging out ends the session: the cookie no longer opens a page.
	token := b.cookies[console.SessionCookie].Value
	r = b.post("/console/audit", "/console/logout", url.Values{})
	if !strings.Contains(r.body, `id="login"`) || !strings.Contains(r.body, "logged out") {
		t.Fatalf("after logout:\n%.1500s", r.body)
	}
	b.cookies[console.SessionCookie] = &http.Cookie{Name: console.SessionCookie, Value: token}
	if r := b.do(http.MethodGet, "/console/audit", nil); r.status != http.StatusSeeOther {
		t.Fatalf("the logged-out session still opens the audit page (status %d)", r.status)
	}
}

// TestCSRFAndHeaders: a POST without the session's CSRF token, or from another origin, is
// refused with 403 and changes nothing; every answer carries the console's security headers.
func TestCSRFAndHeaders(t *testing.T) {
	f := newFixture(t)
	f.operator(t, "alice", "Desk")
	b := f.loggedIn(t, "alice")

	create := url.Values{"name": {"agent-1"}, "roles": {"Agent"}}
	if r := b.do(http.MethodPost, "/console/keys", create); r.status != http.StatusForbidden {
		t.Errorf("POST without csrf: status %d, want 403", r.status)
	}
	bad := url.Values{"name": {"agent-1"}, "roles": {"Agent"}, "csrf": {"forged"}}
	if r := b.do(http.MethodPost, "/console/keys", bad); r.status != http.StatusForbidden {
		t.Errorf("POST with a forged csrf: status %d, want 403", r.status)
	}
	page := b.get("/console/keys")
	good := url.Values{"name": {"agent-1"}, "roles": {"Agent"}, "csrf": {csrf(t, page.body)}}
	for _, c := range []struct{ origin, site string }{
		{"http://evil.example", "cross-site"},
		{"http://evil.example", ""},
		{"null", "cross-site"},
		{"null", ""},
		{"", "same-site"},
	} {
		b.origin, b.site = c.origin, c.site
		if r := b.do(http.MethodPost, "/console/keys", good); r.status != http.StatusForbidden {
			t.Errorf("POST with Origin %q and Sec-Fetch-Site %q: status %d, want 403", c.origin, c.site, r.status)
		}
	}
	b.origin, b.site = f.admin.URL, "same-origin" // a browser that names the origin
	if r := b.get("/console/keys"); strings.Contains(r.body, `data-key-id=`) {
		t.Fatal("a refused POST created a key")
	}
	r := b.do(http.MethodPost, "/console/keys", good)
	if r.status != http.StatusOK || !regexp.MustCompile(`<code id="new-key">mcpg_[^<]+</code>`).MatchString(r.body) {
		t.Fatalf("POST with the token: status %d, want 200 and the new key shown once:\n%.2000s", r.status, r.body)
	}
	if r := b.get("/console/keys"); strings.Contains(r.body, `id="new-key"`) || !strings.Contains(r.body, `<td class="name">agent-1</td>`) {
		t.Errorf("the keys page again: the key must be listed and not shown:\n%.2000s", r.body)
	}

	for _, path := range []string{"/console/login", "/console/audit", "/console/nowhere", "/console/static/console.css"} {
		r := b.do(http.MethodGet, path, nil)
		h := r.header
		if got := h.Get("Content-Security-Policy"); got != console.ContentSecurityPolicy {
			t.Errorf("%s: Content-Security-Policy %q", path, got)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", path, h)
		}
	}
	if !strings.Contains(console.ContentSecurityPolicy, "default-src 'none'") || strings.Contains(console.ContentSecurityPolicy, "script-src") {
		t.Error("the console ships no script: its policy must allow none")
	}
}

var approvalRow = regexp.MustCompile(`<tr data-approval-id="([0-9a-f]+)">`)
var digestField = regexp.MustCompile(`name="arguments_sha256" value="([0-9a-f]{64})"`)

// TestFourEyes: the operator who made a held call cannot approve it in the console (nor can an
// operator whose roles do not include the approver role see it); another Desk operator can,
// and the waiting call then completes. The decision is recorded with the approver as actor.
func TestFourEyes(t *testing.T) {
	f := newFixture(t)
	f.operator(t, "alice", "Desk")
	f.operator(t, "bob", "Desk")
	f.operator(t, "carol", "Audit")
	agent := f.agent(t, "alice", "Agent")

	done := make(chan *mcp.CallToolResult, 1)
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
		defer cancel()
		res, err := agent.CallTool(ctx, &mcp.CallToolParams{Name: "bank.transfer", Arguments: map[string]any{"to": "IBAN-1", "amount": 125}})
		if err != nil {
			errc <- err
			return
		}
		done <- res
	}()

	alice := f.loggedIn(t, "alice")
	var page string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && !approvalRow.MatchString(page) {
		page = alice.get("/console/approvals").body
		time.Sleep(20 * time.Millisecond)
	}
	m := approvalRow.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the held call never showed on the approvals page:\n%.2000s", page)
	}
	id := m[1]
	for _, want := range []string{`<td class="tool">bank.transfer</td>`, `<td class="principal">alice`, `class="arguments"`, `IBAN-1`, `form class="decide"`,
		`name="decision" value="approve"`, `name="decision" value="deny"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the approvals page lacks %s", want)
		}
	}
	digest := digestField.FindStringSubmatch(page)[1]

	// Alice made the call: her approval is refused, and the call still waits.
	r := alice.post("/console/approvals", "/console/approvals/"+id, url.Values{"decision": {"approve"}, "reason": {"mine"}, "arguments_sha256": {digest}})
	if !strings.Contains(r.body, `class="flash error"`) || !strings.Contains(r.body, "self-approval refused") {
		t.Fatalf("self-approval: want an error flash naming the refusal:\n%.2000s", r.body)
	}
	if !strings.Contains(r.body, `data-approval-id="`+id+`"`) {
		t.Fatal("after the refused self-approval the call is no longer held")
	}

	// Carol holds no Desk role: she does not see it, and cannot decide it.
	carol := f.loggedIn(t, "carol")
	if strings.Contains(carol.get("/console/approvals").body, id) {
		t.Error("an operator without the approver role sees the held call")
	}
	r = carol.post("/console/approvals", "/console/approvals/"+id, url.Values{"decision": {"approve"}, "arguments_sha256": {digest}})
	if !strings.Contains(r.body, `class="flash error"`) {
		t.Errorf("an operator without the approver role approved:\n%.1500s", r.body)
	}

	bob := f.loggedIn(t, "bob")
	r = bob.post("/console/approvals", "/console/approvals/"+id, url.Values{"decision": {"approve"}, "reason": {"checked with the desk"}, "arguments_sha256": {digest}})
	if !strings.Contains(r.body, `class="flash"`) || !strings.Contains(r.body, "approved the call of alice to bank.transfer") {
		t.Fatalf("bob's approval: want a flash saying so:\n%.2000s", r.body)
	}
	select {
	case res := <-done:
		if res.IsError || len(res.Content) == 0 || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, "sent 125 to IBAN-1") {
			t.Fatalf("the approved call's result: %+v", res)
		}
	case err := <-errc:
		t.Fatalf("the approved call failed: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the approved call never completed")
	}
	f.record(t, "the approved call's outcome", func(rec *audit.Record) bool {
		return rec.Kind == audit.KindOutcome && rec.Tool == "bank.transfer"
	})
	charts := bob.get("/console/charts")
	if !strings.Contains(charts.body, `<svg class="chart"`) || !strings.Contains(charts.body, `data-tool="bank.transfer"`) {
		t.Errorf("the charts page draws no chart of bank.transfer:\n%.2000s", charts.body)
	}
	rec := f.record(t, "bob's approval", func(rec *audit.Record) bool {
		return rec.Kind == audit.KindApproval && rec.RequestID == id && rec.Decision == audit.DecisionAllow
	})
	var d struct{ Requester, Approver string }
	_ = json.Unmarshal(rec.Detail, &d)
	if rec.Principal != "bob" || d.Approver != "bob" || d.Requester != "alice" {
		t.Errorf("the approval record names principal %q, approver %q, requester %q; want bob, bob, alice", rec.Principal, d.Approver, d.Requester)
	}
}

// TestActsAreRecorded: revoking an API key in the console takes effect at the next call and is
// an audit record with the operator as actor, made through the console.
func TestActsAreRecorded(t *testing.T) {
	f := newFixture(t)
	f.operator(t, "alice", "Desk")
	key, rec, err := f.keys.Create(context.Background(), "agent-7", []string{"Agent"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f.agentWithKey(t, key.Reveal()) // the key works

	b := f.loggedIn(t, "alice")
	keys := b.get("/console/keys")
	if !strings.Contains(keys.body, `data-key-id="`+rec.ID+`"`) || !strings.Contains(keys.body, `form class="revoke"`) {
		t.Fatalf("the keys page does not list the key with a revoke form:\n%.2000s", keys.body)
	}
	r := b.post("/console/keys", "/console/keys/"+rec.ID+"/revoke", url.Values{"decision": {"revoke"}})
	if !strings.Contains(r.body, `class="flash"`) || !strings.Contains(r.body, "revoked key "+rec.ID) {
		t.Fatalf("after revoking:\n%.2000s", r.body)
	}
	if !regexp.MustCompile(`data-key-id="` + rec.ID + `">[\s\S]*?<td class="status">revoked</td>`).MatchString(r.body) {
		t.Error("the keys page does not show the key revoked")
	}
	got := f.record(t, "the revocation", func(r *audit.Record) bool {
		return r.Kind == audit.KindAdmin && strings.Contains(string(r.Detail), `"api_key.revoke"`)
	})
	var d struct {
		Via    string
		Target struct {
			KeyID string `json:"key_id"`
		}
	}
	_ = json.Unmarshal(got.Detail, &d)
	if got.Principal != "alice" || got.AuthMethod != "operator" || d.Via != "console" || d.Target.KeyID != rec.ID {
		t.Errorf("revocation record: principal %q, auth %q, via %q, key %q; want alice, operator, console, %s", got.Principal, got.AuthMethod, d.Via, d.Target.KeyID, rec.ID)
	}

	// Disabling an operator ends their sessions at once.
	f.operator(t, "bob", "Desk")
	bob := f.loggedIn(t, "bob")
	r = b.post("/console/operators", "/console/operators/bob/disable", url.Values{})
	if !strings.Contains(r.body, "disabled bob") || !regexp.MustCompile(`data-operator="bob">[\s\S]*?<td class="status">disabled</td>`).MatchString(r.body) {
		t.Fatalf("after disabling bob:\n%.2000s", r.body)
	}
	if r := bob.do(http.MethodGet, "/console/audit", nil); r.status != http.StatusSeeOther {
		t.Errorf("a disabled operator's session still opens pages (status %d)", r.status)
	}
	f.record(t, "bob's disabling", func(r *audit.Record) bool {
		return r.Kind == audit.KindAdmin && r.Principal == "alice" && strings.Contains(string(r.Detail), `"operator.disable"`)
	})
}

// TestHostileDataIsInert: a tool description carrying a script, a terminal escape, a
// right-to-left override and tag characters is shown escaped, with them made visible and
// flagged, on the tools page; approving the definition is recorded.
func TestHostileDataIsInert(t *testing.T) {
	f := newFixture(t)
	f.operator(t, "alice", "Desk")
	agent := f.agent(t, "agent-1", "Agent")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := agent.ListTools(ctx, nil); err != nil {
		t.Fatal(err)
	}
	b := f.loggedIn(t, "alice")
	var page string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(page, `data-tool="bank.notes"`) {
		page = b.get("/console/tools").body
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(page, `data-tool="bank.notes"`) {
		t.Fatalf("the screened tool is not on the tools page:\n%.3000s", page)
	}
	if strings.Contains(strings.ToLower(page), "<script") {
		t.Fatal("the page holds a raw <script")
	}
	for _, bad := range []string{"\x1b", "\u202E", "\U000E0049"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page holds the raw character %q", bad)
		}
	}
	for _, want := range []string{`&lt;script&gt;alert(1)&lt;/script&gt;`, `␛[31m`, `\u{202E}`, `\u{E0049}`, `class="flag-hostile"`, `class="diff"`, `<ins class="ins">`, `form class="approve-tool"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the tools page lacks %s", want)
		}
	}
	r := b.post("/console/tools", "/console/tools/approve", url.Values{"tool": {"bank.notes"}, "decision": {"approve"}})
	if !strings.Contains(r.body, "approved the definition of bank.notes") || strings.Contains(r.body, `data-tool="bank.notes"`) {
		t.Fatalf("after approving:\n%.2000s", r.body)
	}
	f.record(t, "the tool approval", func(r *audit.Record) bool {
		return r.Kind == audit.KindAdmin && r.Principal == "alice" && r.Tool == "bank.notes" && strings.Contains(string(r.Detail), `"console"`)
	})
}

// TestAuditPages: the audit page lists the newest records with links, a search narrows them,
// a record's page shows its JSON and an inclusion proof that checks.
func TestAuditPages(t *testing.T) {
	f := newFixture(t)
	f.operator(t, "alice", "Desk")
	b := f.loggedIn(t, "alice")
	f.record(t, "the login", func(r *audit.Record) bool { return r.Kind == audit.KindAdmin && r.Principal == "alice" })
	var page string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(page, "<strong>verified</strong>") {
		page = b.get("/console/audit?principal=alice").body
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(page, "<strong>verified</strong>") {
		t.Fatalf("the verify status never says verified:\n%.3000s", page)
	}
	m := regexp.MustCompile(`<tr data-seq="(\d+)"><td class="seq"><a href="/console/audit/(\d+)">`).FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, `<td class="principal">alice</td>`) {
		t.Fatalf("no record row for alice:\n%.3000s", page)
	}
	rec := b.get("/console/audit/" + m[1])
	for _, want := range []string{`id="record"`, `id="inclusion-proof"`, `class="proof-ok"`, `class="proof-hashes"`} {
		if !strings.Contains(rec.body, want) {
			t.Errorf("record page lacks %s:\n%.3000s", want, rec.body)
		}
	}
	if r := b.get("/console/audit?since=yesterday"); r.status != http.StatusBadRequest || !strings.Contains(r.body, `class="flash error"`) || !strings.Contains(r.body, "since") {
		t.Errorf("a bad since: status %d, want 400 with an error naming it", r.status)
	}
	if r := b.get("/console/charts"); r.status != http.StatusOK {
		t.Errorf("charts: status %d", r.status)
	}
	r := b.post("/console/blocks", "/console/blocks", url.Values{"kind": {"address"}, "target": {"203.0.113.7"}, "reason": {"scanner"}, "duration": {"1h"}})
	if !strings.Contains(r.body, `data-block="address:203.0.113.7"`) || !strings.Contains(r.body, "blocked address 203.0.113.7") {
		t.Fatalf("after blocking:\n%.2000s", r.body)
	}
	r = b.post("/console/blocks", "/console/blocks/lift", url.Values{"kind": {"address"}, "target": {"203.0.113.7"}})
	if strings.Contains(r.body, `data-block="address:203.0.113.7"`) || !strings.Contains(r.body, "lifted") {
		t.Fatalf("after lifting:\n%.2000s", r.body)
	}
}

// TestOIDCLogin: with admin.oidc the login page links to the provider; the login the console
// starts there ends in the console's session, as the operator the provider named, and is
// recorded. Without admin.oidc the page has no such link.
func TestOIDCLogin(t *testing.T) {
	idp := oidctest.New(t, &oidctest.Options{User: "alice"})
	f := newFixtureAdmin(t, fmt.Sprintf(`, oidc: {issuer: %q, client_id: %q, redirect_url: "http://127.0.0.1:1/v1/login/oidc/callback"}`,
		idp.Issuer, idp.ClientID()))
	f.operator(t, "alice", "Desk")
	b := f.browser(t)
	page := b.get("/console/login")
	if !strings.Contains(page.body, `href="/v1/login/oidc?to=console"`) {
		t.Fatalf("the login page has no link to the OIDC login:\n%.2000s", page.body)
	}
	r := b.do(http.MethodGet, "/v1/login/oidc?to=console", nil)
	if r.status != http.StatusFound {
		t.Fatalf("GET /v1/login/oidc?to=console: %d %s, want 302 to the provider", r.status, r.body)
	}
	q := idp.Authorize(t, r.header.Get("Location"))
	r = b.do(http.MethodGet, "/v1/login/oidc/callback?"+q.Encode(), nil)
	if r.status != http.StatusOK || !strings.Contains(r.body, "url=/console/") {
		t.Fatalf("callback: %d %s, want 200 and a page that moves on to the console", r.status, r.body)
	}
	if _, ok := b.cookies[console.SessionCookie]; !ok {
		t.Fatalf("the callback set no console session cookie: %v", r.header.Values("Set-Cookie"))
	}
	home := b.get("/console/")
	if home.status != http.StatusOK || !strings.Contains(home.body, `id="logout"`) || !strings.Contains(home.body, "alice") {
		t.Fatalf("the console after an OIDC login: %d\n%.2000s", home.status, home.body)
	}
	f.record(t, "the OIDC login", func(rec *audit.Record) bool {
		return rec.Kind == audit.KindAdmin && rec.Principal == "alice" && strings.Contains(string(rec.Detail), `"via":"oidc"`)
	})

	plain := newFixture(t).browser(t)
	if page := plain.get("/console/login"); strings.Contains(page.body, "/v1/login/oidc") {
		t.Errorf("without admin.oidc the login page links to the OIDC login:\n%.2000s", page.body)
	}
}

var (
	newPasswordField = regexp.MustCompile(`<code id="new-password">([^<]+)</code>`)
	secretField      = regexp.MustCompile(`<code id="secret">([^<]+)</code>`)
)

// TestCreateAndEnrollOperator: an operator creates another in the console and sees their
// one-time password once; the new operator cannot log in with it, proves it at /console/enroll,
// scans the secret, and confirms with a code while choosing a new password — one recorded act
// that changes nothing when refused; then only the new password and the app log in. Resetting
// the app ends the sessions and sends the operator back to enrolment.
func TestCreateAndEnrollOperator(t *testing.T) {
	f := newFixture(t)
	f.operator(t, "alice", "Admin")
	b := f.loggedIn(t, "alice")

	r := b.post("/console/operators", "/console/operators", url.Values{"name": {"bob"}, "roles": {"Desk, Risk"}})
	m := newPasswordField.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("creating bob: status %d (Cache-Control %q), want 200 and the one-time password shown:\n%.2000s", r.status, r.header.Get("Cache-Control"), r.body)
	}
	oneTime := m[1]
	if !regexp.MustCompile(`data-operator="bob">[\s\S]*?<td class="roles">Desk,Risk</td><td class="mfa">none</td>`).MatchString(r.body) {
		t.Errorf("the operators page does not list bob with roles Desk,Risk and no MFA:\n%.3000s", r.body)
	}
	if again := b.get("/console/operators"); strings.Contains(again.body, oneTime) {
		t.Error("the one-time password is shown again on the next visit")
	}
	for _, c := range []struct {
		name   string
		status int
		want   string
	}{
		{"bob", http.StatusConflict, `operator "bob" exists already`},
		{"Bob <script>", http.StatusBadRequest, "use 1-64 lower-case letters, digits and . _ @ -"},
		{"", http.StatusBadRequest, "use 1-64 lower-case letters"},
	} {
		r := b.post("/console/operators", "/console/operators", url.Values{"name": {c.name}})
		if r.status != c.status || !strings.Contains(html.UnescapeString(r.body), c.want) || newPasswordField.MatchString(r.body) {
			t.Errorf("creating %q: status %d, want %d and %q:\n%.1500s", c.name, r.status, c.status, c.want, r.body)
		}
	}
	f.record(t, "bob's creation", func(r *audit.Record) bool {
		return r.Kind == audit.KindAdmin && r.Principal == "alice" && strings.Contains(string(r.Detail), `"operator.create"`) &&
			strings.Contains(string(r.Detail), `"bob"`) && !strings.Contains(string(r.Detail), oneTime)
	})

	// The one-time password alone opens nothing.
	nb := f.browser(t)
	if r := nb.login("bob", oneTime, "123456"); r.status != http.StatusUnauthorized {
		t.Fatalf("bob logging in before enrolling: status %d, want 401", r.status)
	}
	enroll := func(form url.Values) response {
		page := nb.get("/console/enroll")
		form.Set("csrf", csrf(t, page.body))
		return nb.do(http.MethodPost, "/console/enroll", form)
	}
	if r := enroll(url.Values{"step": {"begin"}, "operator": {"bob"}, "password": {"wrong password 1"}}); r.status != http.StatusUnauthorized || secretField.MatchString(r.body) {
		t.Fatalf("enrolling with a wrong password: status %d, want 401 and no secret:\n%.1500s", r.status, r.body)
	}
	f.record(t, "the refused enrolment", func(r *audit.Record) bool {
		return r.Principal == "bob" && strings.Contains(string(r.Detail), `"operator.enroll_mfa"`) && strings.Contains(string(r.Detail), `"bad_password"`)
	})
	r = enroll(url.Values{"step": {"begin"}, "operator": {"bob"}, "password": {oneTime}})
	m = secretField.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil || !strings.Contains(r.body, `src="data:image/png;base64,`) {
		t.Fatalf("enrolling with the one-time password: status %d, want 200 with the QR code and the secret:\n%.1500s", r.status, r.body)
	}
	secret := m[1]
	// The current step's code confirms; the login that follows uses the next step's, which the
	// gateway accepts too (one step either side) and which confirming did not use up. (A code
	// from a step back would fail when a step boundary passes before the gateway checks it.)
	now := time.Now()
	code, _ := totp.GenerateCode(secret, now)
	next, _ := totp.GenerateCode(secret, now.Add(30*time.Second))
	const newPassword = "a passphrase bob chose"
	confirm := url.Values{"step": {"confirm"}, "operator": {"bob"}, "password": {oneTime}, "new_password": {newPassword}, "new_password_again": {newPassword}}
	bad := "000000"
	for _, b := range []string{"111111", "222222"} {
		if bad == code || bad == next {
			bad = b
		}
	}
	for _, c := range []struct {
		name   string
		edit   func(url.Values)
		status int
		want   string
	}{
		{"a wrong code", func(v url.Values) { v.Set("totp", bad) }, http.StatusUnauthorized, "the code is wrong or already used"},
		{"two different passwords", func(v url.Values) { v.Set("totp", code); v.Set("new_password_again", "another passphrase") }, http.StatusBadRequest, "the two new passwords differ"},
		{"a short password", func(v url.Values) {
			v.Set("totp", code)
			v.Set("new_password", "short")
			v.Set("new_password_again", "short")
		}, http.StatusBadRequest, "at least 12 characters"},
		{"the one-time password again", func(v url.Values) {
			v.Set("totp", code)
			v.Set("new_password", oneTime)
			v.Set("new_password_again", oneTime)
		}, http.StatusBadRequest, "choose a new password"},
	} {
		form := url.Values{}
		for k, v := range confirm {
			form[k] = slices.Clone(v)
		}
		c.edit(form)
		if r := enroll(form); r.status != c.status || !strings.Contains(r.body, c.want) {
			t.Errorf("confirming with %s: status %d, want %d and %q:\n%.1500s", c.name, r.status, c.status, c.want, r.body)
		}
	}
	if r := nb.login("bob", newPassword, f.codeOf(t, secret)); r.status != http.StatusUnauthorized {
		t.Fatalf("after refused confirmations bob logs in with the new password: status %d", r.status)
	}
	confirm.Set("totp", code)
	if r := enroll(confirm); r.status != http.StatusSeeOther || r.header.Get("Location") != "/console/login" {
		t.Fatalf("confirming: status %d, Location %q, want 303 to the login page:\n%.1500s", r.status, r.header.Get("Location"), r.body)
	}
	f.record(t, "bob's enrolment", func(r *audit.Record) bool {
		return r.Kind == audit.KindAdmin && r.Principal == "bob" && r.AuthMethod == "password" &&
			strings.Contains(string(r.Detail), `"operator.enroll_mfa"`) && strings.Contains(string(r.Detail), `"console"`) && !strings.Contains(string(r.Detail), "refused")
	})
	if r := nb.login("bob", oneTime, f.codeOf(t, secret)); r.status != http.StatusUnauthorized {
		t.Errorf("the one-time password still logs in after enrolment: status %d", r.status)
	}
	if r := nb.login("bob", newPassword, next); r.status != http.StatusSeeOther {
		t.Fatalf("bob logging in with the new password and the app: status %d:\n%.1500s", r.status, r.body)
	}
	if r := enroll(url.Values{"step": {"begin"}, "operator": {"bob"}, "password": {newPassword}}); r.status != http.StatusConflict || secretField.MatchString(r.body) {
		t.Errorf("enrolling again over an enrolled app: status %d, want 409 and no secret", r.status)
	}

	// Resetting bob's app ends his session; he enrols again with his password.
	r = b.post("/console/operators", "/console/operators/bob/reset-mfa", url.Values{})
	if !strings.Contains(r.body, "removed the authenticator app of bob") {
		t.Fatalf("after resetting bob's MFA:\n%.2000s", r.body)
	}
	if r := nb.do(http.MethodGet, "/console/audit", nil); r.status != http.StatusSeeOther {
		t.Errorf("bob's session still opens pages after the reset (status %d)", r.status)
	}
	if r := enroll(url.Values{"step": {"begin"}, "operator": {"bob"}, "password": {newPassword}}); r.status != http.StatusOK || !secretField.MatchString(r.body) {
		t.Errorf("enrolling again after the reset: status %d, want 200 and a new secret", r.status)
	}
	if r := b.post("/console/operators", "/console/operators/alice/reset-mfa", url.Values{}); !strings.Contains(r.body, "you cannot do this to your own account") {
		t.Errorf("alice resetting her own MFA:\n%.1500s", r.body)
	}
}
