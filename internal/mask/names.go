package mask

import (
	"bytes"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// nameList finds listed names in text: a name is a sequence of words, compared case-folded and
// in Unicode composed form, matched only as whole words.
type nameList struct {
	first map[string][]nameEntry // by the folded first word
	bloom bloom                  // of the folded first words, to pass most words by cheaply
}

type nameEntry struct {
	words []string // the folded words after the first
	canon string   // the name as the list spells it, spaces collapsed
}

// bloom is a 256-bit set of a word's first bytes and length.
type bloom [4]uint64

func bloomBit(w []byte) uint {
	h := uint(len(w)) * 31
	if len(w) > 0 {
		h += uint(w[0]) * 7
	}
	if len(w) > 1 {
		h += uint(w[1])
	}
	return h & 255
}

func (b *bloom) add(w string) { bit := bloomBit([]byte(w)); b[bit/64] |= 1 << (bit % 64) }
func (b *bloom) has(w []byte) bool {
	bit := bloomBit(w)
	return b[bit/64]&(1<<(bit%64)) != 0
}

// hasASCII is has of the ASCII word w folded, without folding it.
func (b *bloom) hasASCII(w []byte) bool {
	h := uint(len(w)) * 31
	if len(w) > 0 {
		h += uint(w[0]|caseBit(w[0])) * 7
	}
	if len(w) > 1 {
		h += uint(w[1] | caseBit(w[1]))
	}
	bit := h & 255
	return b[bit>>6]&(1<<(bit&63)) != 0
}

// caseBit is the bit that makes the ASCII capital c lower case, 0 for any other byte.
func caseBit(c byte) byte {
	if isUpper(c) {
		return 0x20
	}
	return 0
}

// find calls found with the span of every listed name in s and the name as the list spells
// it, leftmost first, the longest listed name first where two start at one word. Most words
// are passed by a look at the bloom filter, without folding them.
func (l *nameList) find(s []byte, found func(lo, hi int, canon string)) {
	var wbuf, nbuf [64]byte
	for lo, hi, ascii := nextWord(s, 0); lo >= 0; lo, hi, ascii = nextWord(s, hi) {
		var w []byte
		if ascii {
			if !l.bloom.hasASCII(s[lo:hi]) {
				continue
			}
			w = foldASCII(wbuf[:0], s[lo:hi])
		} else if w = foldWord(wbuf[:0], s[lo:hi]); !l.bloom.has(w) {
			continue
		}
		best, canon := -1, ""
		for _, e := range l.first[string(w)] {
			end, ok := hi, true
			for _, want := range e.words {
				nlo, nhi, _ := nextWord(s, end)
				if nlo < 0 || !onlySpace(s[end:nlo]) || string(foldWord(nbuf[:0], s[nlo:nhi])) != want {
					ok = false
					break
				}
				end = nhi
			}
			if ok && end > best {
				best, canon = end, e.canon
			}
		}
		if best > 0 {
			found(lo, best, canon)
			hi = best
		}
	}
}

// whole returns the list's spelling of s when s, but for white space around it, is exactly
// one listed name.
func (l *nameList) whole(s []byte) (string, bool) {
	t := bytes.TrimSpace(s)
	canon, ok := "", false
	l.find(t, func(lo, hi int, c string) {
		if lo == 0 && hi == len(t) {
			canon, ok = c, true
		}
	})
	return canon, ok
}

// onlySpace reports whether the bytes between two words of a name are white space (one or
// more spaces, tabs or line breaks), so that "Anna  Schmidt" is found as "Anna Schmidt".
func onlySpace(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	for _, c := range s {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

// nextWord returns the bounds of the first word of s at or after i, or -1, -1, and whether
// the word is ASCII: a word is a run of letters, marks and digits, with apostrophes and
// hyphens inside it ("O'Brien", "Jean-Luc").
func nextWord(s []byte, i int) (lo, hi int, ascii bool) {
	for i < len(s) {
		if c := s[i]; c < utf8.RuneSelf {
			if asciiWord[c] {
				break
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if isWordRune(r) {
			break
		}
		i += size
	}
	if i >= len(s) {
		return -1, -1, true
	}
	lo, ascii = i, true
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if asciiWord[c] || (c == '\'' || c == '-') && startsWord(s, i+1) {
				i++
				continue
			}
			break
		}
		r, size := utf8.DecodeRune(s[i:])
		if !isWordRune(r) && (r != '’' || !startsWord(s, i+size)) {
			break
		}
		ascii = false
		i += size
	}
	return lo, i, ascii
}

// startsWord reports whether a word character is at s[i].
func startsWord(s []byte, i int) bool {
	if i >= len(s) {
		return false
	}
	if s[i] < utf8.RuneSelf {
		return asciiWord[s[i]]
	}
	r, _ := utf8.DecodeRune(s[i:])
	return isWordRune(r)
}

var asciiWord = func() (t [utf8.RuneSelf]bool) {
	for c := range utf8.RuneSelf {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
	}
	return t
}()

func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
	}
	return unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsDigit(r)
}

// foldASCII appends the ASCII word w in lower case to dst.
func foldASCII(dst, w []byte) []byte {
	for _, c := range w {
		if isUpper(c) {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// foldWord appends w in composed form (NFC) and lower case to dst.
func foldWord(dst, w []byte) []byte {
	ascii := true
	for _, c := range w {
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return foldASCII(dst, w)
	}
	var nbuf [128]byte
	n := norm.NFC.Append(nbuf[:0], w...)
	for i := 0; i < len(n); {
		r, size := utf8.DecodeRune(n[i:])
		dst = utf8.AppendRune(dst, unicode.ToLower(r))
		i += size
	}
	return dst
}
