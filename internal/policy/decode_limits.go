package policy

import (
	"math"

	"go.yaml.in/yaml/v3"
)

// quotaDoc is one entry of a permission's quotas:, as written. Which kind it is (count, sum
// or sequence) is decided when it is compiled, from the keys it has.
type quotaDoc struct {
	Name        string
	MaxCalls    int64
	HasMaxCalls bool
	Sum         string
	Max         float64
	HasMax      bool
	Per         string
	Scope       string
	After       string
	Same        []string
	HasSame     bool
	Within      string
}

// rateLimitDoc is a role's or a permission's rate_limit:, as written.
type rateLimitDoc struct {
	CallsPerSecond float64
	HasRate        bool
	Burst          int64
	HasBurst       bool
	Concurrent     int64
	HasConcurrent  bool
}

func (d *decoder) quotas(dst *[]quotaDoc) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		if v := d.visit(n); v != nil && v.Kind == yaml.SequenceNode {
			*dst = make([]quotaDoc, len(v.Content))
		}
		d.list(n, path, "a list of quotas", func(n *yaml.Node, path string, i int) {
			if i >= len(*dst) {
				return
			}
			q := &(*dst)[i]
			if v := d.visit(n); v != nil && v.Kind != yaml.MappingNode {
				d.add(v.Line, path, "expected a quota (a mapping with name: and max_calls:, sum: or after:), got %s", describe(v))
				d.broken[path] = true
				return
			}
			d.mapping(n, path, []field{
				{"name", d.str(&q.Name)},
				{"max_calls", d.integer(&q.MaxCalls, &q.HasMaxCalls)},
				{"sum", d.str(&q.Sum)},
				{"max", d.number(&q.Max, &q.HasMax)},
				{"per", d.str(&q.Per)},
				{"scope", d.str(&q.Scope)},
				{"after", d.str(&q.After)},
				{"same", func(n *yaml.Node, path string) {
					q.HasSame = true
					d.strList(&q.Same)(n, path)
				}},
				{"within", d.str(&q.Within)},
			})
		})
	}
}

func (d *decoder) rateLimit(dst **rateLimitDoc) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		if v := d.visit(n); v == nil || isNull(v) {
			return
		} else if v.Kind != yaml.MappingNode {
			d.add(v.Line, path, "expected a rate limit (a mapping with calls_per_second:, burst: or concurrent:), got %s", describe(v))
			return
		}
		rl := &rateLimitDoc{}
		*dst = rl
		d.mapping(n, path, []field{
			{"calls_per_second", d.number(&rl.CallsPerSecond, &rl.HasRate)},
			{"burst", d.integer(&rl.Burst, &rl.HasBurst)},
			{"concurrent", d.integer(&rl.Concurrent, &rl.HasConcurrent)},
		})
	}
}

// integer decodes a YAML integer.
func (d *decoder) integer(dst *int64, has *bool) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		if n = d.scalar(n, path, "!!int", "an integer"); n == nil {
			return
		}
		if err := n.Decode(dst); err != nil {
			d.add(n.Line, path, "%s is not an integer that fits in 64 bits", quote(n.Value))
			return
		}
		*has = true
	}
}

// number decodes a YAML integer or a finite float.
func (d *decoder) number(dst *float64, has *bool) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		if n = d.visit(n); n == nil {
			return
		}
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") {
			d.add(n.Line, path, "expected a number, got %s", describe(n))
			d.broken[path] = true
			return
		}
		var f float64
		if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			d.add(n.Line, path, "%s is not a finite number", quote(n.Value))
			return
		}
		*dst, *has = f, true
	}
}
