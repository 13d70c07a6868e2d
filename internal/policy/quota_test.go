package policy

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func mustParse(t *testing.T, src string) *Policy {
	t.Helper()
	p, err := Parse([]byte(src), "limits.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestQuotaProblems(t *testing.T) {
	t.Parallel()
	src := `time_zone: Asia/Ho_Chi_Minh
roles:
  - role: R
    rate_limit: {burst: 3}
    allowed_networks: [10.0.0.1/8, "fe80::1%eth0", 10.1.2.3, nonsense, 10.0.0.0/33]
    denied_networks: []
    permissions:
      - tool_name: t
        quotas:
          - {name: a, max_calls: 0, per: fortnight}
          - {name: a, max_calls: 1, per: 1h, sum: "args.x", max: 5}
          - {max_calls: 2, per: 500ms}
          - {name: "bad name", sum: "args.x + 'y'", max: -1, per: day}
          - {name: s1, sum: "'text'", max: 10, per: day, scope: team}
          - {name: seq, after: "finance.*", same: [id, id, ""], within: 0s, per: day, scope: role}
          - {name: n, max: 10, per: day}
          - {name: e}
          - {name: w, max_calls: "20", per: hour}
          - {name: v, after: x, within: ten}
        rate_limit: {calls_per_second: 0, concurrent: 2, burst: 0, typo: 1}
      - resource_uri: "file:///*"
        quotas:
          - {name: r, sum: "1", max: 1, per: day}
        rate_limit: {}
  - role: Nowhere
    allowed_networks: []
`
	_, err := Parse([]byte(src), "limits.yaml", nil)
	var probs *Problems
	if !errors.As(err, &probs) {
		t.Fatalf("Parse error = %v, want *Problems", err)
	}
	var got []string
	for _, p := range probs.List {
		got = append(got, p.String())
	}
	want := []string{
		"line 4: roles[0].rate_limit.burst: burst: needs calls_per_second: (a bucket that never refills would refuse every call once empty)",
		`line 5: roles[0].allowed_networks[0]: "10.0.0.1/8" has bits set past its prefix length; write 10.0.0.0/8 for the network, or the address alone`,
		`line 5: roles[0].allowed_networks[1]: "fe80::1%eth0" is not an IP address or a network in CIDR notation such as 10.0.0.0/8`,
		`line 5: roles[0].allowed_networks[3]: "nonsense" is not an IP address or a network in CIDR notation such as 10.0.0.0/8`,
		`line 5: roles[0].allowed_networks[4]: "10.0.0.0/33" is not a network in CIDR notation such as 10.0.0.0/8`,
		"line 10: roles[0].permissions[0].quotas[0].max_calls: 0 is out of range: want at least 1",
		`line 10: roles[0].permissions[0].quotas[0].per: "fortnight" is not a window: want minute, hour, day (calendar windows in the policy's time_zone) or a duration such as "15m" or "4h"`,
		`line 11: roles[0].permissions[0].quotas[1].name: duplicate quota name "a" (first at roles[0].permissions[0].quotas[0]); a quota's name is unique in the file`,
		"line 11: roles[0].permissions[0].quotas[1]: a quota is of one kind, not max_calls and sum: write one quota for each",
		"line 12: roles[0].permissions[0].quotas[2]: name: is required (it names the quota in reasons and audit records)",
		`line 12: roles[0].permissions[0].quotas[2].per: "500ms" is out of range: want whole seconds, from 1s to 744h0m0s`,
		`line 13: roles[0].permissions[0].quotas[3].name: "bad name" is not a quota name: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or a digit`,
		"line 13: roles[0].permissions[0].quotas[3].sum: the sum yields string; it must yield a number (int or double)",
		"line 13: roles[0].permissions[0].quotas[3].max: -1 is out of range: want more than 0",
		"line 14: roles[0].permissions[0].quotas[4].sum: the sum yields string; it must yield a number (int or double)",
		`line 14: roles[0].permissions[0].quotas[4].scope: "team" is not principal or role`,
		"line 15: roles[0].permissions[0].quotas[5].per: a sequence has no per:; within: is how long the earlier call counts",
		`line 15: roles[0].permissions[0].quotas[5].after: "finance.*" is a pattern; after: names exactly one tool`,
		"line 15: roles[0].permissions[0].quotas[5].within: 0s is out of range: want more than 0 and at most 744h0m0s",
		"line 15: roles[0].permissions[0].quotas[5].same[1]: \"id\" is listed twice",
		"line 15: roles[0].permissions[0].quotas[5].same[2]: an argument name is required",
		"line 15: roles[0].permissions[0].quotas[5].scope: a sequence is always per principal (the same principal's earlier call); leave scope: out",
		"line 16: roles[0].permissions[0].quotas[6]: max: needs sum: (the expression whose running total it bounds); a count of calls is max_calls:",
		"line 17: roles[0].permissions[0].quotas[7]: a quota needs one of max_calls: (at most N calls per window), sum: with max: (a running total per window) or after: with within: (a sequence)",
		`line 18: roles[0].permissions[0].quotas[8].max_calls: expected an integer, got the string "20"`,
		`line 19: roles[0].permissions[0].quotas[9].within: "ten" is not a duration: want a number with a unit, such as "90s" or "10m"`,
		`line 20: roles[0].permissions[0].rate_limit: unknown key "typo"; known keys: calls_per_second, burst, concurrent`,
		"line 20: roles[0].permissions[0].rate_limit.calls_per_second: 0 is out of range: want more than 0 and at most 1000000",
		"line 20: roles[0].permissions[0].rate_limit.burst: 0 is out of range: want 1 to 1000000",
		"line 23: roles[0].permissions[1].quotas[0].sum: a resource read has no arguments to sum",
		"line 24: roles[0].permissions[1].rate_limit: a rate limit needs calls_per_second:, concurrent: or both",
		"line 26: roles[1].allowed_networks: an empty list allows no address; leave allowed_networks out to allow every address",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

// TestQuotaCharges: a count and a sum quota charge the allowing permission's calls, keyed by
// quota, principal (or role) and window; calendar windows are the policy's time zone's.
func TestQuotaCharges(t *testing.T) {
	t.Parallel()
	p := mustParse(t, `time_zone: Asia/Ho_Chi_Minh
roles:
  - role: Trader
    permissions:
      - tool_name: trade
        quotas:
          - {name: per-hour, max_calls: 20, per: hour}
          - {name: notional, sum: "double(args.quantity) * double(args.limit_price)", max: 1000000, per: day}
          - {name: desk, max_calls: 100, per: 15m, scope: role}
`)
	// 16:59:30 UTC is 23:59:30 in Ho Chi Minh City: the trading day ends 30 seconds later.
	at := time.Date(2026, 12, 6, 16, 59, 30, 0, time.UTC)
	alice := Principal{Subject: "alice", Roles: []string{"Trader"}}
	d := p.Decide(alice, Call{Name: "trade", Arguments: []byte(`{"quantity":100,"limit_price":80.5}`), Time: at})
	hcm, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	want := []Charge{
		{Quota: "per-hour", Rule: "role:Trader/permission:0", Key: "q:per-hour:s:5:alice:2026-12-06T23+0700", Amount: 1, Limit: 20, Expires: time.Date(2026, 12, 7, 0, 0, 0, 0, hcm), Per: "hour"},
		{Quota: "notional", Rule: "role:Trader/permission:0", Key: "q:notional:s:5:alice:2026-12-06", Amount: 8050, Limit: 1_000_000, Expires: time.Date(2026, 12, 7, 0, 0, 0, 0, hcm), Per: "day",
			Sum: "double(args.quantity) * double(args.limit_price)"},
		// 15-minute windows are aligned to the Unix epoch: 16:45 to 17:00 UTC.
		{Quota: "desk", Rule: "role:Trader/permission:0", Key: "q:desk:r:6:Trader:@1796575500/15m", Amount: 1, Limit: 100, Expires: time.Date(2026, 12, 6, 17, 0, 0, 0, time.UTC), Per: "15m"},
	}
	if !d.Allow || d.Requires != nil || d.Marks != nil || d.RateLimits != nil {
		t.Fatalf("Decide = %+v", d)
	}
	if diff := cmp.Diff(want, d.Charges, cmpopts.EquateApproxTime(0)); diff != "" {
		t.Errorf("charges (-want +got):\n%s", diff)
	}
	// A minute later it is the next trading day there.
	next := p.Decide(alice, Call{Name: "trade", Arguments: []byte(`{"quantity":1,"limit_price":2}`), Time: at.Add(time.Minute)})
	if got := next.Charges[1].Key; got != "q:notional:s:5:alice:2026-12-07" {
		t.Errorf("next day's key = %q", got)
	}
	// An API key and a JWT of the same subject are one principal; the role's quota is shared.
	bob := p.Decide(Principal{Subject: "bob", Groups: []string{"x"}, Roles: []string{"Trader"}}, Call{Name: "trade", Arguments: []byte(`{"quantity":1,"limit_price":2}`), Time: at})
	if bob.Charges[0].Key == d.Charges[0].Key || bob.Charges[2].Key != d.Charges[2].Key {
		t.Errorf("bob's keys %q and %q; want his own count and the role's shared one", bob.Charges[0].Key, bob.Charges[2].Key)
	}
}

func TestQuotaSumFailuresDeny(t *testing.T) {
	t.Parallel()
	p := mustParse(t, `roles:
  - role: Trader
    permissions:
      - tool_name: trade
        quotas:
          - {name: notional, sum: "args.quantity * args.price", max: 1000, per: day}
`)
	tr := roles("Trader")
	tests := []struct{ args, reason string }{
		{`{"quantity":2}`, `quota "notional": the sum could not be evaluated (no such key: price): args.quantity * args.price`},
		{`{"quantity":2,"price":0.5}`, `quota "notional": the sum could not be evaluated (no such overload): args.quantity * args.price`},
		{`{"quantity":-2,"price":5}`, `quota "notional": the sum is -10; it must be a finite number of at least 0: args.quantity * args.price`},
		{`{"quantity":"2","price":"5"}`, `quota "notional": the sum could not be evaluated (no such overload): args.quantity * args.price`},
	}
	for _, tt := range tests {
		d := p.Decide(tr, Call{Name: "trade", Arguments: []byte(tt.args)})
		want := Decision{Rule: "role:Trader/permission:0", Reasons: []string{tt.reason}}
		if diff := cmp.Diff(want, d); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.args, diff)
		}
	}
	if d := p.Decide(tr, Call{Name: "trade", Arguments: []byte(`{"quantity":2,"price":5}`)}); !d.Allow || d.Charges[0].Amount != 10 {
		t.Errorf("ints: %+v", d)
	}
}

// TestSequenceKeysMatch: the key a trade requires is byte for byte the key the read of the same
// client's portfolio by the same principal marks; numbers are compared by value.
func TestSequenceKeysMatch(t *testing.T) {
	t.Parallel()
	p := mustParse(t, `roles:
  - role: PM
    permissions:
      - tool_name: finance.get_client_portfolio
      - tool_name: finance.execute_trade_order
        quotas:
          - {name: read-first, after: finance.get_client_portfolio, same: [client_id, account], within: 10m}
          - {name: read-any, after: finance.get_client_portfolio, same: [], within: 1h}
      - tool_name: finance.cancel
        quotas:
          - {name: read-first-too, after: finance.get_client_portfolio, same: [account, client_id], within: 20m}
`)
	pm := Principal{Subject: "pm", Roles: []string{"PM"}}
	read := p.Decide(pm, Call{Name: "finance.get_client_portfolio", Arguments: []byte(`{"account":1.0,"client_id":"C1","x":true}`)})
	wantMarks := []Mark{
		{Key: `m:28:finance.get_client_portfolio:s:2:pm:30:{"account":1,"client_id":"C1"}`, TTL: 20 * time.Minute},
		{Key: `m:28:finance.get_client_portfolio:s:2:pm:0:`, TTL: time.Hour},
	}
	if diff := cmp.Diff(wantMarks, read.Marks); diff != "" {
		t.Fatalf("marks (-want +got):\n%s", diff)
	}
	trade := p.Decide(pm, Call{Name: "finance.execute_trade_order", Arguments: []byte(`{"client_id":"C1","account":1e0}`)})
	if len(trade.Requires) != 2 || trade.Requires[0].Key != read.Marks[0].Key || trade.Requires[1].Key != read.Marks[1].Key || trade.Marks != nil {
		t.Errorf("trade = %+v; want requirements matching the marks %+v", trade, read.Marks)
	}
	if other := p.Decide(pm, Call{Name: "finance.execute_trade_order", Arguments: []byte(`{"client_id":"C2","account":1}`)}); other.Requires[0].Key == read.Marks[0].Key {
		t.Error("another client's trade requires the same mark")
	}
	if other := p.Decide(Principal{Subject: "pm2", Roles: []string{"PM"}}, Call{Name: "finance.execute_trade_order", Arguments: []byte(`{"client_id":"C1","account":1}`)}); other.Requires[0].Key == read.Marks[0].Key {
		t.Error("another principal's trade requires the same mark")
	}
	missing := p.Decide(pm, Call{Name: "finance.execute_trade_order", Arguments: []byte(`{"client_id":"C1"}`)})
	if missing.Allow || len(missing.Reasons) != 1 || missing.Reasons[0] != `quota "read-first": argument "account" is missing; the sequence compares its value with the earlier call of finance.get_client_portfolio` {
		t.Errorf("trade without account = %+v", missing)
	}
	// A read without the compared arguments marks only what it can.
	if d := p.Decide(pm, Call{Name: "finance.get_client_portfolio", Arguments: []byte(`{}`)}); len(d.Marks) != 1 || d.Marks[0].TTL != time.Hour {
		t.Errorf("read without arguments: marks %+v", d.Marks)
	}
}

func TestRateLimits(t *testing.T) {
	t.Parallel()
	p := mustParse(t, `roles:
  - role: R
    rate_limit: {calls_per_second: 2.5}
    permissions:
      - tool_name: a
        rate_limit: {calls_per_second: 5, burst: 10, concurrent: 2}
      - tool_name: b
  - role: Free
    permissions:
      - tool_name: c
        rate_limit: {concurrent: 1}
`)
	long := strings.Repeat("x", 65)
	d := p.Decide(Principal{Subject: long, Roles: []string{"R", "Free"}}, Call{Name: "a"})
	h := "h:9537c5fdf120482f7d58d25e9ed583f52c02b4e304ea814db1633ad565aed7e9"
	want := []RateLimit{
		{Rule: "role:R/rate_limit", Key: "r:role:1:R:s:" + h, Rate: 2.5, Burst: 3},
		{Rule: "role:R/permission:0/rate_limit", Key: "r:perm:19:role:R/permission:0:s:" + h, Rate: 5, Burst: 10, Concurrent: 2},
	}
	if diff := cmp.Diff(want, d.RateLimits); diff != "" {
		t.Errorf("rate limits (-want +got):\n%s", diff)
	}
	if d := p.Decide(Principal{Subject: "s", Roles: []string{"R", "Free"}}, Call{Name: "c"}); len(d.RateLimits) != 1 || d.RateLimits[0].Concurrent != 1 || d.RateLimits[0].Rate != 0 {
		t.Errorf("c: %+v; want only its concurrency bound", d.RateLimits)
	}
	// A completion is not the call: it carries no limits.
	if d := p.Decide(roles("R"), Call{Kind: KindTool, Name: "b", Completion: true}); !d.Allow || d.RateLimits != nil {
		t.Errorf("completion: %+v", d)
	}
}

// TestKeysDoNotCollide: subjects and roles are length-prefixed (or hashed), so no choice of
// subject produces another principal's key.
func TestKeysDoNotCollide(t *testing.T) {
	t.Parallel()
	p := mustParse(t, `roles:
  - role: R
    rate_limit: {calls_per_second: 1}
    permissions:
      - tool_name: t
        quotas:
          - {name: q, max_calls: 5, per: day}
          - {name: seq, after: u, same: [v], within: 1m}
`)
	at := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	subjects := []string{"", "a", "a:", "5:alice", "alice:2026-12-06", "1:a", "a:s:1:a", strings.Repeat("z", 64), strings.Repeat("z", 65), strings.Repeat("z", 66), "h:" + strings.Repeat("0", 64)}
	seen := map[string]string{}
	for _, s := range subjects {
		for _, v := range []string{`"x"`, `"x:s:1:a"`, `1`, `"1"`} {
			d := p.Decide(Principal{Subject: s, Roles: []string{"R"}}, Call{Name: "t", Arguments: []byte(`{"v":` + v + `}`), Time: at})
			for _, k := range []string{d.Charges[0].Key, d.RateLimits[0].Key, d.Requires[0].Key} {
				id := s + "\x00" + v
				if strings.HasPrefix(k, "q:") || strings.HasPrefix(k, "r:") {
					id = s
				}
				if other, dup := seen[k]; dup && other != id {
					t.Errorf("key %q for %q and for %q", k, id, other)
				}
				seen[k] = id
				if len(k) > 200 {
					t.Errorf("key of %d bytes: %q", len(k), k)
				}
			}
		}
	}
}

func TestNetworks(t *testing.T) {
	t.Parallel()
	p := mustParse(t, `roles:
  - role: Office
    allowed_networks: [10.0.0.0/8, "2001:db8::/32", 198.51.100.7, "::ffff:192.0.2.0/120"]
    denied_networks: [10.66.0.0/16]
    permissions:
      - tool_name: trade
      - tool_name: read
    deny_tools: [wipe]
  - role: Anywhere
    permissions:
      - tool_name: read
      - tool_name: wipe
      - tool_name: guarded
        constraints: {n: {maximum: 1}}
  - role: Guarded
    allowed_networks: [192.168.0.0/16]
    permissions:
      - tool_name: guarded
`)
	both := roles("Office", "Anywhere")
	ip := netip.MustParseAddr
	tests := []struct {
		name string
		pr   Principal
		call Call
		want Decision
	}{
		{"inside allowed", both, Call{Name: "trade", SourceIP: ip("10.1.2.3")}, Decision{Allow: true, Rule: "role:Office/permission:0"}},
		{"IPv4-mapped inside", both, Call{Name: "trade", SourceIP: ip("::ffff:10.1.2.3")}, Decision{Allow: true, Rule: "role:Office/permission:0"}},
		{"IPv6 inside", both, Call{Name: "trade", SourceIP: ip("2001:db8::1")}, Decision{Allow: true, Rule: "role:Office/permission:0"}},
		{"outside allowed", both, Call{Name: "trade", SourceIP: ip("203.0.113.9")}, Decision{Rule: "role:Office/allowed_networks", Reasons: []string{
			"role Office does not apply: the source address 203.0.113.9 is outside its allowed_networks [10.0.0.0/8 2001:db8::/32 198.51.100.7/32 192.0.2.0/24]"}}},
		{"a single address", both, Call{Name: "trade", SourceIP: ip("198.51.100.7")}, Decision{Allow: true, Rule: "role:Office/permission:0"}},
		{"an IPv4-mapped prefix is IPv4", both, Call{Name: "trade", SourceIP: ip("192.0.2.200")}, Decision{Allow: true, Rule: "role:Office/permission:0"}},
		{"inside denied", both, Call{Name: "trade", SourceIP: ip("10.66.0.7")}, Decision{Rule: "role:Office/denied_networks", Reasons: []string{
			"role Office does not apply: the source address 10.66.0.7 is in its denied_networks [10.66.0.0/16]"}}},
		{"unknown address fails closed", both, Call{Name: "trade"}, Decision{Rule: "role:Office/allowed_networks", Reasons: []string{
			"role Office does not apply: the source address is unknown (as over stdio) and the role is limited to networks (allowed_networks)"}}},
		{"another role still allows", both, Call{Name: "read", SourceIP: ip("203.0.113.9")}, Decision{Allow: true, Rule: "role:Anywhere/permission:0"}},
		{"deny lists of a role that does not apply still deny", both, Call{Name: "wipe", SourceIP: ip("203.0.113.9")}, Decision{Rule: "role:Office/deny_tools", Reasons: []string{
			`tool "wipe" is listed in deny_tools of role Office`}}},
		{"a role that names nothing of the call is not mentioned", both, Call{Name: "other", SourceIP: ip("203.0.113.9")}, Decision{Rule: RuleDefaultDeny, Reasons: []string{
			`no rule allows tool "other" for roles [Anywhere]`}}},
		{"a failed permission and a role outside its networks", roles("Anywhere", "Guarded"), Call{Name: "guarded", Arguments: []byte(`{"n":5}`), SourceIP: ip("10.0.0.1")}, Decision{Rule: "role:Anywhere/permission:2", Reasons: []string{
			`argument "n": maximum: got 5, want 1`,
			"role Guarded does not apply: the source address 10.0.0.1 is outside its allowed_networks [192.168.0.0/16]"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, p.Decide(tt.pr, tt.call)); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecideAllocatesNothingForUnusedLimits: a policy whose roles have networks but whose call
// passes them, and a permission without limits, decide with no allocation, as before.
func TestDecideAllocatesNothingForUnusedLimits(t *testing.T) {
	p := mustParse(t, `roles:
  - role: Office
    allowed_networks: [10.0.0.0/8]
    permissions:
      - tool_name: read
      - tool_name: other
  - role: Seq
    permissions:
      - tool_name: trade
        quotas:
          - {name: s, after: read, within: 1m}
`)
	pr := roles("Office")
	call := Call{Name: "other", SourceIP: netip.MustParseAddr("10.1.2.3")}
	if d := p.Decide(pr, call); !d.Allow {
		t.Fatalf("Decide = %+v", d)
	}
	if n := testing.AllocsPerRun(100, func() { p.Decide(pr, call) }); n != 0 {
		t.Errorf("%v allocations per decision, want 0", n)
	}
}

func TestWindowBounds(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name, per, at   string
		start, end, lbl string
	}{
		// On 2026-11-01 New York falls back: 01:00-02:00 happens twice, as two windows.
		{"first 1 am", "hour", "2026-11-01T05:30:00Z", "2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z", "2026-11-01T01-0400"},
		{"second 1 am", "hour", "2026-11-01T06:30:00Z", "2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z", "2026-11-01T01-0500"},
		{"a 25-hour day", "day", "2026-11-01T12:00:00Z", "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z", "2026-11-01"},
		{"minute", "minute", "2026-11-01T12:34:56.7Z", "2026-11-01T12:34:00Z", "2026-11-01T12:35:00Z", "2026-11-01T07:34-0500"},
		{"4h from the epoch", "4h", "2026-11-01T12:34:56Z", "2026-11-01T12:00:00Z", "2026-11-01T16:00:00Z", "@1793534400/4h"},
		{"before the epoch", "7s", "1969-12-31T23:59:59Z", "1969-12-31T23:59:53Z", "1970-01-01T00:00:00Z", "@-7/7s"},
	}
	for _, tt := range tests {
		w, err := parseWindow(tt.per)
		if err != nil {
			t.Fatal(err)
		}
		start, end := w.bounds(utc(tt.at), ny)
		lbl := string(w.appendLabel(nil, start))
		if !start.Equal(utc(tt.start)) || !end.Equal(utc(tt.end)) || lbl != tt.lbl {
			t.Errorf("%s: [%v, %v) %q; want [%s, %s) %q", tt.name, start.UTC(), end.UTC(), lbl, tt.start, tt.end, tt.lbl)
		}
	}
}

// TestArgumentsDecodedByTheCaller: Call.Args is read by every step that reads arguments —
// constraints, the condition, a sum, a sequence — not only by the first.
func TestArgumentsDecodedByTheCaller(t *testing.T) {
	t.Parallel()
	p := mustParse(t, `roles:
  - role: R
    permissions:
      - tool_name: t
        constraints: {n: {type: integer}}
        when: args.n > 1
        quotas:
          - {name: s, sum: "args.n * 2", max: 100, per: day}
          - {name: q, after: u, same: [n], within: 1m}
`)
	d := p.Decide(roles("R"), Call{Name: "t", Args: map[string]any{"n": json.Number("5")}})
	if !d.Allow || d.Charges[0].Amount != 10 || d.Requires[0].Key != `m:1:u:s:4:test:7:{"n":5}` {
		t.Errorf("Decide = %+v", d)
	}
}
