package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/metrics"
)

// auditRetryAfter is the Retry-After, in seconds, of a call refused because it could not be
// recorded.
const auditRetryAfter = "5"

// record appends one event for the caller; nil when auditing is off.
func (g *Gateway) record(ctx context.Context, c *caller, rec *audit.Record) error {
	if g.audit == nil {
		return nil
	}
	c.stamp(rec)
	_, err := g.audit.Append(ctx, rec)
	return err
}

// stamp sets who made the call, from where and in which era.
func (c *caller) stamp(rec *audit.Record) {
	if c.principal != nil { // nil for events no caller makes (a policy reload, a refused credential)
		rec.Principal = c.principal.Subject
		rec.Roles = c.principal.Roles
	}
	rec.AuthMethod = c.authMethod
	if c.sourceIP.IsValid() {
		rec.ClientIP = c.sourceIP.String()
	}
	rec.Era = c.era.String()
}

// newRequestID correlates a call's request and outcome records.
func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// recordCall records a call the policy allowed, durably, before it is forwarded. If the record
// cannot be written the call is refused with 503 and never reaches the upstream: no record, no
// call.
func (g *Gateway) recordCall(ctx context.Context, c *caller, call *mcpguard.Call, rule string, params []byte) *reply {
	if g.audit == nil {
		return nil
	}
	call.RequestID = newRequestID()
	err := g.record(ctx, c, &audit.Record{
		Kind: audit.KindToolCall, RequestID: call.RequestID, TraceID: call.TraceID, Method: call.Method, Upstream: call.Upstream, Tool: call.Target,
		Arguments: call.Arguments, Decision: audit.DecisionAllow, Rule: rule, RequestBytes: int64(len(params)),
	})
	if errors.Is(err, audit.ErrRecordRefused) {
		r := fail(jsonrpc.CodeInvalidParams, http.StatusBadRequest, "%s", err.Error())
		return &r
	}
	if err != nil {
		g.logger.Error("audit record not written; call refused", "err", err, "method", call.Method, "target", call.Target)
		r := fail(mcpguard.CodeAuditUnavailable, http.StatusServiceUnavailable, "the audit log is unavailable, so the call was not forwarded: retry later")
		return &r
	}
	return nil
}

// recordCallOutcome records what became of a forwarded call: its outcome (outcomeOf).
// masked counts the values result masking replaced, by rule (nil: none).
func (g *Gateway) recordCallOutcome(ctx context.Context, c *caller, call *mcpguard.Call, rep reply, outcome metrics.Outcome, started time.Time, masked map[string]int) {
	if g.audit == nil {
		return
	}
	out := &audit.Outcome{Status: string(outcome)}
	if rep.err != nil {
		out.ErrorCode, out.Error = int(rep.err.Code), rep.err.Message
	} else {
		sum := sha256.Sum256(rep.result)
		out.ResultDigest = "sha256:" + hex.EncodeToString(sum[:])
		out.Masked = masked
	}
	g.recordOutcome(ctx, c, &audit.Record{
		Kind: audit.KindOutcome, RequestID: call.RequestID, TraceID: call.TraceID, Method: call.Method, Upstream: call.Upstream, Tool: call.Target,
		Outcome: out, DurationMicros: time.Since(started).Microseconds(), ResponseBytes: int64(len(rep.result)),
	})
}

// detachedRecordTimeout bounds how long a record made apart from a request's answer (a
// containment act) may wait for the log.
const detachedRecordTimeout = 30 * time.Second

// recordOutcome appends an outcome record without holding the reply for it: the call record,
// written before the call was forwarded, is what makes the call durable, so a reply costs one
// commit, and the outcome joins the next commit (audit.Log.AppendLater). A crash can lose
// outcome records of answered calls, never their call records (docs/audit.md). While the log's
// queue is full, the reply waits for its outcome record to be queued (backpressure, bounded by
// the log's store timeout).
func (g *Gateway) recordOutcome(ctx context.Context, c *caller, rec *audit.Record) {
	c.stamp(rec)
	requestID := rec.RequestID
	report := func(err error) {
		if err != nil {
			g.logger.Error("audit outcome record not written", "err", err, "request_id", requestID)
		}
	}
	// The call is answered whatever happens to its client now.
	report(g.audit.AppendLater(context.WithoutCancel(ctx), rec, report))
}

// recordDenial records a policy denial; the denial stands even if the record cannot be written.
func (g *Gateway) recordDenial(ctx context.Context, c *caller, call *mcpguard.Call, rule string, reasons []string) {
	if err := g.record(ctx, c, &audit.Record{
		Kind: audit.KindPolicyDenial, RequestID: newRequestID(), TraceID: call.TraceID, Method: call.Method, Upstream: call.Upstream, Tool: call.Target,
		Arguments: call.Arguments, Decision: audit.DecisionDeny, Rule: rule, Reasons: reasons,
	}); err != nil {
		g.logger.Error("audit record of a denial not written", "err", err, "target", call.Target)
	}
}

// recordRefusal records a call the gateway refused before the policy saw it: a target no
// upstream serves, arguments that do not match the target's definition, a quarantined tool.
// step names the pipeline step that refused it.
func (g *Gateway) recordRefusal(ctx context.Context, c *caller, call *mcpguard.Call, step string, rep *reply) {
	reason := rep.refusal
	if rep.err != nil {
		reason = rep.err.Message
	}
	g.recordDenial(ctx, c, call, "gateway:"+step, []string{reason})
}

// recordAuthFailure is the authenticator's hook for refused requests. A refused API key is
// named by its public id (detail api_key_id), so an operator can see which key is being tried;
// the credential itself is never recorded.
func (g *Gateway) recordAuthFailure(ctx context.Context, r *http.Request, status int, rej *authn.Rejection) {
	c := &caller{}
	_, c.sourceIP = principalOf(r)
	var detail []byte
	if rej.KeyID != "" {
		c.authMethod = string(authn.MethodAPIKey)
		detail, _ = json.Marshal(map[string]string{"api_key_id": rej.KeyID})
	}
	if err := g.record(ctx, c, &audit.Record{
		Kind: audit.KindAuthFailure, RequestID: newRequestID(), Method: r.Method, Detail: detail,
		Decision: audit.DecisionDeny, Reasons: []string{string(rej.Reason)}, Outcome: &audit.Outcome{Status: "error", ErrorCode: status},
	}); err != nil {
		g.logger.Error("audit record of an authentication failure not written", "err", err)
	}
	g.metrics.AuthFailed(string(rej.Reason))
	g.authFailed(ctx, r, rej)
}
