package streamhttp

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// A legacy stream killed mid-way is resumed with GET and Last-Event-ID after the server's
// retry delay, and the messages on both streams come out in order.
func TestResumeAfterStreamKilledMidway(t *testing.T) {
	t.Parallel()
	srv, rec := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch n {
		case 1: // the POST: one event, then the connection dies without ending the body
			startSSE(w)
			writeSSE(w, "id: e1\nretry: 20\ndata: "+progress+"\n\n")
			panic(http.ErrAbortHandler)
		case 2: // the resuming GET
			startSSE(w)
			writeSSE(w, "id: e2\ndata: "+result7+"\n\n")
		}
	})
	var sl sleeps
	c := New(srv.URL, &Options{Sleep: sl.sleep})
	r, err := c.Post(t.Context(), []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"slow"}}`), []byte("7"), legacyHeader())
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := drainReply(t, r)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	if diff := cmp.Diff([]string{progress, result7}, msgs); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]time.Duration{20 * time.Millisecond}, sl.got()); diff != "" {
		t.Errorf("reconnection delays (-want +got):\n%s", diff)
	}
	reqs := rec.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want POST then GET", len(reqs))
	}
	get := reqs[1]
	if get.Method != http.MethodGet {
		t.Fatalf("second request is %s, want GET", get.Method)
	}
	for k, want := range map[string]string{
		"Last-Event-Id":        "e1",
		"Accept":               "text/event-stream",
		"Mcp-Session-Id":       "s-1",
		"Mcp-Protocol-Version": "2025-11-25",
		"Mcp-Method":           "", // describes the POST body, not the GET
		"Mcp-Name":             "",
		"Content-Type":         "",
	} {
		if got := get.Header.Get(k); got != want {
			t.Errorf("GET header %s = %q, want %q", k, got, want)
		}
	}
}

// This mirrors the conformance suite's sse-retry scenario: the server primes the POST stream
// with an id and retry: 500, closes it gracefully 50 ms later, and expects a GET with
// Last-Event-ID no sooner than 450 ms after the close, on which it sends the response.
func TestResumeHonoursRetryLikeConformanceSuite(t *testing.T) {
	t.Parallel()
	var closedAt, getAt time.Time
	var mu sync.Mutex
	srv, rec := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Mcp-Session-Id", "session-1")
		switch r.Method {
		case http.MethodPost:
			startSSE(w)
			writeSSE(w, "id: event-1\nretry: 500\ndata: \n\n")
			time.Sleep(50 * time.Millisecond)
			mu.Lock()
			closedAt = time.Now()
			mu.Unlock()
		case http.MethodGet:
			mu.Lock()
			getAt = time.Now()
			mu.Unlock()
			startSSE(w)
			writeSSE(w, "id: event-2\nretry: 500\ndata: \n\n")
			writeSSE(w, "event: message\nid: event-3\ndata: "+result7+"\n\n")
		}
	})
	c := New(srv.URL, nil)
	r, err := c.Post(t.Context(), []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"test_reconnection","arguments":{}}}`), []byte("7"),
		http.Header{"Mcp-Session-Id": {"session-1"}, "Mcp-Protocol-Version": {"2025-11-25"}})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := drainReply(t, r)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	if diff := cmp.Diff([]string{result7}, msgs); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	mu.Lock()
	waited := getAt.Sub(closedAt)
	mu.Unlock()
	if waited < 450*time.Millisecond {
		t.Errorf("reconnected %v after the close; the retry field asked for 500ms (tolerance 50ms)", waited)
	}
	if reqs := rec.requests(); len(reqs) != 2 || reqs[1].Header.Get("Last-Event-Id") != "event-1" {
		t.Errorf("requests %+v: want a GET with Last-Event-ID event-1", reqs)
	}
}

func TestStreamEndWithoutResumption(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		stream  string
		header  http.Header
		id      string
		want    []string
		wantErr error
	}{
		{
			name:    "no event ids: nothing to resume from",
			stream:  "data: " + progress + "\n\n",
			header:  legacyHeader(),
			id:      "7",
			want:    []string{progress},
			wantErr: ErrStreamEnded,
		},
		{
			name:    "modern era: streams are not resumable",
			stream:  "id: e1\ndata: " + progress + "\n\n",
			header:  modernHeader("tools/call", "slow"),
			id:      "7",
			want:    []string{progress},
			wantErr: ErrStreamEnded,
		},
		{
			name:   "a notification's stream just ends",
			stream: "id: e1\ndata: " + progress + "\n\n",
			header: legacyHeader(),
			want:   []string{progress},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, rec := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
				startSSE(w)
				writeSSE(w, tc.stream)
			})
			var sl sleeps
			c := New(srv.URL, &Options{Sleep: sl.sleep})
			var id []byte
			if tc.id != "" {
				id = []byte(tc.id)
			}
			r, err := c.Post(t.Context(), []byte(`{}`), id, tc.header)
			if err != nil {
				t.Fatal(err)
			}
			msgs, err := drainReply(t, r)
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, msgs); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
			if n := len(rec.requests()); n != 1 {
				t.Errorf("%d requests, want 1 (no reconnection)", n)
			}
		})
	}
}

// Reconnections that bring nothing new are bounded; reconnections that make progress are
// not counted against the bound, as a server that polls by closing its stream needs.
func TestReconnectBudget(t *testing.T) {
	t.Parallel()
	t.Run("no progress", func(t *testing.T) {
		t.Parallel()
		srv, rec := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
			startSSE(w)
			if n == 1 {
				writeSSE(w, "id: e1\ndata: \n\n")
			}
		})
		var sl sleeps
		c := New(srv.URL, &Options{Sleep: sl.sleep, MaxReconnects: 3})
		r, err := c.Post(t.Context(), []byte(`{}`), []byte("7"), legacyHeader())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := drainReply(t, r); !errors.Is(err, ErrStreamEnded) {
			t.Errorf("err = %v, want ErrStreamEnded", err)
		}
		if n := len(rec.requests()); n != 1+3 {
			t.Errorf("%d requests, want the POST and 3 GETs", n)
		}
		if diff := cmp.Diff([]time.Duration{time.Second, time.Second, time.Second}, sl.got()); diff != "" {
			t.Errorf("delays without a retry field (-want +got):\n%s", diff)
		}
	})
	t.Run("progress on every reconnection", func(t *testing.T) {
		t.Parallel()
		srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
			startSSE(w)
			if n < 10 {
				writeSSE(w, fmt.Sprintf("id: e%d\nretry: 5\ndata: \n\n", n))
				return
			}
			writeSSE(w, "id: last\ndata: "+result7+"\n\n")
		})
		var sl sleeps
		c := New(srv.URL, &Options{Sleep: sl.sleep, MaxReconnects: 2})
		r, err := c.Post(t.Context(), []byte(`{}`), []byte("7"), legacyHeader())
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := drainReply(t, r)
		if err != nil || len(msgs) != 1 {
			t.Errorf("messages %q, err %v; want the result after 9 reconnections", msgs, err)
		}
	})
	t.Run("negative disables reconnection", func(t *testing.T) {
		t.Parallel()
		srv, rec := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
			startSSE(w)
			writeSSE(w, "id: e1\ndata: \n\n")
		})
		c := New(srv.URL, &Options{MaxReconnects: -1})
		r, err := c.Post(t.Context(), []byte(`{}`), []byte("7"), legacyHeader())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := drainReply(t, r); !errors.Is(err, ErrStreamEnded) {
			t.Errorf("err = %v, want ErrStreamEnded", err)
		}
		if n := len(rec.requests()); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})
	t.Run("a long retry is capped", func(t *testing.T) {
		t.Parallel()
		srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
			startSSE(w)
			if n == 1 {
				writeSSE(w, "id: e1\nretry: 86400000\ndata: \n\n")
				return
			}
			writeSSE(w, "data: "+result7+"\n\n")
		})
		var sl sleeps
		c := New(srv.URL, &Options{Sleep: sl.sleep, MaxRetryDelay: 3 * time.Second})
		r, err := c.Post(t.Context(), []byte(`{}`), []byte("7"), legacyHeader())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := drainReply(t, r); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]time.Duration{3 * time.Second}, sl.got()); diff != "" {
			t.Errorf("delays (-want +got):\n%s", diff)
		}
	})
}

func TestResumeRefused(t *testing.T) {
	t.Parallel()
	srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Method == http.MethodGet {
			http.Error(w, "session not found", http.StatusNotFound)
			return
		}
		startSSE(w)
		writeSSE(w, "id: e1\ndata: \n\n")
	})
	var sl sleeps
	c := New(srv.URL, &Options{Sleep: sl.sleep})
	r, err := c.Post(t.Context(), []byte(`{}`), []byte("7"), legacyHeader())
	if err != nil {
		t.Fatal(err)
	}
	_, err = drainReply(t, r)
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusNotFound || se.Method != http.MethodGet {
		t.Errorf("err = %v, want the GET's 404 as a *StatusError", err)
	}
}

func TestGetStream(t *testing.T) {
	t.Parallel()
	const a, b = `{"jsonrpc":"2.0","method":"a"}`, `{"jsonrpc":"2.0","method":"b"}`
	t.Run("resumed with Last-Event-ID", func(t *testing.T) {
		t.Parallel()
		srv, rec := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
			startSSE(w)
			switch n {
			case 1:
				writeSSE(w, "id: e1\ndata: "+a+"\n\n")
			case 2:
				writeSSE(w, "id: e2\ndata: "+b+"\n\n")
				<-r.Context().Done()
			}
		})
		var sl sleeps
		c := New(srv.URL, &Options{Sleep: sl.sleep})
		r, err := c.Get(t.Context(), http.Header{"Mcp-Session-Id": {"s-1"}, "Last-Event-ID": {"e0"}})
		if err != nil {
			t.Fatal(err)
		}
		var msgs []string
		for range 2 {
			m, err := r.Next(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, string(m))
		}
		r.Close()
		if diff := cmp.Diff([]string{a, b}, msgs); diff != "" {
			t.Errorf("messages (-want +got):\n%s", diff)
		}
		var ids []string
		for _, req := range rec.requests() {
			ids = append(ids, req.Method+" "+req.Header.Get("Last-Event-ID")+" "+req.Header.Get("Accept"))
		}
		if diff := cmp.Diff([]string{"GET e0 text/event-stream", "GET e1 text/event-stream"}, ids); diff != "" {
			t.Errorf("requests (-want +got):\n%s", diff)
		}
	})
	t.Run("ends without event ids", func(t *testing.T) {
		t.Parallel()
		srv, rec := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
			startSSE(w)
			writeSSE(w, "data: "+a+"\n\n")
		})
		r, err := New(srv.URL, nil).Get(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := drainReply(t, r)
		if err != nil || len(msgs) != 1 {
			t.Errorf("messages %q, err %v; want one and io.EOF", msgs, err)
		}
		if n := len(rec.requests()); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})
	t.Run("a JSON answer is not a stream", func(t *testing.T) {
		t.Parallel()
		srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, a)
		})
		if _, err := New(srv.URL, nil).Get(t.Context(), nil); !errors.Is(err, ErrBadResponse) {
			t.Errorf("Get = %v, want ErrBadResponse", err)
		}
	})
}
