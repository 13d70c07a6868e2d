package mask

import (
	"bytes"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/go-cmp/cmp"
)

// FuzzParsePath: a path either fails to compile or compiles to segments that the text it
// keeps compiles to again; nothing panics.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"$.iban", "$.holdings[*].client_name", `$["a\"b"]`, "$['x y']", "$[0][12].*", "$..a", "$[-1]", "$[?(@)]", `$["\ud800"]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			return
		}
		if len(p.segs) == 0 || len(p.segs) > MaxPathSegments {
			t.Fatalf("%q compiled to %d segments", s, len(p.segs))
		}
		again, err := ParsePath(p.String())
		if err != nil {
			t.Fatalf("%q compiled, its String %q does not: %v", s, p.String(), err)
		}
		if diff := cmp.Diff(p.segs, again.segs, cmp.AllowUnexported(segment{})); diff != "" {
			t.Fatalf("%q: compiled twice differently:\n%s", s, diff)
		}
	})
}

// FuzzApply masks arbitrary results under a plan with every action, paths and detectors: it
// never panics; a result the strict reference parser (jsontext) accepts gives a masked result
// it accepts too; masking the masked result again changes nothing; a result nothing was masked
// in is returned as it is.
func FuzzApply(f *testing.F) {
	for _, s := range []string{
		`{"content":[{"type":"text","text":"Anna Schmidt, anna@example.com, DE76370400444711081500"}],"structuredContent":{"full_name":"Anna Schmidt","iban":"DE76370400444711081500"}}`,
		`{"content":[{"type":"text","text":"{\"full_name\":\"Anna Schmidt\",\"rows\":[{\"x\":4111111111111111}]}"}]}`,
		`{"structuredContent":{"rows":[{"x":"+4915209876543","y":null},{"anna@example.com":{"n":4711081500}}],"note":"hmac:0123456789abcdef0123456789abcdef"}}`,
		`{"content":[{"type":"resource","resource":{"text":"O'Brien [redacted] a***@example.com"}}],"isError":true}`,
		`{"structuredContent":[1,"x",{"a":[true,false]}]}`,
		`{"structuredContent":{"a":"\u00e9\ud83d\ude00\"\\"}}`,
		`not json`, `{"a":`, `[]`,
	} {
		f.Add([]byte(s))
	}
	tok := testTokens(f)
	d := testDetection(f)
	all := []Detector{IBAN, PaymentCard, Email, Phone, AccountNumber, Names}
	plan := NewPlan([]*Rule{
		{Name: "pseudo", Action: Pseudonymise, Paths: paths(f, "$.full_name", "$.rows[*].x", "$.a")},
		{Name: "partial", Action: Partial, Paths: paths(f, "$.iban", "$.rows[0].*", "$[1]")},
		{Name: "drop", Action: Drop, Paths: paths(f, "$.rows[1]", "$.note")},
		{Name: "detect", Action: Pseudonymise, Detectors: all[:3]},
		{Name: "detect-partial", Action: Partial, Detectors: all[3:]},
	}, d)
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, tk := range []Tokenizer{tok, nil} {
			opts := &Options{Token: tk, MaxBytes: 1 << 20}
			out, st, err := plan.Apply(in, opts)
			if err != nil {
				return
			}
			if st == nil && !bytes.Equal(out, in) {
				t.Fatalf("nothing counted, but the result changed:\n in %s\nout %s", in, out)
			}
			if jsontext.Value(in).IsValid() && !jsontext.Value(out).IsValid() {
				t.Fatalf("a valid result masked into invalid JSON:\n in %s\nout %s", in, out)
			}
			again, st2, err := plan.Apply(out, opts)
			if err != nil || !bytes.Equal(again, out) {
				t.Fatalf("masking again changed the result (%v, %v):\nonce  %s\ntwice %s", st2, err, out, again)
			}
		}
	})
}
