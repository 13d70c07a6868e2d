package redact

// The checks that tell a real card number, IBAN or phone number from digits that only look
// like one. The audit log's redaction and result masking (internal/mask) share them, so that
// both recognise the same values; they read a string or a byte slice without converting it.

// text is what the checks read.
type text interface{ ~string | ~[]byte }

// CountDigits counts the ASCII digits of s.
func CountDigits[T text](s T) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			n++
		}
	}
	return n
}

// Luhn reports whether the digits of s (separators ignored) pass the Luhn check, and are 13
// to 19 of them: a payment card number.
func Luhn[T text](s T) bool {
	sum, n, double := 0, 0, false
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if !isDigit(c) {
			continue
		}
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		n++
		double = !double
	}
	return n >= 13 && n <= 19 && sum%10 == 0
}

// IBANValid applies the ISO 13616 mod-97 check to s, spaces ignored: two capital letters, two
// digits, then letters and digits, 15 to 34 of them in all. It allocates nothing.
func IBANValid[T text](s T) bool {
	var buf [34]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' {
			continue
		}
		if n == len(buf) {
			return false
		}
		buf[n] = c
		n++
	}
	if n < 15 || !isUpper(buf[0]) || !isUpper(buf[1]) || !isDigit(buf[2]) || !isDigit(buf[3]) {
		return false
	}
	rem := 0
	for i := range n {
		c := buf[(i+4)%n]
		switch {
		case isDigit(c):
			rem = (rem*10 + int(c-'0')) % 97
		case isUpper(c):
			rem = (rem*100 + int(c-'A'+10)) % 97
		default:
			return false
		}
	}
	return rem == 1
}

// PhoneValid reports whether s holds 8 to 15 digits (E.164's bounds).
func PhoneValid[T text](s T) bool {
	n := CountDigits(s)
	return n >= 8 && n <= 15
}

// HasIBANStart reports whether s has two capital letters followed by two digits somewhere: a
// cheap test before the IBAN pattern runs.
func HasIBANStart[T text](s T) bool {
	for i := 0; i+4 <= len(s); i++ {
		if isUpper(s[i]) && isUpper(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			return true
		}
	}
	return false
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
