package sqlite

import (
	"context"
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
	s, err := Open(ctx, filepath.Join(t.TempDir(), "audit.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rec := func(seq int64) []store.Record {
		return []store.Record{{Seq: seq, Kind: "call", Data: []byte("{}"), Hashes: make([]byte, 32)}}
	}
	if err := s.Append(ctx, rec(0)); err != nil {
		t.Fatal(err)
	}
	s.smu.Lock()
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
