package gateway

import (
	"context"
	"fmt"
	"net/http"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/pins"
	"github.com/mcpguard/mcpguard/internal/upstream"
)

// screenPins drops from an upstream's tool list every tool whose definition is not the approved
// one, recording each newly quarantined (or newly pinned) definition. A tool that cannot be
// checked is hidden too: fail closed.
func (g *Gateway) screenPins(ctx context.Context, c *caller, up *upstream.Upstream, items []listItem) []listItem {
	kept := items[:0]
	for _, item := range items {
		name, _ := jsonrpc.String(item.key)
		exposed := g.expose(up, name)
		v, err := g.pins.Check(ctx, exposed, item.raw)
		if err != nil {
			g.logger.Error("tool pin check failed; the tool is hidden", "tool", exposed, "err", err)
			continue
		}
		if v.New {
			decision, reasons := audit.DecisionAllow, []string{"pinned on first use"}
			if v.State == pins.Quarantined {
				decision, reasons = audit.DecisionDeny, []string{v.Reason}
				g.logger.Warn("tool quarantined", "tool", exposed, "reason", v.Reason, "hash", v.Hash)
			}
			if err := g.record(ctx, c, &audit.Record{Kind: audit.KindQuarantine, Upstream: up.Name(), Tool: exposed, Decision: decision, Reasons: reasons,
				Detail: []byte(`{"hash":` + string(jsonrpc.Quote(v.Hash)) + `}`)}); err != nil {
				g.logger.Error("audit record of a tool pin event not written", "err", err, "tool", exposed)
			}
		}
		if v.State == pins.Approved {
			kept = append(kept, item)
		}
	}
	return kept
}

// checkPin refuses a call to a tool whose current definition is not approved.
func (g *Gateway) checkPin(ctx context.Context, c *caller, call *mcpguard.Call) *reply {
	if g.pins == nil || call.Kind != mcpguard.CallTool {
		return nil
	}
	name := call.Target
	v, ok := g.pins.Last(ctx, name)
	if !ok {
		if _, _, err := g.list(ctx, c, kindTools); err == nil {
			v, ok = g.pins.Last(ctx, name)
		}
	}
	if ok && v.State == pins.Approved {
		return nil
	}
	reason := "the upstream does not list it, so its definition was never approved"
	if ok {
		reason = v.Reason
	}
	return &reply{err: &jsonrpc.Error{Code: mcpguard.CodeToolQuarantined,
		Message: fmt.Sprintf("tool %q is quarantined: %s; an operator must review it (mcpguard tools pending) and approve it (mcpguard tools approve)", truncate(name), reason)},
		status: http.StatusForbidden}
}
