package audit_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
)

// sqliteFiles are the files of a SQLite database.
var sqliteFiles = []string{"", "-wal", "-shm"}

// copyDB copies the SQLite database at src (with its WAL) to dst, replacing what is there.
func copyDB(t *testing.T, src, dst string) {
	t.Helper()
	for _, suffix := range sqliteFiles {
		os.Remove(dst + suffix)
		in, err := os.Open(src + suffix)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(dst + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// openLog opens a log on e's database and checkpoint directory and returns Open's error.
func (e *env) openLog(t *testing.T) error {
	t.Helper()
	st := e.open(t)
	defer st.Close()
	l, err := audit.Open(context.Background(), st, &audit.Options{Signer: e.keys.signer, CheckpointDir: e.cpDir, CheckpointInterval: time.Hour})
	if err == nil {
		if cerr := l.Close(); cerr != nil {
			t.Fatal(cerr)
		}
	}
	return err
}

// cpFiles lists the checkpoint directory.
func (e *env) cpFiles(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(e.cpDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ent := range ents {
		names = append(names, ent.Name())
	}
	return names
}

// TestOpenRefusesAStoreThatDoesNotMatchTheCheckpoints: a database rolled back to an older copy,
// deleted, or replaced by another log (shorter, as long or longer) must not be appended to.
func TestOpenRefusesAStoreThatDoesNotMatchTheCheckpoints(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, e *env)
		want  string
	}{
		{"rolled back", func(t *testing.T, e *env) {
			e.fill(t, 10, 5)
			copyDB(t, e.db, e.db+".old")
			e.fill(t, 10, 5) // the log now holds 20 records, the directory a checkpoint of 20
			copyDB(t, e.db+".old", e.db)
		}, "rolled back"},
		{"deleted", func(t *testing.T, e *env) {
			e.fill(t, 10, 5)
			for _, suffix := range sqliteFiles {
				os.Remove(e.db + suffix)
			}
		}, "is empty"},
		{"replaced, as long", func(t *testing.T, e *env) {
			e.fill(t, 10, 5)
			other := &env{db: filepath.Join(e.dir, "other.db"), cpDir: filepath.Join(e.dir, "other-cp"), keys: e.keys, shift: time.Hour}
			other.fill(t, 10, 5)
			copyDB(t, other.db, e.db)
		}, "replaced or edited"},
		{"replaced, longer", func(t *testing.T, e *env) {
			e.fill(t, 10, 5)
			other := &env{db: filepath.Join(e.dir, "other.db"), cpDir: filepath.Join(e.dir, "other-cp"), keys: e.keys, shift: time.Hour}
			other.fill(t, 15, 5)
			copyDB(t, other.db, e.db)
		}, "replaced or edited"},
		{"checkpoints of another key", func(t *testing.T, e *env) {
			other := &env{db: filepath.Join(e.dir, "other.db"), cpDir: e.cpDir, keys: newKeys(t, "test-log")}
			other.fill(t, 10, 5)
		}, "not signed with this log's key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			tc.setup(t, e)
			before := e.cpFiles(t)
			err := e.openLog(t)
			if !errors.Is(err, audit.ErrLogMismatch) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: error %v, want ErrLogMismatch saying %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "checkpoint-") {
				t.Errorf("the error does not name the checkpoint file: %v", err)
			}
			if after := e.cpFiles(t); len(after) != len(before) {
				t.Errorf("the refused log wrote to the checkpoint directory: %v, was %v", after, before)
			}
		})
	}
}

// TestOpenContinuesAMatchingStore: the usual restart, after a clean Close, starts and continues
// the log.
func TestOpenContinuesAMatchingStore(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fill(t, 7, 5)
	e.fill(t, 7, 5)
	if err := e.openLog(t); err != nil {
		t.Fatalf("Open after two clean runs: %v", err)
	}
	if rep := e.verify(t); !rep.OK() || rep.Records != 14 || rep.Covered != 14 {
		t.Errorf("report %+v, want 14 records, all covered", rep)
	}
}

// TestOpenRefusesRecordsAddedWhileStopped: a record appended to the store while the gateway was
// stopped (here by a log without keys) is refused at the next start, never signed by the log;
// once an operator accepts exactly the records reviewed, the log starts and continues.
func TestOpenRefusesRecordsAddedWhileStopped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fill(t, 10, 4) // a clean Close signs a checkpoint over all 10 records
	st := e.open(t)
	defer st.Close()
	forger, err := audit.Open(context.Background(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := forger.Append(context.Background(), call(100)); err != nil {
		t.Fatal(err)
	}
	if err := forger.Close(); err != nil {
		t.Fatal(err)
	}
	st.Close()

	before := e.cpFiles(t)
	err = e.openLog(t)
	if !errors.Is(err, audit.ErrUncovered) || !strings.Contains(err.Error(), "records 10..10") || !strings.Contains(err.Error(), "mcpguard audit accept --records 1") {
		t.Fatalf("Open with a record added while stopped: error %v, want ErrUncovered naming records 10..10 and how to accept them", err)
	}
	if after := e.cpFiles(t); len(after) != len(before) {
		t.Fatalf("the refused log signed a checkpoint: %v, was %v", after, before)
	}
	if rep := e.verify(t); rep.Covered != 10 || rep.Records != 11 {
		t.Fatalf("report %+v: want 11 records, 10 covered", rep)
	}

	st = e.open(t)
	defer st.Close()
	accept := audit.AcceptOptions{CheckpointDir: e.cpDir, Records: 2}
	if _, err := audit.AcceptRecords(context.Background(), st, e.keys.signer, accept); err == nil {
		t.Fatal("AcceptRecords accepted 2 records where the store holds 1 after the checkpoint")
	}
	accept.Records = 1
	tree, err := audit.AcceptRecords(context.Background(), st, e.keys.signer, accept)
	if err != nil || tree.Size != 11 {
		t.Fatalf("AcceptRecords = %+v, %v; want a checkpoint of 11 records", tree, err)
	}
	if _, err := os.Stat(filepath.Join(e.cpDir, "accepted-00000000000000000011")); err != nil {
		t.Errorf("no record of the acceptance in the checkpoint directory: %v", err)
	}
	st.Close()
	if err := e.openLog(t); err != nil {
		t.Fatalf("Open after accepting: %v", err)
	}
	e.fill(t, 3, 4)
	if rep := e.verify(t); !rep.OK() || rep.Records != 14 || rep.Covered != 14 {
		t.Errorf("report %+v, want 14 records, all covered", rep)
	}
}

// breakDir replaces the checkpoint directory with a file, so that no checkpoint can be written
// there (as a full or read-only directory would; a chmod would not stop root).
func breakDir(t *testing.T, dir string) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointDirFailureFailsClosed: once a checkpoint cannot be written to the checkpoint
// directory, no further record is acknowledged (the gateway answers 503), as after a failed
// Sync, even when the directory is writable again.
func TestCheckpointDirFailureFailsClosed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	st := e.open(t)
	defer st.Close()
	l := e.logOn(t, st, 1) // a checkpoint after every record
	ctx := context.Background()
	if _, err := l.Append(ctx, call(0)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		_, err := os.Stat(filepath.Join(e.cpDir, "checkpoint-00000000000000000001"))
		return err == nil
	})
	breakDir(t, e.cpDir)
	// Record 1 is acknowledged before its checkpoint is attempted; its checkpoint fails.
	if _, err := l.Append(ctx, call(1)); err != nil {
		t.Fatal(err)
	}
	for i := 2; i < 5; i++ {
		if _, err := l.Append(ctx, call(i)); !errors.Is(err, audit.ErrUnavailable) || !strings.Contains(err.Error(), "checkpoint directory") {
			t.Fatalf("Append(%d) after a checkpoint failed to reach the directory: error %v, want ErrUnavailable naming the checkpoint directory", i, err)
		}
	}
	os.Remove(e.cpDir)
	if err := os.Mkdir(e.cpDir, 0o750); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, call(5)); !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("Append once the directory is back: error %v, want ErrUnavailable until restart", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCloseReportsAFailedFinalCheckpoint: Close says when its final checkpoint could not be
// written, and the next start refuses the records it left uncovered.
func TestCloseReportsAFailedFinalCheckpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	st := e.open(t)
	defer st.Close()
	l := e.logOn(t, st, 1000)
	for i := range 3 {
		if _, err := l.Append(context.Background(), call(i)); err != nil {
			t.Fatal(err)
		}
	}
	breakDir(t, e.cpDir)
	if err := l.Close(); err == nil || !strings.Contains(err.Error(), "final checkpoint") {
		t.Fatalf("Close with an unwritable checkpoint directory: error %v, want one about the final checkpoint", err)
	}
	st.Close()
	os.Remove(e.cpDir)
	if err := e.openLog(t); !errors.Is(err, audit.ErrUncovered) || !strings.Contains(err.Error(), "records 0..2") {
		t.Fatalf("Open after a Close without its final checkpoint: error %v, want ErrUncovered for records 0..2", err)
	}
}
