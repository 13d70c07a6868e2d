package sse

import (
	"bufio"
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestWriterWriteEvent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ev   Event
		want string
		// back is what a reader dispatches, when it differs from ev.
		back *Event
	}{
		{
			name: "data only",
			ev:   msg(`{"jsonrpc":"2.0"}`),
			want: "data: {\"jsonrpc\":\"2.0\"}\n\n",
		},
		{
			name: "all fields",
			ev:   Event{ID: "s1-7", Type: "message", Data: []byte("x"), Retry: 500 * time.Millisecond, HasRetry: true},
			want: "event: message\nid: s1-7\nretry: 500\ndata: x\n\n",
		},
		{
			name: "empty data is still dispatched",
			ev:   Event{ID: "p", Data: []byte{}},
			want: "id: p\ndata: \n\n",
		},
		{
			name: "data split on every kind of line break",
			ev:   msg("a\nb\r\nc\rd"),
			want: "data: a\ndata: b\ndata: c\ndata: d\n\n",
			back: &Event{Data: []byte("a\nb\nc\nd")},
		},
		{
			name: "trailing line break becomes an empty last line",
			ev:   msg("a\n"),
			want: "data: a\ndata: \n\n",
		},
		{
			name: "data that looks like fields stays data",
			ev:   msg("\n\nid: 9\n: c"),
			want: "data: \ndata: \ndata: id: 9\ndata: : c\n\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := NewWriter(&buf).WriteEvent(tc.ev); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, buf.String()); diff != "" {
				t.Errorf("wire (-want +got):\n%s", diff)
			}
			got, err := NewReader(&buf, 0).Next()
			if err != nil {
				t.Fatal(err)
			}
			want := tc.ev
			if tc.back != nil {
				want = *tc.back
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("read back (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWriterRefusesUnreadableFields(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ev   Event
	}{
		{"id with LF", Event{ID: "a\nb"}},
		{"id with CR", Event{ID: "a\rb"}},
		{"id with NUL", Event{ID: "a\x00b"}},
		{"type with LF", Event{Type: "message\ndata: injected"}},
		{"negative retry", Event{Retry: -time.Second, HasRetry: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := NewWriter(&buf).WriteEvent(tc.ev); err == nil {
				t.Fatal("WriteEvent accepted it")
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %q after refusing", buf.String())
			}
		})
	}
}

func TestWriterComment(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.WriteComment("keep-alive"); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteComment("two\nlines"); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteEvent(msg("after")); err != nil {
		t.Fatal(err)
	}
	if want := ": keep-alive\n: two\n: lines\ndata: after\n\n"; buf.String() != want {
		t.Errorf("wire = %q, want %q", buf.String(), want)
	}
	evs, err := readAll(NewReader(&buf, 0))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Event{msg("after")}, evs); diff != "" {
		t.Errorf("comments were not ignored (-want +got):\n%s", diff)
	}
}

func TestWriterFlush(t *testing.T) {
	t.Parallel()
	t.Run("http.ResponseWriter", func(t *testing.T) {
		rec := httptest.NewRecorder()
		w := NewWriter(rec)
		if err := w.WriteEvent(msg("x")); err != nil {
			t.Fatal(err)
		}
		if rec.Flushed {
			t.Fatal("flushed before Flush")
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if !rec.Flushed {
			t.Error("Flush did not flush the response")
		}
	})
	t.Run("bufio.Writer", func(t *testing.T) {
		var out strings.Builder
		bw := bufio.NewWriter(&out)
		w := NewWriter(bw)
		if err := w.WriteComment("ping"); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if out.String() != ": ping\n" {
			t.Errorf("after Flush: %q", out.String())
		}
	})
	t.Run("plain writer", func(t *testing.T) {
		if err := NewWriter(&bytes.Buffer{}).Flush(); err != nil {
			t.Errorf("Flush = %v, want nil", err)
		}
	})
}
