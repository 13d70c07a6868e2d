package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"time"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcp"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/oauthclient"
	"github.com/mcpguard/mcpguard/internal/transport/ssehttp"
	"github.com/mcpguard/mcpguard/internal/transport/stdio"
	"github.com/mcpguard/mcpguard/internal/transport/streamhttp"
)

// Version is the gateway version reported to upstreams in clientInfo.
var Version = "0.1.0"

// probeTimeout bounds the server/discover probe of a stdio upstream; a legacy server may stay
// silent, and silence means legacy (2026-07-28 stdio backward compatibility).
const probeTimeout = 5 * time.Second

// Options configures New.
type Options struct {
	Hub    Hub
	Logger *slog.Logger
	// SeparatorLen and the like are not needed here; naming is the gateway's business.
	Limits jsonrpc.Limits
	// MaxMessageBytes bounds one upstream message. Zero means 16 MiB.
	MaxMessageBytes int
	// Executable is the path "@self" stands for; empty means os.Executable().
	Executable string
	// LookupEnv is consulted for the PATH, HOME and LANG a stdio child inherits; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// TokenHTTPClient reaches the authorization servers of upstreams with client_credentials;
	// nil means a dedicated client that follows no redirect.
	TokenHTTPClient *http.Client
	// Now is the clock of token lifetimes; nil means time.Now.
	Now func() time.Time
	// WrapTransport, when set, wraps the HTTP transport of HTTP and SSE upstreams (the trace
	// context's propagation); nil: none.
	WrapTransport func(http.RoundTripper) http.RoundTripper
}

// New builds an Upstream from its spec. Call Start to connect it.
func New(spec Spec, defaultTimeout time.Duration, opts *Options) (*Upstream, error) {
	if opts == nil {
		opts = &Options{}
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	up := &Upstream{
		name:    spec.Name,
		prefix:  spec.Prefix,
		timeout: spec.Timeout,
		hub:     opts.Hub,
		logger:  logger,
		minBack: 250 * time.Millisecond,
		maxBack: 30 * time.Second,
		lim:     opts.Limits,
		maxMsg:  opts.MaxMessageBytes,
		ready:   make(chan struct{}),
	}
	if spec.Breaker.Enabled() {
		now := opts.Now
		if now == nil {
			now = time.Now
		}
		up.brk = newBreaker(spec.Name, spec.Breaker, now, func(from, to BreakerState) {
			logger.Warn("upstream circuit breaker "+to.String(), "upstream", spec.Name, "from", from.String())
		})
	}
	up.bulk = newBulkhead(spec.Name, spec.Bulkhead)
	if up.timeout <= 0 {
		up.timeout = defaultTimeout
	}
	if up.timeout <= 0 {
		up.timeout = 60 * time.Second
	}
	if up.maxMsg <= 0 {
		up.maxMsg = 16 << 20
	}
	if up.lim.MaxBytes == 0 || up.lim.MaxBytes < up.maxMsg {
		up.lim.MaxBytes = up.maxMsg
	}
	switch {
	case spec.Stdio != nil:
		cmd, err := stdioCommand(spec.Stdio, opts)
		if err != nil {
			return nil, fmt.Errorf("upstream %q: %w", spec.Name, err)
		}
		if spec.Stdio.MinBackoff > 0 {
			up.minBack = spec.Stdio.MinBackoff
		}
		if spec.Stdio.MaxBackoff > 0 {
			up.maxBack = spec.Stdio.MaxBackoff
		}
		grace := spec.Stdio.ShutdownGrace
		up.dial = func(ctx context.Context, up *Upstream) (backend, error) {
			c, err := stdio.Start(ctx, cmd, &stdio.Options{Logger: up.logger, Name: up.name, MaxMessageBytes: up.maxMsg, ShutdownGrace: grace})
			if err != nil {
				return nil, err
			}
			m := newMux(ctx, up, stdioWire{c})
			if err := m.detect(ctx); err != nil {
				_ = m.close()
				return nil, err
			}
			return m, nil
		}
	case spec.HTTP != nil:
		base := streamhttp.NewHTTPClient()
		if spec.HTTP.TLSInsecureSkipVerify {
			base = streamhttp.NewHTTPClientTLS(&tls.Config{InsecureSkipVerify: true})
			logger.Warn("upstream certificate not verified (upstreams[].http.tls_insecure_skip_verify): anyone between the gateway and the upstream can pose as it; for tests only", "upstream", spec.Name)
		}
		hc, err := credentialClient(wrapTransport(base, opts), spec.Name, spec.HTTP.URL, spec.HTTP.ClientCredentials, opts, logger)
		if err != nil {
			return nil, fmt.Errorf("upstream %q: %w", spec.Name, err)
		}
		client := streamhttp.New(spec.HTTP.URL, &streamhttp.Options{HTTPClient: hc, Header: spec.HTTP.Header, MaxMessageBytes: up.maxMsg, Logger: logger})
		era := spec.HTTP.Era
		up.dial = func(ctx context.Context, up *Upstream) (backend, error) {
			return dialHTTP(ctx, up, client, era)
		}
	case spec.SSE != nil:
		url, h := spec.SSE.URL, spec.SSE.Header
		hc, err := credentialClient(wrapTransport(ssehttp.NewHTTPClient(), opts), spec.Name, url, spec.SSE.ClientCredentials, opts, logger)
		if err != nil {
			return nil, fmt.Errorf("upstream %q: %w", spec.Name, err)
		}
		up.dial = func(ctx context.Context, up *Upstream) (backend, error) {
			c, err := ssehttp.Dial(ctx, url, &ssehttp.Options{HTTPClient: hc, Header: h, MaxMessageBytes: up.maxMsg, Logger: up.logger})
			if err != nil {
				return nil, err
			}
			m := newMux(ctx, up, sseWire{c})
			if err := m.handshake(ctx); err != nil {
				_ = m.close()
				return nil, err
			}
			return m, nil
		}
	default:
		return nil, fmt.Errorf("upstream %q: no transport configured", spec.Name)
	}
	return up, nil
}

// stdioCommand builds the child's command line and clean environment from its spec only.
func stdioCommand(c *StdioSpec, opts *Options) (stdio.Command, error) {
	lookup := opts.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	path := c.Command
	if path == "@self" {
		path = opts.Executable
		if path == "" {
			exe, err := os.Executable()
			if err != nil {
				return stdio.Command{}, fmt.Errorf("resolve @self: %w", err)
			}
			path = exe
		}
	}
	env := map[string]string{}
	for _, k := range []string{"PATH", "HOME", "LANG"} {
		if v, ok := lookup(k); ok {
			env[k] = v
		}
	}
	for k, v := range c.Env {
		env[k] = v
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	list := make([]string, 0, len(keys))
	for _, k := range keys {
		list = append(list, k+"="+env[k])
	}
	return stdio.Command{Path: path, Args: c.Args, Env: list, Dir: c.Dir}, nil
}

// credentialClient returns hc, with the upstream's client credentials attached to its
// transport when cc is set (internal/oauthclient obtains and refreshes the token).
func credentialClient(hc *http.Client, name, upstreamURL string, cc *oauthclient.Config, opts *Options, logger *slog.Logger) (*http.Client, error) {
	if cc == nil {
		return hc, nil
	}
	src, err := oauthclient.New(upstreamURL, *cc, &oauthclient.Options{HTTPClient: opts.TokenHTTPClient, Logger: logger, Name: name, Now: opts.Now})
	if err != nil {
		return nil, err
	}
	hc.Transport = src.Transport(hc.Transport)
	return hc, nil
}

// wrapTransport wraps hc's transport with opts.WrapTransport, when set.
func wrapTransport(hc *http.Client, opts *Options) *http.Client {
	if opts.WrapTransport != nil {
		hc.Transport = opts.WrapTransport(hc.Transport)
	}
	return hc
}

// clientInfo is how the gateway introduces itself to upstreams.
func clientInfo() []byte {
	return []byte(`{"name":"mcpguard","version":` + string(jsonrpc.Quote(Version)) + `}`)
}

// legacyCapabilities are the client capabilities the gateway declares to legacy upstreams: it
// can relay sampling, elicitation and roots to clients that support them, and answers with an
// error for clients that do not.
const legacyCapabilities = `{"roots":{"listChanged":true},"sampling":{},"elicitation":{}}`

// probeMeta is the _meta of the gateway's own modern requests (discovery, listen).
func probeMeta() []byte {
	return []byte(`{"` + mcp.MetaProtocolVersion + `":"` + mcp.Version20260728 + `","` + mcp.MetaClientCapabilities + `":{},"` + mcp.MetaClientInfo + `":` + string(clientInfo()) + `}`)
}

// detect runs the stdio era detection: probe with server/discover and fall back to initialize
// on anything that is not a recognized modern answer.
func (m *mux) detect(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	resp, err := m.call(pctx, &Request{Method: mcp.MethodServerDiscover, Params: []byte(`{"_meta":` + string(probeMeta()) + `}`)}, nil)
	cancel()
	if err == nil {
		var raw []byte
		if resp.Error != nil {
			raw = jsonrpc.AppendError(nil, jsonrpc.IntID(0), resp.Error)
		} else {
			raw = jsonrpc.AppendResult(nil, jsonrpc.IntID(0), resp.Result)
		}
		probe := mcp.ClassifyDiscoverResponse(raw)
		if probe.Modern {
			if v, ok := mcp.Negotiate(probe.Supported, mcp.SupportedModern()); ok && resp.Error == nil {
				m.era = mcpguard.EraModern
				m.inf = discoverInfo(v, resp.Result)
				go m.listen(ctx)
				return nil
			}
		}
	} else if ctx.Err() != nil {
		return err
	}
	return m.handshake(ctx)
}

// handshake runs the legacy initialize exchange, within the upstream's timeout: a server that
// accepts the connection and never answers does not hold the upstream forever.
func (m *mux) handshake(ctx context.Context) error {
	ctx, cancel := context.WithTimeoutCause(ctx, m.up.timeout, mcpguard.ErrUpstreamTimeout)
	defer cancel()
	params := `{"protocolVersion":"` + mcp.Version20251125 + `","capabilities":` + legacyCapabilities + `,"clientInfo":` + string(clientInfo()) + `}`
	resp, err := m.call(ctx, &Request{Method: mcp.MethodInitialize, Params: []byte(params)}, nil)
	if err != nil {
		return fmt.Errorf("initialize %q: %w", m.up.name, err)
	}
	if resp.Error != nil {
		return fmt.Errorf("%w: %q rejected initialize: %d %s", mcpguard.ErrUpstreamBadReply, m.up.name, resp.Error.Code, resp.Error.Message)
	}
	raw, _ := jsonrpc.Lookup(resp.Result, "protocolVersion")
	v, _ := jsonrpc.String(raw)
	if !mcp.IsLegacy(v) {
		return fmt.Errorf("%w: %q answered initialize with unsupported protocol version %q", mcpguard.ErrUpstreamBadReply, m.up.name, v)
	}
	m.era = mcpguard.EraLegacy
	m.inf = Info{Era: mcpguard.EraLegacy, ProtocolVersion: v}
	m.inf.Capabilities, _ = jsonrpc.Lookup(resp.Result, "capabilities")
	m.inf.ServerInfo, _ = jsonrpc.Lookup(resp.Result, "serverInfo")
	if ins, ok := jsonrpc.Lookup(resp.Result, "instructions"); ok {
		m.inf.Instructions, _ = jsonrpc.String(ins)
	}
	if vs, ok := m.w.(interface{ setVersion(string) }); ok {
		vs.setVersion(v)
	}
	return m.notify(ctx, mcp.NotificationInitialized, nil)
}

// listen keeps a subscriptions/listen request open on a modern stdio upstream so that its
// change notifications reach the hub, until the connection is lost or ctx, the upstream's
// lifetime, ends.
func (m *mux) listen(ctx context.Context) {
	filter := listenFilter(m.inf.Capabilities)
	if filter == "" {
		return
	}
	params := []byte(`{"_meta":` + string(probeMeta()) + `,"notifications":` + filter + `}`)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-m.dead:
			cancel()
		case <-ctx.Done():
		}
	}()
	_, _ = m.call(ctx, &Request{Method: mcp.MethodSubscriptionsListen, Params: params}, hubSink{m.up})
}

// hubSink hands the notifications of a listen stream to the upstream's hub.
type hubSink struct{ up *Upstream }

func (s hubSink) Notify(method string, params []byte) {
	if s.up.hub != nil && method != mcp.NotificationSubscriptionsAcknowledged {
		s.up.hub.UpstreamNotify(s.up, method, params)
	}
}

func (s hubSink) Request(ctx context.Context, method string, params []byte) ([]byte, *jsonrpc.Error) {
	return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "no client can answer "+method)
}

// listenFilter is the notifications filter for the capabilities a server advertises, or "" when
// it advertises nothing a listen stream would carry.
func listenFilter(caps []byte) string {
	f := ""
	add := func(k string) {
		if f != "" {
			f += ","
		}
		f += `"` + k + `":true`
	}
	for _, c := range []struct{ cap, key string }{{"tools", "toolsListChanged"}, {"prompts", "promptsListChanged"}, {"resources", "resourcesListChanged"}} {
		obj, ok := jsonrpc.Lookup(caps, c.cap)
		if !ok {
			continue
		}
		if lc, ok := jsonrpc.Lookup(obj, "listChanged"); ok && string(lc) == "true" {
			add(c.key)
		}
	}
	if f == "" {
		return ""
	}
	return "{" + f + "}"
}

// discoverInfo reads a DiscoverResult.
func discoverInfo(version string, result []byte) Info {
	inf := Info{Era: mcpguard.EraModern, ProtocolVersion: version}
	inf.Capabilities, _ = jsonrpc.Lookup(result, "capabilities")
	if meta, ok := jsonrpc.Lookup(result, "_meta"); ok {
		inf.ServerInfo, _ = jsonrpc.Lookup(meta, mcp.MetaServerInfo)
	}
	if ins, ok := jsonrpc.Lookup(result, "instructions"); ok {
		inf.Instructions, _ = jsonrpc.String(ins)
	}
	return inf
}

// dialHTTP detects a Streamable HTTP upstream's era (modern request first, inspecting a 4xx
// body before falling back) and connects in that era.
func dialHTTP(ctx context.Context, up *Upstream, c *streamhttp.Client, era mcpguard.Era) (backend, error) {
	if era != mcpguard.EraLegacy {
		mb, err := dialModern(ctx, up, c)
		if err == nil {
			return mb, nil
		}
		var fallback *legacyFallback
		if era == mcpguard.EraModern || !errors.As(err, &fallback) {
			return nil, err
		}
		up.logger.Info("upstream does not serve the modern protocol; using legacy", "upstream", up.name, "reason", fallback.reason)
	}
	w := newLegacyHTTPWire(ctx, c, up.logger)
	m := newMux(ctx, up, w)
	if err := m.handshake(ctx); err != nil {
		_ = m.close()
		return nil, err
	}
	w.startGet()
	return m, nil
}

// legacyFallback says that a modern probe was answered the way a legacy server answers.
type legacyFallback struct{ reason string }

func (e *legacyFallback) Error() string { return "legacy server: " + e.reason }
