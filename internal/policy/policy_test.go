package policy

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// demoTools are the demo finance server's tools under the gateway's
// "finance." prefix (internal/demo/tools.go).
var demoTools = []string{
	"finance.get_stock_analysis",
	"finance.get_market_overview",
	"finance.get_sector_heatmap",
	"finance.get_client_portfolio",
	"finance.execute_trade_order",
	"finance.update_client_profile",
}

func loadFinance(t testing.TB) *Policy {
	t.Helper()
	p, err := ParseFile("../../examples/policies/finance.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func roles(names ...string) Principal { return Principal{Subject: "test", Roles: names} }

func TestFinanceVisibleTools(t *testing.T) {
	t.Parallel()
	p := loadFinance(t)
	tests := []struct {
		name string
		pr   Principal
		want []string
	}{
		{"MarketAnalystAI sees exactly its three tools", roles("MarketAnalystAI"), []string{
			"finance.get_stock_analysis", "finance.get_market_overview", "finance.get_sector_heatmap",
		}},
		{"PortfolioManagerAI also sees trading, not profile updates", roles("PortfolioManagerAI"), []string{
			"finance.get_stock_analysis", "finance.get_market_overview", "finance.get_sector_heatmap",
			"finance.get_client_portfolio", "finance.execute_trade_order",
		}},
		{"FraudDetectionAI reads portfolios and markets", roles("FraudDetectionAI"), []string{
			"finance.get_stock_analysis", "finance.get_market_overview", "finance.get_client_portfolio",
		}},
		{"a deny in one role hides what another role allows", roles("MarketAnalystAI", "PortfolioManagerAI"), []string{
			"finance.get_stock_analysis", "finance.get_market_overview", "finance.get_sector_heatmap",
			"finance.get_client_portfolio",
		}},
		{"bound by subject", Principal{Subject: "analyst-agent"}, []string{
			"finance.get_stock_analysis", "finance.get_market_overview", "finance.get_sector_heatmap",
		}},
		{"no role sees nothing", Principal{Subject: "stranger"}, nil},
		{"an unknown asserted role grants nothing", roles("Administrator"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, tool := range demoTools {
				if p.Visible(tt.pr, KindTool, tool) {
					got = append(got, tool)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("visible tools (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFinanceDecisions(t *testing.T) {
	t.Parallel()
	p := loadFinance(t)
	office := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC) // 17:00 in Ho Chi Minh City
	night := time.Date(2026, 3, 2, 16, 0, 0, 0, time.UTC)  // 23:00 there
	trade := `{"client_id":"C1001","symbol":"VNM","side":"buy","quantity":100,"order_type":"market"}`
	tests := []struct {
		name string
		pr   Principal
		call Call
		want Decision
	}{
		{
			name: "3-letter symbol allowed",
			pr:   roles("MarketAnalystAI"),
			call: Call{Name: "finance.get_stock_analysis", Arguments: []byte(`{"symbol":"VNM"}`)},
			want: Decision{Allow: true, Rule: "role:MarketAnalystAI/permission:0"},
		},
		{
			name: "4-letter symbol denied by the pattern",
			pr:   roles("MarketAnalystAI"),
			call: Call{Name: "finance.get_stock_analysis", Arguments: []byte(`{"symbol":"AAPL"}`)},
			want: Decision{Rule: "role:MarketAnalystAI/permission:0", Reasons: []string{`argument "symbol": "AAPL" does not match ^[A-Z]{3}$`}},
		},
		{
			name: "symbol of the wrong type",
			pr:   roles("MarketAnalystAI"),
			call: Call{Name: "finance.get_stock_analysis", Arguments: []byte(`{"symbol":123}`)},
			want: Decision{Rule: "role:MarketAnalystAI/permission:0", Reasons: []string{`argument "symbol": got number, want string`}},
		},
		{
			name: "constrained argument missing",
			pr:   roles("MarketAnalystAI"),
			call: Call{Name: "finance.get_stock_analysis", Arguments: []byte(`{"period":"1d"}`)},
			want: Decision{Rule: "role:MarketAnalystAI/permission:0", Reasons: []string{`argument "symbol" is missing; the permission constrains it`}},
		},
		{
			name: "unnamed arguments pass by default",
			pr:   roles("MarketAnalystAI"),
			call: Call{Name: "finance.get_stock_analysis", Arguments: []byte(`{"symbol":"VNM","period":"1y"}`)},
			want: Decision{Allow: true, Rule: "role:MarketAnalystAI/permission:0"},
		},
		{
			name: "region Mars denied by the enum",
			pr:   roles("MarketAnalystAI"),
			call: Call{Name: "finance.get_sector_heatmap", Arguments: []byte(`{"region":"Mars"}`)},
			want: Decision{Rule: "role:MarketAnalystAI/permission:2", Reasons: []string{`argument "region": "Mars" is not one of "Vietnam", "Global"`}},
		},
		{
			name: "region Vietnam allowed",
			pr:   roles("MarketAnalystAI"),
			call: Call{Name: "finance.get_sector_heatmap", Arguments: []byte(`{"region":"Vietnam"}`)},
			want: Decision{Allow: true, Rule: "role:MarketAnalystAI/permission:2"},
		},
		{
			name: "empty constraints allow any arguments",
			pr:   roles("MarketAnalystAI"),
			call: Call{Name: "finance.get_market_overview", Arguments: []byte(`{"market":"Mars"}`)},
			want: Decision{Allow: true, Rule: "role:MarketAnalystAI/permission:1"},
		},
		{
			name: "trade denied by deny_tools",
			pr:   roles("MarketAnalystAI"),
			call: Call{Name: "finance.execute_trade_order", Arguments: []byte(trade)},
			want: Decision{Rule: "role:MarketAnalystAI/deny_tools", Reasons: []string{`tool "finance.execute_trade_order" is listed in deny_tools of role MarketAnalystAI`}},
		},
		{
			name: "deny_tools beats another role's allow",
			pr:   roles("PortfolioManagerAI", "MarketAnalystAI"),
			call: Call{Name: "finance.execute_trade_order", Arguments: []byte(trade)},
			want: Decision{Rule: "role:MarketAnalystAI/deny_tools", Reasons: []string{`tool "finance.execute_trade_order" is listed in deny_tools of role MarketAnalystAI`}},
		},
		{
			name: "a portfolio manager's trade needs approval",
			pr:   roles("PortfolioManagerAI"),
			call: Call{Name: "finance.execute_trade_order", Arguments: []byte(trade)},
			want: Decision{
				Allow: true, Rule: "role:PortfolioManagerAI/permission:4", RequireApproval: &Approval{ApproverRole: "TradingDesk", Timeout: 15 * time.Minute},
				Charges: []Charge{
					{Quota: "trades-per-hour", Rule: "role:PortfolioManagerAI/permission:4", Key: "q:trades-per-hour:s:4:test:1970-01-01T08+0800", Amount: 1, Limit: 20, Expires: time.Unix(3600, 0), Per: "hour"},
					// A market order has no limit_price: the example counts it 0.
					{Quota: "daily-notional", Rule: "role:PortfolioManagerAI/permission:4", Key: "q:daily-notional:s:4:test:1970-01-01", Amount: 0, Limit: 1_000_000, Expires: time.Unix(16*3600, 0), Per: "day",
						Sum: "has(args.limit_price) ? double(args.quantity) * double(args.limit_price) : 0.0"},
				},
				Requires: []Requirement{{Quota: "portfolio-before-trade", Rule: "role:PortfolioManagerAI/permission:4", Key: `m:28:finance.get_client_portfolio:s:4:test:21:{"client_id":"C1001"}`,
					After: "finance.get_client_portfolio", Same: []string{"client_id"}, Within: 10 * time.Minute}},
			},
		},
		{
			name: "unconstrained_arguments deny refuses an unnamed argument",
			pr:   roles("PortfolioManagerAI"),
			call: Call{Name: "finance.execute_trade_order", Arguments: []byte(`{"client_id":"C1001","symbol":"VNM","side":"buy","quantity":100,"order_type":"market","note":"x"}`)},
			want: Decision{Rule: "role:PortfolioManagerAI/permission:4", Reasons: []string{`argument "note" is not allowed: no constraint names it (unconstrained_arguments: deny)`}},
		},
		{
			name: "every failed constraint is a reason",
			pr:   roles("PortfolioManagerAI"),
			call: Call{Name: "finance.execute_trade_order", Arguments: []byte(`{"client_id":"X1","symbol":"VNM","side":"short","quantity":0,"order_type":"market"}`)},
			want: Decision{Rule: "role:PortfolioManagerAI/permission:4", Reasons: []string{
				`argument "client_id": "X1" does not match ^C[0-9]{4}$`,
				`argument "quantity": minimum: got 0, want 1`,
				`argument "side": "short" is not one of "buy", "sell"`,
			}},
		},
		{
			name: "profile updates denied to everyone",
			pr:   roles("PortfolioManagerAI"),
			call: Call{Name: "finance.update_client_profile", Arguments: []byte(`{"client_id":"C1001","email":"a@b.example"}`)},
			want: Decision{Rule: "role:PortfolioManagerAI/deny_tools", Reasons: []string{`tool "finance.update_client_profile" is listed in deny_tools of role PortfolioManagerAI`}},
		},
		{
			name: "default deny names the roles",
			pr:   roles("MarketAnalystAI"),
			call: Call{Name: "finance.get_client_portfolio", Arguments: []byte(`{"client_id":"C1001"}`)},
			want: Decision{Rule: RuleDefaultDeny, Reasons: []string{`no rule allows tool "finance.get_client_portfolio" for roles [MarketAnalystAI]`}},
		},
		{
			name: "no roles at all",
			pr:   Principal{Subject: "stranger"},
			call: Call{Name: "finance.get_stock_analysis", Arguments: []byte(`{"symbol":"VNM"}`)},
			want: Decision{Rule: RuleDefaultDeny, Reasons: []string{`no rule allows tool "finance.get_stock_analysis" for roles [] (the principal has no role this policy defines)`}},
		},
		{
			name: "fraud detection bound by claim, in office hours, from the bank's network",
			pr:   Principal{Subject: "fd-1", Claims: map[string]any{"department": []any{"risk", "fraud"}}},
			call: Call{Name: "finance.get_client_portfolio", Arguments: []byte(`{"client_id":"C1001"}`), Time: office, SourceIP: netip.MustParseAddr("10.1.2.3")},
			// Any principal's read of a portfolio marks it, for sequences that require it.
			want: Decision{Allow: true, Rule: "role:FraudDetectionAI/permission:0", Marks: []Mark{{Key: `m:28:finance.get_client_portfolio:s:4:fd-1:21:{"client_id":"C1001"}`, TTL: 10 * time.Minute}}},
		},
		{
			name: "fraud detection at night",
			pr:   Principal{Subject: "fd-1", Claims: map[string]any{"department": "fraud"}},
			call: Call{Name: "finance.get_client_portfolio", Arguments: []byte(`{"client_id":"C1001"}`), Time: night, SourceIP: netip.MustParseAddr("10.1.2.3")},
			want: Decision{Rule: "role:FraudDetectionAI/permission:0", Reasons: []string{`condition is false: hour >= 7 && hour < 20 && (source_ip == "" || cidr("10.0.0.0/8").containsIP(source_ip))`}},
		},
		{
			name: "fraud detection from outside",
			pr:   Principal{Subject: "fd-1", Claims: map[string]any{"department": "fraud"}},
			call: Call{Name: "finance.get_client_portfolio", Arguments: []byte(`{"client_id":"C1001"}`), Time: office, SourceIP: netip.MustParseAddr("203.0.113.9")},
			want: Decision{Rule: "role:FraudDetectionAI/permission:0", Reasons: []string{`condition is false: hour >= 7 && hour < 20 && (source_ip == "" || cidr("10.0.0.0/8").containsIP(source_ip))`}},
		},
		{
			name: "arguments that are not an object",
			pr:   roles("MarketAnalystAI"),
			call: Call{Name: "finance.get_stock_analysis", Arguments: []byte(`["VNM"]`)},
			want: Decision{Rule: "role:MarketAnalystAI/permission:0", Reasons: []string{"arguments must be a JSON object"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.Decide(tt.pr, tt.call)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateApproxTime(0)); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
		})
	}
}

const globPolicy = `
roles:
  - role: Reader
    permissions:
      - tool_name: "market.*"
      - tool_name: "*.search"
      - resource_uri: "file:///docs/*"
      - prompt_name: "finance.daily_*"
        constraints:
          region: {enum: [Vietnam]}
    deny_tools: ["market.admin_*"]
    deny_resources: ["file:///docs/secret/*"]
    deny_prompts: ["finance.daily_internal"]
  - role: Strict
    permissions:
      - tool_name: calc.add
        constraints: {}
    deny_tools: []
unconstrained_arguments: deny
`

func TestGlobsResourcesPrompts(t *testing.T) {
	t.Parallel()
	p, err := Parse([]byte(globPolicy), "glob.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	reader := roles("Reader")
	tests := []struct {
		name  string
		pr    Principal
		call  Call
		allow bool
		rule  string
	}{
		{"glob prefix", reader, Call{Name: "market.quote"}, true, "role:Reader/permission:0"},
		{"glob spans separators", reader, Call{Name: "market.eu.quote"}, true, "role:Reader/permission:0"},
		{"glob suffix", reader, Call{Name: "web.search"}, true, "role:Reader/permission:1"},
		{"glob does not match the bare prefix", reader, Call{Name: "market"}, false, RuleDefaultDeny},
		{"deny glob beats allow glob", reader, Call{Name: "market.admin_reset"}, false, "role:Reader/deny_tools"},
		{"resource by URI glob", reader, Call{Kind: KindResource, Name: "file:///docs/readme.md"}, true, "role:Reader/permission:2"},
		{"resource deny", reader, Call{Kind: KindResource, Name: "file:///docs/secret/keys"}, false, "role:Reader/deny_resources"},
		{"resource outside", reader, Call{Kind: KindResource, Name: "file:///etc/passwd"}, false, RuleDefaultDeny},
		{"a tool permission does not allow a prompt", reader, Call{Kind: KindPrompt, Name: "market.quote"}, false, RuleDefaultDeny},
		{"prompt with constrained argument", reader, Call{Kind: KindPrompt, Name: "finance.daily_briefing", Arguments: []byte(`{"region":"Vietnam"}`)}, true, "role:Reader/permission:3"},
		{"prompt argument refused", reader, Call{Kind: KindPrompt, Name: "finance.daily_briefing", Arguments: []byte(`{"region":"Global"}`)}, false, "role:Reader/permission:3"},
		{"prompt deny", reader, Call{Kind: KindPrompt, Name: "finance.daily_internal"}, false, "role:Reader/deny_prompts"},
		{"policy-wide unconstrained deny: none", roles("Strict"), Call{Name: "calc.add"}, true, "role:Strict/permission:0"},
		{"policy-wide unconstrained deny: some", roles("Strict"), Call{Name: "calc.add", Arguments: []byte(`{"a":1}`)}, false, "role:Strict/permission:0"},
		{"policy-wide deny applies without a constraints key", reader, Call{Name: "market.quote", Arguments: []byte(`{"a":1}`)}, false, "role:Reader/permission:0"},
		{"no arguments pass policy-wide deny", reader, Call{Name: "market.quote", Arguments: []byte(`{}`)}, true, "role:Reader/permission:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.Decide(tt.pr, tt.call)
			if got.Allow != tt.allow || got.Rule != tt.rule {
				t.Errorf("Decide = allow %v rule %q (reasons %q), want allow %v rule %q", got.Allow, got.Rule, got.Reasons, tt.allow, tt.rule)
			}
			if !got.Allow && len(got.Reasons) == 0 {
				t.Error("a denial without a reason")
			}
		})
	}
}

func TestBindings(t *testing.T) {
	t.Parallel()
	p, err := Parse([]byte(`
roles:
  - role: A
    permissions: [{tool_name: a}]
  - role: B
    permissions: [{tool_name: b}]
  - role: C
    permissions: [{tool_name: c}]
bindings:
  - role: A
    principals: [alice]
    groups: [ops]
  - role: B
    scopes: ["tools:b"]
  - role: C
    claims:
      tenant: acme
      level: [gold, platinum]
`), "bindings.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pr   Principal
		want []string
	}{
		{"subject", Principal{Subject: "alice"}, []string{"A"}},
		{"group", Principal{Subject: "bob", Groups: []string{"dev", "ops"}}, []string{"A"}},
		{"scope", Principal{Scopes: []string{"tools:b"}}, []string{"B"}},
		{"all claims match", Principal{Claims: map[string]any{"tenant": "acme", "level": "gold"}}, []string{"C"}},
		{"one claim missing", Principal{Claims: map[string]any{"tenant": "acme"}}, []string{}},
		{"claim of another type", Principal{Claims: map[string]any{"tenant": "acme", "level": 3.0}}, []string{}},
		{"asserted and bound, in policy order, once", Principal{Subject: "alice", Roles: []string{"C", "A"}, Scopes: []string{"tools:b"}}, []string{"A", "B", "C"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, p.Roles(tt.pr)); diff != "" {
				t.Errorf("roles (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApprovalPreference(t *testing.T) {
	t.Parallel()
	p, err := Parse([]byte(`
roles:
  - role: Held
    permissions:
      - tool_name: pay
        require_approval: {approver_role: Finance}
  - role: Free
    permissions:
      - tool_name: pay
        constraints: {amount: {maximum: 100}}
`), "approval.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	both := roles("Held", "Free")
	small := p.Decide(both, Call{Name: "pay", Arguments: []byte(`{"amount":50}`)})
	if !small.Allow || small.RequireApproval != nil || small.Rule != "role:Free/permission:0" {
		t.Errorf("small payment = %+v, want allowed without approval by role:Free/permission:0", small)
	}
	large := p.Decide(both, Call{Name: "pay", Arguments: []byte(`{"amount":5000}`)})
	want := Decision{Allow: true, Rule: "role:Held/permission:0", RequireApproval: &Approval{ApproverRole: "Finance", Timeout: DefaultApprovalTimeout}}
	if diff := cmp.Diff(want, large); diff != "" {
		t.Errorf("large payment (-want +got):\n%s", diff)
	}
}

func TestConditionVariables(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 4, 9, 30, 0, 0, time.UTC) // a Wednesday
	tests := []struct {
		when  string
		pr    Principal
		args  string
		allow bool
	}{
		{`principal.subject == "alice"`, Principal{Subject: "alice", Roles: []string{"R"}}, `{}`, true},
		{`"R" in principal.roles`, Principal{Roles: []string{"R"}}, `{}`, true},
		{`principal.claims.tier == "gold"`, Principal{Roles: []string{"R"}, Claims: map[string]any{"tier": "gold"}}, `{}`, true},
		{`"admin" in principal.groups`, Principal{Roles: []string{"R"}, Groups: []string{"dev"}}, `{}`, false},
		{`args.amount < 1000`, Principal{Roles: []string{"R"}}, `{"amount": 999}`, true},
		{`args.amount < 1000`, Principal{Roles: []string{"R"}}, `{"amount": 1000.5}`, false},
		{`has(args.note) == false`, Principal{Roles: []string{"R"}}, `{"note": null}`, false},
		{`args.tags.exists(t, t == "urgent")`, Principal{Roles: []string{"R"}}, `{"tags": ["a","urgent"]}`, true},
		{`hour == 9 && minute == 30 && weekday == 3`, Principal{Roles: []string{"R"}}, `{}`, true},
		{`now > timestamp("2026-01-01T00:00:00Z")`, Principal{Roles: []string{"R"}}, `{}`, true},
		{`name == "t" && kind == "tool"`, Principal{Roles: []string{"R"}}, `{}`, true},
		{`source_ip == "192.0.2.1"`, Principal{Roles: []string{"R"}}, `{}`, true},
		{`args.missing == 1`, Principal{Roles: []string{"R"}}, `{}`, false}, // an error denies
		// JSON numbers are ints when they are integers that fit, doubles otherwise.
		{`type(args.n) == int && args.n == 5`, Principal{Roles: []string{"R"}}, `{"n": 5}`, true},
		{`type(args.n) == double && args.n == 5`, Principal{Roles: []string{"R"}}, `{"n": 5.0}`, true},
		{`type(args.n) == double && args.n > 1e19`, Principal{Roles: []string{"R"}}, `{"n": 99999999999999999999}`, true},
		{`type(args.n) == double && args.n > 1e308`, Principal{Roles: []string{"R"}}, `{"n": 1e400}`, true},
		{`type(args.o.k) == int && args.o == {"k": 2}`, Principal{Roles: []string{"R"}}, `{"o": {"k": 2}}`, true},
		{`type(args.l[0]) == int && args.l == [1, 2.5, "x", null, [3], {}]`, Principal{Roles: []string{"R"}}, `{"l": [1, 2.5, "x", null, [3], {}]}`, true},
		{`args.z == null && "z" in args && size(args) == 1`, Principal{Roles: []string{"R"}}, `{"z": null}`, true},
		{`size(args) == 0`, Principal{Roles: []string{"R"}}, ``, true},
		{`size(args) == 0`, Principal{Roles: []string{"R"}}, `null`, true},
		{`args.a.b.c.exists(x, x.d == 1)`, Principal{Roles: []string{"R"}}, `{"a": {"b": {"c": [{"d": 0}, {"d": 1}]}}}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.when, func(t *testing.T) {
			t.Parallel()
			src := "roles:\n  - role: R\n    permissions:\n      - tool_name: t\n        when: " + strconvQuote(tt.when) + "\n"
			p, err := Parse([]byte(src), "when.yaml", nil)
			if err != nil {
				t.Fatal(err)
			}
			d := p.Decide(tt.pr, Call{Name: "t", Arguments: []byte(tt.args), Time: at, SourceIP: netip.MustParseAddr("192.0.2.1")})
			if d.Allow != tt.allow {
				t.Errorf("allow = %v (reasons %q), want %v", d.Allow, d.Reasons, tt.allow)
			}
		})
	}
}

func strconvQuote(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

func TestConditionCostLimit(t *testing.T) {
	t.Parallel()
	items := "[" + strings.Repeat("1,", 99) + "1]"
	long := `"` + strings.Repeat("x", 100_000) + `"`
	tests := []struct{ when, args string }{
		{`args.items.all(a, args.items.all(b, args.items.all(c, a + b + c >= 0)))`, `{"items":` + items + `}`},
		// Cheap to write, but comparing strings costs with their length.
		{`args.a == args.b`, `{"a":` + long + `,"b":` + long + `}`},
		{`args.a.startsWith(args.b)`, `{"a":` + long + `,"b":` + long + `}`},
	}
	for _, tt := range tests {
		t.Run(tt.when, func(t *testing.T) {
			t.Parallel()
			src := "roles:\n  - role: R\n    permissions:\n      - tool_name: t\n        when: " + strconvQuote(tt.when) + "\n"
			p, err := Parse([]byte(src), "cost.yaml", &Options{CELCostLimit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			d := p.Decide(roles("R"), Call{Name: "t", Arguments: []byte(tt.args)})
			if d.Allow || len(d.Reasons) != 1 || !strings.Contains(d.Reasons[0], "cost limit") {
				t.Errorf("Decide = %+v, want a denial for exceeding the cost limit", d)
			}
		})
	}
}

func TestDecideIsSafeForConcurrentUse(t *testing.T) {
	t.Parallel()
	p := loadFinance(t)
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 200 {
				d := p.Decide(Principal{Claims: map[string]any{"department": "fraud"}}, Call{Name: "finance.get_client_portfolio", Arguments: []byte(`{"client_id":"C1001"}`), Time: time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)})
				if !d.Allow {
					t.Errorf("Decide = %+v", d)
					return
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}

func TestSeedJSONRole(t *testing.T) {
	t.Parallel()
	// The seed's role object, verbatim but for the namespace and the
	// comment JSON does not allow, inside a JSON policy.
	src := `{"roles": [{
"role": "MarketAnalystAI",
"permissions": [
{"tool_name": "get_stock_analysis", "action": "invoke", "constraints": {"symbol": {"type": "string", "pattern": "^[A-Z]{3}$"}}},
{"tool_name": "get_market_overview", "action": "invoke", "constraints": {}},
{"tool_name": "get_sector_heatmap", "action": "invoke", "constraints": {"region": {"enum": ["Vietnam", "Global"]}}}
],
"deny_tools": ["execute_trade_order", "update_client_profile"]
}]}`
	p, err := Parse([]byte(src), "seed.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	var visible []string
	for _, tool := range []string{"get_stock_analysis", "get_market_overview", "get_sector_heatmap", "get_client_portfolio", "execute_trade_order", "update_client_profile"} {
		if p.Visible(roles("MarketAnalystAI"), KindTool, tool) {
			visible = append(visible, tool)
		}
	}
	if !slices.Equal(visible, []string{"get_stock_analysis", "get_market_overview", "get_sector_heatmap"}) {
		t.Errorf("visible = %q", visible)
	}
}

// TestLookAlikeArgumentsAreDenied: an argument that differs from a constrained one only in case
// or Unicode form is what a lenient upstream (Go's encoding/json, for one) would read as the
// constrained argument, unchecked: the policy denies it, naming both, even where the constraint
// is optional.
func TestLookAlikeArgumentsAreDenied(t *testing.T) {
	t.Parallel()
	p, err := Parse([]byte(`
roles:
  - role: Analyst
    permissions:
      - tool_name: finance.get_stock_analysis
        constraints:
          symbol: {type: string, pattern: "^[A-Z]{3}$"}
        optional_arguments: [symbol]
`), "look-alike.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range []string{`{"Symbol":"AAPL"}`, `{"SYMBOL":"AAPL"}`, `{"ſymbol":"AAPL"}`, `{"symbol\u200b":"AAPL"}`, `{"ｓｙｍｂｏｌ":"AAPL"}`, `{"symbol":"VNM","Symbol":"AAPL"}`} {
		d := p.Decide(roles("Analyst"), Call{Kind: KindTool, Name: "finance.get_stock_analysis", Arguments: []byte(args)})
		if d.Allow || len(d.Reasons) == 0 || !strings.Contains(d.Reasons[0], `the constrained argument "symbol"`) {
			t.Errorf("%s: %+v; want a denial naming the constrained argument", args, d)
		}
	}
	if d := p.Decide(roles("Analyst"), Call{Kind: KindTool, Name: "finance.get_stock_analysis", Arguments: []byte(`{"symbol":"VNM","depth":2}`)}); !d.Allow {
		t.Errorf("the constrained argument itself and an unrelated one: %+v", d)
	}
}
