// Package toolschema checks a call's arguments against the tool's own inputSchema before the
// gateway forwards it: JSON Schema 2020-12 validation, and no member name that a lenient decoder
// would take for a declared property (a case variant or a Unicode look-alike of it).
package toolschema

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
)

// printer words validation errors in English.
var printer = message.NewPrinter(language.English)

// maxDepth bounds how deep the declared names of a schema are collected; deeper properties are
// still validated by the schema itself.
const maxDepth = 32

// Schema is one tool's compiled inputSchema.
type Schema struct {
	sch      *jsonschema.Schema
	names    *names
	required map[string]bool // the top-level required properties
}

// names are the property names a schema declares at one level of an object, with the schemas of
// their values and of array items.
type names struct {
	props map[string]*names // declared name → what it declares below (nil: nothing)
	skel  map[string]string // skeleton → declared name
	items *names
}

// ErrNoSchema is returned by Compile for a definition without an inputSchema.
var ErrNoSchema = errors.New("the tool has no inputSchema")

// Compile compiles an inputSchema (the raw JSON of a tools/list entry's "inputSchema"). A schema
// that names an external document ($ref to a URL or a file) does not compile: checking a call
// never reaches the network or the file system.
func Compile(raw []byte) (*Schema, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, ErrNoSchema
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("inputSchema is not JSON: %w", err)
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, errors.New("inputSchema is not an object")
	}
	if t, ok := m["type"]; ok && t != "object" {
		return nil, fmt.Errorf("inputSchema has type %v; a tool's arguments are an object", t)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(refuseLoader{})
	const url = "mcpguard:///inputSchema.json"
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("inputSchema: %s", firstLine(err))
	}
	sch, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("inputSchema does not compile: %s", firstLine(err))
	}
	req := map[string]bool{}
	if list, ok := m["required"].([]any); ok {
		for _, r := range list {
			if name, ok := r.(string); ok {
				req[name] = true
			}
		}
	}
	return &Schema{sch: sch, names: collect(m, 0), required: req}, nil
}

// refuseLoader refuses every external schema document.
type refuseLoader struct{}

func (refuseLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("external schema %q is not loaded", url)
}

func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// collect reads the property names a schema object declares, level by level.
func collect(m map[string]any, depth int) *names {
	if depth >= maxDepth {
		return nil
	}
	var n *names
	if props, ok := m["properties"].(map[string]any); ok && len(props) > 0 {
		n = &names{props: make(map[string]*names, len(props)), skel: make(map[string]string, len(props))}
		for name, sub := range props {
			var child *names
			if sm, ok := sub.(map[string]any); ok {
				child = collect(sm, depth+1)
			}
			n.props[name] = child
			n.skel[jsonrpc.Skeleton(name)] = name
		}
	}
	if items, ok := m["items"].(map[string]any); ok {
		if in := collect(items, depth+1); in != nil {
			if n == nil {
				n = &names{}
			}
			n.items = in
		}
	}
	return n
}

// Decode reads a call's raw arguments (nil or absent means {}) as the validator and the policy
// read them: objects as map[string]any, numbers as encoding/json's Number. It checks the JSON
// strictly; see [DecodeParsed] for arguments inside a message jsonrpc.Parse accepted.
func Decode(args []byte) (any, error) {
	if len(bytes.TrimSpace(args)) == 0 {
		return map[string]any{}, nil
	}
	if err := jsonrpc.CheckValue(args, jsonrpc.Limits{}); err != nil {
		return nil, fmt.Errorf("arguments are not valid JSON: %w", err)
	}
	return DecodeParsed(args)
}

// DecodeParsed is [Decode] for arguments that jsonrpc.Parse already checked, in one pass.
func DecodeParsed(args []byte) (any, error) {
	if len(bytes.TrimSpace(args)) == 0 {
		return map[string]any{}, nil
	}
	v, err := jsonrpc.Decode(args)
	if err != nil {
		return nil, fmt.Errorf("arguments are not valid JSON: %w", err)
	}
	return v, nil
}

// Check validates decoded arguments (from Decode). The error says what is wrong in words a
// client can act on.
//
// A top-level argument whose value is null and that the schema does not require is checked as
// if it were absent: MCP (SEP-2243) treats a null parameter as one not provided, and clients
// send null for optional parameters they leave unset. The call is forwarded as the client sent
// it; a required argument that is null must still match its schema.
func (s *Schema) Check(args any) error {
	if err := lookAlikes(s.names, args, ""); err != nil {
		return err
	}
	if err := s.sch.Validate(s.withoutOptionalNulls(args)); err != nil {
		return errors.New(describe(err))
	}
	return nil
}

// withoutOptionalNulls returns args without its null-valued optional members, copying only when
// there is one to drop.
func (s *Schema) withoutOptionalNulls(args any) any {
	obj, ok := args.(map[string]any)
	if !ok {
		return args
	}
	var out map[string]any
	for k, v := range obj {
		if v != nil || s.required[k] {
			continue
		}
		if out == nil {
			out = make(map[string]any, len(obj))
			for k2, v2 := range obj {
				out[k2] = v2
			}
		}
		delete(out, k)
	}
	if out == nil {
		return args
	}
	return out
}

// LookAlike reports the first member name of args that is not one of declared but looks like
// one: equal to it except for case or Unicode form. It returns "" for both when there is none.
func LookAlike(args any, declared []string) (name, like string) {
	obj, ok := args.(map[string]any)
	if !ok || len(declared) == 0 {
		return "", ""
	}
	skel := make(map[string]string, len(declared))
	exact := make(map[string]bool, len(declared))
	for _, d := range declared {
		skel[jsonrpc.Skeleton(d)] = d
		exact[d] = true
	}
	for _, k := range sortedKeys(obj) {
		if exact[k] {
			continue
		}
		if d, ok := skel[jsonrpc.Skeleton(k)]; ok {
			return k, d
		}
	}
	return "", ""
}

func lookAlikes(n *names, v any, path string) error {
	if n == nil {
		return nil
	}
	switch v := v.(type) {
	case map[string]any:
		if n.props == nil {
			return nil
		}
		for _, k := range sortedKeys(v) {
			child, declared := n.props[k]
			if !declared {
				if d, ok := n.skel[jsonrpc.Skeleton(k)]; ok {
					return fmt.Errorf("argument %s is not the declared %s: names that differ only in case or Unicode form are refused (send %s)",
						quote(path, k), quote(path, d), jsonrpc.Quote(d))
				}
				continue
			}
			if err := lookAlikes(child, v[k], path+"/"+k); err != nil {
				return err
			}
		}
	case []any:
		if n.items == nil {
			return nil
		}
		for i, e := range v {
			if err := lookAlikes(n.items, e, fmt.Sprintf("%s/%d", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// sortedKeys makes the first reported problem the same on every run.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func quote(path, name string) string {
	if path == "" {
		return string(jsonrpc.Quote(name))
	}
	return string(jsonrpc.Quote(strings.TrimPrefix(path, "/") + "/" + name))
}

// describe turns a validation error into one line naming where and what: the deepest causes,
// at most three.
func describe(err error) string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err.Error()
	}
	var leaves []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			where := "/" + strings.Join(e.InstanceLocation, "/")
			leaves = append(leaves, fmt.Sprintf("at %s: %s", where, e.ErrorKind.LocalizedString(printer)))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	if len(leaves) > 3 {
		leaves = append(leaves[:3], fmt.Sprintf("and %d more", len(leaves)-3))
	}
	return "arguments do not match the tool's inputSchema: " + strings.Join(leaves, "; ")
}
