package policy

import (
	"strconv"
	"strings"
)

// The reasons of the common denials are built in one allocation each,
// without fmt: a denial is as frequent as an allowed call, and its garbage
// is what sets the tail latency of decisions.

// listedReason explains a denial by a deny list, such as
// `tool "x.reset" is listed in deny_tools of role R`.
func listedReason(k Kind, name string, r *role) string {
	key := k.denyKey()
	var b strings.Builder
	b.Grow(len("resource ") + quotedLen(name) + len(" is listed in ") + len(key) + len(" of role ") + len(r.name))
	b.WriteString(k.String())
	b.WriteByte(' ')
	writeQuoted(&b, name)
	b.WriteString(" is listed in ")
	b.WriteString(key)
	b.WriteString(" of role ")
	b.WriteString(r.name)
	return b.String()
}

// noRuleReason explains a default denial, such as
// `no rule allows tool "x.y" for roles [A B]`.
func noRuleReason(k Kind, name string, roles []*role) string {
	const none = "[] (the principal has no role this policy defines)"
	n := len("no rule allows resource ") + quotedLen(name) + len(" for roles ") + len(none)
	for _, r := range roles {
		n += len(r.name) + 1
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString("no rule allows ")
	b.WriteString(k.String())
	b.WriteByte(' ')
	writeQuoted(&b, name)
	b.WriteString(" for roles ")
	if len(roles) == 0 {
		b.WriteString(none)
		return b.String()
	}
	b.WriteByte('[')
	for i, r := range roles {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(r.name)
	}
	b.WriteByte(']')
	return b.String()
}

// writeQuoted writes what quote returns, without allocating when the
// quoted text fits in a small buffer.
func writeQuoted(b *strings.Builder, s string) {
	cut := s
	if len(s) > maxQuoted {
		cut = quoteCut(s)
	}
	var buf [128]byte
	b.Write(strconv.AppendQuote(buf[:0], cut))
	if len(cut) < len(s) {
		b.WriteString("...")
	}
}

// quoteCut shortens s to at most maxQuoted bytes at a rune boundary, as
// quote does.
func quoteCut(s string) string {
	cut := maxQuoted
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut]
}

// quotedLen estimates the length of quote(s), for sizing a buffer.
func quotedLen(s string) int {
	return min(len(s), maxQuoted) + len(`"..."`)
}
