package demo

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"strconv"
	"strings"
)

// stream is a deterministic source of numbers derived from a SHA-256 of its key. Unlike
// math/rand, its output is fixed by this code alone, so fake data never changes between
// Go releases: the n-th number is the first 8 bytes of SHA-256(seed || n).
type stream struct {
	seed [sha256.Size]byte
	n    uint64
}

// newStream returns the stream for the given key parts. Parts are length-prefixed, so
// ("ab","c") and ("a","bc") give different streams.
func newStream(parts ...string) *stream {
	h := sha256.New()
	var l [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(l[:], uint64(len(p)))
		h.Write(l[:])
		h.Write([]byte(p))
	}
	s := &stream{}
	h.Sum(s.seed[:0])
	return s
}

func (s *stream) uint64() uint64 {
	var b [sha256.Size + 8]byte
	copy(b[:], s.seed[:])
	binary.BigEndian.PutUint64(b[sha256.Size:], s.n)
	s.n++
	sum := sha256.Sum256(b[:])
	return binary.BigEndian.Uint64(sum[:8])
}

// between returns a number in [lo, hi).
func (s *stream) between(lo, hi float64) float64 {
	return lo + (hi-lo)*float64(s.uint64()>>11)/(1<<53)
}

// intBetween returns an integer in [lo, hi].
func (s *stream) intBetween(lo, hi int64) int64 {
	return lo + int64(s.uint64()%uint64(hi-lo+1))
}

// round rounds x to the given number of decimal places.
func round(x float64, places int) float64 {
	p := math.Pow10(places)
	return math.Round(x*p) / p
}

// iban returns the IBAN for a country code and BBAN, with check digits computed as in
// ISO 13616 (mod 97 of the rearranged number equals 1).
func iban(country, bban string) string {
	check := 98 - mod97(bban+country+"00")
	return country + strconv.FormatInt(100+int64(check), 10)[1:] + bban
}

// mod97 returns the value of s modulo 97, reading letters as 10..35 (A..Z) as ISO 13616
// prescribes. s must contain only digits and upper-case letters.
func mod97(s string) int {
	r := 0
	for _, c := range strings.ToUpper(s) {
		switch {
		case c >= '0' && c <= '9':
			r = (r*10 + int(c-'0')) % 97
		case c >= 'A' && c <= 'Z':
			r = (r*100 + int(c-'A') + 10) % 97
		}
	}
	return r
}
