package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/store"
)

// gatewayProcess runs a whole gateway in this (child) process, serving on the address written
// to the file named by MCPGUARD_TEST_GATEWAY_ADDR, until it is killed.
func gatewayProcess(cfgPath string) {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	g, err := newFromConfig(context.Background(), cfg, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	g.Start(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.Exit(2)
	}
	_ = os.WriteFile(os.Getenv("MCPGUARD_TEST_GATEWAY_ADDR"), []byte(ln.Addr().String()), 0o600)
	_ = http.Serve(ln, g.Handler())
}

// TestKillDuringLoadKeepsEveryAnsweredCall: SIGKILL of the gateway process while concurrent
// clients are calling leaves an audit log that verifies and holds the call record of every call
// whose client received a response.
func TestKillDuringLoadKeepsEveryAnsweredCall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	signer, verifier, err := audit.GenerateKey("crash-test")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "audit.key")
	writeFile(t, keyFile, []byte(signer))
	t.Setenv("MCPGUARD_TEST_REDACTION_KEY", strings.Repeat("c", 40))
	exe, _ := os.Executable()
	db, checkpoints := filepath.Join(dir, "audit.db"), filepath.Join(dir, "checkpoints")
	cfgPath := filepath.Join(dir, "gw.yaml")
	writeFile(t, cfgPath, []byte(fmt.Sprintf(`
listen: 127.0.0.1:0
upstreams:
  - name: rec
    stdio:
      command: %q
      env: {MCPGUARD_TEST_UPSTREAM: "1", MCPGUARD_TEST_RECORD: %q}
audit:
  database: %q
  signing_key_file: %q
  checkpoint_dir: %q
  checkpoint_every: 50
  redaction_key: env:MCPGUARD_TEST_REDACTION_KEY
`, exe, filepath.Join(dir, "record.jsonl"), db, keyFile, checkpoints)))
	addrFile := filepath.Join(dir, "addr")
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "MCPGUARD_TEST_GATEWAY_CONFIG="+cfgPath, "MCPGUARD_TEST_GATEWAY_ADDR="+addrFile)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var addr []byte
	for deadline := time.Now().Add(30 * time.Second); len(addr) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		addr, _ = os.ReadFile(addrFile)
	}
	if len(addr) == 0 {
		t.Fatal("the gateway process did not start")
	}
	url := "http://" + string(addr) + "/mcp"
	const modern = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`

	var mu sync.Mutex
	answered := map[string]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				marker := fmt.Sprintf("crash-%d-%d", w, i)
				req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"`+marker+`"},`+modern+`}}`))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				for k, v := range modernHeaders("tools/call", "rec.echo") {
					req.Header.Set(k, v)
				}
				resp, err := client.Do(req)
				if err != nil {
					return // the gateway is gone
				}
				ok := resp.StatusCode == http.StatusOK
				resp.Body.Close()
				if ok {
					mu.Lock()
					answered[marker] = true
					mu.Unlock()
				}
			}
		}()
	}
	// Kill it once the load is under way: after 50 answered calls, however slow the machine.
	for deadline := time.Now().Add(60 * time.Second); ; {
		mu.Lock()
		n := len(answered)
		mu.Unlock()
		if n >= 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d calls were answered in 60 s: the load did not run", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	close(stop)
	wg.Wait()
	if len(answered) < 10 {
		t.Fatalf("only %d calls were answered before the kill: the load did not run", len(answered))
	}

	st := openStore(t, db)
	v, err := note.NewVerifier(verifier)
	if err != nil {
		t.Fatal(err)
	}
	report, err := audit.Verify(context.Background(), st, audit.VerifyOptions{Verifier: v, CheckpointDir: checkpoints})
	if err != nil || !report.OK() {
		t.Fatalf("the log after SIGKILL does not verify: %v %+v", err, report)
	}
	recorded := map[string]bool{}
	_ = st.Scan(context.Background(), 0, func(r *store.Record) error {
		rec, err := audit.ParseRecord(r.Data)
		if err == nil && rec.Kind == audit.KindToolCall {
			for m := range answered {
				if strings.Contains(string(rec.Arguments), `"`+m+`"`) {
					recorded[m] = true
				}
			}
		}
		return nil
	})
	for m := range answered {
		if !recorded[m] {
			t.Errorf("call %s was answered but has no call record", m)
		}
	}
	t.Logf("%d calls answered before SIGKILL, all recorded; log of %d records verifies", len(answered), report.Records)
}
