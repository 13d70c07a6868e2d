package gateway

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/testenv"
)

// TestAuditDiskFullFailsClosed puts the audit database on a small tmpfs, fills the disk, and
// checks that calls are then refused with 503 and never reach the upstream. It needs to mount
// a file system (root), and is skipped elsewhere.
func TestAuditDiskFullFailsClosed(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	fs := filepath.Join(dir, "fs")
	if err := os.Mkdir(fs, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", fs).CombinedOutput(); err != nil {
		testenv.Missing(t, "cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", fs).Run() })

	signer, _, err := audit.GenerateKey("disk-full-test")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "audit.key")
	writeFile(t, keyFile, []byte(signer))
	t.Setenv("MCPGUARD_TEST_REDACTION_KEY", strings.Repeat("r", 40))
	tg := newTestGateway(t, fmt.Sprintf(`audit:
  database: %q
  signing_key_file: %q
  checkpoint_dir: %q
  redaction_key: env:MCPGUARD_TEST_REDACTION_KEY
`, filepath.Join(fs, "audit.db"), keyFile, filepath.Join(dir, "checkpoints")))
	h := tg.initialize(t)
	call := func(text string) int {
		st, _, _ := post(t, tg.url, h, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"rec.echo","arguments":{"text":"`+text+`"}}}`)
		return st
	}
	if st := call("before"); st != http.StatusOK {
		t.Fatalf("call with room on the disk: status %d", st)
	}
	// Fill the disk.
	f, err := os.Create(filepath.Join(fs, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	// Calls go on while the record segment has room it was grown with, and the database's free
	// pages last; then every call is refused.
	refused, calls := 0, 0
	for ; calls < 500 && refused < 5; calls++ {
		if st := call(fmt.Sprintf("DISKFULL-%d", calls)); st == http.StatusServiceUnavailable {
			refused++
		} else if st != http.StatusOK {
			t.Fatalf("call %d on a full disk: status %d, want 503 (or 200 while room lasts)", calls, st)
		}
	}
	if refused == 0 {
		t.Fatalf("none of %d calls was refused although the audit disk is full", calls)
	}
	rec := readRecord(t, tg.record)
	served := strings.Count(rec, "DISKFULL-")
	if served+refused != calls {
		t.Errorf("%d calls reached the upstream and %d were refused, of %d: a refused call was forwarded", served, refused, calls)
	}
}
