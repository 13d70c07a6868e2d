package gateway

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/config"
)

// adminRoute is one admin API route and the permission it needs. Every route is listed here and
// passes through the same check.
type adminRoute struct {
	pattern string
	// needs names what the caller must hold: "approver" means any authenticated principal,
	// whose roles then decide which approvals it sees and may decide; "nothing" means no
	// authentication (the login routes, which hand out credentials), and a nil principal.
	needs   string
	handler func(w http.ResponseWriter, r *http.Request, p *authn.Principal)
}

// AdminHandler is the admin API, for its own listener. Every request but a login must
// authenticate like an MCP request does (bearer token, API key, client certificate) or with an
// operator session; an operator sees and decides only the approvals whose approver role it holds.
func (g *Gateway) AdminHandler() http.Handler {
	routes := []adminRoute{
		{"GET /v1/login/oidc", "nothing", g.adminOIDCBegin},
		{"GET " + config.OIDCCallbackPath, "nothing", g.adminOIDCCallback},
		{"GET /v1/approvals", "approver", g.adminListApprovals},
		{"POST /v1/approvals/{id}/approve", "approver", g.adminDecide(true)},
		{"POST /v1/approvals/{id}/deny", "approver", g.adminDecide(false)},
	}
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.Handle(rt.pattern, g.adminAuth(rt))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.hostOK(r.Host) {
			adminError(w, http.StatusForbidden, "forbidden Host header")
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !g.originOK(o) {
			adminError(w, http.StatusForbidden, "forbidden Origin")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		mux.ServeHTTP(w, r)
	})
}

// adminAuth is the one wrapper that authenticates admin requests and enforces each route's need.
func (g *Gateway) adminAuth(rt adminRoute) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.needs == "nothing" {
			rt.handler(w, r, nil)
			return
		}
		if g.adminAuthn == nil {
			adminError(w, http.StatusUnauthorized, "the admin API needs authentication: configure auth:, api_keys_database: or tls client certificates")
			return
		}
		p, err := g.adminAuthn.Authenticate(r)
		if err != nil {
			g.logger.Info("admin request refused", "route", rt.pattern, "err", err)
			adminError(w, http.StatusUnauthorized, "authentication required")
			return
		}
		if rt.needs == "approver" && len(p.Roles) == 0 {
			adminError(w, http.StatusForbidden, "no role: only an operator holding an approver role may use approvals")
			return
		}
		rt.handler(w, r, p)
	})
}

func adminError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func adminJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (g *Gateway) adminListApprovals(w http.ResponseWriter, r *http.Request, p *authn.Principal) {
	list := g.approvals.list(p.Roles)
	if list == nil {
		list = []*Approval{}
	}
	adminJSON(w, map[string]any{"approvals": list, "now": g.now().UTC().Format(time.RFC3339)})
}

func (g *Gateway) adminDecide(approve bool) func(http.ResponseWriter, *http.Request, *authn.Principal) {
	return func(w http.ResponseWriter, r *http.Request, p *authn.Principal) {
		var body struct {
			Reason string `json:"reason"`
		}
		if b, err := io.ReadAll(r.Body); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				adminError(w, http.StatusRequestEntityTooLarge, "request body too large")
				return
			}
			adminError(w, http.StatusBadRequest, "reading the body: "+err.Error())
			return
		} else if len(b) > 0 {
			if err := json.Unmarshal(b, &body); err != nil {
				adminError(w, http.StatusBadRequest, `the body must be JSON such as {"reason":"…"}`)
				return
			}
		}
		if len(body.Reason) > 1024 {
			adminError(w, http.StatusBadRequest, "reason longer than 1024 bytes")
			return
		}
		if body.Reason == "" {
			body.Reason = "approved"
			if !approve {
				body.Reason = "denied"
			}
		}
		a, err := g.approvals.decide(r.PathValue("id"), p.Roles, approvalDecision{approve: approve, by: p.Subject, reason: body.Reason})
		if err != nil {
			adminError(w, http.StatusNotFound, err.Error())
			return
		}
		verb := "denied"
		if approve {
			verb = "approved"
		}
		adminJSON(w, map[string]any{"id": a.ID, "tool": a.Tool, "principal": a.Principal, "decision": verb, "by": p.Subject})
	}
}

// setupAdminOIDC builds the operators' OpenID Connect login (admin.oidc) over the operator
// accounts of api_keys_database.
func (g *Gateway) setupAdminOIDC(c *config.AdminOIDC) error {
	if g.operators == nil {
		return errors.New("admin.oidc: operator accounts live in api_keys_database, which is not configured")
	}
	l, err := authn.NewOIDCLogin(authn.OIDCLoginConfig{
		Issuer: c.Issuer, ClientID: c.ClientID, ClientSecret: c.ClientSecret.Reveal(), RedirectURL: c.RedirectURL,
		Scopes: c.Scopes, OperatorClaim: c.OperatorClaim, RequiredAMR: c.RequiredAMR,
	}, g.operators, &authn.OIDCLoginOptions{Now: g.now, Logger: g.logger})
	if err != nil {
		return fmt.Errorf("admin.oidc: %w", err)
	}
	g.oidcLogin = l
	g.oidcSecureCookie = strings.HasPrefix(c.RedirectURL, "https:")
	return nil
}

// oidcBrowserCookie binds a login to the browser that started it: it holds the login's state,
// and the callback must bring the same. Without it, someone could start a login, sign in at the
// provider as themselves, and hand the callback URL to an operator, whose browser would then
// hold a session of theirs (login CSRF, RFC 9700 section 4.7).
const oidcBrowserCookie = "mcpguard_oidc_login"

func (g *Gateway) oidcCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: oidcBrowserCookie, Value: value, Path: "/v1/login/oidc", MaxAge: maxAge,
		HttpOnly: true, Secure: g.oidcSecureCookie, SameSite: http.SameSiteLaxMode}
}

// reasonLoginBrowser is the refusal of a callback that did not come from the browser that
// started the login.
const reasonLoginBrowser authn.Reason = "login_browser"

const oidcNotConfigured = "OIDC login is not configured: add admin.oidc to the gateway's configuration"

// adminOIDCBegin starts an operator's OpenID Connect login: a redirect to the provider.
func (g *Gateway) adminOIDCBegin(w http.ResponseWriter, r *http.Request, _ *authn.Principal) {
	if g.oidcLogin == nil {
		adminError(w, http.StatusNotFound, oidcNotConfigured)
		return
	}
	u, state, err := g.oidcLogin.BeginLogin(r.Context())
	if err != nil {
		status, msg := oidcRefusal(err, g.oidcLogin.PendingTTL())
		g.logger.Warn("operator OIDC login not started", "status", status, "reason", authn.ReasonOf(err), "err", err)
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "60")
		}
		adminError(w, status, msg)
		return
	}
	// Lax: the provider sends the browser back with a top-level GET, which carries it.
	http.SetCookie(w, g.oidcCookie(state, int(g.oidcLogin.PendingTTL().Seconds())))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u, http.StatusFound)
}

// adminOIDCCallback finishes an OpenID Connect login and answers the operator's session token.
func (g *Gateway) adminOIDCCallback(w http.ResponseWriter, r *http.Request, _ *authn.Principal) {
	if g.oidcLogin == nil {
		adminError(w, http.StatusNotFound, oidcNotConfigured)
		return
	}
	ctx := r.Context()
	if c, err := r.Cookie(oidcBrowserCookie); err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.URL.Query().Get("state"))) != 1 {
		// The pending login is left alone: the browser that started it can still finish it.
		g.logger.Warn("operator OIDC login refused", "status", http.StatusBadRequest, "reason", reasonLoginBrowser)
		if aerr := g.recordOperatorLogin(ctx, r, authn.OIDCIdentity{}, nil, http.StatusBadRequest, reasonLoginBrowser); aerr != nil {
			g.logger.Error("audit record of a refused operator login not written", "err", aerr)
		}
		adminError(w, http.StatusBadRequest, "this login was not started in this browser, or its cookie was blocked: start again at /v1/login/oidc")
		return
	}
	token, p, who, err := g.oidcLogin.FinishLogin(ctx, r.URL.Query())
	if err != nil {
		status, msg := oidcRefusal(err, g.oidcLogin.PendingTTL())
		g.logger.Warn("operator OIDC login refused", "status", status, "reason", authn.ReasonOf(err),
			"operator", who.Operator, "sub", who.Subject, "err", err)
		if aerr := g.recordOperatorLogin(ctx, r, who, nil, status, authn.ReasonOf(err)); aerr != nil {
			g.logger.Error("audit record of a refused operator login not written", "err", aerr)
		}
		adminError(w, status, msg)
		return
	}
	if err := g.recordOperatorLogin(ctx, r, who, p, http.StatusOK, ""); err != nil {
		// Audit fails closed: a login that cannot be recorded does not happen.
		g.logger.Error("audit record of an operator login not written; the session is closed", "operator", p.Subject, "err", err)
		_ = g.operators.Sessions().Logout(context.WithoutCancel(ctx), token.Reveal())
		w.Header().Set("Retry-After", "5")
		adminError(w, http.StatusServiceUnavailable, "the login could not be recorded in the audit log: try again later")
		return
	}
	g.logger.Info("operator logged in with OIDC", "operator", p.Subject, "sub", who.Subject, "roles", p.Roles, "session", p.KeyID)
	roles := p.Roles
	if roles == nil {
		roles = []string{}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	adminJSON(w, map[string]any{"token": token.Reveal(), "operator": p.Subject, "roles": roles, "expires": p.Expires.UTC().Format(time.RFC3339)})
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
// opened, an auth_failure record with the reason for a refusal.
func (g *Gateway) recordOperatorLogin(ctx context.Context, r *http.Request, who authn.OIDCIdentity, p *authn.Principal, status int, reason authn.Reason) error {
	c := &caller{authMethod: "oidc", principal: &authn.Principal{Subject: who.Operator}}
	_, c.sourceIP = principalOf(r)
	detail, _ := json.Marshal(map[string]string{"action": "operator_login", "via": "oidc", "sub": who.Subject})
	rec := &audit.Record{Kind: audit.KindAuthFailure, RequestID: newRequestID(), Method: r.Method, Detail: detail,
		Decision: audit.DecisionDeny, Reasons: []string{string(reason)}, Outcome: &audit.Outcome{Status: "error", ErrorCode: status}}
	if p != nil {
		c.principal = p
		rec.Kind, rec.Decision, rec.Reasons, rec.Outcome = audit.KindAdmin, audit.DecisionAllow, nil, &audit.Outcome{Status: "ok"}
	}
	return g.record(context.WithoutCancel(ctx), c, rec)
}
