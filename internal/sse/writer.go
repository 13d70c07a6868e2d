package sse

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Writer writes an event stream, typically to an http.ResponseWriter. Each call writes whole
// lines in one Write; call [Writer.Flush] to push them to the client. A Writer is not safe
// for concurrent use.
type Writer struct {
	w   io.Writer
	buf []byte
}

// NewWriter returns a Writer to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w}
}

// WriteEvent writes ev as one block ended by a blank line. Its data is split into one "data"
// line per line (on CRLF, LF or CR), so a reader dispatches exactly ev.Data with its line
// breaks normalised to LF; empty data is still sent, as one empty data line, so the event is
// dispatched. An ID or Type that a reader could not read back (one holding CR or LF, or an ID
// holding NUL) and a negative Retry are refused, and nothing is written.
func (w *Writer) WriteEvent(ev Event) error {
	if strings.ContainsAny(ev.ID, "\r\n\x00") {
		return errors.New("sse: event id contains CR, LF or NUL")
	}
	if strings.ContainsAny(ev.Type, "\r\n") {
		return errors.New("sse: event type contains CR or LF")
	}
	if ev.HasRetry && ev.Retry < 0 {
		return fmt.Errorf("sse: negative retry %v", ev.Retry)
	}
	b := w.buf[:0]
	if ev.Type != "" {
		b = append(append(append(b, "event: "...), ev.Type...), '\n')
	}
	if ev.ID != "" {
		b = append(append(append(b, "id: "...), ev.ID...), '\n')
	}
	if ev.HasRetry {
		b = append(strconv.AppendInt(append(b, "retry: "...), ev.Retry.Milliseconds(), 10), '\n')
	}
	data := ev.Data
	for {
		i := indexLineBreak(data)
		b = append(b, "data: "...)
		if i < 0 {
			b = append(append(b, data...), '\n')
			break
		}
		b = append(append(b, data[:i]...), '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	b = append(b, '\n')
	w.buf = b
	if cap(w.buf) > 64<<10 {
		w.buf = nil // do not keep one huge event's buffer for the life of the stream
	}
	_, err := w.w.Write(b)
	return err
}

// WriteComment writes text as comment lines, which readers ignore: a keep-alive. Each line of
// text becomes one comment line.
func (w *Writer) WriteComment(text string) error {
	b := w.buf[:0]
	for {
		i := strings.IndexAny(text, "\r\n")
		b = append(b, ": "...)
		if i < 0 {
			b = append(append(b, text...), '\n')
			break
		}
		b = append(append(b, text[:i]...), '\n')
		if text[i] == '\r' && i+1 < len(text) && text[i+1] == '\n' {
			i++
		}
		text = text[i+1:]
	}
	w.buf = b
	_, err := w.w.Write(b)
	return err
}

// Flush sends what was written to the client when the underlying writer can flush (an
// http.ResponseWriter, a *bufio.Writer, anything with Flush); otherwise it does nothing.
func (w *Writer) Flush() error {
	if rw, ok := w.w.(http.ResponseWriter); ok {
		// The controller also finds a Flush behind wrappers that implement Unwrap.
		err := http.NewResponseController(rw).Flush()
		if errors.Is(err, http.ErrNotSupported) {
			return nil
		}
		return err
	}
	switch f := w.w.(type) {
	case interface{ Flush() error }:
		return f.Flush()
	case interface{ Flush() }:
		f.Flush()
	}
	return nil
}

func indexLineBreak(b []byte) int {
	for i, c := range b {
		if c == '\n' || c == '\r' {
			return i
		}
	}
	return -1
}
