package ssehttp

import (
	"net/url"
	"testing"
)

// FuzzResolveEndpoint checks that an accepted endpoint is always an http(s) URL on the
// stream's origin without user info, whatever the endpoint event holds. The seed corpus is
// in testdata/fuzz/FuzzResolveEndpoint.
func FuzzResolveEndpoint(f *testing.F) {
	for _, s := range []string{
		"/messages?sessionId=abc",
		"post?s=1#frag",
		"http://127.0.0.1:8080/m",
		"//evil.example/x",
		"http://user@127.0.0.1:8080/m",
		"HTTP://127.0.0.1:8080/m",
		"http://127.0.0.1:08080/m",
		"http://[::1]:8080/m",
	} {
		f.Add("http://127.0.0.1:8080/sse/", s)
	}
	f.Add("https://example.com/sse", "https://EXAMPLE.com:443/m")
	f.Fuzz(func(t *testing.T, stream, data string) {
		base, err := url.Parse(stream)
		if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
			return
		}
		ep, err := resolveEndpoint(base, data)
		if err != nil {
			return
		}
		u, err := url.Parse(ep)
		if err != nil {
			t.Fatalf("accepted endpoint %q does not parse: %v", ep, err)
		}
		if u.User != nil {
			t.Fatalf("accepted endpoint %q carries user info", ep)
		}
		if !sameOrigin(base, u) || portOf(u) == "" {
			t.Fatalf("accepted endpoint %q is not on the origin of %q", ep, stream)
		}
	})
}
