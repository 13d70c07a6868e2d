package gateway

import (
	"context"
	"errors"
	"net/http"

	"github.com/mcpguard/mcpguard/internal/contain"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/metrics"
	"github.com/mcpguard/mcpguard/internal/policy"
	"github.com/mcpguard/mcpguard/internal/upstream"
)

// The metrics (internal/metrics, docs/operations.md): the pipeline measures each call's steps
// and counts it (pipeline.go), authentication failures and containment refusals are counted
// where they are recorded, and everything else — sessions, streams, approvals, blocks,
// upstreams, the audit log — is read when Prometheus scrapes, never on the request path. Without
// metrics g.metrics is nil and every one of these is a nil check.

// watchMetrics tells the metrics what to read of the gateway when scraped.
func (g *Gateway) watchMetrics() {
	if g.metrics == nil {
		return
	}
	ups := make(map[string]func() bool, len(g.ups))
	breakers := make(map[string]func() (upstream.BreakerState, bool), len(g.ups))
	for _, up := range g.ups {
		ups[up.Name()] = up.Up
		breakers[up.Name()] = up.Breaker
	}
	s := metrics.Sources{
		Sessions: func() int {
			g.sessions.mu.Lock()
			defer g.sessions.mu.Unlock()
			return len(g.sessions.byID)
		},
		Streams: func() (sse, listen int) {
			g.lmu.Lock()
			defer g.lmu.Unlock()
			return int(g.sseOpen.Load()), len(g.listeners)
		},
		ApprovalsPending: g.approvals.Pending,
		UpstreamUp: func(name string) bool {
			up, ok := ups[name]
			return ok && up()
		},
		UpstreamBreaker: func(name string) (string, bool) {
			if b, ok := breakers[name]; ok {
				if state, ok := b(); ok {
					return state.String(), true
				}
			}
			return "", false
		},
	}
	if g.guard != nil {
		s.Blocks = func() map[string]int {
			n := map[string]int{contain.BlockAddress: 0, contain.BlockPrincipal: 0, contain.BlockApproval: 0}
			for _, b := range g.guard.List() {
				n[b.Kind]++
			}
			return n
		}
	}
	if g.audit != nil {
		s.Audit = g.audit.Stats
	}
	g.metrics.Watch(s)
}

// followSSE is follow, counted among the streams open when metrics are on.
func (g *Gateway) followSSE(ctx context.Context, w http.ResponseWriter, st *stream, seq int64) {
	if g.metrics != nil {
		g.sseOpen.Add(1)
		defer g.sseOpen.Add(-1)
	}
	follow(ctx, w, st, seq)
}

// outcomeOf is what became of a forwarded call, as its audit outcome record (Outcome.Status)
// and the metrics and the call's span name it: ok, tool_error (a result with isError), error,
// timeout, upstream_down, or cancelled when the client went away first. It is "" when none
// records it: finding a tool error reads the reply, which a gateway without an audit log,
// metrics or tracing never does.
func (g *Gateway) outcomeOf(ctx context.Context, rep reply) metrics.Outcome {
	switch {
	case g.audit == nil && g.metrics == nil && g.tracer == nil:
		return ""
	case rep.err == nil:
		if v, ok := jsonrpc.Lookup(rep.result, "isError"); ok && string(v) == "true" {
			return metrics.OutcomeToolError
		}
		return metrics.OutcomeOK
	case errors.Is(ctx.Err(), context.Canceled):
		return metrics.OutcomeCancelled
	case rep.err.Code == mcpguard.CodeUpstreamTimeout:
		return metrics.OutcomeTimeout
	case rep.err.Code == mcpguard.CodeUpstreamDown, rep.err.Code == mcpguard.CodeUpstreamBadReply:
		return metrics.OutcomeUpstreamDown
	}
	return metrics.OutcomeError
}

// decisionOf is the policy's decision as the metrics count it.
func decisionOf(d *policy.Decision) metrics.Decision {
	if d.Allow {
		return metrics.DecisionAllow
	}
	return metrics.DecisionDeny
}
