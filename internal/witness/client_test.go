package witness

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/mcpguard/mcpguard/internal/audit"
)

// offer is the checkpoint of the fake log's first n records as the audit log hands it over.
func (l *fakeLog) offer(n int64) audit.SignedCheckpoint {
	return audit.SignedCheckpoint{Size: n, Note: l.checkpoint(n), Prove: func(_ context.Context, old int64) (tlog.TreeProof, error) {
		return tlog.ProveTree(n, old, l.reader())
	}}
}

// flaky fails the first n requests with 503, then passes them to h.
type flaky struct {
	h    http.Handler
	fail atomic.Int64
	seen atomic.Int64
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.seen.Add(1)
	if f.fail.Add(-1) >= 0 {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	f.h.ServeHTTP(w, r)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling a goroutine's progress, not a timing assertion
	}
}

// TestClientLearnsTheWitnessSizeAndRetries: a new client (a restarted gateway) starts at old
// size 0, learns the witness's size from its 409, proves consistency from there, rides out a
// witness that answers 503, and keeps the cosigned checkpoint in its directory.
func TestClientLearnsTheWitnessSizeAndRetries(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.log.grow(50, "r")
	f.mustCosign(t, f.log.request(0, 10), 10) // cosigned before this client existed
	fl := &flaky{h: f.w.Handler()}
	fl.fail.Store(3)
	srv := httptest.NewServer(fl)
	defer srv.Close()
	dir := t.TempDir()
	c := NewClient(srv.URL, f.signer.Verifier(), &ClientOptions{Dir: dir, MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond})

	c.OfferCheckpoint(f.log.offer(20))
	waitFor(t, "the checkpoint of 20 cosigned", func() bool { return c.Cosigned() == 1 })
	if c.Failures() != 3 || c.WitnessSize() != 20 {
		t.Errorf("failures %d, witness size %d; want 3 and 20", c.Failures(), c.WitnessSize())
	}
	c.OfferCheckpoint(f.log.offer(30))
	c.OfferCheckpoint(f.log.offer(40))
	if err := c.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if c.WitnessSize() != 40 {
		t.Errorf("after Close the witness holds %d, want 40 (the newest offered)", c.WitnessSize())
	}
	b, err := os.ReadFile(filepath.Join(dir, WitnessedName(40, f.signer.KeyHash())))
	if err != nil {
		t.Fatal(err)
	}
	tr, by, err := Cosigners(b, f.logKey, []note.Verifier{f.signer.Verifier()})
	if err != nil || tr.Size != 40 || len(by) != 1 {
		t.Errorf("the cosigned file: %v, size %d, cosigners %d; want 40 cosigned by the witness", err, tr.Size, len(by))
	}
	files, err := ReadWitnessedDir(dir)
	if err != nil || len(files) < 2 {
		t.Errorf("ReadWitnessedDir: %d files, %v", len(files), err)
	}
}

// TestClientNeverBlocks: a witness that is down neither blocks an offer nor Close beyond its
// deadline; the failures are counted and Close reports the checkpoint left uncosigned.
func TestClientNeverBlocks(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.log.grow(10, "r")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer srv.Close()
	c := NewClient(srv.URL, f.signer.Verifier(), &ClientOptions{MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	done := make(chan struct{})
	go func() {
		for i := int64(1); i <= 10; i++ {
			c.OfferCheckpoint(f.log.offer(i))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("OfferCheckpoint blocked on a witness that is down")
	}
	waitFor(t, "failures counted", func() bool { return c.Failures() >= 2 })
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := c.Close(ctx); err == nil || !strings.Contains(err.Error(), "checkpoint of 10 records was not cosigned") {
		t.Errorf("Close with the witness down: %v, want the checkpoint of 10 reported", err)
	}
	if c.Cosigned() != 0 {
		t.Errorf("cosigned %d", c.Cosigned())
	}
}

// TestClientReportsATruncatedLog: when the witness has cosigned more records than the log now
// signs (truncated, then restarted), or a tree the log no longer extends, the checkpoint is
// refused, counted and not retried.
func TestClientReportsATruncatedLog(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.log.grow(30, "r")
	f.mustCosign(t, f.log.request(0, 20), 20)

	c := NewClient(f.srv.URL, f.signer.Verifier(), nil)
	c.OfferCheckpoint(f.log.offer(15))
	waitFor(t, "the truncated checkpoint refused", func() bool { return c.Refused() == 1 })

	forked, _ := newFakeLog(t, "ops-log")
	forked.signer = f.log.signer
	forked.grow(18, "r").grow(30, "forged")
	c.OfferCheckpoint(forked.offer(30))
	waitFor(t, "the forked checkpoint refused", func() bool { return c.Refused() == 2 })
	if err := c.Close(t.Context()); err != nil {
		t.Errorf("Close: %v", err)
	}
	if c.Cosigned() != 0 || c.Failures() != 0 {
		t.Errorf("cosigned %d, failures %d; want 0 and 0 (refusals are not retried)", c.Cosigned(), c.Failures())
	}
}
