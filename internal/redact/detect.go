package redact

import (
	"regexp"
	"strings"
)

// A detector finds spans of a string that hold a secret or personal data.
type detector struct {
	name string
	// want is a cheap precondition; the expression runs only when it holds.
	want  func(s string, digits int) bool
	re    *regexp.Regexp
	valid func(match string) bool // nil: every match counts
}

func newDetectors() []detector {
	return []detector{
		{
			name: "aws_access_key",
			want: func(s string, _ int) bool { return len(s) >= 20 && hasAWSPrefix(s) },
			re:   regexp.MustCompile(`\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}\b`),
		},
		{
			name: "github_token",
			want: func(s string, _ int) bool { return strings.Contains(s, "gh") || strings.Contains(s, "github_pat_") },
			re:   regexp.MustCompile(`\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b`),
		},
		{
			name: "private_key",
			want: func(s string, _ int) bool { return strings.Contains(s, "PRIVATE KEY") },
			re:   regexp.MustCompile(`-----BEGIN[A-Z0-9 ]* PRIVATE KEY-----(?s:.*?)(?:-----END[A-Z0-9 ]* PRIVATE KEY-----|\z)`),
		},
		{
			name: "jwt",
			want: func(s string, _ int) bool { return strings.Contains(s, "eyJ") },
			re:   regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`),
		},
		{
			name: "email",
			want: func(s string, _ int) bool { return strings.Contains(s, "@") },
			re:   regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`),
		},
		{
			name:  "payment_card",
			want:  func(_ string, digits int) bool { return digits >= 13 },
			re:    regexp.MustCompile(`\b\d(?:[ -]?\d){12,18}\b`),
			valid: Luhn[string],
		},
		{
			name:  "iban",
			want:  func(s string, digits int) bool { return digits >= 4 && HasIBANStart(s) },
			re:    regexp.MustCompile(`\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b`),
			valid: IBANValid[string],
		},
		{
			name:  "us_ssn",
			want:  func(_ string, digits int) bool { return digits >= 9 },
			re:    regexp.MustCompile(`\b\d{3}-\d{2}-\d{4}\b`),
			valid: ssnValid,
		},
		{
			name:  "phone",
			want:  func(_ string, digits int) bool { return digits >= 8 },
			re:    regexp.MustCompile(`(?:\+\d[\d ().-]{6,18}\d|\(\d{3}\) ?\d{3}[ .-]\d{4}|\b\d{3}[.-]\d{3}[.-]\d{4}\b)`),
			valid: PhoneValid[string],
		},
	}
}

// ssnValid rules out the US social security numbers that are never issued.
func ssnValid(s string) bool {
	area, group, serial := s[0:3], s[4:6], s[7:11]
	return area != "000" && area != "666" && area[0] != '9' && group != "00" && serial != "0000"
}

func hasAWSPrefix(s string) bool {
	for i := strings.IndexByte(s, 'A'); i >= 0 && i+4 <= len(s); {
		switch s[i : i+4] {
		case "AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "APKA":
			return true
		}
		j := strings.IndexByte(s[i+1:], 'A')
		if j < 0 {
			return false
		}
		i += 1 + j
	}
	return false
}
