// Package parts is what a gateway is built from: typed options and the components the program's
// wiring (cmd/mcpguard/wiring) builds from the configuration. It imports neither the
// configuration nor any store: the wiring builds parts without importing the gateway, and the
// gateway is built without reading the configuration file's types.
package parts

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/mcpguard/mcpguard/internal/admin"
	"github.com/mcpguard/mcpguard/internal/anomaly"
	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/authn"
	"github.com/mcpguard/mcpguard/internal/contain"
	"github.com/mcpguard/mcpguard/internal/journal"
	"github.com/mcpguard/mcpguard/internal/metrics"
	"github.com/mcpguard/mcpguard/internal/pins"
	"github.com/mcpguard/mcpguard/internal/policy"
	"github.com/mcpguard/mcpguard/internal/redact"
	"github.com/mcpguard/mcpguard/internal/tracing"
	"github.com/mcpguard/mcpguard/internal/upstream"
)

// Parts is everything gateway.New needs. A component left nil is not configured.
type Parts struct {
	// Path is the MCP endpoint's path.
	Path string
	// Listen is the listen address: a Host header naming it names this gateway.
	Listen string
	// AllowedOrigins and AllowedHosts are the Origin and Host headers accepted besides loopback
	// ones (DNS-rebinding protection).
	AllowedOrigins, AllowedHosts []string
	// NamespaceSeparator joins an upstream's prefix and a name; "" means ".".
	NamespaceSeparator string
	Limits             Limits
	// Upstreams are the upstreams to connect, in configuration order.
	Upstreams []upstream.Spec
	// Executable is the path "@self" stands for in stdio upstream commands; empty means the
	// running binary.
	Executable string
	// Logger is the operational log; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// Audit records every call durably before it is forwarded; the gateway closes it, after the
	// outcome records under way are written.
	Audit *audit.Log
	// Redactor is the audit log's: approvers see held calls as the log stores them.
	Redactor *redact.Redactor
	// Authn authenticates MCP requests; AdminAuthn the admin API's, operator sessions too.
	Authn, AdminAuthn *authn.Authenticator
	// Metadata serves the Protected Resource Metadata, unauthenticated, at MetadataPaths.
	Metadata      http.Handler
	MetadataPaths []string
	// Policy is the role policy (policy_file).
	Policy *policy.Loader
	// Pins holds the approved tool definitions (tool_pinning).
	Pins *pins.Pinner
	// AdminEnabled says an admin API serves approvals; without it approval-gated calls are
	// refused.
	AdminEnabled bool
	// AdminAllowed and AdminDenied are the admin listener's networks (admin.allowed_networks,
	// admin.denied_networks); empty: every network.
	AdminAllowed, AdminDenied contain.Networks
	// OIDCLogin is the operators' OpenID Connect login (admin.oidc).
	OIDCLogin *admin.OIDCLogin
	// Subjects serves data-subject exports on the admin API (compliance); nil: none.
	Subjects admin.Subjects
	// Console builds the operators' web console (admin.console) over what the gateway hands it;
	// the wiring closes it over the stores the console reads and changes, so the gateway never
	// sees a store. Nil: no console.
	Console func(ConsoleDeps) (http.Handler, error)
	// Approvals keeps the calls held for approval across restarts, in the identity database
	// (api_keys_database), where the operators who approve them live. Nil: no operator can
	// approve, and approval-gated calls are refused.
	Approvals admin.ApprovalStore
	// Guard is the containment step: networks, blocks, suspensions, rate limits, brute force
	// detection (containment); nil: none.
	Guard *contain.Guard
	// Anomaly learns each principal's behaviour from the calls the gateway serves and denies,
	// off the request path (containment.anomaly); its signals reach the gateway through
	// Hooks.Signaled, which responds as Response says. Nil: no anomaly detection.
	Anomaly  *anomaly.Detector
	Response Response
	// Notify tells the security team of a containment act (containment.notify_webhook); nil:
	// the audit log and its SIEM sinks only.
	Notify func(contain.Event)
	// Metrics are the Prometheus metrics (admin.metrics), served on the admin listener; nil:
	// none, and the request path measures nothing. MetricsNeedAuth makes scrapers
	// authenticate (admin.metrics.require_auth).
	Metrics         *metrics.Metrics
	MetricsNeedAuth bool
	// Tracer traces calls (tracing); nil: none, and no span is made.
	Tracer *tracing.Tracer
	// Hooks carries the components' events to the gateway.
	Hooks *Hooks
	// AdminJournals are the admin journals (internal/journal) of the databases the CLI changes
	// (identities, tool pins): the gateway drains them into Audit.
	AdminJournals []*journal.Table
	// AuditHas reports whether Audit's store holds a record with requestID at or after since:
	// the drain asks before appending an entry it may have appended already.
	AuditHas func(ctx context.Context, requestID string, since time.Time) (bool, error)
	// Close releases what the wiring opened for these parts (the audit log's store, the keys, the
	// pins). The gateway calls it once, from its own Close, after closing the audit log; nil
	// means nothing to release.
	Close func() error
}

// Limits bound what clients and upstreams send and how long the gateway holds on.
type Limits struct {
	MaxBodyBytes    int64 // a client's request body (413) or stdio line
	MaxHeaderBytes  int64 // a client's request headers (431); 0 means unbounded
	MaxMessageBytes int64 // one message from an upstream
	MaxJSONDepth    int   // any JSON message, from either side
	MaxSessions     int   // legacy sessions held at once
	// MaxSessionsPerPrincipal and MaxSessionsPerAddress bound one authenticated principal's and
	// one client address's legacy sessions; 0 means unbounded.
	MaxSessionsPerPrincipal, MaxSessionsPerAddress int
	SessionIdleTimeout                             time.Duration
	RequestTimeout                                 time.Duration // an upstream call, unless the upstream sets its own
}

// Response is how the gateway answers anomaly signals.
type Response struct {
	// Playbook maps each signal to actions.
	Playbook anomaly.Playbook
	// For is how long a suspension, an address block or a require-approval response lasts.
	For time.Duration
	// ApproverRole approves the calls of a principal under a require-approval response.
	ApproverRole string
}

// Hooks carries the events of components built before the gateway to the gateway: the wiring
// hands them Hooks' methods as callbacks, and gateway.New installs its handlers once, before it
// serves anything. Events before Install are dropped; none can happen then (a request is refused
// only once served, and the policy reloads only through the gateway).
type Hooks struct {
	authRejected   func(ctx context.Context, r *http.Request, status int, rej *authn.Rejection)
	policyReloaded func(file string, ev policy.Reload)
	contained      func(ctx context.Context, ev contain.Event)
	signaled       func(s anomaly.Signal)
}

// Install sets the handlers of the events; call it once, before serving.
func (h *Hooks) Install(authRejected func(ctx context.Context, r *http.Request, status int, rej *authn.Rejection),
	policyReloaded func(file string, ev policy.Reload), contained func(ctx context.Context, ev contain.Event)) {
	h.authRejected, h.policyReloaded, h.contained = authRejected, policyReloaded, contained
}

// InstallSignaled sets the handler of anomaly signals; call it once, before serving.
func (h *Hooks) InstallSignaled(signaled func(s anomaly.Signal)) { h.signaled = signaled }

// Signaled is the anomaly detector's OnSignal.
func (h *Hooks) Signaled(s anomaly.Signal) {
	if h.signaled != nil {
		h.signaled(s)
	}
}

// Contained is the containment step's OnEvent: a block, a suspension, one lifted, an alert.
func (h *Hooks) Contained(ctx context.Context, ev contain.Event) {
	if h.contained != nil {
		h.contained(ctx, ev)
	}
}

// AuthRejected is the authenticators' OnReject: a request refused with status.
func (h *Hooks) AuthRejected(ctx context.Context, r *http.Request, status int, rej *authn.Rejection) {
	if h.authRejected != nil {
		h.authRejected(ctx, r, status, rej)
	}
}

// PolicyReloaded reports an attempt to reload the policy file with new content: ev.Err rejected
// it, nil when it is in force.
func (h *Hooks) PolicyReloaded(file string, ev policy.Reload) {
	if h.policyReloaded != nil {
		h.policyReloaded(file, ev)
	}
}

// ConsoleGateway is what the operators' console reaches of the gateway it runs in: the admin
// API's (acts are recorded as the admin API's are) and the brute-force count of refused logins.
type ConsoleGateway interface {
	admin.Gateway
	// AuthFailed counts a refused login as a refused credential on the MCP endpoint counts; it
	// may delay the answer.
	AuthFailed(ctx context.Context, r *http.Request, rej *authn.Rejection)
}

// ConsoleDeps is what the gateway gives the console it serves: itself, and its running parts.
type ConsoleDeps struct {
	Gateway ConsoleGateway
	Logger  *slog.Logger
	Now     func() time.Time
	// Approvals are the held calls; Blocks the containment's blocks and suspensions (nil:
	// containment is off); Pins the approved tool definitions (nil: pinning is off).
	Approvals *admin.Approvals
	Blocks    admin.Blocks
	Pins      *pins.Pinner
	// AuditStats reports the running audit log's state; nil: no audit log.
	AuditStats func() audit.Stats
}
