package streamhttp

import (
	"errors"
	"fmt"
	"net/http"
)

var (
	// ErrHeaderNotAllowed is returned (wrapped) when a caller passes a header that is not an
	// MCP protocol header or trace context: credentials belong in Options.Header.
	ErrHeaderNotAllowed = errors.New("streamhttp: header is not a protocol header")
	// ErrMessageTooLarge is returned (wrapped) for a message over Options.MaxMessageBytes.
	ErrMessageTooLarge = errors.New("streamhttp: message too large")
	// ErrStreamEnded is returned (wrapped) when a response stream ends before the response
	// to the request and cannot be resumed.
	ErrStreamEnded = errors.New("streamhttp: stream ended before the response")
	// ErrBadResponse is returned (wrapped) for a 2xx answer that is not a JSON body, an
	// event stream or empty.
	ErrBadResponse = errors.New("streamhttp: malformed response")
	// ErrClosed is returned by [Reply.Next] after [Reply.Close].
	ErrClosed = errors.New("streamhttp: reply closed")

	// errStreamClosed stands for io.EOF in errors, which must not match io.EOF.
	errStreamClosed = errors.New("the server closed the stream")
)

// StatusError is a non-2xx answer from the upstream.
type StatusError struct {
	Method      string // of the request
	Status      int
	Header      http.Header
	Body        []byte // at most Options.MaxErrorBody bytes of the body
	ContentType string
}

// Error names the status only: the body is the upstream's and may hold anything.
func (e *StatusError) Error() string {
	return fmt.Sprintf("streamhttp: %s answered %d %s (%d bytes of %s)",
		e.Method, e.Status, http.StatusText(e.Status), len(e.Body), orNone(e.ContentType))
}

func orNone(s string) string {
	if s == "" {
		return "no content type"
	}
	return s
}
