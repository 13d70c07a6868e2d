package gateway

import (
	"strings"
	"testing"
)

// FuzzParseEventID: Last-Event-ID comes from clients; parsing never panics and round-trips what
// the gateway writes.
func FuzzParseEventID(f *testing.F) {
	for _, s := range []string{"1_0", "0_17", "abc_", "_5", "a_b_3", "x_-1", "9_99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		id, seq, ok := parseEventID(v)
		if !ok {
			return
		}
		if seq < 0 || id == "" {
			t.Fatalf("parseEventID(%q) = %q, %d: accepted a negative number or empty stream id", v, id, seq)
		}
		if id2, seq2, ok2 := parseEventID(eventID(id, seq)); !ok2 || id2 != id || seq2 != seq {
			t.Fatalf("round trip of %q, %d gave %q, %d, %v", id, seq, id2, seq2, ok2)
		}
	})
}

// FuzzTemplateRegexp: resource templates come from upstreams; compiling them never panics and
// a template without expressions matches exactly itself.
func FuzzTemplateRegexp(f *testing.F) {
	for _, s := range []string{"file:///{path}", "test://template/{id}/data", "x://{+rest}", "q://a{?x,y}", "plain://uri", "{", "}{", "a.b*c(d)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tmpl string) {
		re := templateRegexp(tmpl)
		if re == nil || strings.ContainsAny(tmpl, "{}") {
			return
		}
		if !re.MatchString(tmpl) {
			t.Fatalf("literal template %q does not match itself (%s)", tmpl, re)
		}
		if re.MatchString(tmpl + "x") {
			t.Fatalf("literal template %q matches a longer URI (%s)", tmpl, re)
		}
	})
}
