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
	"time"

	"github.com/mcpguard/mcpguard/internal/admin"
	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/keystore"
	"github.com/mcpguard/mcpguard/internal/mcp"
	"github.com/mcpguard/mcpguard/internal/pins"
	"github.com/mcpguard/mcpguard/internal/policy"
	"github.com/mcpguard/mcpguard/internal/redact"
	"github.com/mcpguard/mcpguard/internal/store"
	"github.com/mcpguard/mcpguard/internal/upstream"
)

// Version is reported as the gateway's serverInfo.version.
var Version = "0.1.0"

// Options configures New.
type Options struct {
	Logger *slog.Logger
	// Executable is the path "@self" stands for in stdio upstream commands; empty means the
	// running binary.
	Executable string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OpenStore opens the audit store a DSN names; the program's wiring chooses the backends;
	// required when audit is configured.
	OpenStore func(ctx context.Context, dsn string) (store.Store, error)
}

// Gateway is one configured gateway: its upstreams, sessions and listeners.
type Gateway struct {
	// base is the context of the gateway's own work (sessions, policy reload records): New's,
	// without its cancellation; Close ends what derives from it.
	base    context.Context
	workers *workers // run legacy sessions' requests
	cfg     *config.Config
	logger  *slog.Logger
	now     func() time.Time
	lim     jsonrpc.Limits
	sep     string

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
	keys      *keystore.Store  // API keys, when configured
	approvals *admin.Approvals // calls held for a human decision
	// adminEnabled says an admin API serves approvals; without it approval-gated calls are refused.
	adminEnabled  bool
	auditRedactor *redact.Redactor // shows held calls to approvers as the audit log stores them
	pins          *pins.Pinner     // approved tool definitions, when pinning is configured
	audit         *audit.Log
	auditStore    store.Store
	auditClose    sync.Once
	// Outcome records being written after their calls were answered.
	outcomes     sync.WaitGroup
	outcomeSlots chan struct{}

	// Authentication, when configured: the request step and the public metadata document.
	authn         *authn.Authenticator
	adminAuthn    *authn.Authenticator // the same, plus operator sessions
	identityKey   []byte               // encrypts operators' TOTP secrets (identity_encryption_key); nil: clear
	operators     *authn.Operators     // operator accounts, when api_keys_database is configured
	oidcLogin     *admin.OIDCLogin     // operators' OpenID Connect login (admin.oidc)
	metadata      http.Handler
	metadataPaths map[string]bool
}

// New builds a gateway from a validated configuration. Call Start to connect the upstreams. ctx
// bounds the construction only (opening the stores, loading the audit log); nothing built keeps it.
func New(ctx context.Context, cfg *config.Config, opts *Options) (*Gateway, error) {
	if opts == nil {
		opts = &Options{}
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	g := &Gateway{
		cfg:       cfg,
		logger:    logger,
		now:       now,
		sep:       cfg.NamespaceSeparator,
		byPrefix:  map[string]*upstream.Upstream{},
		listeners: map[*listener]struct{}{},
		lim: jsonrpc.Limits{
			MaxBytes: int(cfg.Limits.MaxBodyBytes),
			MaxDepth: cfg.Limits.MaxJSONDepth,
		},
	}
	if g.sep == "" {
		g.sep = "."
	}
	g.base = context.WithoutCancel(ctx)
	g.workers = newWorkers()
	g.sessions = newSessions(g.base, cfg.Limits.MaxSessions, cfg.Limits.SessionIdleTimeout, now)
	upLim := jsonrpc.Limits{MaxBytes: int(cfg.Limits.MaxMessageBytes), MaxDepth: cfg.Limits.MaxJSONDepth}
	for i := range cfg.Upstreams {
		spec, err := upstreamSpec(&cfg.Upstreams[i])
		if err != nil {
			return nil, err
		}
		up, err := upstream.New(spec, cfg.Limits.RequestTimeout, &upstream.Options{
			Hub: g, Logger: logger, Limits: upLim, MaxMessageBytes: int(cfg.Limits.MaxMessageBytes), Executable: opts.Executable,
		})
		if err != nil {
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
	g.originOK, g.hostOK = originChecker(cfg), hostChecker(cfg)
	if cfg.Audit != nil {
		if opts.OpenStore == nil {
			return nil, errors.New("audit is configured but gateway.Options.OpenStore is nil: the program's wiring must choose the audit store's backends")
		}
		if err := g.setupAudit(ctx, cfg.Audit, opts.OpenStore); err != nil {
			return nil, err
		}
		g.outcomeSlots = make(chan struct{}, maxOutcomesInFlight)
	}
	g.adminEnabled = cfg.Admin != nil
	g.approvals = admin.NewApprovals(&admin.ApprovalsOptions{Now: now})
	if cfg.ToolPinning != nil {
		if err := g.setupPins(ctx, cfg.ToolPinning); err != nil {
			g.closeAudit()
			return nil, err
		}
	}
	if cfg.PolicyFile != "" {
		if err := g.setupPolicy(cfg.PolicyFile); err != nil {
			g.closeAudit()
			return nil, err
		}
	}
	if cfg.Auth != nil || cfg.APIKeysDatabase != "" || (cfg.TLS != nil && cfg.TLS.ClientCAFile != "") {
		if err := g.setupAuth(ctx, cfg); err != nil {
			return nil, err
		}
	}
	if cfg.Admin != nil && cfg.Admin.OIDC != nil {
		if err := g.setupAdminOIDC(cfg.Admin.OIDC); err != nil {
			g.closeAudit()
			return nil, err
		}
	}
	return g, nil
}

// setupAuth builds the authentication step: bearer tokens validated against the issuer's keys
// (auth), client certificates mapped to principals (tls.client_ca_file), and the Protected
// Resource Metadata that 401 answers point to.
func (g *Gateway) setupAuth(ctx context.Context, cfg *config.Config) error {
	opts := &authn.AuthenticatorOptions{Logger: g.logger, OnReject: g.recordAuthFailure}
	if cfg.APIKeysDatabase != "" {
		ks, err := keystore.Open(ctx, cfg.APIKeysDatabase)
		if err != nil {
			return fmt.Errorf("api_keys_database: %w", err)
		}
		g.keys = ks
		if g.identityKey, err = cfg.IdentityKey(); err != nil {
			return err
		}
		opts.APIKeys = authn.NewAPIKeys(ks, &authn.APIKeysOptions{Now: g.now})
	}
	if t := cfg.TLS; t != nil && t.ClientCAFile != "" {
		fields := make([]authn.CertificateField, 0, len(t.ClientNames))
		for _, n := range t.ClientNames {
			fields = append(fields, authn.CertificateField(n))
		}
		m, err := authn.NewCertificateMapper(&authn.CertificateMapperOptions{Fields: fields, Roles: t.ClientRoles, RequireListed: t.RequireListed})
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		opts.Certificates = m
	}
	a := cfg.Auth
	if a == nil {
		// API keys or client certificates only: no token is accepted, and the 401 names this
		// endpoint.
		return g.buildAuthenticators(ctx, "https://"+cfg.Listen+cfg.Path, nil, opts)
	}
	v, err := authn.NewValidator(a.Issuer, a.Resource, &authn.ValidatorOptions{
		ExtraAudiences: a.ExtraAudiences, JWKSURL: a.JWKSURL, Algorithms: a.Algorithms,
		ClockSkew: a.ClockSkew, RolesClaim: a.RolesClaim, GroupsClaim: a.GroupsClaim, Logger: g.logger,
	})
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	opts.RequiredScopes = a.RequiredScopes
	if err := g.buildAuthenticators(ctx, a.Resource, v, opts); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	g.metadata, err = authn.MetadataHandler(authn.ResourceMetadata{
		Resource: a.Resource, AuthorizationServers: []string{a.Issuer}, ScopesSupported: a.RequiredScopes,
		BearerMethodsSupported: []string{"header"}, ResourceName: "mcpguard",
	})
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	g.metadataPaths = map[string]bool{}
	for _, p := range authn.MetadataPaths(a.Resource) {
		g.metadataPaths[p] = true
	}
	return nil
}

// Start connects every upstream in the background.
func (g *Gateway) Start(ctx context.Context) {
	for _, up := range g.ups {
		up.Start(ctx)
	}
	go g.sessions.reap(ctx)
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
	if err := g.closeAudit(); err != nil {
		errs = append(errs, err)
	}
	if g.keys != nil {
		if err := g.keys.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if g.pins != nil {
		if err := g.pins.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, up := range g.ups {
		if err := up.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close upstream %q: %w", up.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// buildAuthenticators makes the MCP endpoint's authenticator and the admin API's, which also
// accepts operator sessions (password + TOTP, `mcpguard operators login`) when identities are
// stored.
func (g *Gateway) buildAuthenticators(ctx context.Context, resource string, tokens authn.TokenVerifier, opts *authn.AuthenticatorOptions) error {
	var err error
	if g.authn, err = authn.NewAuthenticator(resource, tokens, opts); err != nil {
		return err
	}
	g.adminAuthn = g.authn
	if g.keys == nil {
		return nil
	}
	ops, err := g.keys.Operators(ctx, &keystore.OperatorOptions{SecretKey: g.identityKey})
	if err != nil {
		return err
	}
	svc, err := authn.NewOperators(ctx, ops, ops, &authn.OperatorsOptions{Now: g.now, Logger: g.logger})
	if err != nil {
		return err
	}
	g.operators = svc
	adminOpts := *opts
	adminOpts.Sessions = svc.Sessions()
	g.adminAuthn, err = authn.NewAuthenticator(resource, tokens, &adminOpts)
	return err
}

// closeAudit flushes and closes the audit log and its store, once. The log stays configured:
// a call that arrives during shutdown cannot be recorded and is refused, never forwarded.
func (g *Gateway) closeAudit() error {
	if g.audit == nil {
		return nil
	}
	var err error
	g.auditClose.Do(func() {
		g.outcomes.Wait() // every outcome record already under way is written first
		err = g.audit.Close()
		if cerr := g.auditStore.Close(); err == nil {
			err = cerr
		}
	})
	return err
}

// Upstreams lists the configured upstreams in configuration order.
func (g *Gateway) Upstreams() []*upstream.Upstream { return g.ups }

// originChecker accepts loopback origins and the configured ones (DNS-rebinding protection).
func originChecker(cfg *config.Config) func(string) bool {
	allowed := map[string]bool{}
	for _, o := range cfg.AllowedOrigins {
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
func hostChecker(cfg *config.Config) func(string) bool {
	allowed := map[string]bool{strings.ToLower(cfg.Listen): true}
	for _, h := range cfg.AllowedHosts {
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
