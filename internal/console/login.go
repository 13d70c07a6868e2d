package console

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/journal"
)

// maxNameBytes bounds an operator name as typed (operator names are at most 64 bytes).
const maxNameBytes = 128

// loginRefused is what every refused login is told: nothing that helps a guesser.
const loginRefused = "login refused: the name, password or code is wrong, or the account is locked or disabled"

type loginData struct {
	Operator, Error string
	OIDC            bool // link to the OpenID Connect login
}

// loginPage shows the login form, bound to this browser by a fresh cookie.
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.renderLogin(w, r, http.StatusOK, "", "")
}

func (c *Console) renderLogin(w http.ResponseWriter, r *http.Request, status int, name, msg string) {
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	secret := base64.RawURLEncoding.EncodeToString(raw[:])
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: secret, Path: "/console/login", MaxAge: 3600,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	p := &page{Title: "Log in", CSRF: csrfToken(secret), Data: loginData{Operator: name, Error: msg, OIDC: c.opts.OIDC}}
	c.render(w, r, status, "login", nil, p)
}

// login checks name, password and TOTP code (authn.Operators.Login, whose lockout counts each
// failure), opens the session cookie and records the login; a refusal is recorded, counted by
// the containment's brute-force detection and answered 401 with one message for every reason.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		c.renderLogin(w, r, http.StatusBadRequest, "", "the form could not be read (at most 16 KiB)")
		return
	}
	ck, err := r.Cookie(loginCookie)
	if err != nil || !csrfOK(r, ck.Value) {
		c.renderLogin(w, r, http.StatusForbidden, "", "refused: the login form carries no valid CSRF token (or cookies are blocked); reload the page and try again")
		return
	}
	name, password, code := r.PostFormValue("operator"), r.PostFormValue("password"), r.PostFormValue("totp")
	if len(name) > maxNameBytes {
		name = name[:maxNameBytes]
	}
	if name == "" || password == "" || code == "" {
		c.renderLogin(w, r, http.StatusUnauthorized, name, "enter the operator name, the password and the code from the authenticator app")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	token, p, err := c.st.Operators.Login(ctx, name, password, code)
	if err != nil {
		reason := authn.ReasonOf(err)
		if reason == "" || reason == authn.ReasonStore {
			c.logger.Error("console login not checked", "err", err)
			w.Header().Set("Retry-After", "5")
			c.renderLogin(w, r, http.StatusServiceUnavailable, name, "the operator accounts cannot be read: try again later")
			return
		}
		if aerr := c.recordLogin(ctx, r, name, nil, reason); aerr != nil {
			c.logger.Error("audit record of a refused console login not written", "err", aerr)
		}
		var rej *authn.Rejection
		if errors.As(err, &rej) {
			c.gw.AuthFailed(ctx, r, rej)
		}
		c.renderLogin(w, r, http.StatusUnauthorized, name, loginRefused)
		return
	}
	if err := c.recordLogin(ctx, r, name, p, ""); err != nil {
		// Audit fails closed: a login that cannot be recorded does not happen.
		c.logger.Error("audit record of a console login not written; the session is closed", "operator", p.Subject, "err", err)
		_ = c.st.Operators.Sessions().Logout(context.WithoutCancel(ctx), token.Reveal())
		w.Header().Set("Retry-After", "5")
		c.renderLogin(w, r, http.StatusServiceUnavailable, name, "the login could not be recorded in the audit log: try again later")
		return
	}
	clearCookie(w, loginCookie, "/console/login")
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: token.Reveal(), Path: "/", Expires: p.Expires,
		MaxAge: max(1, int(p.Expires.Sub(c.now()).Seconds())), HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	c.logger.Info("operator logged in to the console", "operator", p.Subject, "session", p.KeyID)
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}

// logout ends the session and records it.
func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	if err := c.st.Operators.Sessions().Logout(ctx, s.token); err != nil {
		c.logger.Error("console logout failed", "err", err)
		done(w, r, "/console/audit", flash{Message: "logout failed: the session could not be ended; try again", Error: true})
		return
	}
	detail, _ := json.Marshal(map[string]string{"action": "operator_logout", "via": "console", "session_ref": s.p.KeyID})
	rec := &audit.Record{Kind: audit.KindAdmin, RequestID: newID(), Method: r.Method, Detail: detail,
		Decision: audit.DecisionAllow, Outcome: &audit.Outcome{Status: "ok"}}
	if err := c.gw.Record(context.WithoutCancel(ctx), r, s.p, string(s.p.Method), rec); err != nil {
		c.logger.Error("audit record of a console logout not written", "err", err)
	}
	clearCookie(w, SessionCookie, "/")
	done(w, r, "/console/login", flash{Message: "logged out"})
}

// recordLogin appends a console login to the audit log: an admin record for a session opened
// (p), an auth_failure record with the reason for a refusal (p nil; the actor is the name
// typed, bounded).
func (c *Console) recordLogin(ctx context.Context, r *http.Request, name string, p *authn.Principal, reason authn.Reason) error {
	actor := &authn.Principal{Subject: name}
	d := map[string]string{"action": "operator_login", "via": "console"}
	rec := &audit.Record{Kind: audit.KindAuthFailure, RequestID: newID(), Method: r.Method,
		Decision: audit.DecisionDeny, Reasons: []string{string(reason)}, Outcome: &audit.Outcome{Status: "error", ErrorCode: http.StatusUnauthorized}}
	if p != nil {
		actor = p
		d["session_ref"] = p.KeyID
		rec.Kind, rec.Decision, rec.Reasons, rec.Outcome = audit.KindAdmin, audit.DecisionAllow, nil, &audit.Outcome{Status: "ok"}
	}
	rec.Detail, _ = json.Marshal(d)
	return c.gw.Record(context.WithoutCancel(ctx), r, actor, journal.AuthPasswordTOTP, rec)
}

// newID is a random identifier for an audit record's request_id.
func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
