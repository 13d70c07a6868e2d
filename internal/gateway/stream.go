package gateway

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcpguard/mcpguard/internal/sse"
)

// keepAlive is how often an idle SSE stream gets a comment line, so intermediaries keep it open.
const keepAlive = 15 * time.Second

// event is one message on a stream, numbered for Last-Event-ID.
type event struct {
	seq   int64
	data  []byte
	final bool // the JSON-RPC response that ends a POST's stream
	// status is the HTTP status a final response is sent with when it goes out as plain JSON.
	status int
	// streamed: the final response came from an upstream that answered on an SSE stream.
	streamed bool
}

// stream buffers the messages of one SSE stream so that a client that lost the connection can
// resume it with Last-Event-ID (2025-11-25 resumability). Any number of writers may follow it.
type stream struct {
	id string

	mu      sync.Mutex
	events  []event
	next    int64
	done    bool
	changed chan struct{} // closed and replaced on every change

	detachOnce sync.Once
	detached   chan struct{} // closed when the upstream ended its side without answering
}

func newStream(id string) *stream {
	return &stream{id: id, next: 1, changed: make(chan struct{}), detached: make(chan struct{})}
}

// detach ends the HTTP responses following the stream without ending the stream: the
// upstream closed its reply stream mid-call (SSE polling), so the client is let go the same
// way and may resume with Last-Event-ID; whatever comes later is kept for it.
func (st *stream) detach() {
	st.detachOnce.Do(func() { close(st.detached) })
}

func (st *stream) push(data []byte, final bool) {
	st.pushEvent(event{data: data, final: final, status: http.StatusOK})
}

// pushReply ends the stream with the call's response, sent with status when it goes out as
// plain JSON; streamed says the upstream answered it on an SSE stream.
func (st *stream) pushReply(data []byte, status int, streamed bool) {
	st.pushEvent(event{data: data, final: true, status: status, streamed: streamed})
}

func (st *stream) pushEvent(ev event) {
	st.mu.Lock()
	if st.done {
		st.mu.Unlock()
		return
	}
	ev.seq = st.next
	st.events = append(st.events, ev)
	st.next++
	if len(st.events) > maxStreamEvents {
		st.events = st.events[len(st.events)-maxStreamEvents:]
	}
	if ev.final {
		st.done = true
	}
	close(st.changed)
	st.changed = make(chan struct{})
	st.mu.Unlock()
}

func (st *stream) finish() {
	st.mu.Lock()
	if !st.done {
		st.done = true
		close(st.changed)
		st.changed = make(chan struct{})
	}
	st.mu.Unlock()
}

func (st *stream) finished() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.done
}

// since returns the events after seq, whether the stream has ended, and a channel closed on the
// next change.
func (st *stream) since(seq int64) ([]event, bool, <-chan struct{}) {
	st.mu.Lock()
	defer st.mu.Unlock()
	i := 0
	for i < len(st.events) && st.events[i].seq <= seq {
		i++
	}
	return append([]event(nil), st.events[i:]...), st.done, st.changed
}

// first waits for the stream's first event. It reports errDetached when the upstream let go of
// the call first, and ctx's error when the client went away.
func (st *stream) first(ctx context.Context) (event, error) {
	for {
		evs, done, changed := st.since(0)
		if len(evs) > 0 {
			return evs[0], nil
		}
		if done {
			return event{}, errDetached // ended without a message: a cancelled call
		}
		select {
		case <-changed:
		case <-st.detached:
			return event{}, errDetached
		case <-ctx.Done():
			return event{}, ctx.Err()
		}
	}
}

var errDetached = errors.New("upstream ended its reply stream")

// eventID names an event for Last-Event-ID: the stream id and the event's number.
func eventID(streamID string, seq int64) string {
	return streamID + "_" + strconv.FormatInt(seq, 10)
}

// parseEventID splits a Last-Event-ID value.
func parseEventID(v string) (streamID string, seq int64, ok bool) {
	i := strings.LastIndexByte(v, '_')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.ParseInt(v[i+1:], 10, 64)
	if err != nil || n < 0 {
		return "", 0, false
	}
	return v[:i], n, true
}

// follow writes a stream's events after seq to an SSE response until the stream ends or the
// client goes away.
func follow(ctx context.Context, w http.ResponseWriter, st *stream, seq int64) {
	sw := sse.NewWriter(w)
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		evs, done, changed := st.since(seq)
		for _, e := range evs {
			if err := sw.WriteEvent(sse.Event{ID: eventID(st.id, e.seq), Type: "message", Data: e.data}); err != nil {
				return
			}
			seq = e.seq
		}
		if len(evs) > 0 {
			if err := sw.Flush(); err != nil {
				return
			}
		}
		if done {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		case <-st.detached:
			return
		case <-tick.C:
			if sw.WriteComment("") != nil || sw.Flush() != nil {
				return
			}
		}
	}
}

// primingRetry is the reconnection delay announced to legacy clients in each stream's priming
// event.
const primingRetry = time.Second

// startPrimed opens a legacy SSE response with a priming event: an event id and empty data, so
// that a client that loses the stream before any message can still resume it (SEP-1699).
func startPrimed(w http.ResponseWriter, st *stream) {
	startSSE(w, http.StatusOK)
	sw := sse.NewWriter(w)
	_ = sw.WriteEvent(priming(st))
	_ = sw.Flush()
}

func priming(st *stream) sse.Event {
	return sse.Event{ID: eventID(st.id, 0), Retry: primingRetry, HasRetry: true}
}

func startSSE(w http.ResponseWriter, status int) {
	sseHeaders(w.Header())
	w.WriteHeader(status)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

func sseHeaders(h http.Header) {
	// The values are shared by every response: a header's values are replaced, never modified
	// in place.
	h["Content-Type"] = sseContentType
	h["Cache-Control"] = sseCacheControl
	h["X-Accel-Buffering"] = sseNoBuffering
}

var (
	sseContentType  = []string{"text/event-stream"}
	sseCacheControl = []string{"no-cache, no-transform"}
	sseNoBuffering  = []string{"no"}
)

// writeWholeSSE answers a legacy POST whose stream is complete before anything was sent (the
// response is its only event) with what a client following the stream would read, the priming
// event and the response, as one body of known length: one write instead of a flush per event
// and a closing chunk.
func writeWholeSSE(w http.ResponseWriter, st *stream, ev event) {
	x := wholeSSEs.Get().(*wholeSSE)
	x.body.Reset()
	_ = x.sw.WriteEvent(priming(st))
	_ = x.sw.WriteEvent(sse.Event{ID: eventID(st.id, ev.seq), Type: "message", Data: ev.data})
	sseHeaders(w.Header())
	w.Header().Set("Content-Length", strconv.Itoa(x.body.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(x.body.Bytes()) // a Writer keeps nothing of what it is given
	if x.body.Cap() <= maxPooledSSE {
		wholeSSEs.Put(x)
	}
}

// wholeSSE is the buffer a whole SSE answer is written into, with its event writer; pooled,
// since every answer of a legacy POST needs one for as long as it takes to write it.
type wholeSSE struct {
	body bytes.Buffer
	sw   *sse.Writer
}

// maxPooledSSE is the largest buffer the pool keeps: a huge answer's is left to the collector.
const maxPooledSSE = 64 << 10

var wholeSSEs = sync.Pool{New: func() any {
	x := &wholeSSE{}
	x.sw = sse.NewWriter(&x.body)
	return x
}}
