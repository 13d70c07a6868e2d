package policy

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mask"
)

// Defaults and bounds of the policy language.
const (
	// DefaultCELCostLimit bounds the work one when: condition may do per
	// decision (cel-go cost units); a condition that exceeds it denies.
	DefaultCELCostLimit = 10_000
	// DefaultApprovalTimeout applies when require_approval gives no timeout.
	DefaultApprovalTimeout = 15 * time.Minute
	// MaxApprovalTimeout bounds require_approval.timeout.
	MaxApprovalTimeout = 24 * time.Hour
	// maxWhenBytes bounds the text of one when: condition.
	maxWhenBytes = 4096
	// untrackedMargin is how far inside the cost limit a condition's
	// estimated worst case must be for its evaluations not to be tracked.
	untrackedMargin = 4
)

// Options tune compilation. A nil *Options means the defaults.
type Options struct {
	// CELCostLimit bounds each when: evaluation; 0 means DefaultCELCostLimit.
	CELCostLimit uint64
	// Namespace scopes the policy to one upstream: a tool or prompt name (or pattern) in it
	// that does not start with Namespace gets it prepended, so a role written against the
	// upstream's own tool names ("get_stock_analysis") applies to the names the gateway exposes
	// ("finance.get_stock_analysis"), and "*" to that upstream's tools only. It is the
	// upstream's prefix followed by the namespace separator; "" leaves names as written.
	Namespace string
}

// Policy is a compiled policy. It is immutable and safe for concurrent use.
type Policy struct {
	source      string
	roles       []*role
	byName      map[string]*role
	bySubject   map[string][]*role
	byGroup     map[string][]*role
	byScope     map[string][]*role
	byClaims    []claimBinding
	loc         *time.Location
	permissions int
	printer     *message.Printer
	args        argsDecoder
	states      sync.Pool // of *evalState
	fp          fingerprints
	// marks lists, by the exact name of a tool that some sequence quota names as after:, what
	// its served calls mark; nil when the policy has no sequence.
	marks map[string][]markSpec
	// networks is set when some role has allowed_networks or denied_networks.
	networks bool
	// masks are the masking rules (see masking.go), detection what their names and
	// account-number detectors look for, plans the compiled plan of each set of them.
	masks     []*maskRule
	detection *mask.Detection
	plans     planCache
}

type role struct {
	name  string
	index int
	deny  [numKinds]nameSet
	// denyRule is the Rule of a denial by deny, per kind.
	denyRule [numKinds]string
	exact    [numKinds]map[string][]*permission
	globs    [numKinds][]*permission
	rate     *rateLimit     // rate_limit: over the calls the role's permissions allow
	allowed  []netip.Prefix // allowed_networks
	denied   []netip.Prefix // denied_networks
	unmasked bool           // sees results unmasked where it grants access to the tool
	see      ruleSet        // the masking rules it lifts (see_unmasked)
}

type permission struct {
	id          string
	index       int // position among all permissions of the policy, for ordering
	kind        Kind
	pattern     glob
	args        []argRule
	denyUnnamed bool
	when        cel.Program
	whenText    string
	approval    *Approval
	role        *role
	quotas      []quota
	rate        *rateLimit
	// limited is set when an allowed call carries limits: quotas, or a rate limit of the
	// permission or its role.
	limited bool
	// quotaArgs is set when a quota reads the arguments: a sum, or a sequence with same:.
	quotaArgs bool
}

type argRule struct {
	name     string
	skel     string // jsonrpc.Skeleton(name): a look-alike of the name has the same
	where    string // "argument \"name\"", how reasons name it
	schema   *jsonschema.Schema
	fast     *fastCheck // nil when the fragment is not simple
	optional bool
}

type claimBinding struct {
	claims []claimDoc
	role   *role
}

// Source returns the name the policy was parsed under, usually its file.
func (p *Policy) Source() string { return p.source }

// NumRoles returns the number of roles the policy defines.
func (p *Policy) NumRoles() int { return len(p.roles) }

// Defines reports whether the policy defines the role name.
func (p *Policy) Defines(role string) bool { return p.byName[role] != nil }

// NumPermissions returns the number of permissions over all roles.
func (p *Policy) NumPermissions() int { return p.permissions }

// ParseFile reads and compiles the policy file at path.
func ParseFile(path string, opts *Options) (*Policy, error) {
	data, err := readPolicyFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path, opts)
}

// readPolicyFile reads at most one byte more than a policy may hold, so that Parse can refuse a
// file that is too large.
func readPolicyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxPolicyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read policy %s: %w", path, err)
	}
	return data, nil
}

// Parse decodes a policy written in YAML or JSON, checks it and compiles
// it. Unknown keys are errors. On failure the error is a *Problems listing
// every problem with its path and line.
func Parse(data []byte, source string, opts *Options) (*Policy, error) {
	if opts == nil {
		opts = &Options{}
	}
	doc, d := decode(data)
	var c *compiler
	if !d.exhausted && !d.fatal {
		if c = newCompiler(d, source, opts); c != nil {
			c.compile(doc)
		}
	}
	if len(d.problems) > 0 {
		slices.SortStableFunc(d.problems, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
		if n := len(d.problems); n > maxProblems {
			d.problems = append(d.problems[:maxProblems], Problem{Message: fmt.Sprintf("and %d more problems", n-maxProblems)})
		}
		return nil, &Problems{Source: source, Kind: "policy", List: d.problems}
	}
	c.p.fp = fingerprint(data, doc)
	return c.p, nil
}

type compiler struct {
	d      *decoder
	p      *Policy
	opts   *Options
	env    *cel.Env
	schema *jsonschema.Compiler
	nurl   int
	// quotaNames maps each quota name to the path where it is defined.
	quotaNames map[string]string
	// seqs are the sequence quotas, for indexing the marks their after: tools leave.
	seqs []struct {
		after string
		spec  markSpec
	}
}

func newCompiler(d *decoder, source string, opts *Options) *compiler {
	sc := jsonschema.NewCompiler()
	sc.DefaultDraft(jsonschema.Draft2020)
	sc.AssertFormat()
	sc.UseLoader(refuseLoader{})
	return &compiler{
		d: d, opts: opts, schema: sc, quotaNames: map[string]string{},
		p: &Policy{
			source:    source,
			byName:    map[string]*role{},
			bySubject: map[string][]*role{},
			byGroup:   map[string][]*role{},
			byScope:   map[string][]*role{},
			loc:       time.UTC,
			printer:   message.NewPrinter(language.English),
		},
	}
}

// celEnv returns the environment conditions compile in, building it on
// first use: most policies have no condition, and building it is the
// costliest part of compiling a small policy.
func (c *compiler) celEnv() (*cel.Env, error) {
	if c.env != nil {
		return c.env, nil
	}
	reg, err := types.NewRegistry()
	if err != nil {
		return nil, fmt.Errorf("internal error building the condition environment: %v", err)
	}
	env, err := cel.NewEnv(
		cel.CustomTypeProvider(reg),
		cel.CustomTypeAdapter(jsonAdapter{reg}),
		cel.Variable("principal", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("args", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("name", cel.StringType),
		cel.Variable("kind", cel.StringType),
		cel.Variable("source_ip", cel.StringType),
		cel.Variable("now", cel.TimestampType),
		cel.Variable("hour", cel.IntType),
		cel.Variable("minute", cel.IntType),
		cel.Variable("weekday", cel.IntType),
		ext.Strings(),
		ext.Network(),
	)
	if err != nil {
		return nil, fmt.Errorf("internal error building the condition environment: %v", err)
	}
	c.env = env
	return env, nil
}

// refuseLoader refuses every external schema: a policy is self-contained,
// and compiling it must never reach the network or the file system.
type refuseLoader struct{}

func (refuseLoader) Load(string) (any, error) {
	return nil, errors.New("loading is disabled")
}

func (c *compiler) problem(path, format string, args ...any) {
	c.d.add(c.d.lineOf(path), path, format, args...)
}

func (c *compiler) compile(doc *document) {
	p := c.p
	unconstrainedDeny := false
	switch doc.UnconstrainedArguments {
	case "", "allow":
	case "deny":
		unconstrainedDeny = true
	default:
		c.problem("unconstrained_arguments", "%s is not allow or deny", quote(doc.UnconstrainedArguments))
	}
	if doc.TimeZone != "" {
		loc, err := time.LoadLocation(doc.TimeZone)
		if err != nil {
			c.problem("time_zone", "%s is not a known time zone (an IANA name such as \"Asia/Ho_Chi_Minh\" or \"UTC\")", quote(doc.TimeZone))
		} else {
			p.loc = loc
		}
	}
	if len(doc.Roles) == 0 {
		c.problem("roles", "no roles: a policy defines at least one role (everything is denied without one)")
	}
	for i := range doc.Roles {
		path := pathIndex("roles", i)
		rd := &doc.Roles[i]
		r := &role{name: rd.Name, index: i}
		switch {
		case rd.Name == "":
			if !c.d.broken[path+".role"] {
				c.problem(path, "role: is required (the role's name)")
			}
		case p.byName[rd.Name] != nil:
			c.problem(path+".role", "duplicate role %s", quote(rd.Name))
		default:
			p.byName[rd.Name] = r
		}
		p.roles = append(p.roles, r)
		r.rate = c.rateLimit(rd.RateLimit, path+".rate_limit", "role:"+r.name+"/rate_limit", "r:role:"+string(appendKeyPart(nil, r.name))+":")
		c.networks(r, rd, path)
		for j := range rd.Permissions {
			c.permission(r, &rd.Permissions[j], pathIndex(path+".permissions", j), j, unconstrainedDeny)
		}
		for k, list := range [numKinds][]string{rd.DenyTools, rd.DenyResources, rd.DenyPrompts} {
			key := Kind(k).denyKey()
			r.denyRule[k] = "role:" + r.name + "/" + key
			for j, name := range list {
				g, err := compileGlob(c.scoped(Kind(k), name))
				if err != nil {
					c.problem(pathIndex(path+"."+key, j), "%v", err)
					continue
				}
				r.deny[k].add(g)
			}
		}
	}
	for i := range doc.Bindings {
		c.binding(&doc.Bindings[i], pathIndex("bindings", i))
	}
	c.compileMasking(doc)
	c.marks()
}

// scoped returns name as the gateway exposes it under Options.Namespace: tool and prompt names
// are namespaced, resource URIs are not.
func (c *compiler) scoped(k Kind, name string) string {
	ns := c.opts.Namespace
	if ns == "" || k == KindResource || strings.HasPrefix(name, ns) {
		return name
	}
	return ns + name
}

func (c *compiler) permission(r *role, pd *permissionDoc, path string, j int, unconstrainedDeny bool) {
	perm := &permission{
		id:          "role:" + r.name + "/permission:" + strconv.Itoa(j),
		index:       c.p.permissions,
		denyUnnamed: unconstrainedDeny,
	}
	c.p.permissions++
	var name, key, action string
	n := 0
	for _, t := range []struct {
		value, key, action string
		kind               Kind
	}{
		{pd.ToolName, "tool_name", "invoke", KindTool},
		{pd.ResourceURI, "resource_uri", "read", KindResource},
		{pd.PromptName, "prompt_name", "get", KindPrompt},
	} {
		if t.value != "" {
			n++
			name, key, action, perm.kind = t.value, t.key, t.action, t.kind
		}
	}
	ok := true
	switch {
	case n == 0:
		c.problem(path, "a permission names what it allows with exactly one of tool_name, resource_uri or prompt_name")
		ok = false
	case n > 1:
		c.problem(path, "a permission names exactly one of tool_name, resource_uri or prompt_name; write one permission for each")
		ok = false
	default:
		name = c.scoped(perm.kind, name)
		g, err := compileGlob(name)
		if err != nil {
			c.problem(path+"."+key, "%v", err)
			ok = false
		}
		perm.pattern = g
		if pd.Action != "" && pd.Action != action {
			c.problem(path+".action", "%s is not an action on a %s: the only action is %q", quote(pd.Action), perm.kind, action)
		}
	}
	switch pd.UnconstrainedArguments {
	case "":
	case "allow":
		perm.denyUnnamed = false
	case "deny":
		perm.denyUnnamed = true
	default:
		c.problem(path+".unconstrained_arguments", "%s is not allow or deny", quote(pd.UnconstrainedArguments))
	}
	if perm.kind == KindResource && (len(pd.Constraints) > 0 || len(pd.OptionalArguments) > 0) {
		c.problem(path+".constraints", "a resource read has no arguments to constrain; use when: on name (the URI) instead")
	}
	for _, cd := range pd.Constraints {
		cpath := pathKey(path+".constraints", cd.Argument)
		if cd.Argument == "" {
			c.problem(cpath, "an argument name is required")
			continue
		}
		sch, err := c.compileSchema(cd.Schema)
		if err != nil {
			c.problem(cpath, "%v", err)
			continue
		}
		fc := newFastCheck(cd.Schema)
		perm.args = append(perm.args, argRule{name: cd.Argument, skel: jsonrpc.Skeleton(cd.Argument), where: "argument " + quote(cd.Argument), schema: sch, fast: fc})
		ad := &c.p.args
		if ad.names == nil {
			ad.names, ad.values = map[string]string{}, map[string]any{}
		}
		ad.names[cd.Argument] = cd.Argument
		if fc != nil {
			for _, v := range fc.strEnum {
				ad.values[v] = v
			}
		}
	}
	slices.SortFunc(perm.args, func(a, b argRule) int { return strings.Compare(a.name, b.name) })
	for i, name := range pd.OptionalArguments {
		k, found := slices.BinarySearchFunc(perm.args, name, func(a argRule, n string) int { return strings.Compare(a.name, n) })
		if !found {
			c.problem(pathIndex(path+".optional_arguments", i), "%s is not an argument named under constraints", quote(name))
			continue
		}
		perm.args[k].optional = true
	}
	if pd.When != "" {
		perm.whenText = pd.When
		prg, err := c.compileWhen(pd.When)
		if err != nil {
			c.problem(path+".when", "%v", err)
		}
		perm.when = prg
	}
	if a := pd.Approval; a != nil {
		ap := &Approval{ApproverRole: a.ApproverRole, Timeout: DefaultApprovalTimeout}
		if a.ApproverRole == "" {
			c.problem(path+".require_approval", "approver_role is required (the operator role that may approve)")
		}
		if a.HasTimeout {
			if a.Timeout <= 0 || a.Timeout > MaxApprovalTimeout {
				c.problem(path+".require_approval.timeout", "%v is out of range: want more than 0 and at most %v", a.Timeout, MaxApprovalTimeout)
			}
			ap.Timeout = a.Timeout
		}
		perm.approval = ap
	}
	c.limits(r, perm, pd, path)
	if !ok {
		return
	}
	if perm.pattern.literal() {
		if r.exact[perm.kind] == nil {
			r.exact[perm.kind] = map[string][]*permission{}
		}
		r.exact[perm.kind][name] = append(r.exact[perm.kind][name], perm)
	} else {
		r.globs[perm.kind] = append(r.globs[perm.kind], perm)
	}
}

// compileSchema compiles one argument's JSON Schema 2020-12 fragment.
func (c *compiler) compileSchema(doc any) (*jsonschema.Schema, error) {
	if m, ok := doc.(map[string]any); ok {
		if s, ok := m["$schema"]; ok && s != "https://json-schema.org/draft/2020-12/schema" {
			return nil, fmt.Errorf("$schema %v is not supported: constraints are JSON Schema 2020-12 (leave $schema out)", s)
		}
	}
	c.nurl++
	url := "policy:///constraint/" + strconv.Itoa(c.nurl) + ".json"
	if err := c.schema.AddResource(url, doc); err != nil {
		return nil, errors.New(c.schemaError(err, url))
	}
	sch, err := c.schema.Compile(url)
	if err != nil {
		return nil, errors.New(c.schemaError(err, url))
	}
	return sch, nil
}

// schemaError explains why a constraint fragment does not compile.
func (c *compiler) schemaError(err error, url string) string {
	var sve *jsonschema.SchemaValidationError
	var ve *jsonschema.ValidationError
	if errors.As(err, &sve) && errors.As(sve.Err, &ve) {
		var msgs []string
		var walk func(e *jsonschema.ValidationError)
		walk = func(e *jsonschema.ValidationError) {
			if len(e.Causes) > 0 {
				for _, c := range e.Causes {
					walk(c)
				}
				return
			}
			m := e.ErrorKind.LocalizedString(c.p.printer)
			if len(e.InstanceLocation) > 0 {
				m = strings.Join(e.InstanceLocation, "/") + ": " + m
			}
			if !slices.Contains(msgs, m) {
				msgs = append(msgs, m)
			}
		}
		walk(ve)
		slices.Sort(msgs) // the library reports keywords in map order
		return "not a valid JSON Schema 2020-12 fragment: " + strings.Join(msgs, "; ")
	}
	var le *jsonschema.LoadURLError
	if errors.As(err, &le) {
		return fmt.Sprintf("$ref %s is refused: a constraint may not load another schema; write it inline or under $defs", quote(le.URL))
	}
	var re *jsonschema.InvalidRegexError
	if errors.As(err, &re) {
		return fmt.Sprintf("pattern %s is not a valid regular expression: %v", quote(re.Regex), re.Err)
	}
	s := err.Error()
	s = strings.ReplaceAll(s, url+"#", "")
	s = strings.ReplaceAll(s, url, "")
	return strings.ReplaceAll(s, "\n", "; ")
}

// compileWhen type-checks and plans one condition. cel.OptOptimize
// evaluates constant sub-expressions (such as cidr("10.0.0.0/8")) once,
// when the program is planned, instead of on every decision.
//
// The cost limit is enforced by tracking the cost of each evaluation,
// which allocates. A condition whose worst case, estimated before it ever
// runs, is well inside the limit cannot exceed it, so it is planned
// without tracking; one that reads the size of its input (a list, a
// string) has no such bound and is tracked.
func (c *compiler) compileWhen(text string) (cel.Program, error) {
	return c.compileCEL(text, "condition", "a bool", func(t *cel.Type) bool { return t.IsExactType(cel.BoolType) })
}

// compileCEL type-checks and plans one CEL expression of the policy (what names it in errors:
// "condition", "sum") in the environment of when: conditions; yields says which output types
// it may have (want, in words).
func (c *compiler) compileCEL(text, what, want string, yields func(*cel.Type) bool) (cel.Program, error) {
	if len(text) > maxWhenBytes {
		return nil, fmt.Errorf("the %s is %d bytes; at most %d", what, len(text), maxWhenBytes)
	}
	env, err := c.celEnv()
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(text)
	if iss.Err() != nil {
		return nil, fmt.Errorf("invalid %s: %s", what, strings.ReplaceAll(iss.Err().Error(), "\n", " "))
	}
	if !yields(ast.OutputType()) {
		return nil, fmt.Errorf("the %s yields %s; it must yield %s", what, ast.OutputType(), want)
	}
	limit := c.opts.CELCostLimit
	if limit == 0 {
		limit = DefaultCELCostLimit
	}
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if est, err := env.EstimateCost(ast, unknownSizes{}); err != nil || est.Max > limit/untrackedMargin {
		opts = append(opts, cel.CostLimit(limit))
	}
	prg, err := env.Program(ast, opts...)
	if err != nil {
		return nil, fmt.Errorf("invalid %s: %v", what, err)
	}
	return prg, nil
}

func (c *compiler) binding(b *bindingDoc, path string) {
	p := c.p
	r := p.byName[b.Role]
	switch {
	case b.Role == "":
		if !c.d.broken[path+".role"] {
			c.problem(path, "role: is required (the role this binding grants)")
		}
		return
	case r == nil:
		c.problem(path+".role", "no role named %s is defined under roles:", quote(b.Role))
		return
	}
	if len(b.Principals)+len(b.Groups)+len(b.Scopes)+len(b.Claims) == 0 {
		c.problem(path, "a binding needs at least one of principals, groups, scopes or claims")
	}
	add := func(m map[string][]*role, key string, names []string) {
		for i, n := range names {
			if n == "" {
				c.problem(pathIndex(path+"."+key, i), "an empty name matches nothing")
				continue
			}
			if !slices.Contains(m[n], r) {
				m[n] = append(m[n], r)
			}
		}
	}
	add(p.bySubject, "principals", b.Principals)
	add(p.byGroup, "groups", b.Groups)
	add(p.byScope, "scopes", b.Scopes)
	if len(b.Claims) > 0 {
		for _, cl := range b.Claims {
			if len(cl.Values) == 0 {
				c.problem(pathKey(path+".claims", cl.Name), "a claim binding needs at least one value")
			}
		}
		p.byClaims = append(p.byClaims, claimBinding{claims: b.Claims, role: r})
	}
}
