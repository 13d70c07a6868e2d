package policy

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// benchPolicy returns a policy of 1000 permissions: 10 roles of 100, each
// role owning one upstream's tools, a tenth of them globs, half with
// argument constraints, some with conditions, and deny lists of 20.
func benchPolicy(b *testing.B) *Policy {
	b.Helper()
	var s strings.Builder
	s.WriteString("roles:\n")
	for r := range 10 {
		fmt.Fprintf(&s, "  - role: Role%d\n    permissions:\n", r)
		for i := range 100 {
			name := fmt.Sprintf("svc%d.tool%d", r, i)
			if i%10 == 9 {
				name = fmt.Sprintf("svc%d.group%d_*", r, i)
			}
			fmt.Fprintf(&s, "      - tool_name: %q\n", name)
			if i%2 == 0 {
				s.WriteString("        constraints:\n")
				s.WriteString("          symbol: {type: string, pattern: \"^[A-Z]{3}$\"}\n")
				s.WriteString("          region: {enum: [Vietnam, Global, Europe]}\n")
				s.WriteString("          quantity: {type: integer, minimum: 1, maximum: 10000}\n")
			}
			if i%20 == 4 {
				s.WriteString("        when: 'args.quantity < 5000 && hour >= 0'\n")
			}
		}
		s.WriteString("    deny_tools:\n")
		for i := range 20 {
			if i%5 == 0 {
				fmt.Fprintf(&s, "      - \"svc%d.admin%d_*\"\n", r, i)
			} else {
				fmt.Fprintf(&s, "      - svc%d.danger%d\n", r, i)
			}
		}
	}
	p, err := Parse([]byte(s.String()), "bench.yaml", nil)
	if err != nil {
		b.Fatal(err)
	}
	if p.NumPermissions() != 1000 {
		b.Fatalf("%d permissions, want 1000", p.NumPermissions())
	}
	return p
}

// latencies is a histogram of 10ns buckets up to 1ms.
type latencies struct {
	buckets [100_000]uint32
	over    int
	n       int
}

func (h *latencies) add(d time.Duration) {
	h.n++
	if i := int(d / 10); i < len(h.buckets) {
		h.buckets[i]++
	} else {
		h.over++
	}
}

func (h *latencies) quantile(q float64) time.Duration {
	want := int(float64(h.n)*q + 0.5)
	seen := 0
	for i, c := range h.buckets {
		seen += int(c)
		if seen >= want {
			return time.Duration(i+1) * 10
		}
	}
	return time.Millisecond
}

// BenchmarkDecide decides calls against 1000 permissions. Besides ns/op
// and allocs/op it reports p50 and p99 latencies measured per decision.
func BenchmarkDecide(b *testing.B) {
	p := benchPolicy(b)
	pr := Principal{Subject: "agent", Roles: []string{"Role3", "Role5", "Role7"}, Groups: []string{"g"}, Claims: map[string]any{"tenant": "acme"}}
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		call  Call
		allow bool
	}{
		{"constrained-allow", Call{Name: "svc5.tool42", Arguments: []byte(`{"symbol":"VNM","region":"Vietnam","quantity":100}`), Time: now}, true},
		{"constrained-deny", Call{Name: "svc5.tool42", Arguments: []byte(`{"symbol":"AAPL","region":"Vietnam","quantity":100}`), Time: now}, false},
		{"when-allow", Call{Name: "svc7.tool24", Arguments: []byte(`{"symbol":"VNM","region":"Global","quantity":10}`), Time: now}, true},
		{"unconstrained-allow", Call{Name: "svc3.tool41", Arguments: []byte(`{"x":1}`), Time: now}, true},
		{"glob-allow", Call{Name: "svc3.group59_read", Arguments: []byte(`{}`), Time: now}, true},
		{"deny-tools", Call{Name: "svc7.admin10_reset", Time: now}, false},
		{"default-deny", Call{Name: "svc1.tool1", Time: now}, false},
	}
	for _, c := range cases {
		if d := p.Decide(pr, c.call); d.Allow != c.allow {
			b.Fatalf("%s: Decide = %+v, want allow %v", c.name, d, c.allow)
		}
		b.Run(c.name, func(b *testing.B) {
			h := new(latencies)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				p.Decide(pr, c.call)
				h.add(time.Since(start))
			}
			b.ReportMetric(float64(h.quantile(0.50).Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(h.quantile(0.99).Nanoseconds()), "p99-ns")
		})
	}
}

func BenchmarkVisible(b *testing.B) {
	p := benchPolicy(b)
	pr := Principal{Subject: "agent", Roles: []string{"Role3", "Role5", "Role7"}}
	b.ReportAllocs()
	for b.Loop() {
		p.Visible(pr, KindTool, "svc5.tool42")
	}
}

func BenchmarkParse(b *testing.B) {
	benchPolicy(b)
	b.ReportAllocs()
	for b.Loop() {
		benchPolicy(b)
	}
}

// BenchmarkDecideLimits decides calls of the finance example that carry limits: a trade
// (two charges, one of them a sum, and a requirement) and a portfolio read (a mark).
func BenchmarkDecideLimits(b *testing.B) {
	p := loadFinance(b)
	pr := Principal{Subject: "pm-1", Groups: []string{"portfolio-managers"}}
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		call Call
	}{
		{"trade", Call{Name: "finance.execute_trade_order", Arguments: []byte(`{"client_id":"C1001","symbol":"VNM","side":"buy","quantity":100,"order_type":"limit","limit_price":80.5}`), Time: now}},
		{"mark", Call{Name: "finance.get_client_portfolio", Arguments: []byte(`{"client_id":"C1001"}`), Time: now}},
	} {
		if d := p.Decide(pr, c.call); !d.Allow || len(d.Charges)+len(d.Marks) == 0 {
			b.Fatalf("%s: Decide = %+v", c.name, d)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Decide(pr, c.call)
			}
		})
	}
}
