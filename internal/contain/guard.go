package contain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"
)

// Rate is one limit: a token bucket of PerSecond calls a second with room for Burst at once,
// and at most Concurrent calls in flight. A zero field is no limit of that sort.
type Rate struct {
	PerSecond  float64
	Burst      float64
	Concurrent int
}

// On reports whether the rate limits anything.
func (r Rate) On() bool { return r.PerSecond > 0 || r.Concurrent > 0 }

// Limits are the deployment-wide rate limits of the configuration; the policy adds per role
// and per tool ones.
type Limits struct {
	PerPrincipal Rate // one principal, whatever credential it uses
	PerAddress   Rate // one client address
	PerTool      Rate // one tool (or prompt, or resource), all callers together
	PerUpstream  Rate // one upstream, all callers together
}

// BruteForce says when failed authentications block an address and slow a principal.
type BruteForce struct {
	// Disabled turns brute force detection off.
	Disabled bool
	// MaxFailures failed authentications from one address within Window block the address.
	// Default 5 in 5 minutes, as the seed's SecurityMonitor.
	MaxFailures int
	Window      time.Duration
	// BlockFor is the first block's duration (default 15m); each further block of the same
	// address within MaxBlock doubles it, up to MaxBlock (default 24h).
	BlockFor, MaxBlock time.Duration
	// Delay slows the answer to each failure against a principal past MaxFailures in Window:
	// Delay (default 1s), doubled per further failure, up to MaxDelay (default 30s). A
	// principal is never locked out by failures: an attacker cannot lock a victim out by
	// failing on purpose; the attacker's own address is what gets blocked.
	Delay, MaxDelay time.Duration
}

// Event is a containment act the gateway records in the audit log and sends to the SIEM sinks
// and the security team's webhook.
type Event struct {
	// Kind is "block", "unblock", "suspend", "unsuspend" or "alert".
	Kind string
	// Block is what was blocked or lifted; for an alert, its Value names the principal and its
	// Reason the signal.
	Block Block
	// Detail carries an alert's signal (kind, severity, the actions taken); nil otherwise.
	Detail map[string]any
}

// Options configures a Guard.
type Options struct {
	// Backend keeps the counters (nil: a Local one).
	Backend Backend
	// Bus carries blocks to the other instances (nil: this instance only).
	Bus Bus
	// Store keeps blocks durably (nil: in memory only; a restart forgets them).
	Store BlockStore
	// TrustedProxies may report the client's address in Forwarded / X-Forwarded-For.
	TrustedProxies Networks
	// Allowed and Denied networks of the listener: a client outside Allowed (when set) or
	// inside Denied is refused 403 before anything else.
	Allowed, Denied Networks
	Limits          Limits
	BruteForce      BruteForce
	// Resync is how often the blocks are reloaded from the Store (default 1s): the bound on
	// how long an operator's lift from the CLI takes to reach a running instance.
	Resync time.Duration
	// OnEvent receives every containment act; it must not block for long.
	OnEvent func(ctx context.Context, ev Event)
	Logger  *slog.Logger
	Now     func() time.Time
}

// Guard is the containment step: it admits or refuses requests by address, principal and
// rate, counts failed authentications, and keeps the blocks in force on every instance.
type Guard struct {
	b       Backend
	bus     Bus
	store   BlockStore
	trusted Networks
	allowed Networks
	denied  Networks
	limits  Limits
	bf      BruteForce
	resync  time.Duration
	onEvent func(context.Context, Event)
	logger  *slog.Logger
	now     func() time.Time
	blocks  blockSet
}

// New builds a Guard; call Run to keep its blocks in step with the store and the other
// instances.
func New(ctx context.Context, o Options) (*Guard, error) {
	g := &Guard{
		b: o.Backend, bus: o.Bus, store: o.Store, trusted: o.TrustedProxies,
		allowed: o.Allowed, denied: o.Denied, limits: o.Limits, bf: o.BruteForce,
		resync: o.Resync, onEvent: o.OnEvent, logger: o.Logger, now: o.Now,
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.b == nil {
		g.b = NewLocal(LocalOptions{Now: g.now})
	}
	if g.logger == nil {
		g.logger = slog.New(slog.DiscardHandler)
	}
	if g.onEvent == nil {
		g.onEvent = func(context.Context, Event) {}
	}
	if g.resync <= 0 {
		g.resync = time.Second
	}
	bf := &g.bf
	bf.MaxFailures = orInt(bf.MaxFailures, 5)
	bf.Window = orDur(bf.Window, 5*time.Minute)
	bf.BlockFor = orDur(bf.BlockFor, 15*time.Minute)
	bf.MaxBlock = orDur(bf.MaxBlock, 24*time.Hour)
	bf.Delay = orDur(bf.Delay, time.Second)
	bf.MaxDelay = orDur(bf.MaxDelay, 30*time.Second)
	g.blocks.replace(nil)
	if err := g.load(ctx); err != nil {
		return nil, err
	}
	return g, nil
}

func orInt(v, d int) int {
	if v > 0 {
		return v
	}
	return d
}

func orDur(v, d time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return d
}

// load replaces the blocks in memory with the store's.
func (g *Guard) load(ctx context.Context) error {
	if g.store == nil {
		return nil
	}
	list, err := g.store.Blocks(ctx, g.now(), MaxBlocks)
	if err != nil {
		return fmt.Errorf("reading the blocks in force: %w", err)
	}
	g.blocks.replace(list)
	return nil
}

// Run keeps the blocks in step until ctx ends: messages from the other instances at once, and
// the store every Resync (an operator's lift through the CLI, a missed message).
func (g *Guard) Run(ctx context.Context) {
	if g.bus != nil {
		go func() {
			err := g.bus.Subscribe(ctx, g.receive, func() {
				if err := g.load(ctx); err != nil && ctx.Err() == nil {
					g.logger.Warn("blocks not reloaded after the event bus reconnected", "err", err)
				}
			})
			if err != nil && ctx.Err() == nil {
				g.logger.Error("containment event bus stopped", "err", err)
			}
		}()
	}
	if g.store == nil {
		return
	}
	t := time.NewTicker(g.resync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := g.load(lctx); err != nil && ctx.Err() == nil {
				g.logger.Warn("blocks not reloaded from the store; the last ones read stay in force", "err", err)
			}
			cancel()
		}
	}
}

func (g *Guard) receive(msg []byte) {
	m, ok := decodeBusMessage(msg)
	if !ok {
		g.logger.Warn("containment event bus: a message that is not a block was ignored", "bytes", len(msg))
		return
	}
	g.blocks.apply(m.Block, m.Op == "put", g.now())
}

// Admit checks a request before authentication: the client's address (ClientAddr, through
// the trusted proxies) against the listener's networks and the address blocks. It returns the
// address for the steps after.
func (g *Guard) Admit(r *http.Request) (netip.Addr, *Refusal) {
	a := ClientAddr(r, g.trusted)
	if !Admits(g.allowed, g.denied, a) {
		return a, &Refusal{Kind: KindNetwork, Name: "allowed_networks", Reason: "the client's address is not in the networks this listener serves"}
	}
	if a.IsValid() {
		if b, ok := g.blocks.lookup(BlockAddress, a.String(), g.now()); ok {
			return a, blockedRefusal(&b, g.now())
		}
	}
	return a, nil
}

func blockedRefusal(b *Block, now time.Time) *Refusal {
	r := &Refusal{Kind: KindBlocked, Name: b.Kind, Reason: "the client's address is blocked"}
	if b.Kind == BlockPrincipal {
		r.Kind, r.Reason = KindSuspended, "the principal is suspended; an operator can lift the suspension"
	}
	if !b.Expires.IsZero() {
		r.RetryAfter = b.Expires.Sub(now)
	}
	return r
}

// Forwarding reports whether trusted proxies are configured: only then can the client's
// address differ from the TCP peer's.
func (g *Guard) Forwarding() bool { return len(g.trusted) > 0 }

// Suspended refuses a suspended principal (identity is its identity key).
func (g *Guard) Suspended(identity string) *Refusal {
	if b, ok := g.blocks.lookup(BlockPrincipal, identity, g.now()); ok {
		return blockedRefusal(&b, g.now())
	}
	return nil
}

// RequiresApproval reports whether every call of the principal (identity) must wait for a
// human's approval: an automatic response to an anomaly, until it expires or is lifted.
func (g *Guard) RequiresApproval(identity string) bool {
	_, ok := g.blocks.lookup(BlockApproval, identity, g.now())
	return ok
}

// Blocked reports the block in force of that kind and value.
func (g *Guard) Blocked(kind, value string) (Block, bool) {
	return g.blocks.lookup(kind, value, g.now())
}

// CountsAsGuess reports whether an authentication failure with this reason is a guess at a
// credential: one that brute force detection counts. A missing credential (how every OAuth
// client discovers the authorization server), an expired but genuine token, or the gateway's
// own failure are not.
func CountsAsGuess(reason string) bool {
	switch reason {
	case "token_too_large", "malformed", "algorithm_not_allowed", "forbidden_header", "wrong_type",
		"unknown_key", "bad_signature", "wrong_issuer", "wrong_audience", "bad_claims",
		"unknown_api_key", "revoked", "bad_password", "bad_totp", "unknown_session", "bad_certificate":
		return true
	}
	return false
}

// AuthFailed counts a failed authentication from addr, aimed at target (the principal the
// credential names — an API key's id, an operator's name — or "" when it names none). Past
// the threshold the address is blocked on every instance; the returned delay, when positive,
// is how long to hold the answer to this failure (the principal's progressive delay).
func (g *Guard) AuthFailed(ctx context.Context, addr netip.Addr, target string) time.Duration {
	if g.bf.Disabled {
		return 0
	}
	now := g.now()
	if addr.IsValid() {
		if _, blocked := g.blocks.lookup(BlockAddress, addr.String(), now); !blocked {
			n, err := g.b.Count(ctx, "bf:a:"+addr.String(), g.bf.Window)
			if err != nil {
				g.logger.Warn("failed authentication not counted", "err", err)
			} else if n >= g.bf.MaxFailures {
				g.blockAddress(ctx, addr, n, now)
			}
		}
	}
	if target == "" {
		return 0
	}
	n, err := g.b.Count(ctx, "bf:p:"+target, g.bf.Window)
	if err != nil || n < g.bf.MaxFailures {
		return 0
	}
	d := g.bf.Delay
	for i := g.bf.MaxFailures; i < n && d < g.bf.MaxDelay; i++ {
		d *= 2
	}
	return min(d, g.bf.MaxDelay)
}

func (g *Guard) blockAddress(ctx context.Context, addr netip.Addr, failures int, now time.Time) {
	// The repeat count lives as long as the longest block: a block within MaxBlock of the last
	// one doubles.
	repeat, _, err := g.b.Add(ctx, "bf:r:"+addr.String(), 1, 1<<30, now.Add(2*g.bf.MaxBlock))
	if err != nil {
		repeat = 1
	}
	d := g.bf.BlockFor
	for i := 1; i < int(repeat) && d < g.bf.MaxBlock; i++ {
		d *= 2
	}
	d = min(d, g.bf.MaxBlock)
	b := Block{
		Kind: BlockAddress, Value: addr.String(), Actor: AutomaticActor, Created: now, Expires: now.Add(d),
		Repeat: int(repeat),
		Reason: fmt.Sprintf("%d failed authentications within %v", failures, g.bf.Window),
	}
	if err := g.Put(ctx, b); err != nil {
		g.logger.Error("address not blocked", "err", err)
	}
}

// Put puts a block in force on every instance: stored, announced, recorded.
func (g *Guard) Put(ctx context.Context, b Block) error {
	if err := b.Validate(); err != nil {
		return err
	}
	if g.store != nil {
		if err := g.store.PutBlock(ctx, b); err != nil {
			// In force here anyway: an attack in progress is contained even when the store is down.
			g.blocks.apply(b, true, g.now())
			return fmt.Errorf("storing the block: %w", err)
		}
	}
	g.blocks.apply(b, true, g.now())
	g.publish(ctx, "put", b)
	kind := "block"
	if b.Kind != BlockAddress {
		kind = "suspend"
	}
	g.onEvent(ctx, Event{Kind: kind, Block: b})
	return nil
}

// ErrNoBlock is returned by Lift when nothing of that kind and value is in force.
var ErrNoBlock = errors.New("no such block or suspension")

// Lift ends a block or suspension on every instance, recorded with the operator as actor.
func (g *Guard) Lift(ctx context.Context, kind, value, actor string) error {
	existed := false
	if g.store != nil {
		ok, err := g.store.LiftBlock(ctx, kind, value)
		if err != nil {
			return fmt.Errorf("lifting the block: %w", err)
		}
		existed = ok
	} else {
		_, existed = g.blocks.lookup(kind, value, g.now())
	}
	if !existed {
		return ErrNoBlock
	}
	b := Block{Kind: kind, Value: value, Actor: actor, Created: g.now(), Reason: "lifted by an operator"}
	g.blocks.apply(b, false, g.now())
	g.publish(ctx, "lift", b)
	ev := "unblock"
	if kind != BlockAddress {
		ev = "unsuspend"
	}
	g.onEvent(ctx, Event{Kind: ev, Block: b})
	return nil
}

// List returns the blocks and suspensions in force on this instance.
func (g *Guard) List() []Block { return g.blocks.list(g.now()) }

func (g *Guard) publish(ctx context.Context, op string, b Block) {
	if g.bus == nil {
		return
	}
	if err := g.bus.Publish(ctx, encodeBusMessage(op, b)); err != nil {
		g.logger.Warn("block not announced to the other instances; they read it from the store within their resync interval", "err", err)
	}
}

// Backend returns the guard's counter backend, which policy quotas share.
func (g *Guard) Backend() Backend { return g.b }

// Address is the client's address of r: the TCP peer, or through the trusted proxies.
func (g *Guard) Address(r *http.Request) netip.Addr { return ClientAddr(r, g.trusted) }
