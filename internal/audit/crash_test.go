package audit_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/store"
	"github.com/mcpguard/mcpguard/internal/store/sqlite"
)

const crashChildEnv = "MCPGUARD_AUDIT_CRASH_CHILD"

// TestCrashChild is the process TestKillDuringLoad kills; it does nothing on its own.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("run by TestKillDuringLoad")
	}
	skey, err := os.ReadFile(filepath.Join(dir, "log.key"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "audit.db"), &sqlite.Options{Writer: true})
	if err != nil {
		t.Fatal(err)
	}
	// The log commits with AppendNoSync and acknowledges after Sync: the path under test.
	var _ store.Pipeliner = st
	l, err := audit.Open(context.Background(), st, &audit.Options{Signer: signer, CheckpointDir: filepath.Join(dir, "checkpoints"), CheckpointEvery: 500})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			for i := 0; ; i++ {
				seq, err := l.Append(context.Background(), call(w*1_000_000+i))
				if err != nil {
					return
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %d\n", seq) // the "response" reaches the client
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestKillDuringLoad kills a process appending from 32 goroutines with SIGKILL and checks that
// the log verifies and holds every record whose append had returned. The child's log commits
// one batch while the previous one is being synced, so the kill lands with batches committed
// and not yet synced, whose callers have not been answered.
func TestKillDuringLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	skey, vkey, err := audit.GenerateKey("crash-log")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "log.key"), []byte(skey), 0o600)
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v=false")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[int64]bool{}
	sc := bufio.NewScanner(out)
	killed := false
	deadline := time.Now().Add(20 * time.Second)
	for sc.Scan() {
		if seq, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
			n, err := strconv.ParseInt(seq, 10, 64)
			if err != nil {
				t.Fatalf("child printed %q", sc.Text())
			}
			acked[n] = true
		}
		if !killed && (len(acked) >= 3000 || time.Now().After(deadline)) {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
	}
	cmd.Wait()
	if len(acked) == 0 {
		t.Fatal("the child acknowledged no record")
	}

	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "audit.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rep, err := audit.Verify(context.Background(), st, audit.VerifyOptions{Verifier: verifier, CheckpointDir: filepath.Join(dir, "checkpoints")})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("the log does not verify after SIGKILL: %v", rep.Problems)
	}
	for seq := range acked {
		if seq >= rep.Records {
			t.Errorf("record %d was acknowledged but the log holds %d records", seq, rep.Records)
		}
	}
	t.Logf("%d records acknowledged, %d in the log, %d covered by checkpoints", len(acked), rep.Records, rep.Covered)

	// Restarting: the records after the newest external checkpoint were not sealed by a clean
	// shutdown, so the log refuses them until they are accepted.
	signer, err := audit.LoadSigner(filepath.Join(dir, "log.key"))
	if err != nil {
		t.Fatal(err)
	}
	opts := &audit.Options{Signer: signer, CheckpointDir: filepath.Join(dir, "checkpoints")}
	uncovered := rep.Records - rep.NewestExternal
	l, err := audit.Open(context.Background(), st, opts)
	if uncovered == 0 {
		t.Logf("the kill left no record after the newest checkpoint; nothing to accept")
	} else {
		if !errors.Is(err, audit.ErrUncovered) {
			t.Fatalf("Open after SIGKILL with %d records after the newest checkpoint: error %v, want ErrUncovered", uncovered, err)
		}
		if _, err := audit.AcceptRecords(context.Background(), st, signer, audit.AcceptOptions{CheckpointDir: opts.CheckpointDir, Records: uncovered}); err != nil {
			t.Fatal(err)
		}
		if l, err = audit.Open(context.Background(), st, opts); err != nil {
			t.Fatalf("Open after accepting the %d records: %v", uncovered, err)
		}
	}
	if seq, err := l.Append(context.Background(), &audit.Record{Kind: audit.KindAdmin}); err != nil || seq != rep.Records {
		t.Errorf("Append after restart = %d, %v; want %d", seq, err, rep.Records)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
