// Package config defines the gateway's one typed configuration, decoded strictly from YAML and validated with every problem reported at once.
package config

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Defaults applied by [Parse] to keys that are absent from the file.
const (
	DefaultListen             = "127.0.0.1:8080"
	DefaultPath               = "/mcp"
	DefaultNamespaceSeparator = "."

	DefaultMaxBodyBytes         ByteSize      = 4 * MiB
	DefaultMaxHeaderBytes       ByteSize      = 64 * KiB
	DefaultMaxJSONDepth                       = 64
	DefaultMaxSessions                        = 10000
	DefaultMaxSessionsPerClient               = 256
	DefaultSessionIdleTimeout   time.Duration = 30 * time.Minute
	DefaultDrainGrace           time.Duration = 10 * time.Second
	DefaultRequestTimeout       time.Duration = 60 * time.Second
	DefaultMaxMessageBytes      ByteSize      = 16 * MiB

	DefaultLogLevel  = slog.LevelInfo
	DefaultLogFormat = LogFormatText

	DefaultMinBackoff    time.Duration = 250 * time.Millisecond
	DefaultMaxBackoff    time.Duration = 30 * time.Second
	DefaultShutdownGrace time.Duration = 5 * time.Second
	DefaultEra                         = EraAuto
)

// Bounds enforced by [Config.Validate], stated in the field docs.
const (
	minBodyBytes     ByteSize = 1 * KiB
	maxBodyBytes     ByteSize = 64 * MiB
	minHeaderBytes   ByteSize = 1 * KiB
	maxHeaderBytes   ByteSize = 1 * MiB
	minJSONDepth              = 8
	maxJSONDepth              = 512
	maxSessions               = 1_000_000
	minMessageBytes  ByteSize = 1 * KiB
	maxMessageBytes  ByteSize = 256 * MiB
	maxUpstreams              = 256
	separatorCharset          = "._-"
)

// MaxConfigBytes bounds a configuration file; a larger one is refused unread.
const MaxConfigBytes = 1 << 20

// SelfCommand is the Stdio.Command value that means "this mcpguard binary",
// for upstreams such as the built-in demo server.
const SelfCommand = "@self"

// Config is the whole gateway configuration. [Parse] fills every absent key with
// its default; a Config built in code gets no defaults and should be checked
// with [Config.Validate] before use.
type Config struct {
	// Listen is the host:port the MCP endpoint listens on (plain HTTP).
	// Default "127.0.0.1:8080". A host that is not loopback ("localhost",
	// 127.0.0.0/8, ::1) — including an empty host, which means every
	// interface — is accepted only with AllowPublicListen, so that
	// unencrypted traffic never leaves the machine by accident. Port 0 picks
	// a free port.
	Listen string

	// AllowPublicListen permits a non-loopback Listen address. Default false.
	AllowPublicListen bool

	// Path is the URL path of the MCP endpoint. It must start with "/".
	// Default "/mcp".
	Path string

	// AllowedOrigins lists the browser Origin header values accepted in
	// addition to loopback origins (http://localhost[:port],
	// http://127.0.0.1[:port], http://[::1][:port]), which are always
	// accepted. Each entry is an origin: scheme://host[:port] with an
	// http or https scheme and no path. "*" and "null" are rejected: either
	// would let any web page drive the gateway through a user's browser
	// (DNS rebinding and cross-site request attacks). Default empty.
	AllowedOrigins []string

	// AllowedHosts lists the Host header values (host or host:port) accepted
	// in addition to the Listen address and the loopback names, which are
	// always accepted. Checking Host defeats DNS rebinding. Default empty.
	AllowedHosts []string

	// NamespaceSeparator goes between an upstream's Prefix and the names of
	// its tools and prompts ("finance" + "." + "get_balance"). It is 1 to 3
	// characters from ".", "_" and "-", so that namespaced names remain valid
	// MCP tool names ([A-Za-z0-9_.-]). Default ".". No upstream prefix may
	// contain any of its characters, which keeps routing unambiguous.
	NamespaceSeparator string

	// Limits bounds every buffer and wait in the gateway.
	Limits Limits

	// Log configures the gateway's operational log (not the audit log).
	Log Log

	// Audit, when present, records every call in the tamper-evident audit log (docs/audit.md).
	// The gateway fails closed: a call whose record cannot be written durably is answered 503
	// and never forwarded.
	Audit *Audit

	// PolicyFile is the role policy that authorizes every call (docs/policy.md): absolute, or
	// relative to the configuration file's directory. Empty means no authorization step: every
	// authenticated caller may call everything. The file is reloaded when it changes and on
	// SIGHUP; a policy that fails validation is rejected and the last good one stays.
	PolicyFile string

	// PolicyUpstream scopes the policy to one upstream, by its name: a tool or prompt name in
	// the policy written without that upstream's prefix is read as that upstream's ("get_quote"
	// as "finance.get_quote", "*" as "finance.*"), so a role written against the server's own
	// tool names, as the seed guide writes them, works as pasted. Names already carrying the
	// prefix are read as written. Empty: names are the gateway's namespaced names.
	PolicyUpstream string

	// TLS, when present, serves the MCP endpoint over HTTPS (TLS 1.2 or later, AEAD cipher
	// suites only), and may ask clients for certificates (mTLS). A TLS listener may listen on
	// any interface; a plain-HTTP one only on loopback unless AllowPublicListen.
	TLS *TLS

	// Admin, when present, serves the admin API (approvals) on its own listener.
	Admin *Admin

	// ToolPinning, when present, pins every tool's definition: a tool whose name, description,
	// schemas or annotations change after approval is hidden and its calls refused until an
	// operator approves the new definition (`mcpguard tools pending | approve`).
	ToolPinning *ToolPinning

	// APIKeysDatabase, when set, accepts API keys (`mcpguard keys create`) as bearer
	// credentials, for agents without an identity provider: the SQLite file that holds their
	// hashes (absolute, or relative to the configuration file), or a PostgreSQL DSN
	// ("postgres://…", schema from its search_path) that the instances of a deployment share.
	// The same database keeps operators, sessions, approvals and blocks.
	APIKeysDatabase string

	// IdentityEncryptionKey, when set, encrypts operators' TOTP secrets at rest in the
	// APIKeysDatabase (which it requires). A secret reference ("env:NAME" or "file:/path") to
	// 32 random bytes written in base64 or hex (`head -c 32 /dev/urandom | base64`); read the
	// decoded key with [Config.IdentityKey]. Absent, TOTP secrets are stored as they are today.
	IdentityEncryptionKey Secret

	// Auth, when present, makes the gateway an OAuth 2.1 resource server: every request to the
	// MCP endpoint needs a bearer token issued for Auth.Resource. Absent, the endpoint is open
	// to anyone who can reach the listener (loopback only, unless AllowPublicListen).
	Auth *Auth

	// Containment is the containment step: networks, rate limits, brute force and anomaly
	// detection, blocks and suspensions (docs/containment.md).
	Containment Containment

	// Compliance is data subjects (GDPR) and retention (docs/gdpr.md); nil: none.
	Compliance *Compliance

	// Upstreams are the MCP servers behind the gateway, at least one and at
	// most 256.
	Upstreams []Upstream

	// Tracing, when present, sends each sampled call's trace to an OpenTelemetry receiver
	// (docs/tracing.md). Absent: no tracing.
	Tracing *Tracing
}

// Limits bounds sizes, counts and waits. Sizes are written in the file as an
// integer number of bytes or as a string with a binary unit ("512KiB", "4MiB").
type Limits struct {
	// MaxBodyBytes bounds a client request body; larger bodies get 413.
	// Default 4MiB, between 1KiB and 64MiB.
	MaxBodyBytes ByteSize

	// MaxHeaderBytes bounds a client's request headers; larger get 431.
	// Default 64KiB, between 1KiB and 1MiB.
	MaxHeaderBytes ByteSize

	// MaxJSONDepth bounds the nesting depth of any JSON message, from either
	// side. Default 64, between 8 and 512.
	MaxJSONDepth int

	// MaxSessions bounds the legacy-era (Mcp-Session-Id) sessions held at
	// once; a new session beyond it is refused. Default 10000, between 1 and
	// 1000000.
	MaxSessions int

	// MaxSessionsPerPrincipal and MaxSessionsPerAddress bound the legacy-era sessions one
	// authenticated principal, and one client IP address, hold at once, so that one client cannot
	// fill MaxSessions and shut the others out. Default 256 each, between 0 and MaxSessions; 0
	// means unbounded (behind a proxy that hides clients' addresses, set the per-address bound to
	// 0 and rely on authentication). Unauthenticated callers, all the principal "anonymous", are
	// bounded by their address only.
	MaxSessionsPerPrincipal int
	MaxSessionsPerAddress   int

	// SessionIdleTimeout ends a legacy-era session that has seen no request
	// for this long. Default 30m.
	SessionIdleTimeout time.Duration

	// DrainDelay is how long `serve` keeps serving new calls after SIGTERM while /readyz
	// answers 503, so that a load balancer stops sending calls here before the listener closes:
	// its health check's interval times its fall count. Default 0s (no load balancer), at most
	// 5m.
	DrainDelay time.Duration

	// ShutdownGrace is how long calls in flight may take to finish once the listener is
	// closed; past it they are cut off. Default 10s, between 1s and 1h.
	ShutdownGrace time.Duration

	// RequestTimeout is the default deadline of one upstream call, used by
	// every upstream that does not set its own Timeout. Default 60s.
	RequestTimeout time.Duration

	// MaxMessageBytes bounds one message received from an upstream (a stdio
	// line, an SSE event or an HTTP response body). Default 16MiB, between
	// 1KiB and 256MiB.
	MaxMessageBytes ByteSize
}

// Log configures the operational log.
type Log struct {
	// Level is the minimum level logged: "debug", "info", "warn" or
	// "error". Default "info".
	Level slog.Level

	// Format is "text" (logfmt-like, for people) or "json" (for collectors).
	// Default "text".
	Format LogFormat
}

// LogFormat names an slog handler.
type LogFormat string

// The log formats.
const (
	LogFormatText LogFormat = "text"
	LogFormatJSON LogFormat = "json"
)

// PolicyNamespace is the prefix PolicyUpstream gives the policy's names (the upstream's prefix
// and the namespace separator), or "" when the policy is not scoped.
func (c *Config) PolicyNamespace() string {
	for i := range c.Upstreams {
		if u := &c.Upstreams[i]; c.PolicyUpstream != "" && u.Name == c.PolicyUpstream && u.Prefix != "" {
			return u.Prefix + c.NamespaceSeparator
		}
	}
	return ""
}

// Upstream is one MCP server behind the gateway. Exactly one of Stdio, HTTP
// and SSE is set.
type Upstream struct {
	// Name identifies the upstream in logs, audit records, policy rules and
	// metrics: 1 to 32 characters, [a-z0-9][a-z0-9_-]*, unique.
	Name string

	// Prefix namespaces this upstream's tools and prompts for clients:
	// Prefix + NamespaceSeparator + name. Absent from the file, it defaults
	// to Name; written as "" it means no namespacing, and several upstreams
	// may do so (clashes between their tool names are detected when the
	// upstreams are listed, not here). A non-empty Prefix is 1 to 32
	// characters, [A-Za-z0-9][A-Za-z0-9_.-]*, contains no character of the
	// separator, and is unique.
	Prefix string

	// Timeout is the deadline of one call to this upstream. Default
	// Limits.RequestTimeout.
	Timeout time.Duration

	// Breaker fails calls fast while the upstream keeps failing (on by
	// default); Bulkhead caps its calls in flight (off by default).
	Breaker  Breaker
	Bulkhead Bulkhead

	// Stdio runs the upstream as a child process speaking newline-delimited
	// JSON-RPC on stdin/stdout.
	Stdio *Stdio

	// HTTP reaches the upstream over Streamable HTTP, in either protocol era.
	HTTP *HTTP

	// SSE reaches the upstream over the deprecated HTTP+SSE transport
	// (protocol 2024-11-05).
	SSE *SSE
}

// Transport names the upstream's configured transport: "stdio", "http",
// "sse", or "" when none is set.
func (u *Upstream) Transport() string {
	switch {
	case u.Stdio != nil:
		return "stdio"
	case u.HTTP != nil:
		return "http"
	case u.SSE != nil:
		return "sse"
	}
	return ""
}

// Stdio describes an upstream child process.
type Stdio struct {
	// Command is "@self" (this mcpguard binary, see SelfCommand), an
	// absolute path, or a bare name looked up on PATH. Relative paths such
	// as "./server" are rejected because they would depend on the gateway's
	// working directory. Required.
	Command string

	// Args are the command's arguments, passed as is (no shell).
	Args []string

	// Env is the child's extra environment. The child gets a clean
	// environment: only PATH, HOME and LANG from the gateway, plus these
	// (which may override them). Names are [A-Za-z_][A-Za-z0-9_]*; values
	// are literals or secret references ("env:NAME", "file:/path").
	Env map[string]Secret

	// Dir is the child's working directory, an absolute path. Default
	// (empty): the gateway's working directory.
	Dir string

	// MinBackoff and MaxBackoff bound the delay before restarting a child
	// that exited: it starts at MinBackoff and doubles up to MaxBackoff.
	// Defaults 250ms and 30s; MinBackoff <= MaxBackoff.
	MinBackoff time.Duration
	MaxBackoff time.Duration

	// ShutdownGrace is how long a child has to exit after its stdin is
	// closed before it is killed. Default 5s.
	ShutdownGrace time.Duration
}

// HTTP describes a Streamable HTTP upstream.
type HTTP struct {
	// URL is the upstream's MCP endpoint, http or https, without user
	// information or fragment. Required. Remote hosts are allowed; plain
	// http to a non-loopback host may not carry credentials (BearerToken
	// or a header given as a secret reference).
	URL string

	// Era selects the protocol era: "auto" (probe modern, fall back to
	// legacy), "modern" (2026-07-28, stateless) or "legacy" (initialize and
	// Mcp-Session-Id, 2025-03-26 to 2025-11-25). Default "auto".
	Era Era

	// Headers are sent with every request to the upstream. Values are
	// literals or secret references; Authorization and
	// Proxy-Authorization must be references. Headers the gateway manages
	// itself (Host, Content-Type, Mcp-Session-Id, ...) are rejected.
	Headers map[string]Secret

	// BearerToken, when set, is sent as "Authorization: Bearer <token>".
	// It is this upstream's own credential, never the client's. It must be
	// a secret reference ("env:NAME" or "file:/path"): secrets are not
	// inlined in configuration.
	BearerToken Secret

	// ClientCredentials, when present, obtains this upstream's bearer token
	// with the OAuth client credentials grant. Exclusive with BearerToken
	// and an Authorization header; not allowed with plain http to a remote
	// host.
	ClientCredentials *ClientCredentials

	// TLSInsecureSkipVerify disables certificate verification for an https
	// URL (refused with an http URL). For tests only: the gateway warns at
	// start.
	TLSInsecureSkipVerify bool
}

// SSE describes a legacy HTTP+SSE upstream (protocol 2024-11-05).
type SSE struct {
	// URL is the upstream's SSE endpoint (the GET stream), with the same
	// rules as HTTP.URL. Required.
	URL string

	// Headers are sent with every request, as for HTTP.Headers.
	Headers map[string]Secret

	// BearerToken is this upstream's own credential, as for
	// HTTP.BearerToken.
	BearerToken Secret

	// ClientCredentials obtains this upstream's bearer token, as for
	// HTTP.ClientCredentials.
	ClientCredentials *ClientCredentials
}

// Era selects an upstream's MCP protocol era.
type Era string

// The protocol eras.
const (
	EraAuto   Era = "auto"
	EraModern Era = "modern"
	EraLegacy Era = "legacy"
)

// Load reads the YAML file at path and returns the parsed, validated
// configuration with its secret references resolved from the process
// environment and the file system. When the file is invalid the error is a
// *[Problems] listing every problem found.
func Load(path string) (*Config, error) {
	data, err := readBounded(path, MaxConfigBytes, false)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(data, path)
	if err != nil {
		return nil, err
	}
	// A relative policy file is relative to the configuration file, wherever the gateway runs.
	if c.PolicyFile != "" && !filepath.IsAbs(c.PolicyFile) {
		c.PolicyFile = filepath.Join(filepath.Dir(path), c.PolicyFile)
	}
	if t := c.ToolPinning; t != nil && t.Database != "" && !strings.Contains(t.Database, "://") && !filepath.IsAbs(t.Database) {
		t.Database = filepath.Join(filepath.Dir(path), t.Database)
	}
	if c.APIKeysDatabase != "" && !strings.Contains(c.APIKeysDatabase, "://") && !filepath.IsAbs(c.APIKeysDatabase) {
		c.APIKeysDatabase = filepath.Join(filepath.Dir(path), c.APIKeysDatabase)
	}
	if t := c.Tracing; t != nil && t.CAFile != "" && !filepath.IsAbs(t.CAFile) {
		t.CAFile = filepath.Join(filepath.Dir(path), t.CAFile)
	}
	if a := c.Audit; a != nil {
		// A SQLite file written as a relative path is relative to the configuration file too.
		if db := a.Database.Reveal(); !a.Database.IsReference() && db != "" && !strings.Contains(db, "://") && !filepath.IsAbs(db) {
			a.Database = NewSecret(filepath.Join(filepath.Dir(path), db))
		}
		paths := []*string{&a.SigningKeyFile, &a.CheckpointDir}
		for i := range a.Sinks {
			if j := a.Sinks[i].JSONL; j != nil {
				paths = append(paths, &j.Path)
			}
			if s := a.Sinks[i].Syslog; s != nil {
				paths = append(paths, &s.CAFile)
			}
		}
		for _, p := range paths {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(filepath.Dir(path), *p)
			}
		}
	}
	return c, nil
}

// Parse decodes data, a YAML configuration named source in messages, applies
// defaults, validates it, and resolves its secret references from the
// process environment and the file system. When data is invalid the error is
// a *[Problems] listing every problem found.
func Parse(data []byte, source string) (*Config, error) {
	return parse(data, source, os.LookupEnv, readSecretFile)
}

// Auth configures bearer-token authentication (the MCP authorization specification: the
// gateway is an OAuth 2.1 resource server). docs/authentication.md explains each setting.
type Auth struct {
	// Resource is the gateway's canonical URI, e.g. "https://mcp.example.com/mcp": tokens must
	// name it as their audience (RFC 8707), and the Protected Resource Metadata describes it.
	// Required.
	Resource string

	// Issuer is the authorization server's issuer URL, exactly as it writes "iss". Its keys are
	// found through OIDC / RFC 8414 discovery unless JWKSURL is set. Required.
	Issuer string

	// JWKSURL skips discovery and reads the issuer's keys from this URL.
	JWKSURL string

	// ExtraAudiences are other names the issuer uses for this gateway in "aud" (Entra ID v2
	// puts the application id there).
	ExtraAudiences []string

	// Algorithms is the allow-list of signing algorithms. Default: the asymmetric ones.
	Algorithms []string

	// RolesClaim is the claim roles are read from: a name ("roles", "groups", "scope") or a
	// dotted path ("realm_access.roles"). Default "roles".
	RolesClaim string

	// GroupsClaim is the claim groups are read from, found the same way as RolesClaim: an
	// array of strings or a string naming one group. Policy bindings match groups with
	// groups:. Default "groups".
	GroupsClaim string

	// RequiredScopes must all be granted to every token (403 insufficient_scope otherwise).
	RequiredScopes []string

	// ClockSkew is the tolerance on exp, nbf and iat. Default 60s, at most 5m.
	ClockSkew time.Duration

	// MaxTokenLifetime is the longest lifetime a token may have: one whose exp is further than
	// this after its iat (without iat: after now) is refused. Default 24h, at most 720h.
	MaxTokenLifetime time.Duration
}

// Bounds of Auth.MaxTokenLifetime, applied by [Parse]: access tokens usually live minutes to an
// hour or two; 24h still admits Auth0's default and the longest Entra ID and Okta issue, and
// 720h (30 days) is the longest any of the common authorization servers issues.
const (
	DefaultMaxTokenLifetime = 24 * time.Hour
	MaxTokenLifetimeBound   = 30 * 24 * time.Hour
)

// TLS configures the HTTPS listener. The certificate and key files are re-read when they change,
// so a renewed certificate is served without a restart.
type TLS struct {
	// CertFile and KeyFile are the PEM certificate chain and private key. Required, absolute.
	CertFile string
	KeyFile  string

	// ClientCAFile, when set, is a PEM bundle of the CAs that sign client certificates: a client
	// that presents a certificate must present one they signed, and a request with a verified
	// certificate and no Authorization header is authenticated by it (mTLS).
	ClientCAFile string

	// RequireClientCert refuses connections without a verified client certificate.
	RequireClientCert bool

	// ClientNames orders the certificate fields the principal's name is taken from: any of
	// "uri", "dns", "email", "cn". Default uri, dns, email, cn.
	ClientNames []string

	// ClientRoles maps a certificate principal name to its roles.
	ClientRoles map[string][]string

	// RequireListed refuses certificates whose principal name is not in ClientRoles.
	RequireListed bool
}

// Audit configures the tamper-evident audit log.
type Audit struct {
	// Database is the store: a SQLite file path (absolute, or relative to the configuration
	// file) or a PostgreSQL DSN ("postgres://…"). Required.
	Database Secret

	// Log names this instance's log when several gateway instances share one PostgreSQL
	// database (docs/audit.md, "Many instances"): each instance writes a log of its own, under
	// a writer lease, and `mcpguard audit verify` verifies them all. Empty: the database's
	// default log, for one instance. PostgreSQL only.
	Log string

	// Schema is the PostgreSQL schema that holds the tables (default "public"), created and
	// migrated at start. PostgreSQL only.
	Schema string

	// LeaseTTL is how long this instance's writer lease on its log lasts unless renewed
	// (default 10s; renewed every third of it). An instance that dies holds its log this long:
	// a successor with the same log name waits for it. PostgreSQL only.
	LeaseTTL time.Duration

	// SigningKeyFile is the Ed25519 note signing key (`mcpguard audit keygen`) that signs
	// checkpoints; readable by the gateway only. Required.
	SigningKeyFile string

	// CheckpointDir receives a copy of every checkpoint outside the database (meant for WORM
	// storage or another machine). Required: without it truncation or a replaced log cannot be
	// detected.
	CheckpointDir string

	// CheckpointEvery and CheckpointInterval bound how many records, and how long, may pass
	// before a checkpoint. Defaults 10000 and 10s (the audit log's own).
	CheckpointEvery    int
	CheckpointInterval time.Duration

	// RedactionKey keys the HMAC tokens that replace secrets and personal data (same value,
	// same token). A secret reference; at least 32 bytes. Required.
	RedactionKey Secret

	// SensitiveKeys are argument names whose values are always replaced, besides the defaults
	// (password, token, secret, api_key …). KeepInClear names arguments never redacted.
	SensitiveKeys []string
	KeepInClear   []string

	// Sinks receive a copy of every record once it is durable, for a SIEM. Export is
	// best-effort: a sink that is down never slows or refuses a call; it buffers, retries and
	// counts what it drops. The database stays the record of truth.
	Sinks []Sink

	// Witnesses cosign every checkpoint (`mcpguard witness`; docs/audit.md, "Witnesses"): each
	// keeps the newest checkpoint it cosigned outside the operator's reach, so that `audit
	// verify --witness` detects a log truncated below it. Best-effort like Sinks: a witness
	// that is down never slows or refuses a call.
	Witnesses []Witness
}

// Witness is a transparency-log witness (C2SP tlog-witness) the gateway sends its checkpoints
// to.
type Witness struct {
	// URL is where the witness is served: checkpoints are POSTed to URL/add-checkpoint. http
	// or https (checkpoints are public and signed). Required.
	URL string
	// Key is the witness's verifier key, as `mcpguard witness keygen` prints it
	// (name+keyid+base64). Required; its cosignatures are checked with it.
	Key string
}

// Sink is one export destination; exactly one of JSONL, Syslog and Webhook is set.
type Sink struct {
	// Name identifies the sink in logs and metrics. Required, unique.
	Name string

	// Buffer is how many records wait while the destination is slow or down (default
	// 10000); past it new records are dropped and counted.
	Buffer int

	JSONL   *JSONLSink
	Syslog  *SyslogSink
	Webhook *WebhookSink
}

// JSONLSink appends records, one canonical JSON object a line, to a file it rotates.
type JSONLSink struct {
	// Path is the file (absolute, or relative to the configuration file). Required.
	Path string
	// MaxSize and MaxAge rotate the file (renamed to NAME-TIMESTAMP.EXT); Keep is how many
	// rotated files are kept. Defaults 100MiB, 24h, 7.
	MaxSize ByteSize
	MaxAge  time.Duration
	Keep    int
}

// SyslogSink sends records as RFC 5424 messages over TCP or TLS (octet-counted framing).
type SyslogSink struct {
	// Address is the receiver's host:port. Required.
	Address string
	// TLS connects with TLS (RFC 5425), verifying the receiver against CAFile (PEM; default
	// the system roots) and ServerName (default the address's host).
	TLS        bool
	CAFile     string
	ServerName string
	// Facility is a facility name (default "security"); AppName and Hostname fill the
	// message header (defaults "mcpguard" and the machine's host name).
	Facility string
	AppName  string
	Hostname string
}

// WebhookSink POSTs records in batches, as a JSON array, to an HTTPS endpoint.
type WebhookSink struct {
	// URL is https, or http to a loopback address. Required.
	URL string
	// BearerToken, a secret reference, is sent as "Authorization: Bearer …".
	BearerToken Secret
	// BatchSize is the most records one request carries (default 500).
	BatchSize int
}

// ToolPinning configures tool-definition pinning (docs/policy.md, "Tool pinning").
type ToolPinning struct {
	// Database is the SQLite file of approved and pending definitions (absolute, or relative
	// to the configuration file), or a PostgreSQL DSN shared by a deployment's instances.
	// Required.
	Database string
	// TrustOnFirstUse pins a tool the first time it is listed; otherwise every new tool waits
	// for approval. Default false.
	TrustOnFirstUse bool
	// Screen lists regular expressions (RE2) a new tool's description and title must not
	// match, e.g. "(?i)ignore (all )?previous instructions"; a match quarantines the tool.
	Screen []string
}

// Admin configures the admin API: a listener separate from the MCP endpoint, authenticated like
// it (bearer tokens, API keys or client certificates), where operators decide held calls.
type Admin struct {
	// Listen is the admin API's host:port. Loopback only unless AllowPublicListen or TLS.
	// Required.
	Listen string

	// OIDC, when present, lets operators log in with an OpenID Connect provider; the operator
	// accounts stay in APIKeysDatabase, which it requires.
	OIDC *AdminOIDC

	// AllowedNetworks, when set, are the only client networks the admin listener serves;
	// DeniedNetworks are refused whatever AllowedNetworks says (403). The client's address is
	// found as for the MCP listener (containment.trusted_proxies). Default: every network.
	AllowedNetworks []string
	DeniedNetworks  []string

	// Metrics, when present, serves the Prometheus metrics at GET /metrics on the admin
	// listener (docs/operations.md).
	Metrics *AdminMetrics

	// Console serves the operators' web console at /console/ on the admin listener
	// (docs/console.md). It needs APIKeysDatabase, where the operator accounts are.
	Console bool
}

// AdminMetrics configures the admin listener's GET /metrics.
type AdminMetrics struct {
	// RequireAuth makes a scraper authenticate like any admin API client (an API key, a token,
	// a client certificate); no role is needed. Default false: Prometheus scrapers usually do
	// not authenticate, and the metrics name no principal and no argument; restrict the admin
	// listener with AllowedNetworks instead.
	RequireAuth bool
}
