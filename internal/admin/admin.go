// Package admin is mcpguard's admin API, served on its own listener: operators log in, list the
// calls held for their approval and decide them, Prometheus scrapes the metrics, each route
// behind one authentication wrapper.
package admin

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/authn"
)

// maxBodyBytes bounds an admin request's body.
const maxBodyBytes = 64 << 10

// maxReasonBytes bounds the reason an operator gives for a decision.
const maxReasonBytes = 1024

// ErrNoAuthentication is what Gateway.Authenticate answers when the gateway has no way to
// authenticate anyone: no auth:, api_keys_database: or client certificates.
var ErrNoAuthentication = errors.New("no authentication is configured")

// Gateway is what the admin API needs of the gateway it administers.
type Gateway interface {
	// Authenticate identifies who makes an admin request, as an MCP request is identified
	// (bearer token, API key, client certificate), or by an operator session.
	// ErrNoAuthentication when none of these is configured.
	Authenticate(r *http.Request) (*authn.Principal, error)
	// Record appends an administrative act, made with r by actor (who authenticated with
	// authMethod), to the audit log; nil when auditing is off. An act that must not happen
	// unrecorded, such as opening an operator session, is undone when it fails.
	Record(ctx context.Context, r *http.Request, actor *authn.Principal, authMethod string, rec *audit.Record) error
	// HostOK and OriginOK are the gateway's DNS-rebinding checks of the Host and Origin headers.
	HostOK(host string) bool
	OriginOK(origin string) bool
}

// Options configures NewHandler.
type Options struct {
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OIDC is the operators' OpenID Connect login; nil answers its routes with 404.
	OIDC *OIDCLogin
	// Blocks, when containment is configured, serves /v1/blocks; nil answers them with 404.
	Blocks Blocks
	// Metrics, when set, serves GET /metrics (Prometheus): to anyone who passes the listener's
	// network and Host checks, or, with MetricsNeedAuth, to any authenticated principal.
	Metrics         http.Handler
	MetricsNeedAuth bool
	// Subjects serves GET /v1/subjects/{id}/export (docs/gdpr.md); nil answers it with 404.
	Subjects Subjects
	// Console, when set, is the operators' web console (internal/console), served at /console/
	// behind the same Host and Origin checks; GET / then redirects to it. It authenticates its
	// own requests (a session cookie).
	Console http.Handler
}

// need is what a route's caller must hold.
type need int

const (
	// needNothing: no authentication, and a nil principal. Only the login routes, which hand
	// out credentials, and the metrics unless Options.MetricsNeedAuth.
	needNothing need = iota
	// needApprover: any authenticated principal with a role, whose roles then decide which
	// approvals it sees.
	needApprover
	// needOperator: a human operator who logged in with more than one factor (Principal.MFA:
	// password and TOTP, or an OpenID Connect login whose amr shows it), with a role. Never an
	// API key, an access token or a client certificate: a decision is a person's.
	needOperator
	// needPrincipal: any authenticated principal, with or without a role. Only the metrics,
	// which name no principal and no argument (a Prometheus scraper with an API key).
	needPrincipal
)

// route is one admin API route and the permission it needs. Every route is listed in
// NewHandler and passes through the same check.
type route struct {
	pattern string
	needs   need
	handler func(w http.ResponseWriter, r *http.Request, p *authn.Principal)
}

// handler serves the admin API.
type handler struct {
	gw        Gateway
	approvals *Approvals
	oidc      *OIDCLogin
	blocks    Blocks
	logger    *slog.Logger
	now       func() time.Time
}

// NewHandler returns the admin API, for its own listener. Every request but a login must
// authenticate through gw; an operator sees and decides only the approvals whose approver role
// it holds.
func NewHandler(gw Gateway, approvals *Approvals, opts *Options) http.Handler {
	if opts == nil {
		opts = &Options{}
	}
	h := &handler{gw: gw, approvals: approvals, oidc: opts.OIDC, blocks: opts.Blocks, logger: opts.Logger, now: opts.Now}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	routes := []route{
		{"GET /v1/login/oidc", needNothing, h.oidcBegin},
		{"GET " + OIDCCallbackPath, needNothing, h.oidcCallback},
		{"GET /v1/approvals", needApprover, h.listApprovals},
		{"POST /v1/approvals/{id}/approve", needOperator, h.decide(true)},
		{"POST /v1/approvals/{id}/deny", needOperator, h.decide(false)},
		{"GET /v1/subjects/{id}/export", needOperator, exportSubject(opts.Subjects, h)},
		{"POST /v1/subjects/{id}/erase", needOperator, eraseSubject(opts.Subjects, h)},
		{"GET /v1/holds", needOperator, listHolds(opts.Subjects, h)},
		{"POST /v1/holds", needOperator, placeHold(opts.Subjects, h)},
		{"POST /v1/holds/{id}/release", needOperator, releaseHold(opts.Subjects, h)},
	}
	if h.blocks != nil {
		routes = append(routes,
			route{"GET /v1/blocks", needOperator, h.listBlocks},
			route{"POST /v1/blocks", needOperator, h.putBlock},
			route{"POST /v1/blocks/lift", needOperator, h.liftBlock},
		)
	}
	if opts.Metrics != nil {
		need := needNothing
		if opts.MetricsNeedAuth {
			need = needPrincipal
		}
		routes = append(routes, route{"GET /metrics", need, func(w http.ResponseWriter, r *http.Request, _ *authn.Principal) {
			opts.Metrics.ServeHTTP(w, r)
		}})
	}
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.Handle(rt.pattern, h.auth(rt))
	}
	if opts.Console != nil {
		mux.Handle("/console/", opts.Console)
		mux.Handle("GET /{$}", http.RedirectHandler("/console/", http.StatusSeeOther))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !gw.HostOK(r.Host) {
			writeError(w, http.StatusForbidden, "forbidden Host header")
			return
		}
		// A console page is served with Referrer-Policy: no-referrer, so a browser posts its
		// forms with "Origin: null"; the console checks those itself (Sec-Fetch-Site).
		consoleNull := opts.Console != nil && strings.HasPrefix(r.URL.Path, "/console/") && r.Header.Get("Origin") == "null"
		if o := r.Header.Get("Origin"); o != "" && !consoleNull && !gw.OriginOK(o) {
			writeError(w, http.StatusForbidden, "forbidden Origin")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		mux.ServeHTTP(w, r)
	})
}

// auth is the one wrapper that authenticates admin requests and enforces each route's need.
func (h *handler) auth(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.needs == needNothing {
			rt.handler(w, r, nil)
			return
		}
		p, err := h.gw.Authenticate(r)
		if errors.Is(err, ErrNoAuthentication) {
			writeError(w, http.StatusUnauthorized, "the admin API needs authentication: configure auth:, api_keys_database: or tls client certificates")
			return
		}
		if err != nil {
			h.logger.Info("admin request refused", "route", rt.pattern, "err", err)
			writeError(w, http.StatusUnauthorized, "authentication required")
			return
		}
		if rt.needs == needOperator {
			if msg := notAHuman(p); msg != "" {
				writeError(w, http.StatusForbidden, msg)
				return
			}
		}
		if rt.needs == needPrincipal {
			rt.handler(w, r, p)
			return
		}
		if len(p.Roles) == 0 {
			writeError(w, http.StatusForbidden, "no role: only an operator holding an approver role may use approvals")
			return
		}
		rt.handler(w, r, p)
	})
}

// NotAHuman says why p may not decide a held call or act as an operator, or "" when it may:
// only an operator session opened with more than one factor. The console applies the same rule.
func NotAHuman(p *authn.Principal) string { return notAHuman(p) }

// notAHuman says why p may not decide a held call, or "" when it may: only an operator session
// opened with more than one factor.
func notAHuman(p *authn.Principal) string {
	const how = "log in with `mcpguard operators login` (password and TOTP) or /v1/login/oidc at an identity provider that reports multi-factor authentication (amr), and use that session token"
	switch {
	case p.Method != authn.MethodOperator:
		return fmt.Sprintf("a held call can be decided only by a human operator, not with %s credentials: %s", methodName(p.Method), how)
	case !p.MFA:
		return "this operator session was opened without multi-factor authentication (the identity provider's amr does not show it), so it cannot decide held calls: " + how
	}
	return ""
}

// methodName names an authentication method for a person reading an error.
func methodName(m authn.Method) string {
	switch m {
	case authn.MethodAPIKey:
		return "API key"
	case authn.MethodJWT:
		return "access token"
	case authn.MethodCertificate:
		return "client certificate"
	}
	return string(m)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (h *handler) listApprovals(w http.ResponseWriter, r *http.Request, p *authn.Principal) {
	list := h.approvals.List(r.Context(), p.Roles)
	if list == nil {
		list = []Approval{}
	}
	writeJSON(w, map[string]any{"approvals": list, "now": h.now().UTC().Format(time.RFC3339)})
}

// DecideRequest is the body of POST /v1/approvals/{id}/approve and …/deny.
type DecideRequest struct {
	// Reason is recorded in the audit log and told to the caller of a denied call.
	Reason string `json:"reason,omitempty"`
	// ArgumentsSHA256, when set, must be the held call's arguments digest (as listed): the
	// decision is then taken on exactly the arguments the operator checked.
	ArgumentsSHA256 string `json:"arguments_sha256,omitempty"`
}

// DecideResponse is the answer to a decision.
type DecideResponse struct {
	ID              string `json:"id"`
	Tool            string `json:"tool"`
	Principal       string `json:"principal"`
	ArgumentsSHA256 string `json:"arguments_sha256"`
	Decision        string `json:"decision"` // approved or denied
	By              string `json:"by"`
}

// isDigest reports whether s is a SHA-256 in hex.
func isDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func (h *handler) decide(approve bool) func(http.ResponseWriter, *http.Request, *authn.Principal) {
	return func(w http.ResponseWriter, r *http.Request, p *authn.Principal) {
		var body DecideRequest
		if b, err := io.ReadAll(r.Body); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeError(w, http.StatusRequestEntityTooLarge, "request body too large")
				return
			}
			writeError(w, http.StatusBadRequest, "reading the body: "+err.Error())
			return
		} else if len(b) > 0 {
			if err := json.Unmarshal(b, &body); err != nil {
				writeError(w, http.StatusBadRequest, `the body must be JSON such as {"reason":"…","arguments_sha256":"…"}`)
				return
			}
		}
		if len(body.Reason) > maxReasonBytes {
			writeError(w, http.StatusBadRequest, "reason longer than 1024 bytes")
			return
		}
		body.ArgumentsSHA256 = strings.ToLower(body.ArgumentsSHA256)
		if body.ArgumentsSHA256 != "" && !isDigest(body.ArgumentsSHA256) {
			writeError(w, http.StatusBadRequest, "arguments_sha256 must be the 64 hex digits of a SHA-256, as `mcpguard approvals list` shows it")
			return
		}
		verb := "denied"
		if approve {
			verb = "approved"
		}
		if body.Reason == "" {
			body.Reason = verb
		}
		a, err := DecideHeld(r, h.gw, h.approvals, r.PathValue("id"), p, Decision{Approve: approve, Reason: body.Reason, ArgumentsSHA256: body.ArgumentsSHA256})
		if err != nil {
			status, msg := http.StatusInternalServerError, err.Error()
			switch {
			case errors.Is(err, ErrNotRecorded):
				h.logger.Error("audit record of an approval decision not written; the decision was not taken", "approval", r.PathValue("id"), "operator", p.Subject, "err", err)
				status, msg = http.StatusServiceUnavailable, "the decision could not be recorded in the audit log, so it was not taken: try again later"
			case errors.Is(err, ErrNoApproval):
				status = http.StatusNotFound
			case errors.Is(err, ErrSelfApproval):
				status = http.StatusForbidden
			case errors.Is(err, ErrDigestMismatch), errors.Is(err, ErrAlreadyApproved):
				status = http.StatusConflict
			case errors.Is(err, ErrApprovalStore):
				h.logger.Error("approval decision not stored; the decision was not taken", "approval", r.PathValue("id"), "operator", p.Subject, "err", err)
				status, msg = http.StatusServiceUnavailable, "the decision could not be stored, so it was not taken: try again later"
			}
			if status == http.StatusServiceUnavailable {
				w.Header().Set("Retry-After", "5")
			}
			writeError(w, status, msg)
			return
		}
		h.logger.Info("held call "+verb, "approval", a.ID, "tool", a.Tool, "requester", a.Principal, "by", p.Subject, "arguments_sha256", a.ArgumentsSHA256)
		writeJSON(w, DecideResponse{ID: a.ID, Tool: a.Tool, Principal: a.Principal, ArgumentsSHA256: a.ArgumentsSHA256, Decision: verb, By: p.Subject})
	}
}

// ApprovalDetail is the Detail of an approval audit record (audit.KindApproval): who asked, who
// decided with which role, and the digest of the arguments decided on.
type ApprovalDetail struct {
	Requester       string `json:"requester"`
	RequesterAuth   string `json:"requester_auth_method,omitempty"`
	Approver        string `json:"approver"`
	ApproverRole    string `json:"approver_role"`
	ArgumentsSHA256 string `json:"arguments_sha256"`
	Status          string `json:"status,omitempty"` // what the call became: approved, denied, expired
}

// ErrNotRecorded wraps the audit log's error when a decision could not be recorded: the
// decision was not taken.
var ErrNotRecorded = errors.New("the decision could not be recorded in the audit log")

// DecideHeld takes operator p's decision d on held call id: the one path of the admin API and
// the console. approvals.Decide enforces the approver role, the arguments digest and four-eyes;
// the decision is recorded through gw, with p as actor, before it takes effect. The error
// wraps ErrNotRecorded when the record failed, or is Decide's.
func DecideHeld(r *http.Request, gw Gateway, approvals *Approvals, id string, p *authn.Principal, d Decision) (Approval, error) {
	var recordErr error
	record := func(a Approval, d Decision) error {
		recordErr = recordDecision(gw, r, p, a, d)
		return recordErr
	}
	a, err := approvals.Decide(r.Context(), id, p, d, record)
	if err != nil && recordErr != nil {
		return a, fmt.Errorf("%w: %w", ErrNotRecorded, err)
	}
	return a, err
}

// recordDecision appends an operator's decision on a held call to the audit log, before it
// takes effect: the actor is the approver.
func recordDecision(gw Gateway, r *http.Request, approver *authn.Principal, a Approval, d Decision) error {
	status := "denied"
	rec := &audit.Record{Kind: audit.KindApproval, RequestID: a.ID, Method: r.Method, Tool: a.Tool, Rule: a.Rule,
		Decision: audit.DecisionDeny, Reasons: []string{d.Reason}}
	if d.Approve {
		rec.Decision, status = audit.DecisionAllow, "approved"
	}
	rec.Detail, _ = json.Marshal(ApprovalDetail{Requester: a.Principal, RequesterAuth: a.AuthMethod, Approver: d.By,
		ApproverRole: a.ApproverRole, ArgumentsSHA256: a.ArgumentsSHA256, Status: status})
	return gw.Record(context.WithoutCancel(r.Context()), r, approver, string(approver.Method), rec)
}
