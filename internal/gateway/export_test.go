package gateway

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
)

// TestExportSinks runs calls carrying canary secrets through a gateway whose audit log exports
// to a JSON Lines file, a live syslog receiver, a webhook that hangs and a syslog receiver that
// is down. Every call succeeds (the sinks are best-effort and never hold up the durable path),
// the file and the live receiver get the call and outcome records in order, and no canary
// appears in either in clear.
func TestExportSinks(t *testing.T) {
	section, _, _ := auditConfig(t)
	dir := t.TempDir()
	jsonl := filepath.Join(dir, "audit.jsonl")
	hang := make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	t.Cleanup(hook.Close)
	t.Cleanup(func() { close(hang) }) // runs first: release the handlers, then close the server
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downSyslog := ln.Addr().String()
	ln.Close()
	// A live syslog receiver keeps every byte it is sent.
	live, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Close() })
	var syslogMu sync.Mutex
	var syslogBytes []byte
	go func() {
		for {
			c, err := live.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					syslogMu.Lock()
					syslogBytes = append(syslogBytes, buf[:n]...)
					syslogMu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	section += fmt.Sprintf(`  sinks:
    - name: file
      jsonl:
        path: %q
    - name: hanging-hook
      buffer: 4
      webhook:
        url: %q
    - name: down-syslog
      buffer: 4
      syslog:
        address: %q
    - name: live-syslog
      syslog:
        address: %q
`, jsonl, hook.URL+"/ingest", downSyslog, live.Addr().String())
	tg := newTestGateway(t, section)
	h := tg.initialize(t)

	const awsKey, ghToken, card, password = "AKIAIOSFODNN7EXAMPLE", "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB", "4111 1111 1111 1111", "hunter2-canary"
	const calls = 20
	for i := range calls {
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"call %d aws %s gh %s card %s","password":%q}}}`, i+2, i, awsKey, ghToken, card, password)
		if st, _, msg := post(t, tg.url, h, body); st != http.StatusOK {
			t.Fatalf("call %d with two sinks down: status %d, %v", i, st, msg)
		}
	}

	// Two records a call; the file sink delivers them shortly after they are durable.
	var lines []string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(jsonl)
		lines = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if len(lines) >= 2*calls {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(lines) != 2*calls {
		t.Fatalf("the JSONL sink holds %d lines, want %d", len(lines), 2*calls)
	}
	// Records arrive in sequence order; each call's outcome follows its call record (the reply
	// does not wait for the outcome, so another call's record may come in between).
	seenCall := map[string]bool{}
	outcomes := 0
	for i, line := range lines {
		rec, err := audit.ParseRecord([]byte(line))
		if err != nil {
			t.Fatalf("line %d is not a canonical record: %v", i, err)
		}
		if rec.Seq != int64(i) || rec.Tool != "rec.echo" {
			t.Errorf("line %d: seq %d tool %s, want seq %d tool rec.echo", i, rec.Seq, rec.Tool, i)
		}
		switch rec.Kind {
		case audit.KindToolCall:
			seenCall[rec.RequestID] = true
		case audit.KindOutcome:
			outcomes++
			if !seenCall[rec.RequestID] {
				t.Errorf("line %d: the outcome of request %s precedes its call record", i, rec.RequestID)
			}
		default:
			t.Errorf("line %d: unexpected kind %s", i, rec.Kind)
		}
	}
	if len(seenCall) != calls || outcomes != calls {
		t.Errorf("%d call records and %d outcomes, want %d of each", len(seenCall), outcomes, calls)
	}
	file, _ := os.ReadFile(jsonl)
	// The syslog receiver gets the same records, one RFC 5424 frame each.
	var sent []byte
	for time.Now().Before(deadline) {
		syslogMu.Lock()
		sent = bytes.Clone(syslogBytes)
		syslogMu.Unlock()
		if bytes.Count(sent, []byte(`{"v":1,`)) >= 2*calls {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := bytes.Count(sent, []byte(" mcpguard ")); got != 2*calls {
		t.Errorf("the syslog receiver got %d messages, want %d", got, 2*calls)
	}
	for _, canary := range []string{awsKey, ghToken, card, "4111111111111111", password} {
		if bytes.Contains(file, []byte(canary)) {
			t.Errorf("the JSONL export holds %q in clear", canary)
		}
		if bytes.Contains(sent, []byte(canary)) {
			t.Errorf("the syslog export holds %q in clear", canary)
		}
	}
	if !bytes.Contains(file, []byte("hmac:")) || !bytes.Contains(sent, []byte("hmac:")) {
		t.Error("an export holds no redaction tokens: were the arguments exported?")
	}
}
