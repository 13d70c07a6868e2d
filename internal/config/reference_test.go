package config

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// referenceDoc is the configuration reference, which lists every key the decoder accepts.
const referenceDoc = "../../docs/configuration.md"

// TestReferenceMatchesDecoder keeps docs/configuration.md and the decoder in step. The keys the
// decoder accepts are found by exploring it (acceptedKeys), not from a list kept in this test;
// the reference's key table must name exactly those, each example must decode without a
// problem, and each default written as a value must be the one the decoder applies (or one
// applied later, where the decoder leaves the field empty).
func TestReferenceMatchesDecoder(t *testing.T) {
	rows := readReference(t)
	accepted := acceptedKeys(t)
	if len(accepted) < 100 {
		t.Fatalf("found only %d keys by exploring the decoder; the exploration is broken, and the test proves nothing", len(accepted))
	}

	for _, k := range accepted {
		if _, ok := rows[k]; !ok {
			t.Errorf("%s: the decoder accepts this key, but %s does not document it", k, referenceDoc)
		}
	}
	for _, k := range sortedKeys(rows) {
		if !slices.Contains(accepted, k) {
			t.Errorf("%s (line %d): documented in %s, but the decoder does not accept it", k, rows[k].line, referenceDoc)
		}
	}

	// Every example at once, as one document: no unknown key, and every value of the right type
	// and form. (Validation would object to the combination — stdio and http in one upstream —
	// so only the decoder runs.)
	doc := newMapping()
	for _, k := range sortedKeys(rows) {
		set(doc, k, rows[k].example)
	}
	for _, p := range decodeNode(doc, nil, nil) {
		line := rows[listIndex.ReplaceAllString(p.Path, "[]")].line
		t.Errorf("%s:%d: the example of %s does not decode: %s", referenceDoc, line, p.Path, p.Message)
	}

	// Each default written as a value decodes to what the decoder puts there when the key is
	// absent.
	checked := 0
	for _, k := range sortedKeys(rows) {
		r := rows[k]
		if r.def == nil {
			continue
		}
		checked++
		base := newMapping()
		set(base, parentPath(k), newMapping())
		with := newMapping()
		set(with, parentPath(k), newMapping())
		set(with, k, r.def)
		var absent, written Config
		if probs := decodeNode(base, nil, &absent); len(probs) > 0 {
			t.Errorf("%s: a document with only its section does not decode: %v", k, probs)
			continue
		}
		if probs := decodeNode(with, nil, &written); len(probs) > 0 {
			t.Errorf("%s (line %d): the documented default does not decode: %s", k, r.line, probs[0].Message)
			continue
		}
		if v, differ := firstDiff(reflect.ValueOf(absent), reflect.ValueOf(written)); differ && !isEmpty(v) {
			t.Errorf("%s (line %d): documented default %s, but the decoder applies %v", k, r.line, r.defText, v)
		}
	}
	if checked < 20 {
		t.Errorf("only %d defaults were checked; write defaults as `value` in the Default column", checked)
	}
}

// referenceRow is one row of the reference's key table.
type referenceRow struct {
	line    int
	example *yaml.Node // the Example column, decoded
	def     *yaml.Node // the Default column when it is a value, else nil
	defText string
}

// listIndex matches a list index in a path ("upstreams[0]"), which the reference writes "[]".
var listIndex = regexp.MustCompile(`\[\d+\]`)

// keyRow matches a row of a key table: | `key` | type | default | bounds | example |.
var keyRow = regexp.MustCompile("^\\| `([^`]+)` \\|")

// readReference reads the key tables of the reference, with each row's {a,b} alternatives
// expanded into one row per key.
func readReference(t *testing.T) map[string]referenceRow {
	t.Helper()
	data, err := os.ReadFile(referenceDoc)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]referenceRow{}
	for i, line := range strings.Split(string(data), "\n") {
		m := keyRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		if len(cells) != 5 {
			t.Errorf("%s:%d: want 5 columns (key, type, default, bounds, example), found %d", referenceDoc, i+1, len(cells))
			continue
		}
		r := referenceRow{line: i + 1}
		ex, ok := codeValue(cells[4])
		if !ok {
			t.Errorf("%s:%d: the example must be one `value`, found %q", referenceDoc, i+1, strings.TrimSpace(cells[4]))
			continue
		}
		if r.example, err = yamlValue(ex); err != nil {
			t.Errorf("%s:%d: example %s: %v", referenceDoc, i+1, ex, err)
			continue
		}
		if d, ok := codeValue(cells[2]); ok {
			r.defText = d
			if r.def, err = yamlValue(d); err != nil {
				t.Errorf("%s:%d: default %s: %v", referenceDoc, i+1, d, err)
				continue
			}
		}
		for _, k := range expand(m[1]) {
			if prev, dup := rows[k]; dup {
				t.Errorf("%s:%d: %s is already documented on line %d", referenceDoc, i+1, k, prev.line)
			}
			rows[k] = r
		}
	}
	if len(rows) == 0 {
		t.Fatalf("%s: no key table found", referenceDoc)
	}
	return rows
}

// codeValue returns the text of a cell that is exactly one `code span`.
func codeValue(cell string) (string, bool) {
	cell = strings.TrimSpace(cell)
	if len(cell) < 2 || cell[0] != '`' || cell[len(cell)-1] != '`' || strings.Count(cell, "`") != 2 {
		return "", false
	}
	return cell[1 : len(cell)-1], true
}

func yamlValue(text string) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) != 1 {
		return nil, fmt.Errorf("not one YAML value")
	}
	return doc.Content[0], nil
}

// expand writes out a key's {a,b,…} alternatives: "x.{a,b}.y" is x.a.y and x.b.y.
func expand(key string) []string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return []string{key}
	}
	end := open + strings.IndexByte(key[open:], '}')
	var out []string
	for alt := range strings.SplitSeq(key[open+1:end], ",") {
		out = append(out, expand(key[:open]+alt+key[end+1:])...)
	}
	return out
}

// shape is what a key's value is, as far as the exploration has found.
type shape int

const (
	unexplored shape = iota
	leaf             // a scalar, a list of scalars or a free-form mapping (env, headers)
	mapping          // a mapping of known keys
	list             // a list of mappings of known keys
)

// schemaKey is one key the decoder accepts.
type schemaKey struct {
	shape shape
	tries int                   // values offered so far while unexplored: {}, then [{}]
	keys  map[string]*schemaKey // of a mapping, or of a list's items
}

// acceptedKeys returns the path of every leaf key the decoder accepts ("audit.sinks[].jsonl.path"),
// sorted. It explores: it decodes a document, records the keys each mapping offers, then
// offers each new key an empty mapping and, failing that, a list of one empty mapping; a key
// that takes neither is a leaf. The decoder itself says what it accepts, so a key added to it
// is found without this test being told.
func acceptedKeys(t *testing.T) []string {
	t.Helper()
	root := &schemaKey{shape: mapping, keys: map[string]*schemaKey{}}
	for round := 0; ; round++ {
		if round > 64 {
			t.Fatal("the exploration of the decoder does not end")
		}
		offered := map[string][]string{}
		decodeNode(root.node(), func(path string, keys []string) {
			offered[listIndex.ReplaceAllString(path, "[]")] = keys
		}, nil)
		if !root.learn("", offered) {
			break
		}
	}
	var out []string
	root.leaves("", &out)
	slices.Sort(out)
	return out
}

// node builds the document this round offers the decoder.
func (k *schemaKey) node() *yaml.Node {
	m := newMapping()
	for _, name := range sortedKeys(k.keys) {
		var v *yaml.Node
		switch c := k.keys[name]; {
		case c.shape == mapping:
			v = c.node()
		case c.shape == list:
			v = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{c.node()}}
		case c.shape == unexplored && c.tries == 0:
			v = newMapping()
			c.tries++
		case c.shape == unexplored:
			v = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{newMapping()}}
			c.tries++
		default:
			continue
		}
		m.Content = append(m.Content, scalar(name), v)
	}
	return m
}

// learn updates the keys under path from what the decoder offered and reports whether anything
// is left to explore.
func (k *schemaKey) learn(path string, offered map[string][]string) (more bool) {
	for _, name := range offered[path] {
		if k.keys[name] == nil {
			k.keys[name] = &schemaKey{}
		}
	}
	for _, name := range sortedKeys(k.keys) {
		c, p := k.keys[name], pathKey(path, name)
		if c.shape == unexplored {
			switch {
			case c.tries == 1 && offered[p] != nil:
				c.shape, c.keys = mapping, map[string]*schemaKey{}
			case c.tries == 2 && offered[p+"[]"] != nil:
				c.shape, c.keys = list, map[string]*schemaKey{}
			case c.tries == 2:
				c.shape = leaf
			default: // just found, or a mapping refused: offer it (another) value
				more = true
			}
		}
		switch c.shape {
		case mapping:
			more = c.learn(p, offered) || more
		case list:
			more = c.learn(p+"[]", offered) || more
		}
	}
	return more
}

func (k *schemaKey) leaves(path string, out *[]string) {
	for name, c := range k.keys {
		p := pathKey(path, name)
		switch c.shape {
		case mapping:
			c.leaves(p, out)
		case list:
			c.leaves(p+"[]", out)
		default:
			*out = append(*out, p)
		}
	}
}

// decodeNode runs the decoder alone (no defaults derived from other keys, no validation, no
// secrets) on the mapping n, into cfg when it is not nil, and returns its problems.
func decodeNode(n *yaml.Node, offered func(string, []string), cfg *Config) []Problem {
	d := &decoder{lines: map[string]int{}, broken: map[string]bool{}, visits: maxVisits, offered: offered}
	c := defaults()
	d.root(n, c)
	if cfg != nil {
		*cfg = *c
	}
	return d.problems
}

func newMapping() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"} }

func scalar(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

// set puts v at path ("audit.sinks[].jsonl.path") in the mapping m, creating the mappings and
// one-item lists on the way; an empty path leaves m as it is.
func set(m *yaml.Node, path string, v *yaml.Node) {
	if path == "" {
		return
	}
	parts := strings.Split(path, ".")
	for i, part := range parts {
		name, isList := strings.CutSuffix(part, "[]")
		last := i == len(parts)-1
		var child *yaml.Node
		for j := 0; j+1 < len(m.Content); j += 2 {
			if m.Content[j].Value == name {
				child = m.Content[j+1]
			}
		}
		if child == nil {
			switch {
			case last && !isList:
				child = v
			case isList:
				child = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{newMapping()}}
			default:
				child = newMapping()
			}
			m.Content = append(m.Content, scalar(name), child)
		}
		if last {
			if isList {
				child.Content[0] = v
			}
			return
		}
		if isList {
			child = child.Content[0]
		}
		m = child
	}
}

// firstDiff returns the first value in a that differs from its counterpart in b, walking
// structs, pointers, slices and maps; differ is false when a and b are equal.
func firstDiff(a, b reflect.Value) (v reflect.Value, differ bool) {
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a, a.IsNil() != b.IsNil()
		}
		return firstDiff(a.Elem(), b.Elem())
	case reflect.Struct:
		for i := range a.NumField() {
			if v, differ := firstDiff(a.Field(i), b.Field(i)); differ {
				return v, true
			}
		}
		return a, false
	case reflect.Slice:
		if a.Len() != b.Len() {
			return a, true
		}
		for i := range a.Len() {
			if v, differ := firstDiff(a.Index(i), b.Index(i)); differ {
				return v, true
			}
		}
		return a, false
	case reflect.Map:
		if a.Len() != b.Len() {
			return a, true
		}
		for _, k := range a.MapKeys() {
			if w := b.MapIndex(k); !w.IsValid() {
				return a, true
			} else if v, differ := firstDiff(a.MapIndex(k), w); differ {
				return v, true
			}
		}
		return a, false
	}
	return a, !a.Equal(b)
}

// isEmpty reports whether v is its type's zero value or an empty list or mapping: a field the
// decoder leaves for the gateway to default.
func isEmpty(v reflect.Value) bool {
	return v.IsZero() || (v.Kind() == reflect.Slice || v.Kind() == reflect.Map) && v.Len() == 0
}

// TestAcceptedKeysExplores checks the exploration on keys of every shape, so that the
// reference test cannot pass with an exploration that stops early.
func TestAcceptedKeysExplores(t *testing.T) {
	got := acceptedKeys(t)
	for _, want := range []string{
		"listen",                // a scalar at the top
		"limits.max_body_bytes", // in a mapping
		"upstreams[].stdio.env", // a free-form mapping, in a list of mappings
		"upstreams[].http.client_credentials.auth_method", // three mappings down a list
		"audit.sinks[].webhook.bearer_token",              // a list inside a mapping
		"containment.anomaly.playbook[].actions",
		"containment.anomaly.off_hours.from",
		"tls.client_roles",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("the exploration did not find %s", want)
		}
	}
	for _, notLeaf := range []string{"limits", "upstreams", "upstreams[].http", "audit.sinks", "containment.rate_limits.per_tool"} {
		if slices.Contains(got, notLeaf) {
			t.Errorf("%s is a section, not a leaf", notLeaf)
		}
	}
}
