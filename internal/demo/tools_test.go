package demo_test

import (
	"context"
	"encoding/json"
	"flag"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

type propSchema struct {
	Type             any      `json:"type"`
	Description      string   `json:"description"`
	Enum             []string `json:"enum"`
	Pattern          string   `json:"pattern"`
	XMCPHeader       string   `json:"x-mcp-header"`
	Minimum          *float64 `json:"minimum"`
	ExclusiveMinimum *float64 `json:"exclusiveMinimum"`
}

type objectSchema struct {
	Type                 string                `json:"type"`
	Required             []string              `json:"required"`
	AdditionalProperties *bool                 `json:"additionalProperties"`
	Properties           map[string]propSchema `json:"properties"`
}

func decodeSchema(t *testing.T, s any) objectSchema {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out objectSchema
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("decode schema %s: %v", b, err)
	}
	return out
}

func TestToolDefinitions(t *testing.T) {
	t.Parallel()
	cs := connect(t, "memory", modernVersion, nil)
	list, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tools := map[string]*mcp.Tool{}
	for _, tool := range list.Tools {
		tools[tool.Name] = tool
	}

	type hints struct{ ReadOnly, Destructive, Idempotent, OpenWorld bool }
	type constraint struct {
		prop, pattern, header string
		enum                  []string
	}
	tests := []struct {
		name        string
		hints       hints
		required    []string
		constraints []constraint
	}{
		{
			name:     "get_stock_analysis",
			hints:    hints{ReadOnly: true, Idempotent: true},
			required: []string{"symbol"},
			constraints: []constraint{
				{prop: "symbol", pattern: "^[A-Z]{1,10}$"},
				{prop: "period", enum: []string{"1d", "1w", "1m", "3m", "1y"}},
			},
		},
		{
			name:        "get_market_overview",
			hints:       hints{ReadOnly: true, Idempotent: true},
			constraints: []constraint{{prop: "market", enum: []string{"Vietnam", "Global", "US", "Europe", "Asia"}}},
		},
		{
			name:        "get_sector_heatmap",
			hints:       hints{ReadOnly: true, Idempotent: true},
			required:    []string{"region"},
			constraints: []constraint{{prop: "region", enum: []string{"Vietnam", "Global", "US", "Europe", "Asia"}, header: "Region"}},
		},
		{
			name:        "get_client_portfolio",
			hints:       hints{ReadOnly: true, Idempotent: true},
			required:    []string{"client_id"},
			constraints: []constraint{{prop: "client_id", pattern: "^C[0-9]{4}$"}},
		},
		{
			name:     "execute_trade_order",
			hints:    hints{Destructive: true, OpenWorld: true},
			required: []string{"client_id", "symbol", "side", "quantity", "order_type"},
			constraints: []constraint{
				{prop: "client_id", pattern: "^C[0-9]{4}$"},
				{prop: "symbol", pattern: "^[A-Z]{1,10}$"},
				{prop: "side", enum: []string{"buy", "sell"}},
				{prop: "order_type", enum: []string{"market", "limit"}},
				{prop: "limit_price"},
			},
		},
		{
			name:     "update_client_profile",
			hints:    hints{Destructive: true, Idempotent: true},
			required: []string{"client_id"},
			constraints: []constraint{
				{prop: "client_id", pattern: "^C[0-9]{4}$"},
				{prop: "phone", pattern: `^\+[1-9][0-9]{6,14}$`},
				{prop: "email"},
				{prop: "address"},
			},
		},
	}
	if len(tests) != len(tools) {
		t.Errorf("server lists %d tools, test covers %d", len(tools), len(tests))
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tool := tools[tc.name]
			if tool == nil {
				t.Fatalf("tool %s not listed", tc.name)
			}
			if tool.Description == "" || tool.Annotations == nil || tool.Annotations.Title == "" {
				t.Errorf("tool lacks a description, annotations or title: %+v", tool)
			}
			a := tool.Annotations
			if a.DestructiveHint == nil || a.OpenWorldHint == nil {
				t.Fatalf("destructiveHint and openWorldHint must be explicit, got %+v", a)
			}
			got := hints{a.ReadOnlyHint, *a.DestructiveHint, a.IdempotentHint, *a.OpenWorldHint}
			if diff := cmp.Diff(tc.hints, got); diff != "" {
				t.Errorf("annotations (-want +got):\n%s", diff)
			}

			in := decodeSchema(t, tool.InputSchema)
			if in.Type != "object" || in.AdditionalProperties == nil || *in.AdditionalProperties {
				t.Errorf("input schema type %q additionalProperties %v, want an object without additional properties", in.Type, in.AdditionalProperties)
			}
			if diff := cmp.Diff(tc.required, in.Required); diff != "" {
				t.Errorf("required (-want +got):\n%s", diff)
			}
			for name, p := range in.Properties {
				if p.Description == "" {
					t.Errorf("property %s has no description", name)
				}
			}
			for _, c := range tc.constraints {
				p, ok := in.Properties[c.prop]
				if !ok {
					t.Errorf("property %s missing", c.prop)
					continue
				}
				if p.Pattern != c.pattern || p.XMCPHeader != c.header || !slices.Equal(p.Enum, c.enum) {
					t.Errorf("property %s = pattern %q, x-mcp-header %q, enum %v; want %q, %q, %v",
						c.prop, p.Pattern, p.XMCPHeader, p.Enum, c.pattern, c.header, c.enum)
				}
			}

			out := decodeSchema(t, tool.OutputSchema)
			if out.Type != "object" || len(out.Properties) == 0 || len(out.Required) == 0 {
				t.Errorf("output schema = %+v, want an object with required properties", out)
			}
		})
	}
}

// TestToolResultsGolden pins every tool's answer: the data is derived from the request
// alone, so any change here changes what demos and other packages' tests see.
// Run with -update to accept a deliberate change.
func TestToolResultsGolden(t *testing.T) {
	t.Parallel()
	cs := connect(t, "memory", modernVersion, optionsAt(fixedNow))
	tests := []struct {
		golden string
		tool   string
		args   map[string]any
	}{
		{"stock_VNM_1d", "get_stock_analysis", map[string]any{"symbol": "VNM"}},
		{"stock_MSFT_1y", "get_stock_analysis", map[string]any{"symbol": "MSFT", "period": "1y"}},
		{"market_default", "get_market_overview", nil},
		{"market_Vietnam", "get_market_overview", map[string]any{"market": "Vietnam"}},
		{"heatmap_Global", "get_sector_heatmap", map[string]any{"region": "Global"}},
		{"portfolio_C1001", "get_client_portfolio", map[string]any{"client_id": "C1001"}},
		{"portfolio_C1002", "get_client_portfolio", map[string]any{"client_id": "C1002"}},
		{"portfolio_C1003", "get_client_portfolio", map[string]any{"client_id": "C1003"}},
		{"portfolio_C1004", "get_client_portfolio", map[string]any{"client_id": "C1004"}},
		{"portfolio_C1005", "get_client_portfolio", map[string]any{"client_id": "C1005"}},
		{"portfolio_C1006", "get_client_portfolio", map[string]any{"client_id": "C1006"}},
		{"trade_market_buy", "execute_trade_order", map[string]any{
			"client_id": "C1001", "symbol": "HPG", "side": "buy", "quantity": 100, "order_type": "market"}},
		{"trade_limit_sell", "execute_trade_order", map[string]any{
			"client_id": "C1002", "symbol": "NVDA", "side": "sell", "quantity": 20, "order_type": "limit", "limit_price": 135.5}},
		{"profile_update", "update_client_profile", map[string]any{
			"client_id": "C1004", "email": "marie.d@example.com", "phone": "+352621999888"}},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			res := call(t, cs, tc.tool, tc.args)
			if res.IsError {
				t.Fatalf("failed: %s", resultText(res))
			}
			got, err := json.MarshalIndent(res.StructuredContent, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", "golden", tc.golden+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s (-golden +got):\n%s", path, diff)
			}
			// Same request, same answer.
			again := call(t, cs, tc.tool, tc.args)
			if diff := cmp.Diff(res.StructuredContent, again.StructuredContent); diff != "" {
				t.Errorf("second call differs (-first +second):\n%s", diff)
			}
		})
	}
}

// TestOnlyTimestampsFollowTheClock checks that Options.Now feeds the timestamps and
// nothing else.
func TestOnlyTimestampsFollowTheClock(t *testing.T) {
	t.Parallel()
	later := fixedNow.Add(36 * time.Hour)
	a := connect(t, "memory", modernVersion, optionsAt(fixedNow))
	b := connect(t, "memory", modernVersion, optionsAt(later))
	args := map[string]any{"client_id": "C1005"}
	pa := structured[portfolio](t, a, "get_client_portfolio", args)
	pb := structured[portfolio](t, b, "get_client_portfolio", args)
	if pa.AsOf != "2026-03-02T09:30:00Z" || pb.AsOf != "2026-03-03T21:30:00Z" {
		t.Errorf("as_of = %q and %q, want 2026-03-02T09:30:00Z and 2026-03-03T21:30:00Z", pa.AsOf, pb.AsOf)
	}
	pb.AsOf = pa.AsOf
	if diff := cmp.Diff(pa, pb); diff != "" {
		t.Errorf("portfolio changed with the clock (-earlier +later):\n%s", diff)
	}
}

func TestStockAnalysis(t *testing.T) {
	t.Parallel()
	cs := connect(t, "memory", modernVersion, optionsAt(fixedNow))
	day := structured[stockAnalysis](t, cs, "get_stock_analysis", map[string]any{"symbol": "FPT"})
	year := structured[stockAnalysis](t, cs, "get_stock_analysis", map[string]any{"symbol": "FPT", "period": "1y"})
	other := structured[stockAnalysis](t, cs, "get_stock_analysis", map[string]any{"symbol": "HPG"})

	if day.Period != "1d" {
		t.Errorf("default period = %q, want 1d", day.Period)
	}
	if day.Price != year.Price || day.MovingAverages != year.MovingAverages || day.RSI14 != year.RSI14 {
		t.Errorf("price or indicators depend on the period: 1d %+v, 1y %+v", day, year)
	}
	if year.Volume <= day.Volume {
		t.Errorf("1y volume %d not above 1d volume %d", year.Volume, day.Volume)
	}
	if day.Price == other.Price {
		t.Errorf("FPT and HPG have the same price %v; symbols should differ", day.Price)
	}
	for _, s := range []stockAnalysis{day, year, other} {
		if s.Price <= 0 || s.RSI14 < 0 || s.RSI14 > 100 || s.Rationale == "" ||
			!slices.Contains([]string{"buy", "hold", "sell"}, s.Recommendation) {
			t.Errorf("implausible analysis %+v", s)
		}
		// change is the move from the period's start price to the last price.
		// Both are rounded: allow a cent plus the rounding of the percentage.
		want := s.Price - s.Price/(1+s.ChangePercent/100)
		if math.Abs(want-s.Change) > 0.01+s.Price*0.0001 {
			t.Errorf("%s %s: change %v%% of price %v is %.4f, reported %v", s.Symbol, s.Period, s.ChangePercent, s.Price, want, s.Change)
		}
	}
}

func TestMarketOverviewAndHeatmap(t *testing.T) {
	t.Parallel()
	cs := connect(t, "memory", modernVersion, optionsAt(fixedNow))
	for _, market := range []string{"Vietnam", "Global", "US", "Europe", "Asia"} {
		m := structured[marketOverview](t, cs, "get_market_overview", map[string]any{"market": market})
		if m.Market != market || len(m.Indices) != 4 {
			t.Errorf("overview of %s = market %q with %d indices, want 4", market, m.Market, len(m.Indices))
		}
		if b := m.Breadth; b.Advancers < 0 || b.Decliners < 0 || b.Unchanged < 0 || b.Advancers+b.Decliners+b.Unchanged == 0 {
			t.Errorf("overview of %s: implausible breadth %+v", market, b)
		}

		h := structured[sectorHeatmap](t, cs, "get_sector_heatmap", map[string]any{"region": market})
		best, worst := h.Sectors[0], h.Sectors[0]
		for _, s := range h.Sectors {
			if s.ChangePercent > best.ChangePercent {
				best = s
			}
			if s.ChangePercent < worst.ChangePercent {
				worst = s
			}
		}
		if h.Leader != best.Sector || h.Laggard != worst.Sector {
			t.Errorf("heatmap of %s: leader %q laggard %q, want %q and %q", market, h.Leader, h.Laggard, best.Sector, worst.Sector)
		}
	}
	vn := structured[marketOverview](t, cs, "get_market_overview", map[string]any{"market": "Vietnam"})
	if vn.Indices[0].Name != "VN-Index" {
		t.Errorf("first Vietnam index = %q, want VN-Index", vn.Indices[0].Name)
	}
}

// mod97 is an independent ISO 13616 check: move the first four characters to the end,
// letters become 10..35, and the number must be 1 modulo 97.
func validIBAN(s string) bool {
	if len(s) < 15 || len(s) > 34 {
		return false
	}
	var digits strings.Builder
	for _, c := range s[4:] + s[:4] {
		switch {
		case c >= '0' && c <= '9':
			digits.WriteRune(c)
		case c >= 'A' && c <= 'Z':
			digits.WriteString(big.NewInt(int64(c - 'A' + 10)).String())
		default:
			return false
		}
	}
	n, ok := new(big.Int).SetString(digits.String(), 10)
	return ok && new(big.Int).Mod(n, big.NewInt(97)).Int64() == 1
}

// TestPortfolioPersonalData checks that every client's personal data has the shape the
// redaction detectors look for, so a masking demo has something real to find.
func TestPortfolioPersonalData(t *testing.T) {
	t.Parallel()
	if !validIBAN("GB82WEST12345698765432") || validIBAN("GB82WEST12345698765433") {
		t.Fatal("validIBAN does not recognise the ECBS example IBAN")
	}
	cs := connect(t, "memory", modernVersion, optionsAt(fixedNow))
	e164 := regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	seen := map[string]bool{}
	for _, id := range []string{"C1001", "C1002", "C1003", "C1004", "C1005", "C1006"} {
		p := structured[portfolio](t, cs, "get_client_portfolio", map[string]any{"client_id": id})
		if p.ClientID != id || p.FullName == "" || p.Address == "" {
			t.Errorf("%s: incomplete identity %+v", id, p)
		}
		if !validIBAN(p.IBAN) {
			t.Errorf("%s: IBAN %q fails the mod-97 check", id, p.IBAN)
		}
		if !strings.HasSuffix(p.IBAN, p.AccountNumber) {
			t.Errorf("%s: account number %q is not the end of IBAN %q", id, p.AccountNumber, p.IBAN)
		}
		if !strings.HasSuffix(p.Email, "@example.com") {
			t.Errorf("%s: e-mail %q is not on example.com", id, p.Email)
		}
		if !e164.MatchString(p.Phone) {
			t.Errorf("%s: phone %q is not E.164", id, p.Phone)
		}
		for _, v := range []string{p.FullName, p.Email, p.Phone, p.IBAN} {
			if seen[v] {
				t.Errorf("%s: %q is shared with another client", id, v)
			}
			seen[v] = true
		}
		if len(p.Holdings) == 0 {
			t.Errorf("%s: no holdings", id)
		}
		sum := p.CashBalance
		for i, h := range p.Holdings {
			if math.Abs(float64(h.Quantity)*h.Price-h.MarketValue) > 0.01 {
				t.Errorf("%s %s: %d × %v ≠ %v", id, h.Symbol, h.Quantity, h.Price, h.MarketValue)
			}
			if i > 0 && h.MarketValue > p.Holdings[i-1].MarketValue {
				t.Errorf("%s: holdings not sorted largest first", id)
			}
			sum += h.MarketValue
		}
		if math.Abs(sum-p.TotalValue) > 0.01 {
			t.Errorf("%s: cash + holdings = %.2f, total_value %.2f", id, sum, p.TotalValue)
		}
	}
}

func TestTradeOrder(t *testing.T) {
	t.Parallel()
	cs := connect(t, "memory", modernVersion, optionsAt(fixedNow))
	args := func(qty int) map[string]any {
		return map[string]any{"client_id": "C1003", "symbol": "VCB", "side": "sell", "quantity": qty, "order_type": "market"}
	}
	a := structured[tradeOrder](t, cs, "execute_trade_order", args(100))
	b := structured[tradeOrder](t, cs, "execute_trade_order", args(100))
	c := structured[tradeOrder](t, cs, "execute_trade_order", args(101))
	if a.OrderID != b.OrderID {
		t.Errorf("same order got ids %q and %q, want equal", a.OrderID, b.OrderID)
	}
	if a.OrderID == c.OrderID {
		t.Errorf("orders for 100 and 101 shares share id %q", a.OrderID)
	}
	if !regexp.MustCompile(`^ORD-[0-9A-F]{20}$`).MatchString(a.OrderID) || a.Status != "accepted" {
		t.Errorf("order = %+v, want an ORD- id and status accepted", a)
	}
	analysis := structured[stockAnalysis](t, cs, "get_stock_analysis", map[string]any{"symbol": "VCB"})
	if a.EstimatedPrice != analysis.Price || math.Abs(a.EstimatedValue-100*analysis.Price) > 0.01 {
		t.Errorf("market order estimate %v × 100 = %v, want the last price %v", a.EstimatedPrice, a.EstimatedValue, analysis.Price)
	}
	if a.SubmittedAt != "2026-03-02T09:30:00Z" {
		t.Errorf("submitted_at = %q, want the injected clock", a.SubmittedAt)
	}

	// Selling the whole holding is allowed; one share more is not.
	structured[tradeOrder](t, cs, "execute_trade_order", args(2000))
	if res := call(t, cs, "execute_trade_order", args(2001)); !res.IsError {
		t.Errorf("selling 2001 VCB of 2000 held succeeded")
	}
}

func TestUpdateClientProfile(t *testing.T) {
	t.Parallel()
	cs := connect(t, "memory", modernVersion, optionsAt(fixedNow))
	before := structured[portfolio](t, cs, "get_client_portfolio", map[string]any{"client_id": "C1006"})
	got := structured[clientProfile](t, cs, "update_client_profile", map[string]any{
		"client_id": "C1006", "email": before.Email, "address": "Schönhauser Allee 1, 10119 Berlin, Germany"})
	want := clientProfile{
		ClientID: "C1006", FullName: before.FullName, Email: before.Email, Phone: before.Phone,
		Address: "Schönhauser Allee 1, 10119 Berlin, Germany", ChangedFields: []string{"address"},
		UpdatedAt: "2026-03-02T09:30:00Z",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("update (-want +got):\n%s", diff)
	}
	after := structured[portfolio](t, cs, "get_client_portfolio", map[string]any{"client_id": "C1006"})
	if after.Address != before.Address {
		t.Errorf("address after update = %q, want the book unchanged (%q)", after.Address, before.Address)
	}
}

// TestToolErrors checks that bad arguments come back as tool results with isError and a
// message that says what is wrong, so a model can correct itself (SEP-1303).
func TestToolErrors(t *testing.T) {
	t.Parallel()
	cs := connect(t, "memory", modernVersion, optionsAt(fixedNow))
	order := func(edit func(map[string]any)) map[string]any {
		a := map[string]any{"client_id": "C1001", "symbol": "VNM", "side": "buy", "quantity": 10, "order_type": "market"}
		edit(a)
		return a
	}
	tests := []struct {
		name, tool string
		args       any
		want       []string // substrings of the error text
	}{
		{"region not in enum", "get_sector_heatmap", map[string]any{"region": "Mars"}, []string{"region", "Mars"}},
		{"region missing", "get_sector_heatmap", map[string]any{}, []string{"region"}},
		{"region wrong case", "get_sector_heatmap", map[string]any{"region": "vietnam"}, []string{"vietnam"}},
		{"market not in enum", "get_market_overview", map[string]any{"market": "Moon"}, []string{"market", "Moon"}},
		{"lower-case symbol", "get_stock_analysis", map[string]any{"symbol": "vnm"}, []string{"symbol", "vnm"}},
		{"symbol too long", "get_stock_analysis", map[string]any{"symbol": "ABCDEFGHIJK"}, []string{"symbol"}},
		{"unknown period", "get_stock_analysis", map[string]any{"symbol": "VNM", "period": "5y"}, []string{"period", "5y"}},
		{"unknown argument", "get_stock_analysis", map[string]any{"symbol": "VNM", "exchange": "HOSE"}, []string{"exchange"}},
		{"wrong type", "get_stock_analysis", map[string]any{"symbol": 42}, []string{"symbol"}},
		{"malformed client id", "get_client_portfolio", map[string]any{"client_id": "1001"}, []string{"client_id", "1001"}},
		{"unknown client", "get_client_portfolio", map[string]any{"client_id": "C9999"}, []string{`client "C9999" not found`}},
		{"trade for unknown client", "execute_trade_order", order(func(a map[string]any) { a["client_id"] = "C0000" }), []string{`client "C0000" not found`}},
		{"zero quantity", "execute_trade_order", order(func(a map[string]any) { a["quantity"] = 0 }), []string{"quantity"}},
		{"fractional quantity", "execute_trade_order", order(func(a map[string]any) { a["quantity"] = 1.5 }), []string{"quantity"}},
		{"bad side", "execute_trade_order", order(func(a map[string]any) { a["side"] = "short" }), []string{"side", "short"}},
		{"limit without price", "execute_trade_order", order(func(a map[string]any) { a["order_type"] = "limit" }), []string{"limit_price is required"}},
		{"market with price", "execute_trade_order", order(func(a map[string]any) { a["limit_price"] = 10 }), []string{"limit_price is not allowed"}},
		{"negative limit", "execute_trade_order", order(func(a map[string]any) { a["order_type"], a["limit_price"] = "limit", -5 }), []string{"limit_price"}},
		{"sell more than held", "execute_trade_order", order(func(a map[string]any) { a["side"], a["quantity"] = "sell", 401 }), []string{"cannot sell 401 VNM", "holds 400"}},
		{"sell what is not held", "execute_trade_order", order(func(a map[string]any) { a["side"], a["symbol"] = "sell", "NVDA" }), []string{"holds 0"}},
		{"nothing to update", "update_client_profile", map[string]any{"client_id": "C1001"}, []string{"nothing to update"}},
		{"bad email", "update_client_profile", map[string]any{"client_id": "C1001", "email": "Anna <anna@example.com>"}, []string{"invalid email"}},
		{"bad phone", "update_client_profile", map[string]any{"client_id": "C1001", "phone": "030 1234567"}, []string{"phone"}},
		{"address with newline", "update_client_profile", map[string]any{"client_id": "C1001", "address": "Line 1\nLine 2"}, []string{"control characters"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := call(t, cs, tc.tool, tc.args)
			text := resultText(res)
			if !res.IsError {
				t.Fatalf("succeeded with %s, want isError", text)
			}
			if res.StructuredContent != nil {
				t.Errorf("error result carries structured content %v", res.StructuredContent)
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("error %q does not mention %q", text, w)
				}
			}
		})
	}
}

// TestUnknownToolIsProtocolError checks the one argument problem that is not a tool
// result: a tool that does not exist.
func TestUnknownToolIsProtocolError(t *testing.T) {
	t.Parallel()
	cs := connect(t, "memory", modernVersion, nil)
	_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "transfer_funds"})
	if err == nil || !strings.Contains(err.Error(), "transfer_funds") {
		t.Errorf("calling an unknown tool: error %v, want one naming the tool", err)
	}
}

// TestNullArguments sends "arguments": null to every tool. The go-sdk crashes the server
// on such a call when a schema declares a default; the server must answer instead.
func TestNullArguments(t *testing.T) {
	t.Parallel()
	cs := connect(t, "memory", modernVersion, optionsAt(fixedNow))
	for _, name := range toolNames {
		res := call(t, cs, name, json.RawMessage("null"))
		if wantOK := name == "get_market_overview"; res.IsError == wantOK {
			t.Errorf("%s(null): isError %v, want %v: %s", name, res.IsError, !wantOK, resultText(res))
		}
	}
}

// TestDuplicateKeysLastWins pins a property of the go-sdk that the gateway must defend
// against: with a duplicated key the server acts on the last value, while a reader that
// takes the first one would see another client. The gateway rejects such requests.
func TestDuplicateKeysLastWins(t *testing.T) {
	t.Parallel()
	cs := connect(t, "memory", modernVersion, optionsAt(fixedNow))
	res := call(t, cs, "get_client_portfolio", json.RawMessage(`{"client_id":"C9999","client_id":"C1001"}`))
	var p portfolio
	if err := remarshal(res.StructuredContent, &p); res.IsError || err != nil || p.ClientID != "C1001" {
		t.Errorf("duplicate client_id: isError %v, client %q (%v); want the portfolio of the last value, C1001", res.IsError, p.ClientID, err)
	}
}
