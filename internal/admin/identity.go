package admin

import (
	"strings"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// SameIdentity reports whether two names may name the same person, for the four-eyes rule: an
// operator must not approve a call made under a name that is, or looks like, their own. It
// errs towards "same" — a false match only means another operator must approve — so it compares
// skeletons, not strings:
//
//   - compatibility forms are decomposed (NFKD: fullwidth "ａｌｉｃｅ", ligatures, superscripts)
//     and case is folded ("Alice", "ALICE", "ǅ");
//   - marks, invisible format characters (zero-width joiners, bidi controls), spaces and the
//     separators . - _ are dropped ("a.lice", "al\u200bice", "alicé");
//   - letters that look like Latin ones are read as those: Cyrillic and Greek look-alikes
//     ("аlice" with a Cyrillic а), 0 as o, and 1, |, ı and i as l; "rn" reads as "m" and "vv"
//     as "w";
//   - a name with an @ is compared by its local part, without a +tag: "alice@corp.example",
//     "Alice+agent@other.example" and "alice" are the same.
//
// Two names different in any other way ("alice" and "alicia", "bob" and "rob") are different.
func SameIdentity(a, b string) bool {
	sa, sb := identityKey(a), identityKey(b)
	return sa != "" && sa == sb
}

// identityKey is the skeleton SameIdentity compares: the local part of an address, without a
// +tag, as its skeleton.
func identityKey(name string) string {
	s := skeleton(name)
	if local, _, ok := strings.Cut(s, "@"); ok {
		s = local
	}
	if local, _, ok := strings.Cut(s, "+"); ok {
		s = local
	}
	return s
}

// fold is Unicode full case folding; a cases.Caser holds state, so each use makes its own.
func fold(s string) string { return cases.Fold().String(s) }

// skeleton maps name to what it looks like (see SameIdentity).
func skeleton(name string) string {
	var b strings.Builder
	for _, r := range fold(norm.NFKD.String(name)) {
		switch {
		case unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf) || unicode.IsSpace(r):
			continue
		case r == '.' || r == '-' || r == '_':
			continue
		}
		if l, ok := lookalike[r]; ok {
			r = l
		}
		b.WriteRune(r)
	}
	return strings.NewReplacer("rn", "m", "vv", "w").Replace(b.String())
}

// lookalike reads a character as the Latin letter it resembles, in lower case (names are folded
// first, so an upper-case look-alike arrives as its lower-case form).
var lookalike = map[rune]rune{
	// Latin letters, digits and symbols easily taken for others.
	'0': 'o', '1': 'l', '|': 'l', 'i': 'l', 'ı': 'l', 'ł': 'l', 'ø': 'o', 'đ': 'd', 'ħ': 'h',
	// Cyrillic.
	'а': 'a', 'в': 'b', 'ь': 'b', 'г': 'r', 'е': 'e', 'һ': 'h', 'н': 'h', 'і': 'l', 'ӏ': 'l',
	'ј': 'j', 'к': 'k', 'м': 'm', 'о': 'o', 'п': 'n', 'р': 'p', 'с': 'c', 'ѕ': 's', 'т': 't',
	'у': 'y', 'х': 'x', 'ԁ': 'd', 'ԛ': 'q', 'ԝ': 'w',
	// Greek.
	'α': 'a', 'β': 'b', 'γ': 'y', 'ε': 'e', 'η': 'n', 'ι': 'l', 'κ': 'k', 'μ': 'm', 'ν': 'v',
	'ο': 'o', 'ρ': 'p', 'τ': 't', 'υ': 'u', 'χ': 'x', 'ω': 'w', 'ϲ': 'c', 'ζ': 'z',
}
