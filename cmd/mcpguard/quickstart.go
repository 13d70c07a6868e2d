package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/mcp"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/store"
	"github.com/mcpguard/mcpguard/internal/transport/streamhttp"
)

const (
	// quickstartConfig is the configuration `mcpguard quickstart` runs unless --config names
	// another: relative to the working directory, which is the repository root for a new user.
	quickstartConfig = "examples/quickstart.yaml"
	// quickstartKeyEnv is the variable examples/quickstart.yaml reads its redaction key from;
	// the quickstart sets it from the key file it keeps next to the signing key.
	quickstartKeyEnv = "MCPGUARD_QUICKSTART_REDACTION_KEY"
	// redactionKeyFile and gatewayLogFile are the quickstart's own files in its state
	// directory (the directory of audit.signing_key_file).
	redactionKeyFile = "redaction.key"
	gatewayLogFile   = "gateway.log"
)

// The scripted agent session: one call the quickstart policy allows, one it refuses.
const (
	allowedTool = "finance.get_stock_analysis"
	allowedArgs = `{"symbol":"VNM"}`
	refusedTool = "finance.execute_trade_order"
	refusedArgs = `{"client_id":"C0001","symbol":"VNM","side":"buy","quantity":100,"order_type":"market"}`
)

type quickstartOptions struct {
	config, listen string
	once           bool
}

func newQuickstart() *cobra.Command {
	o := quickstartOptions{config: quickstartConfig}
	cmd := &cobra.Command{
		Use:   "quickstart [--config FILE] [--listen HOST:PORT] [--once]",
		Short: "Run the gateway with a role policy and the audit log, show an allowed call, a refused trade and the log verifying, then keep serving",
		Long: "Runs examples/quickstart.yaml: the gateway in front of the demo finance server, with the\n" +
			"role policy examples/policies/quickstart.yaml and the audit log on embedded SQLite in\n" +
			".mcpguard-quickstart/ (its signing key and redaction key are created there on first run).\n" +
			"A scripted agent session over HTTP makes one allowed call and one refused trade; the gateway\n" +
			"then stops to seal the log with a signed checkpoint, the log is verified as `mcpguard audit\n" +
			"verify` does, and the gateway serves again until Ctrl-C (with --once, the command exits,\n" +
			"non-zero unless the trade was refused and the log verified).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			_, err := runQuickstart(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), &o)
			return err
		},
	}
	cmd.Flags().StringVar(&o.config, "config", quickstartConfig, "configuration file (YAML) with policy_file and audit")
	cmd.Flags().StringVar(&o.listen, "listen", "", "override the configured listen address (host:port; port 0 picks a free one)")
	cmd.Flags().BoolVar(&o.once, "once", false, "exit after the summary instead of serving")
	return cmd
}

// quickstartState is where the quickstart keeps what it creates.
type quickstartState struct {
	dir       string // the state directory: the signing key's
	publicKey string // the verifier key next to the signing key (NAME.pub)
	created   bool   // the keys were created by this run
	logFile   string // the gateway's operational log
}

// quickstartReport is what the scripted session saw and what verification found.
type quickstartReport struct {
	URL         string
	ServerName  string   // serverInfo.name of the initialize result
	Protocol    string   // the protocol version initialize agreed on
	Tools       []string // tools/list, as the anonymous principal sees it
	Allowed     callOutcome
	AllowedRule string // the rule the audit log recorded for the allowed call
	Refused     callOutcome
	RefusalRule string // the rule the audit log recorded for the refusal
	Verify      *audit.Report
	RunRecords  int64 // records written during this run
}

// callOutcome is the answer to one tools/call.
type callOutcome struct {
	Status int             // HTTP status
	Result json.RawMessage // the JSON-RPC result, or nil
	Error  *rpcError       // the JSON-RPC error, or nil
}

type rpcError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// problems lists what went wrong, in the words of the summary; none means the quickstart
// showed what it should.
func (r *quickstartReport) problems() []string {
	var out []string
	switch a := r.Allowed; {
	case a.Error != nil:
		out = append(out, fmt.Sprintf("%s was not allowed: HTTP %d, error %d %q", allowedTool, a.Status, a.Error.Code, a.Error.Message))
	case len(a.Result) == 0:
		out = append(out, fmt.Sprintf("%s returned no result (HTTP %d)", allowedTool, a.Status))
	case toolError(a.Result):
		out = append(out, fmt.Sprintf("%s returned a tool error: %s", allowedTool, clip(resultText(a.Result), 200)))
	case r.AllowedRule == "":
		out = append(out, fmt.Sprintf("the audit log holds no record of the allowed %s call", allowedTool))
	}
	switch f := r.Refused; {
	case f.Error == nil:
		out = append(out, fmt.Sprintf("%s was NOT refused (HTTP %d)", refusedTool, f.Status))
	case f.Status != http.StatusForbidden || f.Error.Code != mcpguard.CodeDeniedByPolicy || !strings.HasPrefix(f.Error.Message, "denied by policy"):
		out = append(out, fmt.Sprintf("%s was refused, but not by the policy: HTTP %d, error %d %q; want 403, %d \"denied by policy …\"",
			refusedTool, f.Status, f.Error.Code, f.Error.Message, mcpguard.CodeDeniedByPolicy))
	case r.RefusalRule == "":
		out = append(out, fmt.Sprintf("the audit log holds no record of the refused %s call", refusedTool))
	}
	switch v := r.Verify; {
	case v == nil:
		out = append(out, "the audit log was not verified")
	case !v.OK():
		first, _ := v.First()
		out = append(out, fmt.Sprintf("the audit log failed verification: %s", first))
	case v.Covered != v.Records:
		out = append(out, fmt.Sprintf("only %d of the audit log's %d records are covered by a signed checkpoint", v.Covered, v.Records))
	}
	return out
}

// runQuickstart does the quickstart: prepare the keys, serve, run the scripted session, stop
// the gateway (its Close signs the last checkpoint), verify the log, print the summary to out,
// and, unless o.once, serve again until ctx ends. The report is returned even with an error
// when the session ran.
func runQuickstart(ctx context.Context, out, errOut io.Writer, o *quickstartOptions) (*quickstartReport, error) {
	cfg, state, err := prepareQuickstart(o.config, o.listen)
	if err != nil {
		return nil, err
	}
	if err := checkPortFree(cfg.Listen); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(state.logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("operational log: %w", err)
	}
	defer logf.Close()
	urls := make(chan string, 1)
	logger := slog.New(listenHook{
		Handler: slog.NewMultiHandler(newLogger(cfg, logf).Handler(), slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelWarn})),
		urls:    urls,
	})

	// The gateway, as `serve` runs it, until the session is done.
	started := time.Now()
	sctx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	served := make(chan error, 1)
	// The session's end stops the gateway as SIGTERM would (a drain: nothing is in flight by
	// then); only the user's own signal stops it at once.
	go func() { served <- serve(sctx, ctx, cfg, logger) }()
	rep := &quickstartReport{}
	select {
	case rep.URL = <-urls:
	case err := <-served:
		if err == nil { // interrupted before listening
			return nil, nil
		}
		return nil, explainListen(err, cfg.Listen)
	}
	fmt.Fprintf(out, "mcpguard quickstart: gateway on %s, demo finance server behind it\n", rep.URL)
	fmt.Fprintf(out, "  config %s, policy %s (principal anonymous → role MarketAnalystAI)\n", shortPath(o.config), shortPath(cfg.PolicyFile))
	keys := "signing key " + shortPath(cfg.Audit.SigningKeyFile)
	if state.created {
		keys += " (created now)"
	}
	fmt.Fprintf(out, "  audit log %s, %s\n", shortPath(cfg.Audit.Database.Reveal()), keys)
	fmt.Fprintf(out, "  operational log %s\n", shortPath(state.logFile))
	fmt.Fprintf(out, "agent session over HTTP, as principal anonymous (no auth configured):\n")

	sessionErr := agentSession(sctx, rep)
	stopServing()
	if err := <-served; err != nil {
		return rep, fmt.Errorf("gateway: %w", err)
	}
	if ctx.Err() != nil {
		return rep, nil // interrupted
	}
	if sessionErr != nil {
		return rep, fmt.Errorf("agent session: %w (the gateway's log is in %s)", sessionErr, shortPath(state.logFile))
	}
	printCalls(out, rep)

	// The gateway is closed, so the log ends with a checkpoint signed over every record.
	fmt.Fprintf(out, "gateway stopped, which signs a checkpoint over the whole log; verifying it as `mcpguard audit verify` does:\n")
	f := &auditFlags{key: state.publicKey, origin: audit.DefaultOrigin, checkpoints: cfg.Audit.CheckpointDir, schema: "public"}
	if dsn := cfg.Audit.Database.Reveal(); strings.Contains(dsn, "://") {
		f.postgres = dsn
	} else {
		f.db = dsn
	}
	if rep.Verify, err = verifyAuditLog(ctx, f, nil); err != nil {
		return rep, fmt.Errorf("audit verify: %w", err)
	}
	if err := readRun(ctx, f, started, rep); err != nil {
		return rep, fmt.Errorf("audit search: %w", err)
	}
	printVerify(out, rep, f)

	if probs := rep.problems(); len(probs) > 0 {
		for _, p := range probs {
			fmt.Fprintf(out, "  FAILED: %s\n", p)
		}
		return rep, fmt.Errorf("quickstart failed: %s", strings.Join(probs, "; "))
	}
	if o.once {
		fmt.Fprintf(out, "done (--once).\n")
		return rep, nil
	}

	// Serve again on the same address until Ctrl-C.
	u, _ := url.Parse(rep.URL)
	cfg.Listen = u.Host
	fmt.Fprintf(out, "serving again at %s until Ctrl-C; try:\n", rep.URL)
	fmt.Fprintf(out, "  npx @modelcontextprotocol/inspector --cli %s --transport http --method tools/list\n", rep.URL)
	fmt.Fprintf(out, "  npx @modelcontextprotocol/inspector --cli %s --transport http \\\n"+
		"      --method tools/call --tool-name %s --tool-arg symbol=FPT\n", rep.URL, allowedTool)
	if err := serve(ctx, ctx, cfg, logger); err != nil {
		return rep, explainListen(err, cfg.Listen)
	}
	return rep, nil
}

// prepareQuickstart loads the configuration and, on first run, creates what a fresh machine
// lacks: the state directory, the checkpoint signing key and the redaction key.
func prepareQuickstart(path, listen string) (*config.Config, *quickstartState, error) {
	// The configuration names where the keys live, but loading it resolves the redaction key,
	// which may not exist yet: the first load, to learn the paths, uses a stand-in value that
	// nothing ever sees (no gateway is built from it).
	if err := os.Setenv(quickstartKeyEnv, strings.Repeat("-", 32)); err != nil {
		return nil, nil, err
	}
	cfg, err := loadConfig(path, listen)
	if err != nil {
		os.Unsetenv(quickstartKeyEnv)
		if errors.Is(err, os.ErrNotExist) && path == quickstartConfig {
			err = fmt.Errorf("%w (run the quickstart from the repository root, or name the file with --config)", err)
		}
		return nil, nil, err
	}
	if cfg.Audit == nil || cfg.PolicyFile == "" {
		os.Unsetenv(quickstartKeyEnv)
		return nil, nil, fmt.Errorf("%s: the quickstart needs a configuration with policy_file and audit, like %s", path, quickstartConfig)
	}
	a := cfg.Audit
	st := &quickstartState{dir: filepath.Dir(a.SigningKeyFile)}
	st.logFile = filepath.Join(st.dir, gatewayLogFile)
	dirs := []string{st.dir, a.CheckpointDir}
	if db := a.Database.Reveal(); !strings.Contains(db, "://") {
		dirs = append(dirs, filepath.Dir(db))
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, nil, fmt.Errorf("state directory: %w", err)
		}
	}
	name := strings.TrimSuffix(filepath.Base(a.SigningKeyFile), ".key")
	st.publicKey = filepath.Join(st.dir, name+".pub")
	if _, err := os.Stat(a.SigningKeyFile); errors.Is(err, os.ErrNotExist) {
		if filepath.Base(a.SigningKeyFile) != name+".key" {
			return nil, nil, fmt.Errorf("audit.signing_key_file %s: the quickstart creates NAME.key files only", a.SigningKeyFile)
		}
		if _, _, _, err := writeAuditKeys(st.dir, name); err != nil {
			return nil, nil, err
		}
		st.created = true
	} else if err != nil {
		return nil, nil, fmt.Errorf("audit.signing_key_file: %w", err)
	}
	if _, err := os.Stat(st.publicKey); err != nil {
		return nil, nil, fmt.Errorf("public key of the audit log: %w (remove %s to start afresh)", err, st.dir)
	}
	key, err := redactionKey(filepath.Join(st.dir, redactionKeyFile))
	if err != nil {
		return nil, nil, err
	}
	if err := os.Setenv(quickstartKeyEnv, key); err != nil {
		return nil, nil, err
	}
	cfg, err = loadConfig(path, listen)
	if err != nil {
		return nil, nil, err
	}
	return cfg, st, nil
}

// redactionKey reads the redaction key from path, creating it (32 random bytes, hex, mode
// 0600) when it does not exist.
func redactionKey(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		raw := make([]byte, 32)
		rand.Read(raw) // never fails (crypto/rand)
		key := hex.EncodeToString(raw)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return "", fmt.Errorf("write redaction key: %w", err)
		}
		if _, err := f.WriteString(key + "\n"); err != nil {
			f.Close()
			return "", fmt.Errorf("write redaction key: %w", err)
		}
		if err := f.Close(); err != nil {
			return "", fmt.Errorf("write redaction key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return "", fmt.Errorf("redaction key: %w", err)
	}
	key := strings.TrimSpace(string(b))
	if len(key) < 32 {
		return "", fmt.Errorf("redaction key %s: shorter than 32 bytes", path)
	}
	return key, nil
}

// checkPortFree says clearly when the listen address is taken, before the gateway opens the
// audit log (another quickstart may be running on it).
func checkPortFree(addr string) error {
	if _, port, err := net.SplitHostPort(addr); err == nil && port == "0" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return explainListen(err, addr)
	}
	return ln.Close()
}

// explainListen turns "address already in use" into advice.
func explainListen(err error, addr string) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s is already in use (another mcpguard quickstart?): stop it, or choose another address with --listen, e.g. --listen 127.0.0.1:8181", addr)
	}
	return err
}

// listenHook passes every record to its Handler and sends the URL of the "mcpguard listening"
// record, which serve logs once its listener is open, to urls: how the quickstart learns the
// address (--listen 127.0.0.1:0 picks a free port) and that the gateway is up.
type listenHook struct {
	slog.Handler
	urls chan<- string
}

func (h listenHook) Enabled(ctx context.Context, level slog.Level) bool {
	return level == slog.LevelInfo || h.Handler.Enabled(ctx, level)
}

func (h listenHook) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "mcpguard listening" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key != "url" {
				return true
			}
			select {
			case h.urls <- a.Value.String():
			default:
			}
			return false
		})
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h listenHook) WithAttrs(attrs []slog.Attr) slog.Handler {
	return listenHook{h.Handler.WithAttrs(attrs), h.urls}
}

func (h listenHook) WithGroup(name string) slog.Handler {
	return listenHook{h.Handler.WithGroup(name), h.urls}
}

// agentSession is what an agent does over Streamable HTTP, with the gateway's own client
// (internal/transport/streamhttp): initialize, tools/list, one allowed call and one trade.
func agentSession(ctx context.Context, rep *quickstartReport) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c := streamhttp.New(rep.URL, nil)
	h := http.Header{}
	init, err := rpc(ctx, c, h, 1, "initialize", fmt.Sprintf(`{"protocolVersion":%q,"capabilities":{},"clientInfo":{"name":"mcpguard-quickstart","version":"1.0"}}`, mcp.LatestLegacy))
	if err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	if init.Error != nil {
		return fmt.Errorf("initialize: HTTP %d, error %d %s", init.Status, init.Error.Code, init.Error.Message)
	}
	var ir struct {
		ProtocolVersion string `json:"protocolVersion"`
		ServerInfo      struct {
			Name string `json:"name"`
		} `json:"serverInfo"`
	}
	if err := json.Unmarshal(init.Result, &ir); err != nil {
		return fmt.Errorf("initialize result: %w", err)
	}
	rep.ServerName, rep.Protocol = ir.ServerInfo.Name, ir.ProtocolVersion
	h.Set(mcp.HeaderProtocolVersion, ir.ProtocolVersion)
	if id := init.header.Get(mcp.HeaderSessionID); id != "" {
		h.Set(mcp.HeaderSessionID, id)
		defer c.Delete(context.WithoutCancel(ctx), h)
	}
	r, err := c.Post(ctx, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`), nil, h)
	if err != nil {
		return fmt.Errorf("notifications/initialized: %w", err)
	}
	r.Close()

	list, err := rpc(ctx, c, h, 2, "tools/list", `{}`)
	if err != nil {
		return fmt.Errorf("tools/list: %w", err)
	}
	if list.Error != nil {
		return fmt.Errorf("tools/list: HTTP %d, error %d %s", list.Status, list.Error.Code, list.Error.Message)
	}
	var lr struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(list.Result, &lr); err != nil {
		return fmt.Errorf("tools/list result: %w", err)
	}
	for _, t := range lr.Tools {
		rep.Tools = append(rep.Tools, t.Name)
	}

	call := func(id int, tool, args string) (callOutcome, error) {
		r, err := rpc(ctx, c, h, id, "tools/call", fmt.Sprintf(`{"name":%q,"arguments":%s}`, tool, args))
		if err != nil {
			return callOutcome{}, fmt.Errorf("tools/call %s: %w", tool, err)
		}
		return r.callOutcome, nil
	}
	if rep.Allowed, err = call(3, allowedTool, allowedArgs); err != nil {
		return err
	}
	rep.Refused, err = call(4, refusedTool, refusedArgs)
	return err
}

// rpcAnswer is one JSON-RPC answer and the HTTP response headers it came with.
type rpcAnswer struct {
	callOutcome
	header http.Header
}

// rpc sends one request and returns its response: from the JSON body or event stream of a 2xx
// answer, or from the body of an error status (a refusal is 403 with a JSON-RPC error).
func rpc(ctx context.Context, c *streamhttp.Client, h http.Header, id int, method, params string) (*rpcAnswer, error) {
	rid := []byte(strconv.Itoa(id))
	msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, id, method, params)
	reply, err := c.Post(ctx, []byte(msg), rid, h)
	var se *streamhttp.StatusError
	if errors.As(err, &se) {
		a := &rpcAnswer{header: se.Header}
		a.Status = se.Status
		if perr := parseResponse(se.Body, rid, &a.callOutcome); perr != nil || a.Error == nil {
			return nil, err
		}
		return a, nil
	}
	if err != nil {
		return nil, err
	}
	defer reply.Close()
	a := &rpcAnswer{header: reply.Header}
	a.Status = reply.Status
	for {
		m, err := reply.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("no response to request %d (HTTP %d)", id, reply.Status)
		}
		if err != nil {
			return nil, err
		}
		if parseResponse(m, rid, &a.callOutcome) == nil {
			return a, nil
		}
	}
}

// parseResponse fills o from msg when msg is the response to the request id.
func parseResponse(msg, id []byte, o *callOutcome) error {
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Result json.RawMessage `json:"result"`
		Error  *rpcError       `json:"error"`
	}
	if err := json.Unmarshal(msg, &m); err != nil {
		return err
	}
	if m.Method != "" || !bytes.Equal(bytes.TrimSpace(m.ID), id) {
		return errors.New("not the response")
	}
	o.Result, o.Error = m.Result, m.Error
	return nil
}

// readRun reads this run's records from the audit log: how many there are, and the rules
// recorded for the allowed call and for the refusal.
func readRun(ctx context.Context, f *auditFlags, since time.Time, rep *quickstartReport) error {
	st, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	rep.RunRecords = 0
	return st.Search(ctx, store.Query{Since: since, AfterSeq: -1}, func(r *store.Record) error {
		rep.RunRecords++
		rec, err := audit.ParseRecord(r.Data)
		if err != nil {
			return fmt.Errorf("record %d: %w", r.Seq, err)
		}
		switch {
		case rec.Kind == audit.KindToolCall && rec.Tool == allowedTool && rec.Decision == audit.DecisionAllow:
			rep.AllowedRule = rec.Rule
		case rec.Kind == audit.KindPolicyDenial && rec.Tool == refusedTool:
			rep.RefusalRule = rec.Rule
		}
		return nil
	})
}

func printCalls(w io.Writer, rep *quickstartReport) {
	fmt.Fprintf(w, "  ✓ initialize: a session with %s, MCP %s\n", orDash(rep.ServerName), rep.Protocol)
	fmt.Fprintf(w, "  ✓ tools/list: %d tools visible to this principal: %s\n", len(rep.Tools), strings.Join(rep.Tools, ", "))
	a := rep.Allowed
	mark, what := "✓", "allowed"
	switch {
	case a.Error != nil:
		mark, what = "FAILED", fmt.Sprintf("refused: HTTP %d, error %d %q", a.Status, a.Error.Code, a.Error.Message)
	case toolError(a.Result):
		mark, what = "FAILED", "tool error"
	}
	fmt.Fprintf(w, "  %s tools/call %s %s\n      %s: %s\n", mark, allowedTool, allowedArgs, what, resultSummary(a.Result))
	f := rep.Refused
	if f.Error == nil {
		fmt.Fprintf(w, "  FAILED tools/call %s %s\n      NOT refused (HTTP %d): %s\n", refusedTool, refusedArgs, f.Status, resultSummary(f.Result))
		return
	}
	fmt.Fprintf(w, "  ✗ tools/call %s %s\n      refused: HTTP %d, error %d %q\n", refusedTool, refusedArgs, f.Status, f.Error.Code, f.Error.Message)
}

func printVerify(w io.Writer, rep *quickstartReport, f *auditFlags) {
	if rep.AllowedRule != "" {
		fmt.Fprintf(w, "  ✓ the log records %s allowed by rule %s\n", allowedTool, rep.AllowedRule)
	}
	if rep.RefusalRule != "" {
		fmt.Fprintf(w, "  ✓ the log records %s refused by rule %s\n", refusedTool, rep.RefusalRule)
	}
	v := rep.Verify
	for _, warn := range v.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", warn)
	}
	if v.OK() && v.Covered == v.Records {
		fmt.Fprintf(w, "  ✓ audit log verifies: %d records (%d from this run), all covered by a signed checkpoint (%d in the database, %d in %s)\n",
			v.Records, rep.RunRecords, v.Checkpoints, v.External, shortPath(f.checkpoints))
	}
	src := "--db " + shortPath(f.db)
	if f.postgres != "" {
		src = "--postgres DSN"
	}
	fmt.Fprintf(w, "  check it yourself: go run ./cmd/mcpguard audit verify %s --key %s --checkpoints %s\n", src, shortPath(f.key), shortPath(f.checkpoints))
}

// toolError reports whether a tools/call result says isError.
func toolError(result json.RawMessage) bool {
	var r struct {
		IsError bool `json:"isError"`
	}
	return json.Unmarshal(result, &r) == nil && r.IsError
}

// resultSummary is one line about a tools/call result: the gist of a stock analysis, or the
// beginning of the text.
func resultSummary(result json.RawMessage) string {
	var r struct {
		Structured struct {
			Symbol         string   `json:"symbol"`
			Price          *float64 `json:"price"`
			Currency       string   `json:"currency"`
			ChangePercent  float64  `json:"change_percent"`
			Period         string   `json:"period"`
			Recommendation string   `json:"recommendation"`
		} `json:"structuredContent"`
	}
	if json.Unmarshal(result, &r) == nil && r.Structured.Symbol != "" && r.Structured.Price != nil {
		a := r.Structured
		return fmt.Sprintf("%s at %.2f %s (%+.2f%% over %s), recommendation %s (demo data)", a.Symbol, *a.Price, a.Currency, a.ChangePercent, a.Period, a.Recommendation)
	}
	return clip(resultText(result), 100)
}

// resultText is the text content of a tools/call result, or the result itself.
func resultText(result json.RawMessage) string {
	var r struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	}
	if json.Unmarshal(result, &r) == nil {
		var parts []string
		for _, c := range r.Content {
			if c.Type == "text" {
				parts = append(parts, c.Text)
			}
		}
		if len(parts) > 0 {
			return strings.Join(strings.Fields(strings.Join(parts, " ")), " ")
		}
	}
	return string(result)
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// shortPath is path relative to the working directory when it lies under it.
func shortPath(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	if rel, err := filepath.Rel(wd, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return rel
	}
	return path
}
