package demo_test

import (
	"bufio"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strings"
	"testing"
)

// These tests speak raw HTTP, as the gateway does, to pin what HTTPHandler expects from
// each era's requests and what it answers.

type wireReply struct {
	status int
	header http.Header
	body   string // raw body for non-JSON-RPC answers
	msg    struct {
		ID     any             `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int64  `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
}

// post sends one JSON-RPC message and decodes the reply, whether it comes as
// application/json or as the first event of a text/event-stream.
func post(t *testing.T, url string, header map[string]string, body string) wireReply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) wireReply {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := wireReply{status: resp.StatusCode, header: resp.Header}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	r.body = string(data)
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch mt {
	case "text/event-stream":
		sc := bufio.NewScanner(strings.NewReader(r.body))
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok && strings.TrimSpace(d) != "" {
				if err := json.Unmarshal([]byte(d), &r.msg); err != nil {
					t.Fatalf("event data %q: %v", d, err)
				}
				break
			}
		}
	case "application/json":
		if err := json.Unmarshal(data, &r.msg); err != nil {
			t.Fatalf("JSON body %q: %v", data, err)
		}
	}
	return r
}

const modernMeta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"wire","version":"1"}}`

func modernHeaders(method, name string) map[string]string {
	h := map[string]string{"Mcp-Protocol-Version": modernVersion, "Mcp-Method": method}
	if name != "" {
		h["Mcp-Name"] = name
	}
	return h
}

func TestHTTPModernWire(t *testing.T) {
	t.Parallel()
	url := newHTTPServer(t, optionsAt(fixedNow)).URL + mountPath
	heatmapCall := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get_sector_heatmap","arguments":{"region":"Vietnam"},` + modernMeta + `}}`
	withRegion := modernHeaders("tools/call", "get_sector_heatmap")
	withRegion["Mcp-Param-Region"] = "Vietnam"

	tests := []struct {
		name       string
		header     map[string]string
		body       string
		wantStatus int
		wantCode   int64  // JSON-RPC error code; 0 = success
		wantResult string // substring of the result
	}{
		{
			name:       "discover lists both eras",
			header:     modernHeaders("server/discover", ""),
			body:       `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{` + modernMeta + `}}`,
			wantStatus: http.StatusOK,
			wantResult: `"supportedVersions":["2026-07-28","2025-11-25","2025-06-18","2025-03-26","2024-11-05"]`,
		},
		{
			name:       "tools/list without a session",
			header:     modernHeaders("tools/list", ""),
			body:       `{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{` + modernMeta + `}}`,
			wantStatus: http.StatusOK,
			wantResult: `"name":"update_client_profile"`,
		},
		{
			name:       "tools/call with Mcp-Param-Region",
			header:     withRegion,
			body:       heatmapCall,
			wantStatus: http.StatusOK,
			wantResult: `"region":"Vietnam"`,
		},
		{
			name:       "tools/call without Mcp-Param-Region",
			header:     modernHeaders("tools/call", "get_sector_heatmap"),
			body:       heatmapCall,
			wantStatus: http.StatusBadRequest,
			wantCode:   -32020,
		},
		{
			name:       "Mcp-Method disagrees with the body",
			header:     modernHeaders("tools/list", ""),
			body:       `{"jsonrpc":"2.0","id":4,"method":"prompts/list","params":{` + modernMeta + `}}`,
			wantStatus: http.StatusBadRequest,
			wantCode:   -32020,
		},
		{
			name:       "Mcp-Name disagrees with the body",
			header:     map[string]string{"Mcp-Protocol-Version": modernVersion, "Mcp-Method": "tools/call", "Mcp-Name": "get_stock_analysis", "Mcp-Param-Region": "Vietnam"},
			body:       heatmapCall,
			wantStatus: http.StatusBadRequest,
			wantCode:   -32020,
		},
		{
			name:       "_meta version disagrees with the header",
			header:     modernHeaders("tools/list", ""),
			body:       `{"jsonrpc":"2.0","id":5,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2025-11-25"}}}`,
			wantStatus: http.StatusBadRequest,
			wantCode:   -32020,
		},
		{
			name:       "unsupported future version",
			header:     map[string]string{"Mcp-Protocol-Version": "2099-01-01", "Mcp-Method": "tools/list"},
			body:       `{"jsonrpc":"2.0","id":6,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2099-01-01","io.modelcontextprotocol/clientCapabilities":{}}}}`,
			wantStatus: http.StatusBadRequest,
			wantCode:   -32022,
		},
		{
			name:       "unknown method",
			header:     modernHeaders("tools/destroy", ""),
			body:       `{"jsonrpc":"2.0","id":7,"method":"tools/destroy","params":{` + modernMeta + `}}`,
			wantStatus: http.StatusNotFound,
			wantCode:   -32601,
		},
		{
			name:       "initialize is not a 2026-07-28 method",
			header:     modernHeaders("initialize", ""),
			body:       `{"jsonrpc":"2.0","id":8,"method":"initialize","params":{"protocolVersion":"2026-07-28","capabilities":{},"clientInfo":{"name":"wire","version":"1"},` + modernMeta + `}}`,
			wantStatus: http.StatusNotFound,
			wantCode:   -32601,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := post(t, url, tc.header, tc.body)
			if r.status != tc.wantStatus {
				t.Errorf("status = %d, want %d; body %s", r.status, tc.wantStatus, r.body)
			}
			if sid := r.header.Get("Mcp-Session-Id"); sid != "" {
				t.Errorf("2026-07-28 reply carries Mcp-Session-Id %q", sid)
			}
			switch {
			case tc.wantCode != 0:
				if r.msg.Error == nil || r.msg.Error.Code != tc.wantCode {
					t.Errorf("error = %+v, want code %d; body %s", r.msg.Error, tc.wantCode, r.body)
				}
			case r.msg.Error != nil:
				t.Errorf("error %+v, want a result", r.msg.Error)
			case !strings.Contains(string(r.msg.Result), tc.wantResult):
				t.Errorf("result %s lacks %s", r.msg.Result, tc.wantResult)
			}
		})
	}
}

// TestHTTPLegacyWire walks a 2025-11-25 session: initialize without a version header,
// requests with Mcp-Session-Id, DELETE, then the session is gone.
func TestHTTPLegacyWire(t *testing.T) {
	t.Parallel()
	url := newHTTPServer(t, optionsAt(fixedNow)).URL + mountPath

	r := post(t, url, nil, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"wire","version":"1"}}}`)
	sid := r.header.Get("Mcp-Session-Id")
	if r.status != http.StatusOK || sid == "" || !strings.Contains(string(r.msg.Result), `"protocolVersion":"2025-11-25"`) {
		t.Fatalf("initialize: status %d, session %q, body %s", r.status, sid, r.body)
	}
	session := map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": legacyVersion}

	if r := post(t, url, session, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); r.status != http.StatusAccepted {
		t.Errorf("notifications/initialized: status %d, want 202", r.status)
	}
	r = post(t, url, session, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_client_portfolio","arguments":{"client_id":"C1004"}}}`)
	if r.status != http.StatusOK || !strings.Contains(string(r.msg.Result), `"full_name":"Marie Dubois"`) {
		t.Errorf("tools/call in session: status %d, body %s", r.status, r.body)
	}
	// Headers are not checked against the body before 2026-07-28.
	mismatched := map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": legacyVersion, "Mcp-Method": "prompts/list"}
	if r := post(t, url, mismatched, `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`); r.status != http.StatusOK || r.msg.Error != nil {
		t.Errorf("legacy request with a stray Mcp-Method header: status %d, body %s", r.status, r.body)
	}

	req, _ := http.NewRequest(http.MethodDelete, url, nil)
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("Mcp-Protocol-Version", legacyVersion)
	if r := do(t, req); r.status != http.StatusNoContent {
		t.Errorf("DELETE session: status %d, want 204", r.status)
	}
	if r := post(t, url, session, `{"jsonrpc":"2.0","id":4,"method":"tools/list"}`); r.status != http.StatusNotFound {
		t.Errorf("request in deleted session: status %d, want 404", r.status)
	}
	unknown := map[string]string{"Mcp-Session-Id": "no-such-session", "Mcp-Protocol-Version": legacyVersion}
	if r := post(t, url, unknown, `{"jsonrpc":"2.0","id":5,"method":"tools/list"}`); r.status != http.StatusNotFound {
		t.Errorf("request in unknown session: status %d, want 404", r.status)
	}
}

func TestHTTPLimits(t *testing.T) {
	t.Parallel()
	url := newHTTPServer(t, nil).URL + mountPath
	huge := `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"pad":"` + strings.Repeat("x", 1<<20) + `"}}`

	tests := []struct {
		name       string
		header     map[string]string
		body       string
		wantStatus int
	}{
		{"body over 1 MiB, legacy", nil, huge, http.StatusRequestEntityTooLarge},
		{"body over 1 MiB, 2026-07-28", modernHeaders("tools/list", ""), huge, http.StatusRequestEntityTooLarge},
		{"non-loopback Host on a loopback listener", map[string]string{"Host": "finance.example.com"}, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			for k, v := range tc.header {
				if k == "Host" {
					req.Host = v
					continue
				}
				req.Header.Set(k, v)
			}
			if r := do(t, req); r.status != tc.wantStatus {
				t.Errorf("status = %d, want %d; body %.200s", r.status, tc.wantStatus, r.body)
			}
		})
	}
}
