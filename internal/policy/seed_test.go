package policy

import (
	"os"
	"testing"
	"time"
)

// TestSeedRoleAsWritten: the role object of the Enterprise MCP Compliance & Auditing guide, pasted
// as is (one role object, a // comment, tool names without the upstream's prefix), scoped to the
// demo server's "finance" upstream, decides as the guide says.
func TestSeedRoleAsWritten(t *testing.T) {
	data, err := os.ReadFile("../../examples/policies/seed-role.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(data, "seed-role.json", &Options{Namespace: "finance."})
	if err != nil {
		t.Fatalf("the seed's role does not parse: %v", err)
	}
	analyst := &Principal{Subject: "agent", Roles: []string{"MarketAnalystAI"}}
	for _, c := range []struct {
		tool, args string
		allow      bool
	}{
		{"finance.get_stock_analysis", `{"symbol":"FPT"}`, true},
		{"finance.get_stock_analysis", `{"symbol":"AAPL"}`, false}, // "Only allow 3-letter symbols"
		{"finance.get_market_overview", `{}`, true},
		{"finance.get_sector_heatmap", `{"region":"Vietnam"}`, true},
		{"finance.get_sector_heatmap", `{"region":"Europe"}`, false},
		{"finance.execute_trade_order", `{"symbol":"FPT"}`, false},
		{"finance.update_client_profile", `{}`, false},
		{"get_stock_analysis", `{"symbol":"FPT"}`, false}, // scoped: not another upstream's tool
		{"other.get_stock_analysis", `{"symbol":"FPT"}`, false},
	} {
		d := p.Decide(*analyst, Call{Kind: KindTool, Name: c.tool, Arguments: []byte(c.args), Time: time.Now()})
		if d.Allow != c.allow {
			t.Errorf("%s %s: allow=%v (%s %v), want %v", c.tool, c.args, d.Allow, d.Rule, d.Reasons, c.allow)
		}
	}
}

// TestPolicyRootForms: a policy is a document with roles:, one role object, or a list of them;
// each says the same thing.
func TestPolicyRootForms(t *testing.T) {
	for name, doc := range map[string]string{
		"document": `{"roles": [{"role": "R", "permissions": [{"tool_name": "t"}]}]}`,
		"role":     `{"role": "R", "permissions": [{"tool_name": "t"}]}`,
		"list":     `[{"role": "R", "permissions": [{"tool_name": "t"}]}]`,
		"yaml":     "role: R\npermissions:\n  - tool_name: t\n",
	} {
		p, err := Parse([]byte(doc), name, nil)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if d := p.Decide(Principal{Roles: []string{"R"}}, Call{Kind: KindTool, Name: "t"}); !d.Allow {
			t.Errorf("%s: role R may not call t: %v", name, d.Reasons)
		}
	}
	if _, err := Parse([]byte(`"just a string"`), "s", nil); err == nil {
		t.Error("a string parsed as a policy")
	}
}

// TestJSONComments: // and /* */ comments in a JSON policy are ignored, line numbers of problems
// stay right, and // inside strings is text.
func TestJSONComments(t *testing.T) {
	doc := "{ // the analysts\n\"role\": \"R\", /* one\nrole */ \"permissions\": [\n{\"tool_name\": \"http://x\"},\n{\"tool_name\": \"t\", \"bogus\": 1}\n]}"
	_, err := Parse([]byte(doc), "c.json", nil)
	ps, ok := err.(*Problems)
	if !ok || len(ps.List) != 1 || ps.List[0].Line != 5 {
		t.Fatalf("want one problem on line 5 (the unknown key), got %v", err)
	}
	p, err := Parse([]byte("[ /* roles */ {\"role\": \"R\", \"permissions\": [{\"tool_name\": \"a//b\"}]} // end\n]"), "c.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := p.Decide(Principal{Roles: []string{"R"}}, Call{Kind: KindTool, Name: "a//b"}); !d.Allow {
		t.Errorf("the tool name a//b lost its //: %v", d.Reasons)
	}
}
