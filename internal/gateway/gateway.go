// Package gateway is the request pipeline of mcpguard: it serves MCP to clients of both protocol
// eras, aggregates the upstreams behind it into one namespaced server, and routes every call to
// the upstream that serves it.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpguard/mcpguard/internal/admin"
	"github.com/mcpguard/mcpguard/internal/anomaly"
	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/contain"
	"github.com/mcpguard/mcpguard/internal/gateway/parts"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcp"
	"github.com/mcpguard/mcpguard/internal/metrics"
	"github.com/mcpguard/mcpguard/internal/pins"
	"github.com/mcpguard/mcpguard/internal/policy"
	"github.com/mcpguard/mcpguard/internal/redact"
	"github.com/mcpguard/mcpguard/internal/tracing"
	"github.com/mcpguard/mcpguard/internal/upstream"
)

// Version is reported as the gateway's serverInfo.version.
var Version = "0.1.0"

// Parts is what New builds a gateway from; cmd/mcpguard/wiring builds them from the
// configuration.
type Parts = parts.Parts

// Gateway is one configured gateway: its upstreams, sessions and listeners.
type Gateway struct {
	// base is the context of the gateway's own work (sessions, policy reload records): New's,
	// without its cancellation; Close ends what derives from it.
	base    context.Context
	workers *workers // run legacy sessions' requests
	// bodyTimeout bounds the arrival of a request body (bodyReadTimeout; shorter in tests).
	bodyTimeout time.Duration
	logger      *slog.Logger
	now         func() time.Time
	path        string       // the MCP endpoint's
	limits      parts.Limits // of clients' requests
	lim         jsonrpc.Limits
	sep         string

	ups      []*upstream.Upstream
	byPrefix map[string]*upstream.Upstream
	bare     []*upstream.Upstream // upstreams without a prefix
	cat      *catalog

	sessions *sessions

	held heldCalls

	lmu       sync.Mutex
	listeners map[*listener]struct{}

	originOK func(string) bool
	hostOK   func(string) bool

	// Authorization, when a policy file is configured.
	policy *policy.Loader

	// The audit log, when configured: every call recorded durably before it is forwarded.
	approvals *admin.Approvals // calls held for a human decision
	// noApprover says why nobody could approve a held call (no admin API, no operator
	// accounts), so that approval-gated calls are refused; "" when an operator can.
	noApprover    string
	auditRedactor *redact.Redactor // shows held calls to approvers as the audit log stores them
	pins          *pins.Pinner     // approved tool definitions, when pinning is configured
	audit         *audit.Log
	closeStores   func() error // Parts.Close: what the wiring opened for the gateway
	partsClose    sync.Once

	// Authentication, when configured: the request step and the public metadata document.
	authn         *authn.Authenticator
	adminAuthn    *authn.Authenticator                          // the same, plus operator sessions
	oidcLogin     *admin.OIDCLogin                              // operators' OpenID Connect login (admin.oidc)
	subjects      admin.Subjects                                // data-subject exports (compliance)
	console       func(parts.ConsoleDeps) (http.Handler, error) // builds the operators' web console (admin.console); nil: none
	metadata      http.Handler
	metadataPaths map[string]bool

	drain *journalDrain // the admin journals drained into the audit log (drain.go)
	// draining: SIGTERM came, /readyz answers 503 while the calls in flight finish (health.go).
	draining atomic.Bool

	guard   *contain.Guard      // the containment step (contain.go); nil: none
	notify  func(contain.Event) // the security team's webhook, for containment acts
	anomaly *anomaly.Detector   // learns behaviour from served and denied calls; nil: none
	// The admin listener's networks (admitAdmin).
	adminAllowed, adminDenied contain.Networks
	response                  parts.Response // what the gateway does on an anomaly signal

	metrics         *metrics.Metrics // nil: none (metrics.go)
	tracer          *tracing.Tracer  // nil: none (tracing.go)
	metricsNeedAuth bool
	sseOpen         atomic.Int64 // SSE responses being written to legacy clients, counted with metrics on
}

// New builds a gateway from its parts. Call Start to connect the upstreams. ctx bounds the
// construction only; nothing built keeps it. The gateway owns the parts: its Close closes them,
// and so does New when it fails.
func New(ctx context.Context, p *Parts) (*Gateway, error) {
	logger := p.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	now := p.Now
	if now == nil {
		now = time.Now
	}
	g := &Gateway{
		logger:    logger,
		now:       now,
		path:      p.Path,
		limits:    p.Limits,
		sep:       p.NamespaceSeparator,
		byPrefix:  map[string]*upstream.Upstream{},
		listeners: map[*listener]struct{}{},
		lim: jsonrpc.Limits{
			MaxBytes: int(p.Limits.MaxBodyBytes),
			MaxDepth: p.Limits.MaxJSONDepth,
		},
		policy:        p.Policy,
		approvals:     admin.NewApprovals(&admin.ApprovalsOptions{Now: now}),
		auditRedactor: p.Redactor,
		pins:          p.Pins,
		audit:         p.Audit,
		closeStores:   p.Close,
		authn:         p.Authn,
		adminAuthn:    p.AdminAuthn,
		oidcLogin:     p.OIDCLogin,
		subjects:      p.Subjects,
		console:       p.Console,
		metadata:      p.Metadata,
		metadataPaths: map[string]bool{},
		guard:         p.Guard,
		notify:        p.Notify,
		anomaly:       p.Anomaly,
		adminAllowed:  p.AdminAllowed,
		adminDenied:   p.AdminDenied,
		response:      p.Response,
		metrics:       p.Metrics,
		tracer:        p.Tracer,

		metricsNeedAuth: p.MetricsNeedAuth,
	}
	if g.sep == "" {
		g.sep = "."
	}
	switch {
	case !p.AdminEnabled:
		g.noApprover = "no admin API is configured to approve it (admin.listen)"
	case p.Approvals == nil:
		g.noApprover = "no operator can approve it: operator accounts live in api_keys_database, which is not configured"
	default:
		a, err := admin.OpenApprovals(ctx, p.Approvals, &admin.ApprovalsOptions{Now: now})
		if err != nil {
			g.closeParts()
			return nil, fmt.Errorf("api_keys_database: %w", err)
		}
		g.approvals = a
	}
	for _, path := range p.MetadataPaths {
		g.metadataPaths[path] = true
	}
	if p.Hooks != nil {
		p.Hooks.Install(g.recordAuthFailure, g.policyReloaded, g.containEvent)
		p.Hooks.InstallSignaled(g.respond)
	}
	g.base = context.WithoutCancel(ctx)
	g.drain = newJournalDrain(p)
	g.workers = newWorkers()
	g.bodyTimeout = bodyReadTimeout
	g.sessions = newSessions(g.base, &p.Limits, now)
	upLim := jsonrpc.Limits{MaxBytes: int(p.Limits.MaxMessageBytes), MaxDepth: p.Limits.MaxJSONDepth}
	for _, spec := range p.Upstreams {
		up, err := upstream.New(spec, p.Limits.RequestTimeout, &upstream.Options{
			Hub: g, Logger: logger, Limits: upLim, MaxMessageBytes: int(p.Limits.MaxMessageBytes), Executable: p.Executable,
			WrapTransport: wrapTransport(p.Tracer),
		})
		if err != nil {
			g.closeParts()
			return nil, err
		}
		g.ups = append(g.ups, up)
		if up.Prefix() == "" {
			g.bare = append(g.bare, up)
		} else {
			g.byPrefix[up.Prefix()] = up
		}
	}
	g.cat = newCatalog(g)
	g.watchMetrics()
	g.originOK, g.hostOK = originChecker(p.AllowedOrigins), hostChecker(p.Listen, p.AllowedHosts)
	return g, nil
}

// Start connects every upstream in the background.
func (g *Gateway) Start(ctx context.Context) {
	for _, up := range g.ups {
		up.Start(ctx)
	}
	go g.sessions.reap(ctx)
	g.startDrain(ctx)
	if g.guard != nil {
		go g.guard.Run(ctx)
	}
	if g.anomaly != nil {
		go g.anomaly.Run(ctx)
	}
	if g.policy != nil {
		go func() {
			if err := g.policy.Watch(ctx); err != nil && ctx.Err() == nil {
				g.logger.Error("watching the policy file stopped; SIGHUP still reloads it", "err", err)
			}
		}()
	}
}

// Close ends every session and listener and shuts the upstreams down.
func (g *Gateway) Close() error {
	g.sessions.closeAll()
	g.lmu.Lock()
	for l := range g.listeners {
		l.cancel()
	}
	g.lmu.Unlock()
	var errs []error
	if err := g.closeParts(); err != nil {
		errs = append(errs, err)
	}
	for _, up := range g.ups {
		if err := up.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close upstream %q: %w", up.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// closeParts flushes and closes the audit log, then what the wiring opened for the gateway
// (Parts.Close), once. The log stays configured: a call that arrives during shutdown cannot be
// recorded and is refused, never forwarded.
func (g *Gateway) closeParts() error {
	var errs []error
	g.partsClose.Do(func() {
		g.stopDrain() // the administrative acts made until now are recorded first
		if g.audit != nil {
			if err := g.audit.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		if g.closeStores != nil {
			if err := g.closeStores(); err != nil {
				errs = append(errs, err)
			}
		}
	})
	return errors.Join(errs...)
}

// Upstreams lists the configured upstreams in configuration order.
func (g *Gateway) Upstreams() []*upstream.Upstream { return g.ups }

// originChecker accepts loopback origins and the configured ones (DNS-rebinding protection).
func originChecker(origins []string) func(string) bool {
	allowed := map[string]bool{}
	for _, o := range origins {
		allowed[strings.ToLower(strings.TrimRight(o, "/"))] = true
	}
	return func(origin string) bool {
		o := strings.ToLower(strings.TrimRight(origin, "/"))
		if allowed[o] {
			return true
		}
		for _, scheme := range []string{"http://", "https://"} {
			if rest, ok := strings.CutPrefix(o, scheme); ok {
				return isLoopbackHost(rest)
			}
		}
		return false
	}
}

// hostChecker accepts loopback Host headers, the listen address and the configured hosts.
func hostChecker(listen string, hosts []string) func(string) bool {
	allowed := map[string]bool{strings.ToLower(listen): true}
	for _, h := range hosts {
		allowed[strings.ToLower(h)] = true
	}
	return func(host string) bool {
		h := strings.ToLower(host)
		if allowed[h] || isLoopbackHost(h) {
			return true
		}
		if name, _, err := net.SplitHostPort(h); err == nil && allowed[name] {
			return true
		}
		return false
	}
}

// isLoopbackHost reports whether host[:port] names the loopback interface.
func isLoopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// UpstreamNotify receives an upstream's notifications that belong to no call.
func (g *Gateway) UpstreamNotify(up *upstream.Upstream, method string, params []byte) {
	switch method {
	case mcp.NotificationToolsListChanged, mcp.NotificationPromptsListChanged, mcp.NotificationResourcesListChanged:
		g.cat.invalidate(up)
		g.broadcast(method, nil, "")
	case mcp.NotificationResourcesUpdated:
		uriRaw, _ := jsonrpc.Lookup(params, "uri")
		uri, _ := jsonrpc.String(uriRaw)
		g.broadcast(method, stripSubscriptionID(params), uri)
	case mcp.NotificationMessage:
		g.sessions.each(func(s *session) {
			if s.wantsLog(params) {
				s.standaloneSend(jsonrpc.AppendNotification(nil, method, params))
			}
		})
	default:
		g.logger.Debug("dropping upstream notification outside any call", "upstream", up.Name(), "method", method)
	}
}

// UpstreamRequest answers a server-to-client request that belongs to no call. With one shared
// upstream connection there is no single client to ask, so the gateway answers itself.
func (g *Gateway) UpstreamRequest(ctx context.Context, up *upstream.Upstream, method string, params []byte) ([]byte, *jsonrpc.Error) {
	if method == mcp.MethodRootsList {
		return []byte(`{"roots":[]}`), nil
	}
	return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "mcpguard relays "+method+" only while a client's call is in flight")
}

// broadcast sends a change notification to every legacy session and every modern listener that
// asked for it. uri is set for resource updates, which go only to subscribers of that resource.
func (g *Gateway) broadcast(method string, params []byte, uri string) {
	msg := jsonrpc.AppendNotification(nil, method, params)
	g.sessions.each(func(s *session) {
		if uri == "" || s.subscribed(uri) {
			s.standaloneSend(msg)
		}
	})
	g.lmu.Lock()
	defer g.lmu.Unlock()
	for l := range g.listeners {
		l.offer(method, params, uri)
	}
}

func stripSubscriptionID(params []byte) []byte {
	meta, ok := jsonrpc.Lookup(params, "_meta")
	if !ok {
		return params
	}
	meta = jsonrpc.DeleteMember(meta, mcp.MetaSubscriptionID)
	if string(meta) == "{}" {
		return jsonrpc.DeleteMember(params, "_meta")
	}
	return jsonrpc.SetMember(params, "_meta", meta)
}
