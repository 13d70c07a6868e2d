package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/store"
)

// TestPolicyReloadIsRecordedOncePerChange: saving the policy file without a change (or a SIGHUP)
// leaves no record; a change leaves one policy_reload record with the file's SHA-256, the one it
// replaced and the roles that changed.
func TestPolicyReloadIsRecordedOncePerChange(t *testing.T) {
	section, db, _ := auditConfig(t)
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	const roleR = "roles:\n  - role: R\n    permissions:\n      - tool_name: rec.echo\n"
	const bindings = "bindings:\n  - role: R\n    principals: [anonymous]\n"
	v1 := roleR + bindings
	writeFile(t, policyFile, []byte(v1))
	tg := newTestGateway(t, fmt.Sprintf("policy_file: %q\n%s", policyFile, section))
	for range 5 { // an editor saving the same bytes, a SIGHUP
		writeFile(t, policyFile, []byte(v1))
		if err := tg.g.ReloadPolicy(); err != nil {
			t.Fatal(err)
		}
	}
	v2 := roleR + "  - role: Ops\n    permissions:\n      - tool_name: rec.crash\n" + bindings
	writeFile(t, policyFile, []byte(v2))
	for range 3 {
		if err := tg.g.ReloadPolicy(); err != nil {
			t.Fatal(err)
		}
	}
	var reloads []map[string]any
	_ = openStore(t, db).Scan(context.Background(), 0, func(r *store.Record) error {
		rec, err := audit.ParseRecord(r.Data)
		if err == nil && rec.Kind == audit.KindPolicyReload {
			var d map[string]any
			_ = json.Unmarshal(rec.Detail, &d)
			reloads = append(reloads, d)
		}
		return nil
	})
	if len(reloads) != 1 {
		t.Fatalf("%d policy_reload records for one change, want 1: %v", len(reloads), reloads)
	}
	hash := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	d := reloads[0]
	if d["sha256"] != hash(v2) || d["previous_sha256"] != hash(v1) || d["change"] != "roles added: Ops" {
		t.Errorf("reload record = %v; want sha256 %s, previous_sha256 %s and the added role", d, hash(v2), hash(v1))
	}
}
