package mcp

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// specExecuteSQLSchema is the example tool definition of 2026-07-28 server/tools
// ("x-mcp-header") and Streamable HTTP ("Schema Extension").
const specExecuteSQLSchema = `{
  "type": "object",
  "properties": {
    "region": {
      "type": "string",
      "description": "The region to execute the query in",
      "x-mcp-header": "Region"
    },
    "query": {
      "type": "string",
      "description": "The SQL query to execute"
    }
  },
  "required": ["region", "query"]
}`

// conformanceCustomHeadersSchema is the inputSchema of the conformance suite's
// test_custom_headers tool (scenario http-custom-headers).
const conformanceCustomHeadersSchema = `{"type":"object","properties":{
  "region":{"type":"string","x-mcp-header":"Region"},
  "priority":{"type":"integer","x-mcp-header":"Priority"},
  "verbose":{"type":"boolean","x-mcp-header":"Verbose"},
  "debug":{"type":"boolean","x-mcp-header":"Debug"},
  "empty_val":{"type":"string","x-mcp-header":"EmptyVal"},
  "method_val":{"type":"string","x-mcp-header":"Method"},
  "float_val":{"type":"number"},
  "non_ascii_val":{"type":"string","x-mcp-header":"NonAscii"},
  "whitespace_val":{"type":"string","x-mcp-header":"Whitespace"},
  "leading_space_val":{"type":"string","x-mcp-header":"LeadingSpace"},
  "trailing_space_val":{"type":"string","x-mcp-header":"TrailingSpace"},
  "internal_space_val":{"type":"string","x-mcp-header":"InternalSpace"},
  "control_char_val":{"type":"string","x-mcp-header":"ControlChar"},
  "crlf_val":{"type":"string","x-mcp-header":"CrLf"},
  "tab_val":{"type":"string","x-mcp-header":"Tab"},
  "query":{"type":"string"}},
  "required":["region","priority","query"]}`

func TestParamBindingsValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		schema string
		want   []ParamBinding
	}{
		{
			name:   "spec example execute_sql",
			schema: specExecuteSQLSchema,
			want:   []ParamBinding{{Path: []string{"region"}, Name: "Region", Type: "string"}},
		},
		{
			name:   "conformance valid_tool",
			schema: `{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"}},"required":["region"]}`,
			want:   []ParamBinding{{Path: []string{"region"}, Name: "Region", Type: "string"}},
		},
		{
			name:   "conformance test_custom_headers",
			schema: conformanceCustomHeadersSchema,
			want: []ParamBinding{
				{Path: []string{"control_char_val"}, Name: "ControlChar", Type: "string"},
				{Path: []string{"crlf_val"}, Name: "CrLf", Type: "string"},
				{Path: []string{"debug"}, Name: "Debug", Type: "boolean"},
				{Path: []string{"empty_val"}, Name: "EmptyVal", Type: "string"},
				{Path: []string{"internal_space_val"}, Name: "InternalSpace", Type: "string"},
				{Path: []string{"leading_space_val"}, Name: "LeadingSpace", Type: "string"},
				{Path: []string{"method_val"}, Name: "Method", Type: "string"},
				{Path: []string{"non_ascii_val"}, Name: "NonAscii", Type: "string"},
				{Path: []string{"priority"}, Name: "Priority", Type: "integer"},
				{Path: []string{"region"}, Name: "Region", Type: "string"},
				{Path: []string{"tab_val"}, Name: "Tab", Type: "string"},
				{Path: []string{"trailing_space_val"}, Name: "TrailingSpace", Type: "string"},
				{Path: []string{"verbose"}, Name: "Verbose", Type: "boolean"},
				{Path: []string{"whitespace_val"}, Name: "Whitespace", Type: "string"},
			},
		},
		{
			name:   "no annotations",
			schema: `{"type":"object","properties":{"location":{"type":"string"}}}`,
		},
		{
			name:   "no-parameter tool",
			schema: `{"type":"object","additionalProperties":false}`,
		},
		{
			name:   "boolean schema",
			schema: `true`,
		},
		{
			name: "nested properties chain is statically reachable",
			schema: `{"type":"object","properties":{"target":{"type":"object","properties":{
				"tenant":{"type":"string","x-mcp-header":"Tenant"},
				"shard":{"type":"integer","x-mcp-header":"Shard"}}}}}`,
			want: []ParamBinding{
				{Path: []string{"target", "shard"}, Name: "Shard", Type: "integer"},
				{Path: []string{"target", "tenant"}, Name: "Tenant", Type: "string"},
			},
		},
		{
			name:   "every tchar is allowed",
			schema: "{\"properties\":{\"a\":{\"type\":\"string\",\"x-mcp-header\":\"!#$%&'*+-.^_`|~09azAZ\"}}}",
			want:   []ParamBinding{{Path: []string{"a"}, Name: "!#$%&'*+-.^_`|~09azAZ", Type: "string"}},
		},
		{
			name:   "nullable primitive",
			schema: `{"properties":{"tier":{"type":["integer","null"],"x-mcp-header":"Tier"}}}`,
			want:   []ParamBinding{{Path: []string{"tier"}, Name: "Tier", Type: "integer"}},
		},
		{
			name:   "a property named x-mcp-header is not an annotation",
			schema: `{"properties":{"x-mcp-header":{"type":"object"}}}`,
		},
		{
			name:   "annotation-shaped instance data is not an annotation",
			schema: `{"properties":{"o":{"type":"object","default":{"x-mcp-header":"A"},"examples":[{"x-mcp-header":"B"}],"enum":[{"x-mcp-header":"C"}],"const":{"x-mcp-header":"D"}}}}`,
		},
		{
			name:   "annotation next to $ref with a local type",
			schema: `{"$defs":{"r":{"type":"string"}},"properties":{"region":{"$ref":"#/$defs/r","type":"string","x-mcp-header":"Region"}}}`,
			want:   []ParamBinding{{Path: []string{"region"}, Name: "Region", Type: "string"}},
		},
		{
			name:   "property names needing escapes",
			schema: `{"properties":{"a/b~c":{"type":"boolean","x-mcp-header":"Flag"}}}`,
			want:   []ParamBinding{{Path: []string{"a/b~c"}, Name: "Flag", Type: "boolean"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParamBindings([]byte(tt.schema))
			if err != nil {
				t.Fatalf("ParamBindings: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("bindings (-want +got):\n%s", diff)
			}
		})
	}
}

// The tools of the conformance suite's http-invalid-tool-headers scenario, each of which a
// client MUST drop from tools/list, then the static-reachability rule and other edge cases.
func TestParamBindingsInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		schema  string
		wantErr string
	}{
		{"conformance invalid_empty_header", `{"type":"object","properties":{"value":{"type":"string","x-mcp-header":""}}}`,
			`/properties/value: x-mcp-header must not be empty`},
		{"conformance invalid_object_header", `{"type":"object","properties":{"data":{"type":"object","x-mcp-header":"Data"}}}`,
			`/properties/data: x-mcp-header "Data": the property's type must be string, integer or boolean, not "object"`},
		{"conformance invalid_array_header", `{"type":"object","properties":{"items":{"type":"array","items":{"type":"string"},"x-mcp-header":"Items"}}}`,
			`not "array"`},
		{"conformance invalid_null_header", `{"type":"object","properties":{"nil":{"type":"null","x-mcp-header":"Nil"}}}`,
			`not "null"`},
		{"conformance invalid_number_header", `{"type":"object","properties":{"score":{"type":"number","x-mcp-header":"Score"}}}`,
			`not "number"`},
		{"conformance invalid_duplicate_same_case", `{"type":"object","properties":{"field1":{"type":"string","x-mcp-header":"Region"},"field2":{"type":"string","x-mcp-header":"Region"}}}`,
			`/properties/field2: x-mcp-header "Region" duplicates the one at /properties/field1 (names are compared case-insensitively)`},
		{"conformance invalid_duplicate_diff_case", `{"type":"object","properties":{"field1":{"type":"string","x-mcp-header":"MyField"},"field2":{"type":"string","x-mcp-header":"myfield"}}}`,
			`x-mcp-header "myfield" duplicates the one at /properties/field1`},
		{"conformance invalid_space_in_name", `{"type":"object","properties":{"value":{"type":"string","x-mcp-header":"My Region"}}}`,
			`x-mcp-header "My Region" contains ' ', which is not an HTTP token character`},
		{"conformance invalid_colon_in_name", `{"type":"object","properties":{"value":{"type":"string","x-mcp-header":"Region:Primary"}}}`,
			`contains ':'`},
		{"conformance invalid_non_ascii_name", `{"type":"object","properties":{"value":{"type":"string","x-mcp-header":"Région"}}}`,
			`contains 'é'`},
		{"conformance invalid_control_char_name", "{\"type\":\"object\",\"properties\":{\"value\":{\"type\":\"string\",\"x-mcp-header\":\"Region\\t1\"}}}",
			`contains '\t'`},
		{"CR LF in name", `{"properties":{"v":{"type":"string","x-mcp-header":"A\r\nB"}}}`, `contains '\r'`},
		{"non-string annotation", `{"properties":{"v":{"type":"string","x-mcp-header":7}}}`, `x-mcp-header must be a string, got a number`},
		{"missing type", `{"properties":{"v":{"x-mcp-header":"V"}}}`, `type must be string, integer or boolean, and it declares none`},
		{"type union", `{"properties":{"v":{"type":["string","integer"],"x-mcp-header":"V"}}}`, `not a union of several types`},
		{"type union with number", `{"properties":{"v":{"type":["number","null"],"x-mcp-header":"V"}}}`, `the type list includes "number"`},
		{"type not a string", `{"properties":{"v":{"type":{"x":1},"x-mcp-header":"V"}}}`, `"type" is an object`},
		{"on the root", `{"type":"string","x-mcp-header":"Root"}`, `/: x-mcp-header on the schema root`},
		{"under items", `{"properties":{"list":{"type":"array","items":{"type":"string","x-mcp-header":"Item"}}}}`,
			`/properties/list/items: x-mcp-header is not statically reachable from the root through "properties" alone`},
		{"under items.properties", `{"properties":{"list":{"type":"array","items":{"type":"object","properties":{"id":{"type":"string","x-mcp-header":"Id"}}}}}}`,
			`/properties/list/items/properties/id: x-mcp-header is not statically reachable`},
		{"under prefixItems", `{"prefixItems":[{"type":"string","x-mcp-header":"P"}]}`, `/prefixItems/0: x-mcp-header is not statically reachable`},
		{"under oneOf", `{"oneOf":[{"properties":{"a":{"type":"string","x-mcp-header":"A"}}}]}`, `/oneOf/0/properties/a: x-mcp-header is not statically reachable`},
		{"under anyOf", `{"properties":{"a":{"anyOf":[{"type":"string","x-mcp-header":"A"}]}}}`, `/properties/a/anyOf/0:`},
		{"under allOf", `{"allOf":[{"properties":{"a":{"type":"string","x-mcp-header":"A"}}}]}`, `/allOf/0/properties/a:`},
		{"under not", `{"not":{"properties":{"a":{"type":"string","x-mcp-header":"A"}}}}`, `/not/properties/a:`},
		{"under if/then/else", `{"if":{"properties":{"a":{"const":1}}},"then":{"properties":{"b":{"type":"string","x-mcp-header":"B"}}},"else":{"properties":{"c":{"type":"string","x-mcp-header":"C"}}}}`,
			`/else/properties/c: x-mcp-header is not statically reachable from the root through "properties" alone; /then/properties/b:`},
		{"in a $defs target", `{"$defs":{"r":{"type":"string","x-mcp-header":"Region"}},"properties":{"region":{"$ref":"#/$defs/r"}}}`, `/$defs/r:`},
		{"in a draft-07 definitions target", `{"definitions":{"r":{"type":"string","x-mcp-header":"Region"}}}`, `/definitions/r:`},
		{"under additionalProperties", `{"additionalProperties":{"type":"string","x-mcp-header":"Extra"}}`, `/additionalProperties:`},
		{"under patternProperties", `{"patternProperties":{"^x":{"type":"string","x-mcp-header":"X"}}}`, `/patternProperties/^x:`},
		{"under dependentSchemas", `{"dependentSchemas":{"a":{"properties":{"b":{"type":"string","x-mcp-header":"B"}}}}}`, `/dependentSchemas/a/properties/b:`},
		{"under an unknown keyword", `{"x-vendor":{"properties":{"a":{"type":"string","x-mcp-header":"A"}}}}`, `/x-vendor/properties/a:`},
		{"$ref alone declares no type", `{"$defs":{"r":{"type":"string"}},"properties":{"region":{"$ref":"#/$defs/r","x-mcp-header":"Region"}}}`,
			`it declares none`},
		{"duplicate member names", `{"properties":{"a":{"type":"string","x-mcp-header":"A","x-mcp-header":"B"}}}`, `inputSchema is not valid JSON`},
		{"not JSON", `{"properties":`, `inputSchema is not valid JSON`},
		{"not an object", `["x-mcp-header"]`, `inputSchema must be a JSON object`},
		{"null", `null`, `inputSchema must be a JSON object`},
		{"invalid UTF-8", "{\"properties\":{\"a\":{\"type\":\"string\",\"x-mcp-header\":\"\xff\"}}}", `inputSchema is not valid JSON`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParamBindings([]byte(tt.schema))
			var ise *InvalidSchemaError
			if !errors.As(err, &ise) {
				t.Fatalf("ParamBindings = %v, %v; want an *InvalidSchemaError", got, err)
			}
			if got != nil {
				t.Errorf("ParamBindings returned bindings %v with an error", got)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q\nwant it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestParamBindingsReportsEveryProblem(t *testing.T) {
	t.Parallel()
	schema := `{"properties":{
		"a":{"type":"number","x-mcp-header":"A"},
		"b":{"type":"string","x-mcp-header":""},
		"c":{"type":"string","x-mcp-header":"Ok"}},
		"items":{"x-mcp-header":"I"}}`
	_, err := ParamBindings([]byte(schema))
	var ise *InvalidSchemaError
	if !errors.As(err, &ise) {
		t.Fatalf("err = %v, want *InvalidSchemaError", err)
	}
	want := []string{
		`/items: x-mcp-header is not statically reachable from the root through "properties" alone`,
		`/properties/a: x-mcp-header "A": the property's type must be string, integer or boolean, not "number"`,
		`/properties/b: x-mcp-header must not be empty`,
	}
	if diff := cmp.Diff(want, ise.Problems); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func TestParamBindingsBounds(t *testing.T) {
	t.Parallel()
	t.Run("nesting beyond MaxSchemaDepth", func(t *testing.T) {
		t.Parallel()
		deep := strings.Repeat(`{"properties":{"a":`, MaxSchemaDepth+2) + `{"type":"string"}` + strings.Repeat(`}}`, MaxSchemaDepth+2)
		_, err := ParamBindings([]byte(deep))
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("schema nesting exceeds %d levels", MaxSchemaDepth)) {
			t.Fatalf("err = %v, want a nesting error", err)
		}
	})
	t.Run("arrays nested beyond MaxSchemaDepth", func(t *testing.T) {
		t.Parallel()
		deep := `{"x-vendor":` + strings.Repeat(`[`, MaxSchemaDepth+2) + strings.Repeat(`]`, MaxSchemaDepth+2) + `}`
		_, err := ParamBindings([]byte(deep))
		if err == nil || !strings.Contains(err.Error(), "schema nesting exceeds") {
			t.Fatalf("err = %v, want a nesting error", err)
		}
	})
	t.Run("nesting within MaxSchemaDepth", func(t *testing.T) {
		t.Parallel()
		n := MaxSchemaDepth - 1
		deep := strings.Repeat(`{"properties":{"a":`, n) + `{"type":"string","x-mcp-header":"Deep"}` + strings.Repeat(`}}`, n)
		got, err := ParamBindings([]byte(deep))
		if err != nil || len(got) != 1 || len(got[0].Path) != n {
			t.Fatalf("ParamBindings = %d bindings, %v; want one binding %d levels deep", len(got), err, n)
		}
	})
	t.Run("problem list is capped", func(t *testing.T) {
		t.Parallel()
		var sb strings.Builder
		sb.WriteString(`{"properties":{`)
		for i := range 40 {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `"p%02d":{"type":"number","x-mcp-header":"H%d"}`, i, i)
		}
		sb.WriteString(`}}`)
		_, err := ParamBindings([]byte(sb.String()))
		var ise *InvalidSchemaError
		if !errors.As(err, &ise) || len(ise.Problems) != maxReportedProblems || ise.More != 40-maxReportedProblems {
			t.Fatalf("err = %v; want %d problems and %d more", err, maxReportedProblems, 40-maxReportedProblems)
		}
		if !strings.HasSuffix(err.Error(), fmt.Sprintf("; and %d more", 40-maxReportedProblems)) {
			t.Errorf("error %q does not say how many problems were left out", err)
		}
	})
}

func TestParamBindingStrings(t *testing.T) {
	t.Parallel()
	b := ParamBinding{Path: []string{"target", "a.b"}, Name: "Tenant", Type: "string"}
	if got, want := b.Header(), "Mcp-Param-Tenant"; got != want {
		t.Errorf("Header() = %q, want %q", got, want)
	}
	if got, want := b.String(), `arguments.target["a.b"] -> Mcp-Param-Tenant`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestBindingCache: a tool listed again with the same schema keeps the bindings already found
// (the schema is not walked again), a changed schema is read anew, an invalid one is refused and
// leaves what was known, and past its bound the cache still answers without remembering.
func TestBindingCache(t *testing.T) {
	region := []byte(`{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"}}}`)
	zone := []byte(`{"type":"object","properties":{"zone":{"type":"string","x-mcp-header":"Zone"}}}`)
	bad := []byte(`{"type":"object","properties":{"o":{"type":"object","x-mcp-header":"O"}}}`)
	c := NewBindingCache(1)

	first, err := c.Learn("t", region)
	if err != nil || len(first) != 1 || first[0].Name != "Region" {
		t.Fatalf("Learn = %+v, %v", first, err)
	}
	again, _ := c.Learn("t", append([]byte(nil), region...))
	if &again[0] != &first[0] {
		t.Error("the same schema, listed again, was walked again")
	}
	if b, _ := c.Learn("t", zone); len(b) != 1 || b[0].Name != "Zone" {
		t.Errorf("a changed schema: %+v, want the Zone binding", b)
	}
	if _, err := c.Learn("t", bad); err == nil {
		t.Error("an invalid x-mcp-header was accepted")
	}
	if b, ok := c.Get("t"); !ok || b[0].Name != "Zone" {
		t.Errorf("after a refused schema: %+v, %v; want the last valid bindings", b, ok)
	}
	if b, err := c.Learn("u", region); err != nil || len(b) != 1 {
		t.Errorf("past the bound: %+v, %v; want the bindings all the same", b, err)
	}
	if _, ok := c.Get("u"); ok {
		t.Error("a tool past the bound was remembered")
	}
}
