package mcp

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// These tests hold this package against the go-sdk v1.8.0, a peer that speaks both eras:
// what its modern client sends passes ValidateRequestHeaders, what RequestHeaders builds passes
// its server's validation, and its servers' errors are classified into the right era. They
// run on loopback only.

// newSDKServer returns a go-sdk server with one tool, prompt and resource from the spec's
// examples.
func newSDKServer(t *testing.T) *sdk.Server {
	t.Helper()
	s := sdk.NewServer(&sdk.Implementation{Name: "fixture", Version: "1.0.0"}, nil)
	s.AddTool(&sdk.Tool{Name: "execute_sql", Description: "Execute SQL", InputSchema: jsontext.Value(specExecuteSQLSchema)},
		func(_ context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "ok"}}}, nil
		})
	s.AddPrompt(&sdk.Prompt{Name: "code_review"}, func(context.Context, *sdk.GetPromptRequest) (*sdk.GetPromptResult, error) {
		return &sdk.GetPromptResult{Messages: []*sdk.PromptMessage{{Role: "user", Content: &sdk.TextContent{Text: "review"}}}}, nil
	})
	s.AddResource(&sdk.Resource{URI: "file:///projects/myapp/config.json", Name: "config"},
		func(_ context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
			return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{{URI: req.Params.URI, Text: "{}"}}}, nil
		})
	return s
}

// validatingProxy checks every modern request with ValidateRequestHeaders, records the
// failures, and passes the request on.
type validatingProxy struct {
	next     http.Handler
	bindings map[string][]ParamBinding // by tool name

	mu       sync.Mutex
	failures []string
	methods  []string
}

func (p *validatingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var env struct {
		ID     jsontext.Value `json:"id"`
		Method string         `json:"method"`
		Params jsontext.Value `json:"params"`
	}
	if r.Method == http.MethodPost && json.Unmarshal(body, &env) == nil && env.ID != nil &&
		RequestEra(r.Header, env.Method, env.Params) == EraModern {
		var bindings []ParamBinding
		if env.Method == MethodToolsCall {
			if params, err := ReadParams(env.Params); err == nil {
				var name string
				_ = json.Unmarshal(params.Name, &name)
				bindings = p.bindings[name]
			}
		}
		p.mu.Lock()
		p.methods = append(p.methods, env.Method)
		if err := ValidateRequestHeaders(r.Header, env.Method, env.Params, bindings); err != nil {
			p.failures = append(p.failures, env.Method+": "+err.Error())
		}
		p.mu.Unlock()
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	p.next.ServeHTTP(w, r)
}

func TestInteropGoSDKClientPassesValidation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv := newSDKServer(t)
	proxy := &validatingProxy{
		next:     sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv }, &sdk.StreamableHTTPOptions{Stateless: true, JSONResponse: true}),
		bindings: map[string][]ParamBinding{"execute_sql": mustBindings(t, specExecuteSQLSchema)},
	}
	ts := httptest.NewServer(proxy)
	defer ts.Close()

	client := sdk.NewClient(&sdk.Implementation{Name: "interop", Version: "1.0.0"}, nil)
	cs, err := client.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: ts.URL}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer cs.Close()
	if _, err := cs.ListTools(ctx, nil); err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	for _, region := range []string{"us-west1", " padded ", "Hello, 世界", "=?base64?literal?="} {
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "execute_sql", Arguments: map[string]any{"region": region, "query": "SELECT 1"}})
		if err != nil || res.IsError {
			t.Fatalf("tools/call with region %q: %v %+v", region, err, res)
		}
	}
	if _, err := cs.GetPrompt(ctx, &sdk.GetPromptParams{Name: "code_review"}); err != nil {
		t.Fatalf("prompts/get: %v", err)
	}
	if _, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: "file:///projects/myapp/config.json"}); err != nil {
		t.Fatalf("resources/read: %v", err)
	}

	proxy.mu.Lock()
	defer proxy.mu.Unlock()
	if len(proxy.failures) > 0 {
		t.Errorf("ValidateRequestHeaders rejected what the go-sdk client sent:\n%s", strings.Join(proxy.failures, "\n"))
	}
	for _, m := range []string{MethodServerDiscover, MethodToolsList, MethodToolsCall, MethodPromptsGet, MethodResourcesRead} {
		if !strings.Contains(strings.Join(proxy.methods, " "), m) {
			t.Errorf("the go-sdk client sent no modern %s request (saw %v)", m, proxy.methods)
		}
	}
}

// post sends one JSON-RPC request with the given headers and returns the status and body.
func post(t *testing.T, url string, h http.Header, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func TestInteropRequestHeadersAgainstGoSDKServer(t *testing.T) {
	srv := newSDKServer(t)
	ts := httptest.NewServer(sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv },
		&sdk.StreamableHTTPOptions{Stateless: true, JSONResponse: true}))
	defer ts.Close()
	bindings := mustBindings(t, specExecuteSQLSchema)

	params := withMeta(`"name":"execute_sql","arguments":{"region":"Hello, 世界","query":"SELECT 1"}`)
	h, err := RequestHeaders(MethodToolsCall, params, bindings)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":` + string(params) + `}`)
	if status, resp := post(t, ts.URL, h, body); status != http.StatusOK || !bytes.Contains(resp, []byte(`"result"`)) {
		t.Fatalf("go-sdk server answered %d %s to headers built by RequestHeaders %v", status, resp, h)
	}

	// A mismatched Mcp-Param header is a modern error: the client stays modern.
	h.Set("Mcp-Param-Region", "us-east1")
	status, resp := post(t, ts.URL, h, body)
	if got := ClassifyHTTPError(status, resp); !got.Modern || got.Code != CodeHeaderMismatch {
		t.Errorf("go-sdk answer %d %s classified as %+v, want a modern HeaderMismatch", status, resp, got)
	}

	// An unsupported version is a modern error that names the versions to retry with.
	old := []byte(`{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2099-01-01","io.modelcontextprotocol/clientCapabilities":{}}}}`)
	status, resp = post(t, ts.URL, http.Header{"Mcp-Protocol-Version": {"2099-01-01"}, "Mcp-Method": {"tools/list"}}, old)
	got := ClassifyHTTPError(status, resp)
	if v, ok := Negotiate(got.Supported, SupportedModern()); !got.Modern || !ok || v != Version20260728 {
		t.Errorf("go-sdk answer %d %s classified as %+v; want modern, retry with 2026-07-28", status, resp, got)
	}
}

func TestInteropGoSDKStatefulServerIsLegacyForModernRequests(t *testing.T) {
	srv := newSDKServer(t)
	ts := httptest.NewServer(sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv }, &sdk.StreamableHTTPOptions{JSONResponse: true}))
	defer ts.Close()

	params := withMeta("")
	h, err := RequestHeaders(MethodToolsList, params, nil)
	if err != nil {
		t.Fatal(err)
	}
	status, resp := post(t, ts.URL, h, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":`+string(params)+`}`))
	got := ClassifyHTTPError(status, resp)
	v, ok := Negotiate(got.Supported, Supported())
	if !ok || !IsLegacy(v) {
		t.Fatalf("stateful go-sdk answer %d %s classified as %+v; want a version to initialize with", status, resp, got)
	}
	t.Logf("stateful go-sdk server: %d, classified %+v, initialize with %s", status, got, v)
}
