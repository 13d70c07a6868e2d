// Package admin is mcpguard's admin API, served on its own listener: operators log in, list the
// calls held for their approval and decide them, each route behind one authentication wrapper.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
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
}

// need is what a route's caller must hold.
type need int

const (
	// needNothing: no authentication, and a nil principal. Only the login routes, which hand
	// out credentials.
	needNothing need = iota
	// needApprover: any authenticated principal with a role, whose roles then decide which
	// approvals it sees and may decide.
	needApprover
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
	h := &handler{gw: gw, approvals: approvals, oidc: opts.OIDC, logger: opts.Logger, now: opts.Now}
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
		{"POST /v1/approvals/{id}/approve", needApprover, h.decide(true)},
		{"POST /v1/approvals/{id}/deny", needApprover, h.decide(false)},
	}
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.Handle(rt.pattern, h.auth(rt))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !gw.HostOK(r.Host) {
			writeError(w, http.StatusForbidden, "forbidden Host header")
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !gw.OriginOK(o) {
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
		if rt.needs == needApprover && len(p.Roles) == 0 {
			writeError(w, http.StatusForbidden, "no role: only an operator holding an approver role may use approvals")
			return
		}
		rt.handler(w, r, p)
	})
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
	list := h.approvals.List(p.Roles)
	if list == nil {
		list = []*Approval{}
	}
	writeJSON(w, map[string]any{"approvals": list, "now": h.now().UTC().Format(time.RFC3339)})
}

func (h *handler) decide(approve bool) func(http.ResponseWriter, *http.Request, *authn.Principal) {
	return func(w http.ResponseWriter, r *http.Request, p *authn.Principal) {
		var body struct {
			Reason string `json:"reason"`
		}
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
				writeError(w, http.StatusBadRequest, `the body must be JSON such as {"reason":"…"}`)
				return
			}
		}
		if len(body.Reason) > maxReasonBytes {
			writeError(w, http.StatusBadRequest, "reason longer than 1024 bytes")
			return
		}
		verb := "denied"
		if approve {
			verb = "approved"
		}
		if body.Reason == "" {
			body.Reason = verb
		}
		a, err := h.approvals.Decide(r.PathValue("id"), p.Roles, Decision{Approve: approve, By: p.Subject, Reason: body.Reason})
		if err != nil {
			writeError(w, http.StatusNotFound, err.Error())
			return
		}
		writeJSON(w, map[string]any{"id": a.ID, "tool": a.Tool, "principal": a.Principal, "decision": verb, "by": p.Subject})
	}
}
