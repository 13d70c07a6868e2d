package wiring

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/mcpguard/mcpguard/internal/anomaly"
	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/contain"
	"github.com/mcpguard/mcpguard/internal/export"
	"github.com/mcpguard/mcpguard/internal/gateway/parts"
)

// containment builds the containment step (cfg.Containment): its counters (this process's, or
// Redis shared by the deployment with a local fallback), the blocks' durable store (the
// identity database, when there is one), the listener's networks, the rate limits and brute
// force detection, and the security team's webhook.
func (b *builder) containment(ctx context.Context, cfg *config.Config) error {
	c := &cfg.Containment
	trusted, err := contain.ParseNetworks(c.TrustedProxies)
	if err != nil {
		return fmt.Errorf("containment.trusted_proxies: %w", err)
	}
	allowed, err := contain.ParseNetworks(c.AllowedNetworks)
	if err != nil {
		return fmt.Errorf("containment.allowed_networks: %w", err)
	}
	denied, err := contain.ParseNetworks(c.DeniedNetworks)
	if err != nil {
		return fmt.Errorf("containment.denied_networks: %w", err)
	}
	if a := cfg.Admin; a != nil {
		if b.p.AdminAllowed, err = contain.ParseNetworks(a.AllowedNetworks); err != nil {
			return fmt.Errorf("admin.allowed_networks: %w", err)
		}
		if b.p.AdminDenied, err = contain.ParseNetworks(a.DeniedNetworks); err != nil {
			return fmt.Errorf("admin.denied_networks: %w", err)
		}
	}
	opts := contain.Options{
		TrustedProxies: trusted, Allowed: allowed, Denied: denied,
		Limits: contain.Limits{
			PerPrincipal: rateOf(c.RateLimits.PerPrincipal),
			PerAddress:   rateOf(c.RateLimits.PerAddress),
			PerTool:      rateOf(c.RateLimits.PerTool),
			PerUpstream:  rateOf(c.RateLimits.PerUpstream),
		},
		BruteForce: contain.BruteForce{
			MaxFailures: c.BruteForce.MaxFailures, Window: c.BruteForce.Window,
			BlockFor: c.BruteForce.BlockFor, MaxBlock: c.BruteForce.MaxBlock,
			Delay: c.BruteForce.Delay, MaxDelay: c.BruteForce.MaxDelay,
		},
		OnEvent: b.p.Hooks.Contained,
		Logger:  b.logger,
		Now:     b.now,
	}
	opts.BruteForce.Disabled = c.BruteForce.Disabled
	if b.keys != nil {
		st, err := b.keys.Blocks(ctx)
		if err != nil {
			return fmt.Errorf("api_keys_database: %w", err)
		}
		opts.Store = st
	} else if b.logger != nil {
		b.logger.Info("blocks and suspensions are kept in memory only: set api_keys_database to keep them across restarts")
	}
	if err := b.sharedState(ctx, c.Redis, &opts); err != nil {
		return err
	}
	if w := c.NotifyWebhook; w != nil {
		sink, err := export.NewWebhook("notify_webhook", w.URL, &export.WebhookOptions{BearerToken: w.BearerToken.Reveal(),
			Options: export.Options{Logger: b.logger}})
		if err != nil {
			return fmt.Errorf("containment.notify_webhook: %w", err)
		}
		b.notify = sink
		b.p.Notify = func(ev contain.Event) { sink.Offer([]audit.Durable{notification(ev, b.now)}) }
	}
	g, err := contain.New(ctx, opts)
	if err != nil {
		return err
	}
	b.p.Guard = g
	if c.Anomaly != nil {
		return b.anomaly(c.Anomaly)
	}
	return nil
}

// anomaly builds the anomaly detector and the playbook of responses (containment.anomaly).
// Without a playbook every signal is alerted on.
func (b *builder) anomaly(a *config.Anomaly) error {
	opts := anomaly.Options{
		OnSignal: b.p.Hooks.Signaled, MinEvents: a.MinEvents, DenialBurst: a.DenialBurst, DenialWindow: a.DenialWindow,
		SpikeFactor: a.SpikeFactor, SpikeFloor: a.SpikeFloor, Cooldown: a.Cooldown, Now: b.now,
	}
	if a.TimeZone != "" {
		loc, err := time.LoadLocation(a.TimeZone)
		if err != nil {
			return fmt.Errorf("containment.anomaly.time_zone: %w", err)
		}
		opts.Location = loc
	}
	if h := a.OffHours; h != nil {
		opts.OffHours = anomaly.OffHours{From: h.From, To: h.To}
	}
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("containment.anomaly: %w", err)
	}
	playbook := anomaly.Playbook{{Signal: anomaly.KindAny, MinSeverity: anomaly.SeverityLow, Actions: []anomaly.Action{anomaly.ActionAlert}}}
	if len(a.Playbook) > 0 {
		playbook = nil
		for i, r := range a.Playbook {
			path := fmt.Sprintf("containment.anomaly.playbook[%d]", i)
			rule := anomaly.Rule{MinSeverity: anomaly.SeverityLow}
			var err error
			if rule.Signal, err = anomaly.ParseKind(r.Signal); err != nil {
				return fmt.Errorf("%s.signal: %w", path, err)
			}
			if r.MinSeverity != "" {
				if rule.MinSeverity, err = anomaly.ParseSeverity(r.MinSeverity); err != nil {
					return fmt.Errorf("%s.min_severity: %w", path, err)
				}
			}
			for _, name := range r.Actions {
				act, err := anomaly.ParseAction(name)
				if err != nil {
					return fmt.Errorf("%s.actions: %w", path, err)
				}
				rule.Actions = append(rule.Actions, act)
			}
			playbook = append(playbook, rule)
		}
	}
	suspendFor := a.SuspendFor
	if suspendFor <= 0 {
		suspendFor = time.Hour
	}
	b.p.Anomaly = anomaly.New(opts)
	b.p.Response = parts.Response{Playbook: playbook, For: suspendFor, ApproverRole: a.ApproverRole}
	return nil
}

func rateOf(r *config.RateLimit) contain.Rate {
	if r == nil {
		return contain.Rate{}
	}
	return contain.Rate{PerSecond: r.PerSecond(), Burst: float64(r.Burst), Concurrent: r.Concurrent}
}

// notification is the JSON the security team's webhook receives for a containment act.
func notification(ev contain.Event, now func() time.Time) audit.Durable {
	at := time.Now()
	if now != nil {
		at = now()
	}
	data, _ := json.Marshal(map[string]any{
		"time": at.UTC(), "action": ev.Kind, "target_kind": ev.Block.Kind, "target": ev.Block.Value,
		"reason": ev.Block.Reason, "actor": ev.Block.Actor, "expires": ev.Block.Expires, "detail": ev.Detail,
	})
	kind := audit.KindBlock
	switch ev.Kind {
	case "suspend", "unsuspend":
		kind = audit.KindSuspend
	case "alert":
		kind = audit.KindAlert
	}
	return audit.Durable{Time: at.UTC(), Kind: kind, Data: data}
}

// sharedState chooses the containment's counters and event bus: this process's when r is nil;
// otherwise Redis, shared by every instance, behind a Failover that answers from local limits
// at r.DegradedFraction while Redis is unreachable, with an alert. A gateway whose Redis cannot
// be reached at start does not start: it would begin life degraded without anyone noticing.
func (b *builder) sharedState(ctx context.Context, r *config.Redis, opts *contain.Options) error {
	if r == nil {
		return nil
	}
	ro := contain.RedisOptions{Addr: r.Address, Username: r.Username, Password: r.Password.Reveal(), DB: r.DB,
		Prefix: r.Prefix, Timeout: r.Timeout}
	if r.TLS {
		host, _, _ := net.SplitHostPort(r.Address)
		ro.TLS = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	}
	shared, err := contain.NewRedis(ctx, ro)
	if err != nil {
		return fmt.Errorf("containment.redis: %w (the gateway does not start without the deployment's shared state; a running gateway falls back to local limits)", err)
	}
	bus, err := contain.NewRedisBus(ctx, ro)
	if err != nil {
		shared.Close()
		return fmt.Errorf("containment.redis: %w", err)
	}
	b.shared = closers{shared.Close, bus.Close}
	logger := b.logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	hooks := b.p.Hooks
	alert := func(reason string) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		hooks.Contained(ctx, contain.Event{Kind: "alert",
			Block:  contain.Block{Reason: reason, Actor: contain.AutomaticActor},
			Detail: map[string]any{"signal": "shared_state", "severity": "high", "redis": r.Address}})
	}
	fo, err := contain.NewFailover(shared, contain.NewLocal(contain.LocalOptions{Now: b.now}), contain.FailoverOptions{
		Fraction: r.DegradedFraction,
		OnDegraded: func(err error) {
			logger.Error("Redis unreachable: limits fall back to this instance's share", "redis", r.Address, "fraction", r.DegradedFraction, "err", err)
			go alert(fmt.Sprintf("Redis at %s is unreachable: each instance applies %g of every limit on its own", r.Address, r.DegradedFraction))
		},
		OnRestored: func() {
			logger.Warn("Redis reachable again: limits are shared again", "redis", r.Address)
			go alert(fmt.Sprintf("Redis at %s is reachable again: limits are shared again", r.Address))
		},
	})
	if err != nil {
		b.shared.Close()
		b.shared = nil
		return fmt.Errorf("containment.redis: %w", err)
	}
	opts.Backend, opts.Bus = fo, bus
	return nil
}

// closers closes each of its functions, in order.
type closers []func()

func (c closers) Close() error {
	for _, f := range c {
		f()
	}
	return nil
}
