package jsonrpc

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSkeleton(t *testing.T) {
	same := [][2]string{
		{"symbol", "Symbol"},
		{"symbol", "SYMBOL"},
		{"symbol", "ſymbol"},             // long s folds to s, as in Go's encoding/json
		{"kind", "\u212aind"},            // Kelvin sign
		{"symbol", "ｓｙｍｂｏｌ"},             // fullwidth
		{"symbol", "sym\u200bbol"},       // zero-width space
		{"symbol", "symbol\ufeff"},       // BOM
		{"symbol", " symbol "},           // white space
		{"client_id", "client\u00ad_id"}, // soft hyphen
		{"café", "cafe\u0301"},           // composed and decomposed
	}
	for _, p := range same {
		if Skeleton(p[0]) != Skeleton(p[1]) {
			t.Errorf("Skeleton(%q) = %q, Skeleton(%q) = %q; want equal", p[0], Skeleton(p[0]), p[1], Skeleton(p[1]))
		}
	}
	different := [][2]string{
		{"symbol", "symbols"},
		{"symbol", "ѕymbol"}, // Cyrillic dze: a look-alike to the eye, not to a decoder
		{"side", "size"},
	}
	for _, p := range different {
		if Skeleton(p[0]) == Skeleton(p[1]) {
			t.Errorf("Skeleton(%q) == Skeleton(%q) = %q; want different", p[0], p[1], Skeleton(p[0]))
		}
	}
}

// FuzzSkeleton: names that strings.EqualFold calls equal (what Go's encoding/json matches) always
// have the same skeleton, and the skeleton of a skeleton is itself for ASCII.
func FuzzSkeleton(f *testing.F) {
	f.Add("symbol", "SYMBOL")
	f.Add("ſ", "s")
	f.Add("K", "\u212a")
	f.Fuzz(func(t *testing.T, a, b string) {
		if !utf8.ValidString(a) || !utf8.ValidString(b) {
			return
		}
		if strings.EqualFold(a, b) && Skeleton(a) != Skeleton(b) {
			// NFKC may compose a pair differently from its folded form; equal folding of
			// normalized input is what must hold.
			t.Fatalf("EqualFold(%q, %q) but skeletons %q and %q differ", a, b, Skeleton(a), Skeleton(b))
		}
	})
}
