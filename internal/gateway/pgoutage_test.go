package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/store"
	"github.com/mcpguard/mcpguard/internal/store/postgres"
	"golang.org/x/mod/sumdb/note"
)

// TestPostgresOutage: with the audit log on PostgreSQL, a database that goes away makes calls
// fail closed — 503 with Retry-After, none forwarded — and once it is back, calls are served
// again without restarting the gateway, within 30 s; the log then verifies, holding every call
// that was served and none that was refused.
func TestPostgresOutage(t *testing.T) {
	pg := startPostgres(t)
	section, db, verifierKey := auditConfig(t)
	section = strings.Replace(section, fmt.Sprintf("database: %q", db), fmt.Sprintf("database: %q", pg.dsn()), 1)
	tg := newTestGateway(t, section)
	h := modernHeaders("tools/call", "rec.echo")
	call := func(text string) (int, http.Header) {
		status, hdr, _ := post(t, tg.url, h, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"`+text+`"},`+modernMeta+`}}`)
		return status, hdr
	}
	var served []string
	for i := range 3 {
		text := fmt.Sprintf("before-%d", i)
		if status, _ := call(text); status != http.StatusOK {
			t.Fatalf("a call before the outage: status %d", status)
		}
		served = append(served, text)
	}

	pg.stop()
	for i := range 3 {
		status, hdr := call(fmt.Sprintf("DURING-OUTAGE-%d", i))
		if status != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
			t.Fatalf("a call with PostgreSQL down: status %d, Retry-After %q; want 503 with Retry-After", status, hdr.Get("Retry-After"))
		}
	}
	if strings.Contains(readRecord(t, tg.record), "DURING-OUTAGE") {
		t.Fatal("a call refused during the outage reached the upstream")
	}

	pg.start()
	back := time.Now()
	deadline := back.Add(30 * time.Second)
	for n := 0; ; n++ {
		text := fmt.Sprintf("after-%d", n)
		status, _ := call(text)
		if status == http.StatusOK {
			served = append(served, text)
			t.Logf("served again %v after PostgreSQL returned, at the %d. try", time.Since(back).Round(time.Millisecond), n+1)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls still fail %v after PostgreSQL returned (last status %d)", time.Since(back), status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := range 3 {
		text := fmt.Sprintf("later-%d", i)
		if status, _ := call(text); status != http.StatusOK {
			t.Fatalf("a call after the recovery: status %d", status)
		}
		served = append(served, text)
	}

	// The log verifies, and holds exactly the calls that were served.
	ctx := context.Background()
	st, err := postgres.Open(ctx, pg.dsn(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, st, audit.VerifyOptions{Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("the log does not verify after the outage: %v", rep.Problems)
	}
	var recorded []string
	err = st.Scan(ctx, 0, func(r *store.Record) error {
		rec, err := audit.ParseRecord(r.Data)
		if err == nil && rec.Kind == audit.KindToolCall && rec.Tool == "rec.echo" {
			recorded = append(recorded, string(rec.Arguments))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(recorded, "\n")
	for _, text := range served {
		if !strings.Contains(all, `"`+text+`"`) {
			t.Errorf("the served call %q has no call record:\n%s", text, all)
		}
	}
	if strings.Contains(all, "DURING-OUTAGE") {
		t.Errorf("a call refused during the outage has a call record:\n%s", all)
	}
}
