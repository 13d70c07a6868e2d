package export_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/export"
)

var t0 = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

// records returns n durable records with sequence numbers from, as the log hands them over.
func records(t testing.TB, from, n int) []audit.Durable {
	t.Helper()
	out := make([]audit.Durable, n)
	for i := range out {
		seq := int64(from + i)
		kind := audit.KindToolCall
		if seq%5 == 4 {
			kind = audit.KindPolicyDenial
		}
		r := &audit.Record{
			Version: audit.SchemaVersion, Seq: seq, Time: t0.Add(time.Duration(seq) * time.Millisecond), Kind: kind,
			Principal: "alice", Tool: "fin.transfer", Arguments: json.RawMessage(fmt.Sprintf(`{"amount":%d}`, seq)),
		}
		data, err := audit.Canonical(r)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = audit.Durable{Seq: seq, Time: r.Time, Kind: kind, Data: data}
	}
	return out
}

func datas(recs []audit.Durable) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Data)
	}
	return out
}

// offerAll offers recs in batches of 7, as the log's writer would.
func offerAll(s *export.Sink, recs []audit.Durable) {
	for len(recs) > 0 {
		n := min(7, len(recs))
		s.Offer(recs[:n])
		recs = recs[n:]
	}
}

func closeSink(t testing.TB, s *export.Sink) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Error(err)
	}
}

func readLines(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func fastOptions() export.Options {
	return export.Options{MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, WriteTimeout: 2 * time.Second}
}

func TestFileInOrder(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := export.NewFile("file", path, &export.FileOptions{Options: fastOptions()})
	if err != nil {
		t.Fatal(err)
	}
	recs := records(t, 0, 1000)
	offerAll(s, recs)
	closeSink(t, s)
	if diff := cmp.Diff(datas(recs), readLines(t, path)); diff != "" {
		t.Errorf("file lines differ from the records (-want +got):\n%s", diff)
	}
	if s.Delivered() != 1000 || s.Dropped() != 0 {
		t.Errorf("delivered %d dropped %d, want 1000 and 0", s.Delivered(), s.Dropped())
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v (%v), want 0600", fi.Mode(), err)
	}
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// waitDelivered waits until s has delivered n records.
func waitDelivered(t testing.TB, s *export.Sink, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.Delivered() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records delivered after 10s (dropped %d, failures %d)", s.Delivered(), n, s.Dropped(), s.Failures())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFileRotation(t *testing.T) {
	t.Parallel()
	// Two-digit sequence numbers, and every fifth record a longer policy_denial: any n
	// consecutive lines (n a multiple of 5) take the same number of bytes.
	recs := records(t, 10, 40)
	lines := func(n int) int64 {
		var sum int64
		for _, r := range recs[:n] {
			sum += int64(len(r.Data) + 1)
		}
		return sum
	}
	tests := []struct {
		name string
		opts export.FileOptions
		// step runs between single-record batches.
		step      func(c *fakeClock)
		wantFiles int // rotated files left beside the current one
	}{
		{
			name:      "size",
			opts:      export.FileOptions{MaxSize: lines(10) + 5, Keep: 100},
			step:      func(c *fakeClock) { c.Add(time.Millisecond) },
			wantFiles: 3, // 40 records, 10 a file: three rotated, the fourth current
		},
		{
			name:      "age",
			opts:      export.FileOptions{MaxAge: time.Minute, Keep: 100},
			step:      func(c *fakeClock) { c.Add(6 * time.Second) }, // 10 records a minute
			wantFiles: 3,
		},
		{
			name:      "keep",
			opts:      export.FileOptions{MaxSize: lines(5) + 5, Keep: 2},
			step:      func(c *fakeClock) { c.Add(time.Millisecond) },
			wantFiles: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "audit.jsonl")
			clock := &fakeClock{now: t0}
			o := tc.opts
			o.Options = fastOptions()
			o.Now = clock.Now
			s, err := export.NewFile("file", path, &o)
			if err != nil {
				t.Fatal(err)
			}
			for i := range recs {
				s.Offer(recs[i : i+1])
				waitDelivered(t, s, uint64(i+1))
				tc.step(clock)
			}
			closeSink(t, s)
			rotated, err := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			if len(rotated) != tc.wantFiles {
				t.Fatalf("rotated files %q, want %d", rotated, tc.wantFiles)
			}
			// The kept files and the current one hold the newest records, in order, each once.
			var got []string
			for _, f := range append(rotated, path) { // Glob sorts, and names sort by time
				got = append(got, readLines(t, f)...)
			}
			want := datas(recs[len(recs)-len(got):])
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("records across the files (-want +got):\n%s", diff)
			}
			if tc.name != "keep" && len(got) != len(recs) {
				t.Errorf("%d records across the files, want all %d", len(got), len(recs))
			}
		})
	}
}

// syslogReceiver is an in-test RFC 6587 octet-counting receiver.
type syslogReceiver struct {
	ln   net.Listener
	mu   sync.Mutex
	msgs []string
}

func newSyslogReceiver(t testing.TB) *syslogReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &syslogReceiver{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.serve(c)
		}
	}()
	return r
}

func (r *syslogReceiver) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		n, err := br.ReadString(' ')
		if err != nil {
			return
		}
		size, err := strconv.Atoi(strings.TrimSuffix(n, " "))
		if err != nil || size <= 0 || size > 1<<20 {
			return
		}
		msg := make([]byte, size)
		if _, err := io.ReadFull(br, msg); err != nil {
			return
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, string(msg))
		r.mu.Unlock()
	}
}

func (r *syslogReceiver) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

func TestSyslogFraming(t *testing.T) {
	t.Parallel()
	rcv := newSyslogReceiver(t)
	local0 := 16
	s, err := export.NewSyslog("siem", rcv.ln.Addr().String(), &export.SyslogOptions{
		Options: fastOptions(), Facility: &local0, AppName: "mcpguard-test", Hostname: "gw1",
	})
	if err != nil {
		t.Fatal(err)
	}
	recs := records(t, 0, 300)
	offerAll(s, recs)
	waitDelivered(t, s, 300)
	closeSink(t, s)
	deadline := time.Now().Add(5 * time.Second)
	for len(rcv.messages()) < 300 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	got := rcv.messages()
	if len(got) != 300 {
		t.Fatalf("receiver got %d messages, want 300", len(got))
	}
	pid := strconv.Itoa(os.Getpid())
	for i, m := range got {
		pri, kind := "<134>", "call" // local0.info
		if i%5 == 4 {
			pri, kind = "<132>", "policy_denial" // local0.warning
		}
		want := pri + "1 " + recs[i].Time.Format("2006-01-02T15:04:05.000000Z") + " gw1 mcpguard-test " + pid + " " + kind + " - " + string(recs[i].Data)
		if m != want {
			t.Fatalf("message %d:\n got %s\nwant %s", i, m, want)
		}
	}
}

// TestSyslogReconnects checks that records offered while the receiver is down are delivered,
// in order, once it is back.
func TestSyslogReconnects(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // down
	s, err := export.NewSyslog("siem", addr, &export.SyslogOptions{Options: fastOptions(), Hostname: "gw1"})
	if err != nil {
		t.Fatal(err)
	}
	recs := records(t, 0, 50)
	offerAll(s, recs)
	deadline := time.Now().Add(5 * time.Second)
	for s.Failures() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if s.Delivered() != 0 || s.Failures() < 3 {
		t.Fatalf("delivered %d failures %d while the receiver is down, want 0 and retries", s.Delivered(), s.Failures())
	}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	rcv := &syslogReceiver{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go rcv.serve(c)
		}
	}()
	waitDelivered(t, s, 50)
	closeSink(t, s)
	for len(rcv.messages()) < 50 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	got := rcv.messages()
	if len(got) != 50 {
		t.Fatalf("got %d messages after reconnecting, want 50", len(got))
	}
	for i, m := range got {
		if !strings.HasSuffix(m, string(recs[i].Data)) {
			t.Fatalf("message %d is %q, want record %d", i, m, i)
		}
	}
	if s.Dropped() != 0 {
		t.Errorf("dropped %d, want 0 (the buffer held them)", s.Dropped())
	}
}

func TestWebhook(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	var batches, auths int
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls%3 == 1 { // every third request fails first: the batch must be retried
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("Authorization") == "Bearer s3cret-token" {
			auths++
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		var arr []json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&arr); err != nil {
			t.Errorf("body is not a JSON array: %v", err)
		}
		for _, m := range arr {
			got = append(got, string(m))
		}
		batches++
	}))
	defer srv.Close()
	o := fastOptions()
	o.MaxBatch = 25
	s, err := export.NewWebhook("hook", srv.URL+"/ingest", &export.WebhookOptions{Options: o, BearerToken: "s3cret-token"})
	if err != nil {
		t.Fatal(err)
	}
	recs := records(t, 0, 200)
	offerAll(s, recs)
	waitDelivered(t, s, 200)
	closeSink(t, s)
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(datas(recs), got); diff != "" {
		t.Errorf("records posted (-want +got):\n%s", diff)
	}
	if batches < 8 || auths != batches {
		t.Errorf("%d batches (want at least 200/25), %d with the bearer token", batches, auths)
	}
	if s.Failures() == 0 || s.Dropped() != 0 {
		t.Errorf("failures %d dropped %d: want retried 503s and no drops", s.Failures(), s.Dropped())
	}
}

func TestWebhookRefusedBatchIsDropped(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad token", http.StatusUnauthorized)
	}))
	defer srv.Close()
	o := fastOptions()
	o.MaxBatch = 10
	s, err := export.NewWebhook("hook", srv.URL, &export.WebhookOptions{Options: o})
	if err != nil {
		t.Fatal(err)
	}
	s.Offer(records(t, 0, 10))
	deadline := time.Now().Add(5 * time.Second)
	for s.Dropped() < 10 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	closeSink(t, s)
	if s.Dropped() != 10 || s.Delivered() != 0 {
		t.Errorf("dropped %d delivered %d, want a 401 to drop the batch of 10", s.Dropped(), s.Delivered())
	}
}

func TestWebhookURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, url string
		ok        bool
	}{
		{"https", "https://siem.example.com/ingest", true},
		{"http loopback v4", "http://127.0.0.1:8080/x", true},
		{"http loopback v6", "http://[::1]:8080/x", true},
		{"http localhost", "http://localhost/x", true},
		{"http remote", "http://siem.example.com/ingest", false},
		{"http private", "http://10.0.0.5/ingest", false},
		{"credentials", "https://user:pw@siem.example.com/", false},
		{"scheme", "ftp://siem.example.com/", false},
		{"no host", "https:///x", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := export.CheckWebhookURL(tc.url)
			if (err == nil) != tc.ok {
				t.Errorf("CheckWebhookURL(%q) = %v, want ok=%v", tc.url, err, tc.ok)
			}
		})
	}
}

// TestDownSinkNeverBlocks offers far more records than the buffer holds to sinks whose
// destination is down or hangs: Offer returns at once and the excess is counted as dropped.
func TestDownSinkNeverBlocks(t *testing.T) {
	t.Parallel()
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer srv.Close()
	defer close(hang)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()
	o := fastOptions()
	o.Buffer = 100
	o.MaxBatch = 10
	o.WriteTimeout = time.Minute
	tests := []struct {
		name string
		open func() (*export.Sink, error)
	}{
		{"webhook that hangs", func() (*export.Sink, error) {
			return export.NewWebhook("hook", srv.URL, &export.WebhookOptions{Options: o})
		}},
		{"syslog refusing connections", func() (*export.Sink, error) {
			return export.NewSyslog("siem", closedAddr, &export.SyslogOptions{Options: o, Hostname: "gw1"})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.open()
			if err != nil {
				t.Fatal(err)
			}
			recs := records(t, 0, 10000)
			start := time.Now()
			offerAll(s, recs)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("offering 10000 records took %v", d)
			}
			// At most the buffer and one batch in flight are held; the rest are counted.
			if held := 10000 - s.Dropped(); held > 110 {
				t.Errorf("dropped %d of 10000 with a buffer of 100: %d held", s.Dropped(), held)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			_ = s.Close(ctx)
			if s.Dropped()+s.Delivered() != 10000 {
				t.Errorf("after Close: dropped %d + delivered %d != 10000 offered", s.Dropped(), s.Delivered())
			}
		})
	}
}
