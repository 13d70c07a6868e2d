// Package redact replaces secrets and personal data in JSON values with keyed HMAC tokens before
// anything is stored or logged.
package redact

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"sort"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// TokenPrefix starts every replacement value.
const TokenPrefix = "hmac:"

// Defaults for Options.
const (
	DefaultMaxDepth = 64
	DefaultMaxBytes = 4 << 20
)

// DefaultSensitiveKeys are the object keys whose values are always replaced. A key matches when
// its normalized form (lower case, without '_', '-', '.' and spaces) equals or ends with one of
// these, so "DB_Password", "x-api-key" and "githubToken" all match, while "max_tokens" does not.
func DefaultSensitiveKeys() []string {
	return []string{"password", "passwd", "pwd", "passphrase", "secret", "token", "apikey", "accesskey",
		"privatekey", "authorization", "auth", "credential", "credentials", "cookie", "session",
		"sessionid", "ssn", "cardnumber", "creditcard", "cvv", "cvc", "pin", "otp",
	}
}

// Errors returned by Redactor.JSON. Redactor.Value never returns them: it replaces the whole
// value instead.
var (
	ErrTooLarge = errors.New("redact: value too large")
	ErrTooDeep  = errors.New("redact: value nested too deeply")
)

// Options configures a Redactor. The zero value uses the defaults.
type Options struct {
	// SensitiveKeys replaces DefaultSensitiveKeys() when non-nil.
	SensitiveKeys []string
	// ExtraSensitiveKeys are added to the sensitive keys.
	ExtraSensitiveKeys []string
	// AllowKeys are kept in clear: neither key rules nor detectors apply to their values
	// (matched like sensitive keys, but exactly).
	AllowKeys []string
	// MaxDepth bounds nesting (default DefaultMaxDepth); MaxBytes bounds the input
	// (default DefaultMaxBytes).
	MaxDepth int
	MaxBytes int
	// DisableDetectors names built-in detectors to switch off (e.g. "phone").
	DisableDetectors []string
}

// Stats counts what one call replaced, by reason ("key" or a detector name).
type Stats map[string]int

// Redactor replaces sensitive values. It is safe for concurrent use.
type Redactor struct {
	key       []byte
	sensitive []string
	allow     map[string]bool
	detectors []detector
	maxDepth  int
	maxBytes  int
	macs      sync.Pool
}

// New returns a Redactor whose tokens are keyed by key (at least 16 bytes; keep it secret and
// stable, or tokens stop correlating).
func New(key []byte, opts *Options) (*Redactor, error) {
	if len(key) < 16 {
		return nil, fmt.Errorf("redact: the HMAC key has %d bytes, need at least 16", len(key))
	}
	if opts == nil {
		opts = &Options{}
	}
	r := &Redactor{key: bytes.Clone(key), allow: map[string]bool{}, maxDepth: opts.MaxDepth, maxBytes: opts.MaxBytes}
	if r.maxDepth <= 0 {
		r.maxDepth = DefaultMaxDepth
	}
	if r.maxBytes <= 0 {
		r.maxBytes = DefaultMaxBytes
	}
	keys := DefaultSensitiveKeys()
	if opts.SensitiveKeys != nil {
		keys = opts.SensitiveKeys
	}
	for _, k := range append(append([]string{}, keys...), opts.ExtraSensitiveKeys...) {
		if n := normalizeKey(k); n != "" {
			r.sensitive = append(r.sensitive, n)
		}
	}
	for _, k := range opts.AllowKeys {
		r.allow[normalizeKey(k)] = true
	}
	off := map[string]bool{}
	for _, d := range opts.DisableDetectors {
		off[d] = true
	}
	for _, d := range newDetectors() {
		if off[d.name] {
			delete(off, d.name)
			continue
		}
		r.detectors = append(r.detectors, d)
	}
	if len(off) > 0 {
		names := make([]string, 0, len(off))
		for n := range off {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("redact: unknown detectors %s", strings.Join(names, ", "))
	}
	r.macs.New = func() any { return hmac.New(sha256.New, r.key) }
	return r, nil
}

// Token returns the replacement for value: TokenPrefix and 128 bits of HMAC-SHA256 in hex. The
// same value always gives the same token under the same key.
func (r *Redactor) Token(value []byte) string {
	m := r.macs.Get().(hash.Hash)
	m.Reset()
	m.Write(value)
	var sum [sha256.Size]byte
	s := m.Sum(sum[:0])
	r.macs.Put(m)
	var out [len(TokenPrefix) + 32]byte
	copy(out[:], TokenPrefix)
	hex.Encode(out[len(TokenPrefix):], s[:16])
	return string(out[:])
}

// Value redacts a JSON value and never fails: input that is not valid JSON, or exceeds the
// bounds, is replaced as a whole by a JSON string holding its token.
func (r *Redactor) Value(raw []byte) ([]byte, Stats) {
	out, st, err := r.JSON(raw)
	if err == nil {
		return out, st
	}
	tok, _ := jsontext.AppendQuote(nil, r.Token(raw))
	return tok, Stats{"invalid": 1}
}

// JSON redacts a JSON value and returns it compact, with object members in their input order.
func (r *Redactor) JSON(raw []byte) ([]byte, Stats, error) {
	if len(raw) > r.maxBytes {
		return nil, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw), r.maxBytes)
	}
	src := sources.Get().(*source)
	defer src.release()
	src.buf = *bytes.NewBuffer(raw)
	src.dec.Reset(&src.buf)
	w := walker{r: r, stats: Stats{}, dec: &src.dec}
	w.out = make([]byte, 0, len(raw)+16)
	if err := w.value(false); err != nil {
		return nil, nil, err
	}
	if _, err := w.dec.ReadToken(); err == nil {
		return nil, nil, errors.New("redact: trailing data after the JSON value")
	}
	if len(w.stats) == 0 {
		w.stats = nil
	}
	return w.out, w.stats, nil
}

// source is a decoder reading straight from the value being redacted: given a bytes.Buffer, it
// parses the value's bytes where they are, with no copy into a buffer of its own. Decoders are
// reused across calls; a released one holds nothing of the value it read.
type source struct {
	buf bytes.Buffer
	dec jsontext.Decoder
}

var sources = sync.Pool{New: func() any { return new(source) }}

func (s *source) release() {
	s.buf = bytes.Buffer{}
	s.dec.Reset(&s.buf)
	sources.Put(s)
}

type walker struct {
	r     *Redactor
	dec   *jsontext.Decoder
	out   []byte
	stats Stats
}

// value copies the next value to out. clear keeps it as it is (an allow-listed key).
func (w *walker) value(clear bool) error {
	if w.dec.StackDepth() >= w.r.maxDepth {
		return fmt.Errorf("%w: more than %d levels", ErrTooDeep, w.r.maxDepth)
	}
	switch w.dec.PeekKind() {
	case jsontext.KindBeginObject:
		if _, err := w.dec.ReadToken(); err != nil {
			return err
		}
		w.out = append(w.out, '{')
		first := true
		for w.dec.PeekKind() != jsontext.KindEndObject {
			name, err := w.dec.ReadToken()
			if err != nil {
				return err
			}
			if !first {
				w.out = append(w.out, ',')
			}
			first = false
			// Names are data too: an e-mail address or a card number can be a key.
			shown := name.String()
			key := normalizeKey(shown)
			if !clear {
				shown = w.scan(shown)
			}
			if w.out, err = jsontext.AppendQuote(w.out, shown); err != nil {
				return err
			}
			w.out = append(w.out, ':')
			switch {
			case clear || w.r.allow[key]:
				err = w.value(true)
			case w.r.isSensitive(key):
				err = w.replace()
			default:
				err = w.value(false)
			}
			if err != nil {
				return err
			}
		}
		if _, err := w.dec.ReadToken(); err != nil {
			return err
		}
		w.out = append(w.out, '}')
		return nil
	case jsontext.KindBeginArray:
		if _, err := w.dec.ReadToken(); err != nil {
			return err
		}
		w.out = append(w.out, '[')
		first := true
		for w.dec.PeekKind() != jsontext.KindEndArray {
			if !first {
				w.out = append(w.out, ',')
			}
			first = false
			if err := w.value(clear); err != nil {
				return err
			}
		}
		if _, err := w.dec.ReadToken(); err != nil {
			return err
		}
		w.out = append(w.out, ']')
		return nil
	case jsontext.KindString:
		tok, err := w.dec.ReadToken()
		if err != nil {
			return err
		}
		s := tok.String()
		if !clear {
			s = w.scan(s)
		}
		w.out, err = jsontext.AppendQuote(w.out, s)
		return err
	case jsontext.KindNumber:
		v, err := w.dec.ReadValue()
		if err != nil {
			return err
		}
		if !clear && isDigits(v) && Luhn(v) {
			w.stats["payment_card"]++
			w.out, err = jsontext.AppendQuote(w.out, w.r.Token(v))
			return err
		}
		w.out = append(w.out, v...)
		return nil
	default:
		v, err := w.dec.ReadValue()
		if err != nil {
			return err
		}
		w.out = append(w.out, v...)
		return nil
	}
}

// replace swaps the next value, whatever its type, for its token; null stays null.
func (w *walker) replace() error {
	if w.dec.PeekKind() == jsontext.KindString {
		tok, err := w.dec.ReadToken()
		if err != nil {
			return err
		}
		w.stats["key"]++
		w.out, err = jsontext.AppendQuote(w.out, w.r.Token([]byte(tok.String())))
		return err
	}
	v, err := w.dec.ReadValue()
	if err != nil {
		return err
	}
	if w.dec.StackDepth()+nesting(v) > w.r.maxDepth {
		return fmt.Errorf("%w: more than %d levels", ErrTooDeep, w.r.maxDepth)
	}
	if string(v) == "null" {
		w.out = append(w.out, v...)
		return nil
	}
	w.stats["key"]++
	c := v.Clone()
	if err := c.Compact(); err != nil {
		return err
	}
	w.out, err = jsontext.AppendQuote(w.out, w.r.Token(c))
	return err
}

type span struct{ lo, hi int }

// scan replaces every detected secret or personal datum in s by its token.
func (w *walker) scan(s string) string {
	return replaceFound(w.r.detectors, s, w.stats, func(_, match string) string { return w.r.Token([]byte(match)) })
}

// replaceFound replaces every span of s that one of detectors finds (the first detector to find
// a span wins it) by what replace returns for it, counting the spans in stats by detector.
func replaceFound(detectors []detector, s string, stats Stats, replace func(name, match string) string) string {
	if len(s) < 6 {
		return s
	}
	digits := CountDigits(s)
	type found struct {
		span
		name string
	}
	var spans []span
	var finds []found
	for i := range detectors {
		d := &detectors[i]
		if !d.want(s, digits) {
			continue
		}
		for _, m := range d.re.FindAllStringIndex(s, -1) {
			if d.valid != nil && !d.valid(s[m[0]:m[1]]) {
				continue
			}
			if overlaps(spans, m[0], m[1]) {
				continue
			}
			stats[d.name]++
			spans = append(spans, span{m[0], m[1]})
			finds = append(finds, found{span{m[0], m[1]}, d.name})
		}
	}
	if len(finds) == 0 {
		return s
	}
	sort.Slice(finds, func(i, j int) bool { return finds[i].lo < finds[j].lo })
	var b strings.Builder
	b.Grow(len(s))
	at := 0
	for _, f := range finds {
		b.WriteString(s[at:f.lo])
		b.WriteString(replace(f.name, s[f.lo:f.hi]))
		at = f.hi
	}
	b.WriteString(s[at:])
	return b.String()
}

func overlaps(spans []span, lo, hi int) bool {
	for _, s := range spans {
		if lo < s.hi && s.lo < hi {
			return true
		}
	}
	return false
}

func (r *Redactor) isSensitive(key string) bool {
	for _, k := range r.sensitive {
		if strings.HasSuffix(key, k) {
			return true
		}
	}
	return false
}

func normalizeKey(k string) string {
	b := make([]byte, 0, len(k))
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_' || c == '-' || c == '.' || c == ' ':
		case c >= 'A' && c <= 'Z':
			b = append(b, c+'a'-'A')
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

func isDigits(v []byte) bool {
	if len(v) < 13 || len(v) > 19 {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// nesting returns how deeply a valid JSON value nests objects and arrays.
func nesting(v []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}
