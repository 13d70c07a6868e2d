package console_test

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/pquerna/otp/totp"

	"github.com/mcpguard/mcpguard/cmd/mcpguard/wiring"
	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/gateway"
	"github.com/mcpguard/mcpguard/internal/keystore"
	"github.com/mcpguard/mcpguard/internal/store"
	"github.com/mcpguard/mcpguard/internal/store/sqlite"
)

// hostileDescription is the description of the upstream's notes tool: markup, a terminal
// escape, a right-to-left override and Unicode tag characters.
const hostileDescription = "Take notes <script>alert(1)</script> \x1b[31mred\x1b[0m \u202Egnp.exe\u202C \U000E0049\U000E0047\U000E004E"

// consolePolicy holds every call of bank.transfer by an Agent for a Desk operator's approval.
const consolePolicy = `
roles:
  - role: Agent
    permissions:
      - tool_name: bank.transfer
        require_approval: {approver_role: Desk, timeout: 1m}
      - tool_name: bank.notes
`

const password = "correct horse battery staple"

// fixture is a gateway built from its configuration as `mcpguard serve` builds it, with the
// console on, over an HTTP upstream with two tools; its admin listener is an httptest server.
type fixture struct {
	g       *gateway.Gateway
	mcpURL  string
	admin   *httptest.Server
	auditDB string
	ops     *authn.Operators
	keys    *authn.APIKeys
	secrets map[string]string // operator → TOTP secret
	mu      sync.Mutex
	early   bool
}

// bankServer is the upstream: transfer (held for approval by the policy) and notes, whose
// description is hostile (screened by tool pinning, so held back for review).
func bankServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "bank", Version: "1"}, nil)
	type transferArgs struct {
		To     string `json:"to"`
		Amount int    `json:"amount"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "transfer", Description: "Move money"}, func(_ context.Context, _ *mcp.CallToolRequest, in transferArgs) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("sent %d to %s", in.Amount, in.To)}}}, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "notes", Description: hostileDescription}, func(_ context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}, nil, nil
	})
	return s
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureAdmin(t, "")
}

// newFixtureAdmin is newFixture with more keys of the admin section (a YAML flow mapping's
// entries, each after a comma).
func newFixtureAdmin(t *testing.T, admin string) *fixture {
	t.Helper()
	dir := t.TempDir()
	up := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return bankServer() }, &mcp.StreamableHTTPOptions{JSONResponse: true}))
	t.Cleanup(up.Close)
	signer, _, err := audit.GenerateKey("mcpguard-console-test")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "audit.key")
	if err := os.WriteFile(keyFile, []byte(signer), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MCPGUARD_TEST_REDACTION_KEY", strings.Repeat("k", 40))
	policyFile := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(consolePolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &fixture{auditDB: filepath.Join(dir, "audit.db"), secrets: map[string]string{}}
	identities := filepath.Join(dir, "identities.db")
	yaml := fmt.Sprintf(`
listen: 127.0.0.1:0
api_keys_database: %q
policy_file: %q
admin: {listen: "127.0.0.1:1", console: true%s}
audit:
  database: %q
  signing_key_file: %q
  checkpoint_dir: %q
  checkpoint_every: 1
  checkpoint_interval: 50ms
  redaction_key: env:MCPGUARD_TEST_REDACTION_KEY
tool_pinning:
  database: %q
  trust_on_first_use: true
  screen: ["(?i)<script"]
containment: {}
upstreams:
  - name: bank
    http: {url: %q}
`, identities, policyFile, admin, f.auditDB, keyFile, filepath.Join(dir, "checkpoints"), filepath.Join(dir, "pins.db"), up.URL)
	cfg, err := config.Parse([]byte(yaml), "console-test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, err := wiring.Build(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.g, err = gateway.New(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	gctx, cancel := context.WithCancel(ctx)
	f.g.Start(gctx)
	mcpSrv := httptest.NewServer(f.g.Handler())
	f.admin = httptest.NewServer(f.g.AdminHandler())
	f.mcpURL = mcpSrv.URL + cfg.Path
	t.Cleanup(func() {
		f.admin.Close()
		mcpSrv.CloseClientConnections()
		mcpSrv.Close()
		cancel()
		f.g.Close()
	})

	st, err := keystore.Open(ctx, identities)
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
			f.mu.Lock()
			defer f.mu.Unlock()
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

// operator creates an operator with roles and enrols TOTP (with a code from three steps ago,
// so that the current one is free for the login).
func (f *fixture) operator(t *testing.T, name string, roles ...string) {
	t.Helper()
	ctx := context.Background()
	if err := f.ops.Create(ctx, name, password, roles); err != nil {
		t.Fatal(err)
	}
	e, err := f.ops.BeginEnrollment(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.early = true
	f.mu.Unlock()
	early, _ := totp.GenerateCode(e.Secret.Reveal(), time.Now().Add(-90*time.Second))
	err = f.ops.ConfirmEnrollment(ctx, name, early)
	f.mu.Lock()
	f.early = false
	f.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	f.secrets[name] = e.Secret.Reveal()
}

// code is the operator's current TOTP code.
func (f *fixture) code(t *testing.T, name string) string {
	t.Helper()
	return f.codeOf(t, f.secrets[name])
}

// codeOf is the current TOTP code of secret.
func (f *fixture) codeOf(t *testing.T, secret string) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// browser is a console client: it keeps the cookies the console sets (Secure ones too, over
// the test's plain http) and follows no redirect by itself.
type browser struct {
	t       *testing.T
	base    string
	cookies map[string]*http.Cookie
	// origin and site are sent as Origin and Sec-Fetch-Site on POSTs. Chromium sends
	// "Origin: null" from a page served with Referrer-Policy: no-referrer, as the console's are.
	origin, site string
}

func (f *fixture) browser(t *testing.T) *browser {
	return &browser{t: t, base: f.admin.URL, cookies: map[string]*http.Cookie{}, origin: "null", site: "same-origin"}
}

type response struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(method, path string, form url.Values) response {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if b.origin != "" {
			req.Header.Set("Origin", b.origin)
		}
		if b.site != "" {
			req.Header.Set("Sec-Fetch-Site", b.site)
		}
	}
	for _, c := range b.cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	return response{resp.StatusCode, resp.Header, string(raw)}
}

// get follows redirects (GET only), as a browser does after a POST.
func (b *browser) get(path string) response {
	b.t.Helper()
	for range 5 {
		r := b.do(http.MethodGet, path, nil)
		if r.status != http.StatusSeeOther && r.status != http.StatusFound {
			return r
		}
		path = r.header.Get("Location")
	}
	b.t.Fatal("too many redirects")
	return response{}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the CSRF token of a page.
func csrf(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field in the page:\n%.2000s", page)
	}
	return html.UnescapeString(m[1])
}

// login logs the operator in through the login form and returns the answer to the POST.
func (b *browser) login(name, password, code string) response {
	b.t.Helper()
	page := b.get("/console/login")
	return b.do(http.MethodPost, "/console/login", url.Values{"csrf": {csrf(b.t, page.body)}, "operator": {name}, "password": {password}, "totp": {code}})
}

// loggedIn logs the operator in and fails the test unless it worked.
func (f *fixture) loggedIn(t *testing.T, name string) *browser {
	t.Helper()
	b := f.browser(t)
	if r := b.login(name, password, f.code(t, name)); r.status != http.StatusSeeOther {
		t.Fatalf("login of %s: status %d, want 303:\n%.2000s", name, r.status, r.body)
	}
	return b
}

// post submits a form of the page at from, with its CSRF token, and follows the redirect.
func (b *browser) post(from, action string, form url.Values) response {
	b.t.Helper()
	page := b.get(from)
	form.Set("csrf", csrf(b.t, page.body))
	r := b.do(http.MethodPost, action, form)
	if r.status == http.StatusSeeOther {
		return b.get(r.header.Get("Location"))
	}
	return r
}

// records polls the audit store until want finds a record, and returns it.
func (f *fixture) record(t *testing.T, what string, want func(*audit.Record) bool) *audit.Record {
	t.Helper()
	st, err := sqlite.Open(context.Background(), f.auditDB, &sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var found *audit.Record
		err := st.Scan(context.Background(), 0, func(r *store.Record) error {
			rec, err := audit.ParseRecord(r.Data)
			if err != nil {
				return err
			}
			if want(rec) {
				found = rec
				return errFound
			}
			return nil
		})
		if found != nil {
			return found
		}
		if err != nil && !errors.Is(err, errFound) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no audit record of %s", what)
	return nil
}

var errFound = errors.New("found")

// agent connects an MCP client with an API key of principal and roles.
func (f *fixture) agent(t *testing.T, principal string, roles ...string) *mcp.ClientSession {
	t.Helper()
	key, _, err := f.keys.Create(context.Background(), principal, roles, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return f.agentWithKey(t, key.Reveal())
}

func (f *fixture) agentWithKey(t *testing.T, key string) *mcp.ClientSession {
	t.Helper()
	hc := &http.Client{Transport: bearer{key}}
	c := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: f.mcpURL, HTTPClient: hc, MaxRetries: -1, DisableStandaloneSSE: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type bearer struct{ key string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return http.DefaultTransport.RoundTrip(r)
}
