package console

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestReveal(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		flagged        bool
	}{
		{"plain text", "Move money to an account", "Move money to an account", false},
		{"plain unicode", "Überweisung 5 €, naïve café", "Überweisung 5 €, naïve café", false},
		{"layout kept", "line one\n\tline two", "line one\n\tline two", false},
		{"a lone less-than", "a < b and c > d", "a < b and c > d", false},
		{"markup", "hi <script>alert(1)</script>", "hi <script>alert(1)</script>", true},
		{"closing tag", "x</textarea>", "x</textarea>", true},
		{"terminal escape", "\x1b[31mred\x1b[0m", "␛[31mred␛[0m", true},
		{"NUL and CR", "a\x00b\rc", "a␀b␍c", true},
		{"DEL and C1", "a\x7fb\u0085c\u009bd", `a␡b\u{85}c\u{9B}d`, true},
		{"bidi override", "invoice\u202Egnp.exe", `invoice\u{202E}gnp.exe`, true},
		{"bidi isolate", "\u2067x\u2069", `\u{2067}x\u{2069}`, true},
		{"tag characters", "ok\U000E0049\U000E0047", `ok\u{E0049}\u{E0047}`, true},
		{"zero width", "al\u200Bice", `al\u{200B}ice`, true},
		{"invalid UTF-8", "a\xffb", "a\uFFFDb", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, reasons := Reveal(tc.in)
			if got != tc.want {
				t.Errorf("Reveal(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if (len(reasons) > 0) != tc.flagged {
				t.Errorf("Reveal(%q) reasons %v, want flagged %v", tc.in, reasons, tc.flagged)
			}
			h := string(show(tc.in))
			if strings.Contains(h, "<script") || strings.Contains(h, "</textarea") {
				t.Errorf("show(%q) = %q holds live markup", tc.in, h)
			}
			if strings.Contains(h, `class="flag-hostile"`) != tc.flagged {
				t.Errorf("show(%q) = %q: flag %v", tc.in, h, tc.flagged)
			}
		})
	}
}

// hidden reports whether r is a character Reveal must never let through.
func hidden(r rune) bool {
	return r < 0x20 && r != '\n' && r != '\t' || r >= 0x7f && r <= 0x9f || isBidi(r) || r >= 0xE0000 && r <= 0xE007F || isInvisible(r)
}

// FuzzReveal: whatever the input, the shown text is valid UTF-8 without a hidden character; an
// input Reveal changes is flagged; an input without markup or hidden characters is shown as it
// is; and show's HTML holds no tag but its own flag.
func FuzzReveal(f *testing.F) {
	for _, s := range []string{"", "plain", "<script>alert(1)</script>", "\x1b[2J", "\u202Eabc", "\U000E0041", "a\xffb", "\u200Bx", "<<<>>>", "<!--", "\n\t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, reasons := Reveal(s)
		if !utf8.ValidString(got) {
			t.Fatalf("Reveal(%q) = %q: not UTF-8", s, got)
		}
		for _, r := range got {
			if hidden(r) {
				t.Fatalf("Reveal(%q) = %q lets %U through", s, got, r)
			}
		}
		if got != s && len(reasons) == 0 {
			t.Fatalf("Reveal(%q) changed the text to %q without flagging it", s, got)
		}
		if again, _ := Reveal(got); again != got {
			t.Fatalf("Reveal is not stable: %q, then %q", got, again)
		}
		h := string(show(s))
		rest := strings.Replace(h, `<span class="flag-hostile" title="`, "", 1)
		rest = strings.Replace(rest, `</span>`, "", 1)
		if strings.ContainsAny(rest, "<") {
			t.Fatalf("show(%q) = %q holds markup besides its flag", s, h)
		}
	})
}

func TestLineDiff(t *testing.T) {
	old := prettyJSON(`{"name":"notes","description":"Take notes","inputSchema":{"type":"object"}}`)
	cur := prettyJSON(`{"name":"notes","description":"Take notes <script>","inputSchema":{"type":"object"}}`)
	var ins, del, same int
	for _, l := range lineDiff(old, cur) {
		switch l.Op {
		case "ins":
			ins++
			if !strings.Contains(l.Text, "<script>") {
				t.Errorf("inserted line %q", l.Text)
			}
		case "del":
			del++
			if strings.Contains(l.Text, "<script>") {
				t.Errorf("deleted line %q", l.Text)
			}
		default:
			same++
		}
	}
	if ins != 1 || del != 1 || same != strings.Count(old, "\n") {
		t.Errorf("diff: %d inserted, %d deleted, %d same; want 1, 1, %d", ins, del, same, strings.Count(old, "\n"))
	}
	if got := lineDiff("", "a\nb"); len(got) != 2 || got[0].Op != "ins" || got[1].Op != "ins" {
		t.Errorf("a new tool's diff: %v", got)
	}
}
