package redact

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/go-cmp/cmp"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func newTest(t testing.TB, opts *Options) *Redactor {
	t.Helper()
	r, err := New(testKey, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRedact(t *testing.T) {
	t.Parallel()
	r := newTest(t, &Options{AllowKeys: []string{"public_token"}})
	tok := func(s string) string { return r.Token([]byte(s)) }
	tests := []struct {
		name  string
		in    string
		want  string
		stats Stats
	}{
		{"clear values stay", `{"city":"Paris","n":3,"ok":true,"x":null}`, `{"city":"Paris","n":3,"ok":true,"x":null}`, nil},
		{"password key", `{"password":"hunter2"}`, `{"password":"` + tok("hunter2") + `"}`, Stats{"key": 1}},
		{"key case and separators", `{"DB-Password":"a","apiKey":"b","X_API_KEY":"c","githubToken":"d"}`,
			`{"DB-Password":"` + tok("a") + `","apiKey":"` + tok("b") + `","X_API_KEY":"` + tok("c") + `","githubToken":"` + tok("d") + `"}`, Stats{"key": 4}},
		{"max_tokens is not a token", `{"max_tokens":100}`, `{"max_tokens":100}`, nil},
		{"nested key", `{"a":[{"b":{"secret":"s"}}]}`, `{"a":[{"b":{"secret":"` + tok("s") + `"}}]}`, Stats{"key": 1}},
		{"non-string sensitive value", `{"token":{"x": 1}}`, `{"token":"` + tok(`{"x":1}`) + `"}`, Stats{"key": 1}},
		{"null sensitive value stays null", `{"token":null}`, `{"token":null}`, nil},
		{"allow-listed key kept", `{"public_token":"abc","note":"x"}`, `{"public_token":"abc","note":"x"}`, nil},
		{"allow-listed subtree kept", `{"public_token":{"password":"p"}}`, `{"public_token":{"password":"p"}}`, nil},
		{"aws key in text", `{"q":"key AKIAIOSFODNN7EXAMPLE here"}`, `{"q":"key ` + tok("AKIAIOSFODNN7EXAMPLE") + ` here"}`, Stats{"aws_access_key": 1}},
		{"github token", `["ghp_` + strings.Repeat("a1B2", 9) + `"]`, `["` + tok("ghp_"+strings.Repeat("a1B2", 9)) + `"]`, Stats{"github_token": 1}},
		{"private key block", `{"k":"-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----"}`,
			`{"k":"` + tok("-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----") + `"}`, Stats{"private_key": 1}},
		{"jwt", `{"h":"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"}`,
			`{"h":"Bearer ` + tok("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl") + `"}`, Stats{"jwt": 1}},
		{"email", `{"to":"write to Jane.Doe@example.com today"}`, `{"to":"write to ` + tok("Jane.Doe@example.com") + ` today"}`, Stats{"email": 1}},
		{"card with spaces", `{"c":"4111 1111 1111 1111"}`, `{"c":"` + tok("4111 1111 1111 1111") + `"}`, Stats{"payment_card": 1}},
		{"card as a number", `{"c":4111111111111111}`, `{"c":"` + tok("4111111111111111") + `"}`, Stats{"payment_card": 1}},
		{"not a card: fails Luhn", `{"c":"4111 1111 1111 1112","n":4111111111111112}`, `{"c":"4111 1111 1111 1112","n":4111111111111112}`, nil},
		{"iban", `{"i":"GB82 WEST 1234 5698 7654 32"}`, `{"i":"` + tok("GB82 WEST 1234 5698 7654 32") + `"}`, Stats{"iban": 1}},
		{"not an iban: bad checksum", `{"i":"GB83 WEST 1234 5698 7654 32"}`, `{"i":"GB83 WEST 1234 5698 7654 32"}`, nil},
		{"ssn", `{"s":"id 123-45-6789"}`, `{"s":"id ` + tok("123-45-6789") + `"}`, Stats{"us_ssn": 1}},
		{"never-issued ssn", `{"s":"id 000-45-6789"}`, `{"s":"id 000-45-6789"}`, nil},
		{"phone", `{"p":"call +1 (415) 555-0100 now"}`, `{"p":"call ` + tok("+1 (415) 555-0100") + ` now"}`, Stats{"phone": 1}},
		{"two findings in one string", `"a@b.io and c@d.io"`, `"` + tok("a@b.io") + ` and ` + tok("c@d.io") + `"`, Stats{"email": 2}},
		{"personal data in a key", `{"jane@example.com":{"n":1}}`, `{"` + tok("jane@example.com") + `":{"n":1}}`, Stats{"email": 1}},
		{"escapes survive", `{"s":"line\nbreak \u00e9 \"q\""}`, `{"s":"line\nbreak é \"q\""}`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, stats, err := r.JSON([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.stats, stats); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTokenIsKeyedAndStable(t *testing.T) {
	t.Parallel()
	a := newTest(t, nil)
	b, err := New([]byte("another key of sixteen+ bytes"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if first, again := a.Token([]byte("x")), a.Token([]byte("x")); first != again {
		t.Error("the same value gave two tokens")
	}
	if a.Token([]byte("x")) == b.Token([]byte("x")) {
		t.Error("two keys gave the same token")
	}
	if got := a.Token([]byte("x")); !strings.HasPrefix(got, TokenPrefix) || len(got) != len(TokenPrefix)+32 {
		t.Errorf("token %q: want %q and 32 hex digits", got, TokenPrefix)
	}
}

func TestBounds(t *testing.T) {
	t.Parallel()
	r := newTest(t, &Options{MaxDepth: 4, MaxBytes: 64})
	tests := []struct {
		name string
		in   string
		err  error
	}{
		{"too deep", `[[[[[1]]]]]`, ErrTooDeep},
		{"too deep under a sensitive key", `{"a":{"b":{"token":[[1]]}}}`, ErrTooDeep},
		{"too large", `"` + strings.Repeat("a", 80) + `"`, ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := r.JSON([]byte(tc.in))
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			out, _ := r.Value([]byte(tc.in))
			if want := `"` + r.Token([]byte(tc.in)) + `"`; string(out) != want {
				t.Errorf("Value = %s, want the whole value's token %s", out, want)
			}
		})
	}
}

func TestValueReplacesInvalidJSON(t *testing.T) {
	t.Parallel()
	r := newTest(t, nil)
	for _, in := range []string{`{"password":"p"`, `{"a":1}{"b":2}`, `{"a":1,"a":2}`, "\"\xff\""} {
		out, _ := r.Value([]byte(in))
		if bytes.Contains(out, []byte(`"p"`)) || string(out) != `"`+r.Token([]byte(in))+`"` {
			t.Errorf("Value(%q) = %s, want only the token of the whole input", in, out)
		}
	}
}

func TestOptionsErrors(t *testing.T) {
	t.Parallel()
	if _, err := New([]byte("short"), nil); err == nil {
		t.Error("a 5-byte key was accepted")
	}
	if _, err := New(testKey, &Options{DisableDetectors: []string{"phone", "nope"}}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown detector: error %v, want one naming it", err)
	}
	r := newTest(t, &Options{DisableDetectors: []string{"email"}})
	if out, _, _ := r.JSON([]byte(`"a@b.io"`)); string(out) != `"a@b.io"` {
		t.Errorf("disabled detector still ran: %s", out)
	}
}

func FuzzJSON(f *testing.F) {
	for _, s := range []string{`{"password":"x","a":[1,2,{"token":{"k":"v"}}]}`, `"4111111111111111"`, `[]`, `{"s":"a@b.io AKIAIOSFODNN7EXAMPLE"}`, `1e9`} {
		f.Add([]byte(s))
	}
	r, err := New(testKey, &Options{MaxDepth: 16, MaxBytes: 1 << 16})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, _, err := r.JSON(in)
		if err != nil {
			return
		}
		if !jsontext.Value(out).IsValid() {
			t.Fatalf("output is not valid JSON: %q", out)
		}
		again, _, err := r.JSON(out)
		if err != nil {
			t.Fatalf("redacting the output failed: %v", err)
		}
		// Tokens contain nothing a detector or key rule would replace again, except under
		// sensitive keys, whose tokens are tokenized again; so only check validity and bounds.
		if len(again) > 4*len(out)+64 {
			t.Fatalf("output grew from %d to %d bytes", len(out), len(again))
		}
	})
}

func BenchmarkJSON(b *testing.B) {
	r := newTest(b, nil)
	cases := []struct{ name, in string }{
		{"clean", `{"account":"ACC-1029","amount":125.5,"currency":"EUR","memo":"invoice 2026-11 for services rendered","tags":["a","b","c"]}`},
		{"secrets", `{"password":"hunter2","api_key":"AKIAIOSFODNN7EXAMPLE","to":"jane@example.com","card":"4111 1111 1111 1111","note":"call +33 1 23 45 67 89"}`},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.in)))
			for b.Loop() {
				if _, _, err := r.JSON([]byte(c.in)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
