package policy

import (
	"math/bits"
	"slices"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/mcpguard/mcpguard/internal/mask"
)

// Result masking: the masking: section names rules that mask values of tools' results, and a
// role may see results unmasked. What applies to one call is Masking's plan; internal/mask
// applies it. See docs/policy.md, "Result masking".

// maxMaskRules bounds the masking rules of a policy (a set of them is a ruleSet).
const maxMaskRules = 256

type maskingDoc struct {
	Names          []string
	AccountNumbers string
	Rules          []maskRuleDoc
}

type maskRuleDoc struct {
	Name        string
	Description string
	ToolName    string
	Paths       []string
	Detectors   []string
	Action      string
	Roles       []string
}

func (d *decoder) masking(dst **maskingDoc) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		m := &maskingDoc{}
		*dst = m
		d.mapping(n, path, []field{
			{"names", d.strList(&m.Names)},
			{"account_numbers", d.str(&m.AccountNumbers)},
			{"rules", func(n *yaml.Node, path string) {
				if v := d.visit(n); v != nil && v.Kind == yaml.SequenceNode {
					m.Rules = make([]maskRuleDoc, len(v.Content))
				}
				d.list(n, path, "a list of masking rules", func(n *yaml.Node, path string, i int) {
					if i >= len(m.Rules) {
						return
					}
					r := &m.Rules[i]
					if v := d.visit(n); v != nil && v.Kind != yaml.MappingNode {
						d.add(v.Line, path, "expected a masking rule (a mapping with name:, tool_name:, paths: or detectors:, and action:), got %s", describe(v))
						d.broken[path] = true
						return
					}
					d.mapping(n, path, []field{
						{"name", d.str(&r.Name)},
						{"description", d.str(&r.Description)},
						{"tool_name", d.str(&r.ToolName)},
						{"paths", d.strList(&r.Paths)},
						{"detectors", d.strList(&r.Detectors)},
						{"action", d.str(&r.Action)},
						{"roles", d.strList(&r.Roles)},
					})
				})
			}},
		})
	}
}

// maskRule is a compiled masking rule.
type maskRule struct {
	rule  mask.Rule
	tool  glob
	roles []*role // the rule applies to callers holding one of them; nil: to every caller
}

// ruleSet is a set of masking rules by index.
type ruleSet [maxMaskRules / 64]uint64

func (s *ruleSet) add(i int)   { s[i/64] |= 1 << (i % 64) }
func (s *ruleSet) empty() bool { return *s == ruleSet{} }

// remove takes o's rules out of s.
func (s *ruleSet) remove(o *ruleSet) {
	for i := range s {
		s[i] &^= o[i]
	}
}

// planCache holds the plan of each set of rules that applied to a call: a plan is compiled once.
type planCache struct {
	mu    sync.RWMutex
	plans map[ruleSet]*mask.Plan
}

// maxPlans bounds the plans cached; past it, a plan is built for its call only.
const maxPlans = 4096

// compileMasking compiles the masking: section and the roles' unmasked access; it runs after
// the roles are compiled.
func (c *compiler) compileMasking(doc *document) {
	p := c.p
	md := doc.Masking
	byName := map[string]int{}
	if md != nil {
		if len(md.Rules) > maxMaskRules {
			c.problem("masking.rules", "%d rules; at most %d", len(md.Rules), maxMaskRules)
			md.Rules = md.Rules[:maxMaskRules]
		}
		for i, n := range md.Names {
			if err := mask.CheckName(n); err != nil {
				c.problem(pathIndex("masking.names", i), "%v", err)
			}
		}
		if md.AccountNumbers != "" {
			if err := mask.CheckAccountNumbers(md.AccountNumbers); err != nil {
				c.problem("masking.account_numbers", "%v", err)
			}
		}
		if len(md.Names) > mask.MaxNames {
			c.problem("masking.names", "%d names; at most %d", len(md.Names), mask.MaxNames)
		}
		// Problems are reported above, with their paths; what compiles is kept.
		var names []string
		for _, n := range md.Names {
			if mask.CheckName(n) == nil {
				names = append(names, n)
			}
		}
		account := md.AccountNumbers
		if mask.CheckAccountNumbers(account) != nil {
			account = ""
		}
		p.detection, _ = mask.NewDetection(names, account)
		for i := range md.Rules {
			path := pathIndex("masking.rules", i)
			rd := &md.Rules[i]
			if c.d.broken[path] {
				continue
			}
			switch first, dup := byName[rd.Name]; {
			case rd.Name == "":
				if !c.d.broken[path+".name"] {
					c.problem(path, "name: is required (it names the rule in audit records and in see_unmasked)")
				}
			case dup:
				c.problem(path+".name", "duplicate masking rule %s (first at masking.rules[%d])", quote(rd.Name), first)
			case !validQuotaName(rd.Name):
				c.problem(path+".name", "%s is not a rule name: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", quote(rd.Name))
			default:
				byName[rd.Name] = i
			}
			if mr := c.maskRule(md, rd, path); mr != nil {
				p.masks = append(p.masks, mr)
			}
		}
	}
	for i := range doc.Roles {
		rd, r := &doc.Roles[i], p.roles[i]
		path := pathIndex("roles", i)
		r.unmasked = rd.Unmasked
		if rd.Unmasked && len(rd.SeeUnmasked) > 0 {
			c.problem(path+".see_unmasked", "unmasked: true already lifts every masking rule; write one of them")
		}
		for j, name := range rd.SeeUnmasked {
			k, ok := byName[name]
			if !ok {
				c.problem(pathIndex(path+".see_unmasked", j), "no masking rule named %s is defined under masking.rules", quote(name))
				continue
			}
			// Rule k's index among p.masks: the rules before it that compiled.
			for idx, mr := range p.masks {
				if mr.rule.Name == md.Rules[k].Name {
					r.see.add(idx)
				}
			}
		}
	}
	if len(p.masks) > 0 {
		p.plans.plans = map[ruleSet]*mask.Plan{}
	}
}

func (c *compiler) maskRule(md *maskingDoc, rd *maskRuleDoc, path string) *maskRule {
	ok := true
	mr := &maskRule{rule: mask.Rule{Name: rd.Name}}
	if rd.ToolName == "" {
		if !c.d.broken[path+".tool_name"] {
			c.problem(path, "tool_name: is required (the tools whose results the rule masks; a name or a pattern)")
		}
		ok = false
	} else if g, err := compileGlob(c.scoped(KindTool, rd.ToolName)); err != nil {
		c.problem(path+".tool_name", "%v", err)
		ok = false
	} else {
		mr.tool = g
	}
	if rd.Action == "" {
		if !c.d.broken[path+".action"] {
			c.problem(path, "action: is required: pseudonymise, partial or drop")
		}
		ok = false
	} else if a, err := mask.ParseAction(rd.Action); err != nil {
		c.problem(path+".action", "%v", err)
		ok = false
	} else {
		mr.rule.Action = a
	}
	if len(rd.Paths)+len(rd.Detectors) == 0 {
		c.problem(path, "a masking rule selects values with paths:, detectors: or both")
		ok = false
	}
	for j, s := range rd.Paths {
		pp, err := mask.ParsePath(s)
		if err != nil {
			c.problem(pathIndex(path+".paths", j), "%v", err)
			ok = false
			continue
		}
		mr.rule.Paths = append(mr.rule.Paths, pp)
	}
	for j, s := range rd.Detectors {
		det, err := mask.ParseDetector(s)
		switch {
		case err != nil:
			c.problem(pathIndex(path+".detectors", j), "%v", err)
			ok = false
			continue
		case det == mask.Names && len(md.Names) == 0:
			c.problem(pathIndex(path+".detectors", j), "the names detector looks for the names under masking.names, and there are none")
			ok = false
		case det == mask.AccountNumber && md.AccountNumbers == "":
			c.problem(pathIndex(path+".detectors", j), "the account_number detector needs masking.account_numbers, a regular expression")
			ok = false
		}
		if !slices.Contains(mr.rule.Detectors, det) {
			mr.rule.Detectors = append(mr.rule.Detectors, det)
		}
	}
	for j, name := range rd.Roles {
		r := c.p.byName[name]
		if r == nil {
			c.problem(pathIndex(path+".roles", j), "no role named %s is defined under roles:", quote(name))
			ok = false
			continue
		}
		if !slices.Contains(mr.roles, r) {
			mr.roles = append(mr.roles, r)
		}
	}
	if !ok {
		return nil
	}
	return mr
}

// Masking returns the masking plan for the result of a call — what internal/mask applies to
// it — or nil when nothing in it is to be masked: the policy has no masking rules, no rule
// applies, or the caller's roles lift all that do. Only tool calls are masked. It is pure and,
// once the plan of a set of rules is compiled, allocates nothing.
//
// A rule applies to a call when its tool_name matches the call's name and, if it lists roles:,
// the caller holds one of them, wherever the call comes from (as deny lists, masking never
// depends on the caller's address to the caller's benefit). Every rule that applies masks:
// the most restrictive wins. A rule is lifted when a role of the caller grants unmasked access
// to it (unmasked: true, or see_unmasked naming it) and that role grants access to the tool's
// result: one of its permissions names the tool (its constraints and when: are not evaluated
// again; the call was allowed) and its networks admit the call's source address. A role with
// unmasked access but no permission for the tool lifts nothing: holding it beside another role
// that allows the call does not unmask what that role sees.
func (p *Policy) Masking(pr Principal, c Call) *mask.Plan {
	if len(p.masks) == 0 || c.Kind != KindTool || c.Completion {
		return nil
	}
	var rbuf [16]*role
	roles := p.resolve(&pr, rbuf[:0])
	var set ruleSet
	for i, mr := range p.masks {
		if mr.tool.match(c.Name) && (mr.roles == nil || holdsAny(roles, mr.roles)) {
			set.add(i)
		}
	}
	if set.empty() {
		return nil
	}
	for _, r := range roles {
		if !r.unmasked && r.see.empty() {
			continue
		}
		if r.network(c.SourceIP) != netApplies || !r.names(KindTool, c.Name) {
			continue
		}
		if r.unmasked {
			return nil
		}
		set.remove(&r.see)
	}
	if set.empty() {
		return nil
	}
	return p.plan(&set)
}

// plan returns the compiled plan of a set of rules, from the cache when it was built before.
func (p *Policy) plan(set *ruleSet) *mask.Plan {
	p.plans.mu.RLock()
	plan := p.plans.plans[*set]
	p.plans.mu.RUnlock()
	if plan != nil {
		return plan
	}
	var rules []*mask.Rule
	for w, word := range set {
		for word != 0 {
			i := w*64 + bits.TrailingZeros64(word)
			word &= word - 1
			rules = append(rules, &p.masks[i].rule)
		}
	}
	plan = mask.NewPlan(rules, p.detection)
	p.plans.mu.Lock()
	defer p.plans.mu.Unlock()
	if prev := p.plans.plans[*set]; prev != nil {
		return prev
	}
	if len(p.plans.plans) < maxPlans {
		p.plans.plans[*set] = plan
	}
	return plan
}

// NumMaskingRules returns the number of masking rules.
func (p *Policy) NumMaskingRules() int { return len(p.masks) }

func holdsAny(roles, want []*role) bool {
	for _, r := range roles {
		if slices.Contains(want, r) {
			return true
		}
	}
	return false
}
