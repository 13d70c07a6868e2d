package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/cmd/mcpguard/wiring"
	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/gateway"
	"github.com/mcpguard/mcpguard/internal/pins"
)

// adminAudit is a gateway with an audit log, an identities database and tool pinning, served in
// the test, and the CLI over the same configuration.
type adminAudit struct {
	*opsCLI
	dir, auditDB string
	gw           *gateway.Gateway
}

func newAdminAudit(t *testing.T) *adminAudit {
	t.Helper()
	c := newOpsCLI(t)
	dir := filepath.Dir(c.cfg)
	if out, err := run(t, "audit", "keygen", "--name", "ops-log", "--dir", dir); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "redaction.key"), []byte("sixteen bytes or more of redaction key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := &adminAudit{opsCLI: c, dir: dir, auditDB: filepath.Join(dir, "audit.db")}
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
api_keys_database: identities.db
tool_pinning:
  database: pins.db
audit:
  database: %s
  signing_key_file: %s
  checkpoint_dir: %s
  redaction_key: file:%s
upstreams:
  - name: demo
    stdio:
      command: /bin/true
`, a.auditDB, filepath.Join(dir, "ops-log.key"), filepath.Join(dir, "checkpoints"), filepath.Join(dir, "redaction.key"))
	if err := os.WriteFile(c.cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return a
}

// start runs the gateway over the configuration, as `mcpguard serve` does.
func (a *adminAudit) start(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	cfg, err := config.Load(a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := wiring.Build(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.gw, err = gateway.New(ctx, p); err != nil {
		t.Fatal(err)
	}
	a.gw.Start(ctx)
}

// stop closes the gateway (and its audit log, after a last drain).
func (a *adminAudit) stop(t *testing.T) {
	t.Helper()
	if err := a.gw.Close(); err != nil {
		t.Fatalf("closing the gateway: %v", err)
	}
}

// actRecord is an audit record of an administrative act, as `audit search --json` prints it.
type actRecord struct {
	Kind       string   `json:"kind"`
	RequestID  string   `json:"request_id"`
	Principal  string   `json:"principal"`
	Roles      []string `json:"roles"`
	AuthMethod string   `json:"auth_method"`
	Tool       string   `json:"tool"`
	Decision   string   `json:"decision"`
	Reasons    []string `json:"reasons"`
	Detail     struct {
		Act         string         `json:"act"`
		Target      map[string]any `json:"target"`
		Result      string         `json:"result"`
		Reason      string         `json:"reason"`
		LockedUntil string         `json:"locked_until"`
		Via         string         `json:"via"`
		OSUser      string         `json:"os_user"`
	} `json:"detail"`
	raw string
}

// acts runs `mcpguard audit search --json` on the audit database and returns the records of
// administrative acts (kinds admin and auth_failure with an act).
func (a *adminAudit) acts(t *testing.T) []actRecord {
	t.Helper()
	out, err := run(t, "audit", "search", "--db", a.auditDB, "--json", "--limit", "0")
	if err != nil {
		t.Fatalf("audit search: %v\n%s", err, out)
	}
	var list []actRecord
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r actRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("audit search line %q: %v", line, err)
		}
		if r.Detail.Act != "" && r.Detail.Via == "cli" {
			r.raw = line
			list = append(list, r)
		}
	}
	return list
}

// waitActs polls the audit log until it holds n administrative acts or the deadline passes.
func (a *adminAudit) waitActs(t *testing.T, n int) []actRecord {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		list := a.acts(t)
		if len(list) >= n || time.Now().After(deadline) {
			return list
		}
		time.Sleep(50 * time.Millisecond) // polling the gateway's drain, not a timing assertion
	}
}

// TestAdminActsAreAuditedWithTheirActor runs every administrative act through the CLI against
// a running gateway and finds each in the audit log (`audit search`), with the authenticated
// actor, the act, its target and its result — never a secret — and then `audit verify`
// accepts the log. Once an operator exists, a change without a session is refused and changes
// nothing.
func TestAdminActsAreAuditedWithTheirActor(t *testing.T) {
	a := newAdminAudit(t)
	a.start(t)
	runKeys := func(args ...string) (string, error) {
		out, errOut, err := a.runWith(t, newKeysCmdWith, "", args...)
		return out + errOut, err
	}
	runTools := func(args ...string) (string, error) {
		out, errOut, err := a.runWith(t, newToolsCmdWith, "", args...)
		return out + errOut, err
	}

	// The bootstrap: the first operator of a new identities database.
	if _, _, err := a.run(t, operatorPassword+"\n", "create", "alice", "--roles", "admin", "--password-stdin"); err != nil {
		t.Fatalf("bootstrap create: %v", err)
	}
	// From now on a change without a session is refused, says what to do, and changes nothing.
	for _, tc := range []struct {
		name string
		run  func() error
	}{
		{"keys create", func() error { _, err := runKeys("create", "--principal", "agent", "--roles", "r"); return err }},
		{"keys revoke", func() error { _, err := runKeys("revoke", "0123456789abcdef"); return err }},
		{"operators create", func() error {
			_, _, err := a.run(t, operatorPassword+"\n", "create", "mallory", "--password-stdin")
			return err
		}},
		{"operators disable", func() error { _, _, err := a.run(t, "", "disable", "alice"); return err }},
		{"tools approve", func() error { _, err := runTools("approve", "demo.quote"); return err }},
	} {
		if err := tc.run(); err == nil || !strings.Contains(err.Error(), "operators login") || !strings.Contains(err.Error(), operatorTokenEnv) {
			t.Errorf("%s without a session: %v; want refused, naming operators login and %s", tc.name, err, operatorTokenEnv)
		}
	}
	if out, _, err := a.run(t, "", "list"); err != nil || strings.Contains(out, "mallory") || !regexpLine(out, "alice", "admin", "none", "active") {
		t.Errorf("after the refused changes: %v\n%s", err, out)
	}
	// A session that is not one is refused too.
	a.token = "mcps_forged"
	if _, err := runKeys("create", "--principal", "agent", "--roles", "r"); err == nil || !strings.Contains(err.Error(), "not a valid operator session") {
		t.Errorf("keys create with a forged session: %v", err)
	}
	a.token = ""

	// alice enrols her own TOTP, proving her password.
	secret, _, err := a.enroll(t, "alice", "--no-terminal-qr")
	if err != nil {
		t.Fatalf("alice enrolling: %v", err)
	}
	login := func(name, password, code string) (string, error) {
		out, _, err := a.run(t, password+"\n"+code+"\n", "login", name, "--password-stdin")
		return strings.TrimSpace(out), err
	}
	a.clk.Advance(30 * time.Second)
	if _, err := login("alice", operatorPassword, "000000"); err == nil {
		t.Fatal("a login with a wrong code succeeded")
	}
	a.clk.Advance(30 * time.Second)
	token, err := login("alice", operatorPassword, a.code(t, secret))
	if err != nil {
		t.Fatalf("alice's login: %v", err)
	}
	a.token = token

	// alice's acts, with her session.
	out, err := runKeys("create", "--principal", "pricing-agent", "--roles", "MarketAnalystAI")
	if err != nil {
		t.Fatalf("keys create: %v\n%s", err, out)
	}
	apiKey := strings.SplitN(out, "\n", 2)[0]
	keyID := strings.Split(strings.TrimPrefix(apiKey, "mcpg_"), "_")[0]
	if _, err := runKeys("revoke", keyID); err != nil {
		t.Fatalf("keys revoke: %v", err)
	}
	if _, err := runKeys("revoke", "fedcba9876543210"); err == nil {
		t.Fatal("revoking an unknown key succeeded")
	}
	if _, _, err := a.run(t, operatorPassword+"\n", "create", "bob", "--roles", "auditor", "--password-stdin"); err != nil {
		t.Fatalf("create bob: %v", err)
	}
	for _, cmd := range []string{"disable", "enable", "reset-mfa"} {
		if _, _, err := a.run(t, "", cmd, "bob"); err != nil {
			t.Fatalf("%s bob: %v", cmd, err)
		}
	}
	a.clk.Advance(30 * time.Second)
	if _, _, err := a.enroll(t, "bob", "--no-terminal-qr"); err != nil {
		t.Fatalf("alice enrolling bob: %v", err)
	}
	// bob's failed logins lock his account; the next attempt is refused as locked.
	for range 5 {
		if _, err := login("bob", "not bob's password at all", "123456"); err == nil {
			t.Fatal("a wrong password logged in")
		}
	}
	if _, err := login("bob", operatorPassword, "123456"); err == nil {
		t.Fatal("a locked account logged in")
	}
	// A tool definition awaiting review, approved by alice.
	ctx := t.Context()
	p, err := pins.Open(ctx, filepath.Join(a.dir, "pins.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.Check(ctx, "demo.quote", []byte(`{"name":"demo.quote","description":"Quotes a symbol."}`))
	p.Close()
	if err != nil || v.State != pins.Quarantined {
		t.Fatalf("a new tool: %+v %v", v, err)
	}
	if out, err := runTools("approve", "demo.quote", "--by", "mallory"); err == nil || !strings.Contains(err.Error(), "--by is gone") {
		t.Errorf("tools approve --by: %v\n%s", err, out)
	}
	if out, err := runTools("approve", "demo.quote"); err != nil || !strings.Contains(out, "by alice") {
		t.Fatalf("tools approve: %v\n%s", err, out)
	}

	want := []struct {
		name, act, principal, auth, result, reason string
		kind                                       audit.Kind
		target                                     map[string]string
	}{
		{"bootstrap operator.create", "operator.create", "bootstrap", "bootstrap", "ok", "", audit.KindAdmin, map[string]string{"operator": "alice"}},
		{"operator.enroll_mfa by password", "operator.enroll_mfa", "alice", "password", "ok", "", audit.KindAdmin, map[string]string{"operator": "alice"}},
		{"operator.login failure", "operator.login", "alice", "password+totp", "refused", "bad_totp", audit.KindAuthFailure, map[string]string{"operator": "alice"}},
		{"operator.login", "operator.login", "alice", "password+totp", "ok", "", audit.KindAdmin, map[string]string{"operator": "alice"}},
		{"api_key.create", "api_key.create", "alice", "operator", "ok", "", audit.KindAdmin, map[string]string{"key_id": keyID, "principal": "pricing-agent"}},
		{"api_key.revoke", "api_key.revoke", "alice", "operator", "ok", "", audit.KindAdmin, map[string]string{"key_id": keyID}},
		{"api_key.revoke refused", "api_key.revoke", "alice", "operator", "refused", "not_found", audit.KindAdmin, map[string]string{"key_id": "fedcba9876543210"}},
		{"operator.create", "operator.create", "alice", "operator", "ok", "", audit.KindAdmin, map[string]string{"operator": "bob"}},
		{"operator.disable", "operator.disable", "alice", "operator", "ok", "", audit.KindAdmin, map[string]string{"operator": "bob"}},
		{"operator.enable", "operator.enable", "alice", "operator", "ok", "", audit.KindAdmin, map[string]string{"operator": "bob"}},
		{"operator.reset_mfa", "operator.reset_mfa", "alice", "operator", "ok", "", audit.KindAdmin, map[string]string{"operator": "bob"}},
		{"operator.enroll_mfa by an operator", "operator.enroll_mfa", "alice", "operator", "ok", "", audit.KindAdmin, map[string]string{"operator": "bob"}},
		{"operator.login wrong password", "operator.login", "bob", "password+totp", "refused", "bad_password", audit.KindAuthFailure, map[string]string{"operator": "bob"}},
		{"operator.login locked", "operator.login", "bob", "password+totp", "refused", "locked", audit.KindAuthFailure, map[string]string{"operator": "bob"}},
		{"tool.approve", "tool.approve", "alice", "operator", "ok", "", audit.KindAdmin, map[string]string{"tool": "demo.quote", "digest": v.Hash}},
	}
	const acts = 1 + 1 + 2 + 3 + 1 + 3 + 1 + 5 + 1 + 1
	got := a.waitActs(t, acts)
	if len(got) != acts {
		t.Errorf("the audit log holds %d administrative acts, want %d (each exactly once)", len(got), acts)
	}
	for _, w := range want {
		t.Run(w.name, func(t *testing.T) {
			for _, r := range got {
				if r.Detail.Act != w.act || r.Principal != w.principal || r.Detail.Result != w.result || r.Detail.Reason != w.reason {
					continue
				}
				match := true
				for k, v := range w.target {
					if fmt.Sprint(r.Detail.Target[k]) != v {
						match = false
					}
				}
				if !match {
					continue
				}
				if r.AuthMethod != w.auth || r.Kind != string(w.kind) || r.RequestID == "" || r.Detail.OSUser == "" {
					t.Errorf("record %s: auth_method %q kind %q request_id %q os_user %q; want %q %q, an id and the OS user", r.raw, r.AuthMethod, r.Kind, r.RequestID, r.Detail.OSUser, w.auth, w.kind)
				}
				if w.principal == "alice" && w.auth == "operator" && (len(r.Roles) != 1 || r.Roles[0] != "admin") {
					t.Errorf("record %s: roles %v, want the operator's [admin]", r.raw, r.Roles)
				}
				if w.act == "tool.approve" && r.Tool != "demo.quote" {
					t.Errorf("record %s: tool %q", r.raw, r.Tool)
				}
				return
			}
			t.Errorf("no %s record by %s (%s, %s %s) targeting %v in the audit log", w.act, w.principal, w.auth, w.result, w.reason, w.target)
		})
	}
	var locked bool
	for _, r := range got {
		if r.Principal == "bob" && r.Detail.Reason == "bad_password" && r.Detail.LockedUntil != "" {
			locked = true
		}
		for _, secret := range []string{apiKey, operatorPassword, "not bob's password", secret, token} {
			if strings.Contains(r.raw, secret) {
				t.Errorf("record %s holds a secret", r.raw)
			}
		}
	}
	if !locked {
		t.Error("no refused login of bob records the lockout it caused (locked_until)")
	}

	// The acts are in the log's hash chain: verify accepts it once the gateway has stopped.
	a.stop(t)
	if out, err := run(t, "audit", "verify", "--db", a.auditDB, "--key", filepath.Join(a.dir, "ops-log.pub"), "--checkpoints", filepath.Join(a.dir, "checkpoints")); err != nil {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
	if n := len(a.acts(t)); n != acts {
		t.Errorf("after the gateway's stop the log holds %d acts, want %d: none recorded twice", n, acts)
	}
}
