package authn

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
)

// TokenVerifier verifies a bearer access token; *Validator implements it.
type TokenVerifier interface {
	Validate(ctx context.Context, token string) (*Principal, error)
}

// AuthenticatorOptions configures an Authenticator.
type AuthenticatorOptions struct {
	// APIKeys, when set, verifies bearer credentials that have the API key form (mcpg_…).
	APIKeys *APIKeys
	// Sessions, when set, accepts operator session tokens (mcps_…): for the admin API.
	Sessions *Sessions
	// Certificates, when set, authenticates a request that carries no Authorization header by
	// the client certificate the TLS listener verified (mTLS).
	Certificates *CertificateMapper
	// RequiredScopes must all be granted to a token for any request (403 insufficient_scope
	// otherwise). API keys carry roles, not scopes, and are not held to them.
	RequiredScopes []string
	// ChallengeScopes are advertised in the 401 challenge's scope= (default RequiredScopes).
	ChallengeScopes []string
	// OnReject is called for every refused request, with the status sent and the internal
	// reason: the audit hook. It must not keep r past the call.
	OnReject func(ctx context.Context, r *http.Request, status int, rej *Rejection)
	// Logger records each refusal with its real reason, never the credential (nil: discard).
	Logger *slog.Logger
	// Observe, when set, is told how long each request's authentication took (Middleware):
	// the metrics' authenticate step.
	Observe func(took time.Duration)
}

// Authenticator is the authentication step of the request pipeline.
type Authenticator struct {
	tokens      TokenVerifier
	keys        *APIKeys
	sessions    *Sessions
	certs       *CertificateMapper
	required    []string
	challenge   []string
	metadataURL string
	onReject    func(ctx context.Context, r *http.Request, status int, rej *Rejection)
	logger      *slog.Logger
	observe     func(took time.Duration)
}

// NewAuthenticator returns the authentication step for the protected resource (the gateway's
// canonical URI), whose metadata (MetadataHandler) the challenges name in resource_metadata.
// tokens may be nil when only API keys, sessions or client certificates are accepted; resource
// may then be "": no metadata is served, and the challenges name none.
func NewAuthenticator(resource string, tokens TokenVerifier, opts *AuthenticatorOptions) (*Authenticator, error) {
	if opts == nil {
		opts = &AuthenticatorOptions{}
	}
	var metadataURL string
	switch {
	case resource != "":
		res, err := CanonicalResource(resource)
		if err != nil {
			return nil, err
		}
		metadataURL = MetadataURL(res)
	case tokens != nil:
		return nil, errors.New("accepting bearer tokens needs the gateway's canonical URI: clients find the authorization server through its resource metadata")
	}
	if tokens == nil && opts.APIKeys == nil && opts.Sessions == nil && opts.Certificates == nil {
		return nil, errors.New("authentication needs a token validator, API keys, operator sessions or client certificates")
	}
	a := &Authenticator{
		tokens:      tokens,
		keys:        opts.APIKeys,
		sessions:    opts.Sessions,
		certs:       opts.Certificates,
		required:    opts.RequiredScopes,
		challenge:   opts.ChallengeScopes,
		metadataURL: metadataURL,
		onReject:    opts.OnReject,
		logger:      opts.Logger,
		observe:     opts.Observe,
	}
	if a.challenge == nil {
		a.challenge = a.required
	}
	if a.logger == nil {
		a.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return a, nil
}

// MetadataURL is the resource_metadata URL the challenges point to; "" when there is none.
func (a *Authenticator) MetadataURL() string { return a.metadataURL }

// Middleware authenticates each request and passes it on with its Principal in the context
// (PrincipalFrom) and the Authorization header removed, so the client's credential can never
// travel further. Refusals follow the response contract: 400 invalid_request for a malformed
// request, 401 with a challenge naming the resource metadata for a missing or rejected
// credential, 403 insufficient_scope, 503 when the credential store is down.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var start time.Time
		if a.observe != nil {
			start = time.Now()
		}
		p, err := a.Authenticate(r)
		if a.observe != nil {
			a.observe(time.Since(start))
		}
		if err != nil {
			a.refuse(w, r, err)
			return
		}
		if missing := p.MissingScopes(a.required); p.Method == MethodJWT && len(missing) > 0 {
			a.logRefusal(r, http.StatusForbidden, rejectf(ReasonScope, "token for %q lacks scopes %v", p.Subject, missing))
			a.InsufficientScope(w, a.required)
			return
		}
		r2 := r.WithContext(WithPrincipal(r.Context(), p))
		r2.Header = withoutCredential(r.Header)
		next.ServeHTTP(w, r2)
	})
}

// Authenticate reads the request's credential and verifies it. The error is a *Rejection.
func (a *Authenticator) Authenticate(r *http.Request) (*Principal, error) {
	if tokenInQuery(r.URL) {
		return nil, rejectf(ReasonTokenInQuery, "access_token in the query string")
	}
	values := r.Header.Values("Authorization")
	switch {
	case len(values) > 1:
		return nil, rejectf(ReasonDuplicateHeader, "%d Authorization headers", len(values))
	case len(values) == 0 || strings.TrimSpace(values[0]) == "":
		if a.certs != nil {
			if p, ok, err := a.certs.Principal(r.TLS); ok {
				return p, err
			}
		}
		return nil, reject(ReasonMissing, nil)
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(values[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, rejectf(ReasonScheme, "scheme %q", truncate(scheme))
	}
	token = strings.TrimSpace(token)
	if token == "" || strings.ContainsAny(token, " \t,") {
		return nil, rejectf(ReasonMalformed, "bearer credential is empty or has separators")
	}
	if a.keys != nil && IsAPIKey(token) {
		return a.keys.Verify(r.Context(), token)
	}
	if a.sessions != nil && strings.HasPrefix(token, SessionPrefix) {
		return a.sessions.Authenticate(r.Context(), token)
	}
	if a.tokens == nil {
		return nil, rejectf(ReasonMalformed, "bearer credential is of a kind this endpoint does not accept")
	}
	return a.tokens.Validate(r.Context(), token)
}

func tokenInQuery(u *url.URL) bool {
	if u.RawQuery == "" {
		return false
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return strings.Contains(strings.ToLower(u.RawQuery), "access_token")
	}
	_, ok := q["access_token"]
	return ok
}

// Public texts: the same for every reason within a status, so a refusal teaches an attacker
// nothing about which check failed. The one exception is publicLifetime: that check runs only
// once the signature has verified, so it tells only the holder of a genuine token what its
// authorization server must change.
const (
	publicUnauthorized = "authentication required"
	publicInvalidToken = "the access token is invalid"
	publicLifetime     = "the access token's lifetime is longer than this resource accepts"
	publicBadRequest   = "send the credential once, in the Authorization header (not in the URL)"
	publicScope        = "the access token lacks a required scope"
	publicUnavailable  = "authentication is temporarily unavailable"
)

func (a *Authenticator) refuse(w http.ResponseWriter, r *http.Request, err error) {
	var rej *Rejection
	if !errors.As(err, &rej) {
		rej = reject(ReasonSignature, err)
	}
	status := http.StatusUnauthorized
	switch rej.Reason {
	case ReasonDuplicateHeader, ReasonTokenInQuery:
		status = http.StatusBadRequest
		c := Challenge{Error: "invalid_request", Description: publicBadRequest, ResourceMetadata: a.metadataURL}
		w.Header().Set("WWW-Authenticate", c.String())
		writeOAuthError(w, status, "invalid_request", publicBadRequest)
	case ReasonStore:
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "5")
		writeOAuthError(w, status, "temporarily_unavailable", publicUnavailable)
	case ReasonMissing, ReasonScheme:
		// No credential in the Bearer scheme: a bare challenge (RFC 6750 section 3.1).
		c := Challenge{ResourceMetadata: a.metadataURL, Scopes: a.challenge}
		w.Header().Set("WWW-Authenticate", c.String())
		writeOAuthError(w, status, "invalid_token", publicUnauthorized)
	default:
		desc := publicInvalidToken
		if rej.Reason == ReasonLifetime {
			desc = publicLifetime
		}
		c := Challenge{Error: "invalid_token", Description: desc, ResourceMetadata: a.metadataURL, Scopes: a.challenge}
		w.Header().Set("WWW-Authenticate", c.String())
		writeOAuthError(w, status, "invalid_token", desc)
	}
	a.logRefusal(r, status, rej)
}

func (a *Authenticator) logRefusal(r *http.Request, status int, rej *Rejection) {
	level := slog.LevelInfo
	if rej.Reason == ReasonMissing {
		level = slog.LevelDebug
	} else if rej.Reason == ReasonStore || rej.Reason == ReasonKeysUnavailable {
		level = slog.LevelError
	}
	attrs := []any{"status", status, "reason", string(rej.Reason), "detail", rej.Error(), "remote", r.RemoteAddr}
	if rej.KeyID != "" {
		attrs = append(attrs, "api_key_id", rej.KeyID)
	}
	a.logger.Log(r.Context(), level, "authentication refused", attrs...)
	if a.onReject != nil {
		a.onReject(r.Context(), r, status, rej)
	}
}

// InsufficientScope answers 403 with an insufficient_scope challenge naming the scopes the
// request needs (RFC 6750 section 3.1; MCP step-up authorization).
func (a *Authenticator) InsufficientScope(w http.ResponseWriter, scopes []string) {
	c := Challenge{Error: "insufficient_scope", Description: publicScope, Scopes: scopes, ResourceMetadata: a.metadataURL}
	w.Header().Set("WWW-Authenticate", c.String())
	writeOAuthError(w, http.StatusForbidden, "insufficient_scope", publicScope)
}

func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	body, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, description})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// withoutCredential returns a copy of h without its Authorization header, however its name is
// cased, so that nothing after authentication can forward the client's token. The values are
// shared, not copied: the server parses each into a slice of capacity one, so an append to the
// copy's never reaches h's.
func withoutCredential(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, v := range h {
		if !strings.EqualFold(k, "Authorization") {
			out[k] = v
		}
	}
	return out
}
