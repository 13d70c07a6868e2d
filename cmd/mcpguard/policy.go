package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/mcpguard/mcpguard/internal/policy"
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Check, test and explain role policy files"}
	opts := &policy.Options{}
	cmd.PersistentFlags().StringVar(&opts.Namespace, "namespace", "",
		`read tool and prompt names without this prefix as that upstream's, e.g. "finance." (what policy_upstream: finance does in the gateway)`)
	cmd.AddCommand(newPolicyCheck(opts), newPolicyTest(opts), newPolicyExplain(opts))
	return cmd
}

func newPolicyCheck(opts *policy.Options) *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a policy file and report every problem",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := policy.ParseFile(args[0], opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: OK (%d roles, %d permissions)\n", args[0], p.NumRoles(), p.NumPermissions())
			return nil
		},
	}
}

// policyCase is one row of a `policy test` table.
type policyCase struct {
	Name      string         `yaml:"name"`
	Principal casePrincipal  `yaml:"principal"`
	Tool      string         `yaml:"tool"`
	Resource  string         `yaml:"resource"`
	Prompt    string         `yaml:"prompt"`
	Arguments map[string]any `yaml:"arguments"`
	Time      string         `yaml:"time"`
	SourceIP  string         `yaml:"source_ip"`
	Expect    string         `yaml:"expect"`
	Rule      string         `yaml:"rule"`
}

type casePrincipal struct {
	Subject string         `yaml:"subject"`
	Roles   []string       `yaml:"roles"`
	Groups  []string       `yaml:"groups"`
	Scopes  []string       `yaml:"scopes"`
	Claims  map[string]any `yaml:"claims"`
}

type caseFile struct {
	Cases []policyCase `yaml:"cases"`
}

// maxCasesBytes bounds a cases file.
const maxCasesBytes = 16 << 20

func newPolicyTest(opts *policy.Options) *cobra.Command {
	return &cobra.Command{
		Use:   "test FILE CASES",
		Short: "Run a table of calls against a policy and report every decision that differs from the expected one",
		Long: `Run a table of calls against a policy. CASES is a YAML file:

  cases:
    - name: analyst reads a 3-letter symbol
      principal: {subject: agent-1, roles: [MarketAnalystAI]}
      tool: finance.get_stock_analysis        # or resource: URI, or prompt: NAME
      arguments: {symbol: VNM}
      expect: allow                           # allow, deny, or approval (allowed once approved)
      rule: role:MarketAnalystAI/permission:0 # optional

Optional per case: time (RFC 3339, default 2026-01-01T12:00:00Z) and source_ip.
The command exits non-zero when any case differs.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := policy.ParseFile(args[0], opts)
			if err != nil {
				return err
			}
			cases, err := readCases(args[1])
			if err != nil {
				return err
			}
			return runCases(cmd.OutOrStdout(), p, cases)
		},
	}
}

func readCases(path string) ([]policyCase, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read cases: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCasesBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read cases %s: %w", path, err)
	}
	if len(data) > maxCasesBytes {
		return nil, fmt.Errorf("%s: a cases file may be at most %d bytes", path, maxCasesBytes)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	var cf caseFile
	if err := dec.Decode(&cf); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(cf.Cases) == 0 {
		return nil, fmt.Errorf("%s: no cases", path)
	}
	var problems []string
	for i, c := range cf.Cases {
		where := fmt.Sprintf("cases[%d]", i)
		if c.Name != "" {
			where += " (" + c.Name + ")"
		}
		n := 0
		for _, s := range []string{c.Tool, c.Resource, c.Prompt} {
			if s != "" {
				n++
			}
		}
		if n != 1 {
			problems = append(problems, where+": name exactly one of tool, resource or prompt")
		}
		switch c.Expect {
		case "allow", "deny", "approval":
		default:
			problems = append(problems, fmt.Sprintf("%s: expect is %q; want allow, deny or approval", where, c.Expect))
		}
		if _, err := caseCall(c); err != nil {
			problems = append(problems, where+": "+err.Error())
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s: %d problems:\n\t%s", path, len(problems), strings.Join(problems, "\n\t"))
	}
	return cf.Cases, nil
}

// caseTime is the time a case is decided at unless it gives one.
func caseTime() time.Time { return time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC) }

func caseCall(c policyCase) (policy.Call, error) {
	call := policy.Call{Kind: policy.KindTool, Name: c.Tool, Time: caseTime()}
	switch {
	case c.Resource != "":
		call.Kind, call.Name = policy.KindResource, c.Resource
	case c.Prompt != "":
		call.Kind, call.Name = policy.KindPrompt, c.Prompt
	}
	if c.Arguments != nil {
		b, err := json.Marshal(c.Arguments)
		if err != nil {
			return call, fmt.Errorf("arguments: %v", err)
		}
		call.Arguments = b
	}
	if c.Time != "" {
		t, err := time.Parse(time.RFC3339, c.Time)
		if err != nil {
			return call, fmt.Errorf("time %q is not RFC 3339 (2026-03-02T10:00:00Z)", c.Time)
		}
		call.Time = t
	}
	if c.SourceIP != "" {
		ip, err := netip.ParseAddr(c.SourceIP)
		if err != nil {
			return call, fmt.Errorf("source_ip %q is not an IP address", c.SourceIP)
		}
		call.SourceIP = ip
	}
	return call, nil
}

func outcome(d policy.Decision) string {
	switch {
	case d.Allow && d.RequireApproval != nil:
		return "approval"
	case d.Allow:
		return "allow"
	}
	return "deny"
}

// limitLines describes what an allowed call charges, requires, marks and draws from, one line
// each, as `policy test` and `policy explain` print them.
func limitLines(d policy.Decision) []string {
	var out []string
	for _, c := range d.Charges {
		amount, limit := strconv.FormatFloat(c.Amount, 'f', -1, 64), strconv.FormatFloat(c.Limit, 'f', -1, 64)
		what := amount + " call toward at most " + limit
		if c.Sum != "" {
			what = amount + " toward a total of at most " + limit
		}
		out = append(out, fmt.Sprintf("charge %s: %s per %s (window ends %s; key %s)", c.Quota, what, c.Per, c.Expires.Format(time.RFC3339), c.Key))
	}
	for _, r := range d.Requires {
		same := ""
		if len(r.Same) > 0 {
			same = " with the same " + strings.Join(r.Same, ", ")
		}
		out = append(out, fmt.Sprintf("require %s: a call of %s%s within %v (key %s)", r.Quota, r.After, same, r.Within, r.Key))
	}
	for _, m := range d.Marks {
		out = append(out, fmt.Sprintf("mark %s for %v", m.Key, m.TTL))
	}
	for _, r := range d.RateLimits {
		var parts []string
		if r.Rate > 0 {
			parts = append(parts, fmt.Sprintf("%s calls a second, burst %d", strconv.FormatFloat(r.Rate, 'f', -1, 64), r.Burst))
		}
		if r.Concurrent > 0 {
			parts = append(parts, fmt.Sprintf("%d at once", r.Concurrent))
		}
		out = append(out, fmt.Sprintf("rate limit %s: %s (key %s)", r.Rule, strings.Join(parts, ", "), r.Key))
	}
	return out
}

func runCases(w io.Writer, p *policy.Policy, cases []policyCase) error {
	failed := 0
	for i, c := range cases {
		call, _ := caseCall(c) // checked by readCases
		pr := policy.Principal{Subject: c.Principal.Subject, Roles: c.Principal.Roles, Groups: c.Principal.Groups, Scopes: c.Principal.Scopes, Claims: c.Principal.Claims}
		d := p.Decide(pr, call)
		name := c.Name
		if name == "" {
			name = fmt.Sprintf("cases[%d]", i)
		}
		got := outcome(d)
		if got == c.Expect && (c.Rule == "" || c.Rule == d.Rule) {
			fmt.Fprintf(w, "ok    %s: %s by %s\n", name, got, d.Rule)
			for _, l := range limitLines(d) {
				fmt.Fprintf(w, "        %s\n", l)
			}
			continue
		}
		failed++
		want := c.Expect
		if c.Rule != "" {
			want += " by " + c.Rule
		}
		fmt.Fprintf(w, "FAIL  %s: %s %s\n", name, call.Kind, call.Name)
		fmt.Fprintf(w, "        want: %s\n        got:  %s by %s\n", want, got, d.Rule)
		for _, r := range d.Reasons {
			fmt.Fprintf(w, "              %s\n", r)
		}
	}
	fmt.Fprintf(w, "%d cases, %d passed, %d failed\n", len(cases), len(cases)-failed, failed)
	if failed > 0 {
		return fmt.Errorf("%d of %d policy cases failed", failed, len(cases))
	}
	return nil
}

func newPolicyExplain(opts *policy.Options) *cobra.Command {
	var (
		subject, tool, resource, prompt, argsJSON, claimsJSON, sourceIP, at string
		roles, groups, scopes                                               []string
	)
	cmd := &cobra.Command{
		Use:   "explain FILE --principal NAME --roles A,B (--tool NAME | --resource URI | --prompt NAME) [--args JSON]",
		Short: "Show whether one call would be allowed, by which rule, and why",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := policy.ParseFile(args[0], opts)
			if err != nil {
				return err
			}
			c := policyCase{Tool: tool, Resource: resource, Prompt: prompt, Time: at, SourceIP: sourceIP}
			n := 0
			for _, s := range []string{tool, resource, prompt} {
				if s != "" {
					n++
				}
			}
			if n != 1 {
				return errors.New("name exactly one of --tool, --resource or --prompt")
			}
			call, err := caseCall(c)
			if err != nil {
				return err
			}
			if at == "" {
				call.Time = time.Now()
			}
			if argsJSON != "" {
				if !json.Valid([]byte(argsJSON)) {
					return fmt.Errorf("--args is not valid JSON")
				}
				call.Arguments = []byte(argsJSON)
			}
			pr := policy.Principal{Subject: subject, Roles: roles, Groups: groups, Scopes: scopes}
			if claimsJSON != "" {
				if err := json.Unmarshal([]byte(claimsJSON), &pr.Claims); err != nil {
					return fmt.Errorf("--claims is not a JSON object: %v", err)
				}
			}
			d := p.Decide(pr, call)
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "call:     %s %s\n", call.Kind, call.Name)
			fmt.Fprintf(w, "roles:    %s\n", strings.Join(p.Roles(pr), ", "))
			fmt.Fprintf(w, "decision: %s\n", outcome(d))
			fmt.Fprintf(w, "rule:     %s\n", d.Rule)
			if a := d.RequireApproval; a != nil {
				fmt.Fprintf(w, "approval: an operator with role %s must approve within %v, or the call is denied\n", a.ApproverRole, a.Timeout)
			}
			if lines := limitLines(d); len(lines) > 0 {
				fmt.Fprintln(w, "limits:   (enforced by the gateway against its counters)")
				for _, l := range lines {
					fmt.Fprintf(w, "  - %s\n", l)
				}
			}
			if len(d.Reasons) > 0 {
				fmt.Fprintln(w, "reasons:")
				for _, r := range d.Reasons {
					fmt.Fprintf(w, "  - %s\n", r)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&subject, "principal", "", "the caller's subject (matched by bindings' principals)")
	f.StringSliceVar(&roles, "roles", nil, "roles the caller asserts (comma-separated)")
	f.StringSliceVar(&groups, "groups", nil, "the caller's groups (comma-separated)")
	f.StringSliceVar(&scopes, "scopes", nil, "the caller's scopes (comma-separated)")
	f.StringVar(&claimsJSON, "claims", "", `the caller's claims as a JSON object, e.g. '{"department":"fraud"}'`)
	f.StringVar(&tool, "tool", "", "namespaced tool name, e.g. finance.get_stock_analysis")
	f.StringVar(&resource, "resource", "", "resource URI")
	f.StringVar(&prompt, "prompt", "", "namespaced prompt name")
	f.StringVar(&argsJSON, "args", "", `the call's arguments as a JSON object, e.g. '{"symbol":"AAPL"}'`)
	f.StringVar(&sourceIP, "source-ip", "", "the caller's IP address")
	f.StringVar(&at, "time", "", "when the call happens (RFC 3339; default now)")
	return cmd
}
