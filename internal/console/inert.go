package console

import (
	"fmt"
	"html/template"
	"strings"
	"unicode/utf8"
)

// Why a string was flagged by Reveal.
const (
	flagMarkup    = "markup (<…>)"
	flagControl   = "control characters (such as terminal escapes)"
	flagBidi      = "bidirectional overrides or isolates"
	flagTag       = "Unicode tag characters"
	flagInvisible = "invisible characters"
	flagUTF8      = "invalid UTF-8"
)

// Reveal returns s as the console shows it, with every character that could hide, reorder or
// disguise text made visible, and the reasons it found any (nil for plain text):
//
//   - C0 and C1 control characters and DEL become their control pictures (ESC as ␛, NUL as ␀) or
//     \u{…}; tab and newline are kept, as layout;
//   - bidirectional overrides, embeddings, isolates and marks (U+202A–U+202E, U+2066–U+2069,
//     U+200E, U+200F, U+061C), Unicode tag characters (U+E0000–U+E007F) and zero-width
//     characters become \u{…};
//   - a byte that is not UTF-8 becomes U+FFFD;
//   - markup such as <script is flagged but left as it is: html/template escapes it.
//
// Reveal(Reveal(s)) shows the same text as Reveal(s).
func Reveal(s string) (string, []string) {
	var reasons []string
	flag := func(why string) {
		for _, r := range reasons {
			if r == why {
				return
			}
		}
		reasons = append(reasons, why)
	}
	if hasMarkup(s) {
		flag(flagMarkup)
	}
	if plain(s) {
		return s, reasons
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == utf8.RuneError && n == 1:
			flag(flagUTF8)
			b.WriteRune(utf8.RuneError)
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case r < 0x20:
			flag(flagControl)
			b.WriteRune(0x2400 + r) // control pictures: ␀ … ␟, ␛ for ESC
		case r == 0x7f:
			flag(flagControl)
			b.WriteRune('␡')
		case r >= 0x80 && r <= 0x9f:
			flag(flagControl)
			fmt.Fprintf(&b, `\u{%X}`, r)
		case isBidi(r):
			flag(flagBidi)
			fmt.Fprintf(&b, `\u{%X}`, r)
		case r >= 0xE0000 && r <= 0xE007F:
			flag(flagTag)
			fmt.Fprintf(&b, `\u{%X}`, r)
		case isInvisible(r):
			flag(flagInvisible)
			fmt.Fprintf(&b, `\u{%X}`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String(), reasons
}

// plain reports whether s holds nothing Reveal changes: printable ASCII, tab and newline, or
// UTF-8 without any character Reveal makes visible.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			for _, r := range s[i:] {
				if r == utf8.RuneError || r < 0x20 && r != '\n' && r != '\t' || r >= 0x7f && r <= 0x9f ||
					isBidi(r) || r >= 0xE0000 && r <= 0xE007F || isInvisible(r) {
					return false
				}
			}
			return utf8.ValidString(s[i:])
		}
		if c < 0x20 && c != '\n' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func isBidi(r rune) bool {
	return r >= 0x202A && r <= 0x202E || r >= 0x2066 && r <= 0x2069 || r == 0x200E || r == 0x200F || r == 0x061C
}

func isInvisible(r rune) bool {
	return r >= 0x200B && r <= 0x200D || r == 0x2060 || r == 0xFEFF
}

// hasMarkup reports whether s holds something a browser would read as a tag: < followed by a
// letter, /, ! or ?.
func hasMarkup(s string) bool {
	for i := strings.IndexByte(s, '<'); i >= 0 && i+1 < len(s); {
		c := s[i+1]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '/' || c == '!' || c == '?' {
			return true
		}
		j := strings.IndexByte(s[i+1:], '<')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

// show is the template function that displays untrusted text: Reveal's text, escaped, and
// next to it, when Reveal found anything, a flag saying what.
func show(s string) template.HTML {
	text, reasons := Reveal(s)
	out := template.HTMLEscapeString(text)
	if len(reasons) > 0 {
		out += `<span class="flag-hostile" title="` + template.HTMLEscapeString("hostile content shown inert: "+strings.Join(reasons, ", ")) +
			`">⚠ hostile: ` + template.HTMLEscapeString(strings.Join(reasons, ", ")) + `</span>`
	}
	return template.HTML(out)
}
