package jsonrpc

import "testing"

// skipStringBytewise is the plain definition skipString must agree with: walk the string,
// a backslash escaping the byte after it.
func skipStringBytewise(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '"':
			return j + 1
		case '\\':
			j++
		}
	}
	return -1
}

func TestSkipString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want int
	}{
		{name: "empty", in: `""`, want: 2},
		{name: "plain, then more", in: `"abc",1`, want: 5},
		{name: "escaped quote", in: `"a\"b"`, want: 6},
		{name: "escaped backslash before the end", in: `"a\\"x"`, want: 5},
		{name: "three backslashes", in: `"\\\"" `, want: 6},
		{name: "unicode escape of a backslash", in: `"\u005c"`, want: 8},
		{name: "unterminated", in: `"abc`, want: -1},
		{name: "escaped final quote", in: `"abc\"`, want: -1},
		{name: "lone backslash at the end", in: `"\`, want: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := skipString([]byte(tt.in), 0); got != tt.want {
				t.Errorf("skipString(%s) = %d, want %d", tt.in, got, tt.want)
			}
			if got := skipStringBytewise([]byte(tt.in), 0); got != tt.want {
				t.Errorf("reference skipString(%s) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzSkipString checks the vectorized skipString against the byte-at-a-time definition.
func FuzzSkipString(f *testing.F) {
	for _, s := range []string{`""`, `"a\"b"`, `"a\\"x"`, `"\\\\\"\\"`, `"abc`, `"\`, `x"y"`} {
		f.Add([]byte(s), 0)
	}
	f.Fuzz(func(t *testing.T, b []byte, i int) {
		if i < 0 || i >= len(b) || b[i] != '"' {
			return
		}
		if got, want := skipString(b, i), skipStringBytewise(b, i); got != want {
			t.Fatalf("skipString(%q, %d) = %d, want %d", b, i, got, want)
		}
	})
}

// BenchmarkLookupLate looks up the last member of a tool definition, skipping the others.
func BenchmarkLookupLate(b *testing.B) {
	item := []byte(`{"name":"tool_0042","title":"Filler tool 42","description":"A tool that exists to make the list long: it looks up record 42 in a ledger and reports its balance, owner and last change.","inputSchema":{"type":"object","properties":{"account":{"type":"string","description":"Account identifier, e.g. ACC-1001."},"limit":{"type":"integer","minimum":1,"maximum":100}},"required":["account"]},"annotations":{"readOnlyHint":true}}`)
	b.SetBytes(int64(len(item)))
	for b.Loop() {
		if _, ok := Lookup(item, "annotations"); !ok {
			b.Fatal("not found")
		}
	}
}
