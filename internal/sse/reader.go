// Package sse reads and writes Server-Sent Events streams as the WHATWG HTML Living Standard
// defines them, with every event bounded in size.
package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
)

// DefaultMaxEventBytes bounds an event when [NewReader] is given no positive bound.
const DefaultMaxEventBytes = 16 << 20

// ErrEventTooLarge is returned (wrapped) by [Reader.Next] when one event, or one line of the
// stream, is larger than the reader's bound. The stream cannot be resynchronised after it.
var ErrEventTooLarge = errors.New("sse: event too large")

// Event is one dispatched event.
type Event struct {
	// ID is the stream's last event ID when the event was dispatched: the value of the most
	// recent "id" field, in this event or an earlier one, as the standard defines it. An "id"
	// field whose value contains U+0000 NULL is ignored.
	ID string
	// Type is the value of the "event" field, or "" when the event had none (which the
	// standard treats as "message").
	Type string
	// Data is the event's data lines joined with "\n". It belongs to the caller.
	Data []byte
	// Retry is the reconnection time set by a "retry" field in this event, if HasRetry.
	Retry    time.Duration
	HasRetry bool
}

// Initial and largest size of the read buffer; a longer line is gathered in a separate line
// buffer, up to the event bound.
const (
	minBufSize = 4 << 10
	maxBufSize = 64 << 10
)

// maxFieldOverhead is the room a line may take beyond the event bound for its field name.
const maxFieldOverhead = 64

const bom = "\xef\xbb\xbf" // U+FEFF in UTF-8

// maxRetry caps the retry field, in whole milliseconds, so that converting milliseconds to a
// Duration cannot overflow.
const maxRetry = time.Duration(1<<63-1) / time.Millisecond * time.Millisecond

// Reader parses an event stream. It never buffers more than about twice its event bound.
// A Reader is not safe for concurrent use.
type Reader struct {
	src io.Reader
	max int

	buf        []byte // read buffer; buf[start:end] is unread
	start, end int
	srcErr     error // error from src, reported once the buffer is drained
	err        error // sticky error returned by Next

	line     []byte // a line that spans refills of buf
	skipLF   bool   // the last line ended in CR: a leading LF belongs to it
	bomSeen  bool   // the start of the stream has been checked for a byte order mark
	lastID   string // the stream's last event ID
	retry    time.Duration
	hasRetry bool

	// The event being assembled.
	data     []byte
	hasData  bool // a data field was seen (the standard's data buffer is not empty)
	typ      []byte
	evRetry  time.Duration
	evHasRet bool
	pending  int // bytes of the current event counted against max
}

// NewReader returns a Reader of r that rejects any event, or any line, larger than
// maxEventBytes (DefaultMaxEventBytes when maxEventBytes <= 0).
func NewReader(r io.Reader, maxEventBytes int) *Reader {
	if maxEventBytes <= 0 {
		maxEventBytes = DefaultMaxEventBytes
	}
	return &Reader{src: r, max: maxEventBytes, buf: bufPool.Get().(*[minBufSize]byte)[:]}
}

// bufPool keeps read buffers of the initial size: a client reads one short stream per request,
// and a fresh 4 KiB buffer for each was the largest allocation of a proxied call.
var bufPool = sync.Pool{New: func() any { return new([minBufSize]byte) }}

// ErrReleased is what Next returns after Release.
var ErrReleased = errors.New("sse: reader released")

// Release gives the reader's buffer back for reuse; the reader reads nothing more. Call it
// from the goroutine that calls Next, once the stream is no longer wanted.
func (r *Reader) Release() {
	if len(r.buf) == minBufSize {
		bufPool.Put((*[minBufSize]byte)(r.buf))
	}
	r.buf, r.start, r.end = nil, 0, 0
	r.line, r.data = nil, nil
	if r.err == nil {
		r.err = ErrReleased
	}
}

// SourceEnded reports whether the underlying reader has already returned io.EOF: nothing is
// left to read from it, whatever the reader still holds in its buffer.
func (r *Reader) SourceEnded() bool { return r.srcErr == io.EOF }

// LastEventID returns the stream's last event ID, which an "id" field sets even in a block
// that dispatches no event; a client resuming the stream sends it as Last-Event-ID.
func (r *Reader) LastEventID() string { return r.lastID }

// Retry returns the reconnection time most recently set by a "retry" field anywhere in the
// stream, and whether there was one.
func (r *Reader) Retry() (time.Duration, bool) { return r.retry, r.hasRetry }

// Next returns the next event. It returns io.EOF at the end of the stream (an event that is
// not terminated by a blank line is discarded, as the standard requires), a wrapped
// [ErrEventTooLarge] when an event exceeds the bound, and otherwise the error of the
// underlying reader. Comments are skipped. After an error, Next keeps returning it.
func (r *Reader) Next() (Event, error) {
	if r.err != nil {
		return Event{}, r.err
	}
	for {
		line, err := r.readLine()
		if err != nil {
			r.err = err
			return Event{}, err
		}
		if len(line) == 0 {
			if ev, ok := r.dispatch(); ok {
				return ev, nil
			}
			continue
		}
		if err := r.field(line); err != nil {
			r.err = err
			return Event{}, err
		}
	}
}

// dispatch ends the current block, returning its event unless its data buffer is empty.
func (r *Reader) dispatch() (Event, bool) {
	var ev Event
	ok := r.hasData
	if ok {
		ev.ID = r.lastID
		ev.Type = eventType(r.typ)
		ev.Data = bytes.Clone(r.data)
		if ev.Data == nil {
			ev.Data = []byte{}
		}
		ev.Retry, ev.HasRetry = r.evRetry, r.evHasRet
	}
	r.data = r.data[:0]
	r.hasData = false
	r.typ = r.typ[:0]
	r.evRetry, r.evHasRet = 0, false
	r.pending = 0
	return ev, ok
}

// eventType returns typ as a string without allocating for the common types.
func eventType(typ []byte) string {
	switch string(typ) {
	case "":
		return ""
	case "message":
		return "message"
	case "endpoint":
		return "endpoint"
	}
	return string(typ)
}

// field applies one non-empty line of the stream.
func (r *Reader) field(line []byte) error {
	if line[0] == ':' {
		return nil // comment
	}
	name, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(name) {
	case "data":
		n := len(value)
		if r.hasData {
			n++
		}
		if err := r.count(n); err != nil {
			return err
		}
		if r.hasData {
			r.data = append(r.data, '\n')
		}
		r.data = append(r.data, value...)
		r.hasData = true
	case "event":
		if err := r.count(len(value) - len(r.typ)); err != nil {
			return err
		}
		r.typ = append(r.typ[:0], value...)
	case "id":
		if bytes.IndexByte(value, 0) >= 0 {
			return nil
		}
		if string(value) != r.lastID {
			r.lastID = string(value)
		}
	case "retry":
		if d, ok := parseRetry(value); ok {
			r.retry, r.hasRetry = d, true
			r.evRetry, r.evHasRet = d, true
		}
	}
	return nil
}

// count charges n more bytes to the current event.
func (r *Reader) count(n int) error {
	if r.pending+n > r.max {
		return fmt.Errorf("%w: more than %d bytes", ErrEventTooLarge, r.max)
	}
	r.pending += n
	return nil
}

// parseRetry interprets a retry value: ASCII digits only, in milliseconds.
func parseRetry(v []byte) (time.Duration, bool) {
	if len(v) == 0 {
		return 0, false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	ms, err := strconv.ParseUint(string(v), 10, 64)
	if err != nil || ms > uint64(maxRetry/time.Millisecond) {
		return maxRetry, true // all digits, only too large
	}
	return time.Duration(ms) * time.Millisecond, true
}

// readLine returns the next line without its terminator (CRLF, LF or CR). The slice is valid
// until the next call. At the end of the stream an unterminated line is discarded.
func (r *Reader) readLine() ([]byte, error) {
	r.line = r.line[:0]
	spanning := false // the line so far is in r.line, not in buf
	lineMax := r.max + maxFieldOverhead
	for {
		if r.start == r.end {
			if err := r.fill(); err != nil {
				return nil, err
			}
			continue
		}
		if !r.bomSeen {
			avail := r.buf[r.start:r.end]
			if len(avail) < len(bom) && bytes.HasPrefix([]byte(bom), avail) && r.srcErr == nil {
				if err := r.fill(); err != nil {
					return nil, err
				}
				continue
			}
			r.bomSeen = true
			if bytes.HasPrefix(avail, []byte(bom)) {
				r.start += len(bom)
				continue
			}
		}
		if r.skipLF {
			r.skipLF = false
			if r.buf[r.start] == '\n' {
				r.start++
				continue
			}
		}
		chunk := r.buf[r.start:r.end]
		i := bytes.IndexByte(chunk, '\n')
		if i < 0 {
			i = len(chunk)
		}
		if j := bytes.IndexByte(chunk[:i], '\r'); j >= 0 {
			i = j
		}
		if len(r.line)+i > lineMax {
			return nil, r.tooLong()
		}
		if i < len(chunk) {
			r.skipLF = chunk[i] == '\r'
			r.start += i + 1
			if !spanning {
				return chunk[:i], nil
			}
			r.line = append(r.line, chunk[:i]...)
			return r.line, nil
		}
		// No terminator yet: make room for more input, keeping the partial line.
		switch {
		case spanning:
			r.line = append(r.line, chunk...)
			r.start = r.end
			continue // the buffer is empty: the next turn refills it
		case r.start > 0:
			n := copy(r.buf, chunk)
			r.start, r.end = 0, n
		case r.end < len(r.buf):
			// Room after the partial line already.
		case len(r.buf) < maxBufSize:
			nb := make([]byte, 2*len(r.buf))
			r.end = copy(nb, chunk)
			r.buf, r.start = nb, 0
		default:
			spanning = true
			r.line = append(r.line, chunk...)
			r.start = r.end
			continue
		}
		if err := r.fill(); err != nil {
			return nil, err
		}
	}
}

func (r *Reader) tooLong() error {
	return fmt.Errorf("%w: a line is longer than %d bytes", ErrEventTooLarge, r.max)
}

// fill reads more input after buf[end]; buf[start:end] is kept. It returns the source's
// error once nothing is left to read, io.EOF for a clean end.
func (r *Reader) fill() error {
	if r.srcErr != nil {
		return r.srcErr
	}
	if r.start == r.end {
		r.start, r.end = 0, 0
	}
	for range 100 {
		n, err := r.src.Read(r.buf[r.end:])
		if n < 0 || n > len(r.buf)-r.end {
			r.srcErr = errors.New("sse: invalid read count from the underlying reader")
			return r.srcErr
		}
		r.end += n
		if err != nil {
			r.srcErr = err
			if n > 0 {
				return nil
			}
			return err
		}
		if n > 0 {
			return nil
		}
	}
	r.srcErr = io.ErrNoProgress
	return r.srcErr
}
