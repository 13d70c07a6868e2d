package authn

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/mcpguard/mcpguard/internal/oauthclient"
)

// Reasons an OpenID Connect login is refused, besides the token reasons (bad_signature,
// expired, wrong_audience, …) its ID token can earn.
const (
	ReasonLoginState      Reason = "login_state"          // unknown or already used state
	ReasonLoginExpired    Reason = "login_expired"        // the login took longer than its time limit
	ReasonIdPRefused      Reason = "idp_refused"          // the provider redirected back with error=
	ReasonCallback        Reason = "bad_callback"         // the callback has neither code nor error
	ReasonCodeExchange    Reason = "code_exchange_failed" // the token endpoint refused the code
	ReasonIdPUnavailable  Reason = "idp_unavailable"      // discovery or the token endpoint could not be reached
	ReasonNonce           Reason = "wrong_nonce"          // the ID token's nonce is not this login's
	ReasonAMR             Reason = "amr_missing"          // a required authentication method is not in amr
	ReasonUnknownOperator Reason = "unknown_operator"     // no operator account has the claimed name
)

// OIDC login defaults and bounds.
const (
	DefaultOperatorClaim     = "preferred_username"
	DefaultMaxPendingLogins  = 1000
	DefaultPendingLoginTTL   = 10 * time.Minute
	maxIDTokenBytes          = 32 << 10
	oidcMetadataRefreshEvery = time.Hour
)

// ErrTooManyLogins is returned by BeginLogin when the pending logins are at their bound.
var ErrTooManyLogins = errors.New("too many logins in progress")

// OIDCLoginConfig names the OpenID provider and this gateway's client registration there.
type OIDCLoginConfig struct {
	Issuer   string
	ClientID string
	// ClientSecret authenticates the code exchange (client_secret_basic); empty means a public
	// client, protected by PKCE alone.
	ClientSecret string
	// RedirectURL is where the provider sends the browser back: the admin API's
	// /v1/login/oidc/callback, registered at the provider.
	RedirectURL string
	// Scopes requested (default ["openid"]; "openid" is always requested).
	Scopes []string
	// OperatorClaim is the ID-token claim (or dotted path) whose value, lower-cased, names the
	// operator account (default "preferred_username").
	OperatorClaim string
	// RequiredAMR must each appear in the ID token's amr claim.
	RequiredAMR []string
}

// OIDCLoginOptions tunes an OIDCLogin. The zero value is usable.
type OIDCLoginOptions struct {
	MaxPending int           // logins started and not finished (default 1000)
	PendingTTL time.Duration // how long a started login may take (default 10 min)
	ClockSkew  time.Duration // tolerance on exp and iat (default 60 s, at most 5 min)
	Algorithms []string      // accepted ID-token algorithms (default DefaultAlgorithms)
	HTTPClient *http.Client  // default: 10 s timeout; redirects are never followed
	Now        func() time.Time
	Rand       io.Reader
	Logger     *slog.Logger // key-fetch problems (nil: discard)
	// States keeps the logins under way (default: this process's memory). A deployment of
	// several instances gives them the identities database, so that the provider's callback
	// may reach any instance.
	States LoginStateStore
}

// PendingLogin is what a started login must match when the browser comes back.
type PendingLogin struct {
	Nonce    string
	Verifier string // the PKCE code verifier
	Started  time.Time
}

// LoginStateStore keeps the OIDC logins under way, by state. Each is taken once.
type LoginStateStore interface {
	// PutLoginState stores p under state, after deleting the logins started at or before
	// expiredBefore; ErrTooManyLogins when max logins are still pending.
	PutLoginState(ctx context.Context, state string, p PendingLogin, max int, expiredBefore time.Time) error
	// TakeLoginState returns the pending login of state and deletes it; ErrNotFound when
	// there is none.
	TakeLoginState(ctx context.Context, state string) (PendingLogin, error)
}

// memLoginStates is the LoginStateStore of one process.
type memLoginStates struct {
	mu      sync.Mutex
	pending map[string]PendingLogin
}

func (m *memLoginStates) PutLoginState(_ context.Context, state string, p PendingLogin, max int, expiredBefore time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.pending) >= max {
		for s, q := range m.pending {
			if !q.Started.After(expiredBefore) {
				delete(m.pending, s)
			}
		}
	}
	if len(m.pending) >= max {
		return ErrTooManyLogins
	}
	m.pending[state] = p
	return nil
}

func (m *memLoginStates) TakeLoginState(_ context.Context, state string) (PendingLogin, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.pending[state]
	if !ok {
		return p, ErrNotFound
	}
	delete(m.pending, state)
	return p, nil
}

// OIDCLogin logs operators in with an OpenID provider: the authorization code flow with PKCE
// (S256), state and nonce. The ID token names an existing operator account, which gets a session
// exactly as a password login does. The provider is responsible for multi-factor
// authentication; RequiredAMR lets the gateway insist on it.
type OIDCLogin struct {
	cfg    OIDCLoginConfig
	secret Secret
	ops    *Operators
	client *http.Client
	keys   *keySet
	algs   []string
	skew   time.Duration
	ttl    time.Duration
	max    int
	now    func() time.Time
	rand   io.Reader
	parser *jwt.Parser

	metaMu sync.Mutex
	meta   issuerMetadata
	metaAt time.Time
	states LoginStateStore
}

// NewOIDCLogin returns the OIDC login for the operators of ops. Nothing is fetched until the
// first login.
func NewOIDCLogin(cfg OIDCLoginConfig, ops *Operators, opts *OIDCLoginOptions) (*OIDCLogin, error) {
	if opts == nil {
		opts = &OIDCLoginOptions{}
	}
	var errs []error
	if err := oauthclient.CheckEndpoint(cfg.Issuer); err != nil {
		errs = append(errs, fmt.Errorf("issuer: %w", err))
	}
	if cfg.ClientID == "" {
		errs = append(errs, errors.New("client id is required"))
	}
	if u, err := url.Parse(cfg.RedirectURL); err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" {
		errs = append(errs, fmt.Errorf("redirect url %q is not an absolute URL without fragment", truncate(cfg.RedirectURL)))
	}
	algs, skew, problems := checkVerification(opts.Algorithms, opts.ClockSkew)
	errs = append(errs, problems...)
	if ops == nil {
		errs = append(errs, errors.New("operators are required"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	cfg.OperatorClaim = cmpOr(cfg.OperatorClaim, DefaultOperatorClaim)
	cfg.Scopes = slices.Clone(cfg.Scopes)
	if !slices.Contains(cfg.Scopes, "openid") {
		cfg.Scopes = append([]string{"openid"}, cfg.Scopes...)
	}
	l := &OIDCLogin{
		cfg:    cfg,
		secret: Secret{cfg.ClientSecret},
		ops:    ops,
		algs:   algs,
		skew:   skew,
		ttl:    orDefault(opts.PendingTTL, DefaultPendingLoginTTL),
		max:    orDefault(opts.MaxPending, DefaultMaxPendingLogins),
		now:    opts.Now,
		rand:   opts.Rand,
		states: opts.States,
	}
	if l.states == nil {
		l.states = &memLoginStates{pending: map[string]PendingLogin{}}
	}
	l.cfg.ClientSecret = "" // kept only as a Secret, which no log can print
	if l.now == nil {
		l.now = time.Now
	}
	if l.rand == nil {
		l.rand = rand.Reader
	}
	l.client = fetchClient(opts.HTTPClient)
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l.keys = &keySet{
		locate: func(ctx context.Context) (string, error) {
			m, err := l.metadata(ctx)
			return m.JWKSURI, err
		},
		client: l.client, now: l.now, logger: logger,
		refreshEvery: time.Hour, maxAge: 24 * time.Hour, minRefetch: time.Minute, fetchTimeout: defaultFetchTTL,
	}
	l.parser = newParser(l.algs, cfg.Issuer, []string{cfg.ClientID}, skew, l.now)
	return l, nil
}

// PendingTTL is how long a started login may take.
func (l *OIDCLogin) PendingTTL() time.Duration { return l.ttl }

// metadata returns the provider's discovered metadata, fetched on first use and again after an
// hour; a failed refresh keeps the metadata already known.
func (l *OIDCLogin) metadata(ctx context.Context) (issuerMetadata, error) {
	l.metaMu.Lock()
	defer l.metaMu.Unlock()
	if !l.metaAt.IsZero() && l.now().Sub(l.metaAt) < oidcMetadataRefreshEvery {
		return l.meta, nil
	}
	get := func(ctx context.Context, u string, limit int64) ([]byte, error) {
		return getJSON(ctx, l.client, u, limit)
	}
	m, err := discoverIssuer(ctx, get, l.cfg.Issuer)
	if err == nil {
		err = checkLoginEndpoints(m)
	}
	if err != nil {
		if !l.metaAt.IsZero() {
			return l.meta, nil
		}
		return issuerMetadata{}, err
	}
	l.meta, l.metaAt = m, l.now()
	return m, nil
}

// checkLoginEndpoints refuses metadata the code flow with PKCE cannot use.
func checkLoginEndpoints(m issuerMetadata) error {
	for name, u := range map[string]string{"authorization_endpoint": m.AuthorizationEndpoint, "token_endpoint": m.TokenEndpoint} {
		if u == "" {
			return fmt.Errorf("the provider's metadata has no %s", name)
		}
		if err := oauthclient.CheckEndpoint(u); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if m.CodeChallengeMethods != nil && !slices.Contains(m.CodeChallengeMethods, "S256") {
		return errors.New("the provider does not support PKCE with S256 (code_challenge_methods_supported)")
	}
	return nil
}

// BeginLogin starts a login and returns the provider's authorization URL to send the browser
// to, and the login's state, which the callback will carry (a caller may bind it to the
// browser). It fails with ErrTooManyLogins when MaxPending logins are under way, and with a
// *Rejection (ReasonIdPUnavailable) when the provider's metadata cannot be read.
func (l *OIDCLogin) BeginLogin(ctx context.Context) (authURL, state string, err error) {
	meta, err := l.metadata(ctx)
	if err != nil {
		return "", "", reject(ReasonIdPUnavailable, err)
	}
	var nonce, verifier string
	for _, dst := range []*string{&state, &nonce, &verifier} {
		var b [32]byte
		if _, err := io.ReadFull(l.rand, b[:]); err != nil {
			return "", "", fmt.Errorf("random: %w", err)
		}
		*dst = base64.RawURLEncoding.EncodeToString(b[:])
	}
	now := l.now()
	if err := l.states.PutLoginState(ctx, state, PendingLogin{Nonce: nonce, Verifier: verifier, Started: now}, l.max, now.Add(-l.ttl)); err != nil {
		if errors.Is(err, ErrTooManyLogins) {
			return "", "", err
		}
		return "", "", fmt.Errorf("store the login's state: %w", err)
	}

	conf := oauth2.Config{
		ClientID:    l.cfg.ClientID,
		RedirectURL: l.cfg.RedirectURL,
		Scopes:      l.cfg.Scopes,
		Endpoint:    oauth2.Endpoint{AuthURL: meta.AuthorizationEndpoint},
	}
	authURL = conf.AuthCodeURL(state, oauth2.SetAuthURLParam("nonce", nonce), oauth2.S256ChallengeOption(verifier))
	return authURL, state, nil
}

// IdPError is an OAuth error code the provider answered with, reduced to the characters RFC 6749
// allows in one, so that it can be shown to the person logging in.
type IdPError struct{ Code string }

func (e *IdPError) Error() string { return "the identity provider answered " + e.Code }

func idpError(code string) *IdPError {
	clean := strings.Map(func(r rune) rune {
		if r >= 0x20 && r <= 0x7e && r != '"' && r != '\\' && r != '<' && r != '>' && r != '&' {
			return r
		}
		return -1
	}, code)
	if len(clean) > 64 {
		clean = clean[:64]
	}
	if clean == "" {
		clean = "unspecified_error"
	}
	return &IdPError{Code: clean}
}

// OIDCIdentity is who the provider says logged in, for the log and the audit record.
type OIDCIdentity struct {
	Subject  string // the ID token's sub
	Operator string // the operator claim's value, lower-cased
	// MFA says the ID token's amr claim shows multi-factor authentication (AMRShowsMFA): only
	// then may the session approve held calls.
	MFA bool
}

// FinishLogin completes a login from the callback's query parameters: the state must be a
// pending login's (each is usable once), the code is exchanged with the PKCE verifier, and the
// ID token must verify and name an enabled operator. It returns the session token and the
// operator's principal, like Operators.Login. Every refusal is a *Rejection; the identity, as
// far as it is known, is returned either way.
func (l *OIDCLogin) FinishLogin(ctx context.Context, query url.Values) (Secret, *Principal, OIDCIdentity, error) {
	var who OIDCIdentity
	state := query.Get("state")
	if state == "" {
		return Secret{}, nil, who, rejectf(ReasonLoginState, "no login is pending with this state")
	}
	p, err := l.states.TakeLoginState(ctx, state)
	switch {
	case errors.Is(err, ErrNotFound):
		return Secret{}, nil, who, rejectf(ReasonLoginState, "no login is pending with this state")
	case err != nil:
		return Secret{}, nil, who, reject(ReasonStore, fmt.Errorf("read the login's state: %w", err))
	}
	if !l.now().Before(p.Started.Add(l.ttl)) {
		return Secret{}, nil, who, rejectf(ReasonLoginExpired, "the login started at %s, over %v ago", p.Started.UTC().Format(time.RFC3339), l.ttl)
	}
	if e := query.Get("error"); e != "" {
		return Secret{}, nil, who, reject(ReasonIdPRefused, fmt.Errorf("%w: %s", idpError(e), truncate(query.Get("error_description"))))
	}
	code := query.Get("code")
	if code == "" {
		return Secret{}, nil, who, rejectf(ReasonCallback, "the callback has no code")
	}
	rawID, err := l.exchange(ctx, code, p.Verifier)
	if err != nil {
		return Secret{}, nil, who, err
	}
	claims, err := l.verifyIDToken(ctx, rawID, p)
	if err != nil {
		return Secret{}, nil, who, err
	}
	who.Subject, _ = claims["sub"].(string)
	v, _ := lookupClaim(claims, l.cfg.OperatorClaim)
	name, _ := v.(string)
	who.Operator = strings.ToLower(name)
	if who.Operator == "" {
		return Secret{}, nil, who, rejectf(ReasonClaims, "the ID token has no string claim %q", l.cfg.OperatorClaim)
	}
	amr, _ := stringsClaim(claims["amr"], claims["amr"] != nil)
	who.MFA = AMRShowsMFA(amr)
	token, principal, err := l.ops.loginVerified(ctx, who.Operator, who.MFA)
	return token, principal, who, err
}

// exchange trades the authorization code for tokens and returns the raw ID token.
func (l *OIDCLogin) exchange(ctx context.Context, code, verifier string) (string, error) {
	meta, err := l.metadata(ctx)
	if err != nil {
		return "", reject(ReasonIdPUnavailable, err)
	}
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {l.cfg.RedirectURL},
		"code_verifier": {verifier},
	}
	if l.secret.Reveal() == "" {
		form.Set("client_id", l.cfg.ClientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, meta.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", reject(ReasonIdPUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if l.secret.Reveal() != "" {
		// RFC 6749 section 2.3.1: both parts form-urlencoded before Basic encoding.
		req.SetBasicAuth(url.QueryEscape(l.cfg.ClientID), url.QueryEscape(l.secret.Reveal()))
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return "", reject(ReasonIdPUnavailable, fmt.Errorf("token endpoint: %w", err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, oauthclient.MaxResponseBytes+1))
	if err != nil {
		return "", reject(ReasonIdPUnavailable, fmt.Errorf("token endpoint: %w", err))
	}
	if len(body) > oauthclient.MaxResponseBytes {
		return "", rejectf(ReasonCodeExchange, "the token endpoint's answer is over %d bytes", oauthclient.MaxResponseBytes)
	}
	return idToken(resp.StatusCode, body)
}

// idToken reads the token endpoint's answer to the code exchange with the reader every token
// answer goes through (oauthclient.ParseTokenResponse) and returns its id_token. A refusal is
// code_exchange_failed with the provider's error code, or idp_unavailable for a 5xx without one.
func idToken(status int, body []byte) (string, error) {
	r, err := oauthclient.ParseTokenResponse(status, body)
	var te *oauthclient.TokenError
	switch {
	case errors.As(err, &te) && te.Code != "":
		return "", reject(ReasonCodeExchange, fmt.Errorf("HTTP %d: %w", te.Status, idpError(te.Code)))
	case errors.As(err, &te) && te.Status >= 500:
		return "", rejectf(ReasonIdPUnavailable, "the token endpoint answered HTTP %d", te.Status)
	case errors.As(err, &te):
		return "", rejectf(ReasonCodeExchange, "the token endpoint answered HTTP %d", te.Status)
	case err != nil:
		return "", rejectf(ReasonCodeExchange, "the token endpoint %w", err)
	case r.IDToken() == "":
		return "", rejectf(ReasonCodeExchange, "the token endpoint's answer has no id_token: is the openid scope granted?")
	}
	return r.IDToken(), nil
}

// verifyIDToken checks the ID token as OpenID Connect Core section 3.1.3.7 asks: signature by
// the issuer's JWKS (asymmetric algorithms only; keys named in the header are ignored), iss,
// aud and azp, exp and iat within the clock skew and iat not before the login began, the nonce,
// and the required amr values.
func (l *OIDCLogin) verifyIDToken(ctx context.Context, raw string, p PendingLogin) (jwt.MapClaims, error) {
	if len(raw) > maxIDTokenBytes {
		return nil, rejectf(ReasonTooLarge, "ID token is %d bytes, over %d", len(raw), maxIDTokenBytes)
	}
	hdr, err := parseJOSE(raw, l.algs)
	if err != nil {
		return nil, err
	}
	claims := jwt.MapClaims{}
	if _, err := l.parser.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) {
		return l.keys.key(ctx, hdr.Kid, hdr.Alg)
	}); err != nil {
		return nil, classify(err, claims)
	}
	iat, err := claims.GetIssuedAt()
	if err != nil || iat == nil {
		return nil, rejectf(ReasonClaims, "the ID token has no iat")
	}
	if iat.Before(p.Started.Add(-l.skew)) {
		return nil, rejectf(ReasonClaims, "the ID token was issued at %s, before this login began", iat.UTC().Format(time.RFC3339))
	}
	aud, _ := claims.GetAudience()
	azp, hasAZP := claims["azp"]
	if (len(aud) > 1 || hasAZP) && azp != l.cfg.ClientID {
		return nil, rejectf(ReasonAudience, "azp %q is not this client (audiences %q)", truncate(fmt.Sprint(azp)), aud)
	}
	if sub, _ := claims["sub"].(string); sub == "" {
		return nil, rejectf(ReasonClaims, "the ID token has no sub")
	}
	nonce, _ := claims["nonce"].(string)
	if subtle.ConstantTimeCompare([]byte(nonce), []byte(p.Nonce)) != 1 {
		return nil, rejectf(ReasonNonce, "the ID token's nonce is not this login's")
	}
	if len(l.cfg.RequiredAMR) > 0 {
		v, present := claims["amr"]
		amr, err := stringsClaim(v, present)
		if err != nil {
			return nil, rejectf(ReasonClaims, "amr claim: %w", err)
		}
		for _, want := range l.cfg.RequiredAMR {
			if !slices.Contains(amr, want) {
				return nil, rejectf(ReasonAMR, "amr %q lacks %q", amr, want)
			}
		}
	}
	return claims, nil
}

// loginVerified opens a session for an operator whom a trusted party (the OpenID provider) has
// authenticated, with more than one factor when mfa: the account must exist and be enabled. The
// password lockout does not apply: it counts password and TOTP failures, which this login does
// not involve.
func (o *Operators) loginVerified(ctx context.Context, name string, mfa bool) (Secret, *Principal, error) {
	op, err := o.store.Operator(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return Secret{}, nil, rejectf(ReasonUnknownOperator, "no operator %q", truncate(name))
	}
	if err != nil {
		return Secret{}, nil, reject(ReasonStore, err)
	}
	if op.Disabled {
		return Secret{}, nil, rejectf(ReasonDisabled, "operator %s is disabled", name)
	}
	token, p, err := o.sessions.open(ctx, op, mfa)
	if err != nil {
		return Secret{}, nil, reject(ReasonStore, err)
	}
	return token, p, nil
}

// The authentication method references of RFC 8176, by the factor each proves. "mfa" and "mca"
// say so themselves; "geo", "rba", "wia" and "user" prove no factor of their own.
var (
	amrKnowledge  = []string{"pwd", "pin", "kba"}
	amrPossession = []string{"hwk", "swk", "otp", "sms", "tel", "sc", "pop"}
	amrInherence  = []string{"fpt", "face", "iris", "retina", "vbm"}
)

// AMRShowsMFA reports whether an ID token's amr claim shows multi-factor authentication: it
// holds "mfa", or methods of at least two different factors (something known, something held,
// something one is) — ["pwd","otp"] or ["hwk","fpt"], not ["pwd","kba"] nor ["otp"]. Providers
// that report no amr at all show nothing.
func AMRShowsMFA(amr []string) bool {
	if slices.Contains(amr, "mfa") {
		return true
	}
	factors := 0
	for _, class := range [][]string{amrKnowledge, amrPossession, amrInherence} {
		if slices.ContainsFunc(amr, func(m string) bool { return slices.Contains(class, m) }) {
			factors++
		}
	}
	return factors >= 2
}
