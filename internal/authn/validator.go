package authn

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpguard/mcpguard/internal/oauthclient"
)

// DefaultAlgorithms are the JWS algorithms accepted unless configured otherwise: asymmetric only,
// so that no secret shared with the authorization server can sign a token and the "HS256 keyed
// with the RSA public key" confusion cannot arise.
var DefaultAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"}

// supportedAlgorithms are the algorithms a configured allow-list may name.
var supportedAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Validator defaults and bounds.
const (
	DefaultClockSkew     = 60 * time.Second
	MaxClockSkew         = 5 * time.Minute
	DefaultMaxTokenBytes = 8 << 10
	DefaultCacheSize     = 10_000
	DefaultCacheTTL      = 5 * time.Minute
	DefaultRolesClaim    = "roles"
	DefaultGroupsClaim   = "groups"
	// DefaultMaxTokenLifetime is the longest lifetime (exp - iat) of an accepted token unless
	// configured otherwise. Access tokens usually live minutes to an hour or two; 24 h still
	// admits Auth0's default (86400 s) and the longest Entra ID and Okta allow, while a token
	// minted to live for years is refused.
	DefaultMaxTokenLifetime = 24 * time.Hour
	// MaxTokenLifetimeBound bounds a configured MaxTokenLifetime: 30 days, the longest lifetime
	// any of the common authorization servers issues (Auth0's maximum).
	MaxTokenLifetimeBound = 30 * 24 * time.Hour
)

// ValidatorOptions configures a Validator. The zero value is usable.
type ValidatorOptions struct {
	// ExtraAudiences are other names this gateway has at its issuer, accepted in aud besides
	// the canonical URI: for example the application (client) id Microsoft Entra ID puts in
	// the aud of v2.0 access tokens. Each must identify this gateway alone.
	ExtraAudiences []string
	// JWKSURL skips discovery and fetches keys from this URL (https, or http on loopback).
	JWKSURL string
	// Algorithms is the allow-list of JWS algorithms (default DefaultAlgorithms).
	Algorithms []string
	// ClockSkew is the tolerance on exp, nbf and iat (default 60 s, at most 5 min).
	ClockSkew time.Duration
	// MaxTokenBytes bounds the token's length (default 8 KiB).
	MaxTokenBytes int
	// MaxTokenLifetime is the longest lifetime of an accepted token (default 24 h, at most 30
	// days): a token whose exp is further than this after its iat — or, without iat, after now
	// (plus the clock skew) — is refused (ReasonLifetime), however validly signed.
	MaxTokenLifetime time.Duration
	// RolesClaim names the claim roles come from (default "roles"): a top-level claim name
	// ("groups", "scope", "https://example.com/roles"), or a dotted path into nested objects
	// ("realm_access.roles") when no top-level claim has that exact name. An array of strings
	// or a space-separated string.
	RolesClaim string
	// GroupsClaim names the claim groups come from (default "groups"), found the same way as
	// RolesClaim. An array of strings, or a string naming one group.
	GroupsClaim string
	// RequiredType, when set, is the only accepted JOSE typ (e.g. "at+jwt" per RFC 9068;
	// "application/" prefix and case are ignored).
	RequiredType string
	// CacheSize bounds the verified-token cache (default 10000; negative disables it).
	CacheSize int
	// CacheTTL caps how long a verified token is served from the cache (default 5 min); an
	// entry never outlives the token's exp.
	CacheTTL time.Duration
	// RefreshInterval is how often keys are refreshed in the background (default 1 h).
	RefreshInterval time.Duration
	// MaxKeyAge is how long fetched keys stay usable when refreshes fail (default 24 h); after
	// that every token is rejected until the JWKS is reachable again.
	MaxKeyAge time.Duration
	// MinRefetchInterval is the least time between two fetches of the JWKS, whatever triggers
	// them (an unknown kid, a failed fetch) (default 1 min).
	MinRefetchInterval time.Duration
	// HTTPClient fetches discovery documents and keys (default: a client with a 10 s timeout).
	// Redirects are never followed.
	HTTPClient *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives key-fetch problems (nil: discard).
	Logger *slog.Logger
}

// Validator verifies bearer access tokens issued for this gateway by one pinned issuer.
type Validator struct {
	issuer      string
	audience    string
	algs        []string
	skew        time.Duration
	maxBytes    int
	maxLifetime time.Duration
	rolesClaim  string
	groupsClaim string
	typ         string
	cacheTTL    time.Duration
	now         func() time.Time
	keys        *keySet
	cache       *tokenCache
	parser      *jwt.Parser
}

// NewValidator returns a Validator for access tokens from issuer whose audience is this
// gateway's canonical URI (RFC 8707). Keys come from opts.JWKSURL, or from the issuer's
// metadata (RFC 8414 / OpenID Connect Discovery).
func NewValidator(issuer, audience string, opts *ValidatorOptions) (*Validator, error) {
	if opts == nil {
		opts = &ValidatorOptions{}
	}
	var errs []error
	if issuer == "" {
		errs = append(errs, errors.New("issuer is required"))
	} else if err := oauthclient.CheckEndpoint(issuer); err != nil {
		errs = append(errs, fmt.Errorf("issuer: %w", err))
	}
	if _, err := CanonicalResource(audience); err != nil {
		errs = append(errs, fmt.Errorf("audience: %w", err))
	}
	if opts.JWKSURL != "" {
		if err := oauthclient.CheckEndpoint(opts.JWKSURL); err != nil {
			errs = append(errs, fmt.Errorf("jwks url: %w", err))
		}
	}
	for _, a := range opts.ExtraAudiences {
		if strings.TrimSpace(a) == "" {
			errs = append(errs, errors.New("extra audiences must not be empty"))
		}
	}
	algs, skew, problems := checkVerification(opts.Algorithms, opts.ClockSkew)
	errs = append(errs, problems...)
	maxLifetime := orDefault(opts.MaxTokenLifetime, DefaultMaxTokenLifetime)
	if maxLifetime < 0 || maxLifetime > MaxTokenLifetimeBound {
		errs = append(errs, fmt.Errorf("max token lifetime %v: want more than 0 and at most %v", maxLifetime, MaxTokenLifetimeBound))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	v := &Validator{
		issuer:      issuer,
		audience:    audience,
		algs:        algs,
		skew:        skew,
		maxBytes:    orDefault(opts.MaxTokenBytes, DefaultMaxTokenBytes),
		maxLifetime: maxLifetime,
		rolesClaim:  cmpOr(opts.RolesClaim, DefaultRolesClaim),
		groupsClaim: cmpOr(opts.GroupsClaim, DefaultGroupsClaim),
		typ:         normalizeType(opts.RequiredType),
		cacheTTL:    orDefault(opts.CacheTTL, DefaultCacheTTL),
		now:         opts.Now,
	}
	if v.now == nil {
		v.now = time.Now
	}
	size := orDefault(opts.CacheSize, DefaultCacheSize)
	v.cache = newTokenCache(size)
	client := fetchClient(opts.HTTPClient)
	get := func(ctx context.Context, u string, limit int64) ([]byte, error) {
		return getJSON(ctx, client, u, limit)
	}
	jwksURL := opts.JWKSURL
	locate := func(ctx context.Context) (string, error) {
		if jwksURL != "" {
			return jwksURL, nil
		}
		u, err := discoverJWKS(ctx, get, issuer)
		if err == nil {
			jwksURL = u // only the fetch goroutine runs locate, one at a time
		}
		return u, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	v.keys = &keySet{
		locate:       locate,
		client:       client,
		now:          v.now,
		logger:       logger,
		refreshEvery: orDefault(opts.RefreshInterval, time.Hour),
		maxAge:       orDefault(opts.MaxKeyAge, 24*time.Hour),
		minRefetch:   orDefault(opts.MinRefetchInterval, time.Minute),
		fetchTimeout: defaultFetchTTL,
	}
	v.parser = newParser(v.algs, issuer, append([]string{audience}, opts.ExtraAudiences...), skew, v.now)
	return v, nil
}

// checkVerification returns the algorithm allow-list and clock skew to verify with (the
// defaults for empty values) and the problems with the configured ones.
func checkVerification(algs []string, skew time.Duration) ([]string, time.Duration, []error) {
	var errs []error
	if len(algs) == 0 {
		algs = DefaultAlgorithms
	}
	for _, a := range algs {
		if !slices.Contains(supportedAlgorithms, a) {
			errs = append(errs, fmt.Errorf("algorithm %q is not allowed: use asymmetric algorithms (%s)", a, strings.Join(supportedAlgorithms, ", ")))
		}
	}
	skew = orDefault(skew, DefaultClockSkew)
	if skew < 0 || skew > MaxClockSkew {
		errs = append(errs, fmt.Errorf("clock skew %v is outside 0…%v", skew, MaxClockSkew))
	}
	return slices.Clone(algs), skew, errs
}

// fetchClient is the client for an issuer's metadata, keys and token endpoint: c's settings (or
// a 10 s timeout), never following a redirect.
func fetchClient(c *http.Client) *http.Client {
	client := http.Client{Timeout: defaultFetchTTL}
	if c != nil {
		client = *c
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &client
}

// newParser verifies a JWT's signature with algs only, and requires iss, an aud among audiences,
// exp, and iat (when present) within skew; duplicate claims are refused.
func newParser(algs []string, issuer string, audiences []string, skew time.Duration, now func() time.Time) *jwt.Parser {
	return jwt.NewParser(
		jwt.WithValidMethods(algs),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audiences...),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(skew),
		jwt.WithTimeFunc(now),
		jwt.WithStrictDecoding(),
	)
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func normalizeType(t string) string {
	t = strings.ToLower(t)
	return strings.TrimPrefix(t, "application/")
}

// Issuer returns the pinned issuer.
func (v *Validator) Issuer() string { return v.issuer }

// Audience returns the audience tokens must name: the gateway's canonical URI.
func (v *Validator) Audience() string { return v.audience }

// Validate verifies token and returns its principal. Every failure is a *Rejection whose Reason
// says why (for the log and the audit record, never for the client). A token seen before is
// answered from the cache until its exp or the cache TTL, whichever comes first.
func (v *Validator) Validate(ctx context.Context, token string) (*Principal, error) {
	if len(token) > v.maxBytes {
		return nil, rejectf(ReasonTooLarge, "token is %d bytes, over %d", len(token), v.maxBytes)
	}
	now := v.now()
	key := sha256.Sum256([]byte(token))
	if p, ok := v.cache.get(key, now); ok {
		return &p, nil
	}
	hdr, err := v.checkShape(token)
	if err != nil {
		return nil, err
	}
	claims := jwt.MapClaims{}
	_, err = v.parser.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) {
		return v.keys.key(ctx, hdr.Kid, hdr.Alg)
	})
	if err != nil {
		return nil, classify(err, claims)
	}
	if err := v.checkLifetime(claims, now); err != nil {
		return nil, err
	}
	p, err := v.principal(claims)
	if err != nil {
		return nil, err
	}
	until := now.Add(v.cacheTTL)
	if p.Expires.Before(until) {
		until = p.Expires
	}
	v.cache.put(key, *p, until)
	return p, nil
}

// checkLifetime refuses a token meant to live longer than the maximum lifetime: exp - iat, or
// without iat, exp - now beyond the clock skew. Only the issuer can mint a token, but a token
// that outlives any reasonable session turns one leak into a lasting one.
func (v *Validator) checkLifetime(c jwt.MapClaims, now time.Time) error {
	exp, err := c.GetExpirationTime()
	if err != nil || exp == nil {
		return reject(ReasonMissingExp, err)
	}
	iat, err := c.GetIssuedAt()
	if err != nil {
		return reject(ReasonClaims, err)
	}
	if iat != nil {
		if life := exp.Sub(iat.Time); life > v.maxLifetime {
			return rejectf(ReasonLifetime, "token lives %v (exp - iat), over the maximum %v", life, v.maxLifetime)
		}
		return nil
	}
	if left := exp.Sub(now); left > v.maxLifetime+v.skew {
		return rejectf(ReasonLifetime, "token without iat expires in %v, over the maximum lifetime %v", left.Round(time.Second), v.maxLifetime)
	}
	return nil
}

// joseHeader is the part of the JOSE header the gateway reads. The URL- and key-carrying members
// are decoded only to refuse them.
type joseHeader struct {
	Alg  string         `json:"alg"`
	Kid  string         `json:"kid"`
	Typ  string         `json:"typ"`
	JKU  jsontext.Value `json:"jku"`
	X5U  jsontext.Value `json:"x5u"`
	JWK  jsontext.Value `json:"jwk"`
	X5C  jsontext.Value `json:"x5c"`
	Crit jsontext.Value `json:"crit"`
}

// checkShape refuses, before any key lookup, what no valid access token looks like: what
// parseJOSE refuses, headers that point at keys elsewhere, and a typ other than the required one.
func (v *Validator) checkShape(token string) (joseHeader, error) {
	hdr, err := parseJOSE(token, v.algs)
	if err != nil {
		return hdr, err
	}
	for name, val := range map[string]jsontext.Value{"jku": hdr.JKU, "x5u": hdr.X5U, "jwk": hdr.JWK, "x5c": hdr.X5C} {
		if val != nil {
			return hdr, rejectf(ReasonForbiddenHeader, "header carries %q: keys come only from the issuer's JWKS", name)
		}
	}
	if v.typ != "" && normalizeType(hdr.Typ) != v.typ {
		return hdr, rejectf(ReasonType, "typ %q, want %q", truncate(hdr.Typ), v.typ)
	}
	return hdr, nil
}

// parseJOSE refuses what no valid JWS looks like: anything but three strict base64url
// segments; a header or payload that is not one strict JSON object (duplicate member names
// refused, so no reader can see a different claim than the one checked); an algorithm outside
// algs; a crit header (no extension is understood); and an empty signature.
func parseJOSE(token string, algs []string) (joseHeader, error) {
	var hdr joseHeader
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return hdr, rejectf(ReasonMalformed, "token has %d segments, want 3", len(parts))
	}
	var seg [3][]byte
	for i, p := range parts {
		b, err := base64.RawURLEncoding.Strict().DecodeString(p)
		if err != nil {
			return hdr, rejectf(ReasonMalformed, "segment %d is not base64url: %v", i+1, err)
		}
		seg[i] = b
	}
	for i, name := range []string{"header", "payload"} {
		if len(seg[i]) == 0 || seg[i][0] != '{' || !jsontext.Value(seg[i]).IsValid() {
			return hdr, rejectf(ReasonMalformed, "%s is not one strict JSON object", name)
		}
	}
	if err := json.Unmarshal(seg[0], &hdr); err != nil {
		return hdr, rejectf(ReasonMalformed, "header: %v", err)
	}
	if !slices.Contains(algs, hdr.Alg) {
		return hdr, rejectf(ReasonAlgorithm, "alg %q is not in the allow-list", truncate(hdr.Alg))
	}
	if hdr.Crit != nil {
		return hdr, rejectf(ReasonForbiddenHeader, `header carries "crit": no extension is understood`)
	}
	if len(seg[2]) == 0 {
		return hdr, reject(ReasonMalformed, errors.New("empty signature"))
	}
	return hdr, nil
}

// classify maps a jwt/v5 error to a Rejection; claims are what the parser decoded.
func classify(err error, claims jwt.MapClaims) error {
	var r *Rejection
	if errors.As(err, &r) {
		return r
	}
	switch {
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		if _, ok := claims["exp"]; !ok {
			return reject(ReasonMissingExp, err)
		}
		if _, ok := claims["aud"]; !ok {
			return reject(ReasonAudience, err)
		}
		if _, ok := claims["iss"]; !ok {
			return reject(ReasonIssuer, err)
		}
		return reject(ReasonClaims, err)
	case errors.Is(err, jwt.ErrTokenExpired):
		return reject(ReasonExpired, err)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return reject(ReasonNotYetValid, err)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return reject(ReasonIssuedInFuture, err)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return reject(ReasonIssuer, err)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return reject(ReasonAudience, err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return reject(ReasonSignature, err)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return reject(ReasonMalformed, err)
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return reject(ReasonClaims, err)
	}
	return reject(ReasonSignature, err)
}

// principal maps verified claims to a Principal.
func (v *Validator) principal(c jwt.MapClaims) (*Principal, error) {
	exp, err := c.GetExpirationTime()
	if err != nil || exp == nil {
		return nil, reject(ReasonMissingExp, err)
	}
	p := &Principal{Method: MethodJWT, Issuer: v.issuer, Expires: exp.Time}
	p.Subject, _ = c["sub"].(string)
	for _, name := range []string{"client_id", "azp", "appid", "cid"} {
		if s, ok := c[name].(string); ok && s != "" {
			p.ClientID = s
			break
		}
	}
	if p.Subject == "" {
		p.Subject = p.ClientID
	}
	if p.Subject == "" {
		return nil, reject(ReasonClaims, errors.New("token has neither sub nor a client id"))
	}
	if p.Roles, err = stringsClaim(lookupClaim(c, v.rolesClaim)); err != nil {
		return nil, rejectf(ReasonClaims, "roles claim %q: %w", v.rolesClaim, err)
	}
	if p.Groups, err = groupsClaim(lookupClaim(c, v.groupsClaim)); err != nil {
		return nil, rejectf(ReasonClaims, "groups claim %q: %w", v.groupsClaim, err)
	}
	for _, name := range []string{"scope", "scp"} {
		if val, ok := c[name]; ok {
			if p.Scopes, err = stringsClaim(val, true); err != nil {
				return nil, rejectf(ReasonClaims, "%s claim: %w", name, err)
			}
			break
		}
	}
	// The claims are kept for the policy (claims: bindings, when: conditions); their size is
	// bounded by MaxTokenBytes.
	p.Claims = maps.Clone(map[string]any(c))
	return p, nil
}

// lookupClaim finds name as a top-level claim, or else as a dotted path through nested objects.
func lookupClaim(c map[string]any, name string) (any, bool) {
	if v, ok := c[name]; ok {
		return v, true
	}
	var cur any = c
	for part := range strings.SplitSeq(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// groupsClaim reads an array of strings, or a string naming one group (group names may hold
// spaces).
func groupsClaim(v any, present bool) ([]string, error) {
	if s, ok := v.(string); ok && present {
		if s == "" {
			return nil, nil
		}
		return []string{s}, nil
	}
	return stringsClaim(v, present)
}

// stringsClaim reads an array of strings, or a space-separated string.
func stringsClaim(v any, present bool) ([]string, error) {
	if !present || v == nil {
		return nil, nil
	}
	switch t := v.(type) {
	case string:
		return strings.Fields(t), nil
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("element of type %T, want string", e)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("value of type %T, want an array of strings or a string", v)
}
