package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/authn"
)

// OIDCCallbackPath is the admin API path an OpenID Connect provider redirects operators back to.
// The configuration's check of admin.oidc.redirect_url holds the same path
// (config.OIDCCallbackPath); the wiring's tests hold the two equal.
const OIDCCallbackPath = "/v1/login/oidc/callback"

// OIDCLogin is the operators' OpenID Connect login (admin.oidc): a redirect to the provider,
// and a callback that opens a session of the operator account the provider's identity names.
type OIDCLogin struct {
	login        *authn.OIDCLogin
	operators    *authn.Operators
	secureCookie bool // the login's browser cookie is Secure (an https redirect_url)
}

// OIDCLoginOptions configures NewOIDCLogin.
type OIDCLoginOptions struct {
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// States keeps the logins under way (authn.OIDCLoginOptions.States; nil: memory).
	States authn.LoginStateStore
}

// NewOIDCLogin builds the operators' OpenID Connect login (admin.oidc, as c) over their accounts,
// operators; nil operators (no api_keys_database) is an error.
func NewOIDCLogin(c authn.OIDCLoginConfig, operators *authn.Operators, opts *OIDCLoginOptions) (*OIDCLogin, error) {
	if operators == nil {
		return nil, errors.New("admin.oidc: operator accounts live in api_keys_database, which is not configured")
	}
	if opts == nil {
		opts = &OIDCLoginOptions{}
	}
	l, err := authn.NewOIDCLogin(c, operators, &authn.OIDCLoginOptions{Now: opts.Now, Logger: opts.Logger, States: opts.States})
	if err != nil {
		return nil, fmt.Errorf("admin.oidc: %w", err)
	}
	return &OIDCLogin{login: l, operators: operators, secureCookie: strings.HasPrefix(c.RedirectURL, "https:")}, nil
}

// oidcBrowserCookie binds a login to the browser that started it: it holds the login's state,
// and the callback must bring the same. Without it, someone could start a login, sign in at the
// provider as themselves, and hand the callback URL to an operator, whose browser would then
// hold a session of theirs (login CSRF, RFC 9700 section 4.7).
const oidcBrowserCookie = "mcpguard_oidc_login"

// oidcToCookie remembers, across the provider's redirect, that the login was started from the
// operators' console (GET /v1/login/oidc?to=console): its callback then opens the console's
// session cookie instead of answering the session token as JSON.
const oidcToCookie = "mcpguard_oidc_to"

// ConsoleSessionCookie is the operators' console session cookie (console.SessionCookie): an
// OpenID Connect login started from the console ends by setting it.
const ConsoleSessionCookie = "mcpguard_console"

// ConsolePath is where a console login lands.
const ConsolePath = "/console/"

func (o *OIDCLogin) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/v1/login/oidc", MaxAge: maxAge,
		HttpOnly: true, Secure: o.secureCookie, SameSite: http.SameSiteLaxMode}
}

// reasonLoginBrowser is the refusal of a callback that did not come from the browser that
// started the login.
const reasonLoginBrowser authn.Reason = "login_browser"

const oidcNotConfigured = "OIDC login is not configured: add admin.oidc to the gateway's configuration"

// oidcBegin starts an operator's OpenID Connect login: a redirect to the provider.
func (h *handler) oidcBegin(w http.ResponseWriter, r *http.Request, _ *authn.Principal) {
	if h.oidc == nil {
		writeError(w, http.StatusNotFound, oidcNotConfigured)
		return
	}
	to := r.URL.Query().Get("to")
	if to != "" && to != "console" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown to=%.64q: leave it out for a session token as JSON, or use to=console to land in the operators' console", to))
		return
	}
	u, state, err := h.oidc.login.BeginLogin(r.Context())
	if err != nil {
		status, msg := oidcRefusal(err, h.oidc.login.PendingTTL())
		h.logger.Warn("operator OIDC login not started", "status", status, "reason", authn.ReasonOf(err), "err", err)
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "60")
		}
		refuse(w, to == "console", status, msg)
		return
	}
	// Lax: the provider sends the browser back with a top-level GET, which carries it.
	ttl := int(h.oidc.login.PendingTTL().Seconds())
	http.SetCookie(w, h.oidc.cookie(oidcBrowserCookie, state, ttl))
	if to != "" {
		http.SetCookie(w, h.oidc.cookie(oidcToCookie, to, ttl))
	} else {
		http.SetCookie(w, h.oidc.cookie(oidcToCookie, "", -1)) // a login started earlier from the console does not steer this one
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u, http.StatusFound)
}

// oidcCallback finishes an OpenID Connect login and answers the operator's session token.
func (h *handler) oidcCallback(w http.ResponseWriter, r *http.Request, _ *authn.Principal) {
	if h.oidc == nil {
		writeError(w, http.StatusNotFound, oidcNotConfigured)
		return
	}
	ctx := r.Context()
	toCk, _ := r.Cookie(oidcToCookie)
	console := toCk != nil && toCk.Value == "console"
	if c, err := r.Cookie(oidcBrowserCookie); err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.URL.Query().Get("state"))) != 1 {
		// The pending login is left alone: the browser that started it can still finish it.
		h.logger.Warn("operator OIDC login refused", "status", http.StatusBadRequest, "reason", reasonLoginBrowser)
		if aerr := h.recordOperatorLogin(ctx, r, authn.OIDCIdentity{}, nil, http.StatusBadRequest, reasonLoginBrowser); aerr != nil {
			h.logger.Error("audit record of a refused operator login not written", "err", aerr)
		}
		refuse(w, console, http.StatusBadRequest, "this login was not started in this browser, or its cookie was blocked: start again at /v1/login/oidc")
		return
	}
	token, p, who, err := h.oidc.login.FinishLogin(ctx, r.URL.Query())
	if err != nil {
		status, msg := oidcRefusal(err, h.oidc.login.PendingTTL())
		h.logger.Warn("operator OIDC login refused", "status", status, "reason", authn.ReasonOf(err),
			"operator", who.Operator, "sub", who.Subject, "err", err)
		if aerr := h.recordOperatorLogin(ctx, r, who, nil, status, authn.ReasonOf(err)); aerr != nil {
			h.logger.Error("audit record of a refused operator login not written", "err", aerr)
		}
		refuse(w, console, status, msg)
		return
	}
	if err := h.recordOperatorLogin(ctx, r, who, p, http.StatusOK, ""); err != nil {
		// Audit fails closed: a login that cannot be recorded does not happen.
		h.logger.Error("audit record of an operator login not written; the session is closed", "operator", p.Subject, "err", err)
		_ = h.oidc.operators.Sessions().Logout(context.WithoutCancel(ctx), token.Reveal())
		w.Header().Set("Retry-After", "5")
		refuse(w, console, http.StatusServiceUnavailable, "the login could not be recorded in the audit log: try again later")
		return
	}
	h.logger.Info("operator logged in with OIDC", "operator", p.Subject, "sub", who.Subject, "roles", p.Roles, "mfa", p.MFA, "session", p.KeyID)
	if console {
		h.oidc.toConsole(w, token, p, h.now)
		return
	}
	roles := p.Roles
	if roles == nil {
		roles = []string{}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	// mfa tells the operator whether this session may decide held calls.
	writeJSON(w, map[string]any{"token": token.Reveal(), "operator": p.Subject, "roles": roles, "mfa": p.MFA, "expires": p.Expires.UTC().Format(time.RFC3339)})
}

// toConsole ends a login started from the console: the session token goes into the console's
// session cookie (HttpOnly, Secure, SameSite=Strict, as the console's own login sets it), never
// into the page. The page then moves the browser to the console with a same-origin navigation:
// a redirect would still belong to the provider's cross-site navigation, and the browser would
// withhold the Strict cookie from it.
func (o *OIDCLogin) toConsole(w http.ResponseWriter, token authn.Secret, p *authn.Principal, now func() time.Time) {
	http.SetCookie(w, o.cookie(oidcBrowserCookie, "", -1))
	http.SetCookie(w, o.cookie(oidcToCookie, "", -1))
	http.SetCookie(w, &http.Cookie{Name: ConsoleSessionCookie, Value: token.Reveal(), Path: "/", Expires: p.Expires,
		MaxAge: max(1, int(p.Expires.Sub(now()).Seconds())), HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	consolePage(w)
	fmt.Fprintf(w, `<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=%s"><title>Logged in</title>`+
		`<p>Logged in as %s. <a href="%s">Continue to the console</a>.</p>`+"\n", ConsolePath, html.EscapeString(p.Subject), ConsolePath)
}

// refuse answers a refused OIDC login: the admin API's JSON error, or, for a login started from
// the console, a page with the same message and a way back to the console's login.
func refuse(w http.ResponseWriter, console bool, status int, msg string) {
	if !console {
		writeError(w, status, msg)
		return
	}
	consolePage(w)
	w.WriteHeader(status)
	fmt.Fprintf(w, `<!doctype html><meta charset="utf-8"><title>Login refused</title>`+
		`<p role="alert">Login refused: %s.</p><p><a href="%slogin">Back to the console's login</a></p>`+"\n", html.EscapeString(msg), ConsolePath)
}

// consolePage sets the headers of a page the OIDC login answers a console user with: never
// cached, no script, no framing, no referrer.
func consolePage(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// oidcRefusal maps a refused OIDC login to its status and the message the person sees: specific
// enough to act on, without the internal detail, which goes to the log.
func oidcRefusal(err error, ttl time.Duration) (int, string) {
	const again = ": start again at /v1/login/oidc"
	var idpErr *authn.IdPError
	code := ""
	if errors.As(err, &idpErr) {
		code = " (" + idpErr.Code + ")"
	}
	switch reason := authn.ReasonOf(err); reason {
	case "":
		if errors.Is(err, authn.ErrTooManyLogins) {
			return http.StatusServiceUnavailable, "too many OIDC logins are in progress: try again in a minute"
		}
		return http.StatusInternalServerError, "the login could not be started"
	case authn.ReasonLoginState:
		return http.StatusBadRequest, "unknown or already used login state" + again
	case authn.ReasonLoginExpired:
		return http.StatusBadRequest, fmt.Sprintf("the login took longer than %v", ttl) + again
	case authn.ReasonIdPRefused:
		return http.StatusBadRequest, "the identity provider refused the login" + code
	case authn.ReasonCallback:
		return http.StatusBadRequest, "the callback carries no authorization code" + again
	case authn.ReasonCodeExchange:
		return http.StatusUnauthorized, "the identity provider did not accept the authorization code" + code + again
	case authn.ReasonIdPUnavailable, authn.ReasonKeysUnavailable:
		return http.StatusBadGateway, "the identity provider could not be reached: try again later"
	case authn.ReasonAMR:
		return http.StatusForbidden, "the identity provider does not report the authentication methods this gateway requires (amr): log in there with multi-factor authentication"
	case authn.ReasonUnknownOperator, authn.ReasonDisabled:
		return http.StatusForbidden, "no enabled operator account matches this identity"
	case authn.ReasonStore:
		return http.StatusServiceUnavailable, "the operator accounts cannot be read: try again later"
	default:
		return http.StatusUnauthorized, fmt.Sprintf("the ID token from the identity provider was refused (%s)", reason)
	}
}

// recordOperatorLogin appends an operator login to the audit log: an admin record for a session
// opened (p, the operator), an auth_failure record with the reason for a refusal (p nil; the
// actor is the operator the provider's identity named, if any).
func (h *handler) recordOperatorLogin(ctx context.Context, r *http.Request, who authn.OIDCIdentity, p *authn.Principal, status int, reason authn.Reason) error {
	actor := &authn.Principal{Subject: who.Operator}
	detail, _ := json.Marshal(map[string]string{"action": "operator_login", "via": "oidc", "sub": who.Subject})
	rec := &audit.Record{Kind: audit.KindAuthFailure, RequestID: newID(), Method: r.Method, Detail: detail,
		Decision: audit.DecisionDeny, Reasons: []string{string(reason)}, Outcome: &audit.Outcome{Status: "error", ErrorCode: status}}
	if p != nil {
		actor = p
		rec.Kind, rec.Decision, rec.Reasons, rec.Outcome = audit.KindAdmin, audit.DecisionAllow, nil, &audit.Outcome{Status: "ok"}
	}
	return h.gw.Record(context.WithoutCancel(ctx), r, actor, "oidc", rec)
}
