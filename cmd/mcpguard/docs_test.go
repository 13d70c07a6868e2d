package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/mcpguard/mcpguard/internal/config"
)

// TestCLIReference keeps docs/cli.md in step with the commands: every command the binary has
// (runnable, with its parents' names) has a row in its table, and every row names a command.
func TestCLIReference(t *testing.T) {
	doc, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	// A row starts with the command in code: | `mcpguard audit proof SEQ` |; its path is the
	// lower-case words before the first argument.
	row := regexp.MustCompile("(?m)^\\| `mcpguard ([^`]*)`")
	word := regexp.MustCompile(`^[a-z][a-z-]*$`)
	documented := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		var path []string
		for _, w := range strings.Fields(m[1]) {
			if !word.MatchString(w) {
				break
			}
			path = append(path, w)
		}
		documented[strings.Join(path, " ")] = true
	}
	root := newRoot()
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if !c.Runnable() || c == root || c.HasSubCommands() { // a group only refuses unknown words
			return
		}
		n++
		path := strings.TrimPrefix(c.CommandPath(), "mcpguard ")
		if !documented[path] {
			t.Errorf("mcpguard %s has no row in docs/cli.md", path)
		}
	}
	walk(root)
	if n < 30 {
		t.Fatalf("found %d commands; the walk is broken and the test proves nothing", n)
	}
	for path := range documented {
		if path == "completion" || path == "help" {
			continue // cobra's own, added when the root runs
		}
		if c, _, err := root.Find(strings.Fields(path)); err != nil || c.CommandPath() != "mcpguard "+path {
			t.Errorf("docs/cli.md documents mcpguard %s, which is not a command", path)
		}
	}
}

// TestUsageErrorsExitOne: a usage error exits 1 like any other error, as docs/cli.md says; only
// audit verify has its own statuses (TestAuditVerifyExitCodes).
func TestUsageErrorsExitOne(t *testing.T) {
	for _, args := range [][]string{
		{"no-such-command"},
		{"audit", "verfy", "--config", "x.yaml"}, // a typo in a scheduled check must fail
		{"blocks", "lsit"},
		{"config", "check"},
		{"policy", "check", "--no-such-flag", "x"},
		{"serve"}, // --config is required
	} {
		out, err := run(t, args...)
		if err == nil {
			t.Errorf("mcpguard %s succeeded:\n%s", strings.Join(args, " "), out)
			continue
		}
		if code := exitCode(err); code != 1 {
			t.Errorf("mcpguard %s: exit %d, want 1 (%v)", strings.Join(args, " "), code, err)
		}
	}
}

// TestProductionExampleChecks runs `mcpguard config check` on examples/production.yaml as it
// would run on a host installed as the example says: the absolute paths it names (/etc, /var,
// /run/credentials, /srv) are moved into a temporary directory, the files and credentials
// created there, the environment variables it references set. Without the files the check must
// fail, naming them; with them it must pass, and the example must still switch on every control
// it is the example of.
func TestProductionExampleChecks(t *testing.T) {
	text, err := os.ReadFile("../../examples/production.yaml")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	hostPath := regexp.MustCompile(`(^|[\s:\[,"])/(etc|var|run|srv)/`)
	moved := hostPath.ReplaceAllString(string(text), "${1}"+root+"/${2}/")
	at := func(p string) string { return filepath.Join(root, p) }
	cfgPath := at("etc/mcpguard/mcpguard.yaml")
	mkdir(t, filepath.Dir(cfgPath))
	if err := os.WriteFile(cfgPath, []byte(moved), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MCPGUARD_SOC_WEBHOOK_TOKEN", "soc-token")

	// What the operator installs (the unit's StateDirectory and LogsDirectory are created by
	// systemd, the credentials are its LoadCredential= files): the secrets the configuration
	// references, then the files it names.
	policy, err := os.ReadFile("../../examples/policies/finance.yaml")
	if err != nil {
		t.Fatal(err)
	}
	key32 := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	type file struct {
		path, content string
		mode          os.FileMode
	}
	secrets := []file{
		{"run/credentials/mcpguard.service/identity.key", key32 + "\n", 0o400},
		{"run/credentials/mcpguard.service/redaction.key", "a redaction key of at least thirty-two bytes\n", 0o400},
		{"run/credentials/mcpguard.service/oidc-client-secret", "oidc-secret\n", 0o400},
		{"run/credentials/mcpguard.service/redis-password", "redis-password\n", 0o400},
		{"run/credentials/mcpguard.service/finance-client-secret", "finance-secret\n", 0o400},
	}
	files := []file{
		{"etc/mcpguard/policies/finance.yaml", string(policy), 0o644},
		{"etc/mcpguard/tls/gateway.pem", "certificate chain\n", 0o644},
		{"etc/mcpguard/tls/gateway.key", "private key\n", 0o600},
		{"etc/mcpguard/tls/siem-ca.pem", "SIEM CA\n", 0o644},
		{"run/credentials/mcpguard.service/audit-signing.key", "PRIVATE+KEY+audit-signing\n", 0o400},
	}
	install := func(list []file) {
		for _, f := range list {
			mkdir(t, filepath.Dir(at(f.path)))
			if err := os.WriteFile(at(f.path), []byte(f.content), f.mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Without them the check fails, naming what is missing: it reads what the example names.
	for _, step := range []struct {
		install []file
		missing []string
	}{
		{nil, []string{"audit.redaction_key", "identity_encryption_key", "containment.redis.password"}},
		{secrets, []string{"tls.key_file", "policy_file", "audit.signing_key_file", "api_keys_database"}},
	} {
		install(step.install)
		out, err := run(t, "config", "check", cfgPath)
		if err == nil {
			t.Fatalf("config check passed with files missing; it checks nothing:\n%s", out)
		}
		for _, m := range step.missing {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("config check does not name the missing %s:\n%v", m, err)
			}
		}
	}
	install(files)
	for _, d := range []string{"var/lib/mcpguard", "var/log/mcpguard", "srv/worm/mcpguard"} {
		mkdir(t, at(d))
	}
	out, err := run(t, "config", "check", cfgPath)
	if err != nil {
		t.Fatalf("config check of examples/production.yaml, installed: %v\n%s", err, out)
	}
	if !strings.Contains(out, "OK") {
		t.Errorf("config check printed %q, want OK", out)
	}

	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Containment.RateLimits
	for _, c := range []struct {
		control string
		on      bool
	}{
		{"tls", cfg.TLS != nil},
		{"auth", cfg.Auth != nil},
		{"policy_file (examples/policies/finance.yaml)", filepath.Base(cfg.PolicyFile) == "finance.yaml"},
		{"audit with sinks", cfg.Audit != nil && len(cfg.Audit.Sinks) > 0},
		{"admin", cfg.Admin != nil},
		{"tool_pinning", cfg.ToolPinning != nil},
		{"api_keys_database with identity_encryption_key", cfg.APIKeysDatabase != "" && !cfg.IdentityEncryptionKey.IsZero()},
		{"containment.rate_limits", r.PerPrincipal != nil && r.PerAddress != nil},
		{"containment.redis", cfg.Containment.Redis != nil},
		{"containment.anomaly", cfg.Containment.Anomaly != nil},
		{"brute force detection", !cfg.Containment.BruteForce.Disabled},
	} {
		if !c.on {
			t.Errorf("examples/production.yaml no longer configures %s", c.control)
		}
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}
