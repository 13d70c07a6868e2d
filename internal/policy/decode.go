package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mcpguard/mcpguard/internal/problems"
)

// MaxPolicyBytes bounds a policy file; a larger one is refused unread.
const MaxPolicyBytes = 4 << 20

// maxVisits bounds the YAML nodes the decoder visits, so that aliases
// pointing at large anchored nodes cannot multiply the work.
const maxVisits = 200_000

// maxProblems bounds the problems listed for one file.
const maxProblems = 200

// document is a policy file as written, before compilation.
type document struct {
	UnconstrainedArguments string // "allow" or "deny"; "" means allow
	TimeZone               string
	Roles                  []roleDoc
	Bindings               []bindingDoc
	Masking                *maskingDoc
}

type roleDoc struct {
	Name            string
	Description     string
	Permissions     []permissionDoc
	DenyTools       []string
	DenyResources   []string
	DenyPrompts     []string
	RateLimit       *rateLimitDoc
	AllowedNetworks []string
	DeniedNetworks  []string
	Unmasked        bool     // sees results without masking
	SeeUnmasked     []string // the masking rules the role lifts
}

type permissionDoc struct {
	ToolName, ResourceURI, PromptName string
	Action                            string
	Description                       string
	Constraints                       []constraintDoc
	OptionalArguments                 []string
	UnconstrainedArguments            string
	When                              string
	Approval                          *approvalDoc
	Quotas                            []quotaDoc
	RateLimit                         *rateLimitDoc
}

type constraintDoc struct {
	Argument string
	Schema   any // a JSON value: map[string]any, []any, string, json.Number, bool, nil
}

type approvalDoc struct {
	ApproverRole string
	Timeout      time.Duration
	HasTimeout   bool
}

type bindingDoc struct {
	Role       string
	Principals []string
	Groups     []string
	Scopes     []string
	Claims     []claimDoc
}

type claimDoc struct {
	Name   string
	Values []string // any of them matches
}

// decoder walks the YAML node tree into a document, collecting every
// problem instead of stopping at the first.
type decoder struct {
	problems  []Problem
	lines     problems.Lines
	visits    int
	exhausted bool
	fatal     bool            // the file could not be read as a document at all
	broken    map[string]bool // paths whose value was reported as malformed
}

// field decodes the value of one known key.
type field struct {
	key    string
	decode func(n *yaml.Node, path string)
}

var yamlErrLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// decode parses data (YAML or JSON) into a document.
func decode(data []byte) (*document, *decoder) {
	d := &decoder{lines: map[string]int{}, broken: map[string]bool{}, visits: maxVisits}
	doc := &document{}
	if len(data) > MaxPolicyBytes {
		d.add(0, "", "the file is %d bytes; a policy may be at most %d", len(data), MaxPolicyBytes)
		d.fatal = true
		return doc, d
	}
	dec := yaml.NewDecoder(bytes.NewReader(stripJSONComments(data)))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			d.add(0, "", "the policy is empty; it needs at least roles:")
			d.fatal = true
			return doc, d
		}
		d.yamlError(err)
		d.fatal = true
		return doc, d
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		d.yamlError(err)
		d.fatal = true
		return doc, d
	default:
		d.add(extra.Line, "", "a second YAML document; a policy file holds exactly one")
		d.fatal = true
		return doc, d
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		d.add(0, "", "the policy is empty; it needs at least roles:")
		d.fatal = true
		return doc, d
	}
	d.root(root.Content[0], doc)
	return doc, d
}

// stripJSONComments blanks out the // and /* */ comments of a policy written in JSON (its first
// non-space byte is '{' or '['), as guides write them, keeping every line where it was so that
// problems name the right line. A comment starts only outside strings and after a space, a
// line's start or JSON punctuation, so that "http://…" in an unquoted YAML flow scalar stays.
// Other documents (YAML, whose comments start with #) are returned unchanged.
func stripJSONComments(data []byte) []byte {
	t := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(t) == 0 || (t[0] != '{' && t[0] != '[') || !bytes.Contains(t, []byte("/")) {
		return data
	}
	out := bytes.Clone(data)
	inString, escaped := false, false
	for i := 0; i < len(out); i++ {
		b := out[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case b == '\\':
				escaped = true
			case b == '"' || b == '\n':
				inString = false
			}
			continue
		}
		if b == '"' {
			inString = true
			continue
		}
		if b != '/' || i+1 >= len(out) || (out[i+1] != '/' && out[i+1] != '*') {
			continue
		}
		if i > 0 && !bytes.ContainsRune([]byte(" \t\r\n,{}[]\""), rune(out[i-1])) {
			continue
		}
		if out[i+1] == '/' {
			for ; i < len(out) && out[i] != '\n'; i++ {
				out[i] = ' '
			}
			continue
		}
		end := bytes.Index(out[i+2:], []byte("*/"))
		if end < 0 {
			return data // an unclosed comment: the parser reports the text as it is
		}
		for j := i; j < i+2+end+2; j++ {
			if out[j] != '\n' {
				out[j] = ' '
			}
		}
		i += 2 + end + 1
	}
	return out
}

func (d *decoder) yamlError(err error) {
	msg := err.Error()
	if m := yamlErrLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		d.add(line, "", "invalid YAML or JSON: %s", m[2])
		return
	}
	d.add(0, "", "invalid YAML or JSON: %s", strings.TrimPrefix(msg, "yaml: "))
}

func (d *decoder) add(line int, path, format string, args ...any) {
	d.problems = append(d.problems, Problem{Line: line, Path: path, Message: fmt.Sprintf(format, args...)})
}

// lineOf returns the line where path, or the nearest enclosing path, is
// written.
func (d *decoder) lineOf(path string) int { return d.lines.Of(path) }

// visit follows an alias and counts the visit; nil once the budget is spent.
func (d *decoder) visit(n *yaml.Node) *yaml.Node {
	if d.exhausted {
		return nil
	}
	d.visits--
	if d.visits < 0 {
		d.exhausted = true
		d.add(0, "", "the document is too complex (more than %d nodes once aliases are expanded); the rest was not read", maxVisits)
		return nil
	}
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 8; i++ {
		n = n.Alias
	}
	if n.Kind == yaml.AliasNode {
		d.add(n.Line, "", "an alias that does not resolve")
		return nil
	}
	return n
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return "the string " + quote(n.Value)
		case "!!int":
			return "the integer " + quote(n.Value)
		case "!!float":
			return "the number " + quote(n.Value)
		case "!!bool":
			return quote(n.Value)
		case "!!null":
			return "no value"
		}
		return "a value tagged " + quote(n.Tag)
	}
	return "an unsupported YAML node"
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// mapping decodes the mapping n with fields, reporting unknown and duplicate
// keys. A null value is an empty mapping.
func (d *decoder) mapping(n *yaml.Node, path string, fields []field) {
	if n = d.visit(n); n == nil || isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.add(n.Line, path, "expected a mapping, got %s", describe(n))
		return
	}
	d.pairs(n, path, func(k *yaml.Node, key string, v *yaml.Node) {
		idx := slices.IndexFunc(fields, func(f field) bool { return f.key == key })
		if idx < 0 {
			known := make([]string, len(fields))
			for i, f := range fields {
				known[i] = f.key
			}
			d.add(k.Line, path, "unknown key %s; known keys: %s", quote(key), strings.Join(known, ", "))
			return
		}
		child := pathKey(path, key)
		d.lines[child] = k.Line
		fields[idx].decode(v, child)
	})
}

// pairs calls f for every key of the mapping n that is a plain string,
// reporting duplicate and malformed keys.
func (d *decoder) pairs(n *yaml.Node, path string, f func(k *yaml.Node, key string, v *yaml.Node)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content) && !d.exhausted; i += 2 {
		k := d.visit(n.Content[i])
		if k == nil {
			return
		}
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
			d.add(k.Line, path, "a key must be a plain name, not %s (merge keys are not supported)", describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.add(k.Line, path, "duplicate key %s (first at line %d)", quote(k.Value), first)
			continue
		}
		seen[k.Value] = k.Line
		f(k, k.Value, n.Content[i+1])
	}
}

func (d *decoder) scalar(n *yaml.Node, path, tag, want string) *yaml.Node {
	if n = d.visit(n); n == nil {
		return nil
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != tag {
		d.add(n.Line, path, "expected %s, got %s", want, describe(n))
		d.broken[path] = true
		return nil
	}
	return n
}

func (d *decoder) str(dst *string) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		if n = d.scalar(n, path, "!!str", "a string"); n != nil {
			*dst = n.Value
		}
	}
}

func (d *decoder) boolean(dst *bool) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		if n = d.scalar(n, path, "!!bool", "true or false"); n != nil {
			if err := n.Decode(dst); err != nil {
				d.add(n.Line, path, "%s is not true or false", quote(n.Value))
			}
		}
	}
}

func (d *decoder) strList(dst *[]string) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		if n = d.visit(n); n == nil || isNull(n) {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.add(n.Line, path, "expected a list of strings, got %s", describe(n))
			return
		}
		out := make([]string, len(n.Content))
		for i, item := range n.Content {
			p := pathIndex(path, i)
			d.lines[p] = item.Line
			d.str(&out[i])(item, p)
		}
		*dst = out
	}
}

// list decodes a sequence, calling item for each element.
func (d *decoder) list(n *yaml.Node, path, want string, item func(n *yaml.Node, path string, i int)) int {
	if n = d.visit(n); n == nil || isNull(n) {
		return 0
	}
	if n.Kind != yaml.SequenceNode {
		d.add(n.Line, path, "expected %s, got %s", want, describe(n))
		return 0
	}
	for i, c := range n.Content {
		p := pathIndex(path, i)
		d.lines[p] = c.Line
		item(c, p, i)
	}
	return len(n.Content)
}

// root decodes the document: a mapping with roles: and bindings:, or, as the seed format writes
// roles, one role object alone or a list of role objects (roles without bindings: principals hold
// them through their credentials' roles).
func (d *decoder) root(n *yaml.Node, doc *document) {
	roles := func(n *yaml.Node, path string) {
		if v := d.visit(n); v != nil && v.Kind == yaml.SequenceNode {
			doc.Roles = make([]roleDoc, len(v.Content))
		}
		d.list(n, path, "a list of roles", func(n *yaml.Node, path string, i int) {
			if i < len(doc.Roles) {
				d.role(n, path, &doc.Roles[i])
			}
		})
	}
	v := d.visit(n)
	switch {
	case v == nil:
		return
	case v.Kind == yaml.SequenceNode: // problems name these roles roles[i], as in a document
		roles(v, "roles")
		return
	case v.Kind != yaml.MappingNode:
		d.add(v.Line, "", "expected a mapping with roles: and bindings:, a role object or a list of them, got %s", describe(v))
		d.fatal = true
		return
	case hasKey(v, "role") && !hasKey(v, "roles"):
		doc.Roles = make([]roleDoc, 1)
		d.lines["roles[0]"] = v.Line
		d.role(v, "roles[0]", &doc.Roles[0])
		return
	}
	d.mapping(n, "", []field{
		{"unconstrained_arguments", d.str(&doc.UnconstrainedArguments)},
		{"time_zone", d.str(&doc.TimeZone)},
		{"roles", roles},
		{"bindings", func(n *yaml.Node, path string) {
			if v := d.visit(n); v != nil && v.Kind == yaml.SequenceNode {
				doc.Bindings = make([]bindingDoc, len(v.Content))
			}
			d.list(n, path, "a list of bindings", func(n *yaml.Node, path string, i int) {
				if i < len(doc.Bindings) {
					d.binding(n, path, &doc.Bindings[i])
				}
			})
		}},
		{"masking", d.masking(&doc.Masking)},
	})
}

// hasKey reports whether the mapping n has the plain key key.
func hasKey(n *yaml.Node, key string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return true
		}
	}
	return false
}

func (d *decoder) role(n *yaml.Node, path string, r *roleDoc) {
	if v := d.visit(n); v != nil && v.Kind != yaml.MappingNode {
		d.add(v.Line, path, "expected a role (a mapping with role:, permissions: and deny_tools:), got %s", describe(v))
		return
	}
	d.mapping(n, path, []field{
		{"role", d.str(&r.Name)},
		{"description", d.str(&r.Description)},
		{"permissions", func(n *yaml.Node, path string) {
			if v := d.visit(n); v != nil && v.Kind == yaml.SequenceNode {
				r.Permissions = make([]permissionDoc, len(v.Content))
			}
			d.list(n, path, "a list of permissions", func(n *yaml.Node, path string, i int) {
				if i < len(r.Permissions) {
					d.permission(n, path, &r.Permissions[i])
				}
			})
		}},
		{"deny_tools", d.strList(&r.DenyTools)},
		{"deny_resources", d.strList(&r.DenyResources)},
		{"deny_prompts", d.strList(&r.DenyPrompts)},
		{"rate_limit", d.rateLimit(&r.RateLimit)},
		{"allowed_networks", d.strList(&r.AllowedNetworks)},
		{"denied_networks", d.strList(&r.DeniedNetworks)},
		{"unmasked", d.boolean(&r.Unmasked)},
		{"see_unmasked", d.strList(&r.SeeUnmasked)},
	})
}

func (d *decoder) permission(n *yaml.Node, path string, p *permissionDoc) {
	if v := d.visit(n); v != nil && v.Kind != yaml.MappingNode {
		d.add(v.Line, path, "expected a permission (a mapping with tool_name:, resource_uri: or prompt_name:), got %s", describe(v))
		return
	}
	d.mapping(n, path, []field{
		{"tool_name", d.str(&p.ToolName)},
		{"resource_uri", d.str(&p.ResourceURI)},
		{"prompt_name", d.str(&p.PromptName)},
		{"action", d.str(&p.Action)},
		{"description", d.str(&p.Description)},
		{"constraints", func(n *yaml.Node, path string) {
			if n = d.visit(n); n == nil {
				return
			}
			if isNull(n) {
				return
			}
			if n.Kind != yaml.MappingNode {
				d.add(n.Line, path, "expected a mapping of argument names to JSON Schema fragments, got %s", describe(n))
				return
			}
			d.pairs(n, path, func(k *yaml.Node, key string, v *yaml.Node) {
				child := pathKey(path, key)
				d.lines[child] = k.Line
				if s, ok := d.jsonValue(v, child, 0); ok {
					p.Constraints = append(p.Constraints, constraintDoc{Argument: key, Schema: s})
				}
			})
		}},
		{"optional_arguments", d.strList(&p.OptionalArguments)},
		{"unconstrained_arguments", d.str(&p.UnconstrainedArguments)},
		{"when", d.str(&p.When)},
		{"require_approval", func(n *yaml.Node, path string) {
			a := &approvalDoc{}
			p.Approval = a
			d.mapping(n, path, []field{
				{"approver_role", d.str(&a.ApproverRole)},
				{"timeout", func(n *yaml.Node, path string) {
					var s string
					d.str(&s)(n, path)
					if s == "" {
						return
					}
					v, err := time.ParseDuration(s)
					if err != nil {
						d.add(d.lineOf(path), path, `%s is not a duration: want a number with a unit, such as "90s" or "15m"`, quote(s))
						return
					}
					a.Timeout, a.HasTimeout = v, true
				}},
			})
		}},
		{"quotas", d.quotas(&p.Quotas)},
		{"rate_limit", d.rateLimit(&p.RateLimit)},
	})
}

func (d *decoder) binding(n *yaml.Node, path string, b *bindingDoc) {
	if v := d.visit(n); v != nil && v.Kind != yaml.MappingNode {
		d.add(v.Line, path, "expected a binding (a mapping with role: and principals:, groups:, scopes: or claims:), got %s", describe(v))
		return
	}
	d.mapping(n, path, []field{
		{"role", d.str(&b.Role)},
		{"principals", d.strList(&b.Principals)},
		{"groups", d.strList(&b.Groups)},
		{"scopes", d.strList(&b.Scopes)},
		{"claims", func(n *yaml.Node, path string) {
			if n = d.visit(n); n == nil || isNull(n) {
				return
			}
			if n.Kind != yaml.MappingNode {
				d.add(n.Line, path, "expected a mapping of claim names to a string or a list of strings, got %s", describe(n))
				return
			}
			d.pairs(n, path, func(k *yaml.Node, key string, v *yaml.Node) {
				child := pathKey(path, key)
				d.lines[child] = k.Line
				c := claimDoc{Name: key}
				if vv := d.visit(v); vv != nil && vv.Kind == yaml.SequenceNode {
					d.strList(&c.Values)(vv, child)
				} else if vv != nil {
					var s string
					d.str(&s)(vv, child)
					c.Values = []string{s}
				}
				b.Claims = append(b.Claims, c)
			})
		}},
	})
}

// maxSchemaDepth bounds the nesting of a constraint fragment.
const maxSchemaDepth = 32

// jsonValue converts n to the JSON value it denotes: objects become
// map[string]any, arrays []any, numbers json.Number. Values JSON cannot
// hold (timestamps, binary, non-finite numbers, non-string keys) are
// reported.
func (d *decoder) jsonValue(n *yaml.Node, path string, depth int) (any, bool) {
	if n = d.visit(n); n == nil {
		return nil, false
	}
	if depth > maxSchemaDepth {
		d.add(n.Line, path, "nested deeper than %d levels", maxSchemaDepth)
		return nil, false
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		ok := true
		d.pairs(n, path, func(k *yaml.Node, key string, v *yaml.Node) {
			val, vok := d.jsonValue(v, pathKey(path, key), depth+1)
			ok = ok && vok
			m[key] = val
		})
		return m, ok
	case yaml.SequenceNode:
		a := make([]any, len(n.Content))
		ok := true
		for i, c := range n.Content {
			v, vok := d.jsonValue(c, pathIndex(path, i), depth+1)
			ok = ok && vok
			a[i] = v
		}
		return a, ok
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return n.Value, true
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				d.add(n.Line, path, "%s is not a boolean", quote(n.Value))
				return nil, false
			}
			return b, true
		case "!!null":
			return nil, true
		case "!!int", "!!float":
			var f float64
			if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				d.add(n.Line, path, "%s is not a finite number", quote(n.Value))
				return nil, false
			}
			// Keep the written digits when they are plain JSON, so that
			// large integers are compared exactly.
			if isJSONNumber(n.Value) {
				return json.Number(n.Value), true
			}
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), true
		}
		d.add(n.Line, path, "%s is not a JSON value", describe(n))
		return nil, false
	}
	d.add(n.Line, path, "%s is not a JSON value", describe(n))
	return nil, false
}

// isJSONNumber reports whether s is written as a JSON number.
func isJSONNumber(s string) bool {
	return json.Valid([]byte(s)) && s != "" && (s[0] == '-' || s[0] >= '0' && s[0] <= '9')
}
