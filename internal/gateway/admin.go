package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/mcpguard/mcpguard/internal/authn"
)

// adminRoute is one admin API route and the permission it needs. Every route is listed here and
// passes through the same check.
type adminRoute struct {
	pattern string
	// needs names what the caller must hold: "approver" means any authenticated principal,
	// whose roles then decide which approvals it sees and may decide.
	needs   string
	handler func(w http.ResponseWriter, r *http.Request, p *authn.Principal)
}

// AdminHandler is the admin API, for its own listener. Every request must authenticate like an
// MCP request does (bearer token, API key or client certificate); an operator sees and decides
// only the approvals whose approver role it holds.
func (g *Gateway) AdminHandler() http.Handler {
	routes := []adminRoute{
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
