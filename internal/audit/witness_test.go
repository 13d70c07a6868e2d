package audit_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
)

// recordingWitness keeps what the log offers it.
type recordingWitness struct {
	mu     sync.Mutex
	got    []audit.SignedCheckpoint
	closed bool
}

func (w *recordingWitness) OfferCheckpoint(cp audit.SignedCheckpoint) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got = append(w.got, cp)
}

func (w *recordingWitness) Close(context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	return nil
}

// TestWitnessesAreOfferedEveryCheckpoint: each checkpoint written to the directory is offered,
// in size order, with a Prove that yields consistency proofs between them; Close closes the
// witness after the final checkpoint.
func TestWitnessesAreOfferedEveryCheckpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := &recordingWitness{}
	st := e.open(t)
	defer st.Close()
	l, err := audit.Open(context.Background(), st, &audit.Options{
		Signer: e.keys.signer, CheckpointDir: e.cpDir, CheckpointEvery: 10, CheckpointInterval: time.Hour, Witnesses: []audit.Witness{w},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 35 {
		if _, err := l.Append(context.Background(), call(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed || len(w.got) < 2 || w.got[len(w.got)-1].Size != 35 {
		t.Fatalf("closed %v, offered %d checkpoints, want closed and the last of 35 records", w.closed, len(w.got))
	}
	var prev *audit.SignedCheckpoint
	for i := range w.got {
		cp := &w.got[i]
		file, err := os.ReadFile(filepath.Join(e.cpDir, fmt.Sprintf("checkpoint-%020d", cp.Size)))
		if err != nil || string(file) != string(cp.Note) {
			t.Errorf("offered checkpoint of %d records is not the directory's: %v", cp.Size, err)
		}
		if prev != nil {
			if cp.Size <= prev.Size {
				t.Errorf("offered %d after %d", cp.Size, prev.Size)
			}
			p, err := cp.Prove(context.Background(), prev.Size)
			if err != nil {
				t.Fatal(err)
			}
			cons := &audit.ConsistencyProof{Old: string(prev.Note), New: string(cp.Note), Proof: p}
			if err := audit.VerifyConsistency(cons, e.keys.verifier, ""); err != nil {
				t.Errorf("Prove(%d) for the checkpoint of %d: %v", prev.Size, cp.Size, err)
			}
		}
		prev = cp
	}
}

// TestVerifyChecksExtraCheckpoints: a checkpoint given in VerifyOptions.Extra (one a witness
// cosigned) is checked like the directory's, so a log truncated below it fails even when the
// newer checkpoints were deleted from both the database and the directory.
func TestVerifyChecksExtraCheckpoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fill(t, 50, 10)
	witnessed, err := os.ReadFile(filepath.Join(e.cpDir, "checkpoint-00000000000000000050"))
	if err != nil {
		t.Fatal(err)
	}
	st := e.open(t)
	tamper(t, st.DB(), `DELETE FROM audit_records WHERE seq >= 40`, `DELETE FROM audit_checkpoints WHERE size > 40`)
	st.Close()
	if err := os.Remove(filepath.Join(e.cpDir, "checkpoint-00000000000000000050")); err != nil {
		t.Fatal(err)
	}
	st = e.open(t)
	defer st.Close()
	rep, err := audit.Verify(context.Background(), st, audit.VerifyOptions{Verifier: e.keys.verifier, CheckpointDir: e.cpDir,
		Extra: []audit.ExternalCheckpoint{{Path: "the witness's checkpoint", Note: witnessed}}})
	if err != nil {
		t.Fatal(err)
	}
	first, ok := rep.First()
	if !ok || first.Seq != 40 || !strings.Contains(first.What, "the witness's checkpoint covers 50 records but the log holds 40") {
		t.Errorf("first problem %v (ok %v), want record 40 and the witness's checkpoint; all: %v", first, ok, rep.Problems)
	}
}
