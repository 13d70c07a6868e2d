package oauthclient

import (
	"errors"
	"io"
	"net/http"
	"strings"
)

// Transport returns a RoundTripper that sends requests through base with the Source's token in
// the Authorization header. Only requests to the upstream's own origin (scheme, host and port)
// carry it; any Authorization a request already has is replaced, so no other credential reaches
// the upstream.
//
// When the token endpoint must be discovered, the first request goes without a token; the
// upstream's 401 names its metadata, the token is obtained, and the request is sent again with
// it. When the upstream answers 401 with error="invalid_token" to a token, the token is
// dropped, a new one obtained, and the request sent once more. A request is sent again only if
// its body can be replayed (GET, or a body with GetBody); otherwise the 401 is returned.
//
// An error obtaining the token fails the request with an error wrapping [ErrToken]; the request
// is then not sent at all.
func (s *Source) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{s: s, base: base}
}

type transport struct {
	s    *Source
	base http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.s.sameOrigin(req) {
		return t.base.RoundTrip(req)
	}
	ctx := req.Context()
	tok, err := t.s.Token(ctx)
	switch {
	case errors.Is(err, errNeedChallenge):
		tok = ""
	case err != nil:
		closeBody(req)
		return nil, err
	}
	resp, err := t.base.RoundTrip(withToken(req, tok, req.Body))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	c := parseChallenge(resp.Header.Values("WWW-Authenticate"))
	switch {
	case tok == "":
		t.s.challenge(c.resourceMetadata)
	case c.errorCode == "invalid_token":
		t.s.Invalidate(tok)
	default:
		return resp, nil
	}
	body, ok := replayBody(req)
	if !ok {
		return resp, nil
	}
	next, err := t.s.Token(ctx)
	if err != nil {
		if body != nil {
			body.Close()
		}
		resp.Body.Close()
		return nil, err
	}
	if next == tok {
		if body != nil {
			body.Close()
		}
		return resp, nil
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return t.base.RoundTrip(withToken(req, next, body))
}

// sameOrigin reports whether req goes to the upstream's scheme, host and port.
func (s *Source) sameOrigin(req *http.Request) bool {
	u := req.URL
	return strings.EqualFold(u.Scheme, s.upstream.Scheme) && strings.EqualFold(u.Host, s.upstream.Host)
}

// withToken returns a copy of req with body and, when tok is set, "Authorization: Bearer tok";
// any Authorization req had is removed.
func withToken(req *http.Request, tok string, body io.ReadCloser) *http.Request {
	r := req.Clone(req.Context())
	r.Body = body
	r.Header.Del("Authorization")
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return r
}

// replayBody returns a fresh copy of req's body, or ok false when it cannot be replayed.
func replayBody(req *http.Request) (body io.ReadCloser, ok bool) {
	if req.Body == nil || req.Body == http.NoBody {
		return req.Body, true
	}
	if req.GetBody == nil {
		return nil, false
	}
	b, err := req.GetBody()
	if err != nil {
		return nil, false
	}
	return b, true
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
