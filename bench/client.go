package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcp"
	"github.com/mcpguard/mcpguard/internal/sse"
)

// maxReply bounds one reply body read by the load client.
const maxReply = 64 << 20

// Client eras.
const (
	eraLegacy = "legacy" // initialize, Mcp-Session-Id (2025-11-25)
	eraModern = "modern" // stateless, per-request _meta (2026-07-28)
)

// clientInfo and the modern _meta every benchmark request carries.
const (
	benchClientInfo = `{"name":"mcpguard-bench","version":"1"}`
	modernMeta      = `{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":` + benchClientInfo + `}`
)

// newTransport returns an HTTP transport for up to conns concurrent requests to one host,
// each on its own kept-alive connection.
func newTransport(conns int) *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        conns + 16,
		MaxIdleConnsPerHost: conns + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
}

// mcpClient is one benchmark client: a legacy session or a stateless modern client of one
// MCP endpoint. It is used by one goroutine at a time.
type mcpClient struct {
	hc      *http.Client
	url     string
	era     string
	session string
	// sessionOptional accepts a legacy server that answers initialize without a session (a
	// stateless server, as TBXark mcp-proxy is); mcpguard and the echo upstream must give one.
	sessionOptional bool
	extra           map[string]string // sent with every request (the pipeline's bearer token)
	body            []byte
	buf             bytes.Buffer
}

// newMCPClient returns a client of the MCP endpoint at url that adds extra (may be nil) to the
// headers of every request it sends.
func newMCPClient(hc *http.Client, url, era string, extra map[string]string) *mcpClient {
	return &mcpClient{hc: hc, url: url, era: era, extra: extra}
}

// withExtra adds the client's extra headers to h.
func (c *mcpClient) withExtra(h http.Header) http.Header {
	for k, v := range c.extra {
		h.Set(k, v)
	}
	return h
}

// open starts a legacy session (initialize, then notifications/initialized); a modern client
// has nothing to open.
func (c *mcpClient) open(ctx context.Context) error {
	if c.era != eraLegacy {
		return nil
	}
	params := []byte(`{"protocolVersion":"` + mcp.LatestLegacy + `","capabilities":{},"clientInfo":` + benchClientInfo + `}`)
	h := c.withExtra(http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json, text/event-stream"}})
	res, hdr, err := c.post(ctx, jsonrpc.IntID(0), mcp.MethodInitialize, params, h)
	if err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	if _, ok := jsonrpc.Lookup(res, "protocolVersion"); !ok {
		return fmt.Errorf("initialize: result without protocolVersion: %.200s", res)
	}
	c.session = hdr.Get(mcp.HeaderSessionID)
	if c.session == "" && !c.sessionOptional {
		return errors.New("initialize: no Mcp-Session-Id in the answer")
	}
	note := jsonrpc.AppendNotification(nil, mcp.NotificationInitialized, nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(note))
	if err != nil {
		return err
	}
	req.Header = c.legacyHeader()
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("notifications/initialized: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxReply))
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("notifications/initialized: HTTP %d, want 202", resp.StatusCode)
	}
	return nil
}

func (c *mcpClient) legacyHeader() http.Header {
	h := http.Header{
		"Content-Type":            {"application/json"},
		"Accept":                  {"application/json, text/event-stream"},
		mcp.HeaderProtocolVersion: {mcp.LatestLegacy},
	}
	if c.session != "" {
		h.Set(mcp.HeaderSessionID, c.session)
	}
	return c.withExtra(h)
}

// request is one prepared call: the params as this client's era sends them and the headers.
type request struct {
	method string
	params []byte
	header http.Header
}

// prepare shapes a call for the client's era: a modern request gets the per-request _meta
// and the mirrored headers, a legacy one the session headers.
func (c *mcpClient) prepare(method string, params []byte) (*request, error) {
	if c.era == eraLegacy {
		return &request{method: method, params: params, header: c.legacyHeader()}, nil
	}
	params = jsonrpc.SetMember(params, "_meta", []byte(modernMeta))
	h, err := mcp.RequestHeaders(method, params, nil)
	if err != nil {
		return nil, err
	}
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json, text/event-stream")
	return &request{method: method, params: params, header: c.withExtra(h)}, nil
}

// do sends one request and returns its result; the result aliases a buffer reused by the
// next call.
func (c *mcpClient) do(ctx context.Context, id int64, r *request) ([]byte, error) {
	res, _, err := c.post(ctx, jsonrpc.IntID(id), r.method, r.params, r.header)
	return res, err
}

func (c *mcpClient) post(ctx context.Context, id jsonrpc.ID, method string, params []byte, h http.Header) ([]byte, http.Header, error) {
	c.body = jsonrpc.AppendRequest(c.body[:0], id, method, params)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(c.body))
	if err != nil {
		return nil, nil, err
	}
	req.Header = h
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	c.buf.Reset()
	_, err = c.buf.ReadFrom(io.LimitReader(resp.Body, maxReply+1))
	resp.Body.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("reading the reply: %w", err)
	}
	if c.buf.Len() > maxReply {
		return nil, nil, fmt.Errorf("reply over %d bytes", maxReply)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("HTTP %d: %.160s", resp.StatusCode, c.buf.Bytes())
	}
	data := c.buf.Bytes()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		data, err = responseEvent(data, id)
		if err != nil {
			return nil, nil, err
		}
	}
	msg, err := jsonrpc.Parse(data, jsonrpc.Limits{MaxBytes: maxReply})
	if err != nil {
		return nil, nil, fmt.Errorf("invalid reply: %w", err)
	}
	switch {
	case msg.Kind == jsonrpc.KindError:
		return nil, nil, fmt.Errorf("JSON-RPC error %d: %.120s", msg.Error.Code, msg.Error.Message)
	case msg.Kind != jsonrpc.KindResponse || msg.ID != id:
		return nil, nil, fmt.Errorf("reply is not the response to request %s", id)
	}
	return msg.Result, resp.Header, nil
}

// responseEvent finds the response to id among the events of an SSE body.
func responseEvent(body []byte, id jsonrpc.ID) ([]byte, error) {
	r := sse.NewReader(bytes.NewReader(body), maxReply)
	for {
		ev, err := r.Next()
		if err != nil {
			return nil, fmt.Errorf("event stream ended without the response: %w", err)
		}
		if len(ev.Data) == 0 {
			continue
		}
		msg, err := jsonrpc.Parse(ev.Data, jsonrpc.Limits{MaxBytes: maxReply})
		if err == nil && (msg.Kind == jsonrpc.KindResponse || msg.Kind == jsonrpc.KindError) && msg.ID == id {
			return ev.Data, nil
		}
	}
}

// close ends a legacy session.
func (c *mcpClient) close(ctx context.Context) {
	if c.session == "" {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.url, nil)
	if err != nil {
		return
	}
	req.Header = c.withExtra(http.Header{mcp.HeaderSessionID: {c.session}})
	if resp, err := c.hc.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
	}
}
