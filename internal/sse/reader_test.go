package sse

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// readAll reads every event of r until the end of the stream or an error.
func readAll(r *Reader) ([]Event, error) {
	var evs []Event
	for {
		ev, err := r.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return evs, nil
			}
			return evs, err
		}
		evs = append(evs, ev)
	}
}

func msg(data string) Event { return Event{Data: []byte(data)} }

// asText compares byte slices as text: readable diffs, and fast on large events.
var asText = cmp.Transformer("text", func(b []byte) string { return string(b) })

func TestReader(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		input string
		want  []Event
	}{
		{
			name:  "one event",
			input: "data: hello\n\n",
			want:  []Event{msg("hello")},
		},
		{
			name:  "multi-line data joined with LF",
			input: "data: YHOO\ndata: +2\ndata: 10\n\n",
			want:  []Event{msg("YHOO\n+2\n10")},
		},
		{
			name:  "space after the colon is optional and only one is removed",
			input: "data:test\n\ndata: test\n\ndata:  two\n\n",
			want:  []Event{msg("test"), msg("test"), msg(" two")},
		},
		{
			name: "field without colon has an empty value; a block without data is not dispatched",
			// The standard's own example: the first block dispatches "", the second "\n",
			// and the last is unterminated.
			input: "data\n\ndata\ndata\n\ndata:",
			want:  []Event{msg(""), msg("\n")},
		},
		{
			name:  "CRLF line endings",
			input: "event: add\r\ndata: 1\r\ndata: 2\r\n\r\n",
			want:  []Event{{Type: "add", Data: []byte("1\n2")}},
		},
		{
			name:  "CR line endings",
			input: "data: a\rdata: b\r\rdata: c\r\r",
			want:  []Event{msg("a\nb"), msg("c")},
		},
		{
			name:  "mixed line endings",
			input: "data: a\r\ndata: b\rdata: c\n\r\n",
			want:  []Event{msg("a\nb\nc")},
		},
		{
			name:  "comments are ignored, including between data lines",
			input: ": keep-alive\n\n:\ndata: a\n: note\ndata: b\n\n",
			want:  []Event{msg("a\nb")},
		},
		{
			name:  "a leading byte order mark is skipped",
			input: "\xef\xbb\xbfdata: x\n\n",
			want:  []Event{msg("x")},
		},
		{
			name:  "only the first byte order mark is skipped",
			input: "\xef\xbb\xbf\xef\xbb\xbfdata: x\n\ndata: y\n\n",
			want:  []Event{msg("y")},
		},
		{
			name:  "a byte order mark later in the stream is data",
			input: "data: \xef\xbb\xbfx\n\n",
			want:  []Event{msg("\xef\xbb\xbfx")},
		},
		{
			name:  "id persists across events and can be cleared",
			input: "id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n",
			want:  []Event{{ID: "1", Data: []byte("a")}, {ID: "1", Data: []byte("b")}, msg("c")},
		},
		{
			name:  "an id holding NUL is ignored",
			input: "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
			want:  []Event{{ID: "1", Data: []byte("a")}, {ID: "1", Data: []byte("b")}},
		},
		{
			name:  "id from a block without data applies to the next event",
			input: "id: 7\n\ndata: a\n\n",
			want:  []Event{{ID: "7", Data: []byte("a")}},
		},
		{
			name:  "retry in milliseconds",
			input: "retry: 1500\ndata: a\n\ndata: b\n\n",
			want:  []Event{{Data: []byte("a"), Retry: 1500 * time.Millisecond, HasRetry: true}, msg("b")},
		},
		{
			name:  "retry that is not all ASCII digits is ignored",
			input: "retry: 1.5\nretry: -1\nretry: 10ms\nretry:\nretry:  5\ndata: a\n\n",
			want:  []Event{msg("a")},
		},
		{
			name:  "retry too large for a duration is capped",
			input: "retry: 99999999999999999999999\ndata: a\n\n",
			want:  []Event{{Data: []byte("a"), Retry: maxRetry, HasRetry: true}},
		},
		{
			name:  "event type is reset after dispatch",
			input: "event: endpoint\ndata: /m\n\ndata: {}\n\n",
			want:  []Event{{Type: "endpoint", Data: []byte("/m")}, msg("{}")},
		},
		{
			name:  "an event type without data is dropped with its block",
			input: "event: x\n\ndata: a\n\n",
			want:  []Event{msg("a")},
		},
		{
			name:  "unknown fields are ignored and names are case-sensitive",
			input: "foo: bar\nData: no\nDATA: no\ndata: yes\n\n",
			want:  []Event{msg("yes")},
		},
		{
			name:  "a colon in the value is kept",
			input: "data: a: b:c\n\n",
			want:  []Event{msg("a: b:c")},
		},
		{
			name:  "the last event without its blank line is discarded",
			input: "data: a\n\ndata: b\n",
			want:  []Event{msg("a")},
		},
		{
			name:  "an empty stream has no events",
			input: "",
			want:  nil,
		},
		{
			name:  "NUL and invalid UTF-8 in data are passed through",
			input: "data: \x00\xff\n\n",
			want:  []Event{msg("\x00\xff")},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Whole, and one byte per Read: the split of the input must not matter.
			for _, src := range []struct {
				name string
				r    io.Reader
			}{
				{"whole", strings.NewReader(tc.input)},
				{"one byte at a time", iotest.OneByteReader(strings.NewReader(tc.input))},
				{"data with EOF", iotest.DataErrReader(strings.NewReader(tc.input))},
			} {
				got, err := readAll(NewReader(src.r, 0))
				if err != nil {
					t.Fatalf("%s: Next: %v", src.name, err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("%s: events (-want +got):\n%s", src.name, diff)
				}
			}
		})
	}
}

func TestReaderStreamState(t *testing.T) {
	t.Parallel()
	r := NewReader(strings.NewReader("id: a\nretry: 500\ndata:\n\nid: b\nretry: 250\n\n"), 0)
	ev, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	want := Event{ID: "a", Data: []byte{}, Retry: 500 * time.Millisecond, HasRetry: true}
	if diff := cmp.Diff(want, ev); diff != "" {
		t.Errorf("priming event (-want +got):\n%s", diff)
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("Next = %v, want io.EOF", err)
	}
	// The last block dispatched nothing but still moved the stream's state.
	if got := r.LastEventID(); got != "b" {
		t.Errorf("LastEventID = %q, want %q", got, "b")
	}
	if d, ok := r.Retry(); d != 250*time.Millisecond || !ok {
		t.Errorf("Retry = %v, %v; want 250ms, true", d, ok)
	}
}

func TestReaderBounds(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 100)
	for _, tc := range []struct {
		name    string
		input   string
		max     int
		want    []Event
		wantErr error
	}{
		{
			name:  "data exactly at the bound",
			input: "data: " + long + "\n\n",
			max:   100,
			want:  []Event{msg(long)},
		},
		{
			name:    "one data line over the bound",
			input:   "data: " + long + "x\n\n",
			max:     100,
			wantErr: ErrEventTooLarge,
		},
		{
			name:  "data lines add up, line feeds included",
			input: "data: " + long[:50] + "\ndata: " + long[:49] + "\n\n",
			max:   100,
			want:  []Event{msg(long[:50] + "\n" + long[:49])},
		},
		{
			name:    "data lines add up over the bound",
			input:   "data: " + long[:50] + "\ndata: " + long[:50] + "\n\n",
			max:     100,
			wantErr: ErrEventTooLarge,
		},
		{
			name:  "the bound is per event",
			input: "data: " + long + "\n\ndata: " + long + "\n\n",
			max:   100,
			want:  []Event{msg(long), msg(long)},
		},
		{
			name:    "an endless line without a terminator",
			input:   "data: " + strings.Repeat("y", 200<<10),
			max:     100 << 10,
			wantErr: ErrEventTooLarge,
		},
		{
			name:    "an endless comment",
			input:   ":" + strings.Repeat("c", 300),
			max:     100,
			wantErr: ErrEventTooLarge,
		},
		{
			name:  "a long line that spans many reads but fits",
			input: "data: " + strings.Repeat("z", 300<<10) + "\n\n",
			max:   300 << 10,
			want:  []Event{msg(strings.Repeat("z", 300<<10))},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := readAll(NewReader(strings.NewReader(tc.input), tc.max))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error = %v, want %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got, asText); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReaderErrorIsSticky(t *testing.T) {
	t.Parallel()
	boom := errors.New("connection reset")
	r := NewReader(io.MultiReader(strings.NewReader("data: a\n\ndata: b"), iotest.ErrReader(boom)), 0)
	if ev, err := r.Next(); err != nil || string(ev.Data) != "a" {
		t.Fatalf("Next = %q, %v; want a, nil", ev.Data, err)
	}
	for range 2 {
		if _, err := r.Next(); !errors.Is(err, boom) {
			t.Fatalf("Next = %v, want %v", err, boom)
		}
	}
}

// An event ended by CR must be dispatched without waiting for the next byte, which may never
// come on a live stream (the next byte decides only whether a LF belongs to the same break).
func TestReaderDispatchesOnCRWithoutReadingAhead(t *testing.T) {
	t.Parallel()
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("data: a\r\r"))
	got := make(chan Event, 1)
	r := NewReader(pr, 0)
	go func() {
		ev, err := r.Next()
		if err == nil {
			got <- ev
		}
	}()
	select {
	case ev := <-got:
		if string(ev.Data) != "a" {
			t.Errorf("Data = %q, want a", ev.Data)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the event was not dispatched until more input arrived")
	}
	// The LF of a CRLF split across writes is still recognised as part of the break.
	go pw.Write([]byte("\ndata: b\n\n"))
	ev, err := r.Next()
	if err != nil || string(ev.Data) != "b" {
		t.Errorf("Next = %q, %v; want b, nil", ev.Data, err)
	}
}

func TestReaderDataBelongsToCaller(t *testing.T) {
	t.Parallel()
	r := NewReader(strings.NewReader("data: first\n\ndata: second\n\n"), 0)
	a, _ := r.Next()
	b, _ := r.Next()
	if string(a.Data) != "first" || string(b.Data) != "second" {
		t.Errorf("events = %q, %q; the first event's data was overwritten", a.Data, b.Data)
	}
}

// TestReaderRelease: a released reader reads nothing more, and the buffer it gave back serves
// the next reader without carrying anything over.
func TestReaderRelease(t *testing.T) {
	r := NewReader(strings.NewReader("data: first\n\ndata: second\n\n"), 0)
	if ev, err := r.Next(); err != nil || string(ev.Data) != "first" {
		t.Fatalf("Next = %q, %v", ev.Data, err)
	}
	r.Release()
	if _, err := r.Next(); !errors.Is(err, ErrReleased) {
		t.Errorf("Next after Release: %v, want ErrReleased", err)
	}
	for range 4 {
		r2 := NewReader(strings.NewReader("id: 7\ndata: third\n\n"), 0)
		if ev, err := r2.Next(); err != nil || string(ev.Data) != "third" || ev.ID != "7" {
			t.Fatalf("a reader after a release: %+v, %v", ev, err)
		}
		if _, err := r2.Next(); err != io.EOF {
			t.Fatalf("end of stream: %v, want io.EOF", err)
		}
		r2.Release()
	}
}
