// Package console is the operators' web console, served on the admin listener at /console/:
// server-rendered pages (html/template, an embedded style sheet, no script) over the same
// registries, stores and audit path as the admin API and the CLI.
//
// Security model. An operator logs in with name, password and TOTP code (authn.Operators.Login:
// its lockout counts every failure, and every attempt is an audit record); the session token
// lives only in an HttpOnly, Secure, SameSite=Strict cookie that ends with the session (8 hours
// after login at most). Every POST carries a CSRF token derived from the session token (an HMAC
// only the cookie's holder can compute), checked in constant time, and a browser's POST must
// come from this origin (Origin and Sec-Fetch-Site). Every response forbids scripts, framing and
// caching by its headers. Only a human operator session opened with more than one factor may
// use the console (admin.NotAHuman). Untrusted text — tool descriptions, arguments, principals —
// is escaped by html/template and, when it holds markup, control characters, bidirectional
// overrides or tag characters, shown with them made visible and flagged (Reveal).
//
// What each act goes through: held calls are decided by admin.DecideHeld, the admin API's path
// (four-eyes, the arguments digest, the audit record before the decision); API keys, operators
// and tool pins change as the CLI changes them, in one transaction with their admin journal
// entry, which the gateway drains into the audit log; blocks go through the containment's
// Blocks, which records them; logins and logouts are recorded through the Gateway.
package console

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/mcpguard/mcpguard/internal/admin"
	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/keystore"
	"github.com/mcpguard/mcpguard/internal/pins"
	"github.com/mcpguard/mcpguard/internal/store"
)

//go:embed templates/*.html static/console.css
var files embed.FS

// Cookie names. The session cookie is host-only (no Domain) with Path=/, so it reaches the
// console and nothing else on other hosts; it is not __Host- prefixed so that its name stays
// the same whether or not a browser treats a plain-http listener as secure (docs/console.md).
const (
	SessionCookie = admin.ConsoleSessionCookie
	// loginCookie binds the login form to the browser that loaded it (double submit).
	loginCookie = "mcpguard_console_login"
	flashCookie = "mcpguard_console_flash"
)

// ContentSecurityPolicy is sent with every console response: no script at all, styles from
// the console only, forms that post to it only, no framing.
const ContentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Bounds.
const (
	maxFormBytes   = 16 << 10 // a form's body
	maxReasonBytes = 1024
	maxFlashBytes  = 512
	storeTimeout   = 10 * time.Second // each page's reads and each act's writes
)

// Gateway is what the console needs of the gateway it runs in.
type Gateway interface {
	// admin.Gateway records the console's acts (Record), as the admin API's.
	admin.Gateway
	// AuthFailed counts a refused login towards the containment's brute-force detection, as a
	// refused credential on the MCP endpoint counts; it may delay the answer.
	AuthFailed(ctx context.Context, r *http.Request, rej *authn.Rejection)
}

// Stores are the databases the console reads and changes, opened by the wiring.
type Stores struct {
	// Operators are the operator accounts and sessions; required.
	Operators *authn.Operators
	// Keys is the identities database (API keys, the admin journal) and OperatorStore its
	// operator accounts, for acts made as the CLI makes them; required.
	Keys          *keystore.Store
	OperatorStore *keystore.OperatorStore
	// Audit is the audit log's store, read for the audit pages and the charts; nil: no audit
	// log. Verifier checks its signed checkpoints; nil: the log signs none.
	Audit    store.Store
	Verifier note.Verifier
}

// Options configures New.
type Options struct {
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Approvals are the held calls (the admin API's registry); nil: none.
	Approvals *admin.Approvals
	// Blocks are the containment's blocks and suspensions; nil: containment is off.
	Blocks admin.Blocks
	// Pins are the approved tool definitions; nil: tool pinning is off.
	Pins *pins.Pinner
	// AuditStats reports the running audit log's state (audit.Log.Stats); nil: none.
	AuditStats func() audit.Stats
	// Origin is the audit log's checkpoint origin; "" accepts the one its checkpoints name.
	Origin string
	// OIDC: operators may also log in with OpenID Connect (admin.oidc); the login page links to
	// the admin API's /v1/login/oidc?to=console, whose callback opens the console's session.
	OIDC bool
}

// Console serves the console's pages.
type Console struct {
	gw     Gateway
	st     Stores
	opts   Options
	logger *slog.Logger
	now    func() time.Time
	pages  map[string]*template.Template
	mux    *http.ServeMux
	charts chartCache
}

// New returns the console over gw and st.
func New(gw Gateway, st Stores, opts *Options) (*Console, error) {
	if gw == nil || st.Operators == nil || st.Keys == nil || st.OperatorStore == nil {
		return nil, errors.New("console: the gateway, the operator accounts and the identities database are required")
	}
	if opts == nil {
		opts = &Options{}
	}
	c := &Console{gw: gw, st: st, opts: *opts, logger: opts.Logger, now: opts.Now, pages: map[string]*template.Template{}}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if err := c.parse(); err != nil {
		return nil, err
	}
	css, err := fs.ReadFile(files, "static/console.css")
	if err != nil {
		return nil, err
	}
	m := http.NewServeMux()
	m.HandleFunc("GET /console/static/console.css", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		_, _ = w.Write(css)
	})
	m.HandleFunc("GET /console/login", c.loginPage)
	m.HandleFunc("POST /console/login", c.login)
	m.Handle("POST /console/logout", c.auth(c.logout))
	m.HandleFunc("GET /console/enroll", c.enrollPage)
	m.HandleFunc("POST /console/enroll", c.enroll)
	m.Handle("GET /console/{$}", c.auth(c.auditPage))
	m.Handle("GET /console/audit", c.auth(c.auditPage))
	m.Handle("GET /console/audit/{seq}", c.auth(c.recordPage))
	m.Handle("GET /console/approvals", c.auth(c.approvalsPage))
	m.Handle("POST /console/approvals/{id}", c.auth(c.decide))
	m.Handle("GET /console/tools", c.auth(c.toolsPage))
	m.Handle("POST /console/tools/approve", c.auth(c.approveTool))
	m.Handle("GET /console/keys", c.auth(c.keysPage))
	m.Handle("POST /console/keys", c.auth(c.createKey))
	m.Handle("POST /console/keys/{id}/revoke", c.auth(c.revokeKey))
	m.Handle("GET /console/operators", c.auth(c.operatorsPage))
	m.Handle("POST /console/operators", c.auth(c.createOperator))
	m.Handle("POST /console/operators/{name}/{act}", c.auth(c.operatorAct))
	m.Handle("GET /console/blocks", c.auth(c.blocksPage))
	m.Handle("POST /console/blocks", c.auth(c.putBlock))
	m.Handle("POST /console/blocks/lift", c.auth(c.liftBlock))
	m.Handle("GET /console/charts", c.auth(c.chartsPage))
	m.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		c.render(w, r, http.StatusNotFound, "error", nil, &page{Title: "Not found", Error: "no such page: " + r.URL.Path})
	})
	c.mux = m
	return c, nil
}

// ServeHTTP serves a console request, with the console's headers on every answer.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if r.Method == http.MethodPost {
		if msg := crossSite(r); msg != "" {
			c.render(w, r, http.StatusForbidden, "error", nil, &page{Title: "Refused", Error: msg})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	}
	c.mux.ServeHTTP(w, r)
}

// crossSite says why a POST does not come from a console page, or "": a browser names the
// page's origin (Origin) and whether the request is same-origin (Sec-Fetch-Site); a client
// that sends neither is no browser, and carries the CSRF token like any other. The console's
// pages are served with Referrer-Policy: no-referrer, under which a browser sends its form
// posts with "Origin: null": that is accepted only with Sec-Fetch-Site: same-origin, which no
// page can forge.
func crossSite(r *http.Request) string {
	site := r.Header.Get("Sec-Fetch-Site")
	if site != "" && site != "same-origin" {
		return "refused: this form was not sent from a console page (Sec-Fetch-Site: " + site + ")"
	}
	if o := r.Header.Get("Origin"); o == "null" && site != "same-origin" {
		return "refused: this form was not sent from a console page (Origin null without Sec-Fetch-Site: same-origin)"
	} else if o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return "refused: this form was not sent from a console page (Origin " + o + ")"
		}
	}
	return ""
}

// session is a logged-in operator's request.
type session struct {
	p     *authn.Principal
	token string
	csrf  string
}

// csrfToken is the CSRF token of a session (or of a login form's cookie): an HMAC keyed by the
// cookie's value, which only the browser holding the cookie can compute.
func csrfToken(secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("mcpguard console csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// csrfOK checks a form's CSRF token against the one of secret, in constant time.
func csrfOK(r *http.Request, secret string) bool {
	got := r.PostFormValue("csrf")
	return secret != "" && got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(csrfToken(secret))) == 1
}

// handlerFunc is a console handler for a logged-in operator.
type handlerFunc func(w http.ResponseWriter, r *http.Request, s *session)

// auth is the one wrapper of every logged-in page and act: a valid session of a human operator
// who logged in with more than one factor, and for a POST, the session's CSRF token.
func (c *Console) auth(next handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(SessionCookie)
		if err != nil || ck.Value == "" {
			c.toLogin(w, r, "")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
		p, err := c.st.Operators.Sessions().Authenticate(ctx, ck.Value)
		cancel()
		if err != nil {
			if authn.ReasonOf(err) == authn.ReasonStore {
				c.logger.Error("console session not checked", "err", err)
				c.render(w, r, http.StatusServiceUnavailable, "error", nil, &page{Title: "Unavailable", Error: "the operator sessions cannot be read: try again later"})
				return
			}
			clearCookie(w, SessionCookie, "/")
			c.toLogin(w, r, "your session has ended: log in again")
			return
		}
		if msg := admin.NotAHuman(p); msg != "" {
			c.render(w, r, http.StatusForbidden, "error", nil, &page{Title: "Refused", Error: msg})
			return
		}
		s := &session{p: p, token: ck.Value, csrf: csrfToken(ck.Value)}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil {
				c.render(w, r, http.StatusBadRequest, "error", s, &page{Title: "Bad request", Error: "the form could not be read (at most 16 KiB)"})
				return
			}
			if !csrfOK(r, ck.Value) {
				c.render(w, r, http.StatusForbidden, "error", s, &page{Title: "Refused", Error: "refused: the form carries no valid CSRF token; reload the page and try again"})
				return
			}
		}
		next(w, r, s)
	})
}

// toLogin sends a browser to the login page, with a message.
func (c *Console) toLogin(w http.ResponseWriter, r *http.Request, msg string) {
	if msg != "" {
		setFlash(w, flash{Message: msg, Error: true})
	}
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

// flash is the message shown once after an act, carried by a short-lived cookie across the
// redirect.
type flash struct {
	Message string `json:"m"`
	Error   bool   `json:"e,omitempty"`
}

func setFlash(w http.ResponseWriter, f flash) {
	if len(f.Message) > maxFlashBytes {
		f.Message = f.Message[:maxFlashBytes] + "…"
	}
	b, _ := json.Marshal(f)
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: base64.RawURLEncoding.EncodeToString(b), Path: "/console/",
		MaxAge: 60, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

// takeFlash reads the flash of r and clears it.
func takeFlash(w http.ResponseWriter, r *http.Request) *flash {
	ck, err := r.Cookie(flashCookie)
	if err != nil {
		return nil
	}
	clearCookie(w, flashCookie, "/console/")
	b, err := base64.RawURLEncoding.DecodeString(ck.Value)
	var f flash
	if err != nil || len(b) > 2*maxFlashBytes || json.Unmarshal(b, &f) != nil || f.Message == "" {
		return nil
	}
	return &f
}

func clearCookie(w http.ResponseWriter, name, path string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: path, MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

// done redirects to a page after an act, with its flash.
func done(w http.ResponseWriter, r *http.Request, to string, f flash) {
	setFlash(w, f)
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// page is what every template receives.
type page struct {
	Title    string
	Nav      string // the current page, for the navigation
	Operator string
	Roles    []string
	Expires  time.Time
	CSRF     string
	Flash    *flash
	Error    string // an error shown in place of the page's content
	Data     any
}

// parse parses each page template with the layout.
func (c *Console) parse() error {
	funcs := template.FuncMap{
		"show":   show,
		"pretty": prettyJSON,
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04:05Z")
		},
		"join": strings.Join,
		"hex":  func(b []byte) string { return fmt.Sprintf("%x", b) },
	}
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return err
	}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", n)
		if err != nil {
			return fmt.Errorf("console template %s: %w", name, err)
		}
		c.pages[name] = t
	}
	return nil
}

// bufPool holds the buffers pages are rendered into before they are sent, so that a template
// error never leaves half a page.
var bufPool = sync.Pool{New: func() any { return new(strings.Builder) }}

// render writes page p with template name and status.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, s *session, p *page) {
	if s != nil {
		p.Operator, p.Roles, p.Expires, p.CSRF = s.p.Subject, s.p.Roles, s.p.Expires, s.csrf
	}
	if p.Flash == nil {
		p.Flash = takeFlash(w, r)
	}
	t := c.pages[name]
	b := bufPool.Get().(*strings.Builder)
	defer func() { b.Reset(); bufPool.Put(b) }()
	if err := t.Execute(b, p); err != nil {
		c.logger.Error("console page not rendered", "page", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}
