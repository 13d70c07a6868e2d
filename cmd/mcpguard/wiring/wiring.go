// Package wiring builds a gateway's parts from the configuration: it opens the stores (choosing
// their backends), builds the audit log, the authenticators, the policy loader, the tool pins and
// the operators' login, and turns the configured upstreams into specs. gateway.New takes what it
// builds; the gateway reads no configuration and opens no store.
package wiring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"time"

	"github.com/mcpguard/mcpguard/internal/admin"
	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/export"
	"github.com/mcpguard/mcpguard/internal/gateway/parts"
	"github.com/mcpguard/mcpguard/internal/gdpr"
	"github.com/mcpguard/mcpguard/internal/keystore"
	"github.com/mcpguard/mcpguard/internal/metrics"
	"github.com/mcpguard/mcpguard/internal/pins"
	"github.com/mcpguard/mcpguard/internal/policy"
	"github.com/mcpguard/mcpguard/internal/store"
	"github.com/mcpguard/mcpguard/internal/tracing"
)

// Options configures Build.
type Options struct {
	// Logger is the operational log; nil discards.
	Logger *slog.Logger
	// Executable is the path "@self" stands for in stdio upstream commands; empty means the
	// running binary.
	Executable string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// TraceExporter, when set, replaces the OTLP exporter of the tracing section (tests and
	// benchmarks: tracing.Discard); nil: the configured endpoint.
	TraceExporter tracing.Exporter
}

// Build builds a gateway's parts from a validated configuration. ctx bounds the construction
// only (opening the stores, loading the audit log); nothing built keeps it. On error Build closes
// what it opened; otherwise the parts' Close does, called by the gateway's Close.
func Build(ctx context.Context, cfg *config.Config, opts *Options) (_ *parts.Parts, err error) {
	if opts == nil {
		opts = &Options{}
	}
	// A nil logger or clock is passed on as it is: the components default it as the gateway does.
	logger, now := opts.Logger, opts.Now
	p := &parts.Parts{
		Path:               cfg.Path,
		Listen:             cfg.Listen,
		AllowedOrigins:     cfg.AllowedOrigins,
		AllowedHosts:       cfg.AllowedHosts,
		NamespaceSeparator: cfg.NamespaceSeparator,
		Limits: parts.Limits{
			MaxBodyBytes:            int64(cfg.Limits.MaxBodyBytes),
			MaxHeaderBytes:          int64(cfg.Limits.MaxHeaderBytes),
			MaxMessageBytes:         int64(cfg.Limits.MaxMessageBytes),
			MaxJSONDepth:            cfg.Limits.MaxJSONDepth,
			MaxSessions:             cfg.Limits.MaxSessions,
			MaxSessionsPerPrincipal: cfg.Limits.MaxSessionsPerPrincipal,
			MaxSessionsPerAddress:   cfg.Limits.MaxSessionsPerAddress,
			SessionIdleTimeout:      cfg.Limits.SessionIdleTimeout,
			RequestTimeout:          cfg.Limits.RequestTimeout,
		},
		Executable:   opts.Executable,
		Logger:       logger,
		Now:          now,
		AdminEnabled: cfg.Admin != nil,
		Hooks:        &parts.Hooks{},
	}
	for i := range cfg.Upstreams {
		spec, err := upstreamSpec(&cfg.Upstreams[i])
		if err != nil {
			return nil, err
		}
		p.Upstreams = append(p.Upstreams, spec)
	}
	if cfg.Admin != nil && cfg.Admin.Metrics != nil {
		names := make([]string, len(cfg.Upstreams))
		for i := range cfg.Upstreams {
			names[i] = cfg.Upstreams[i].Name
		}
		p.Metrics = metrics.New(&metrics.Options{Upstreams: names, Logger: logger, Now: now})
		p.MetricsNeedAuth = cfg.Admin.Metrics.RequireAuth
	}
	b := &builder{p: p, logger: logger, now: now}
	defer func() {
		if err != nil {
			if p.Audit != nil {
				_ = p.Audit.Close()
			}
			_ = b.close()
		}
	}()
	if cfg.Audit != nil {
		if err := b.audit(ctx, cfg.Audit, cfg.Compliance); err != nil {
			return nil, err
		}
	}
	if cfg.ToolPinning != nil {
		if err := b.pins(ctx, cfg.ToolPinning); err != nil {
			return nil, err
		}
	}
	if cfg.PolicyFile != "" {
		if err := b.policy(cfg.PolicyFile, cfg.PolicyNamespace()); err != nil {
			return nil, err
		}
	}
	if cfg.Auth != nil || cfg.APIKeysDatabase != "" || (cfg.TLS != nil && cfg.TLS.ClientCAFile != "") {
		if err := b.auth(ctx, cfg); err != nil {
			return nil, err
		}
	}
	if cfg.Admin != nil && cfg.Admin.OIDC != nil {
		c := cfg.Admin.OIDC
		lo := &admin.OIDCLoginOptions{Now: now, Logger: logger}
		if b.keys != nil {
			// In the identities database, so that the provider's callback may reach any instance.
			if lo.States, err = b.keys.LoginStates(ctx); err != nil {
				return nil, fmt.Errorf("api_keys_database: %w", err)
			}
		}
		if p.OIDCLogin, err = admin.NewOIDCLogin(authn.OIDCLoginConfig{
			Issuer: c.Issuer, ClientID: c.ClientID, ClientSecret: c.ClientSecret.Reveal(), RedirectURL: c.RedirectURL,
			Scopes: c.Scopes, OperatorClaim: c.OperatorClaim, RequiredAMR: c.RequiredAMR,
		}, b.operators, lo); err != nil {
			return nil, err
		}
	}
	if err := b.containment(ctx, cfg); err != nil {
		return nil, err
	}
	if err := b.tracing(cfg.Tracing, opts.TraceExporter); err != nil {
		return nil, err
	}
	if err := b.console(ctx, cfg); err != nil {
		return nil, err
	}
	b.journals()
	p.Close = b.close
	return p, nil
}

// builder builds the parts' components, and remembers what it opened.
type builder struct {
	p      *parts.Parts
	logger *slog.Logger
	now    func() time.Time

	auditStore store.Store
	compliance *gdpr.Service    // data subjects, retention and holds (compliance section)
	keys       *keystore.Store  // API keys and operators (api_keys_database)
	operators  *authn.Operators // operator accounts, when api_keys_database is configured
	notify     *export.Sink     // the security team's webhook (containment.notify_webhook)
	shared     io.Closer        // the Redis client of the containment's shared state
}

// close closes the stores opened, in this order: the audit log's, the keys, the pins.
func (b *builder) close() error {
	var errs []error
	if b.auditStore != nil {
		errs = append(errs, b.auditStore.Close())
	}
	if b.keys != nil {
		errs = append(errs, b.keys.Close())
	}
	if b.p.Pins != nil {
		errs = append(errs, b.p.Pins.Close())
	}
	if b.notify != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, b.notify.Close(ctx))
		cancel()
	}
	if b.shared != nil {
		errs = append(errs, b.shared.Close())
	}
	errs = append(errs, b.closeTracer()) // last: the spans of the last calls
	return errors.Join(errs...)
}

// pins opens the tool-pin database.
func (b *builder) pins(ctx context.Context, c *config.ToolPinning) error {
	opts := &pins.Options{TrustOnFirstUse: c.TrustOnFirstUse, Now: b.now}
	for _, s := range c.Screen {
		re, err := regexp.Compile(s)
		if err != nil {
			return fmt.Errorf("tool_pinning.screen: %w", err)
		}
		opts.Screen = append(opts.Screen, re)
	}
	p, err := pins.Open(ctx, c.Database, opts)
	if err != nil {
		return fmt.Errorf("tool_pinning.database: %w", err)
	}
	b.p.Pins = p
	return nil
}

// policy loads the role policy; the first load must succeed. Every later reload is reported to
// the gateway (Hooks.PolicyReloaded).
func (b *builder) policy(path, namespace string) error {
	hooks := b.p.Hooks
	l, err := policy.NewLoader(path, &policy.LoaderOptions{
		Compile:  &policy.Options{Namespace: namespace},
		Logger:   b.logger,
		OnReload: func(ev policy.Reload) { hooks.PolicyReloaded(path, ev) },
	})
	if err != nil {
		return fmt.Errorf("policy_file: %w", err)
	}
	b.p.Policy = l
	return nil
}

// auth builds the authentication step: bearer tokens validated against the issuer's keys
// (auth), API keys (api_keys_database), client certificates mapped to principals
// (tls.client_ca_file), and the Protected Resource Metadata that 401 answers point to.
func (b *builder) auth(ctx context.Context, cfg *config.Config) error {
	opts := &authn.AuthenticatorOptions{Logger: b.logger, OnReject: b.p.Hooks.AuthRejected}
	if b.p.Metrics != nil {
		opts.Observe = b.p.Metrics.Authenticated
	}
	var identityKey []byte // encrypts operators' TOTP secrets (identity_encryption_key); nil: clear
	if cfg.APIKeysDatabase != "" {
		ks, err := keystore.Open(ctx, cfg.APIKeysDatabase)
		if err != nil {
			return fmt.Errorf("api_keys_database: %w", err)
		}
		b.keys = ks
		if identityKey, err = cfg.IdentityKey(); err != nil {
			return err
		}
		opts.APIKeys = authn.NewAPIKeys(ks, &authn.APIKeysOptions{Now: b.now})
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
		// API keys or client certificates only: no token is accepted and no resource metadata
		// is served, so the 401 names none (a resource_metadata link would lead to a 404).
		return b.authenticators(ctx, "", nil, identityKey, opts)
	}
	v, err := authn.NewValidator(a.Issuer, a.Resource, &authn.ValidatorOptions{
		ExtraAudiences: a.ExtraAudiences, JWKSURL: a.JWKSURL, Algorithms: a.Algorithms,
		ClockSkew: a.ClockSkew, MaxTokenLifetime: a.MaxTokenLifetime,
		RolesClaim: a.RolesClaim, GroupsClaim: a.GroupsClaim, Logger: b.logger,
	})
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	opts.RequiredScopes = a.RequiredScopes
	if err := b.authenticators(ctx, a.Resource, v, identityKey, opts); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	b.p.Metadata, err = authn.MetadataHandler(authn.ResourceMetadata{
		Resource: a.Resource, AuthorizationServers: []string{a.Issuer}, ScopesSupported: a.RequiredScopes,
		BearerMethodsSupported: []string{"header"}, ResourceName: "mcpguard",
	})
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	b.p.MetadataPaths = authn.MetadataPaths(a.Resource)
	return nil
}

// authenticators makes the MCP endpoint's authenticator and the admin API's, which also accepts
// operator sessions (password + TOTP, `mcpguard operators login`) when identities are stored.
func (b *builder) authenticators(ctx context.Context, resource string, tokens authn.TokenVerifier, identityKey []byte, opts *authn.AuthenticatorOptions) error {
	var err error
	if b.p.Authn, err = authn.NewAuthenticator(resource, tokens, opts); err != nil {
		return err
	}
	b.p.AdminAuthn = b.p.Authn
	if b.keys == nil {
		return nil
	}
	ops, err := b.keys.Operators(ctx, &keystore.OperatorOptions{SecretKey: identityKey})
	if err != nil {
		return err
	}
	svc, err := authn.NewOperators(ctx, ops, ops, &authn.OperatorsOptions{Now: b.now, Logger: b.logger})
	if err != nil {
		return err
	}
	b.operators = svc
	if b.p.Approvals, err = b.keys.Approvals(ctx); err != nil {
		return err
	}
	adminOpts := *opts
	adminOpts.Sessions = svc.Sessions()
	b.p.AdminAuthn, err = authn.NewAuthenticator(resource, tokens, &adminOpts)
	return err
}
