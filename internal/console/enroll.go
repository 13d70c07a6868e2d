package console

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"

	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/journal"
	"github.com/mcpguard/mcpguard/internal/keystore"
)

// Enrolment: an operator without an authenticator app — created in the console or by
// `mcpguard operators create`, or whose app another operator reset — proves their current
// password, scans a new TOTP secret, and confirms it with a code from the app while choosing a
// new password. The confirmation and the new password are one act, recorded with the operator
// as actor (by password), as `mcpguard operators enroll-mfa` records it; nothing changes when
// it is refused. Every refused password or code is recorded and counted as a failed login by
// the lockout and the containment's brute-force detection.

// enrollCookie binds the enrolment forms to the browser that loaded them (double submit).
const enrollCookie = "mcpguard_console_enroll"

// qrPixels is the side of the enrolment's QR code.
const qrPixels = 256

type enrollData struct {
	Operator, Error string
	Confirm         bool         // the second step: the secret is shown, the code is asked for
	QR              template.URL // a data: URL of the QR code's PNG
	Secret          string       // the secret, for manual entry
}

func (c *Console) enrollPage(w http.ResponseWriter, r *http.Request) {
	c.renderEnroll(w, r, http.StatusOK, &enrollData{})
}

func (c *Console) renderEnroll(w http.ResponseWriter, r *http.Request, status int, d *enrollData) {
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	secret := base64.RawURLEncoding.EncodeToString(raw[:])
	http.SetCookie(w, &http.Cookie{Name: enrollCookie, Value: secret, Path: "/console/enroll", MaxAge: 3600,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	c.render(w, r, status, "enroll", nil, &page{Title: "Enrol an authenticator app", CSRF: csrfToken(secret), Data: d})
}

// enroll handles both steps of the form.
func (c *Console) enroll(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		c.renderEnroll(w, r, http.StatusBadRequest, &enrollData{Error: "the form could not be read (at most 16 KiB)"})
		return
	}
	ck, err := r.Cookie(enrollCookie)
	if err != nil || !csrfOK(r, ck.Value) {
		c.renderEnroll(w, r, http.StatusForbidden, &enrollData{Error: "refused: the form carries no valid CSRF token (or cookies are blocked); reload the page and try again"})
		return
	}
	name, password := r.PostFormValue("operator"), r.PostFormValue("password")
	if len(name) > maxNameBytes {
		name = name[:maxNameBytes]
	}
	confirm := r.PostFormValue("step") == "confirm"
	d := &enrollData{Operator: name, Confirm: confirm}
	if name == "" || password == "" {
		d.Error = "enter your operator name and your current password (a new operator's is the one-time password they were given)"
		c.renderEnroll(w, r, http.StatusBadRequest, d)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	act := journal.NewEntry(journal.ActOperatorEnrollMFA, journal.Actor{Principal: name, AuthMethod: journal.AuthPassword}, c.now())
	act.Via, act.Target.Operator = "console", name
	roles, err := c.st.Operators.CheckPassword(ctx, name, password)
	if err != nil {
		c.enrollRefused(w, r, act, err, d, loginRefused)
		return
	}
	act.Actor.Roles = roles
	op, err := c.st.OperatorStore.Operator(ctx, name)
	if err != nil {
		c.enrollUnavailable(w, r, d, err)
		return
	}
	if op.TOTPSecret != "" {
		d.Error, d.Confirm = "this account has an authenticator app already: log in with it; to enrol another, ask another operator to reset it (Operators page)", false
		c.renderEnroll(w, r, http.StatusConflict, d)
		return
	}
	if !confirm {
		e, err := c.st.Operators.BeginEnrollment(ctx, name)
		if err != nil {
			c.enrollUnavailable(w, r, d, err)
			return
		}
		png, err := e.QRCode(qrPixels)
		if err != nil {
			c.enrollUnavailable(w, r, d, err)
			return
		}
		d.Confirm, d.Secret = true, e.Secret.Reveal()
		d.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
		c.renderEnroll(w, r, http.StatusOK, d)
		return
	}
	newPassword, again, code := r.PostFormValue("new_password"), r.PostFormValue("new_password_again"), r.PostFormValue("totp")
	switch err := authn.CheckPasswordPolicy(newPassword); {
	case err != nil:
		d.Error = "not enrolled: the new " + err.Error()
	case newPassword != again:
		d.Error = "not enrolled: the two new passwords differ"
	case newPassword == password:
		d.Error = "not enrolled: choose a new password, not the current one"
	case code == "":
		d.Error = "not enrolled: enter the code the authenticator app shows"
	}
	if d.Error != "" {
		c.renderEnroll(w, r, http.StatusBadRequest, d)
		return
	}
	err = c.st.Keys.Act(ctx, act, c.st.OperatorStore, func(tx keystore.Tx) error {
		ops := c.st.Operators.WithStores(tx.Operators, tx.Operators)
		if err := ops.ConfirmEnrollment(ctx, name, code); err != nil {
			return err
		}
		return ops.SetPassword(ctx, name, newPassword)
	})
	if errors.Is(err, authn.ErrNoEnrollment) {
		d.Error, d.Confirm = "not enrolled: no enrolment of this account is in progress (it was confirmed or reset meanwhile); start again", false
		c.renderEnroll(w, r, http.StatusConflict, d)
		return
	}
	if err != nil {
		c.enrollRefused(w, r, act, err, d, "not enrolled: the code is wrong or already used; type the app's current code, or start again to get a new secret")
		return
	}
	c.logger.Info("operator enrolled an authenticator app in the console", "operator", name)
	done(w, r, "/console/login", flash{Message: fmt.Sprintf("enrolled: %s logs in with the new password and a code from the app", name)})
}

// enrollRefused records a refused enrolment (its reason from err's *authn.Rejection), counts
// it as a failed login, and shows msg; a store error answers 503.
func (c *Console) enrollRefused(w http.ResponseWriter, r *http.Request, act *journal.Entry, err error, d *enrollData, msg string) {
	reason := authn.ReasonOf(err)
	if reason == "" || reason == authn.ReasonStore {
		c.enrollUnavailable(w, r, d, err)
		return
	}
	ctx := r.Context()
	act.Refuse(string(reason))
	if until, lerr := c.st.Operators.LockedUntil(ctx, act.Target.Operator); lerr == nil && !until.IsZero() {
		act.LockedUntil = until
	}
	if rerr := c.st.Keys.Record(ctx, act); rerr != nil {
		c.logger.Error("audit record of a refused enrolment not written", "err", rerr)
	}
	var rej *authn.Rejection
	if errors.As(err, &rej) {
		c.gw.AuthFailed(ctx, r, rej)
	}
	d.Error = msg
	c.renderEnroll(w, r, http.StatusUnauthorized, d)
}

func (c *Console) enrollUnavailable(w http.ResponseWriter, r *http.Request, d *enrollData, err error) {
	c.logger.Error("console enrolment not done", "err", err)
	w.Header().Set("Retry-After", "5")
	d.Error = "the operator accounts cannot be read or written: try again later"
	c.renderEnroll(w, r, http.StatusServiceUnavailable, d)
}
