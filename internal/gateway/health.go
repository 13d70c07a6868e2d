package gateway

import (
	"encoding/json"
	"net/http"

	"github.com/mcpguard/mcpguard/internal/upstream"
)

// Health, on the admin listener (docs/deployment.md, "Health and drain"):
//
//   - GET /healthz answers 200 while the process serves HTTP at all: a liveness check that
//     restarting cannot improve on is no reason to restart.
//   - GET /readyz answers 200 when this instance should get traffic and 503 when it should
//     not: it drains (SIGTERM), its audit log refuses appends (a failed sync or checkpoint:
//     every call would be refused), or no upstream is reachable. One upstream down, or its
//     circuit open, leaves the instance ready for the others' calls; a shared containment
//     backend (Redis) that is down leaves it ready too, counting alone at its configured
//     fraction as docs/containment.md says. The body says which check failed.
//
// Neither needs authentication (a load balancer's health check has none); both pass the admin
// listener's network checks, and say nothing a client could use beyond up or down.

// Readiness is the body of /readyz.
type Readiness struct {
	Ready bool `json:"ready"`
	// Draining: the instance received SIGTERM and finishes its calls in flight.
	Draining bool `json:"draining,omitempty"`
	// Audit is "ok", "off" (no audit log) or "failed".
	Audit string `json:"audit"`
	// Upstreams maps each upstream to "up", "down", "open" (circuit open) or "half_open".
	Upstreams map[string]string `json:"upstreams"`
	// Containment is "local", "shared", "degraded" (the shared backend is down) or "" without
	// containment.
	Containment string `json:"containment,omitempty"`
	// Reason says why the instance is not ready; "" when it is.
	Reason string `json:"reason,omitempty"`
}

// Readiness reports whether this instance should get traffic, and why not.
func (g *Gateway) Readiness() Readiness {
	r := Readiness{Ready: true, Audit: "off", Upstreams: make(map[string]string, len(g.ups)), Draining: g.draining.Load()}
	if g.audit != nil {
		r.Audit = "ok"
		if g.audit.Stats().Failed {
			r.Audit = "failed"
		}
	}
	reachable := 0
	for _, up := range g.ups {
		state := "down"
		if up.Up() {
			state = "up"
		}
		if b, ok := up.Breaker(); ok && b != upstream.BreakerClosed {
			state = b.String()
		}
		if state == "up" || state == "half_open" {
			reachable++
		}
		r.Upstreams[up.Name()] = state
	}
	if g.guard != nil {
		r.Containment = "local"
		if shared, degraded := g.guard.Shared(); degraded {
			r.Containment = "degraded"
		} else if shared {
			r.Containment = "shared"
		}
	}
	switch {
	case r.Draining:
		r.Reason = "draining: the instance is shutting down"
	case r.Audit == "failed":
		r.Reason = "the audit log refuses appends (a sync or a checkpoint failed): every call would be refused; restart the instance"
	case reachable == 0 && len(g.ups) > 0:
		r.Reason = "no upstream is reachable"
	}
	r.Ready = r.Reason == ""
	return r
}

// Drain makes /readyz answer 503 from now on, so that load balancers stop sending calls here
// before the listeners close. It does not stop anything itself.
func (g *Gateway) Drain() { g.draining.Store(true) }

// health serves /healthz and /readyz in front of next.
func (g *Gateway) health(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz", "/readyz":
		default:
			next.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if r.URL.Path == "/healthz" {
			_, _ = w.Write([]byte(`{"live":true}` + "\n"))
			return
		}
		rd := g.Readiness()
		if !rd.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(rd)
	})
}
