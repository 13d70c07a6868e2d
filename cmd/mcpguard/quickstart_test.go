package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/mcpguard/mcpguard/internal/mcpguard"
)

// TestMain lets the test binary stand for the mcpguard binary where a configuration says
// "@self": the quickstart's upstream is "@self demo-server".
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "demo-server" {
		root := newRoot()
		root.SetArgs(os.Args[1:])
		if err := root.Execute(); err != nil {
			fmt.Fprintln(os.Stderr, "mcpguard:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// quickstartCopy copies examples/quickstart.yaml and its policy into a temporary directory laid
// out like the repository, so that the state directory (../.mcpguard-quickstart from the
// configuration) is a fresh one under it. It returns the configuration and the state directory.
func quickstartCopy(t *testing.T) (cfg, state string) {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"examples/quickstart.yaml", "examples/policies/quickstart.yaml"} {
		b, err := os.ReadFile(filepath.Join("../..", f))
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The quickstart sets the redaction key's variable; t.Setenv restores it afterwards.
	t.Setenv(quickstartKeyEnv, "")
	return filepath.Join(dir, "examples/quickstart.yaml"), filepath.Join(dir, ".mcpguard-quickstart")
}

// TestQuickstart runs README's first command the way CI does (--once, any free loopback port)
// on a fresh state directory, then again on the state the first run left.
func TestQuickstart(t *testing.T) {
	cfg, state := quickstartCopy(t)

	out, err := run(t, "quickstart", "--once", "--listen", "127.0.0.1:0", "--config", cfg)
	if err != nil {
		t.Fatalf("first run: %v\n%s", err, out)
	}
	for _, want := range []string{
		"signing key " + filepath.Join(state, "quickstart-log.key") + " (created now)",
		"refused: HTTP 403, error -31001 \"denied by policy (rule role:MarketAnalystAI/deny_tools)",
		"✓ audit log verifies: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("first run's output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "level=WARN") || strings.Contains(out, "level=ERROR") {
		t.Errorf("a clean first run printed a warning or an error:\n%s", out)
	}
	for _, f := range []string{"quickstart-log.key", "redaction.key"} {
		fi, err := os.Stat(filepath.Join(state, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}

	// The second run reuses the keys and appends to the same log.
	var second strings.Builder
	rep, err := runQuickstart(context.Background(), &second, io.Discard, &quickstartOptions{config: cfg, listen: "127.0.0.1:0", once: true})
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, second.String())
	}
	if strings.Contains(second.String(), "created now") {
		t.Errorf("the second run created keys again:\n%s", second.String())
	}
	if a := rep.Allowed; a.Error != nil || a.Status != http.StatusOK || len(a.Result) == 0 || toolError(a.Result) {
		t.Errorf("allowed call: HTTP %d, error %+v, result %s; want 200 with a result", a.Status, a.Error, a.Result)
	}
	if rep.AllowedRule != "role:MarketAnalystAI/permission:0" {
		t.Errorf("the audit log's rule for the allowed call = %q, want role:MarketAnalystAI/permission:0", rep.AllowedRule)
	}
	if f := rep.Refused; f.Error == nil || f.Status != http.StatusForbidden || f.Error.Code != mcpguard.CodeDeniedByPolicy ||
		!strings.HasPrefix(f.Error.Message, "denied by policy (rule role:MarketAnalystAI/deny_tools)") {
		t.Errorf("trade: HTTP %d, error %+v, result %s; want 403, -31001 denied by policy (rule role:MarketAnalystAI/deny_tools)", f.Status, f.Error, f.Result)
	}
	if rep.RefusalRule != "role:MarketAnalystAI/deny_tools" {
		t.Errorf("the audit log's rule for the refusal = %q, want role:MarketAnalystAI/deny_tools", rep.RefusalRule)
	}
	v := rep.Verify
	if v == nil || !v.OK() || v.Covered != v.Records || rep.RunRecords == 0 || v.Records <= rep.RunRecords {
		t.Errorf("verification: %+v, %d records from this run; want OK, every record covered, records of both runs", v, rep.RunRecords)
	}
	if p := rep.problems(); len(p) != 0 {
		t.Errorf("problems: %q", p)
	}
}

// TestQuickstartFailsWhenTradeAllowed checks that the quickstart exits non-zero when the trade
// goes through: with a policy that lets the analyst trade, --once must fail.
func TestQuickstartFailsWhenTradeAllowed(t *testing.T) {
	cfg, _ := quickstartCopy(t)
	policy := filepath.Join(filepath.Dir(cfg), "policies/quickstart.yaml")
	b, err := os.ReadFile(policy)
	if err != nil {
		t.Fatal(err)
	}
	lax := strings.Replace(string(b), "    deny_tools:\n      - finance.execute_trade_order\n",
		"      - tool_name: finance.execute_trade_order\n    deny_tools:\n", 1)
	if lax == string(b) {
		t.Fatal("could not rewrite the policy to allow trades")
	}
	if err := os.WriteFile(policy, []byte(lax), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "quickstart", "--once", "--listen", "127.0.0.1:0", "--config", cfg)
	if err == nil || !strings.Contains(err.Error(), "finance.execute_trade_order was NOT refused") {
		t.Fatalf("err = %v, want the trade reported as not refused\n%s", err, out)
	}
}

// TestQuickstartPolicyIsTheSeeds checks that the quickstart's MarketAnalystAI role is the one of
// the seed's policy, examples/policies/finance.yaml.
func TestQuickstartPolicyIsTheSeeds(t *testing.T) {
	role := func(file string) map[string]any {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			Roles []map[string]any `yaml:"roles"`
		}
		if err := yaml.Unmarshal(b, &p); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, r := range p.Roles {
			if r["role"] == "MarketAnalystAI" {
				return r
			}
		}
		t.Fatalf("%s has no MarketAnalystAI role", file)
		return nil
	}
	if diff := cmp.Diff(role("../../examples/policies/finance.yaml"), role("../../examples/policies/quickstart.yaml")); diff != "" {
		t.Errorf("MarketAnalystAI differs between finance.yaml and quickstart.yaml (-finance +quickstart):\n%s", diff)
	}
}

// TestReadmeCommandsRunInCI keeps README's first screen and .ci/run in sync: CI runs each command
// of README's first sh block (the quickstart with --once and a free port added).
func TestReadmeCommandsRunInCI(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := os.ReadFile("../../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "```sh\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("README.md has no sh block")
	}
	var cmds []string
	for _, line := range strings.Split(block, "\n") {
		cmd, _, _ := strings.Cut(line, "#")
		if cmd = strings.Join(strings.Fields(cmd), " "); cmd != "" {
			cmds = append(cmds, cmd)
		}
	}
	if len(cmds) != 2 || cmds[0] != "go run ./cmd/mcpguard quickstart" {
		t.Fatalf("README's first commands = %q, want the quickstart and the tests", cmds)
	}
	for _, c := range cmds {
		if !strings.Contains(string(ci), " "+c) {
			t.Errorf(".ci/run does not run README's command %q", c)
		}
	}
}
