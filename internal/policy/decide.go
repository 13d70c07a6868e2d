package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
)

// Decide decides one call. It never fails: anything it cannot establish
// (unknown roles, malformed arguments, a condition that errs or runs over
// its cost limit) denies, with the reason.
//
// The order is: the principal's roles (asserted plus bound) are collected;
// if any of them lists the name under deny_tools (deny_resources,
// deny_prompts), the call is denied, whatever else allows it; otherwise
// the roles whose networks exclude the call's source address are set
// aside (they grant nothing for this call, see network.go), and every
// permission of the others that names the call is checked: the call is
// allowed if one passes all its constraints, its when: and its quotas'
// arguments (a sum that evaluates, the arguments a sequence compares). A
// permission that needs no approval is preferred to one that does.
// Nothing naming the call means deny.
//
// An allowed call carries the limits the gateway enforces — the allowing
// permission's charges, requirements and rate limits, and the marks of a
// sequence's after: tool — and no allocation is made for them when the
// policy has none.
func (p *Policy) Decide(pr Principal, c Call) Decision {
	var rbuf [16]*role
	roles := p.resolve(&pr, rbuf[:0])
	if c.Kind >= numKinds {
		return Decision{Rule: RuleDefaultDeny, Reasons: []string{"unknown kind of call"}}
	}
	for _, r := range roles {
		if r.deny[c.Kind].match(c.Name) {
			return Decision{Rule: r.denyRule[c.Kind], Reasons: []string{listedReason(c.Kind, c.Name, r)}}
		}
	}
	var blocked []*role
	if p.networks {
		var bbuf [16]*role
		roles, blocked = applying(roles, c.SourceIP, bbuf[:0])
	}
	var pbuf [16]*permission
	cands := candidates(roles, c.Kind, c.Name, pbuf[:0])
	if len(cands) == 0 {
		if len(blocked) > 0 {
			if reasons, rule := networkReasons(nil, blocked, &c); rule != "" {
				return Decision{Rule: rule, Reasons: reasons}
			}
		}
		return Decision{Rule: RuleDefaultDeny, Reasons: []string{noRuleReason(c.Kind, c.Name, roles)}}
	}
	// The state is taken only when a permission needs the arguments or a
	// condition; a permission without either decides with no allocation.
	// One deferred release, outside the loop, keeps the defer on the stack.
	var st *evalState
	defer func() {
		if st != nil {
			p.releaseState(st)
		}
	}()
	var (
		reasons  []string
		failed   *permission
		approved *permission
		held     *Decision // the limits of approved, when it has some
	)
	for _, perm := range cands {
		before := len(reasons)
		if st == nil && perm.needsState() {
			st = p.newState(&pr, &c)
		}
		reasons = perm.check(st, reasons)
		var lim *Decision // what the call charges, requires and draws from under perm
		if len(reasons) == before && perm.limited && !c.Completion {
			lim = &Decision{}
			reasons = p.limits(perm, st, &pr, &c, lim, reasons)
		}
		if len(reasons) == before {
			if perm.approval == nil || c.Completion {
				if lim == nil && p.marks == nil { // the common case, built in place
					return Decision{Allow: true, Rule: perm.id}
				}
				return p.allow(perm, nil, lim, &st, &pr, &c)
			}
			if approved == nil {
				approved, held = perm, lim
			}
			continue
		}
		if failed == nil {
			failed = perm
		}
		if len(cands) > 1 {
			for i := before; i < len(reasons); i++ {
				reasons[i] = perm.id + ": " + reasons[i]
			}
		}
	}
	if approved != nil {
		a := *approved.approval
		return p.allow(approved, &a, held, &st, &pr, &c)
	}
	if len(blocked) > 0 {
		reasons, _ = networkReasons(reasons, blocked, &c)
	}
	return Decision{Rule: failed.id, Reasons: reasons}
}

// allow is the decision allowing the call by perm: its approval, its limits (lim, nil when it
// has none) and the marks the call leaves when it is the after: tool of a sequence quota, for
// which it takes the decision's state if it was not yet taken.
func (p *Policy) allow(perm *permission, a *Approval, lim *Decision, st **evalState, pr *Principal, c *Call) Decision {
	var d Decision
	if lim != nil {
		d = *lim
	}
	d.Allow, d.Rule, d.RequireApproval = true, perm.id, a
	if p.marks == nil || c.Kind != KindTool || c.Completion {
		return d
	}
	if specs := p.marks[c.Name]; len(specs) > 0 {
		if *st == nil {
			*st = p.newState(pr, c)
		}
		p.marksFor(specs, *st, pr, c, &d)
	}
	return d
}

// Visible reports whether a listing shows the name to the principal: no
// role of the principal denies it and some permission names it. Constraints,
// when: conditions and networks are not evaluated, since they depend on the
// call's arguments, time and address: a tool that some permission could
// allow is visible.
func (p *Policy) Visible(pr Principal, k Kind, name string) bool {
	if k >= numKinds {
		return false
	}
	var rbuf [16]*role
	roles := p.resolve(&pr, rbuf[:0])
	for _, r := range roles {
		if r.deny[k].match(name) {
			return false
		}
	}
	for _, r := range roles {
		if r.names(k, name) {
			return true
		}
	}
	return false
}

// names reports whether some permission of the role names the call.
func (r *role) names(k Kind, name string) bool {
	if len(r.exact[k][name]) > 0 {
		return true
	}
	for _, perm := range r.globs[k] {
		if perm.pattern.match(name) {
			return true
		}
	}
	return false
}

// Roles returns the names of the roles the policy gives the principal, in
// the policy's order: roles it asserts that the policy defines, and roles
// its bindings grant.
func (p *Policy) Roles(pr Principal) []string {
	var rbuf [16]*role
	roles := p.resolve(&pr, rbuf[:0])
	out := make([]string, len(roles))
	for i, r := range roles {
		out[i] = r.name
	}
	return out
}

// resolve appends the principal's roles to buf, deduplicated and in the
// order the policy defines them.
func (p *Policy) resolve(pr *Principal, buf []*role) []*role {
	add := func(r *role) {
		i, found := slices.BinarySearchFunc(buf, r.index, func(a *role, idx int) int { return a.index - idx })
		if !found {
			buf = slices.Insert(buf, i, r)
		}
	}
	for _, name := range pr.Roles {
		if r := p.byName[name]; r != nil {
			add(r)
		}
	}
	if pr.Subject != "" {
		for _, r := range p.bySubject[pr.Subject] {
			add(r)
		}
	}
	for _, g := range pr.Groups {
		for _, r := range p.byGroup[g] {
			add(r)
		}
	}
	for _, s := range pr.Scopes {
		for _, r := range p.byScope[s] {
			add(r)
		}
	}
	for _, cb := range p.byClaims {
		if claimsMatch(cb.claims, pr.Claims) {
			add(cb.role)
		}
	}
	return buf
}

// claimsMatch reports whether every claim of the binding has one of its
// values: a string claim equal to it, or an array claim containing it.
func claimsMatch(want []claimDoc, claims map[string]any) bool {
	for _, c := range want {
		v, ok := claims[c.Name]
		if !ok || !claimHas(v, c.Values) {
			return false
		}
	}
	return true
}

func claimHas(v any, values []string) bool {
	switch v := v.(type) {
	case string:
		return slices.Contains(values, v)
	case []string:
		for _, s := range v {
			if slices.Contains(values, s) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok && slices.Contains(values, s) {
				return true
			}
		}
	}
	return false
}

// candidates appends the permissions of roles that name the call, in the
// policy's order.
func candidates(roles []*role, k Kind, name string, buf []*permission) []*permission {
	for _, r := range roles {
		start := len(buf)
		buf = append(buf, r.exact[k][name]...)
		globbed := false
		for _, perm := range r.globs[k] {
			if perm.pattern.match(name) {
				buf = append(buf, perm)
				globbed = true
			}
		}
		if globbed {
			slices.SortFunc(buf[start:], func(a, b *permission) int { return a.index - b.index })
		}
	}
	return buf
}

// evalState holds what one decision decodes at most once.
type evalState struct {
	p       *Policy
	pr      Principal
	c       Call
	decoded bool
	args    map[string]any // numbers as json.Number
	argsErr error
	celPr   map[string]any
}

var errNotObject = errors.New("arguments must be a JSON object")

// newState takes a state from the policy's pool; its argument map is
// reused across decisions.
func (p *Policy) newState(pr *Principal, c *Call) *evalState {
	st, _ := p.states.Get().(*evalState)
	if st == nil {
		st = &evalState{p: p}
	}
	st.pr, st.c = *pr, *c
	return st
}

// releaseState returns st to the pool, keeping nothing of the decision.
func (p *Policy) releaseState(st *evalState) {
	args := st.args
	if len(args) > 32 {
		args = nil // do not keep a large map alive
	}
	clear(args)
	*st = evalState{p: p, args: args}
	p.states.Put(st)
}

func (st *evalState) arguments() (map[string]any, error) {
	if st.c.Args != nil {
		return st.c.Args, nil // decoded by the caller; never pooled or cleared here
	}
	if st.decoded {
		return st.args, st.argsErr
	}
	st.decoded = true
	raw := bytes.TrimSpace(st.c.Arguments)
	if len(raw) == 0 || string(raw) == "null" {
		clear(st.args)
		return st.args, nil
	}
	if st.args == nil {
		st.args = make(map[string]any, 8)
	}
	st.argsErr = st.p.args.decode(raw, st.args)
	if st.argsErr != nil {
		clear(st.args)
	}
	return st.args, st.argsErr
}

// needsState reports whether checking the permission reads the arguments
// or evaluates a condition.
func (perm *permission) needsState() bool {
	return perm.when != nil || len(perm.args) > 0 || perm.denyUnnamed || perm.quotaArgs
}

// check appends to reasons every way the call fails this permission.
func (perm *permission) check(st *evalState, reasons []string) []string {
	if (len(perm.args) > 0 || perm.denyUnnamed) && !st.c.Completion {
		args, err := st.arguments()
		if err != nil {
			return append(reasons, err.Error())
		}
		for i := range perm.args {
			a := &perm.args[i]
			v, ok := args[a.name]
			if !ok {
				if !a.optional {
					reasons = append(reasons, a.where+" is missing; the permission constrains it")
				}
				continue
			}
			if a.fast != nil {
				if a.fast.valid(v) {
					continue
				}
				var explained bool
				if reasons, explained = a.fast.explain(reasons, a.where, v, st.p.printer); explained {
					continue
				}
			}
			if err := a.schema.Validate(v); err != nil {
				reasons = st.p.schemaReasons(reasons, a.name, err)
			}
		}
		if len(args) > len(perm.args)-countMissing(perm.args, args) {
			reasons = lookAlikes(reasons, perm.args, args)
		}
		if perm.denyUnnamed && len(args) > len(perm.args)-countMissing(perm.args, args) {
			var extra []string
			for name := range args {
				if _, found := slices.BinarySearchFunc(perm.args, name, func(a argRule, n string) int { return strings.Compare(a.name, n) }); !found {
					extra = append(extra, name)
				}
			}
			slices.Sort(extra)
			for _, name := range extra {
				reasons = append(reasons, fmt.Sprintf("argument %s is not allowed: no constraint names it (unconstrained_arguments: deny)", quote(name)))
			}
		}
	}
	if perm.when != nil && len(reasons) == 0 {
		out, _, err := perm.when.Eval((*activation)(st))
		switch {
		case err != nil:
			reasons = append(reasons, fmt.Sprintf("condition could not be evaluated (%v): %s", err, perm.whenText))
		case out != types.True:
			reasons = append(reasons, "condition is false: "+perm.whenText)
		}
	}
	return reasons
}

// lookAlikes appends a reason for every argument that is not one of the constrained arguments
// but looks like one, equal to it except for case or Unicode form: an upstream that matches names
// leniently would read it as the constrained argument, which the constraint never saw.
func lookAlikes(reasons []string, rules []argRule, args map[string]any) []string {
	var found []string
	for name := range args {
		if _, exact := slices.BinarySearchFunc(rules, name, func(a argRule, n string) int { return strings.Compare(a.name, n) }); exact {
			continue
		}
		skel := jsonrpc.Skeleton(name)
		for i := range rules {
			if rules[i].skel == skel {
				found = append(found, fmt.Sprintf("argument %s is not the constrained argument %s: names that differ only in case or Unicode form are refused", quote(name), quote(rules[i].name)))
				break
			}
		}
	}
	slices.Sort(found)
	return append(reasons, found...)
}

func countMissing(rules []argRule, args map[string]any) int {
	n := 0
	for i := range rules {
		if _, ok := args[rules[i].name]; !ok {
			n++
		}
	}
	return n
}

// schemaReasons turns a validation error into one reason per failed
// keyword, such as `argument "symbol": "AAPL" does not match ^[A-Z]{3}$`.
func (p *Policy) schemaReasons(reasons []string, arg string, err error) []string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return append(reasons, fmt.Sprintf("argument %s: %v", quote(arg), err))
	}
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		where := "argument " + quote(arg)
		if len(e.InstanceLocation) > 0 {
			where += " at /" + strings.Join(e.InstanceLocation, "/")
		}
		reasons = append(reasons, where+": "+p.describeKind(e.ErrorKind))
	}
	start := len(reasons)
	walk(ve)
	slices.Sort(reasons[start:]) // the library reports keywords in map order
	return reasons
}

func (p *Policy) describeKind(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Pattern:
		return fmt.Sprintf("%s does not match %s", quote(k.Got), k.Want)
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = jsonText(w)
		}
		return fmt.Sprintf("%s is not one of %s", jsonText(k.Got), strings.Join(want, ", "))
	case *kind.Const:
		return fmt.Sprintf("%s is not %s", jsonText(k.Got), jsonText(k.Want))
	case *kind.Type:
		return fmt.Sprintf("got %s, want %s", k.Got, strings.Join(k.Want, " or "))
	}
	return k.LocalizedString(p.printer)
}

// jsonText renders a JSON value for a message, shortened.
func jsonText(v any) string {
	switch v := v.(type) {
	case string:
		return quote(v)
	case json.Number:
		return string(v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > maxQuoted {
		return string(b[:maxQuoted]) + "..."
	}
	return string(b)
}

// activation resolves the variables of when: conditions lazily, so that a
// condition pays only for what it reads. It is the decision's state seen
// as a cel-go activation, so that evaluating takes no allocation for it.
type activation evalState

func (a *activation) ResolveName(name string) (any, bool) {
	st := (*evalState)(a)
	switch name {
	case "principal":
		if st.celPr == nil {
			claims := st.pr.Claims
			if claims == nil {
				claims = map[string]any{}
			}
			st.celPr = map[string]any{
				"subject": st.pr.Subject,
				"roles":   st.p.Roles(st.pr),
				"groups":  nonNil(st.pr.Groups),
				"scopes":  nonNil(st.pr.Scopes),
				"claims":  claims,
			}
		}
		return st.celPr, true
	case "args":
		// The arguments as decoded; jsonAdapter converts what is read.
		args, _ := st.arguments()
		if args == nil {
			return map[string]any{}, true
		}
		return args, true
	case "name":
		return st.c.Name, true
	case "kind":
		return st.c.Kind.String(), true
	case "source_ip":
		if !st.c.SourceIP.IsValid() {
			return "", true
		}
		return st.c.SourceIP.Unmap().String(), true
	case "now":
		return st.now(), true
	case "hour":
		return int64(st.now().Hour()), true
	case "minute":
		return int64(st.now().Minute()), true
	case "weekday":
		return int64(st.now().Weekday()), true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

func (st *evalState) now() time.Time {
	t := st.c.Time
	if t.IsZero() {
		t = time.Unix(0, 0)
	}
	return t.In(st.p.loc)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
