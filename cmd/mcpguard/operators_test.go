package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/spf13/cobra"

	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/keystore"
)

const operatorPassword = "correct horse battery staple"

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type opsCLI struct {
	cfg, db string
	clk     *testClock
	env     adminEnv
	// token is what the commands read from MCPGUARD_OPERATOR_TOKEN; "" leaves it unset.
	token string
}

func newOpsCLI(t *testing.T) *opsCLI {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gateway.yaml")
	yaml := "listen: 127.0.0.1:0\napi_keys_database: identities.db\nupstreams:\n  - name: demo\n    stdio:\n      command: /bin/true\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &opsCLI{cfg: cfg, db: filepath.Join(dir, "identities.db"), clk: &testClock{t: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}}
	c.env = adminEnv{
		now:    c.clk.Now,
		hasher: authn.NewPasswordHasher(&authn.PasswordHasherOptions{Params: authn.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}}),
		getenv: func(key string) string {
			if key == operatorTokenEnv {
				return c.token
			}
			return ""
		},
	}
	return c
}

// run runs `operators ARGS --config CFG` (unless ARGS name a config) with stdin, returning standard output and error.
func (c *opsCLI) run(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return c.runWith(t, newOperatorsCmdWith, stdin, args...)
}

// runWith runs the command mk makes (keys, operators or tools) like run.
func (c *opsCLI) runWith(t *testing.T, mk func(adminEnv) *cobra.Command, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := mk(c.env)
	var out, errOut bytes.Buffer
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	if !slices.Contains(args, "--config") {
		args = append(args, "--config", c.cfg)
	}
	cmd.SetArgs(args)
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

// enroll runs enroll-mfa, reads the otpauth URI it prints, and answers its prompt with the
// current code computed from that URI's secret. Without c.token the operator enrols themselves:
// their password (operatorPassword) is the first line of input. It returns the secret and the
// whole output.
func (c *opsCLI) enroll(t *testing.T, name string, extra ...string) (secret, stdout string, err error) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	cmd := newOperatorsCmdWith(c.env)
	cmd.SetIn(inR)
	cmd.SetOut(outW)
	cmd.SetErr(io.Discard)
	args := append([]string{"enroll-mfa", name, "--config", c.cfg}, extra...)
	if c.token == "" {
		args = append(args, "--password-stdin")
		go func() { _, _ = io.WriteString(inW, operatorPassword+"\n") }()
	}
	cmd.SetArgs(args)
	done := make(chan error, 1)
	go func() {
		err := cmd.Execute()
		outW.Close()
		inR.Close()
		done <- err
	}()
	var all strings.Builder
	sc := bufio.NewScanner(outR)
	for sc.Scan() {
		line := sc.Text()
		all.WriteString(line + "\n")
		if strings.HasPrefix(line, "otpauth://") {
			key, err := otp.NewKeyFromURL(line)
			if err != nil {
				t.Fatalf("printed URI %q: %v", line, err)
			}
			secret = key.Secret()
			code, err := totp.GenerateCode(secret, c.clk.Now())
			if err != nil {
				t.Fatal(err)
			}
			go func() { _, _ = io.WriteString(inW, code+"\n") }()
		}
	}
	err = <-done
	inW.Close()
	return secret, all.String(), err
}

func (c *opsCLI) code(t *testing.T, secret string) string {
	t.Helper()
	code, err := totp.GenerateCode(secret, c.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func TestOperatorsCreateEnrollLogin(t *testing.T) {
	c := newOpsCLI(t)
	out, _, err := c.run(t, operatorPassword+"\n", "create", "alice", "--roles", "admin, auditor", "--password-stdin")
	if err != nil || !strings.Contains(out, "created operator alice (roles admin,auditor)") {
		t.Fatalf("create: %q %v", out, err)
	}
	// alice was the bootstrap; from now on a change needs an operator's session.
	if _, _, err := c.run(t, operatorPassword+"\n", "create", "alice", "--password-stdin"); err == nil || !strings.Contains(err.Error(), "operators login") {
		t.Errorf("creating alice again without a session: %v, want refused, saying how to log in", err)
	}
	// Without TOTP nobody logs in.
	if _, _, err := c.run(t, operatorPassword+"\n123456\n", "login", "alice", "--password-stdin"); err == nil {
		t.Fatal("login before MFA enrolment succeeded")
	}

	qrFile := filepath.Join(t.TempDir(), "alice-qr.png")
	secret, out, err := c.enroll(t, "alice", "--qr", qrFile)
	if err != nil {
		t.Fatalf("enroll-mfa: %v\n%s", err, out)
	}
	if !strings.Contains(out, "TOTP enrolled for alice") || !strings.Contains(out, "Secret for manual entry: "+secret) || !strings.Contains(out, "▀") {
		t.Errorf("enroll-mfa output lacks the confirmation, the secret or the QR drawing:\n%s", out)
	}
	png, err := os.ReadFile(qrFile)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("--qr wrote %d bytes (%v), want a PNG", len(png), err)
	}
	if fi, err := os.Stat(qrFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("QR file mode %v (%v), want 0600: it holds the secret", fi.Mode().Perm(), err)
	}

	login := func(code string) (string, error) {
		out, _, err := c.run(t, operatorPassword+"\n"+code+"\n", "login", "alice", "--password-stdin")
		return out, err
	}
	// The enrolment consumed this step's code: logging in with it is a replay.
	if _, err := login(c.code(t, secret)); err == nil || !strings.Contains(err.Error(), "login refused") {
		t.Errorf("login with the code used to confirm enrolment: %v, want refused", err)
	}
	c.clk.Advance(30 * time.Second)
	code := c.code(t, secret)
	token, err := login(code)
	if err != nil || !strings.HasPrefix(token, authn.SessionPrefix) {
		t.Fatalf("login with password and current code: %q %v", token, err)
	}
	if _, err := login(code); err == nil {
		t.Error("the same code worked twice")
	}
	// Once alice exists, changes need an operator's session: bob is created by alice, and
	// administers alice from here on with his own session.
	if _, _, err := c.run(t, operatorPassword+"\n", "create", "bob", "--roles", "admin", "--password-stdin"); err == nil || !strings.Contains(err.Error(), operatorTokenEnv) {
		t.Fatalf("creating bob without a session: %v, want refused naming %s", err, operatorTokenEnv)
	}
	c.token = strings.TrimSpace(token)
	if _, _, err := c.run(t, operatorPassword+"\n", "create", "bob", "--roles", "admin", "--password-stdin"); err != nil {
		t.Fatalf("alice creating bob: %v", err)
	}
	if _, _, err := c.run(t, operatorPassword+"\n", "create", "alice", "--password-stdin"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("creating alice twice: %v", err)
	}
	c.token = ""
	bobSecret, _, err := c.enroll(t, "bob", "--no-terminal-qr")
	if err != nil {
		t.Fatalf("bob enrolling himself: %v", err)
	}
	c.clk.Advance(30 * time.Second)
	bobToken, _, err := c.run(t, operatorPassword+"\n"+c.code(t, bobSecret)+"\n", "login", "bob", "--password-stdin")
	if err != nil {
		t.Fatalf("bob's login: %v", err)
	}
	c.token = strings.TrimSpace(bobToken)

	// The gateway, opening the same database, accepts the session token.
	ctx := context.Background()
	st, err := keystore.Open(ctx, c.db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	opStore, err := st.Operators(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := authn.NewOperators(ctx, opStore, opStore, &authn.OperatorsOptions{Hasher: c.env.hasher, Now: c.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	p, err := gw.Sessions().Authenticate(ctx, strings.TrimSpace(token))
	if err != nil || p.Subject != "alice" || strings.Join(p.Roles, ",") != "admin,auditor" {
		t.Fatalf("the gateway authenticating the printed token: %+v %v", p, err)
	}

	if err := os.Chmod(c.db, 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := c.run(t, "", "list")
	if err != nil || !regexpLine(out, "alice", "admin,auditor", "enrolled", "active", "1 (last") {
		t.Errorf("list: %v\n%s", err, out)
	}
	if fi, err := os.Stat(c.db); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the identity database was left readable by others (%v, %v): opening it must restore 0600", fi.Mode().Perm(), err)
	}
	if errOut != "" {
		t.Errorf("unexpected output on stderr: %q", errOut)
	}

	if _, _, err := c.run(t, "", "disable", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := gw.Sessions().Authenticate(ctx, strings.TrimSpace(token)); err == nil {
		t.Error("a disabled operator's session still works")
	}
	c.clk.Advance(30 * time.Second)
	if _, err := login(c.code(t, secret)); err == nil {
		t.Error("a disabled operator logged in")
	}
	if _, _, err := c.run(t, "", "enable", "alice"); err != nil {
		t.Fatal(err)
	}
	c.clk.Advance(30 * time.Second)
	if _, err := login(c.code(t, secret)); err != nil {
		t.Errorf("login after enable: %v", err)
	}

	if _, _, err := c.run(t, "", "reset-mfa", "alice"); err != nil {
		t.Fatal(err)
	}
	c.clk.Advance(30 * time.Second)
	if _, err := login(c.code(t, secret)); err == nil {
		t.Error("login with the old TOTP secret after reset-mfa")
	}
	c.clk.Advance(30 * time.Second)
	secret2, out, err := c.enroll(t, "alice", "--no-terminal-qr")
	if err != nil || secret2 == secret || strings.Contains(out, "▀") {
		t.Fatalf("enrolling again after reset: %v (same secret: %v)\n%s", err, secret2 == secret, out)
	}
	c.clk.Advance(30 * time.Second)
	if _, err := login(c.code(t, secret2)); err != nil {
		t.Errorf("login with the new secret: %v", err)
	}
}

// regexpLine reports whether some line of out has all fields, in order.
func regexpLine(out string, fields ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		rest, ok := line, true
		for _, f := range fields {
			i := strings.Index(rest, f)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(f):]
		}
		if ok {
			return true
		}
	}
	return false
}

func TestOperatorsCommandErrors(t *testing.T) {
	c := newOpsCLI(t)
	noDB := filepath.Join(t.TempDir(), "nodb.yaml")
	if err := os.WriteFile(noDB, []byte("listen: 127.0.0.1:0\nupstreams:\n  - name: demo\n    stdio:\n      command: /bin/true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"password from a pipe without --password-stdin", operatorPassword + "\n", []string{"create", "bob"}, "not a terminal: pass --password-stdin"},
		{"short password", "short\n", []string{"create", "bob", "--password-stdin"}, "at least 12 characters"},
		{"no password", "", []string{"create", "bob", "--password-stdin"}, "no input"},
		{"overlong line", strings.Repeat("x", 5000) + "\n", []string{"create", "bob", "--password-stdin"}, "longer than 2048 bytes"},
		{"bad name", operatorPassword + "\n", []string{"create", "Bob Smith", "--password-stdin"}, "use 1-64 lower-case letters"},
		{"unknown operator", "", []string{"disable", "nobody"}, `no operator "nobody"`},
		{"enrol unknown operator", "", []string{"enroll-mfa", "nobody"}, `no operator "nobody"`},
		{"login of unknown operator", operatorPassword + "\n123456\n", []string{"login", "nobody", "--password-stdin"}, "login refused"},
		{"config without api_keys_database", operatorPassword + "\n", []string{"create", "bob", "--password-stdin", "--config", noDB}, "has no api_keys_database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := c.run(t, tt.stdin, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestDrawQRIsSquareWithMargin(t *testing.T) {
	var buf bytes.Buffer
	if err := drawQR(&buf, "otpauth://totp/mcpguard:alice?secret=JBSWY3DPEHPK3PXP&issuer=mcpguard"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	width := utf8.RuneCountInString(lines[0])
	// Two module rows per line: the drawing is about half as tall as wide.
	if want := (width + 1) / 2; len(lines) != want {
		t.Errorf("%d lines for %d columns, want %d", len(lines), width, want)
	}
	for i, line := range lines {
		if n := utf8.RuneCountInString(line); n != width {
			t.Errorf("line %d has %d columns, want %d", i, n, width)
		}
	}
	if lines[0] != strings.Repeat("█", width) || lines[1] != strings.Repeat("█", width) {
		t.Errorf("the top margin is not light:\n%s\n%s", lines[0], lines[1])
	}
}

// With identity_encryption_key in the configuration, the CLI enrols without writing the TOTP
// secret in clear, logs in with it, and a configuration that lost the key is told what to fix.
func TestOperatorsWithIdentityEncryptionKey(t *testing.T) {
	c := newOpsCLI(t)
	keyFile := filepath.Join(filepath.Dir(c.cfg), "identity.key")
	if err := os.WriteFile(keyFile, []byte("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	plain, err := os.ReadFile(c.cfg)
	if err != nil {
		t.Fatal(err)
	}
	keyed := strings.Replace(string(plain), "api_keys_database:", "identity_encryption_key: file:"+keyFile+"\napi_keys_database:", 1)
	if err := os.WriteFile(c.cfg, []byte(keyed), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.run(t, operatorPassword+"\n", "create", "alice", "--roles", "admin", "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	secret, _, err := c.enroll(t, "alice")
	if err != nil {
		t.Fatal(err)
	}
	c.clk.Advance(30 * time.Second)
	code, err := totp.GenerateCode(secret, c.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.run(t, operatorPassword+"\n"+code+"\n", "login", "alice", "--password-stdin"); err != nil {
		t.Fatalf("login with the encrypted secret: %v", err)
	}
	for _, p := range []string{c.db, c.db + "-wal"} {
		data, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("%s holds the TOTP secret in clear", filepath.Base(p))
		}
	}

	if err := os.WriteFile(c.cfg, plain, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.run(t, "", "list")
	if err == nil || !strings.Contains(err.Error(), "identity_encryption_key") {
		t.Errorf("list without the key: err = %v; want one naming identity_encryption_key", err)
	}
}
