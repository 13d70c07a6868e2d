package mask

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/go-cmp/cmp"

	"github.com/mcpguard/mcpguard/internal/redact"
)

func testTokens(t testing.TB) *redact.Redactor {
	t.Helper()
	r, err := redact.New([]byte("a masking test key of 32 bytes.."), nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func paths(t testing.TB, ss ...string) []Path {
	t.Helper()
	var out []Path
	for _, s := range ss {
		p, err := ParsePath(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func testDetection(t testing.TB) *Detection {
	t.Helper()
	d, err := NewDetection([]string{"Anna Schmidt", "Nguyễn Thị Lan", "O'Brien"}, `\b[0-9]{8,13}\b`)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// structured is a result whose text block is its structuredContent serialised, as the SDKs
// write it.
func structured(t testing.TB, sc string) string {
	t.Helper()
	text, err := json.Marshal(sc)
	if err != nil {
		t.Fatal(err)
	}
	return `{"content":[{"type":"text","text":` + string(text) + `}],"structuredContent":` + sc + `}`
}

// decoded returns the structuredContent of a result and the text of its first block decoded as
// JSON (nil when it is not JSON).
func decoded(t testing.TB, res []byte) (sc, text any) {
	t.Helper()
	var r struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
		StructuredContent any `json:"structuredContent"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		t.Fatalf("the masked result is not JSON: %v\n%s", err, res)
	}
	if len(r.Content) > 0 {
		_ = json.Unmarshal([]byte(r.Content[0].Text), &text)
	}
	return r.StructuredContent, text
}

func TestApplyPaths(t *testing.T) {
	t.Parallel()
	tok := testTokens(t)
	nameToken := tok.Token([]byte("Anna Schmidt"))
	p := NewPlan([]*Rule{
		{Name: "identity", Action: Pseudonymise, Paths: paths(t, "$.full_name", "$.holdings[*].custodian")},
		{Name: "accounts", Action: Partial, Paths: paths(t, "$.iban", "$.account_number", "$.card", "$.email", "$.phone", "$.advisor", "$.pin", "$.rows[1]")},
		{Name: "private", Action: Drop, Paths: paths(t, "$.address", "$.holdings[0].note", "$.rows[0]", "$.absent")},
	}, testDetection(t))
	in := structured(t, `{"full_name":"Anna Schmidt","iban":"DE76370400444711081500","account_number":4711081500,`+
		`"card":"4111 1111 1111 1111","email":"anna.schmidt@example.com","phone":"+4915209876543","advisor":"nguyễn thị lan",`+
		`"pin":"123","address":{"street":"Friedrichstraße 123"},"rows":["a","b","c"],`+
		`"holdings":[{"symbol":"VNM","custodian":"Clearstream","note":"x"},{"symbol":"FPT","custodian":null,"note":"y"}]}`)
	out, st, err := p.Apply([]byte(in), &Options{Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"full_name":      nameToken,
		"iban":           "DE76 **** **** 1500",
		"account_number": "****1500",
		"card":           "**** **** **** 1111",
		"email":          "a***@example.com",
		"phone":          "+***********43",
		"advisor":        "N. T. L.",
		"pin":            "****",
		"rows":           []any{nil, "****", "c"},
		"holdings": []any{
			map[string]any{"symbol": "VNM", "custodian": tok.Token([]byte("Clearstream"))},
			map[string]any{"symbol": "FPT", "custodian": nil, "note": "y"},
		},
	}
	sc, text := decoded(t, out)
	if diff := cmp.Diff(want, sc); diff != "" {
		t.Errorf("structuredContent (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, text); diff != "" {
		t.Errorf("the text block, masked like structuredContent (-want +got):\n%s", diff)
	}
	// Each value counts once per copy; a null neither counts nor changes.
	if diff := cmp.Diff(Stats{"identity": 4, "accounts": 16, "private": 6}, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

func TestApplyDetectors(t *testing.T) {
	t.Parallel()
	tok := testTokens(t)
	d := testDetection(t)
	all := []Detector{IBAN, PaymentCard, Email, Phone, AccountNumber, Names}
	text := "Client ANNA  SCHMIDT (anna.schmidt@example.com, +49 152 0987 6543) pays from DE76 3704 0044 4711 0815 00 " +
		"with 4111-1111-1111-1111; account 4711081500. Mr O'Brien called. Annabel Schmidtke is someone else."
	for _, tt := range []struct {
		name   string
		action Action
		want   string
	}{
		{"pseudonymise", Pseudonymise, "Client " + tok.Token([]byte("Anna Schmidt")) + " (" + tok.Token([]byte("anna.schmidt@example.com")) +
			", " + tok.Token([]byte("+4915209876543")) + ") pays from " + tok.Token([]byte("DE76370400444711081500")) + " with " +
			tok.Token([]byte("4111111111111111")) + "; account " + tok.Token([]byte("4711081500")) + ". Mr " + tok.Token([]byte("O'Brien")) +
			" called. Annabel Schmidtke is someone else."},
		{"partial", Partial, "Client A. S. (a***@example.com, +***********43) pays from DE76 **** **** 1500 with **** **** **** 1111; " +
			"account ****1500. Mr O. called. Annabel Schmidtke is someone else."},
		{"drop", Drop, "Client [redacted] ([redacted], [redacted]) pays from [redacted] with [redacted]; account [redacted]. " +
			"Mr [redacted] called. Annabel Schmidtke is someone else."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPlan([]*Rule{{Name: "pii", Action: tt.action, Detectors: all}}, d)
			in := `{"content":[{"type":"text","text":` + quoteJSON(t, text) + `},{"type":"image","data":"AAAA"},` +
				`{"type":"resource","resource":{"uri":"file:///c.txt","text":` + quoteJSON(t, "Anna Schmidt") + `}}],"isError":false}`
			out, st, err := p.Apply([]byte(in), &Options{Token: tok})
			if err != nil {
				t.Fatal(err)
			}
			var r struct {
				Content []struct {
					Type, Text, Data string
					Resource         struct{ Text string }
				}
				IsError *bool
			}
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatal(err)
			}
			if r.Content[0].Text != tt.want {
				t.Errorf("text\n got %s\nwant %s", r.Content[0].Text, tt.want)
			}
			if r.Content[1].Data != "AAAA" || r.IsError == nil || *r.IsError {
				t.Errorf("other members changed: %s", out)
			}
			if r.Content[2].Resource.Text == "Anna Schmidt" {
				t.Errorf("the embedded resource's text is not masked: %s", out)
			}
			if st["pii"] != 8 {
				t.Errorf("stats %v, want 8 values masked by pii", st)
			}
		})
	}
}

func quoteJSON(t testing.TB, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestApplyDetectorsInStructured: with a detector named, every string of structuredContent is
// looked into (escapes decoded first), numbers that are whole data and member names too.
func TestApplyDetectorsInStructured(t *testing.T) {
	t.Parallel()
	tok := testTokens(t)
	p := NewPlan([]*Rule{
		{Name: "emails", Action: Pseudonymise, Detectors: []Detector{Email}},
		{Name: "cards", Action: Partial, Detectors: []Detector{PaymentCard}},
		{Name: "ibans", Action: Drop, Detectors: []Detector{IBAN}},
	}, nil)
	in := `{"structuredContent":{"contacts":{"anna\u0040example.com":{"note":"write to bob@example.com"}},` +
		`"card":4111111111111111,"n":12345678,"ibans":{"DE76370400444711081500":1,"x":"DE76370400444711081500"}}}`
	out, st, err := p.Apply([]byte(in), &Options{Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"structuredContent":{"contacts":{"` + tok.Token([]byte("anna@example.com")) + `":{"note":"write to ` +
		tok.Token([]byte("bob@example.com")) + `"}},"card":"**** **** **** 1111","n":12345678,"ibans":{"x":"[redacted]"}}}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
	if diff := cmp.Diff(Stats{"emails": 2, "cards": 1, "ibans": 2}, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

// TestMostRestrictiveWins: where two rules select one value, drop beats pseudonymise beats
// partial, and the winner counts.
func TestMostRestrictiveWins(t *testing.T) {
	t.Parallel()
	tok := testTokens(t)
	p := NewPlan([]*Rule{
		{Name: "partial", Action: Partial, Paths: paths(t, "$.a", "$.b", "$.c[*]"), Detectors: []Detector{Email}},
		{Name: "pseudo", Action: Pseudonymise, Paths: paths(t, "$.b", "$.*"), Detectors: []Detector{Email}},
		{Name: "drop", Action: Drop, Paths: paths(t, "$.c[1]")},
	}, nil)
	out, st, err := p.Apply([]byte(`{"structuredContent":{"a":"12345678","b":"x","c":["p","q"]}}`), &Options{Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"structuredContent":{"a":"` + tok.Token([]byte("12345678")) + `","b":"` + tok.Token([]byte("x")) + `","c":["` +
		tok.Token([]byte("p")) + `","` + tok.Token([]byte("q")) + `"]}}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
	if diff := cmp.Diff(Stats{"pseudo": 4}, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	// $.c[1] dropped: a terminal deeper than another terminal never applies ($.* masks c whole).
	p = NewPlan([]*Rule{{Name: "drop", Action: Drop, Paths: paths(t, "$.c[1]")}, {Name: "partial", Action: Partial, Paths: paths(t, "$.c[*]")}}, nil)
	out, _, _ = p.Apply([]byte(`{"structuredContent":{"c":["p","q"]}}`), nil)
	if string(out) != `{"structuredContent":{"c":["****",null]}}` {
		t.Errorf("got %s", out)
	}
}

// TestWithoutKey: without a Tokenizer, pseudonymise never falls back to an unkeyed hash.
func TestWithoutKey(t *testing.T) {
	t.Parallel()
	p := NewPlan([]*Rule{
		{Name: "ids", Action: Pseudonymise, Paths: paths(t, "$.name"), Detectors: []Detector{Email}},
	}, nil)
	out, st, err := p.Apply([]byte(`{"structuredContent":{"name":"Anna","mail":"a@example.com","a@example.com":1},"content":[]}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"structuredContent":{"name":"[redacted]","mail":"[redacted]"},"content":[]}`; string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
	if st["ids"] != 3 {
		t.Errorf("stats %v", st)
	}
}

// TestApplyUnchanged: a result nothing selects is returned as it is, the same bytes, with no
// stats; so is every result under a nil plan.
func TestApplyUnchanged(t *testing.T) {
	t.Parallel()
	p := NewPlan([]*Rule{{Name: "r", Action: Drop, Paths: paths(t, "$.iban")}}, nil)
	for _, in := range []string{
		`{"content":[{"type":"text","text":"no JSON here: {"}]}`,
		` {"content" : [ {"type":"text","text":"{\"a\": 1}"} ] , "structuredContent" : {"a" : [1, 2.5e3, true, null]} } `,
		`{}`,
		`{"content":[{"type":"text","text":"[1,2"}],"isError":true}`,
	} {
		out, st, err := p.Apply([]byte(in), nil)
		if err != nil || st != nil || string(out) != in {
			t.Errorf("Apply(%s) = %s, %v, %v; want it unchanged", in, out, st, err)
		}
		out, st, err = (*Plan)(nil).Apply([]byte(in), nil)
		if err != nil || st != nil || string(out) != in {
			t.Errorf("nil plan: Apply(%s) = %s, %v, %v", in, out, st, err)
		}
	}
}

func TestApplyErrors(t *testing.T) {
	t.Parallel()
	p := NewPlan([]*Rule{{Name: "r", Action: Pseudonymise, Paths: paths(t, "$.a"), Detectors: []Detector{Email}}}, nil)
	deep := `{"structuredContent":` + strings.Repeat(`[`, 70) + strings.Repeat(`]`, 70) + `}`
	for _, tt := range []struct {
		in   string
		opts *Options
		want error
	}{
		{`[1]`, nil, ErrNotResult},
		{``, nil, ErrNotResult},
		{`{"structuredContent":{"a":"x"}`, nil, ErrInvalid},
		{`{"structuredContent":{"a":"x"}} x`, nil, ErrInvalid},
		{`{"structuredContent":{"a":"\x01"}}`, nil, ErrInvalid},
		{`{"structuredContent":{"a":"\ud800"}}`, nil, ErrInvalid},
		{"{\"structuredContent\":{\"b\":\"\xff\"}}", nil, ErrInvalid},
		{`{"structuredContent":{"b":01}}`, nil, ErrInvalid},
		{`{"isError":tru}`, nil, ErrInvalid},
		{deep, nil, ErrTooDeep},
		{`{"structuredContent":{"a":"x"}}`, &Options{MaxBytes: 10}, ErrTooLarge},
		{`{"structuredContent":{"a":"0123456789"}}`, &Options{MaxBytes: 45, Token: testTokens(t)}, ErrTooLarge}, // the token is longer
	} {
		if _, _, err := p.Apply([]byte(tt.in), tt.opts); !errors.Is(err, tt.want) {
			t.Errorf("Apply(%.60s) error %v, want %v", tt.in, err, tt.want)
		}
	}
}

// TestIdempotent: masking a masked result masks nothing more.
func TestIdempotent(t *testing.T) {
	t.Parallel()
	tok := testTokens(t)
	d := testDetection(t)
	all := []Detector{IBAN, PaymentCard, Email, Phone, AccountNumber, Names}
	in := structured(t, `{"full_name":"Anna Schmidt","iban":"DE76370400444711081500","card":"4111111111111111","email":"anna@example.com",`+
		`"phone":"+4915209876543","who":"Nguyễn Thị Lan","n":4711081500,"short":"ab","list":[{"x":"O'Brien"}],"note":"mail anna@example.com"}`)
	for _, a := range []Action{Partial, Pseudonymise, Drop} {
		for _, tok := range []Tokenizer{tok, nil} {
			p := NewPlan([]*Rule{
				{Name: "paths", Action: a, Paths: paths(t, "$.full_name", "$.iban", "$.card", "$.email", "$.phone", "$.who", "$.n", "$.short", "$.list[*].x")},
				{Name: "text", Action: a, Detectors: all},
			}, d)
			once, _, err := p.Apply([]byte(in), &Options{Token: tok})
			if err != nil {
				t.Fatal(err)
			}
			twice, st, err := p.Apply(once, &Options{Token: tok})
			if err != nil || !bytes.Equal(once, twice) || st != nil {
				t.Errorf("%v (token %v): masking again changed %v\nonce  %s\ntwice %s", a, tok != nil, st, once, twice)
			}
		}
	}
}

// TestOutputIsValid checks the masked results of the tests above with the strict reference
// parser: valid UTF-8, no duplicate names.
func TestOutputIsValid(t *testing.T) {
	t.Parallel()
	p := NewPlan([]*Rule{{Name: "r", Action: Pseudonymise, Detectors: []Detector{Email}}}, nil)
	// Two names that hold the same address would become one token: the second is a duplicate
	// only if tokens collide, which keyed HMAC makes as likely as a collision of SHA-256.
	out, _, err := p.Apply([]byte(`{"structuredContent":{"a@example.com":1,"b@example.com":2,"c":"\u2028<&>"}}`), &Options{Token: testTokens(t)})
	if err != nil {
		t.Fatal(err)
	}
	if v := jsontext.Value(out); !v.IsValid() {
		err := v.Compact()
		t.Errorf("%s: %v", out, err)
	}
}
