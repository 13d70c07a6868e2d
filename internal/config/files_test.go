package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckFiles: what the review saw pass `config check` and then fail `serve` — a signing key
// written as file:keys/k.key, which does not exist — is reported, with every other file the
// gateway will read or write; a configuration whose files are all in order passes.
func TestCheckFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("policy.yaml", 0o644)
	write("audit.key", 0o600)
	loose := write("loose.key", 0o644)
	notDir := write("plain", 0o644)
	cfgFile := filepath.Join(dir, "gateway.yaml")
	load := func(yaml string) *Config {
		t.Helper()
		if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(cfgFile)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	t.Setenv("MCPGUARD_TEST_REDACTION_KEY", strings.Repeat("k", 40))
	ok := load(`listen: 127.0.0.1:0
policy_file: policy.yaml
upstreams:
  - name: a
    stdio: {command: "@self", args: [demo-server]}
audit:
  database: audit.db
  signing_key_file: audit.key
  checkpoint_dir: checkpoints/new
  redaction_key: env:MCPGUARD_TEST_REDACTION_KEY
`)
	if err := CheckFiles(ok, cfgFile); err != nil {
		t.Errorf("a configuration whose files are in order: %v", err)
	}

	bad := load(`listen: 127.0.0.1:0
policy_file: missing-policy.yaml
upstreams:
  - name: a
    stdio: {command: no-such-server-binary, dir: ` + notDir + `}
audit:
  database: no-such-dir/audit.db
  signing_key_file: file:keys/k.key
  checkpoint_dir: plain/checkpoints
  redaction_key: env:MCPGUARD_TEST_REDACTION_KEY
tls:
  cert_file: ` + good + `
  key_file: ` + loose + `
`)
	err := CheckFiles(bad, cfgFile)
	if err == nil {
		t.Fatal("CheckFiles passed missing and unsafe files")
	}
	for _, want := range []string{
		"policy_file: " + filepath.Join(dir, "missing-policy.yaml") + ": no such file",
		"audit.signing_key_file: " + filepath.Join(dir, "file:keys/k.key") + `: no such file (this setting is a path, not a secret reference: leave out "file:")`,
		"audit.database: " + filepath.Join(dir, "no-such-dir/audit.db") + " does not exist and neither does its directory",
		"audit.checkpoint_dir: " + notDir + " is not a directory",
		"tls.key_file: " + loose + " is a private key with mode -rw-r--r--, which lets others read it: chmod 640",
		`upstreams[0].stdio.command: "no-such-server-binary" cannot be run`,
		"upstreams[0].stdio.dir: " + notDir + " is not a directory",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the report lacks %q:\n%v", want, err)
		}
	}
}
