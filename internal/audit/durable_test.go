package audit_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/store"
)

// TestSinks checks that a sink sees every committed record once, in sequence
// order, as the canonical bytes the store holds, with arguments already redacted.
func TestSinks(t *testing.T) {
	e := newEnv(t)
	st := e.open(t)
	defer st.Close()
	sink := &recordingSink{}
	l, err := audit.Open(context.Background(), st, &audit.Options{
		Signer: e.keys.signer, CheckpointDir: e.cpDir, Sinks: []audit.Sink{sink},
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if _, err := l.Append(context.Background(), call(i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if !sink.closed {
		t.Error("the log's Close did not close its sink")
	}
	got := sink.recs
	var stored []store.Record
	if err := st.Scan(context.Background(), 0, func(r *store.Record) error {
		stored = append(stored, *r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(stored) {
		t.Fatalf("hook saw %d records, store holds %d", len(got), len(stored))
	}
	for i, d := range got {
		if d.Seq != int64(i) {
			t.Fatalf("record %d has seq %d: out of order", i, d.Seq)
		}
		if diff := cmp.Diff(string(stored[i].Data), string(d.Data)); diff != "" {
			t.Errorf("record %d differs from the stored bytes (-stored +hook):\n%s", i, diff)
		}
		if d.Kind != audit.KindToolCall || !d.Time.Equal(stored[i].Time) {
			t.Errorf("record %d: kind %q time %v, want call at %v", i, d.Kind, d.Time, stored[i].Time)
		}
	}
}

// recordingSink keeps what it is offered.
type recordingSink struct {
	mu     sync.Mutex
	recs   []audit.Durable
	closed bool
}

func (s *recordingSink) Offer(b []audit.Durable) {
	s.mu.Lock()
	s.recs = append(s.recs, b...)
	s.mu.Unlock()
}

func (s *recordingSink) Close(context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}
