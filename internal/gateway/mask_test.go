package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/demo"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcp"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/policy"
	"github.com/mcpguard/mcpguard/internal/redact"
	"github.com/mcpguard/mcpguard/internal/store"
)

// Anna Schmidt's record in the demo's client book (internal/demo/clients.go), as the finance
// example's masking rules show it to a caller without unmasked access.
const (
	annaName, annaEmail, annaPhone = "Anna Schmidt", "anna.schmidt@example.com", "+4915209876543"
	annaIBAN, annaAccount          = "DE76370400444711081500", "4711081500"
	annaAddress                    = "Friedrichstraße 123, 10117 Berlin, Germany"
)

// annaMasked is what the finance example's rules make of Anna's personal data; tok makes the
// tokens, keyed by the audit log's redaction key.
func annaMasked(tok *redact.Redactor) map[string]any {
	return map[string]any{
		"full_name": tok.Token([]byte(annaName)), "address": tok.Token([]byte(annaAddress)), "phone": tok.Token([]byte(annaPhone)),
		"email": "a***@example.com", "iban": "DE76 **** **** 1500", "account_number": "****1500",
	}
}

// annaMaskedCounts is what the outcome record counts: each value once in structuredContent and
// once in the text block that serialises it.
var annaMaskedCounts = map[string]int{"client-identity": 6, "client-email": 2, "client-accounts": 4}

// TestMaskResult calls maskResult directly on the demo's portfolio result, as the pipeline's
// step 8 does.
func TestMaskResult(t *testing.T) {
	t.Parallel()
	loader, err := policy.NewLoader("../../examples/policies/finance.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := redact.New([]byte(strings.Repeat("k", 40)), nil)
	if err != nil {
		t.Fatal(err)
	}
	g := &Gateway{policy: loader, auditRedactor: tok, logger: slog.New(slog.DiscardHandler)}
	sc := fmt.Sprintf(`{"client_id":"C1001","full_name":%q,"email":%q,"phone":%q,"address":%q,"iban":%q,"account_number":%q,"risk_profile":"balanced"}`,
		annaName, annaEmail, annaPhone, annaAddress, annaIBAN, annaAccount)
	result := `{"content":[{"type":"text","text":` + string(jsonrpc.Quote(sc)) + `}],"structuredContent":` + sc + `}`
	pm := &mcpguard.Principal{Subject: "pm-1", Groups: []string{"portfolio-managers"}}
	officer := &mcpguard.Principal{Subject: "co-1", Groups: []string{"compliance"}}
	call := &mcpguard.Call{Method: mcp.MethodToolsCall, Kind: mcpguard.CallTool, Target: "finance.get_client_portfolio"}

	rep := reply{result: []byte(result)}
	counts := g.maskResult(&caller{principal: pm}, call, &rep)
	if diff := cmp.Diff(annaMaskedCounts, counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	sc1, text := portfolioOf(t, rep.result)
	for _, got := range []map[string]any{sc1, text} {
		for k, want := range annaMasked(tok) {
			if got[k] != want {
				t.Errorf("%s = %v, want %v", k, got[k], want)
			}
		}
		if got["client_id"] != "C1001" || got["risk_profile"] != "balanced" {
			t.Errorf("what no rule selects changed: %v", got)
		}
	}

	for _, tt := range []struct {
		name string
		c    *caller
		call *mcpguard.Call
		rep  reply
	}{
		{"a role with unmasked access", &caller{principal: officer}, call, reply{result: []byte(result)}},
		{"an error reply", &caller{principal: pm}, call, reply{err: jsonrpc.NewError(-32603, annaName)}},
		{"another tool", &caller{principal: pm}, &mcpguard.Call{Method: mcp.MethodToolsCall, Kind: mcpguard.CallTool, Target: "finance.get_stock_analysis"}, reply{result: []byte(result)}},
		{"a prompt", &caller{principal: pm}, &mcpguard.Call{Method: mcp.MethodPromptsGet, Kind: mcpguard.CallPrompt, Target: "finance.get_client_portfolio"}, reply{result: []byte(result)}},
	} {
		rep := tt.rep
		if counts := g.maskResult(tt.c, tt.call, &rep); counts != nil || string(rep.result) != string(tt.rep.result) || rep.err != tt.rep.err {
			t.Errorf("%s: masked %v, result %s", tt.name, counts, rep.result)
		}
	}
	if counts := (&Gateway{}).maskResult(&caller{principal: pm}, call, &rep); counts != nil {
		t.Errorf("without a policy: masked %v", counts)
	}

	// A result that cannot be masked never reaches the client.
	bad := reply{result: []byte(`{"structuredContent":{"full_name":"` + annaName + `"`)}
	if counts := g.maskResult(&caller{principal: pm}, call, &bad); counts != nil || bad.result != nil || bad.err == nil ||
		bad.err.Code != mcpguard.CodeUpstreamBadReply || bad.status != http.StatusBadGateway || strings.Contains(bad.err.Message, annaName) {
		t.Errorf("an unmaskable result: %v %+v", counts, bad)
	}
}

// portfolioOf returns a portfolio result's structuredContent and its text block decoded.
func portfolioOf(t *testing.T, result []byte) (sc, text map[string]any) {
	t.Helper()
	var r struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
		StructuredContent map[string]any `json:"structuredContent"`
	}
	if err := json.Unmarshal(result, &r); err != nil {
		t.Fatalf("result %s: %v", result, err)
	}
	if len(r.Content) == 0 {
		t.Fatalf("result %s has no content", result)
	}
	if err := json.Unmarshal([]byte(r.Content[0].Text), &text); err != nil {
		t.Fatalf("text block %q: %v", r.Content[0].Text, err)
	}
	return r.StructuredContent, text
}

// TestResultMaskingThroughGateway is issue 16's "done when": through the gateway, in front of the
// demo server with the finance example's policy, the same portfolio call returns masked data to
// PortfolioManagerAI and clear data to ComplianceOfficer, in both eras, and the audit outcome
// record names the masking rules and how many values each masked. It needs maskResult in the
// pipeline's step 8 and its counts in the outcome record.
func TestResultMaskingThroughGateway(t *testing.T) {
	section, db, _ := auditConfig(t)
	tok, err := redact.New([]byte(strings.Repeat("k", 40)), nil) // auditConfig's redaction key
	if err != nil {
		t.Fatal(err)
	}
	upstreamSrv := httptest.NewServer(demo.HTTPHandler(nil))
	t.Cleanup(upstreamSrv.Close)
	iss := newTestIssuer(t)
	const resource, issuer = "http://127.0.0.1/mcp", "https://idp.example.com"
	policyFile, err := filepath.Abs("../../examples/policies/finance.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
listen: 127.0.0.1:0
policy_file: %q
auth: {resource: %q, issuer: %q, jwks_url: %q}
upstreams:
  - name: finance
    http: {url: %q}
%s`, policyFile, resource, issuer, iss.jwks.URL, upstreamSrv.URL, section)), "gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g, err := newFromConfig(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.Start(ctx)
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close(); cancel(); g.Close() })
	url := srv.URL + "/mcp"
	bearer := func(sub, group string) string {
		claims := jwt.MapClaims{"sub": sub, "groups": []string{group}, "iss": issuer, "aud": resource, "exp": time.Now().Add(time.Hour).Unix()}
		return "Bearer " + iss.token(t, claims)
	}
	const args = `{"client_id":"C1001"}`
	legacy := func(auth string) map[string]any {
		t.Helper()
		st, h, msg := post(t, url, map[string]string{"Authorization": auth}, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
		if st != http.StatusOK {
			t.Fatalf("initialize: %d %v", st, msg)
		}
		hdr := map[string]string{"Authorization": auth, "Mcp-Session-Id": h.Get("Mcp-Session-Id"), "MCP-Protocol-Version": "2025-11-25"}
		st, _, msg = post(t, url, hdr, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"finance.get_client_portfolio","arguments":`+args+`}}`)
		if st != http.StatusOK || msg["result"] == nil {
			t.Fatalf("legacy portfolio call: %d %v", st, msg)
		}
		return msg
	}
	modern := func(auth string) map[string]any {
		t.Helper()
		hdr := modernHeaders("tools/call", "finance.get_client_portfolio")
		hdr["Authorization"] = auth
		st, _, msg := post(t, url, hdr, `{"jsonrpc":"2.0","id":"m1","method":"tools/call","params":{"name":"finance.get_client_portfolio","arguments":`+args+`,`+modernMeta+`}}`)
		if st != http.StatusOK || msg["result"] == nil {
			t.Fatalf("modern portfolio call: %d %v", st, msg)
		}
		return msg
	}
	resultOf := func(msg map[string]any) []byte {
		b, err := json.Marshal(msg["result"])
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pm, officer := bearer("pm-1", "portfolio-managers"), bearer("co-1", "compliance")
	for era, call := range map[string]func(string) map[string]any{"legacy": legacy, "modern": modern} {
		masked, clear := resultOf(call(pm)), resultOf(call(officer))
		sc, text := portfolioOf(t, clear)
		for _, got := range []map[string]any{sc, text} {
			if got["full_name"] != annaName || got["iban"] != annaIBAN || got["email"] != annaEmail {
				t.Errorf("%s era: ComplianceOfficer's result is not in clear: %v", era, got)
			}
		}
		var inClear []string
		for _, clear := range []string{annaName, annaEmail, annaPhone, annaIBAN, annaAccount, "Friedrichstra"} {
			if strings.Contains(string(masked), clear) {
				inClear = append(inClear, clear)
			}
		}
		if len(inClear) > 0 {
			t.Errorf("%s era: PortfolioManagerAI's result holds %q in clear — is maskResult in pipeline.go's step 8?\n%s", era, inClear, masked)
			continue
		}
		sc, text = portfolioOf(t, masked)
		for _, got := range []map[string]any{sc, text} {
			for k, want := range annaMasked(tok) {
				if got[k] != want {
					t.Errorf("%s era: PortfolioManagerAI's %s = %v, want %v", era, k, got[k], want)
				}
			}
			if got["client_id"] != "C1001" || got["holdings"] == nil {
				t.Errorf("%s era: what no rule selects is gone: %v", era, got)
			}
		}
	}

	// The outcome records: PortfolioManagerAI's name the rules and count what they masked;
	// ComplianceOfficer's mask nothing.
	st := openStore(t, db)
	want := map[string][]map[string]int{"pm-1": {annaMaskedCounts, annaMaskedCounts}, "co-1": {nil, nil}}
	var got map[string][]map[string]int
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		got = map[string][]map[string]int{}
		_ = st.Scan(context.Background(), 0, func(r *store.Record) error {
			rec, err := audit.ParseRecord(r.Data)
			if err == nil && rec.Kind == audit.KindOutcome && rec.Tool == "finance.get_client_portfolio" {
				got[rec.Principal] = append(got[rec.Principal], rec.Outcome.Masked)
			}
			return nil
		})
		if len(got["pm-1"])+len(got["co-1"]) == 4 {
			break
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcome records' masked counts by principal (-want +got) — does the pipeline pass maskResult's counts to the outcome record?\n%s", diff)
	}
}
