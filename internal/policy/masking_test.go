package policy

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const portfolio = "finance.get_client_portfolio"

func TestFinanceMasking(t *testing.T) {
	t.Parallel()
	p := loadFinance(t)
	if n := p.NumMaskingRules(); n != 4 {
		t.Fatalf("finance.yaml has %d masking rules, want 4", n)
	}
	all := []string{"client-identity", "client-email", "client-accounts", "personal-data-in-text"}
	tool := Call{Kind: KindTool, Name: portfolio}
	for _, tt := range []struct {
		name string
		pr   Principal
		c    Call
		want []string // the plan's rules; nil: no plan
	}{
		{"PortfolioManagerAI gets the portfolio masked", Principal{Subject: "pm-1", Groups: []string{"portfolio-managers"}}, tool, all},
		{"FraudDetectionAI too", Principal{Subject: "fd-1", Claims: map[string]any{"department": "fraud"}}, tool, all},
		{"ComplianceOfficer sees it in clear", Principal{Subject: "co-1", Groups: []string{"compliance"}}, tool, nil},
		{"so does a compliance officer who also holds FraudDetectionAI", Principal{Subject: "co-1", Groups: []string{"compliance"}, Claims: map[string]any{"department": "compliance"}}, tool, nil},
		{"and one holding it with PortfolioManagerAI", roles("PortfolioManagerAI", "ComplianceOfficer"), tool, nil},
		{"another tool's result is not masked", roles("PortfolioManagerAI"), Call{Kind: KindTool, Name: "finance.get_stock_analysis"}, nil},
		{"a resource is not a tool", roles("PortfolioManagerAI"), Call{Kind: KindResource, Name: portfolio}, nil},
		{"a completion returns no result to mask", roles("PortfolioManagerAI"), Call{Kind: KindTool, Name: portfolio, Completion: true}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			plan := p.Masking(tt.pr, tt.c)
			var got []string
			if plan != nil {
				got = plan.Rules()
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("plan rules (-want +got):\n%s", diff)
			}
		})
	}
}

const maskingPolicy = `
roles:
  - role: Reader
    permissions: [{tool_name: svc.read}, {tool_name: svc.other}]
  - role: Auditor                       # unmasked, but may not call svc.read
    permissions: [{tool_name: svc.other}]
    unmasked: true
  - role: Office                        # unmasked from the office only
    permissions: [{tool_name: svc.read}]
    allowed_networks: [10.0.0.0/8]
    unmasked: true
  - role: Accounts                      # sees accounts, not names
    permissions: [{tool_name: "svc.*"}]
    see_unmasked: [accounts]
  - role: Intern
    permissions: [{tool_name: svc.read}]
masking:
  rules:
    - {name: names, tool_name: svc.read, paths: [$.name], action: pseudonymise}
    - {name: accounts, tool_name: "svc.*", paths: [$.iban], action: partial}
    - {name: intern-only, tool_name: svc.read, paths: [$.salary], action: drop, roles: [Intern]}
`

// TestMaskingRoles: every rule that applies masks, the most restrictive wins, and a role lifts
// a rule only where it grants access to the tool's result.
func TestMaskingRoles(t *testing.T) {
	t.Parallel()
	p, err := Parse([]byte(maskingPolicy), "masking.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	office, home := netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("203.0.113.9")
	read := func(addr netip.Addr) Call { return Call{Kind: KindTool, Name: "svc.read", SourceIP: addr} }
	for _, tt := range []struct {
		name  string
		roles []string
		c     Call
		want  []string
	}{
		{"a reader: every rule for everyone", []string{"Reader"}, read(office), []string{"names", "accounts"}},
		{"an intern: and the rule for interns", []string{"Intern"}, read(office), []string{"names", "accounts", "intern-only"}},
		{"the most restrictive wins: a reader who is an intern", []string{"Reader", "Intern"}, read(office), []string{"names", "accounts", "intern-only"}},
		{"unmasked without access to the tool lifts nothing", []string{"Reader", "Auditor"}, read(office), []string{"names", "accounts"}},
		{"unmasked with access to the tool lifts everything", []string{"Reader", "Intern", "Office"}, read(office), nil},
		{"outside its networks the role lifts nothing", []string{"Reader", "Office"}, read(home), []string{"names", "accounts"}},
		{"an unknown address lifts nothing either", []string{"Office"}, read(netip.Addr{}), []string{"names", "accounts"}},
		{"see_unmasked lifts its rules only", []string{"Reader", "Accounts"}, read(home), []string{"names"}},
		{"on another tool", []string{"Accounts"}, Call{Kind: KindTool, Name: "svc.other"}, nil},
		{"the auditor's own tool", []string{"Auditor"}, Call{Kind: KindTool, Name: "svc.other"}, nil},
		{"a reader's other tool", []string{"Reader"}, Call{Kind: KindTool, Name: "svc.other"}, []string{"accounts"}},
		{"no role", nil, read(office), []string{"names", "accounts"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			if plan := p.Masking(roles(tt.roles...), tt.c); plan != nil {
				got = plan.Rules()
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("plan rules (-want +got):\n%s", diff)
			}
		})
	}
	// The plan masks as its rules say.
	out, st, err := p.Masking(roles("Intern"), read(office)).Apply([]byte(`{"structuredContent":{"name":"Anna","iban":"DE76370400444711081500","salary":1}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"structuredContent":{"name":"[redacted]","iban":"DE76 **** **** 1500"}}`; string(out) != want {
		t.Errorf("masked %s, want %s", out, want)
	}
	if diff := cmp.Diff(map[string]int{"names": 1, "accounts": 1, "intern-only": 1}, map[string]int(st)); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

// TestMaskingAllocatesNothing: once a set of rules has its plan, finding it allocates nothing,
// and a policy without masking answers at once.
func TestMaskingAllocatesNothing(t *testing.T) {
	p := loadFinance(t)
	pm := Principal{Subject: "pm-1", Groups: []string{"portfolio-managers"}}
	c := Call{Kind: KindTool, Name: portfolio}
	first := p.Masking(pm, c)
	if first == nil {
		t.Fatal("no plan: the test proves nothing")
	}
	if n := testing.AllocsPerRun(100, func() {
		if p.Masking(pm, c) != first {
			t.Fatal("the plan was built again")
		}
	}); n != 0 {
		t.Errorf("Masking allocates %v times a call", n)
	}
	plain, err := Parse([]byte("roles: [{role: R, permissions: [{tool_name: t}]}]"), "plain.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if plain.Masking(roles("R"), Call{Kind: KindTool, Name: "t"}) != nil {
			t.Fatal("a plan without masking rules")
		}
	}); n != 0 {
		t.Errorf("Masking without masking rules allocates %v times a call", n)
	}
}

// TestMaskingNamespace: under --namespace / policy_upstream, masking rules name tools as roles
// do.
func TestMaskingNamespace(t *testing.T) {
	t.Parallel()
	p, err := Parse([]byte(`
roles: [{role: R, permissions: [{tool_name: get_client_portfolio}]}]
masking:
  rules: [{name: n, tool_name: get_client_portfolio, paths: [$.full_name], action: drop}]
`), "ns.yaml", &Options{Namespace: "finance."})
	if err != nil {
		t.Fatal(err)
	}
	if p.Masking(roles("R"), Call{Kind: KindTool, Name: portfolio}) == nil {
		t.Error("the rule does not apply to the namespaced tool")
	}
}

func TestMaskingChangeIsReported(t *testing.T) {
	t.Parallel()
	base := loadFinance(t)
	changed := func(from, to string) Change {
		t.Helper()
		src := strings.Replace(financeText(t), from, to, 1)
		np, err := Parse([]byte(src), "finance.yaml", nil)
		if err != nil {
			t.Fatal(err)
		}
		return Diff(base, np)
	}
	c := changed("paths: [$.email]", "paths: [$.email, $.risk_profile]")
	if !c.Masking || c.Empty() || !strings.Contains(c.String(), "masking rules changed") || len(c.Changed) != 0 {
		t.Errorf("a masking rule changed: %+v (%s)", c, c)
	}
	c = changed("    unmasked: true", "    unmasked: false")
	if c.Masking || !cmp.Equal(c.Changed, []string{"ComplianceOfficer"}) {
		t.Errorf("a role's unmasked access changed: %+v (%s)", c, c)
	}
}

func financeText(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("../../examples/policies/finance.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
