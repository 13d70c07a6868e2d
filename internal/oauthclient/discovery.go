package oauthclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// discover finds the token endpoint: from the configured issuer's metadata, or else as the MCP
// authorization specification says, from the upstream's Protected Resource Metadata (RFC 9728)
// at prmURL (its 401's resource_metadata; "" means the well-known locations) and the metadata of
// the first authorization server it names. issuer is the authorization server's identifier, which
// its metadata repeats; resource is the resource the metadata names, "" when the issuer was
// configured.
func (s *Source) discover(ctx context.Context, prmURL string) (endpoint, issuer, resource string, err error) {
	issuer = s.cfg.Issuer
	if issuer == "" {
		prm, err := s.protectedResource(ctx, prmURL)
		if err != nil {
			return "", "", "", err
		}
		issuer, resource = prm.AuthorizationServers[0], prm.Resource
	}
	meta, err := s.authServer(ctx, issuer)
	if err != nil {
		return "", "", "", err
	}
	s.log.Info("discovered the upstream's token endpoint", "issuer", issuer, "token_endpoint", redact(meta.TokenEndpoint))
	return meta.TokenEndpoint, issuer, resource, nil
}

// protectedResourceMetadata is the part of RFC 9728 metadata the client uses.
type protectedResourceMetadata struct {
	Resource             string   `json:"resource"`
	AuthorizationServers []string `json:"authorization_servers"`
}

// protectedResource reads the upstream's Protected Resource Metadata from metadataURL, or when
// it is "" from the well-known locations (path-inserted, then the root), and checks that it
// describes the upstream.
func (s *Source) protectedResource(ctx context.Context, metadataURL string) (*protectedResourceMetadata, error) {
	candidates := []string{metadataURL}
	if metadataURL == "" {
		candidates = wellKnown(s.upstream, "oauth-protected-resource", false)
	}
	var lastErr error
	for _, u := range candidates {
		var prm protectedResourceMetadata
		found, err := s.getJSON(ctx, u, &prm)
		if err != nil {
			return nil, fmt.Errorf("protected resource metadata: %w", err)
		}
		if !found {
			lastErr = fmt.Errorf("protected resource metadata: %s answered 404", redact(u))
			continue
		}
		if !describes(prm.Resource, s.upstream) {
			return nil, fmt.Errorf("protected resource metadata at %s is for %s, not for the upstream %s: refusing to send credentials on its word", redact(u), printable(prm.Resource, 200), redact(s.upstream.String()))
		}
		if len(prm.AuthorizationServers) == 0 {
			return nil, fmt.Errorf("protected resource metadata at %s names no authorization server", redact(u))
		}
		if err := CheckEndpoint(prm.AuthorizationServers[0]); err != nil {
			return nil, fmt.Errorf("protected resource metadata at %s: authorization server: %w", redact(u), err)
		}
		return &prm, nil
	}
	if lastErr == nil {
		lastErr = errors.New("protected resource metadata: no location to read it from")
	}
	return nil, fmt.Errorf("%w (the upstream's 401 named no resource_metadata)", lastErr)
}

// describes reports whether the metadata's resource identifies the upstream: the same URL, or
// the same origin with a path that contains the upstream's path at a segment boundary (a
// server may name its origin as the resource of its MCP endpoint).
func describes(resource string, upstream *url.URL) bool {
	r, err := url.Parse(resource)
	if err != nil || r.Fragment != "" || r.RawQuery != "" {
		return false
	}
	if !strings.EqualFold(r.Scheme, upstream.Scheme) || !strings.EqualFold(r.Host, upstream.Host) {
		return false
	}
	rp, up := strings.TrimSuffix(r.Path, "/"), strings.TrimSuffix(upstream.Path, "/")
	return rp == up || strings.HasPrefix(up, rp+"/")
}

// authServerMetadata is the part of RFC 8414 / OpenID Connect discovery metadata the client uses.
type authServerMetadata struct {
	Issuer        string `json:"issuer"`
	TokenEndpoint string `json:"token_endpoint"`
}

// authServer reads the metadata of the authorization server issuer: RFC 8414 first, then
// OpenID Connect discovery (path-inserted, then appended), as the MCP authorization
// specification orders them. The metadata must name issuer exactly (RFC 8414 section 3.3).
func (s *Source) authServer(ctx context.Context, issuer string) (*authServerMetadata, error) {
	iu, err := url.Parse(issuer)
	if err != nil || iu.Host == "" {
		return nil, fmt.Errorf("authorization server %q is not an absolute URL", printable(issuer, 200))
	}
	for _, u := range AuthServerMetadataURLs(iu) {
		var meta authServerMetadata
		found, err := s.getJSON(ctx, u, &meta)
		if err != nil {
			return nil, fmt.Errorf("authorization server metadata: %w", err)
		}
		if !found {
			continue
		}
		if meta.Issuer != issuer {
			return nil, fmt.Errorf("authorization server metadata at %s names the issuer %s, not %s: refusing it", redact(u), printable(meta.Issuer, 200), printable(issuer, 200))
		}
		if meta.TokenEndpoint == "" {
			return nil, fmt.Errorf("authorization server metadata at %s names no token_endpoint", redact(u))
		}
		if err := CheckEndpoint(meta.TokenEndpoint); err != nil {
			return nil, fmt.Errorf("authorization server metadata at %s: token_endpoint: %w", redact(u), err)
		}
		return &meta, nil
	}
	return nil, fmt.Errorf("authorization server %s publishes no metadata (tried RFC 8414 and OpenID Connect discovery); set token_url", redact(issuer))
}

// AuthServerMetadataURLs lists where the metadata of the authorization server issuer may live,
// in the order the MCP authorization specification gives: RFC 8414 with the well-known segment
// inserted before the issuer's path, OpenID Connect Discovery inserted the same way, then OpenID
// Connect Discovery appended to the path. An issuer without a path has the first two only.
func AuthServerMetadataURLs(issuer *url.URL) []string {
	urls := append(wellKnown(issuer, "oauth-authorization-server", true), wellKnown(issuer, "openid-configuration", true)...)
	if path := strings.TrimSuffix(issuer.EscapedPath(), "/"); path != "" {
		urls = append(urls, issuer.Scheme+"://"+issuer.Host+path+"/.well-known/openid-configuration")
	}
	return urls
}

// wellKnown returns the well-known URLs of name for u: path-inserted
// (https://host/.well-known/NAME/path) when u has a path, then, unless insertedOnly is set and
// u has a path, the root (https://host/.well-known/NAME).
func wellKnown(u *url.URL, name string, insertedOnly bool) []string {
	root := u.Scheme + "://" + u.Host + "/.well-known/" + name
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	if path == "" {
		return []string{root}
	}
	if insertedOnly {
		return []string{root + path}
	}
	return []string{root + path, root}
}

// getJSON fetches u into v. found is false for a 404 (or 410), so that the caller tries the
// next location; any other failure is an error.
func (s *Source) getJSON(ctx context.Context, u string, v any) (found bool, err error) {
	if err := CheckEndpoint(u); err != nil {
		return false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, fmt.Errorf("%s: %w", redact(u), err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.hc.Do(req)
	if err != nil {
		return false, fmt.Errorf("%s: %w", redact(u), unwrapURLError(err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return false, nil
	case resp.StatusCode != http.StatusOK:
		return false, fmt.Errorf("%s answered %d %s", redact(u), resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	body, err := readBounded(resp.Body)
	if err != nil {
		return false, fmt.Errorf("%s: %w", redact(u), err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return false, fmt.Errorf("%s answered a document that is not the JSON metadata expected: %v", redact(u), err)
	}
	return true, nil
}

// CheckEndpoint refuses URLs that are not https, or http to a loopback host: what crosses them
// is a client secret, a token, or metadata that decides where those go.
func CheckEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%s is not an absolute URL", printable(raw, 200))
	}
	if u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%s must not carry user information or a fragment", redact(raw))
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
	}
	return fmt.Errorf("%s is not https (http is accepted only to a loopback host)", redact(raw))
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// bearerChallenge holds the parameters of a Bearer challenge (RFC 6750 section 3, RFC 9728
// section 5.1).
type bearerChallenge struct {
	found            bool
	errorCode        string
	resourceMetadata string
}

// maxChallengeBytes bounds the WWW-Authenticate text parsed.
const maxChallengeBytes = 8 << 10

// parseChallenge finds the Bearer challenge among WWW-Authenticate header values and reads its
// error and resource_metadata parameters. Malformed text ends the parse with what was read.
func parseChallenge(values []string) bearerChallenge {
	var c bearerChallenge
	for _, v := range values {
		if len(v) > maxChallengeBytes {
			v = v[:maxChallengeBytes]
		}
		p := &challengeParser{s: v}
		for !p.done() {
			scheme := p.token()
			if scheme == "" {
				return c
			}
			params := p.params()
			if strings.EqualFold(scheme, "Bearer") && !c.found {
				c.found = true
				c.errorCode = params["error"]
				c.resourceMetadata = params["resource_metadata"]
			}
		}
	}
	return c
}

// challengeParser scans one WWW-Authenticate value (RFC 9110 section 11.6.1).
type challengeParser struct {
	s string
	i int
}

func (p *challengeParser) done() bool {
	p.skip(" \t,")
	return p.i >= len(p.s)
}

func (p *challengeParser) skip(set string) {
	for p.i < len(p.s) && strings.IndexByte(set, p.s[p.i]) >= 0 {
		p.i++
	}
}

func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func (p *challengeParser) token() string {
	start := p.i
	for p.i < len(p.s) && isTokenChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// params reads the auth-params after a scheme, up to the next challenge or the end. Duplicate
// names keep the first value. Text that is neither (a token68, junk) is skipped up to the next
// comma.
func (p *challengeParser) params() map[string]string {
	out := map[string]string{}
	for {
		p.skip(" \t")
		save := p.i
		name := p.token()
		p.skip(" \t")
		if name != "" && (p.i >= len(p.s) || p.s[p.i] != '=') {
			p.i = save // the next challenge's scheme
			return out
		}
		if name == "" {
			for p.i < len(p.s) && p.s[p.i] != ',' {
				p.i++
			}
			if p.i >= len(p.s) {
				return out
			}
			p.i++
			continue
		}
		p.i++ // '='
		p.skip(" \t")
		var val string
		if p.i < len(p.s) && p.s[p.i] == '"' {
			val = p.quoted()
		} else {
			val = p.token()
		}
		if _, dup := out[strings.ToLower(name)]; !dup {
			out[strings.ToLower(name)] = val
		}
		// Anything between the value and the next comma (a token68's padding, junk) is skipped.
		for p.i < len(p.s) && p.s[p.i] != ',' {
			p.i++
		}
		if p.i >= len(p.s) {
			return out
		}
		p.i++
	}
}

// quoted reads a quoted-string, unescaping quoted pairs.
func (p *challengeParser) quoted() string {
	var b strings.Builder
	p.i++ // opening quote
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch c {
		case '"':
			return b.String()
		case '\\':
			if p.i < len(p.s) {
				b.WriteByte(p.s[p.i])
				p.i++
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
