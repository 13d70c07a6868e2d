package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runPolicyCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newPolicyCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

const financePolicy = "../../examples/policies/finance.yaml"

func TestPolicyCheck(t *testing.T) {
	out, err := runPolicyCmd(t, "check", financePolicy)
	if err != nil || !strings.Contains(out, "OK (4 roles") {
		t.Errorf("check finance.yaml = %q, %v; want OK", out, err)
	}
	_, err = runPolicyCmd(t, "check", "../../internal/policy/testdata/invalid.yaml")
	if err == nil || !strings.Contains(err.Error(), "22 problems") {
		t.Errorf("check invalid.yaml error = %v, want all 22 problems", err)
	}
}

func TestPolicyTest(t *testing.T) {
	out, err := runPolicyCmd(t, "test", financePolicy, "../../examples/policies/finance_cases.yaml")
	if err != nil {
		t.Fatalf("finance cases: %v\n%s", err, out)
	}
	// Under an allowed case: what the trade charges and requires, and what the read marks.
	for _, want := range []string{
		"        charge trades-per-hour: 1 call toward at most 20 per hour (window ends 2026-01-01T20:00:00+07:00; key q:trades-per-hour:s:4:pm-1:2026-01-01T19+0700)",
		"        charge daily-notional: 402.5 toward a total of at most 1000000 per day (window ends 2026-01-02T00:00:00+07:00; key q:daily-notional:s:4:pm-1:2026-01-01)",
		`        require portfolio-before-trade: a call of finance.get_client_portfolio with the same client_id within 10m0s (key m:28:finance.get_client_portfolio:s:4:pm-1:21:{"client_id":"C1001"})`,
		`        mark m:28:finance.get_client_portfolio:s:4:pm-1:21:{"client_id":"C1001"} for 10m0s`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	cases := filepath.Join(t.TempDir(), "cases.yaml")
	if err := os.WriteFile(cases, []byte(`cases:
  - name: expects the wrong thing
    principal: {roles: [MarketAnalystAI]}
    tool: finance.get_stock_analysis
    arguments: {symbol: AAPL}
    expect: allow
  - name: right
    principal: {roles: [MarketAnalystAI]}
    tool: finance.get_stock_analysis
    arguments: {symbol: VNM}
    expect: allow
`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = runPolicyCmd(t, "test", financePolicy, cases)
	if err == nil || err.Error() != "1 of 2 policy cases failed" {
		t.Errorf("error = %v, want 1 of 2 policy cases failed", err)
	}
	for _, want := range []string{
		"FAIL  expects the wrong thing: tool finance.get_stock_analysis",
		"want: allow",
		"got:  deny by role:MarketAnalystAI/permission:0",
		`argument "symbol": "AAPL" does not match ^[A-Z]{3}$`,
		"ok    right: allow by role:MarketAnalystAI/permission:0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	if err := os.WriteFile(cases, []byte("cases:\n  - name: x\n    tool: t\n    expect: maybe\n    typo: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runPolicyCmd(t, "test", financePolicy, cases); err == nil || !strings.Contains(err.Error(), "typo") {
		t.Errorf("unknown key in cases: error = %v, want it named", err)
	}
}

func TestPolicyExplain(t *testing.T) {
	out, err := runPolicyCmd(t, "explain", financePolicy, "--principal", "analyst-agent", "--tool", "finance.get_stock_analysis", "--args", `{"symbol":"AAPL"}`)
	if err != nil {
		t.Fatal(err)
	}
	want := `call:     tool finance.get_stock_analysis
roles:    MarketAnalystAI
decision: deny
rule:     role:MarketAnalystAI/permission:0
reasons:
  - argument "symbol": "AAPL" does not match ^[A-Z]{3}$
`
	if out != want {
		t.Errorf("explain output:\n%s\nwant:\n%s", out, want)
	}
	out, err = runPolicyCmd(t, "explain", financePolicy, "--roles", "PortfolioManagerAI", "--tool", "finance.execute_trade_order",
		"--args", `{"client_id":"C1001","symbol":"VNM","side":"buy","quantity":1,"order_type":"market"}`)
	if err != nil || !strings.Contains(out, "decision: approval") || !strings.Contains(out, "role TradingDesk must approve within 15m0s") {
		t.Errorf("explain trade = %q, %v; want approval by TradingDesk", out, err)
	}
	if !strings.Contains(out, "limits:   (enforced by the gateway against its counters)\n  - charge trades-per-hour: 1 call toward at most 20 per hour") ||
		!strings.Contains(out, "  - require portfolio-before-trade: a call of finance.get_client_portfolio with the same client_id within 10m0s") {
		t.Errorf("explain trade lists no limits:\n%s", out)
	}
}
