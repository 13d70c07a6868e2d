package gateway

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/contain"
)

// TestDenialBurstPutsPrincipalUnderApproval: a principal probing with five denied calls in a
// minute raises a high denial_burst alert; the playbook puts its every call under human
// approval, so its next call — one the policy allows — is held (and, with no approver
// configured, refused saying so), while another principal's is served.
func TestDenialBurstPutsPrincipalUnderApproval(t *testing.T) {
	dir := t.TempDir()
	keysDB := filepath.Join(dir, "keys.db")
	policyFile := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(`roles:
  - role: Agent
    permissions:
      - tool_name: rec.echo
        constraints:
          text: {type: string, pattern: "^ok"}
bindings:
  - role: Agent
    principals: [probe-agent, quiet-agent]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	section, db, _ := auditConfig(t)
	tg := newTestGateway(t, fmt.Sprintf(`api_keys_database: %q
policy_file: %q
containment:
  anomaly:
    approver_role: SecurityDesk
    playbook:
      - {signal: denial_burst, min_severity: high, actions: [alert, require_approval]}
%s`, keysDB, policyFile, section))
	probe, _ := newKey(t, keysDB, "probe-agent")
	quiet, _ := newKey(t, keysDB, "quiet-agent")
	call := func(key, text string, n int) (int, map[string]any) {
		h := modernHeaders("tools/call", "rec.echo")
		h["Authorization"] = "Bearer " + key
		st, _, msg := post(t, tg.url, h, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":%q},%s}}`, n, text, modernMeta))
		return st, msg
	}
	if st, msg := call(probe, "ok first", 1); st != http.StatusOK {
		t.Fatalf("an allowed call before probing: %d %v", st, msg)
	}
	for i := range 5 {
		if st, _ := call(probe, "rm -rf /", 10+i); st != http.StatusForbidden {
			t.Fatalf("probe %d: status %d, want 403", i, st)
		}
	}
	eventually(t, "the require-approval response", func() bool {
		_, ok := tg.g.guard.Blocked(contain.BlockApproval, "probe-agent")
		return ok
	})
	st, msg := call(probe, "ok again", 20)
	if st != http.StatusForbidden || !strings.Contains(fmt.Sprint(msg["error"]), "approv") {
		t.Fatalf("the prober's next allowed call: %d %v, want it held for approval (refused: no approver)", st, msg)
	}
	if strings.Contains(readRecord(t, tg.record), "ok again") {
		t.Error("the held call reached the upstream")
	}
	if st, msg := call(quiet, "ok", 30); st != http.StatusOK {
		t.Errorf("another principal: %d %v", st, msg)
	}
	alerts := recordsOf(t, db, audit.KindAlert)
	if len(alerts) != 1 || alerts[0].Principal != "probe-agent" || !strings.Contains(string(alerts[0].Detail), `"denial_burst"`) || !strings.Contains(string(alerts[0].Detail), `"high"`) {
		t.Fatalf("alert records: %+v", alerts)
	}
}
