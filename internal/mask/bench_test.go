package mask

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/mcpguard/mcpguard/internal/redact"
)

// result64KiB is a tools/call result of about 64 KiB as the demo's get_client_portfolio would
// return a large book: structuredContent holding a client's identity and 150 holdings, and the
// same serialised in a text block, as the SDKs write it.
func result64KiB(tb testing.TB) []byte {
	tb.Helper()
	type holding struct {
		Symbol        string  `json:"symbol"`
		Quantity      int     `json:"quantity"`
		Price         float64 `json:"price"`
		MarketValue   float64 `json:"market_value"`
		WeightPercent float64 `json:"weight_percent"`
		Custodian     string  `json:"custodian"`
		Note          string  `json:"note"`
	}
	sc := map[string]any{
		"client_id": "C1001", "full_name": "Anna Schmidt", "email": "anna.schmidt@example.com",
		"phone": "+4915209876543", "address": "Friedrichstraße 123, 10117 Berlin, Germany",
		"iban": "DE76370400444711081500", "account_number": "4711081500", "risk_profile": "balanced",
		"tax_id": "DE123456789", "date_of_birth": "1980-04-12", "advisor": "Jonas Weber",
		"valuation_currency": "USD", "as_of": "2026-03-02T09:30:00Z",
	}
	var hs []holding
	for i := range 150 {
		hs = append(hs, holding{Symbol: fmt.Sprintf("SYM%03d", i), Quantity: 100 + i, Price: 12.5 + float64(i),
			MarketValue: 1250.75 * float64(i+1), WeightPercent: 0.66, Custodian: "Clearstream Banking S.A.",
			Note: fmt.Sprintf("Position %d opened after the review of Q%d; rebalanced within the mandate.", i, i%4+1)})
	}
	sc["holdings"] = hs
	text, err := json.Marshal(sc)
	if err != nil {
		tb.Fatal(err)
	}
	res, err := json.Marshal(map[string]any{
		"content":           []any{map[string]any{"type": "text", "text": string(text)}},
		"structuredContent": json.RawMessage(text),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return res
}

func benchPlan(tb testing.TB, detectors bool) *Plan {
	tb.Helper()
	paths := func(ss ...string) []Path {
		var out []Path
		for _, s := range ss {
			p, err := ParsePath(s)
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, p)
		}
		return out
	}
	d, err := NewDetection([]string{"Anna Schmidt", "Jonas Weber", "James Whitfield", "Nguyễn Thị Lan"}, `\b[0-9]{8,13}\b`)
	if err != nil {
		tb.Fatal(err)
	}
	rules := []*Rule{
		{Name: "identity", Action: Pseudonymise, Paths: paths("$.full_name", "$.email", "$.phone", "$.advisor", "$.tax_id")},
		{Name: "accounts", Action: Partial, Paths: paths("$.iban", "$.account_number")},
		{Name: "private", Action: Drop, Paths: paths("$.address", "$.date_of_birth", "$.holdings[7].note")},
	}
	if detectors {
		rules = append(rules, &Rule{Name: "text", Action: Pseudonymise, Detectors: []Detector{IBAN, PaymentCard, Email, Phone, AccountNumber, Names}})
	}
	return NewPlan(rules, d)
}

// BenchmarkMask64KiB masks a 64 KiB result: ten fields by path (each in structuredContent and
// in its copy in the text block), then the same with every detector looking into every string.
func BenchmarkMask64KiB(b *testing.B) {
	res := result64KiB(b)
	red, err := redact.New([]byte("0123456789abcdef0123456789abcdef"), nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name      string
		detectors bool
	}{{"paths", false}, {"paths+detectors", true}} {
		p := benchPlan(b, bc.detectors)
		b.Run(bc.name, func(b *testing.B) {
			_, st, err := p.Apply(res, &Options{Token: red})
			if err != nil {
				b.Fatal(err)
			}
			if n := st["identity"] + st["accounts"] + st["private"]; n != 20 {
				b.Fatalf("masked %d values by path (%v), want 20: the benchmark measures nothing", n, st)
			}
			b.SetBytes(int64(len(res)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := p.Apply(res, &Options{Token: red}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
