// Package demo is a self-contained finance MCP server with fictitious data, used as the upstream
// in demos and tests of the gateway; it serves stdio and Streamable HTTP in both protocol eras.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Options configures the demo server. A nil *Options is valid and means all defaults.
type Options struct {
	// Logger receives the server's diagnostics. Nil discards them.
	Logger *slog.Logger
	// Now returns the current time; it only feeds the as_of, submitted_at and updated_at
	// fields of results. Nil means time.Now.
	Now func() time.Time
}

const (
	serverName    = "mcpguard-demo-finance"
	serverVersion = "1.0.0"

	// maxMessageBytes bounds one inbound JSON-RPC message on stdio and one HTTP request
	// body. The largest legitimate request to this server is well under a kilobyte.
	maxMessageBytes = 1 << 20

	// legacySessionIdleTimeout closes legacy (2025-xx) HTTP sessions that receive no POST
	// for this long, so abandoned sessions do not accumulate. An open GET stream does not
	// count as activity; a client of an expired session gets 404 and must initialize again.
	legacySessionIdleTimeout = 30 * time.Minute

	// modernProtocolVersion is the first protocol version of the stateless era.
	modernProtocolVersion = "2026-07-28"
)

const instructions = `Demo finance server with fictitious market data and a fictitious client book.
Market tools (get_stock_analysis, get_market_overview, get_sector_heatmap) are read-only.
get_client_portfolio returns personal data of clients. execute_trade_order and
update_client_profile change client state and need human approval in real deployments.
Nothing here is investment advice; see finance://disclaimer.`

// server holds the configuration shared by all handlers of one demo server.
type server struct {
	logger *slog.Logger
	now    func() time.Time
	book   clientBook
}

func newServerState(opts *Options) *server {
	s := &server{
		logger: slog.New(slog.DiscardHandler),
		now:    time.Now,
		book:   newClientBook(),
	}
	if opts != nil {
		if opts.Logger != nil {
			s.logger = opts.Logger
		}
		if opts.Now != nil {
			s.now = opts.Now
		}
	}
	return s
}

// asOf formats the injected current time for results.
func (s *server) asOf() string {
	return s.now().UTC().Format(time.RFC3339)
}

// NewServer returns a go-sdk server with the six finance tools, the disclaimer resource,
// the client summary resource template and the daily_briefing prompt.
func NewServer(opts *Options) *mcp.Server {
	s := newServerState(opts)
	srv := mcp.NewServer(&mcp.Implementation{
		Name:    serverName,
		Title:   "mcpguard demo finance server",
		Version: serverVersion,
	}, &mcp.ServerOptions{
		Instructions:       instructions,
		Logger:             s.logger,
		CompletionHandler:  s.complete,
		SubscribeHandler:   s.subscribe,
		UnsubscribeHandler: s.unsubscribe,
	})
	s.addTools(srv)
	s.addResources(srv)
	s.addPrompts(srv)
	return srv
}

// ServeStdio serves one client over newline-delimited JSON-RPC on in and out until in ends
// (then it returns nil) or ctx is cancelled (then it returns ctx.Err()). Both protocol eras
// are served: a 2026-07-28 client may start with server/discover, a legacy client with
// initialize. If in is an io.Closer it is closed when ctx is cancelled, which unblocks a
// pending read.
func ServeStdio(ctx context.Context, in io.Reader, out io.Writer, opts *Options) error {
	rc, ok := in.(io.ReadCloser)
	if !ok {
		rc = io.NopCloser(in)
	}
	t := &mcp.IOTransport{
		Reader:        rc,
		Writer:        nopWriteCloser{out},
		MaxLineLength: maxMessageBytes,
	}
	err := NewServer(opts).Run(ctx, t)
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, mcp.ErrConnectionClosed):
		return nil
	default:
		return fmt.Errorf("serve stdio: %w", err)
	}
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// HTTPHandler returns a Streamable HTTP handler serving both protocol eras on whatever path
// it is mounted on.
//
// The go-sdk serves the 2026-07-28 protocol only from a stateless handler, and legacy
// sessions (Mcp-Session-Id, GET stream, DELETE) only from a stateful one. The returned
// handler routes each request by its MCP-Protocol-Version header: 2026-07-28 or later goes
// to the stateless handler, anything else (including a missing header, as on a legacy
// initialize) to the stateful one. Both share one server, so they list the same tools.
func HTTPHandler(opts *Options) http.Handler {
	srv := NewServer(opts)
	getServer := func(*http.Request) *mcp.Server { return srv }
	var logger *slog.Logger
	if opts != nil {
		logger = opts.Logger
	}
	return &eraRouter{
		modern: mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{
			Stateless:                    true,
			Logger:                       logger,
			MaxRequestBodyBytes:          maxMessageBytes,
			PropagateRequestCancellation: true,
		}),
		legacy: mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{
			Logger:              logger,
			MaxRequestBodyBytes: maxMessageBytes,
			SessionTimeout:      legacySessionIdleTimeout,
		}),
	}
}

// eraRouter sends each HTTP request to the handler of its protocol era.
type eraRouter struct {
	modern http.Handler
	legacy http.Handler
}

func (e *eraRouter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Protocol versions are dates in YYYY-MM-DD form, so string order is date order; the
	// go-sdk compares them the same way.
	if v := r.Header.Get("Mcp-Protocol-Version"); v >= modernProtocolVersion {
		e.modern.ServeHTTP(w, r)
		return
	}
	e.legacy.ServeHTTP(w, r)
}
