package policy

import (
	"strings"
	"testing"
)

// TestWriteQuotedMatchesQuote checks that reasons built without fmt quote
// names exactly as every other message does.
func TestWriteQuotedMatchesQuote(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", maxQuoted-1) + "é" + strings.Repeat("b", 50)
	for _, s := range []string{"", "svc.tool", `with "quotes" and \`, "tab\tnew\nline", "é日本\x00\xff", long, long[:maxQuoted], long[:maxQuoted+1], strings.Repeat("\x01", 300)} {
		var b strings.Builder
		writeQuoted(&b, s)
		if got, want := b.String(), quote(s); got != want {
			t.Errorf("writeQuoted(%q) = %s, want %s", s, got, want)
		}
	}
}
