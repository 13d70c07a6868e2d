package jsonrpc

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Skeleton is the form under which a lenient decoder may take two member names for the same
// one: Unicode compatibility normalisation (NFKC: "ｓｙｍｂｏｌ" and "symbol"), simple case
// folding as strings.EqualFold and Go's encoding/json do it ("Symbol", "ſymbol" with a long s,
// the Kelvin sign for "k"), with format characters (zero-width space and joiners, the BOM),
// variation selectors and white space dropped. Two names with equal skeletons that are not
// byte for byte the same are a look-alike of one another: the gateway refuses such a name
// where it stands for a declared one, since the policy and the upstream would read different
// members.
func Skeleton(name string) string {
	ascii := true
	for i := 0; i < len(name); i++ {
		if name[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	var b strings.Builder
	b.Grow(len(name))
	if ascii {
		for i := 0; i < len(name); i++ {
			c := name[i]
			if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' {
				continue
			}
			b.WriteByte(upperASCII(c))
		}
		return b.String()
	}
	for _, r := range norm.NFKC.String(name) {
		if unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Variation_Selector, r) {
			continue
		}
		b.WriteRune(foldRune(r))
	}
	return b.String()
}
