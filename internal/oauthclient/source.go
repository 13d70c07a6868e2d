// Package oauthclient obtains an upstream's own access token with the OAuth 2.1 client
// credentials grant, discovering the authorization server from the upstream when asked, and
// attaches it to the requests sent to that upstream.
package oauthclient

import (
	"context"
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Client authentication methods at the token endpoint (RFC 6749 section 2.3.1).
const (
	AuthBasic = "client_secret_basic"
	AuthPost  = "client_secret_post"
	// AuthPrivateKeyJWT sends a JWT signed with the client's private key as client_assertion
	// (RFC 7523 section 2.2, OpenID Connect Core section 9); there is no client secret.
	AuthPrivateKeyJWT = "private_key_jwt"
)

// Bounds and timings.
const (
	// MaxResponseBytes bounds every document read from an authorization server or a metadata
	// endpoint; a longer one is refused.
	MaxResponseBytes = 64 << 10
	// DefaultTimeout bounds one token request or metadata fetch when Options.HTTPClient is nil.
	DefaultTimeout = 30 * time.Second
	// refreshMargin is the most time before expiry at which a token is refreshed; a short-lived
	// token is refreshed halfway through its life instead.
	refreshMargin = 30 * time.Second
	// failureHold is how long a failed fetch is answered from memory, so that an authorization
	// server that is down is not asked again by every request.
	failureHold = 2 * time.Second
)

// ErrToken is wrapped by every error that comes from obtaining a token: the authorization
// server refused, could not be reached, or answered something unusable.
var ErrToken = errors.New("oauthclient: cannot obtain an access token")

// errNeedChallenge means the token endpoint is still unknown and can only be discovered from
// the upstream's 401 answer.
var errNeedChallenge = errors.New("oauthclient: the authorization server is not known before the upstream's first 401")

// Config says how to obtain tokens. TokenURL and Issuer are exclusive; with neither, the
// authorization server is discovered from the upstream (see [Source.Transport]).
type Config struct {
	ClientID string
	// ClientSecret authenticates the client with AuthBasic and AuthPost; it must be empty with
	// AuthPrivateKeyJWT.
	ClientSecret string
	// TokenURL is the token endpoint.
	TokenURL string
	// Issuer is the authorization server whose metadata names the token endpoint.
	Issuer string
	// Scopes are sent as "scope"; none means the server's default.
	Scopes []string
	// Resource is the RFC 8707 resource indicator. Empty means the resource named by the
	// upstream's Protected Resource Metadata when it was discovered, else the upstream URL.
	Resource string
	// AuthMethod is AuthBasic (the default when empty), AuthPost or AuthPrivateKeyJWT.
	AuthMethod string

	// The client assertion, with AuthPrivateKeyJWT only.

	// PrivateKey signs it: an *rsa.PrivateKey (of at least 2048 bits), an *ecdsa.PrivateKey on
	// P-256, P-384 or P-521, or an ed25519.PrivateKey. Required with AuthPrivateKeyJWT.
	PrivateKey crypto.Signer
	// Algorithm is the JWS algorithm: RS256, RS384, RS512, PS256, PS384 or PS512 for an RSA key,
	// ES256, ES384 or ES512 for the ECDSA key's curve, EdDSA for Ed25519. Empty means RS256,
	// the curve's, or EdDSA.
	Algorithm string
	// KeyID is sent as the JWT header "kid" when set, to name the key among those registered.
	KeyID string
	// Certificate, the DER bytes of PrivateKey's X.509 certificate, puts its thumbprints in the
	// assertion's header as "x5t" (SHA-1) and "x5t#S256" (SHA-256), base64url: how Microsoft
	// Entra ID names a registered certificate credential. Optional.
	Certificate []byte
	// AssertionAudience is the assertion's "aud": empty for the token endpoint URL,
	// AudienceIssuer for the authorization server's issuer identifier, or else the value itself.
	AssertionAudience string
}

// Options configure a [Source]. The zero value is ready to use.
type Options struct {
	// HTTPClient talks to the authorization server and the metadata endpoints. Nil means a
	// dedicated client with DefaultTimeout that follows no redirect, so that no server can send
	// the client secret elsewhere.
	HTTPClient *http.Client
	// Logger receives one record per token obtained (debug) and per failure (warn), with the
	// upstream's name and the reason; never a secret or a token. Nil discards.
	Logger *slog.Logger
	// Name identifies the upstream in log records.
	Name string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Source obtains, caches and refreshes one upstream's access token. It is safe for concurrent
// use; concurrent callers share one request to the authorization server.
type Source struct {
	cfg      Config
	signer   jwt.SigningMethod // signs client assertions, with AuthPrivateKeyJWT
	upstream *url.URL
	hc       *http.Client
	log      *slog.Logger
	now      func() time.Time

	mu         sync.Mutex
	endpoint   string        // the token endpoint, once known
	issuer     string        // its issuer identifier, once known ("" when TokenURL was set)
	resource   string        // the resource indicator to send, once known
	prmURL     string        // the upstream's metadata URL from its 401, for discovery
	challenged bool          // the upstream answered 401 without a token
	token      string        // the cached token, "" when none
	refreshAt  time.Time     // when the cached token is refreshed (zero: only on invalid_token)
	expiresAt  time.Time     // when it stops being usable (zero: unknown)
	failure    error         // the last fetch's error, answered until failedUntil
	failedTill time.Time     //
	inflight   chan struct{} // closed when the running fetch ends; nil when none runs
}

// New returns a Source for the upstream at upstreamURL.
func New(upstreamURL string, cfg Config, opts *Options) (*Source, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	u, err := url.Parse(upstreamURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("oauthclient: upstream URL %q is not absolute", redact(upstreamURL))
	}
	if cfg.TokenURL != "" && cfg.Issuer != "" {
		return nil, errors.New("oauthclient: token URL and issuer are exclusive")
	}
	if cfg.AuthMethod == "" {
		cfg.AuthMethod = AuthBasic
	}
	signer, err := checkClientAuth(cfg)
	if err != nil {
		return nil, fmt.Errorf("oauthclient: %w", err)
	}
	if cfg.TokenURL != "" {
		if err := CheckEndpoint(cfg.TokenURL); err != nil {
			return nil, fmt.Errorf("oauthclient: token URL: %w", err)
		}
	}
	s := &Source{cfg: cfg, signer: signer, upstream: u, hc: o.HTTPClient, log: o.Logger, now: o.Now, endpoint: cfg.TokenURL, issuer: cfg.Issuer}
	if s.hc == nil {
		s.hc = &http.Client{
			Timeout:       DefaultTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if o.Name != "" {
		s.log = s.log.With("upstream", o.Name)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// checkClientAuth checks the client's credentials for cfg.AuthMethod, and returns the method
// that signs its assertions with AuthPrivateKeyJWT.
func checkClientAuth(cfg Config) (jwt.SigningMethod, error) {
	if cfg.ClientID == "" {
		return nil, errors.New("a client id is required")
	}
	switch cfg.AuthMethod {
	case AuthBasic, AuthPost:
		if cfg.ClientSecret == "" {
			return nil, fmt.Errorf("a client secret is required with %s", cfg.AuthMethod)
		}
		if cfg.PrivateKey != nil {
			return nil, fmt.Errorf("a private key is used only with %s, not %s", AuthPrivateKeyJWT, cfg.AuthMethod)
		}
		return nil, nil
	case AuthPrivateKeyJWT:
		if cfg.ClientSecret != "" {
			return nil, fmt.Errorf("%s uses a private key, not a client secret: remove the secret", AuthPrivateKeyJWT)
		}
		if cfg.PrivateKey == nil {
			return nil, fmt.Errorf("a private key is required with %s", AuthPrivateKeyJWT)
		}
		if k, ok := cfg.PrivateKey.(*rsa.PrivateKey); ok && k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("the RSA key has %d bits; want at least 2048", k.N.BitLen())
		}
		if cfg.AssertionAudience == AudienceIssuer && cfg.TokenURL != "" {
			return nil, errors.New("the assertion's audience is the issuer, which a configured token URL leaves unknown: configure the issuer instead")
		}
		return signingMethod(cfg.PrivateKey, cfg.Algorithm)
	}
	return nil, fmt.Errorf("unknown client authentication method %q", cfg.AuthMethod)
}

// Token returns a usable access token: the cached one, or a new one when there is none or the
// cached one is due for refresh. A refresh that fails while the cached token has not yet
// expired returns the cached token. Errors wrap [ErrToken].
func (s *Source) Token(ctx context.Context) (string, error) {
	for {
		s.mu.Lock()
		now := s.now()
		if s.token != "" && (s.refreshAt.IsZero() || now.Before(s.refreshAt)) {
			tok := s.token
			s.mu.Unlock()
			return tok, nil
		}
		if s.failure != nil && now.Before(s.failedTill) {
			err := s.failure
			tok := s.usable(now)
			s.mu.Unlock()
			if tok != "" {
				return tok, nil
			}
			return "", err
		}
		if s.endpoint == "" && s.cfg.Issuer == "" && !s.challenged {
			s.mu.Unlock()
			return "", errNeedChallenge
		}
		if wait := s.inflight; wait != nil {
			s.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return "", context.Cause(ctx)
			}
		}
		done := make(chan struct{})
		s.inflight = done
		s.mu.Unlock()

		// The fetch outlives a caller that gives up: others may be waiting for it.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultTimeout)
		tok, lifetime, err := s.fetch(fctx)
		cancel()

		s.mu.Lock()
		s.inflight = nil
		close(done)
		now = s.now()
		if err != nil {
			err = fmt.Errorf("%w: %w", ErrToken, err)
			s.failure, s.failedTill = err, now.Add(failureHold)
			stale := s.usable(now)
			s.mu.Unlock()
			s.log.Warn("cannot obtain the upstream's access token", "reason", err.Error(), "using_cached_token", stale != "")
			if stale != "" {
				return stale, nil
			}
			return "", err
		}
		s.failure = nil
		s.token = tok
		s.refreshAt, s.expiresAt = time.Time{}, time.Time{}
		if lifetime > 0 {
			s.expiresAt = now.Add(lifetime)
			s.refreshAt = now.Add(lifetime - min(refreshMargin, lifetime/2))
		}
		s.mu.Unlock()
		s.log.Debug("obtained the upstream's access token", "expires_in", lifetime)
		return tok, nil
	}
}

// usable returns the cached token if it has not expired. s.mu is held.
func (s *Source) usable(now time.Time) string {
	if s.token != "" && (s.expiresAt.IsZero() || now.Before(s.expiresAt)) {
		return s.token
	}
	return ""
}

// Invalidate drops the cached token if it is still tok, so that the next [Source.Token]
// fetches a new one. It is called when the upstream refuses tok as invalid.
func (s *Source) Invalidate(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token == tok {
		s.token = ""
		s.failure = nil
	}
}

// challenge records the upstream's 401 to a request without a token: metadataURL is the
// resource_metadata of its WWW-Authenticate header, "" when it named none.
func (s *Source) challenge(metadataURL string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.endpoint != "" || s.cfg.Issuer != "" {
		return
	}
	s.challenged = true
	s.failure = nil
	if metadataURL != "" {
		s.prmURL = metadataURL
	}
}

// fetch finds the token endpoint if needed and asks it for a token.
func (s *Source) fetch(ctx context.Context) (string, time.Duration, error) {
	s.mu.Lock()
	endpoint, issuer, resource, prmURL := s.endpoint, s.issuer, s.resource, s.prmURL
	s.mu.Unlock()
	if endpoint == "" {
		var err error
		endpoint, issuer, resource, err = s.discover(ctx, prmURL)
		if err != nil {
			return "", 0, err
		}
		s.mu.Lock()
		s.endpoint, s.issuer, s.resource = endpoint, issuer, resource
		s.mu.Unlock()
	}
	if s.cfg.Resource != "" {
		resource = s.cfg.Resource
	}
	if resource == "" {
		resource = s.upstream.String()
	}
	return s.request(ctx, endpoint, issuer, resource)
}

// request runs the client credentials grant (OAuth 2.1 section 4.2) at endpoint, of the
// authorization server issuer ("" when unknown).
func (s *Source) request(ctx context.Context, endpoint, issuer, resource string) (string, time.Duration, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "resource": {resource}}
	if len(s.cfg.Scopes) > 0 {
		form.Set("scope", strings.Join(s.cfg.Scopes, " "))
	}
	switch s.cfg.AuthMethod {
	case AuthPost:
		form.Set("client_id", s.cfg.ClientID)
		form.Set("client_secret", s.cfg.ClientSecret)
	case AuthPrivateKeyJWT:
		audience := s.cfg.AssertionAudience
		switch audience {
		case "":
			audience = endpoint
		case AudienceIssuer:
			if audience = issuer; audience == "" {
				return "", 0, errors.New("the client assertion's audience is the issuer, which is not known")
			}
		}
		a, err := s.assertion(audience)
		if err != nil {
			return "", 0, err
		}
		form.Set("client_id", s.cfg.ClientID)
		form.Set("client_assertion_type", AssertionType)
		form.Set("client_assertion", a)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, fmt.Errorf("token endpoint %s: %w", redact(endpoint), err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if s.cfg.AuthMethod == AuthBasic {
		// RFC 6749 section 2.3.1: the id and secret are form-encoded before Basic encoding.
		req.SetBasicAuth(url.QueryEscape(s.cfg.ClientID), url.QueryEscape(s.cfg.ClientSecret))
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("token endpoint %s: %w", redact(endpoint), unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err := readBounded(resp.Body)
	if err != nil {
		return "", 0, fmt.Errorf("token endpoint %s: %w", redact(endpoint), err)
	}
	var tok string
	var lifetime time.Duration
	tr, err := ParseTokenResponse(resp.StatusCode, body)
	if err == nil {
		tok, lifetime, err = tr.Bearer()
	}
	if te := (*TokenError)(nil); errors.As(err, &te) && te.Code == "invalid_client" {
		hint := "check the client id and secret"
		if s.cfg.AuthMethod == AuthPrivateKeyJWT {
			hint = "check the client id, that the authorization server holds the public key (under the key id, if one is set), and the assertion's audience"
		}
		return "", 0, fmt.Errorf("token endpoint %s: %w: %s", redact(endpoint), err, hint)
	}
	if err != nil {
		return "", 0, fmt.Errorf("token endpoint %s: %w", redact(endpoint), err)
	}
	return tok, lifetime, nil
}

// readBounded reads a whole response body of at most MaxResponseBytes.
func readBounded(r io.Reader) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, MaxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	if len(body) > MaxResponseBytes {
		return nil, fmt.Errorf("answer is longer than %d bytes", MaxResponseBytes)
	}
	return body, nil
}

// printable quotes at most n bytes of a server-supplied string for a message.
func printable(s string, n int) string {
	if len(s) > n {
		s = s[:n] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// unwrapURLError drops the *url.Error wrapper, whose message repeats the URL with its query.
func unwrapURLError(err error) error {
	if ue := (*url.Error)(nil); errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redact returns u without user information, query or fragment, for messages.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(invalid URL)"
	}
	return (&url.URL{Scheme: p.Scheme, Host: p.Host, Path: p.Path}).String()
}
