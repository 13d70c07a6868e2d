package contain_test

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/contain"
	"github.com/mcpguard/mcpguard/internal/policy"
)

// quotaPolicy is the finance example's trading quotas, with a rate limit and one more count.
const quotaPolicy = `time_zone: Asia/Ho_Chi_Minh
roles:
  - role: PM
    rate_limit: {calls_per_second: 5, burst: 3}
    permissions:
      - tool_name: finance.get_client_portfolio
        rate_limit: {concurrent: 2}
      - tool_name: finance.execute_trade_order
        quotas:
          - {name: trades-per-hour, max_calls: 20, per: hour}
          - {name: daily-notional, sum: "double(args.quantity) * double(args.limit_price)", max: 1000000, per: day}
          - {name: portfolio-before-trade, after: finance.get_client_portfolio, same: [client_id], within: 10m}
      - tool_name: finance.cheap
        quotas:
          - {name: cheap-a, max_calls: 5, per: day}
          - {name: cheap-b, max_calls: 1, per: day}
`

// quotaGuard is a Guard over a Local backend whose clock stands still, so that no bucket
// refills and no window ends during a test; limits are the configuration's.
func quotaGuard(t *testing.T, b contain.Backend, limits contain.Limits) *contain.Guard {
	t.Helper()
	g, err := contain.New(t.Context(), contain.Options{Backend: b, Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// stillLocal is a Local backend whose clock stands at the time it was made.
func stillLocal() *contain.Local {
	at := time.Now()
	return contain.NewLocal(contain.LocalOptions{Now: func() time.Time { return at }})
}

func quotaDecide(t *testing.T, p *policy.Policy, subject, tool, args string) *policy.Decision {
	t.Helper()
	d := p.Decide(policy.Principal{Subject: subject, Roles: []string{"PM"}}, policy.Call{Name: tool, Arguments: []byte(args), Time: time.Now(), SourceIP: netip.MustParseAddr("10.0.0.1")})
	if !d.Allow {
		t.Fatalf("%s %s denied: %v", tool, args, d.Reasons)
	}
	return &d
}

var quotaAddr = netip.MustParseAddr("10.0.0.1")

// mustLimit applies a call's limits as the gateway does, failing the test on a backend error.
func mustLimit(t *testing.T, g *contain.Guard, subject string, d *policy.Decision) (*contain.Refusal, func()) {
	t.Helper()
	release, ref, err := g.Limit(context.Background(), subject, quotaAddr, "finance.x", "finance", d)
	if err != nil {
		t.Fatalf("Limit: %v", err)
	}
	if (ref == nil) == (release == nil) {
		t.Fatalf("Limit: refusal %+v with release %v", ref, release != nil)
	}
	return ref, release
}

// total reads a counter without changing it.
func total(t *testing.T, b contain.Backend, key string) float64 {
	t.Helper()
	v, _, err := b.Add(context.Background(), key, 0, 1e18, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestLimitQuotaSequenceAndTotals follows a portfolio manager's day: a trade before reading
// the client's portfolio is refused; after the read it passes and is charged; a trade that
// would take the day's notional past 1 000 000 is refused naming the total, and counts toward
// no quota; the 21st trade of the hour is refused.
func TestLimitQuotaSequenceAndTotals(t *testing.T) {
	t.Parallel()
	// Without the role's rate limit, whose bucket the still clock never refills.
	src := strings.Replace(quotaPolicy, "    rate_limit: {calls_per_second: 5, burst: 3}\n", "", 1)
	p, err := policy.Parse([]byte(src), "quota.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	b := stillLocal()
	g := quotaGuard(t, b, contain.Limits{})
	trade := func(qty int, price string) *policy.Decision {
		return quotaDecide(t, p, "alice", "finance.execute_trade_order", `{"client_id":"C1001","quantity":`+strconv.Itoa(qty)+`,"limit_price":`+price+`}`)
	}

	first := trade(100, "10")
	ref, _ := mustLimit(t, g, "alice", first)
	if ref == nil || ref.Kind != contain.KindQuota || ref.Name != "portfolio-before-trade" || ref.Rule != "role:PM/permission:1" ||
		ref.Reason != `quota "portfolio-before-trade": this call must follow a call of finance.get_client_portfolio with the same client_id by the same principal within 10m, and none was served` {
		t.Fatalf("trade before reading the portfolio: %+v", ref)
	}
	for _, ch := range first.Charges {
		if v := total(t, b, ch.Key); v != 0 {
			t.Errorf("a refused requirement charged %s = %v", ch.Quota, v)
		}
	}

	read := quotaDecide(t, p, "alice", "finance.get_client_portfolio", `{"client_id":"C1001"}`)
	ref, release := mustLimit(t, g, "alice", read)
	if ref != nil {
		t.Fatalf("read: %+v", ref)
	}
	release()
	if err := contain.Marks(context.Background(), b, read); err != nil {
		t.Fatal(err)
	}

	// A read of another client does not let alice trade C1002.
	if ref, _ := mustLimit(t, g, "alice", quotaDecide(t, p, "alice", "finance.execute_trade_order", `{"client_id":"C1002","quantity":1,"limit_price":1}`)); ref == nil || ref.Name != "portfolio-before-trade" {
		t.Errorf("trade for another client: %+v", ref)
	}

	if ref, _ := mustLimit(t, g, "alice", trade(9500, "100")); ref != nil { // 950 000
		t.Fatalf("first trade: %+v", ref)
	}
	over := trade(1000, "100") // 100 000 more
	ref, _ = mustLimit(t, g, "alice", over)
	want := `quota "daily-notional": 1 050 000 of 1 000 000 per day would be exceeded (now 950 000)`
	if ref == nil || ref.Kind != contain.KindQuota || ref.Name != "daily-notional" || ref.Reason != want {
		t.Fatalf("over the day's notional: %+v, want %q", ref, want)
	}
	if ref.RetryAfter <= 0 || ref.RetryAfter > 25*time.Hour {
		t.Errorf("RetryAfter = %v, want until the trading day ends", ref.RetryAfter)
	}
	// The refused trade counted toward no quota: one trade so far.
	if v := total(t, b, over.Charges[0].Key); over.Charges[0].Quota != "trades-per-hour" || v != 1 {
		t.Errorf("%s = %v after one trade and one refused, want trades-per-hour = 1", over.Charges[0].Quota, v)
	}
	for i := 1; i < 20; i++ {
		if ref, _ := mustLimit(t, g, "alice", trade(1, "1")); ref != nil {
			t.Fatalf("trade %d: %+v", i+1, ref)
		}
	}
	ref, _ = mustLimit(t, g, "alice", trade(1, "1"))
	if want := `quota "trades-per-hour": 21 of 20 calls per hour would be exceeded (now 20)`; ref == nil || ref.Reason != want {
		t.Errorf("21st trade: %+v, want %q", ref, want)
	}
}

func TestLimitPolicyRateLimits(t *testing.T) {
	t.Parallel()
	p, err := policy.Parse([]byte(quotaPolicy), "quota.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	g := quotaGuard(t, stillLocal(), contain.Limits{})
	read := quotaDecide(t, p, "bob", "finance.get_client_portfolio", `{"client_id":"C1001"}`)
	_, rel1 := mustLimit(t, g, "bob", read)
	_, rel2 := mustLimit(t, g, "bob", read)
	ref, _ := mustLimit(t, g, "bob", read)
	if ref == nil || ref.Kind != contain.KindRateLimit || ref.Name != "concurrent" || ref.Rule != "role:PM/permission:0/rate_limit" ||
		ref.Reason != "concurrency limit role:PM/permission:0/rate_limit reached: 2 calls at once" {
		t.Fatalf("third concurrent read: %+v", ref)
	}
	rel1()
	rel1() // harmless
	rel2()
	// The third read, refused by the slots, took no token: the bucket of 3 still holds one.
	if ref, rel := mustLimit(t, g, "bob", read); ref != nil {
		t.Fatalf("a read after the releases: %+v", ref)
	} else {
		rel()
	}
	ref, _ = mustLimit(t, g, "bob", read)
	if ref == nil || ref.Kind != contain.KindRateLimit || ref.Name != "calls_per_second" || ref.Rule != "role:PM/rate_limit" || ref.RetryAfter <= 0 ||
		ref.Reason != "rate limit role:PM/rate_limit reached: 5 calls a second, bursts of 3" {
		t.Fatalf("fourth read: %+v", ref)
	}
}

// TestLimitConfigurationAndPolicyTogether: the configuration's limits and the decision's are
// one operation; a denied call draws from the configuration's only; a call the policy's
// limits refuse still draws from the configuration's, whose own refusal then wins.
func TestLimitConfigurationAndPolicyTogether(t *testing.T) {
	t.Parallel()
	p, err := policy.Parse([]byte(quotaPolicy), "quota.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	b := stillLocal()
	g := quotaGuard(t, b, contain.Limits{
		PerPrincipal: contain.Rate{PerSecond: 1, Burst: 4},
		PerUpstream:  contain.Rate{Concurrent: 1},
	})
	cheap := quotaDecide(t, p, "carol", "finance.cheap", `{}`)
	ref, release := mustLimit(t, g, "carol", cheap) // token 1 of 4, the upstream's slot, cheap-a and cheap-b 1
	if ref != nil {
		t.Fatal(ref)
	}
	// The upstream's one slot is held: refused, and nothing else of the call is taken.
	if ref, _ := mustLimit(t, g, "dave", cheap); ref == nil || ref.Name != "per_upstream" || ref.Reason != "concurrency limit per_upstream reached: 1 calls at once" {
		t.Fatalf("a second call while the upstream's slot is held: %+v", ref)
	}
	release()
	ref, _ = mustLimit(t, g, "carol", cheap) // refused by cheap-b: token 2 of 4 all the same
	if ref == nil || ref.Kind != contain.KindQuota || ref.Name != "cheap-b" || ref.Rule != "role:PM/permission:2" {
		t.Fatalf("second cheap call: %+v", ref)
	}
	for _, ch := range cheap.Charges {
		if v := total(t, b, ch.Key); v != 1 {
			t.Errorf("%s = %v after one counted call, want 1", ch.Quota, v)
		}
	}
	denied := &policy.Decision{Rule: policy.RuleDefaultDeny, Charges: cheap.Charges}
	for i := 3; i <= 4; i++ { // tokens 3 and 4
		if ref, rel := mustLimit(t, g, "carol", denied); ref != nil {
			t.Fatalf("denied call %d: %+v, want the configuration's limits to hold", i, ref)
		} else {
			rel()
		}
	}
	if v := total(t, b, cheap.Charges[0].Key); v != 1 {
		t.Errorf("a denied call charged cheap-a: %v", v)
	}
	for _, d := range []*policy.Decision{denied, cheap, nil} {
		ref, _ := mustLimit(t, g, "carol", d)
		if ref == nil || ref.Kind != contain.KindRateLimit || ref.Name != "per_principal" || ref.RetryAfterSeconds() != 1 ||
			ref.Reason != "rate limit per_principal reached: 1 calls a second, bursts of 4" {
			t.Fatalf("%+v with the principal's bucket empty: %+v, want per_principal", d, ref)
		}
	}
	// Another principal is not affected.
	if ref, rel := mustLimit(t, g, "erin", nil); ref != nil {
		t.Fatalf("another principal: %+v", ref)
	} else {
		rel()
	}
}

// failingBackend is a Local backend whose Admit and Mark fail while failing is set.
type failingBackend struct {
	*contain.Local
	failing bool
}

var errBackendDown = errors.New("backend down")

func (f *failingBackend) Admit(ctx context.Context, b *contain.Batch) (contain.BatchResult, error) {
	if f.failing {
		return contain.BatchResult{}, errBackendDown
	}
	return f.Local.Admit(ctx, b)
}

func (f *failingBackend) Mark(ctx context.Context, key string, ttl time.Duration) error {
	if f.failing {
		return errBackendDown
	}
	return f.Local.Mark(ctx, key, ttl)
}

// TestLimitFailsClosed: a backend that fails refuses the call (containment_unavailable, 503),
// takes nothing, and says why.
func TestLimitFailsClosed(t *testing.T) {
	t.Parallel()
	p, err := policy.Parse([]byte(quotaPolicy), "quota.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &failingBackend{Local: stillLocal(), failing: true}
	g := quotaGuard(t, b, contain.Limits{PerPrincipal: contain.Rate{PerSecond: 1}})
	cheap := quotaDecide(t, p, "dan", "finance.cheap", `{}`)
	release, ref, err := g.Limit(t.Context(), "dan", quotaAddr, "finance.cheap", "finance", cheap)
	if !errors.Is(err, errBackendDown) || ref == nil || ref.Kind != contain.KindUnavailable || ref.Status() != 503 || release != nil {
		t.Fatalf("Limit on a failing backend: refusal %+v, err %v", ref, err)
	}
	b.failing = false
	for _, ch := range cheap.Charges {
		if v := total(t, b, ch.Key); v != 0 {
			t.Errorf("%s = %v, want nothing charged", ch.Quota, v)
		}
	}
}

// TestRefund: an admitted call's charges come back when it is not forwarded, even when the
// request's context has ended; its tokens do not.
func TestRefund(t *testing.T) {
	t.Parallel()
	p, err := policy.Parse([]byte(quotaPolicy), "quota.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	b := stillLocal()
	g := quotaGuard(t, b, contain.Limits{PerPrincipal: contain.Rate{PerSecond: 1, Burst: 2}})
	cheap := quotaDecide(t, p, "fay", "finance.cheap", `{}`)
	if ref, _ := mustLimit(t, g, "fay", cheap); ref != nil {
		t.Fatal(ref)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := g.Refund(ctx, cheap); err != nil {
		t.Fatal(err)
	}
	for _, ch := range cheap.Charges {
		if v := total(t, b, ch.Key); v != 0 {
			t.Errorf("%s = %v after the refund, want 0", ch.Quota, v)
		}
	}
	if ref, _ := mustLimit(t, g, "fay", cheap); ref != nil { // cheap-b's one call is free again; token 2 of 2
		t.Fatalf("after the refund: %+v", ref)
	}
	if ref, _ := mustLimit(t, g, "fay", nil); ref == nil || ref.Name != "per_principal" {
		t.Fatalf("a third call: %+v, want per_principal (the refund gave no token back)", ref)
	}
	if err := g.Refund(t.Context(), &policy.Decision{Rule: policy.RuleDefaultDeny, Charges: cheap.Charges}); err != nil {
		t.Errorf("refund of a denial: %v", err)
	}
	if v := total(t, b, cheap.Charges[0].Key); v != 1 {
		t.Errorf("a denial's refund changed cheap-a: %v", v)
	}
}

func TestMarksReportsFailures(t *testing.T) {
	t.Parallel()
	p, err := policy.Parse([]byte(quotaPolicy), "quota.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &failingBackend{Local: stillLocal(), failing: true}
	if err := contain.Marks(context.Background(), b, quotaDecide(t, p, "erin", "finance.get_client_portfolio", `{"client_id":"C1"}`)); !errors.Is(err, errBackendDown) {
		t.Errorf("Marks = %v, want the backend's error", err)
	}
	// A denied decision touches nothing.
	denied := &policy.Decision{Rule: policy.RuleDefaultDeny, Marks: []policy.Mark{{Key: "m", TTL: time.Second}}}
	if err := contain.Marks(context.Background(), b, denied); err != nil {
		t.Errorf("Marks on a denial = %v", err)
	}
}
