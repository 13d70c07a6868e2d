package gateway

import (
	"net/http"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mask"
	"github.com/mcpguard/mcpguard/internal/mcp"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/policy"
)

// maskResult masks a tools/call result as the policy's masking rules say for the caller, in
// place, before anything of it reaches the client — in both eras, and on a stream too, since
// the reply is sent from rep (docs/policy.md, "Result masking"). It returns how many values
// each rule masked, for the outcome record; nil when nothing was masked. Tokens are keyed by the
// audit log's redaction key, so that a token in a result and one in the log match; without an
// audit log there is no key, and pseudonymise drops instead.
//
// A result that cannot be masked (not a JSON object, nested deeper or growing larger than the
// limits) is not passed on: the reply becomes an error, as for an upstream's invalid reply.
func (g *Gateway) maskResult(c *caller, call *mcpguard.Call, rep *reply) (rules map[string]int) {
	if g.policy == nil || rep.err != nil || call.Method != mcp.MethodToolsCall || c.principal == nil {
		return nil
	}
	plan := g.policy.Policy().Masking(*c.principal, policy.Call{Kind: policy.KindTool, Name: call.Target, SourceIP: c.sourceIP})
	if plan == nil {
		return nil
	}
	opts := mask.Options{MaxBytes: int(g.limits.MaxMessageBytes), MaxDepth: g.limits.MaxJSONDepth}
	if g.auditRedactor != nil {
		opts.Token = g.auditRedactor
	}
	out, st, err := plan.Apply(rep.result, &opts)
	if err != nil {
		g.logger.Warn("tool result refused: it could not be masked as the policy requires", "target", call.Target,
			"request_id", call.RequestID, "err", err)
		*rep = reply{err: jsonrpc.NewError(mcpguard.CodeUpstreamBadReply, "the tool's result could not be masked as the policy requires"), status: http.StatusBadGateway}
		return nil
	}
	rep.result = out
	return st
}
