// Package jsonrpc parses and encodes JSON-RPC 2.0 messages strictly, so that the gateway and any
// upstream read the same bytes the same way.
package jsonrpc

import (
	"strconv"
)

// Standard JSON-RPC 2.0 error codes.
const (
	CodeParseError     int64 = -32700
	CodeInvalidRequest int64 = -32600
	CodeMethodNotFound int64 = -32601
	CodeInvalidParams  int64 = -32602
	CodeInternalError  int64 = -32603
)

// Kind tells what a Message is.
type Kind uint8

// The kinds of message. The zero Kind is KindInvalid, so that a Message that was not produced
// by a successful Parse cannot be mistaken for a request.
const (
	KindInvalid      Kind = iota
	KindRequest           // has "method" and "id"
	KindNotification      // has "method", no "id"
	KindResponse          // has "id" and "result"
	KindError             // has "id" (possibly null) and "error"
)

// String returns a lower-case name for k.
func (k Kind) String() string {
	switch k {
	case KindRequest:
		return "request"
	case KindNotification:
		return "notification"
	case KindResponse:
		return "response"
	case KindError:
		return "error"
	default:
		return "invalid"
	}
}

// MaxIDBytes bounds the encoded length of an id in a parsed message.
const MaxIDBytes = 256

// ID is a JSON-RPC request id, held as its canonical JSON encoding: an integer without sign
// on zero, or a string with minimal escaping. Two ids that a JSON reader considers equal
// ("a" and "\u0061", 0 and -0) have equal IDs. ID is comparable, so it can be a map key.
// The zero ID means "no id" and encodes as null.
type ID struct {
	raw string
}

// StringID returns the id for the string s.
func StringID(s string) ID { return ID{raw: string(AppendQuote(nil, s))} }

// IntID returns the id for the integer n.
func IntID(n int64) ID { return ID{raw: strconv.FormatInt(n, 10)} }

// Raw returns a copy of the id's JSON encoding, or nil for the zero ID.
func (id ID) Raw() []byte {
	if id.raw == "" {
		return nil
	}
	return []byte(id.raw)
}

// IsZero reports whether id is absent.
func (id ID) IsZero() bool { return id.raw == "" }

// IsString reports whether the id is a JSON string.
func (id ID) IsString() bool { return id.raw != "" && id.raw[0] == '"' }

// Int returns the id's value if it is an integer.
func (id ID) Int() (int64, bool) {
	if id.raw == "" || id.raw[0] == '"' {
		return 0, false
	}
	n, err := strconv.ParseInt(id.raw, 10, 64)
	return n, err == nil
}

// String returns the id's JSON encoding (for example 7 or "abc"), or "null" for the zero ID.
// It is meant for logs; use [ID.Key] for map keys of type string.
func (id ID) String() string {
	if id.raw == "" {
		return "null"
	}
	return id.raw
}

// Key returns a string that is equal for equal ids and distinct otherwise ("" for the zero ID).
func (id ID) Key() string { return id.raw }

// AppendTo appends the id's JSON encoding (null for the zero ID) to dst.
func (id ID) AppendTo(dst []byte) []byte {
	if id.raw == "" {
		return append(dst, "null"...)
	}
	return append(dst, id.raw...)
}

// Message is one decoded JSON-RPC 2.0 message. Params, Result and Error.Data alias the bytes
// given to [Parse]; copy them before reusing that buffer.
type Message struct {
	Kind   Kind
	ID     ID     // zero for notifications and for error responses with "id": null
	Method string // requests and notifications
	Params []byte // raw JSON object, nil when absent
	Result []byte // raw JSON value of a response
	Error  *Error // error responses
}

// Error is a JSON-RPC error object. It is also the error type returned by [Parse].
type Error struct {
	Code    int64
	Message string
	Data    []byte // raw JSON value, nil when absent
}

// NewError returns an Error with the given code and message.
func NewError(code int64, message string) *Error {
	return &Error{Code: code, Message: message}
}

// Error returns the code and message, for logs.
func (e *Error) Error() string {
	return "jsonrpc error " + strconv.FormatInt(e.Code, 10) + ": " + e.Message
}
