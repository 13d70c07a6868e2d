package gateway

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/demo"
	"github.com/mcpguard/mcpguard/internal/gateway/parts"
)

// rawExchange writes raw bytes to the gateway's listener and returns every response read until
// the server closes the connection. safety bounds a server that never closes it: the test fails
// then, it does not time anything.
func rawExchange(t *testing.T, url, raw string) (resps []*http.Response, closed bool) {
	t.Helper()
	addr := strings.TrimPrefix(strings.TrimSuffix(url, "/mcp"), "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const safety = 60 * time.Second
	conn.SetDeadline(time.Now().Add(safety))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return resps, false
			}
			return resps, true // EOF or reset: the server closed the connection
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		resps = append(resps, resp)
	}
}

// control makes one good call and waits until the recording upstream has it, so that the
// absence of a refused call's marker in the record proves it was never forwarded.
func (tg *testGateway) control(t *testing.T, marker string) []byte {
	t.Helper()
	status, _, res := post(t, tg.url, modernHeaders("tools/call", "rec.echo"),
		`{"jsonrpc":"2.0","id":"c","method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"`+marker+`"},`+modernMeta+`}}`)
	if status != http.StatusOK {
		t.Fatalf("control call: %d %v", status, res)
	}
	rec, _ := os.ReadFile(tg.record)
	if !bytes.Contains(rec, []byte(marker)) {
		t.Fatalf("the recording upstream missed the control call; the test proves nothing:\n%s", rec)
	}
	return rec
}

func modernCall(text string) string {
	return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"` + text + `"},` + modernMeta + `}}`
}

const modernRawHeaders = "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n" +
	"MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: rec.echo\r\n"

// TestRequestSmugglingIsRefused: a request with both Content-Length and Transfer-Encoding (which
// a proxy in front may frame by Content-Length) gets 400 and a closed connection; neither its
// body nor the request smuggled after it reaches the upstream.
func TestRequestSmugglingIsRefused(t *testing.T) {
	tg := newTestGateway(t, "")
	first := modernCall("FRAMED")
	smuggled := "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n" + modernRawHeaders +
		fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(modernCall("SMUGGLED")), modernCall("SMUGGLED"))
	chunked := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(first), first)
	raw := "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n" + modernRawHeaders +
		fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n", len(chunked)+len(smuggled)) + chunked + smuggled
	resps, closed := rawExchange(t, tg.url, raw)
	if len(resps) != 1 || resps[0].StatusCode != http.StatusBadRequest || !closed {
		t.Fatalf("got %d responses (first %v), closed=%v; want one 400 and the connection closed", len(resps), statusOf(resps), closed)
	}
	rec := tg.control(t, "CONTROL")
	for _, m := range []string{"FRAMED", "SMUGGLED"} {
		if bytes.Contains(rec, []byte(m)) {
			t.Errorf("the upstream received %s", m)
		}
	}
}

func statusOf(resps []*http.Response) any {
	if len(resps) == 0 {
		return nil
	}
	return resps[0].Status
}

// TestSlowBodyIsCutOff: a client that stops sending its body gets 408 at the bound and its
// connection is closed; nothing is forwarded.
func TestSlowBodyIsCutOff(t *testing.T) {
	tg := newTestGateway(t, "")
	tg.g.bodyTimeout = 200 * time.Millisecond
	body := modernCall("SLOWBODY")
	raw := "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n" + modernRawHeaders +
		fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body[:len(body)/2]
	resps, closed := rawExchange(t, tg.url, raw)
	if len(resps) != 1 || resps[0].StatusCode != http.StatusRequestTimeout || !closed {
		t.Fatalf("got %d responses (%v), closed=%v; want one 408 and the connection closed", len(resps), statusOf(resps), closed)
	}
	if rec := tg.control(t, "CONTROL"); bytes.Contains(rec, []byte("SLOWBODY")) {
		t.Error("the upstream received the slow body's call")
	}
}

// TestEdgeStatuses: answers the transport specification and RFC 9110 prescribe, none forwarded.
func TestEdgeStatuses(t *testing.T) {
	tg := newTestGateway(t, "")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(modernCall("GZIPPED")))
	zw.Close()
	send := func(method, body string, h map[string]string) *http.Response {
		req, _ := http.NewRequest(method, tg.url, strings.NewReader(body))
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	h := modernHeaders("tools/call", "rec.echo")
	h["Content-Type"] = "application/json"
	h["Content-Encoding"] = "gzip"
	if r := send(http.MethodPost, gz.String(), h); r.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("gzip body: %d, want 415", r.StatusCode)
	}
	h["Content-Encoding"] = "identity"
	h["Accept"] = "application/json, text/event-stream"
	if r := send(http.MethodPost, modernCall("IDENTITY"), h); r.StatusCode != http.StatusOK {
		t.Errorf("identity body: %d, want 200", r.StatusCode)
	}
	if r := send(http.MethodGet, "", map[string]string{"MCP-Protocol-Version": "2026-07-28", "Accept": "text/event-stream"}); r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "POST" {
		t.Errorf("stateless GET: %d Allow %q, want 405 Allow POST", r.StatusCode, r.Header.Get("Allow"))
	}
	sh := tg.initialize(t)
	if status, _, msg := post(t, tg.url, sh, `{"jsonrpc":"2.0","id":"never-asked","result":{}}`); status != http.StatusBadRequest {
		t.Errorf("a response to no request: %d %v, want 400", status, msg)
	}
	if rec := tg.control(t, "CONTROL"); bytes.Contains(rec, []byte("GZIPPED")) {
		t.Error("the upstream received the gzip body")
	}
}

// TestSessionsPerClientAreBounded: one client address cannot fill the gateway's session table;
// ending a session frees its place; another principal is not affected by one that is full.
func TestSessionsPerClientAreBounded(t *testing.T) {
	tg := newTestGateway(t, "")
	tg.g.sessions.perAddr = 3 // limits.max_sessions_per_address
	open := func() (int, map[string]any, string) {
		status, h, msg := post(t, tg.url, nil, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"flood","version":"1"}}}`)
		return status, msg, h.Get("Mcp-Session-Id")
	}
	var ids []string
	for range 3 {
		status, msg, id := open()
		if status != http.StatusOK {
			t.Fatalf("session %d: %d %v", len(ids)+1, status, msg)
		}
		ids = append(ids, id)
	}
	status, msg, _ := open()
	if e, _ := msg["error"].(map[string]any); status != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(e["message"]), "max_sessions_per_address") {
		t.Fatalf("fourth session from one address: %d %v, want 503 naming max_sessions_per_address", status, msg)
	}
	req, _ := http.NewRequest(http.MethodDelete, tg.url, nil)
	req.Header.Set("Mcp-Session-Id", ids[0])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if status, msg, _ := open(); status != http.StatusOK {
		t.Errorf("after DELETE of one session: %d %v, want a new session", status, msg)
	}

	ss := newSessions(t.Context(), &parts.Limits{MaxSessions: 10, MaxSessionsPerPrincipal: 2}, time.Now)
	addr := netip.MustParseAddr("10.0.0.1")
	for i := range 2 {
		if s, why := ss.create("2025-11-25", nil, nil, "alice", netip.MustParseAddr(fmt.Sprintf("10.0.1.%d", i))); s == nil {
			t.Fatalf("alice's session %d refused: %s", i, why)
		}
	}
	if s, why := ss.create("2025-11-25", nil, nil, "alice", addr); s != nil || !strings.Contains(why, "max_sessions_per_principal") {
		t.Errorf("alice's third session: %v %q, want refused by max_sessions_per_principal", s, why)
	}
	if s, why := ss.create("2025-11-25", nil, nil, "bob", addr); s == nil {
		t.Errorf("bob refused because alice is full: %s", why)
	}
}

// TestUpstreamErrorsDoNotLeak: an upstream's error that names its database (with password), its
// internal address and a stack trace reaches the client, in both eras, without any of them but
// with its code and what went wrong; a 502 for an upstream that cannot be reached does not name
// the address either.
func TestUpstreamErrorsDoNotLeak(t *testing.T) {
	tg := newTestGateway(t, "")
	secrets := []string{"S3cr3tPW", "10.20.30.40", "db-primary.corp.internal", "goroutine", "db.go:88", "trader:"}
	check := func(era string, msg map[string]any) {
		t.Helper()
		e, _ := msg["error"].(map[string]any)
		if e == nil || errCode(msg) != -32603 {
			t.Fatalf("%s: want the upstream's error -32603, got %v", era, msg)
		}
		raw, _ := json.Marshal(e)
		for _, s := range secrets {
			if strings.Contains(string(raw), s) {
				t.Errorf("%s: the client learns %q: %s", era, s, raw)
			}
		}
		if m, _ := e["message"].(string); !strings.Contains(m, "connection refused") || !strings.Contains(m, "[stack trace removed]") {
			t.Errorf("%s: the message no longer says what went wrong: %q", era, m)
		}
		if d, _ := e["data"].(map[string]any); d["retry"] != true {
			t.Errorf("%s: harmless data was lost: %v", era, e["data"])
		}
	}
	h := tg.initialize(t)
	_, _, msg := post(t, tg.url, h, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"rec.leak","arguments":{}}}`)
	check("legacy", msg)
	_, _, msg = post(t, tg.url, modernHeaders("tools/call", "rec.leak"),
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"rec.leak","arguments":{},`+modernMeta+`}}`)
	check("modern", msg)

	// An HTTP upstream that goes away after the gateway learned its tools: the dial error names
	// 127.0.0.1:port.
	up := httptest.NewServer(demo.HTTPHandler(nil))
	addr := up.Listener.Addr().String()
	down := newTestGateway(t, fmt.Sprintf(`  - name: down
    http:
      url: %s/mcp
`, up.URL))
	call := `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"down.get_market_overview","arguments":{},` + modernMeta + `}}`
	if status, _, msg := post(t, down.url, modernHeaders("tools/call", "down.get_market_overview"), call); status != http.StatusOK {
		t.Fatalf("the upstream's tool before it went away: %d %v", status, msg)
	}
	up.CloseClientConnections()
	up.Close()
	status, _, msg := post(t, down.url, modernHeaders("tools/call", "down.get_market_overview"), call)
	raw, _ := json.Marshal(msg)
	if status != http.StatusBadGateway || strings.Contains(string(raw), addr) || strings.Contains(string(raw), "127.0.0.1") {
		t.Errorf("unreachable upstream: want 502 without its address, got %d %s", status, raw)
	}
}
