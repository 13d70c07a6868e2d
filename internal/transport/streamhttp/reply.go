package streamhttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpguard/mcpguard/internal/mcp"
	"github.com/mcpguard/mcpguard/internal/sse"
)

// Reply is the answer to a Post or a Get: the response status and headers, and the messages
// that follow. Next is not safe for concurrent use; Close may be called at any time.
type Reply struct {
	Status int
	Header http.Header // of the first response, e.g. Mcp-Session-Id

	c *Client
	// ctx bounds the whole reply, as an http.Request's context bounds its response body:
	// the stream outlives the call that opened it, and reconnections belong to it.
	ctx    context.Context
	cancel context.CancelFunc
	// detach, for a Post, stops the caller's context from ending the request; see finish.
	detach    func() bool
	finishing atomic.Bool

	requestKey string // id key of the request whose response ends the stream
	hasRequest bool
	standalone bool // the GET stream, resumed although no response is awaited
	resumable  bool
	sent       http.Header // the headers the stream was opened with; a resuming GET takes some

	mu     sync.Mutex
	body   io.ReadCloser // current response body
	closed atomic.Bool

	single []byte // the message of a JSON body, until yielded
	stream *sse.Reader
	done   bool
	err    error // sticky

	lastID      string // last event id of the stream, across reconnections
	resumedFrom string // lastID when the stream was last resumed
	retry       time.Duration
	hasRetry    bool
	failures    int // reconnections in a row that brought no new event id
}

// start reads the first response: a non-2xx status becomes a *StatusError.
func (r *Reply) start(resp *http.Response, streamOnly bool) error {
	c := r.c
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return c.statusError(resp)
	}
	if resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusNoContent || resp.ContentLength == 0 {
		drain(resp.Body)
		r.done = true
		return nil
	}
	switch mt := mediaType(resp.Header.Get("Content-Type")); {
	case mt == "text/event-stream":
		r.body = resp.Body
		r.stream = sse.NewReader(resp.Body, c.maxMsg)
		return nil
	case mt == "application/json" && !streamOnly:
		defer resp.Body.Close()
		msg, err := readBody(resp, c.maxMsg)
		if err != nil {
			return fmt.Errorf("streamhttp: read the response from %s: %w", c.safeURL, r.cause(err))
		}
		if len(msg) > c.maxMsg {
			return fmt.Errorf("%w: JSON response over %d bytes", ErrMessageTooLarge, c.maxMsg)
		}
		drain(resp.Body)
		if len(msg) == 0 {
			r.done = true
		} else {
			r.single = msg
		}
		return nil
	default:
		drain(resp.Body)
		return fmt.Errorf("%w: %d answer with content type %.64q", ErrBadResponse, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// Next returns the next message, a fresh copy, or io.EOF when there are no more: after the
// response to the request, or at the end of a stream that has no response to wait for. If
// ctx ends while Next waits, the reply is closed and Next returns ctx's error. After any
// other error, Next keeps returning it.
func (r *Reply) Next(ctx context.Context) ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.closed.Load() {
		return nil, ErrClosed
	}
	if r.stream != nil && !r.done && ctx.Done() != nil { // a whole answer is in memory: nothing to wait for
		stop := context.AfterFunc(ctx, r.cancel)
		defer stop()
	}
	msg, err := r.next()
	if err != nil {
		switch {
		case r.closed.Load():
			err = ErrClosed
		case ctx.Err() != nil:
			err = context.Cause(ctx)
		}
		r.err = err
		if !r.finishing.Load() {
			r.closeBody()
			r.cancel()
		}
		r.release()
	}
	return msg, err
}

// Whole reports whether the answer was read whole (an application/json body, or no body): Next
// then returns without waiting, and the reply holds no stream to resume.
func (r *Reply) Whole() bool { return r.stream == nil }

func (r *Reply) next() ([]byte, error) {
	if r.single != nil {
		msg := r.single
		r.single, r.done = nil, true
		return msg, nil
	}
	if r.done || r.stream == nil {
		return nil, io.EOF
	}
	for {
		ev, err := r.stream.Next()
		if err != nil {
			if id := r.stream.LastEventID(); id != "" {
				r.lastID = id
			}
			if d, ok := r.stream.Retry(); ok {
				r.retry, r.hasRetry = d, true
			}
			if errors.Is(err, sse.ErrEventTooLarge) {
				return nil, fmt.Errorf("%w: %w", ErrMessageTooLarge, err)
			}
			if err := r.resume(err); err != nil {
				return nil, err
			}
			continue
		}
		if ev.Type != "" && ev.Type != "message" {
			r.c.log.Debug("skipping SSE event of unknown type", slog.String("url", r.c.safeURL), slog.String("type", ev.Type))
			continue
		}
		if len(ev.Data) == 0 {
			continue // a priming event, which only carries an event id
		}
		if r.hasRequest {
			if key, ok := responseKey(ev.Data); ok && key == r.requestKey {
				r.done = true
				r.finish(r.stream.SourceEnded())
				r.release()
				return ev.Data, nil
			}
		}
		return ev.Data, nil
	}
}

// resume reconnects a stream that ended with cause, or returns why it cannot. The errors it
// returns never wrap io.EOF, which Next reserves for a complete reply.
func (r *Reply) resume(cause error) error {
	if r.ctx.Err() != nil {
		return r.cause(cause)
	}
	ended := errors.Is(cause, io.EOF)
	if ended {
		cause = errStreamClosed
	}
	if !r.hasRequest && !r.standalone {
		if ended {
			return io.EOF // a notification's stream has nothing to wait for
		}
		return fmt.Errorf("streamhttp: read the stream from %s: %w", r.c.safeURL, cause)
	}
	if !r.resumable || r.lastID == "" || r.c.maxReconnects < 0 {
		switch {
		case r.standalone && ended:
			return io.EOF
		case ended:
			return fmt.Errorf("%w (%s, no event id to resume from)", ErrStreamEnded, r.c.safeURL)
		default:
			return fmt.Errorf("%w (%s): %w", ErrStreamEnded, r.c.safeURL, cause)
		}
	}
	if r.lastID != r.resumedFrom {
		r.failures = 0
	}
	r.failures++
	if r.failures > r.c.maxReconnects {
		return fmt.Errorf("%w (%s): %d reconnections brought no new event; last: %w", ErrStreamEnded, r.c.safeURL, r.failures-1, cause)
	}
	r.resumedFrom = r.lastID
	delay := DefaultRetryDelay
	if r.hasRetry {
		delay = r.retry
	}
	delay = min(delay, r.c.maxRetry)
	r.closeBody()
	r.c.log.Debug("resuming SSE stream", slog.String("url", r.c.safeURL), slog.String("last_event_id", r.lastID),
		slog.Duration("delay", delay), slog.Int("attempt", r.failures), slog.String("cause", cause.Error()))
	if err := r.c.sleep(r.ctx, delay); err != nil {
		return r.cause(err)
	}
	req, err := r.c.newRequest(r.ctx, http.MethodGet, nil, resumeHeader(r.sent))
	if err != nil {
		return err
	}
	req.Header["Accept"] = acceptSSE
	req.Header.Set(mcp.HeaderLastEventID, r.lastID)
	resp, err := r.c.do(req)
	if err != nil {
		return fmt.Errorf("resume the stream after event %.64q: %w", r.lastID, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return fmt.Errorf("resume the stream after event %.64q: %w", r.lastID, r.c.statusError(resp))
	}
	if mt := mediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		drain(resp.Body)
		return fmt.Errorf("resume the stream after event %.64q: %w: content type %.64q", r.lastID, ErrBadResponse, resp.Header.Get("Content-Type"))
	}
	r.mu.Lock()
	if r.closed.Load() {
		r.mu.Unlock()
		resp.Body.Close()
		return ErrClosed
	}
	r.body = resp.Body
	r.mu.Unlock()
	r.release()
	r.stream = sse.NewReader(resp.Body, r.c.maxMsg)
	return nil
}

// release gives the stream reader's buffer back once nothing more is read from it. Only the
// goroutine calling Next calls it.
func (r *Reply) release() {
	if r.stream != nil {
		r.stream.Release()
	}
}

// cause prefers the reason the reply's context ended to the error it produced.
func (r *Reply) cause(err error) error {
	if c := context.Cause(r.ctx); c != nil {
		return c
	}
	return err
}

func (r *Reply) closeBody() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
}

// Close ends the reply and its stream. For a modern-era request whose response has not
// arrived, closing the stream is the cancellation signal to the server. Close is idempotent
// and safe to call while Next waits, which then returns ErrClosed. Once the response has
// arrived, the end of the body is left to finish.
func (r *Reply) Close() error {
	r.closed.Store(true)
	if r.finishing.Load() {
		return nil
	}
	r.cancel()
	r.closeBody()
	return nil
}

// finishTimeout bounds how long a stream may stay open after its response, read and dropped
// so that its connection can serve the next request.
const finishTimeout = time.Second

// finish ends a stream whose response has arrived; ended says the body was read to its end
// already (its connection is back in the pool). Closing the body before its end would close
// the connection, and a server normally ends the body right after the response, in a write of
// its own that may not have arrived yet: so the rest (at most 64 KiB, for at most
// finishTimeout) is read and dropped on a goroutine of its own, detached from the caller's
// context, and the connection goes back to the pool. A server that keeps the stream open loses
// the connection after finishTimeout.
func (r *Reply) finish(ended bool) {
	r.finishing.Store(true)
	r.mu.Lock()
	body := r.body
	r.body = nil
	r.mu.Unlock()
	if ended || body == nil || r.detach == nil || !r.detach() {
		if body != nil {
			body.Close()
		}
		r.cancel()
		return
	}
	go func() {
		t := time.AfterFunc(finishTimeout, r.cancel)
		drain(body)
		t.Stop()
		r.cancel()
	}()
}

// readBody reads a body of at most max bytes, or max+1 bytes when it is longer.
func readBody(resp *http.Response, max int) ([]byte, error) {
	if n := resp.ContentLength; n > 0 && n <= int64(max) {
		b := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	return io.ReadAll(io.LimitReader(resp.Body, int64(max)+1))
}
