package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcp"
)

// Bounds of the echo upstream.
const (
	echoMaxMessage  = 32 << 20 // one request or stdio line
	echoMaxSessions = 1 << 20  // legacy sessions held at once
	echoMaxBlob     = 64 << 20 // largest blob a call may ask for
	echoMaxTools    = 100000   // largest tools/list
)

// echoOptions configures the echo upstream.
type echoOptions struct {
	// Tools is the number of tools listed: echo, blob, and fillers up to this count (at least 2).
	Tools int
	// LegacyOnly makes the server answer server/discover with -32601, as a legacy server does,
	// so that a gateway falls back to initialize.
	LegacyOnly bool
}

// echoServer is the benchmark's upstream: a minimal, fast MCP server with two tools, echo
// (returns its text argument) and blob (returns a text of the requested size). It serves
// Streamable HTTP in both eras on one endpoint (legacy sessions and stateless 2026-07-28
// requests) and newline-delimited stdio. It does only what a correct server must to be
// usable by a client and a gateway; it trusts the headers of modern requests.
type echoServer struct {
	opts       echoOptions
	listLegacy []byte // tools/list result for legacy requests
	listModern []byte // the same with resultType
	filler     []byte // blob text source, 64 KiB

	mu       sync.Mutex
	sessions map[string]bool
}

func newEchoServer(opts echoOptions) *echoServer {
	if opts.Tools < 2 {
		opts.Tools = 2
	}
	opts.Tools = min(opts.Tools, echoMaxTools)
	s := &echoServer{opts: opts, sessions: map[string]bool{}}
	tools := make([]byte, 0, 256*opts.Tools)
	tools = append(tools, `[{"name":"echo","description":"Returns its text argument unchanged.","inputSchema":{"type":"object","properties":{"text":{"type":"string","description":"Text to return."}},"required":["text"]}},`...)
	tools = append(tools, `{"name":"blob","description":"Returns a text of the requested number of bytes.","inputSchema":{"type":"object","properties":{"bytes":{"type":"integer","minimum":0,"description":"Size of the text in bytes."}},"required":["bytes"]}}`...)
	for i := 2; i < opts.Tools; i++ {
		tools = fmt.Appendf(tools, `,{"name":"tool_%04d","title":"Filler tool %d","description":"A tool that exists to make the list long: it looks up record %d in a ledger and reports its balance, owner and last change.","inputSchema":{"type":"object","properties":{"account":{"type":"string","description":"Account identifier, e.g. ACC-1001."},"limit":{"type":"integer","minimum":1,"maximum":100}},"required":["account"]}}`, i, i, i)
	}
	tools = append(tools, ']')
	s.listLegacy = append(append([]byte(`{"tools":`), tools...), '}')
	s.listModern = append(append([]byte(`{"resultType":"complete","tools":`), tools...), '}')
	line := []byte("The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs. ")
	for len(s.filler) < 64<<10 {
		s.filler = append(s.filler, line...)
	}
	return s
}

// handle answers one parsed request. modern selects the 2026-07-28 result shape.
func (s *echoServer) handle(msg *jsonrpc.Message, modern bool) (result []byte, rpcErr *jsonrpc.Error) {
	switch msg.Method {
	case mcp.MethodInitialize:
		raw, _ := jsonrpc.Lookup(msg.Params, "protocolVersion")
		v, _ := jsonrpc.String(raw)
		if !mcp.IsLegacy(v) {
			v = mcp.LatestLegacy
		}
		return []byte(`{"protocolVersion":"` + v + `","capabilities":{"tools":{}},"serverInfo":{"name":"mcpguard-bench-echo","version":"1"}}`), nil
	case mcp.MethodServerDiscover:
		if s.opts.LegacyOnly {
			return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "method not found")
		}
		return []byte(`{"resultType":"complete","supportedVersions":["2026-07-28","2025-11-25"],"capabilities":{"tools":{}},"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"mcpguard-bench-echo","version":"1"}}}`), nil
	case mcp.MethodPing:
		return []byte(`{}`), nil
	case mcp.MethodToolsList:
		if modern {
			return s.listModern, nil
		}
		return s.listLegacy, nil
	case mcp.MethodToolsCall:
		return s.call(msg.Params, modern)
	}
	return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "method not found: "+msg.Method)
}

func (s *echoServer) call(params []byte, modern bool) ([]byte, *jsonrpc.Error) {
	raw, _ := jsonrpc.Lookup(params, "name")
	name, _ := jsonrpc.String(raw)
	args, _ := jsonrpc.Lookup(params, "arguments")
	out := make([]byte, 0, 128)
	out = append(out, '{')
	if modern {
		out = append(out, `"resultType":"complete",`...)
	}
	out = append(out, `"content":[{"type":"text","text":`...)
	switch name {
	case "echo":
		text, ok := jsonrpc.Lookup(args, "text")
		if !ok || len(text) == 0 || text[0] != '"' {
			return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "echo needs a string argument \"text\"")
		}
		out = append(out, text...)
	case "blob":
		raw, _ := jsonrpc.Lookup(args, "bytes")
		n, err := strconv.Atoi(string(raw))
		if err != nil || n < 0 || n > echoMaxBlob {
			return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "blob needs an integer argument \"bytes\" between 0 and 64 MiB")
		}
		out = append(make([]byte, 0, n+len(out)+32), out...)
		out = append(out, '"')
		for n > 0 {
			k := min(n, len(s.filler))
			out = append(out, s.filler[:k]...)
			n -= k
		}
		out = append(out, '"')
	default:
		return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "unknown tool: "+name)
	}
	return append(out, `}],"isError":false}`...), nil
}

// ServeHTTP serves Streamable HTTP: a POST carrying modern _meta is stateless; initialize opens
// a legacy session; any other POST needs a live session. GET has no standalone stream (405).
func (s *echoServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
	case http.MethodDelete:
		s.mu.Lock()
		delete(s.sessions, r.Header.Get(mcp.HeaderSessionID))
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		w.Header().Set("Allow", "POST, DELETE")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, echoMaxMessage+1))
	if err != nil || len(body) > echoMaxMessage {
		http.Error(w, "request body unreadable or too large", http.StatusRequestEntityTooLarge)
		return
	}
	msg, err := jsonrpc.Parse(body, jsonrpc.Limits{MaxBytes: echoMaxMessage})
	if err != nil {
		var e *jsonrpc.Error
		errors.As(err, &e)
		writeEchoJSON(w, http.StatusBadRequest, jsonrpc.AppendError(nil, jsonrpc.ID{}, e))
		return
	}
	if msg.Kind != jsonrpc.KindRequest {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	modern := false
	if meta, ok := jsonrpc.Lookup(msg.Params, "_meta"); ok {
		_, modern = jsonrpc.Lookup(meta, mcp.MetaProtocolVersion)
	}
	switch {
	case modern:
	case msg.Method == mcp.MethodInitialize:
		id := newEchoSessionID()
		s.mu.Lock()
		full := len(s.sessions) >= echoMaxSessions
		if !full {
			s.sessions[id] = true
		}
		s.mu.Unlock()
		if full {
			http.Error(w, "too many sessions", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set(mcp.HeaderSessionID, id)
	default:
		s.mu.Lock()
		live := s.sessions[r.Header.Get(mcp.HeaderSessionID)]
		s.mu.Unlock()
		if !live {
			writeEchoJSON(w, http.StatusNotFound, jsonrpc.AppendError(nil, msg.ID, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "unknown session")))
			return
		}
	}
	result, rpcErr := s.handle(msg, modern)
	if rpcErr != nil {
		status := http.StatusOK
		if modern && rpcErr.Code == jsonrpc.CodeMethodNotFound {
			status = http.StatusNotFound
		}
		writeEchoJSON(w, status, jsonrpc.AppendError(nil, msg.ID, rpcErr))
		return
	}
	writeEchoJSON(w, http.StatusOK, jsonrpc.AppendResult(make([]byte, 0, len(result)+48), msg.ID, result))
}

func writeEchoJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func newEchoSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// serveStdio answers newline-delimited JSON-RPC from in on out until in ends. A modern
// request is recognized by its _meta, as on HTTP.
func (s *echoServer) serveStdio(in io.Reader, out io.Writer) error {
	r := bufio.NewReaderSize(in, 64<<10)
	w := bufio.NewWriterSize(out, 64<<10)
	var line []byte
	for {
		line = line[:0]
		for {
			chunk, err := r.ReadSlice('\n')
			line = append(line, chunk...)
			if len(line) > echoMaxMessage {
				return fmt.Errorf("echo: stdio line over %d bytes", echoMaxMessage)
			}
			if err == nil {
				break
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if errors.Is(err, io.EOF) && len(line) == 0 {
				return w.Flush()
			}
			if errors.Is(err, io.EOF) {
				break
			}
			return err
		}
		msg, err := jsonrpc.Parse(trimNewline(line), jsonrpc.Limits{MaxBytes: echoMaxMessage})
		if err != nil || msg.Kind != jsonrpc.KindRequest {
			continue // notifications and responses need no answer
		}
		modern := false
		if meta, ok := jsonrpc.Lookup(msg.Params, "_meta"); ok {
			_, modern = jsonrpc.Lookup(meta, mcp.MetaProtocolVersion)
		}
		result, rpcErr := s.handle(msg, modern)
		var reply []byte
		if rpcErr != nil {
			reply = jsonrpc.AppendError(nil, msg.ID, rpcErr)
		} else {
			reply = jsonrpc.AppendResult(make([]byte, 0, len(result)+48), msg.ID, result)
		}
		if _, err := w.Write(append(reply, '\n')); err != nil {
			return err
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// serveEchoHTTP serves the echo upstream at /mcp on ln until ctx ends.
func serveEchoHTTP(ctx context.Context, ln net.Listener, s *echoServer) error {
	mux := http.NewServeMux()
	mux.Handle("/mcp", s)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
