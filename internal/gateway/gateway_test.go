package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/cmd/mcpguard/wiring"
	"github.com/mcpguard/mcpguard/internal/config"
)

// testGateway runs a gateway over httptest in front of the recording upstream.
type testGateway struct {
	url    string
	record string
	cfg    *config.Config
	g      *Gateway
}

func newTestGateway(t testing.TB, extra string) *testGateway {
	t.Helper()
	return newTestGatewayWith(t, extra, nil)
}

// newTestGatewayWith is newTestGateway with the gateway's own logger.
func newTestGatewayWith(t testing.TB, extra string, opts *wiring.Options) *testGateway {
	t.Helper()
	dir := t.TempDir()
	record := filepath.Join(dir, "record.jsonl")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(`
listen: 127.0.0.1:0
limits:
  max_body_bytes: 64KiB
  request_timeout: 20s
upstreams:
  - name: rec
    stdio:
      command: %q
      env:
        MCPGUARD_TEST_UPSTREAM: "1"
        MCPGUARD_TEST_RECORD: %q
        MCPGUARD_TEST_DESC_FILE: %q
      min_backoff: 10ms
      max_backoff: 100ms
      shutdown_grace: 1s
%s`, exe, record, os.Getenv("MCPGUARD_TEST_DESC_FILE"), extra)
	cfg, err := config.Parse([]byte(yaml), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g, err := newFromConfig(t.Context(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.Start(ctx)
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		cancel()
		g.Close()
	})
	return &testGateway{url: srv.URL + "/mcp", record: record, cfg: cfg, g: g}
}

// post sends one body and returns the status, the response headers and the JSON-RPC message
// (the last data event when the answer is an SSE stream).
func post(t *testing.T, url string, h map[string]string, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		var last []byte
		for _, line := range bytes.Split(raw, []byte("\n")) {
			if d, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
				last = d
			}
		}
		raw = last
	}
	var msg map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &msg); err != nil {
			t.Fatalf("response is not JSON: %q", raw)
		}
	}
	return resp.StatusCode, resp.Header, msg
}

func (tg *testGateway) initialize(t *testing.T) map[string]string {
	t.Helper()
	return legacySession(t, tg.url)
}

// legacySession initializes a 2025-11-25 session at url and returns its request headers.
func legacySession(t *testing.T, url string) map[string]string {
	t.Helper()
	status, h, msg := post(t, url, nil, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"test","version":"1"}}}`)
	if status != http.StatusOK || msg["result"] == nil {
		t.Fatalf("initialize: status %d, %v", status, msg)
	}
	sid := h.Get("Mcp-Session-Id")
	if len(sid) < 32 {
		t.Fatalf("session id %q is too short to be unguessable", sid)
	}
	return map[string]string{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"}
}

func errCode(msg map[string]any) int {
	e, _ := msg["error"].(map[string]any)
	c, _ := e["code"].(float64)
	return int(c)
}

func modernHeaders(method, name string) map[string]string {
	h := map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": method}
	if name != "" {
		h["Mcp-Name"] = name
	}
	return h
}

const modernMeta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`

func TestCallsThroughGatewayInBothEras(t *testing.T) {
	tg := newTestGateway(t, "")
	h := tg.initialize(t)
	_, _, list := post(t, tg.url, h, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	tools := list["result"].(map[string]any)["tools"].([]any)
	var names []string
	for _, tool := range tools {
		names = append(names, tool.(map[string]any)["name"].(string))
	}
	if got, want := strings.Join(names, ","), "rec.echo,rec.crash,rec.progress,rec.ask,rec.slow,rec.change,rec.leak"; got != want {
		t.Errorf("legacy tools/list names = %s, want %s (upstream order, namespaced)", got, want)
	}
	_, _, res := post(t, tg.url, h, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"hi"}}}`)
	if !strings.Contains(fmt.Sprint(res["result"]), "echo: hi") {
		t.Errorf("legacy tools/call result = %v, want the echo", res)
	}
	status, _, res := post(t, tg.url, modernHeaders("tools/call", "rec.echo"),
		`{"jsonrpc":"2.0","id":"m1","method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"modern"},`+modernMeta+`}}`)
	if status != http.StatusOK || !strings.Contains(fmt.Sprint(res["result"]), "echo: modern") || res["id"] != "m1" {
		t.Errorf("modern tools/call: status %d, %v", status, res)
	}
	// The upstream saw the names without the gateway's prefix, and no modern _meta.
	rec, _ := os.ReadFile(tg.record)
	calls := 0
	for _, line := range bytes.Split(rec, []byte("\n")) {
		if !bytes.Contains(line, []byte(`"tools/call"`)) {
			continue
		}
		calls++
		if !bytes.Contains(line, []byte(`"name":"echo"`)) || bytes.Contains(line, []byte("io.modelcontextprotocol/")) {
			t.Errorf("upstream call is not what a legacy upstream expects: %s", line)
		}
	}
	if calls != 2 {
		t.Errorf("upstream saw %d calls, want 2:\n%s", calls, rec)
	}
}

func TestProgressTokensAreRemapped(t *testing.T) {
	tg := newTestGateway(t, "")
	h := tg.initialize(t)
	req, _ := http.NewRequest(http.MethodPost, tg.url, strings.NewReader(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"rec.progress","arguments":{"text":"p"},"_meta":{"progressToken":"client-token-1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(body, []byte(`"progressToken":"client-token-1"`)) || !bytes.Contains(body, []byte("echo: p")) {
		t.Errorf("stream lacks the client's own progress token or the result:\n%s", body)
	}
	rec, _ := os.ReadFile(tg.record)
	if bytes.Contains(rec, []byte("client-token-1")) {
		t.Errorf("the client's progress token reached the shared upstream unmapped:\n%s", rec)
	}
}

// TestBadInputNeverReachesUpstream pins the response contract for malformed and ambiguous
// requests, and proves with the recording upstream that none of them was forwarded.
func TestBadInputNeverReachesUpstream(t *testing.T) {
	tg := newTestGateway(t, "")
	h := tg.initialize(t)
	// A good call first, so the upstream is connected and recording.
	post(t, tg.url, h, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"good"}}}`)

	big := `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"` + strings.Repeat("x", 70<<10) + `"}}}`
	tests := []struct {
		name       string
		headers    map[string]string
		body       string
		wantStatus int
		wantCode   int
	}{
		{"malformed body", h, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"MALFORMED"}`, 400, -32700},
		{"batch", h, `[{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"BATCH"}}}]`, 400, -32600},
		{"duplicate name key", h, `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"rec.echo","name":"rec.crash","arguments":{"text":"DUPLICATE"}}}`, 400, -32600},
		{"case-variant key", h, `{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"Name":"rec.echo","arguments":{"text":"CASEVARIANT"}}}`, 400, -32600},
		{"duplicate argument key", h, `{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"DUPARG","text":"other"}}}`, 400, -32600},
		{"modern Mcp-Name disagrees with body", modernHeaders("tools/call", "rec.crash"),
			`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"MISMATCH"},` + modernMeta + `}}`, 400, -32020},
		{"modern Mcp-Method disagrees with body", modernHeaders("tools/list", ""),
			`{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"METHODMISMATCH"},` + modernMeta + `}}`, 400, -32020},
		{"modern unsupported version", map[string]string{"MCP-Protocol-Version": "2099-01-01", "Mcp-Method": "tools/call", "Mcp-Name": "rec.echo"},
			`{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"VERSION"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2099-01-01","io.modelcontextprotocol/clientCapabilities":{}}}}`, 400, -32022},
		{"body too large", h, big, 413, 0},
		{"unknown session", map[string]string{"Mcp-Session-Id": "nope", "MCP-Protocol-Version": "2025-11-25"}, `{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"NOSESSION"}}}`, 404, 0},
		{"missing session", nil, `{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"MISSINGSESSION"}}}`, 400, 0},
		{"bad origin", map[string]string{"Origin": "http://evil.example.com", "Mcp-Session-Id": h["Mcp-Session-Id"]}, `{"jsonrpc":"2.0","id":13,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"EVILORIGIN"}}}`, 403, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, msg := post(t, tg.url, tt.headers, tt.body)
			if status != tt.wantStatus {
				t.Errorf("status = %d, want %d (%v)", status, tt.wantStatus, msg)
			}
			if tt.wantCode != 0 && errCode(msg) != tt.wantCode {
				t.Errorf("JSON-RPC code = %d, want %d (%v)", errCode(msg), tt.wantCode, msg)
			}
		})
	}
	rec, _ := os.ReadFile(tg.record)
	for _, marker := range []string{"MALFORMED", "BATCH", "DUPLICATE", "CASEVARIANT", "DUPARG", "MISMATCH", "METHODMISMATCH", "VERSION", "xxxx", "NOSESSION", "MISSINGSESSION", "EVILORIGIN"} {
		if bytes.Contains(rec, []byte(marker)) {
			t.Errorf("upstream received the rejected request %s", marker)
		}
	}
	if !bytes.Contains(rec, []byte("good")) {
		t.Errorf("recording upstream saw nothing; the test proves nothing:\n%s", rec)
	}
}

func TestUpstreamCrashGives502ThenRecovers(t *testing.T) {
	tg := newTestGateway(t, "")
	h := tg.initialize(t)
	status, _, msg := post(t, tg.url, h, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"rec.crash","arguments":{}}}`)
	if status != http.StatusBadGateway || errCode(msg) != -31004 {
		t.Fatalf("crash mid-call: status %d code %d (%v), want 502 and -31004", status, errCode(msg), msg)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, _, msg = post(t, tg.url, h, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"after"}}}`)
		if status == http.StatusOK && strings.Contains(fmt.Sprint(msg["result"]), "echo: after") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after restart: status %d, %v", status, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSessionLifecycle(t *testing.T) {
	tg := newTestGateway(t, "")
	h := tg.initialize(t)
	req, _ := http.NewRequest(http.MethodDelete, tg.url, nil)
	req.Header.Set("Mcp-Session-Id", h["Mcp-Session-Id"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE status = %d, want 204", resp.StatusCode)
	}
	if status, _, _ := post(t, tg.url, h, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`); status != http.StatusNotFound {
		t.Errorf("request on a deleted session: status %d, want 404", status)
	}
}

func TestStdioMode(t *testing.T) {
	tg := newTestGateway(t, "")
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- tg.g.ServeStdio(context.Background(), inR, outW); outW.Close() }()
	lines := make(chan string, 16)
	go func() {
		sc := bufioScanner(outR)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	send := func(s string) { io.WriteString(inW, s+"\n") }
	next := func() string {
		select {
		case l := <-lines:
			return l
		case <-time.After(30 * time.Second):
			t.Fatal("no answer on stdout")
			return ""
		}
	}
	send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"desk","version":"1"}}}`)
	if l := next(); !strings.Contains(l, `"protocolVersion":"2025-11-25"`) {
		t.Fatalf("initialize answer: %s", l)
	}
	send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"desktop"}}}`)
	if l := next(); !strings.Contains(l, "echo: desktop") || !strings.Contains(l, `"id":2`) {
		t.Fatalf("tools/call answer: %s", l)
	}
	send(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"rec.echo","name":"x"}}`)
	if l := next(); !strings.Contains(l, "-32600") {
		t.Fatalf("duplicate key answer: %s", l)
	}
	inW.Close()
	if err := <-done; err != nil {
		t.Fatalf("ServeStdio: %v", err)
	}
}

// TestElicitationReachesClientsOfBothEras: a legacy upstream asks for input mid-call; a legacy
// client gets the request on its stream, a stateless client gets an input_required result and
// completes the call by retrying with its answer.
func TestElicitationReachesClientsOfBothEras(t *testing.T) {
	tg := newTestGateway(t, "")

	t.Run("modern client, input_required round trip", func(t *testing.T) {
		meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{}}}`
		status, _, res := post(t, tg.url, modernHeaders("tools/call", "rec.ask"),
			`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rec.ask","arguments":{},`+meta+`}}`)
		result, _ := res["result"].(map[string]any)
		if status != http.StatusOK || result["resultType"] != "input_required" {
			t.Fatalf("first round: status %d, %v; want an input_required result", status, res)
		}
		reqs, _ := result["inputRequests"].(map[string]any)
		if len(reqs) != 1 {
			t.Fatalf("inputRequests = %v, want one elicitation", reqs)
		}
		var key string
		for k, v := range reqs {
			key = k
			if v.(map[string]any)["method"] != "elicitation/create" {
				t.Fatalf("input request %v is not the upstream's elicitation", v)
			}
		}
		state, _ := result["requestState"].(string)
		retry := fmt.Sprintf(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"rec.ask","arguments":{},%s,"inputResponses":{%q:{"action":"accept","content":{"name":"Ada"}}},"requestState":%q}}`, meta, key, state)
		status, _, res = post(t, tg.url, modernHeaders("tools/call", "rec.ask"), retry)
		if status != http.StatusOK || !strings.Contains(fmt.Sprint(res["result"]), "Ada") {
			t.Fatalf("retry: status %d, %v; want the upstream's result built from the answer", status, res)
		}
		status, _, res = post(t, tg.url, modernHeaders("tools/call", "rec.ask"), retry)
		if status != http.StatusBadRequest || errCode(res) != -32602 {
			t.Errorf("replayed requestState: status %d code %d, want 400 -32602", status, errCode(res))
		}
	})

	t.Run("modern client without the capability", func(t *testing.T) {
		_, _, res := post(t, tg.url, modernHeaders("tools/call", "rec.ask"),
			`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"rec.ask","arguments":{},`+modernMeta+`}}`)
		if !strings.Contains(fmt.Sprint(res["result"]), "does not support elicitation/create") {
			t.Errorf("result = %v, want the upstream to have been told the client cannot elicit", res)
		}
	})

	t.Run("legacy client, request relayed on the stream", func(t *testing.T) {
		status, h, _ := post(t, tg.url, nil, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"elicitation":{}},"clientInfo":{"name":"test","version":"1"}}}`)
		if status != http.StatusOK {
			t.Fatal("initialize failed")
		}
		sid := h.Get("Mcp-Session-Id")
		req, _ := http.NewRequest(http.MethodPost, tg.url, strings.NewReader(`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"rec.ask","arguments":{}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Session-Id", sid)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufioScanner(resp.Body)
		answered := false
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok || data == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(data), &m); err != nil {
				t.Fatal(err)
			}
			if m["method"] == "elicitation/create" {
				id, _ := json.Marshal(m["id"])
				st, _, _ := post(t, tg.url, map[string]string{"Mcp-Session-Id": sid}, `{"jsonrpc":"2.0","id":`+string(id)+`,"result":{"action":"accept","content":{"name":"Grace"}}}`)
				if st != http.StatusAccepted {
					t.Fatalf("posting the answer: status %d, want 202", st)
				}
				answered = true
				continue
			}
			if m["id"] == float64(5) {
				if !answered || !strings.Contains(fmt.Sprint(m["result"]), "Grace") {
					t.Fatalf("final result %v, want the answer relayed to the upstream", m)
				}
				return
			}
		}
		t.Fatal("stream ended without the call's result")
	})
}

// upstreamIDOf finds the upstream-side id the gateway gave to the call of tool in the record.
func upstreamIDOf(t *testing.T, record, tool string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		rec, _ := os.ReadFile(record)
		for _, line := range bytes.Split(rec, []byte("\n")) {
			var m struct {
				ID     json.RawMessage       `json:"id"`
				Method string                `json:"method"`
				Params struct{ Name string } `json:"params"`
			}
			if json.Unmarshal(line, &m) == nil && m.Method == "tools/call" && m.Params.Name == tool {
				return string(m.ID)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the upstream never received the %s call", tool)
	return ""
}

// waitForCancel waits until the upstream received notifications/cancelled for id.
func waitForCancel(t *testing.T, record, id string) {
	t.Helper()
	want := []byte(`"requestId":` + id)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		rec, _ := os.ReadFile(record)
		for _, line := range bytes.Split(rec, []byte("\n")) {
			if bytes.Contains(line, []byte("notifications/cancelled")) && bytes.Contains(line, want) {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	rec, _ := os.ReadFile(record)
	t.Fatalf("the upstream was not told that request %s was cancelled:\n%s", id, rec)
}

func TestCancellationReachesUpstream(t *testing.T) {
	tg := newTestGateway(t, "")
	t.Run("legacy notifications/cancelled", func(t *testing.T) {
		h := tg.initialize(t)
		done := make(chan struct{})
		go func() {
			defer close(done)
			post(t, tg.url, h, `{"jsonrpc":"2.0","id":"slow-1","method":"tools/call","params":{"name":"rec.slow","arguments":{}}}`)
		}()
		id := upstreamIDOf(t, tg.record, "slow")
		if st, _, _ := post(t, tg.url, h, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"slow-1","reason":"user stopped"}}`); st != http.StatusAccepted {
			t.Fatalf("cancel notification: status %d, want 202", st)
		}
		waitForCancel(t, tg.record, id)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("the cancelled call's stream did not end")
		}
	})
	t.Run("modern disconnect", func(t *testing.T) {
		os.WriteFile(tg.record, nil, 0o600)
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, tg.url, strings.NewReader(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"rec.slow","arguments":{},`+modernMeta+`}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for k, v := range modernHeaders("tools/call", "rec.slow") {
			req.Header.Set(k, v)
		}
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
			}
		}()
		id := upstreamIDOf(t, tg.record, "slow")
		cancel()
		waitForCancel(t, tg.record, id)
	})
}

// TestListChangedReachesBothEras: an upstream's tools/list_changed reaches a legacy session's
// GET stream and a modern client's subscriptions/listen stream, tagged with its subscription id.
func TestListChangedReachesBothEras(t *testing.T) {
	tg := newTestGateway(t, "")
	h := tg.initialize(t)
	get, _ := http.NewRequest(http.MethodGet, tg.url, nil)
	get.Header.Set("Accept", "text/event-stream")
	get.Header.Set("Mcp-Session-Id", h["Mcp-Session-Id"])
	getResp, err := http.DefaultClient.Do(get)
	if err != nil {
		t.Fatal(err)
	}
	defer getResp.Body.Close()
	listen, _ := http.NewRequest(http.MethodPost, tg.url, strings.NewReader(`{"jsonrpc":"2.0","id":"sub-7","method":"subscriptions/listen","params":{`+modernMeta+`,"notifications":{"toolsListChanged":true}}}`))
	listen.Header.Set("Content-Type", "application/json")
	listen.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range modernHeaders("subscriptions/listen", "") {
		listen.Header.Set(k, v)
	}
	listenResp, err := http.DefaultClient.Do(listen)
	if err != nil {
		t.Fatal(err)
	}
	defer listenResp.Body.Close()
	lines := func(r io.Reader) chan string {
		ch := make(chan string, 16)
		go func() {
			sc := bufioScanner(r)
			for sc.Scan() {
				if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
					ch <- d
				}
			}
			close(ch)
		}()
		return ch
	}
	getLines, listenLines := lines(getResp.Body), lines(listenResp.Body)
	expect := func(ch chan string, what string, check func(string) bool) {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case l, ok := <-ch:
				if !ok {
					t.Fatalf("%s ended early", what)
				}
				if check(l) {
					return
				}
			case <-timeout:
				t.Fatalf("%s: nothing arrived", what)
			}
		}
	}
	expect(listenLines, "listen acknowledgement", func(l string) bool {
		return strings.Contains(l, "notifications/subscriptions/acknowledged") && strings.Contains(l, `"sub-7"`)
	})
	post(t, tg.url, h, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"rec.change","arguments":{}}}`)
	expect(getLines, "legacy GET stream", func(l string) bool { return strings.Contains(l, "notifications/tools/list_changed") })
	expect(listenLines, "modern listen stream", func(l string) bool {
		return strings.Contains(l, "notifications/tools/list_changed") && strings.Contains(l, `"io.modelcontextprotocol/subscriptionId":"sub-7"`)
	})
}

// TestLegacyStreamResumesWithLastEventID: a legacy client that lost its POST stream gets the
// rest of it — here a progress notification and the result — by GET with Last-Event-ID.
func TestLegacyStreamResumesWithLastEventID(t *testing.T) {
	tg := newTestGateway(t, "")
	h := tg.initialize(t)
	req, _ := http.NewRequest(http.MethodPost, tg.url, strings.NewReader(`{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"rec.progress","arguments":{"text":"again"},"_meta":{"progressToken":7}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var firstID string
	for _, line := range strings.Split(string(body), "\n") {
		if id, ok := strings.CutPrefix(line, "id: "); ok {
			firstID = id // the priming event comes first
			break
		}
	}
	if firstID == "" {
		t.Fatalf("the POST stream carried no event ids:\n%s", body)
	}
	get, _ := http.NewRequest(http.MethodGet, tg.url, nil)
	get.Header.Set("Accept", "text/event-stream")
	get.Header.Set("Mcp-Session-Id", h["Mcp-Session-Id"])
	get.Header.Set("Last-Event-ID", firstID)
	resp, err = http.DefaultClient.Do(get)
	if err != nil {
		t.Fatal(err)
	}
	replay, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(replay), "notifications/progress") || !strings.Contains(string(replay), "echo: again") {
		t.Errorf("resuming after %s replayed:\n%s\nwant the progress notification and the result", firstID, replay)
	}
}

// TestSessionOnAnotherInstance: legacy sessions live in the instance that opened them. Another
// instance (a second gateway behind the same load balancer) answers a session it does not hold
// with the 404 that makes a client initialize again, and the new session it opens works there.
func TestSessionOnAnotherInstance(t *testing.T) {
	a, b := newTestGateway(t, ""), newTestGateway(t, "")
	h := a.initialize(t)
	const list = `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	if status, _, _ := post(t, a.url, h, list); status != http.StatusOK {
		t.Fatalf("tools/list on the instance that opened the session: status %d", status)
	}
	status, _, res := post(t, b.url, h, list)
	e, _ := res["error"].(map[string]any)
	if status != http.StatusNotFound || e == nil || !strings.Contains(fmt.Sprint(e["message"]), "send initialize again") {
		t.Fatalf("the session on another instance: status %d %v, want 404 asking for initialize", status, res)
	}
	again := b.initialize(t)
	if again["Mcp-Session-Id"] == h["Mcp-Session-Id"] {
		t.Fatal("the other instance handed out the same session id")
	}
	if status, _, _ := post(t, b.url, again, list); status != http.StatusOK {
		t.Errorf("tools/list on the re-initialized session: status %d", status)
	}
}
