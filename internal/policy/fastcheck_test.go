package policy

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestFastCheckAgreesWithValidator checks that the fast path never
// confirms a value the JSON Schema validator rejects.
func TestFastCheckAgreesWithValidator(t *testing.T) {
	t.Parallel()
	fragments := []string{
		`{"type":"string","pattern":"^[A-Z]{3}$"}`,
		`{"enum":["Vietnam","Global"]}`,
		`{"const":"x"}`,
		`{"type":"integer","minimum":1,"maximum":10000}`,
		`{"type":"number","exclusiveMinimum":0}`,
		`{"exclusiveMaximum":5}`,
		`{"minLength":2,"maxLength":3}`,
		`{"type":["string","null"],"maxLength":1}`,
		`{"type":"boolean"}`,
		`{"pattern":"a"}`,
		`{"minimum":3}`,
		`{"type":"object"}`,
		`{"type":"integer","description":"d","title":"t","examples":[1]}`,
	}
	values := []string{
		`"VNM"`, `"AAPL"`, `"vnm"`, `"Vietnam"`, `"Mars"`, `"x"`, `"ab"`, `"abcd"`, `"é"`, `"ééé"`, `"a"`, `""`,
		`0`, `1`, `-1`, `3`, `5`, `10000`, `10001`, `1.0`, `1.5`, `1e3`, `-0`, `9223372036854775807`, `99999999999999999999`,
		`true`, `false`, `null`, `[]`, `{}`, `["a"]`,
	}
	for _, frag := range fragments {
		var doc any
		dec := json.NewDecoder(bytes.NewReader([]byte(frag)))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			t.Fatal(err)
		}
		fc := newFastCheck(doc)
		if fc == nil {
			t.Errorf("%s: not recognised as simple", frag)
			continue
		}
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		c.AssertFormat()
		if err := c.AddResource("policy:///f.json", doc); err != nil {
			t.Fatal(err)
		}
		sch, err := c.Compile("policy:///f.json")
		if err != nil {
			t.Fatal(err)
		}
		for _, val := range values {
			var v any
			dec := json.NewDecoder(bytes.NewReader([]byte(val)))
			dec.UseNumber()
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
			if fc.valid(v) && sch.Validate(v) != nil {
				t.Errorf("fragment %s: the fast path accepts %s, which the validator rejects: %v", frag, val, sch.Validate(v))
			}
		}
	}
	for _, frag := range []any{
		map[string]any{"format": "email"},
		map[string]any{"enum": []any{json.Number("1")}},
		map[string]any{"minimum": json.Number("1.5")},
		true,
	} {
		if newFastCheck(frag) != nil {
			t.Errorf("%v: recognised as simple, want the validator", frag)
		}
	}
}
