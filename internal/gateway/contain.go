package gateway

import (
	"context"
	"encoding/json"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/mcpguard/mcpguard/internal/anomaly"
	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/contain"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/policy"
)

// The containment step (internal/contain): the HTTP part refuses a client by its address
// before authentication (admit); the pipeline's step 2 refuses a suspended principal
// (contain); right after the policy decides, the configuration's rate limits and the policy's
// own limits and quotas are taken at once (limit), since the decision says which apply.

// admit refuses a client whose address is outside the listener's networks or blocked, and
// records the address it found (through the trusted proxies) for the steps after.
func (g *Gateway) admit(next http.Handler) http.Handler {
	if g.guard == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr, ref := g.guard.Admit(r)
		if ref != nil {
			g.recordContainment(r.Context(), &caller{principal: anonymousPrincipal, sourceIP: addr}, nil, ref)
			if s := ref.RetryAfterSeconds(); s > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(s))
			}
			writeJSON(w, ref.Status(), encodeReply(jsonrpc.ID{}, containReply(ref)))
			return
		}
		if g.guard.Forwarding() {
			r = r.WithContext(contain.WithClientAddr(r.Context(), addr))
		}
		next.ServeHTTP(w, r)
	})
}

// identityOf is the principal's identity key for limits and suspensions: its subject, whatever
// credential it used, so that its API key and its token count as one principal. Unauthenticated
// callers have none (they are limited by address).
func identityOf(p *mcpguard.Principal) string {
	if p == nil || p == anonymousPrincipal {
		return ""
	}
	return p.Subject
}

// contain is the pipeline's step 2: a suspended principal is refused (in memory: no round
// trip to the containment backend).
func (g *Gateway) contain(ctx context.Context, c *caller, call *mcpguard.Call) *reply {
	if g.guard == nil {
		return nil
	}
	if id := identityOf(c.principal); id != "" {
		if ref := g.guard.Suspended(id); ref != nil {
			g.recordContainment(ctx, c, call, ref)
			rep := containReply(ref)
			return &rep
		}
	}
	return nil
}

// containReply answers a refusal: -31002 with HTTP 429 for limits and quotas (Retry-After from
// the error's data), 403 for addresses, networks and suspensions, 503 when a limit's state
// cannot be read.
func containReply(ref *contain.Refusal) reply {
	code := int64(mcpguard.CodeRateLimited)
	switch ref.Kind {
	case contain.KindUnavailable:
		code = mcpguard.CodeAuditUnavailable
	case contain.KindNetwork, contain.KindSuspended:
		code = mcpguard.CodeDeniedByPolicy
	}
	data := []byte(`{}`)
	data = jsonrpc.SetMember(data, "kind", jsonrpc.Quote(ref.Kind))
	if ref.Name != "" {
		data = jsonrpc.SetMember(data, "limit", jsonrpc.Quote(ref.Name))
	}
	if s := ref.RetryAfterSeconds(); s > 0 {
		data = jsonrpc.SetMember(data, "retry_after", strconv.AppendInt(nil, int64(s), 10))
	}
	return reply{err: &jsonrpc.Error{Code: code, Message: ref.Reason, Data: data}, status: ref.Status()}
}

// retryAfterOr reads the Retry-After of a refusal from its JSON-RPC error's data (containReply,
// errorReply), def when it says none.
func retryAfterOr(body []byte, def string) string {
	e, _ := jsonrpc.Lookup(body, "error")
	d, _ := jsonrpc.Lookup(e, "data")
	if v, ok := jsonrpc.Lookup(d, "retry_after"); ok {
		if n, err := strconv.Atoi(string(v)); err == nil && n > 0 {
			return strconv.Itoa(n)
		}
	}
	return def
}

// containRecordEvery bounds the refusals recorded for one client and limit: a client hammering
// at a limit gets one record per interval, not one per request, so that it cannot fill the log.
const containRecordEvery = 10 * time.Second

// recordContainment records a request the containment step refused (kind rate_limit, or
// policy_denial for a network or a suspension). At most one record per client, kind and limit
// every containRecordEvery.
func (g *Gateway) recordContainment(ctx context.Context, c *caller, call *mcpguard.Call, ref *contain.Refusal) {
	g.metrics.Contained(ref.Kind)
	if g.audit == nil {
		return
	}
	who := identityOf(c.principal)
	if who == "" {
		who = c.sourceIP.String()
	}
	b := g.guard.Backend()
	key := "rec:" + ref.Kind + ":" + ref.Name + ":" + who
	if seen, err := b.Seen(ctx, key); err == nil && seen {
		return
	}
	_ = b.Mark(ctx, key, containRecordEvery)
	kind := audit.KindRateLimit
	if ref.Kind == contain.KindNetwork || ref.Kind == contain.KindSuspended {
		kind = audit.KindPolicyDenial
	}
	rule := ref.Rule
	if rule == "" {
		rule = "containment:" + ref.Kind
		if ref.Name != "" {
			rule += ":" + ref.Name
		}
	}
	rec := &audit.Record{Kind: kind, RequestID: newRequestID(), Decision: audit.DecisionDeny, Rule: rule,
		Reasons: []string{ref.Reason, "further refusals of this client by the same limit within " + containRecordEvery.String() + " are not recorded"}}
	if call != nil {
		rec.TraceID, rec.Method, rec.Upstream, rec.Tool = call.TraceID, call.Method, call.Upstream, call.Target
	}
	if err := g.record(ctx, c, rec); err != nil {
		g.logger.Error("audit record of a containment refusal not written", "err", err)
	}
}

// containEvent records a containment act (a block, a suspension, one lifted, an alert) in the
// audit log, which sends it to the SIEM sinks, and to the security team's webhook.
func (g *Gateway) containEvent(ctx context.Context, ev contain.Event) {
	kind := audit.KindBlock
	switch ev.Kind {
	case "suspend", "unsuspend":
		kind = audit.KindSuspend
	case "alert":
		kind = audit.KindAlert
	}
	detail, _ := json.Marshal(map[string]any{"action": ev.Kind, "target_kind": ev.Block.Kind, "target": ev.Block.Value,
		"actor": ev.Block.Actor, "expires": ev.Block.Expires, "repeat": ev.Block.Repeat, "signal": ev.Detail})
	c := &caller{}
	if ev.Block.Kind == contain.BlockAddress {
		c.sourceIP, _ = netip.ParseAddr(ev.Block.Value)
	}
	rec := &audit.Record{Kind: kind, RequestID: newRequestID(), Reasons: []string{ev.Block.Reason}, Detail: detail}
	if ev.Block.Kind == contain.BlockPrincipal {
		rec.Principal = ev.Block.Value
	}
	if g.audit != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), detachedRecordTimeout)
		defer cancel()
		if err := g.record(ctx, c, rec); err != nil {
			g.logger.Error("audit record of a containment act not written", "err", err, "action", ev.Kind)
		}
	}
	if g.notify != nil {
		g.notify(ev)
	}
}

// authFailed counts a refused credential for brute force detection, and holds the refusal for
// the principal's progressive delay.
func (g *Gateway) authFailed(ctx context.Context, r *http.Request, rej *authn.Rejection) {
	if g.guard == nil || !contain.CountsAsGuess(string(rej.Reason)) {
		return
	}
	_, addr := principalOf(r)
	target := ""
	if rej.KeyID != "" {
		target = "key:" + rej.KeyID
	}
	if d := g.guard.AuthFailed(ctx, addr, target); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
}

// limit takes, once the policy has decided, the configuration's rate limits and, for a call
// it allowed, the policy's own rate limits and quotas: one operation on the containment
// backend (contain.Guard.Limit), all or none. A denied call draws from the configuration's
// limits only. A quota's refusal is recorded as the policy's denial, naming the quota and its
// current value; a rate limit's, or a backend that cannot answer (503: a limit is never
// skipped), as containment. release, when not nil, ends the call's concurrency slots.
func (g *Gateway) limit(ctx context.Context, c *caller, call *mcpguard.Call, d *policy.Decision) (release func(), r *reply) {
	if g.guard == nil {
		return nil, nil
	}
	target := call.Target
	if call.Kind == mcpguard.CallEvery {
		target = ""
	}
	release, ref, err := g.guard.Limit(ctx, identityOf(c.principal), c.sourceIP, target, call.Upstream, d)
	if err != nil {
		g.logger.Error("the state of the call's limits could not be read; the call is refused", "rule", d.Rule, "err", err)
	}
	if ref == nil {
		return release, nil
	}
	if ref.Kind == contain.KindQuota {
		g.metrics.Contained(ref.Kind) // the others are counted where they are recorded
		rule := ref.Rule
		if rule == "" {
			rule = d.Rule
		}
		g.recordDenial(ctx, c, call, rule, []string{ref.Reason})
		g.observe(c, call, true, false)
	} else {
		g.recordContainment(ctx, c, call, ref)
	}
	rep := containReply(ref)
	return nil, &rep
}

// refund gives back the quota charges of a call that was admitted and then not forwarded: a
// quota counts forwarded calls.
func (g *Gateway) refund(ctx context.Context, d *policy.Decision) {
	if g.guard == nil {
		return
	}
	if err := g.guard.Refund(ctx, d); err != nil {
		g.logger.Error("the quota charges of a call not forwarded were not given back", "rule", d.Rule, "err", err)
	}
}

// markServed records, once a call was served, the marks later calls' sequence quotas look for.
// A call the upstream failed (an error, or a tool result with isError) leaves none.
func (g *Gateway) markServed(ctx context.Context, d *policy.Decision, rep reply) {
	if len(d.Marks) == 0 || g.guard == nil || rep.err != nil {
		return
	}
	if v, ok := jsonrpc.Lookup(rep.result, "isError"); ok && string(v) == "true" {
		return
	}
	if err := contain.Marks(ctx, g.guard.Backend(), d); err != nil {
		g.logger.Error("a served call's sequence mark was not recorded; calls that need it will be refused", "rule", d.Rule, "err", err)
	}
}

// ServerErrorLog is the error log for the http.Servers of the gateway's listeners: it writes to
// logger at warn level, and counts every TLS handshake that failed because the client's
// certificate did not verify as a failed authentication from the client's address (brute
// force detection). net/http reports a failed handshake only there, as "http: TLS handshake
// error from ADDR: ERR".
func (g *Gateway) ServerErrorLog(logger *slog.Logger) *log.Logger {
	if logger == nil {
		logger = g.logger
	}
	return log.New(&serverErrors{g: g, logger: logger}, "", 0)
}

type serverErrors struct {
	g      *Gateway
	logger *slog.Logger
}

const handshakeErrorPrefix = "http: TLS handshake error from "

func (s *serverErrors) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	s.logger.Warn(line)
	if s.g.guard == nil {
		return len(p), nil
	}
	rest, ok := strings.CutPrefix(line, handshakeErrorPrefix)
	if !ok || !strings.Contains(rest, "failed to verify certificate") {
		return len(p), nil
	}
	hostport, _, _ := strings.Cut(rest, ": ")
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return len(p), nil
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return len(p), nil
	}
	ctx, cancel := context.WithTimeout(s.g.base, 5*time.Second)
	defer cancel()
	// A failed handshake is never answered, so there is nothing to delay.
	s.g.guard.AuthFailed(ctx, addr.Unmap(), "")
	return len(p), nil
}

// observe feeds the anomaly detector one call the policy decided: never blocking, never with
// its arguments.
func (g *Gateway) observe(c *caller, call *mcpguard.Call, denied, failed bool) {
	if g.anomaly == nil {
		return
	}
	ev := anomaly.Event{Time: g.now(), Principal: identityOf(c.principal), Address: c.sourceIP, Denied: denied, Failed: failed}
	if call.Kind == mcpguard.CallTool {
		ev.Tool = call.Target
	}
	g.anomaly.Observe(ev)
}

// respond carries out the playbook's actions for an anomaly signal: an alert (recorded, sent to
// the SIEM sinks and the security team's webhook), a suspension, an address block, or approval
// required for every call of the principal, each for response.For.
func (g *Gateway) respond(s anomaly.Signal) {
	ctx, cancel := context.WithTimeout(g.base, 10*time.Second)
	defer cancel()
	actions := g.response.Playbook.Actions(s)
	names := make([]string, len(actions))
	for i, a := range actions {
		names[i] = a.String()
	}
	reason := "anomaly " + s.Kind.String() + " (" + s.Severity.String() + "): " + s.Detail
	now := g.now()
	until := now.Add(g.response.For)
	for _, a := range actions {
		var b contain.Block
		switch a {
		case anomaly.ActionAlert, anomaly.ActionEscalate:
			g.containEvent(ctx, contain.Event{Kind: "alert",
				Block: contain.Block{Kind: contain.BlockPrincipal, Value: s.Principal, Reason: reason, Actor: contain.AutomaticActor, Created: now},
				Detail: map[string]any{"signal": s.Kind.String(), "severity": s.Severity.String(), "tool": s.Tool,
					"address": addrKeyOf(s.Address), "actions": names, "escalate": a == anomaly.ActionEscalate}})
			continue
		case anomaly.ActionSuspendPrincipal:
			b = contain.Block{Kind: contain.BlockPrincipal, Value: s.Principal}
		case anomaly.ActionRequireApproval:
			b = contain.Block{Kind: contain.BlockApproval, Value: s.Principal}
		case anomaly.ActionBlockAddress:
			if !s.Address.IsValid() {
				continue
			}
			b = contain.Block{Kind: contain.BlockAddress, Value: s.Address.String()}
		default:
			continue
		}
		if g.guard == nil || b.Value == "" {
			continue
		}
		b.Reason, b.Actor, b.Created, b.Expires = reason, contain.AutomaticActor, now, until
		if err := g.guard.Put(ctx, b); err != nil {
			g.logger.Error("anomaly response not put in force", "action", a.String(), "err", err)
		}
	}
}

func addrKeyOf(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// anomalyApprovalTimeout is how long a call held by an anomaly response waits for approval.
const anomalyApprovalTimeout = 15 * time.Minute

// anomalyApproval puts an allowed call under a human's approval when an anomaly response put
// every call of its principal there, and refuses it when nobody could approve.
func (g *Gateway) anomalyApproval(c *caller, d *policy.Decision) {
	if !d.Allow || d.RequireApproval != nil || !g.underApproval(c) {
		return
	}
	d.RequireApproval = &policy.Approval{ApproverRole: g.response.ApproverRole, Timeout: anomalyApprovalTimeout}
	if d.Rule == "" {
		d.Rule = "containment:approval"
	} else {
		d.Rule = "containment:approval (" + d.Rule + ")"
	}
	if g.noApprover != "" {
		d.Allow = false
		d.Reasons = append(d.Reasons, "an anomaly response requires approval by "+g.response.ApproverRole+" for every call of this principal, and "+g.noApprover)
	}
}

// underApproval reports whether an anomaly response put the caller's every call under human
// approval.
func (g *Gateway) underApproval(c *caller) bool {
	if g.guard == nil || g.response.ApproverRole == "" {
		return false
	}
	id := identityOf(c.principal)
	return id != "" && g.guard.RequiresApproval(id)
}
