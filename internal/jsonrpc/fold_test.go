package jsonrpc

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// TestFoldRuneMatchesEqualFold checks, for every rune, that foldRune is constant on the rune's
// case-folding orbit and lands inside it, which makes foldRune equality the same relation as
// strings.EqualFold on single runes.
func TestFoldRuneMatchesEqualFold(t *testing.T) {
	t.Parallel()
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		f := foldRune(r)
		if !strings.EqualFold(string(r), string(f)) {
			t.Fatalf("foldRune(%U) = %U, not EqualFold to it", r, f)
		}
		for o := unicode.SimpleFold(r); o != r; o = unicode.SimpleFold(o) {
			if foldRune(o) != f {
				t.Fatalf("foldRune(%U) = %U but foldRune(%U) = %U", r, f, o, foldRune(o))
			}
		}
	}
}

func TestFoldEqual(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a, b string
	}{
		{name: "ascii", a: "Name", b: "name"},
		{name: "different length", a: "name", b: "names"},
		{name: "kelvin", a: "\u212a", b: "k"},
		{name: "long s", a: "\u017f", b: "S"},
		{name: "sigma", a: "ς", b: "Σ"},
		{name: "sharp s is not SS", a: "ß", b: "SS"},
		{name: "empty", a: "", b: ""},
		{name: "empty and not", a: "", b: "a"},
		{name: "digits", a: "a1", b: "A1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got, want := foldEqual([]byte(tt.a), tt.b), strings.EqualFold(tt.a, tt.b); got != want {
				t.Errorf("foldEqual(%q, %q) = %v, strings.EqualFold says %v", tt.a, tt.b, got, want)
			}
		})
	}
}

func TestHasSpecialStringByte(t *testing.T) {
	t.Parallel()
	for c := range 256 {
		for pos := range 8 {
			var buf [8]byte
			for i := range buf {
				buf[i] = 'a'
			}
			buf[pos] = byte(c)
			x := uint64(0)
			for i := 7; i >= 0; i-- {
				x = x<<8 | uint64(buf[i])
			}
			if got, want := hasSpecialStringByte(x), plainStringByte[c] != 'x'; got != want {
				t.Fatalf("byte %#x at %d: hasSpecialStringByte = %v, want %v", c, pos, got, want)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1_000_000 {
		x := rng.Uint64()
		if rng.IntN(2) == 0 {
			x &= 0x7f7f7f7f7f7f7f7f // mostly ASCII, where borrows between bytes matter
		}
		want := false
		for i := range 8 {
			want = want || plainStringByte[byte(x>>(8*i))] != 'x'
		}
		if got := hasSpecialStringByte(x); got != want {
			t.Fatalf("hasSpecialStringByte(%#016x) = %v, want %v", x, got, want)
		}
	}
}
