package oauthclient

import (
	"strings"
	"testing"
)

// FuzzParseChallenge checks that no WWW-Authenticate text makes the parser panic or loop, and
// that what it reads comes from the text.
func FuzzParseChallenge(f *testing.F) {
	for _, s := range []string{
		`Bearer error="invalid_token", error_description="Missing Authorization header", resource_metadata="http://localhost:1/.well-known/oauth-protected-resource/mcp"`,
		`Basic realm="x", Bearer resource_metadata="https://a/b", error=invalid_token`,
		`Negotiate abc==, Bearer error="x"`,
		`Bearer error_description="a \"b\"", error="invalid_token"`,
		`"Bearer`, `,,, =`, `Bearer`, `Bearer ,`, `Bearer a="unterminated`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := parseChallenge(strings.Split(s, "\n"))
		if !c.found && (c.errorCode != "" || c.resourceMetadata != "") {
			t.Errorf("parameters without a Bearer challenge: %+v", c)
		}
		if len(c.errorCode) > len(s) || len(c.resourceMetadata) > len(s) {
			t.Errorf("read more than the input: %+v", c)
		}
	})
}

// FuzzParseTokenResponse checks that no answer makes the parser panic, and that an accepted
// token can be sent in a header.
func FuzzParseTokenResponse(f *testing.F) {
	for _, s := range []string{
		`{"access_token":"abc","token_type":"Bearer","expires_in":3600}`,
		`{"access_token":"abc","token_type":"bearer"}`,
		`{"access_token":"a\nb","token_type":"Bearer"}`,
		`{"error":"invalid_client","error_description":"x"}`,
		`{"access_token":"abc","token_type":"Bearer","expires_in":1e400}`,
		`<html>`, `null`, `[]`,
	} {
		f.Add(200, []byte(s))
		f.Add(401, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		tok, lifetime, err := bearer(status, body)
		if err != nil {
			if tok != "" {
				t.Errorf("error %v with a token", err)
			}
			return
		}
		if status != 200 || tok == "" || lifetime < 0 || strings.ContainsAny(tok, "\r\n \t") {
			t.Errorf("accepted status %d, token %q, lifetime %v", status, tok, lifetime)
		}
	})
}
