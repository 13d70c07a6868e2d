package policy

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// simpleFragments are constraint fragments the fast path recognises.
var simpleFragments = []string{
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
	`{"minLength":3,"pattern":"^[a-z]+$","maxLength":4}`,
	`{"enum":["ab","cde"],"pattern":"^z","minLength":5}`,
	`{"const":"long value","maxLength":2}`,
	`{"minimum":-5,"maximum":-1,"exclusiveMinimum":-4,"exclusiveMaximum":-2}`,
	`{"type":["integer","string"],"minimum":10,"pattern":"^\\d+$"}`,
	`{"type":"string","enum":["a\"b","é\n"]}`,
}

var fragmentValues = []string{
	`"VNM"`, `"AAPL"`, `"vnm"`, `"Vietnam"`, `"Mars"`, `"x"`, `"ab"`, `"abcd"`, `"é"`, `"ééé"`, `"a"`, `""`, `"z"`, `"zzzzzz"`, `"ABCDEFG"`, `"a\"b"`, `"12"`,
	`0`, `1`, `-1`, `-3`, `-4`, `-2`, `3`, `5`, `10000`, `10001`, `1.0`, `1.5`, `1e3`, `-0`, `9223372036854775807`, `-9223372036854775808`, `99999999999999999999`,
	`true`, `false`, `null`, `[]`, `{}`, `["a"]`,
}

func decodeNumbers(t testing.TB, text string) any {
	t.Helper()
	var v any
	dec := json.NewDecoder(bytes.NewReader([]byte(text)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// compileFragment returns the fast checker and the compiled schema of a
// simple fragment.
func compileFragment(t testing.TB, frag string) (*fastCheck, *jsonschema.Schema) {
	t.Helper()
	doc := decodeNumbers(t, frag)
	fc := newFastCheck(doc)
	if fc == nil {
		t.Fatalf("%s: not recognised as simple", frag)
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
	return fc, sch
}

// TestFastCheckAgreesWithValidator checks that the fast path never
// confirms a value the JSON Schema validator rejects.
func TestFastCheckAgreesWithValidator(t *testing.T) {
	t.Parallel()
	for _, frag := range simpleFragments {
		fc, sch := compileFragment(t, frag)
		for _, val := range fragmentValues {
			v := decodeNumbers(t, val)
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

// checkFastReasons fails t when the fast path explains v otherwise than
// the validator does; it reports whether the fast path explained v.
func checkFastReasons(t testing.TB, p *Policy, frag string, fc *fastCheck, sch *jsonschema.Schema, v any) bool {
	t.Helper()
	if fc.valid(v) {
		return false
	}
	got, ok := fc.explain([]string{"earlier reason"}, `argument "a"`, v, p.printer)
	if !ok {
		if len(got) != 1 {
			t.Fatalf("fragment %s, value %#v: explain gave up but appended %q", frag, v, got[1:])
		}
		return false
	}
	err := sch.Validate(v)
	if err == nil {
		t.Fatalf("fragment %s, value %#v: explained %q, but the validator accepts it", frag, v, got[1:])
	}
	want := p.schemaReasons([]string{"earlier reason"}, "a", err)
	if !slices.Equal(got, want) {
		t.Fatalf("fragment %s, value %#v:\nfast reasons      %q\nvalidator reasons %q", frag, v, got, want)
	}
	return true
}

// TestFastReasonsMatchValidator checks that a denial explained by the fast
// path reads exactly as the validator's explanation would.
func TestFastReasonsMatchValidator(t *testing.T) {
	t.Parallel()
	p := &Policy{printer: message.NewPrinter(language.English)}
	explained := 0
	for _, frag := range simpleFragments {
		fc, sch := compileFragment(t, frag)
		for _, val := range fragmentValues {
			if checkFastReasons(t, p, frag, fc, sch, decodeNumbers(t, val)) {
				explained++
			}
		}
	}
	if explained < 150 {
		t.Errorf("the fast path explained %d failures; want it to explain the common ones", explained)
	}
}

// FuzzFastReasons compares the fast path's reasons with the validator's
// for arbitrary values against the simple fragments.
func FuzzFastReasons(f *testing.F) {
	for _, val := range fragmentValues {
		f.Add([]byte(val))
	}
	p := &Policy{printer: message.NewPrinter(language.English)}
	type compiled struct {
		fc  *fastCheck
		sch *jsonschema.Schema
	}
	var frags []compiled
	for _, frag := range simpleFragments {
		fc, sch := compileFragment(f, frag)
		frags = append(frags, compiled{fc, sch})
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v any
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if dec.Decode(&v) != nil {
			return
		}
		for i, c := range frags {
			checkFastReasons(t, p, simpleFragments[i], c.fc, c.sch, v)
		}
	})
}
