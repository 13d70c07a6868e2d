package policy

import "testing"

func TestGlob(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"finance.get_stock_analysis", "finance.get_stock_analysis", true},
		{"finance.get_stock_analysis", "finance.get_stock_analysis2", false},
		{"finance.*", "finance.get_stock_analysis", true},
		{"finance.*", "finance.", true},
		{"finance.*", "finance", false},
		{"finance.*", "financex.get", false},
		{"*.search", "web.search", true},
		{"*.search", "search", false},
		{"*", "", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "acb", false},
		{"a*a", "a", false},
		{"a*a", "aa", true},
		{"file:///docs/*", "file:///docs/a/b.md", true},
		{"file:///docs/*", "file:///etc/passwd", false},
		{"*_internal*", "finance.daily_internal_v2", true},
	}
	for _, tt := range tests {
		g, err := compileGlob(tt.pattern)
		if err != nil {
			t.Fatalf("compileGlob(%q): %v", tt.pattern, err)
		}
		if got := g.match(tt.name); got != tt.want {
			t.Errorf("%q matches %q = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
	for _, bad := range []string{"", "a**", "a\nb"} {
		if _, err := compileGlob(bad); err == nil {
			t.Errorf("compileGlob(%q) succeeded, want an error", bad)
		}
	}
}
