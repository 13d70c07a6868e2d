package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/mcpguard/mcpguard/internal/store"
	"github.com/mcpguard/mcpguard/internal/store/sqlite"
	"github.com/mcpguard/mcpguard/internal/store/storetest"
)

// openTemp opens a new store in a temporary directory.
func openTemp(tb testing.TB) store.Store {
	return openTempWith(tb, nil)
}

func openTempWith(tb testing.TB, o *sqlite.Options) store.Store {
	s, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "audit.db"), o)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

// TestContractWriter runs the contract on the writer's store, which appends through the record
// segment.
func TestContractWriter(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTempWith(t, &sqlite.Options{Writer: true}) })
}

func TestReadOnly(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	s, err := sqlite.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	ro, err := sqlite.Open(ctx, path, &sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ro.Append(ctx, []store.Record{{Seq: 0, Data: []byte("{}"), Hashes: make([]byte, 32)}}); err == nil {
		t.Error("a read-only store accepted an append")
	}
}

func TestPathMustBePlain(t *testing.T) {
	if _, err := sqlite.Open(context.Background(), "/tmp/x.db?mode=memory", nil); err == nil {
		t.Error("a path with a query was accepted")
	}
}

func BenchmarkAppend(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store { return openTemp(b) })
}
