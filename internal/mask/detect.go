package mask

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mcpguard/mcpguard/internal/redact"
)

// Detector is a kind of personal datum found in text.
type Detector uint8

// The detectors, in the order they claim a span of text: when two would find overlapping
// spans, the earlier one wins it.
const (
	IBAN          Detector = iota // an IBAN whose ISO 13616 mod-97 check digits are right
	PaymentCard                   // 13 to 19 digits (spaces or dashes between) passing the Luhn check
	Email                         // an e-mail address
	Phone                         // an international (+…) or North American phone number of 8 to 15 digits
	AccountNumber                 // what Detection's account-number expression matches
	Names                         // a name from Detection's list, whatever its case
	numDetectors
)

var detectorNames = [numDetectors]string{"iban", "payment_card", "email", "phone", "account_number", "names"}

func (d Detector) String() string {
	if d < numDetectors {
		return detectorNames[d]
	}
	return "unknown"
}

// DetectorNames lists the detectors by the names policies use, in claiming order.
func DetectorNames() []string { return detectorNames[:] }

// ParseDetector returns the detector of a name in DetectorNames.
func ParseDetector(name string) (Detector, error) {
	for i, n := range detectorNames {
		if n == name {
			return Detector(i), nil
		}
	}
	return 0, fmt.Errorf("%q is not a detector; known: %s", name, strings.Join(detectorNames[:], ", "))
}

var (
	reIBAN  = regexp.MustCompile(`\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b`)
	reCard  = regexp.MustCompile(`\b\d(?:[ -]?\d){12,18}\b`)
	reEmail = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`)
	rePhone = regexp.MustCompile(`(?:\+\d[\d ().-]{6,18}\d|\(\d{3}\) ?\d{3}[ .-]\d{4}|\b\d{3}[.-]\d{3}[.-]\d{4}\b)`)
)

// Detection is what the names and account-number detectors look for. It is immutable.
type Detection struct {
	names   *nameList
	account *regexp.Regexp
}

// Bounds of a Detection.
const (
	// MaxNames bounds the list of names.
	MaxNames = 100_000
	// maxNameWords bounds the words of one listed name.
	maxNameWords = 16
)

// NewDetection compiles a list of names (each matched as a whole sequence of words, without
// regard to case or Unicode composition; see CheckName) and an RE2 expression for account
// numbers ("" when none: the account_number detector then finds nothing; see
// CheckAccountNumbers). The error lists every problem.
func NewDetection(names []string, accountNumbers string) (*Detection, error) {
	d := &Detection{}
	var errs []error
	if len(names) > MaxNames {
		errs = append(errs, fmt.Errorf("%d names; at most %d", len(names), MaxNames))
		names = names[:MaxNames]
	}
	if len(names) > 0 {
		l := &nameList{first: map[string][]nameEntry{}}
		for i, n := range names {
			words, err := nameWords(n)
			if err != nil {
				errs = append(errs, fmt.Errorf("names[%d]: %w", i, err))
				continue
			}
			canon := strings.Join(strings.Fields(n), " ")
			l.first[words[0]] = append(l.first[words[0]], nameEntry{words: words[1:], canon: canon})
			l.bloom.add(words[0])
		}
		d.names = l
	}
	if accountNumbers != "" {
		re, err := compileAccountNumbers(accountNumbers)
		if err != nil {
			errs = append(errs, err)
		}
		d.account = re
	}
	return d, errors.Join(errs...)
}

// CheckName says what is wrong with a name for the names detector: it must have a word (letters
// or digits) and at most 16.
func CheckName(name string) error {
	_, err := nameWords(name)
	return err
}

func nameWords(n string) ([]string, error) {
	var words []string
	var buf []byte
	for lo, hi, _ := nextWord([]byte(n), 0); lo >= 0; lo, hi, _ = nextWord([]byte(n), hi) {
		buf = foldWord(buf[:0], []byte(n[lo:hi]))
		words = append(words, string(buf))
	}
	switch {
	case len(words) == 0:
		return nil, fmt.Errorf("%q has no word to look for", n)
	case len(words) > maxNameWords:
		return nil, fmt.Errorf("%q has more than %d words", n, maxNameWords)
	}
	return words, nil
}

// CheckAccountNumbers says what is wrong with an expression for the account_number detector.
func CheckAccountNumbers(expr string) error {
	_, err := compileAccountNumbers(expr)
	return err
}

func compileAccountNumbers(expr string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(expr)
	switch {
	case err != nil:
		return nil, fmt.Errorf("not an RE2 expression: %v", err)
	case re.MatchString(""):
		return nil, fmt.Errorf("%q matches the empty string", expr)
	}
	return re, nil
}

// span is a detected datum in a string: s[lo:hi], found by det.
type span struct {
	lo, hi int
	det    Detector
}

// find appends to spans what the enabled detectors find in s, in claiming order, leaving out
// spans that overlap an earlier one or a mask already in place (a token or "[redacted]"), so
// that masking masked text changes nothing.
func (d *Detection) find(s []byte, on *[numDetectors]detAction, spans []span) []span {
	if len(s) < 2 {
		return spans
	}
	digits := redact.CountDigits(s)
	var kept [4]span
	var protected []span // found when first needed
	checked := false
	start := len(spans)
	add := func(lo, hi int, det Detector) {
		if !checked {
			checked = true
			if bytes.Contains(s, tokenPrefix) || bytes.Contains(s, dropped) {
				protected = protectedSpans(s, kept[:0])
			}
		}
		for _, p := range protected {
			if lo < p.hi && p.lo < hi {
				return
			}
		}
		for _, o := range spans[start:] {
			if lo < o.hi && o.lo < hi {
				return
			}
		}
		spans = append(spans, span{lo, hi, det})
	}
	re := func(det Detector, re *regexp.Regexp, valid func([]byte) bool) {
		for _, m := range re.FindAllIndex(s, -1) {
			if valid == nil || valid(s[m[0]:m[1]]) {
				add(m[0], m[1], det)
			}
		}
	}
	if on[IBAN].act != 0 && digits >= 4 && redact.HasIBANStart(s) {
		re(IBAN, reIBAN, redact.IBANValid[[]byte])
	}
	if on[PaymentCard].act != 0 && digits >= 13 {
		re(PaymentCard, reCard, redact.Luhn[[]byte])
	}
	if on[Email].act != 0 && bytes.IndexByte(s, '@') > 0 {
		re(Email, reEmail, nil)
	}
	if on[Phone].act != 0 && digits >= 8 {
		re(Phone, rePhone, redact.PhoneValid[[]byte])
	}
	if on[AccountNumber].act != 0 && d.account != nil && digits > 0 {
		re(AccountNumber, d.account, nil)
	}
	if on[Names].act != 0 && d.names != nil {
		d.names.find(s, func(lo, hi int, _ string) { add(lo, hi, Names) })
	}
	return spans
}

var (
	tokenPrefix = []byte(TokenPrefix)
	dropped     = []byte(Dropped)
)

// protectedSpans appends the tokens and "[redacted]" marks in s.
func protectedSpans(s []byte, out []span) []span {
	for i := 0; i < len(s); {
		j := bytes.Index(s[i:], tokenPrefix)
		k := bytes.Index(s[i:], dropped)
		switch {
		case j < 0 && k < 0:
			return out
		case j >= 0 && (k < 0 || j < k):
			lo := i + j
			hi := lo + len(tokenPrefix)
			for hi < len(s) && hi-lo < tokenLen && isLowerHex(s[hi]) {
				hi++
			}
			if hi-lo == tokenLen {
				out = append(out, span{lo: lo, hi: hi})
			}
			i = lo + len(tokenPrefix)
		default:
			lo := i + k
			out = append(out, span{lo: lo, hi: lo + len(dropped)})
			i = lo + len(dropped)
		}
	}
	return out
}

func isLowerHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }

// isToken reports whether s is exactly a token.
func isToken(s []byte) bool {
	if len(s) != tokenLen || !bytes.HasPrefix(s, tokenPrefix) {
		return false
	}
	for _, c := range s[len(tokenPrefix):] {
		if !isLowerHex(c) {
			return false
		}
	}
	return true
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// classify says which detector a whole value is a datum of, for values a path selects: the
// form partial masking gives it and how its token is computed. ok is false for a value that
// is none of them.
func (d *Detection) classify(s []byte) (det Detector, ok bool) {
	digits := redact.CountDigits(s)
	switch {
	case digits >= 4 && len(s) <= 42 && redact.IBANValid(s):
		return IBAN, true
	case digits >= 13 && fullMatch(reCard, s) && redact.Luhn(s):
		return PaymentCard, true
	case bytes.IndexByte(s, '@') > 0 && fullMatch(reEmail, s):
		return Email, true
	case digits >= 8 && fullMatch(rePhone, s) && redact.PhoneValid(s):
		return Phone, true
	case d != nil && d.account != nil && digits > 0 && fullMatch(d.account, s):
		return AccountNumber, true
	case d != nil && d.names != nil:
		if _, ok := d.names.whole(s); ok {
			return Names, true
		}
	}
	return 0, false
}

func fullMatch(re *regexp.Regexp, s []byte) bool {
	loc := re.FindIndex(s)
	return loc != nil && loc[0] == 0 && loc[1] == len(s)
}

// normalize appends to dst the form of a datum its token is computed from, so that the same
// datum written differently gets the same token: an IBAN in capitals without spaces, a card or
// phone number as its digits (a phone's leading '+' kept), an e-mail address in lower case, a
// listed name as the list spells it. Anything else is kept as it is.
func (d *Detection) normalize(dst []byte, det Detector, s []byte) []byte {
	switch det {
	case IBAN:
		for _, c := range s {
			if c != ' ' {
				dst = append(dst, c)
			}
		}
	case PaymentCard, Phone:
		if det == Phone && len(s) > 0 && s[0] == '+' {
			dst = append(dst, '+')
		}
		for _, c := range s {
			if isDigit(c) {
				dst = append(dst, c)
			}
		}
	case Email:
		dst = append(dst, bytes.ToLower(s)...)
	case Names:
		if d != nil && d.names != nil {
			if canon, ok := d.names.whole(s); ok {
				return append(dst, canon...)
			}
		}
		dst = append(dst, s...)
	default:
		dst = append(dst, s...)
	}
	return dst
}

// partial appends to dst the partly masked form of a datum (det is meaningful when known):
//
//	iban            the first 4 and last 4 characters: "DE89 **** **** 3000"
//	payment_card    the last 4 digits: "**** **** **** 4242"
//	email           the first character of the local part and the domain: "a***@example.com"
//	phone           the last 2 digits, a leading '+' kept: "+*********43"
//	names           the initials: "A. S."
//	anything else   (account numbers too) the last 4 characters of a value of 8 or more,
//	                "****1500"; a shorter one becomes "****"
func partial(dst []byte, det Detector, known bool, s []byte) []byte {
	if known {
		switch det {
		case IBAN:
			var n []byte
			for _, c := range s {
				if c != ' ' {
					n = append(n, c)
				}
			}
			dst = append(dst, n[:4]...)
			dst = append(dst, " **** **** "...)
			return append(dst, n[len(n)-4:]...)
		case PaymentCard:
			var last [4]byte
			k := 0
			for i := len(s) - 1; i >= 0 && k < 4; i-- {
				if isDigit(s[i]) {
					k++
					last[4-k] = s[i]
				}
			}
			dst = append(dst, "**** **** **** "...)
			return append(dst, last[:]...)
		case Email:
			at := bytes.LastIndexByte(s, '@')
			_, size := utf8.DecodeRune(s)
			dst = append(dst, s[:size]...)
			dst = append(dst, "***"...)
			return append(dst, s[at:]...)
		case Phone:
			n := redact.CountDigits(s)
			if len(s) > 0 && s[0] == '+' {
				dst = append(dst, '+')
			}
			seen := 0
			for _, c := range s {
				if !isDigit(c) {
					continue
				}
				seen++
				if seen > n-2 {
					dst = append(dst, c)
				} else {
					dst = append(dst, '*')
				}
			}
			return dst
		case Names:
			first := true
			for lo, hi, _ := nextWord(s, 0); lo >= 0; lo, hi, _ = nextWord(s, hi) {
				if !first {
					dst = append(dst, ' ')
				}
				first = false
				r, _ := utf8.DecodeRune(s[lo:hi])
				dst = utf8.AppendRune(dst, unicode.ToUpper(r))
				dst = append(dst, '.')
			}
			return dst
		}
	}
	n := utf8.RuneCount(s)
	dst = append(dst, "****"...)
	if n < 8 {
		return dst
	}
	i := len(s)
	for range 4 {
		_, size := utf8.DecodeLastRune(s[:i])
		i -= size
	}
	return append(dst, s[i:]...)
}

// isPartial reports whether s already has one of the forms partial gives, so that masking it
// again changes nothing. Each form shows no more than partial would show of it.
func isPartial(s []byte) bool {
	switch {
	case bytes.HasPrefix(s, []byte("****")) && utf8.RuneCount(s) <= 8:
		return true
	case len(s) == 19 && isUpper(s[0]) && isUpper(s[1]) && isDigit(s[2]) && isDigit(s[3]) && string(s[4:15]) == " **** **** " && alnum(s[15:]):
		return true
	case len(s) == 19 && string(s[:15]) == "**** **** **** " && redact.CountDigits(s[15:]) == 4:
		return true
	}
	if _, size := utf8.DecodeRune(s); size > 0 && bytes.HasPrefix(s[size:], []byte("***@")) && bytes.IndexByte(s[size+4:], '@') < 0 {
		return true
	}
	if t := bytes.TrimPrefix(s, []byte("+")); len(t) > 2 && redact.CountDigits(t[len(t)-2:]) == 2 && len(bytes.Trim(t[:len(t)-2], "*")) == 0 {
		return true
	}
	return isInitials(s)
}

func alnum(s []byte) bool {
	for _, c := range s {
		if !isUpper(c) && !isDigit(c) {
			return false
		}
	}
	return true
}

// isInitials reports whether s is "A." or "A. S." and so on: what partial makes of a name.
func isInitials(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); {
		if i > 0 {
			if s[i] != ' ' {
				return false
			}
			i++
		}
		r, size := utf8.DecodeRune(s[i:])
		if !isWordRune(r) || unicode.ToUpper(r) != r || i+size >= len(s) || s[i+size] != '.' {
			return false
		}
		i += size + 1
	}
	return true
}
