package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpguard/mcpguard/internal/store"
)

// TestSyncFailurePoisons makes Sync fail (the files it must flush are gone from where it looks)
// and checks that every later write fails too, saying the store must be reopened: after a
// failed fsync what reached the disk is unknown, and retrying would report success wrongly.
func TestSyncFailurePoisons(t *testing.T) {
	ctx := context.Background()
	s := openAt(t, filepath.Join(t.TempDir(), "audit.db"))
	if err := s.Append(ctx, rec(0)); err != nil {
		t.Fatal(err)
	}
	s.smu.Lock()
	s.wal.Close()
	s.wal = nil
	s.path = filepath.Join(t.TempDir(), "elsewhere", "audit.db")
	s.smu.Unlock()
	if err := s.Sync(ctx); err == nil {
		t.Fatal("Sync succeeded although there was nothing to flush")
	}
	for name, err := range map[string]error{
		"Append":       s.Append(ctx, rec(1)),
		"AppendNoSync": s.AppendNoSync(ctx, rec(1)),
		"Sync":         s.Sync(ctx),
	} {
		if err == nil || !strings.Contains(err.Error(), "reopen the store") {
			t.Errorf("%s after a failed Sync: error %v, want one that says to reopen the store", name, err)
		}
	}
	if n, err := s.Size(ctx); err != nil || n != 1 {
		t.Errorf("Size = %d, %v; want 1 (reads still work)", n, err)
	}
}

// TestSyncFollowsANewLog closes every connection, so that SQLite deletes the write-ahead log,
// appends again, and checks that Sync flushes the new log, not the deleted one it held.
func TestSyncFollowsANewLog(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	s := openAt(t, path)
	if err := s.Append(ctx, rec(0)); err != nil {
		t.Fatal(err)
	}
	old, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	s.wmu.Lock()
	s.dropWriter()
	s.wmu.Unlock()
	s.db.SetMaxIdleConns(0) // the last connection closes: SQLite checkpoints and deletes the log
	if _, err := os.Stat(path + "-wal"); !os.IsNotExist(err) {
		t.Fatalf("the log was not deleted with the last connection (%v); the test cannot replace it", err)
	}
	s.db.SetMaxIdleConns(2)
	if err := s.Append(ctx, rec(1)); err != nil {
		t.Fatal(err)
	}
	cur, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if os.SameFile(old, cur) {
		t.Fatal("SQLite reused the log file; the test cannot tell old from new")
	}
	s.smu.Lock()
	held := s.walInfo
	s.smu.Unlock()
	if !os.SameFile(held, cur) {
		t.Error("Sync flushed the deleted log, not the one SQLite writes to now")
	}
}

// openAt opens a store at path, closed when the test ends.
func openAt(t *testing.T, path string) *Store {
	s, err := Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rec is a one-record batch.
func rec(seq int64) []store.Record {
	return []store.Record{{Seq: seq, Kind: "call", Data: []byte("{}"), Hashes: make([]byte, 32)}}
}
