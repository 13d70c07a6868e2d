package mask

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePath(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		path string
		want []segment
	}{
		{"$.iban", []segment{{kind: segMember, name: "iban"}}},
		{"$.holdings[*].client_name", []segment{{kind: segMember, name: "holdings"}, {kind: segAny}, {kind: segMember, name: "client_name"}}},
		{"$.a.*", []segment{{kind: segMember, name: "a"}, {kind: segAny}}},
		{`$["full name"]`, []segment{{kind: segMember, name: "full name"}}},
		{`$["a\"b\u00e9"]`, []segment{{kind: segMember, name: `a"bé`}}},
		{"$['x.y']", []segment{{kind: segMember, name: "x.y"}}},
		{"$.rows[0][12]", []segment{{kind: segMember, name: "rows"}, {kind: segIndex}, {kind: segIndex, index: 12}}},
		{"$.a-b_c9", []segment{{kind: segMember, name: "a-b_c9"}}},
	} {
		p, err := ParsePath(tt.path)
		if err != nil {
			t.Errorf("ParsePath(%q): %v", tt.path, err)
			continue
		}
		if diff := cmp.Diff(tt.want, p.segs, cmp.AllowUnexported(segment{})); diff != "" {
			t.Errorf("ParsePath(%q) (-want +got):\n%s", tt.path, diff)
		}
		if p.String() != tt.path {
			t.Errorf("String() = %q, want %q", p.String(), tt.path)
		}
	}
}

func TestParsePathRefuses(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ path, want string }{
		{"", `starts with "$"`},
		{"iban", `starts with "$"`},
		{"$", `"$" alone`},
		{"$..iban", "descendants"},
		{"$.", "names nothing"},
		{"$.9lives", "cannot start a name"},
		{"$[", "unclosed"},
		{"$[-1]", "negative"},
		{"$[0:2]", "slices"},
		{"$[?(@.a)]", "filters"},
		{"$[01]", "leading zero"},
		{"$[99999999999]", "out of range"},
		{`$["a]`, "unclosed"},
		{`$["\x"]`, "not a valid JSON string"},
		{`$['a\'b']`, "no escapes"},
		{"$iban", "a segment starts with"},
		{"$.a[*", `expected "]"`},
		{"$" + strings.Repeat(".a", MaxPathSegments+1), "segments"},
		{"$." + strings.Repeat("a", MaxPathBytes), "bytes"},
		{"$.\xff", "UTF-8"},
	} {
		_, err := ParsePath(tt.path)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParsePath(%q) = %v, want an error about %q", tt.path, err, tt.want)
		}
	}
}
