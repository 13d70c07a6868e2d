package mcp

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/go-json-experiment/json"
)

// ParamBinding is one tool parameter that a tool's inputSchema designates, with x-mcp-header,
// to be mirrored into an HTTP header.
type ParamBinding struct {
	// Path is the chain of property names from the root of the arguments object to the
	// parameter: ["region"] for a top-level property, ["location", "region"] for a nested one.
	Path []string
	// Name is the x-mcp-header value, for example "Region".
	Name string
	// Type is the parameter's declared JSON Schema type: "string", "integer" or "boolean".
	Type string
}

// Header returns the name of the header that carries the parameter: "Mcp-Param-" + Name.
func (b ParamBinding) Header() string { return HeaderParamPrefix + b.Name }

// String describes the binding for logs: arguments.region -> Mcp-Param-Region.
func (b ParamBinding) String() string { return argumentPath(b.Path) + " -> " + b.Header() }

// argumentPath renders a property path for messages: arguments.region, or
// arguments["a.b"] when a name needs quoting.
func argumentPath(path []string) string {
	var sb strings.Builder
	sb.WriteString("arguments")
	for _, p := range path {
		if isPlainName(p) {
			sb.WriteByte('.')
			sb.WriteString(p)
		} else {
			sb.WriteByte('[')
			sb.WriteString(strconv.Quote(p))
			sb.WriteByte(']')
		}
	}
	return sb.String()
}

func isPlainName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == '-' || isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'z')) {
			return false
		}
	}
	return true
}

// MaxSchemaDepth bounds the nesting of an inputSchema that [ParamBindings] walks. A schema
// nested deeper is rejected rather than walked.
const MaxSchemaDepth = 128

// maxReportedProblems bounds how many problems one InvalidSchemaError lists.
const maxReportedProblems = 16

// InvalidSchemaError reports why a tool's x-mcp-header annotations are invalid. A client on
// Streamable HTTP MUST then exclude the tool from tools/list (and SHOULD log the tool's name
// and this reason).
type InvalidSchemaError struct {
	// Problems are the individual violations, each prefixed with the JSON Pointer of the
	// schema location at fault, ordered by location (object keys sorted).
	Problems []string
	// More counts further problems that were found but not listed.
	More int
}

// Error lists the problems on one line.
func (e *InvalidSchemaError) Error() string {
	s := "invalid x-mcp-header annotation: " + strings.Join(e.Problems, "; ")
	if e.More > 0 {
		s += fmt.Sprintf("; and %d more", e.More)
	}
	return s
}

// ParamBindings returns the x-mcp-header bindings a tool's inputSchema declares, sorted by
// path, and an *InvalidSchemaError when any annotation breaks a rule of the specification
// (2026-07-28 server/tools "x-mcp-header", Streamable HTTP "Schema Extension"):
//
//   - the value is a non-empty string of HTTP token characters (RFC 9110 tchar), which
//     excludes spaces, colons, control characters and non-ASCII;
//   - values are unique, compared case-insensitively, across the whole schema;
//   - the annotated property declares "type" as "string", "integer" or "boolean" (a
//     two-element type array adding "null" is accepted: a null value omits the header);
//     "number", "object", "array", "null", a missing type, or any other union is rejected;
//   - the annotated schema is statically reachable from the root: every step is a
//     "properties" member. An annotation on the root itself, or under items, prefixItems,
//     additionalProperties, patternProperties, allOf/anyOf/oneOf/not, if/then/else, $defs,
//     a $ref target or any other keyword makes the schema invalid.
//
// The schema must be a JSON object (or a boolean schema, which has no bindings); duplicate
// member names anywhere in it are rejected, because readers disagree on which one counts.
// Annotation-like members inside instance data (const, enum, default, examples) are data,
// not annotations, and are ignored.
func ParamBindings(inputSchema []byte) ([]ParamBinding, error) {
	var root any
	if err := json.Unmarshal(inputSchema, &root); err != nil {
		return nil, &InvalidSchemaError{Problems: []string{"inputSchema is not valid JSON: " + err.Error()}}
	}
	w := &schemaWalker{seen: map[string]string{}}
	switch root.(type) {
	case map[string]any, bool:
	default:
		return nil, &InvalidSchemaError{Problems: []string{"inputSchema must be a JSON object"}}
	}
	w.walk(root, "", nil, true, false, 0)
	if len(w.problems) > 0 {
		e := &InvalidSchemaError{Problems: w.problems}
		if len(e.Problems) > maxReportedProblems {
			e.More = len(e.Problems) - maxReportedProblems
			e.Problems = e.Problems[:maxReportedProblems]
		}
		return nil, e
	}
	slices.SortFunc(w.bindings, func(a, b ParamBinding) int { return slices.Compare(a.Path, b.Path) })
	return w.bindings, nil
}

type schemaWalker struct {
	bindings []ParamBinding
	seen     map[string]string // lower-cased header name -> pointer of its first use
	problems []string
	tooDeep  bool
}

func (w *schemaWalker) fail(pointer, format string, args ...any) {
	if pointer == "" {
		pointer = "/"
	}
	w.problems = append(w.problems, pointer+": "+fmt.Sprintf(format, args...))
}

// Keywords whose value maps names to subschemas. Keywords whose value is a subschema or an
// array of subschemas (items, prefixItems, allOf, anyOf, oneOf, not, if, then, else,
// additionalProperties, ...) need no list: every keyword not named here is walked as one, so
// that an annotation hidden under an unknown vocabulary's keyword is found too. None of them
// keeps static reachability; only "properties" does.
func isSubschemaMapKeyword(k string) bool {
	switch k {
	case "$defs", "definitions", "dependencies", "dependentSchemas", "patternProperties":
		return true
	}
	return false
}

// isInstanceDataKeyword reports keywords whose value is instance data, never a schema.
func isInstanceDataKeyword(k string) bool {
	switch k {
	case "const", "default", "enum", "examples":
		return true
	}
	return false
}

// walk visits the schema node at pointer. path is the property path when the node is
// statically reachable (reachable), property reports whether the node is the schema of a
// property (the only place an annotation may appear).
func (w *schemaWalker) walk(node any, pointer string, path []string, reachable, property bool, depth int) {
	obj, ok := node.(map[string]any)
	if !ok {
		return // boolean schemas and non-schemas carry no annotations
	}
	if w.deep(pointer, depth) {
		return
	}
	if v, ok := obj[SchemaKeywordHeader]; ok {
		w.annotation(obj, v, pointer, path, reachable && property)
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := obj[k]
		kp := pointer + "/" + escapePointer(k)
		switch {
		case k == "properties":
			props, ok := v.(map[string]any)
			if !ok {
				continue
			}
			names := make([]string, 0, len(props))
			for n := range props {
				names = append(names, n)
			}
			slices.Sort(names)
			for _, n := range names {
				w.walk(props[n], kp+"/"+escapePointer(n), append(slices.Clip(path), n), reachable, true, depth+1)
			}
		case k == SchemaKeywordHeader || isInstanceDataKeyword(k):
			// The annotation itself, or instance data.
		case isSubschemaMapKeyword(k):
			if m, ok := v.(map[string]any); ok {
				names := make([]string, 0, len(m))
				for n := range m {
					names = append(names, n)
				}
				slices.Sort(names)
				for _, n := range names {
					w.walk(m[n], kp+"/"+escapePointer(n), nil, false, false, depth+1)
				}
			}
		default:
			w.walkAny(v, kp, depth+1)
		}
	}
}

// deep reports whether depth is beyond MaxSchemaDepth, recording the problem once.
func (w *schemaWalker) deep(pointer string, depth int) bool {
	if depth <= MaxSchemaDepth {
		return false
	}
	if !w.tooDeep {
		w.tooDeep = true
		w.fail(pointer, "schema nesting exceeds %d levels", MaxSchemaDepth)
	}
	return true
}

// walkAny walks a keyword value that is a schema or an array of schemas.
func (w *schemaWalker) walkAny(v any, pointer string, depth int) {
	if w.deep(pointer, depth) {
		return
	}
	switch v := v.(type) {
	case map[string]any:
		w.walk(v, pointer, nil, false, false, depth)
	case []any:
		for i, e := range v {
			w.walkAny(e, pointer+"/"+strconv.Itoa(i), depth+1)
		}
	}
}

// annotation checks the x-mcp-header value v found in schema obj at pointer.
func (w *schemaWalker) annotation(obj map[string]any, v any, pointer string, path []string, allowed bool) {
	if !allowed {
		if pointer == "" {
			w.fail(pointer, "x-mcp-header on the schema root (it must annotate a property)")
		} else {
			w.fail(pointer, "x-mcp-header is not statically reachable from the root through \"properties\" alone")
		}
		return
	}
	name, ok := v.(string)
	if !ok {
		w.fail(pointer, "x-mcp-header must be a string, got %s", jsonTypeName(v))
		return
	}
	if name == "" {
		w.fail(pointer, "x-mcp-header must not be empty")
		return
	}
	if i := strings.IndexFunc(name, func(r rune) bool { return !isTokenChar(r) }); i >= 0 {
		w.fail(pointer, "x-mcp-header %s contains %s, which is not an HTTP token character", strconv.Quote(name), strconv.QuoteRune([]rune(name[i:])[0]))
		return
	}
	typ, problem := primitiveType(obj["type"])
	if problem != "" {
		w.fail(pointer, "x-mcp-header %s: %s", strconv.Quote(name), problem)
		return
	}
	lower := strings.ToLower(name)
	if first, dup := w.seen[lower]; dup {
		w.fail(pointer, "x-mcp-header %s duplicates the one at %s (names are compared case-insensitively)", strconv.Quote(name), first)
		return
	}
	w.seen[lower] = pointer
	w.bindings = append(w.bindings, ParamBinding{Path: slices.Clone(path), Name: name, Type: typ})
}

// primitiveType returns the primitive type the "type" keyword value t declares, or a problem.
func primitiveType(t any) (string, string) {
	const need = "the property's type must be string, integer or boolean"
	switch t := t.(type) {
	case nil:
		return "", need + ", and it declares none"
	case string:
		if isHeaderType(t) {
			return t, ""
		}
		return "", fmt.Sprintf("%s, not %q", need, t)
	case []any:
		var prim []string
		nulls := 0
		for _, e := range t {
			s, _ := e.(string)
			switch {
			case s == "null":
				nulls++
			case isHeaderType(s):
				prim = append(prim, s)
			default:
				return "", fmt.Sprintf("%s, and the type list includes %s", need, jsonLiteral(e))
			}
		}
		if len(prim) == 1 && nulls <= 1 {
			return prim[0], ""
		}
		return "", need + " (optionally with \"null\"), not a union of several types"
	default:
		return "", fmt.Sprintf("%s, and \"type\" is %s", need, jsonTypeName(t))
	}
}

func isHeaderType(s string) bool { return s == "string" || s == "integer" || s == "boolean" }

// isTokenChar reports whether r is an RFC 9110 tchar.
func isTokenChar(r rune) bool {
	switch {
	case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		return true
	}
	return strings.ContainsRune("!#$%&'*+-.^_`|~", r)
}

func jsonTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "a value"
}

func jsonLiteral(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return jsonTypeName(v)
	}
	return string(b)
}

// escapePointer escapes a JSON Pointer reference token (RFC 6901).
func escapePointer(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// BindingCache keeps the x-mcp-header bindings of tools by name. Walking an inputSchema is the
// costliest part of reading a list of tools, so a tool's schema is walked again only when it
// differs, byte for byte, from the one its bindings came from. At most max tools are kept; a
// tool beyond them still gets its bindings, unremembered. Safe for concurrent use.
type BindingCache struct {
	mu      sync.Mutex
	max     int
	entries map[string]bindingEntry
}

type bindingEntry struct {
	schema   []byte // a copy: not a slice that would keep a whole list alive
	bindings []ParamBinding
}

// NewBindingCache returns a cache of at most max tools.
func NewBindingCache(max int) *BindingCache {
	return &BindingCache{max: max, entries: map[string]bindingEntry{}}
}

// Learn returns the bindings of the tool name whose inputSchema is schema, walking the schema
// only when it is not the one already known, and remembers them. The error is ParamBindings'.
func (c *BindingCache) Learn(name string, schema []byte) ([]ParamBinding, error) {
	c.mu.Lock()
	e, ok := c.entries[name]
	c.mu.Unlock()
	if ok && bytes.Equal(e.schema, schema) {
		return e.bindings, nil
	}
	b, err := ParamBindings(schema)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if _, known := c.entries[name]; known || len(c.entries) < c.max {
		c.entries[name] = bindingEntry{schema: bytes.Clone(schema), bindings: b}
	}
	c.mu.Unlock()
	return b, nil
}

// Get returns the bindings remembered for the tool name.
func (c *BindingCache) Get(name string) ([]ParamBinding, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[name]
	return e.bindings, ok
}
