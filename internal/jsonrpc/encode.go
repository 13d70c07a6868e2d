package jsonrpc

import (
	"slices"
	"strconv"
)

// The Append functions write one compact JSON-RPC 2.0 message to dst and return the extended
// buffer. Raw values (params, result, error data) are copied as given: they must be valid
// JSON, such as the slices [Parse] returns or the output of [SetMember]. Each grows dst once,
// for the whole message: appending a large raw value and then its closing brace would
// otherwise copy it twice.

// AppendRequest appends a request. params must be a raw JSON object; nil omits it. id must
// not be zero.
func AppendRequest(dst []byte, id ID, method string, params []byte) []byte {
	dst = slices.Grow(dst, envelopeRoom+len(id.raw)+len(method)+len(params))
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = id.AppendTo(dst)
	return appendCall(dst, method, params)
}

// AppendNotification appends a notification. params must be a raw JSON object; nil omits it.
func AppendNotification(dst []byte, method string, params []byte) []byte {
	dst = slices.Grow(dst, envelopeRoom+len(method)+len(params))
	dst = append(dst, `{"jsonrpc":"2.0"`...)
	return appendCall(dst, method, params)
}

func appendCall(dst []byte, method string, params []byte) []byte {
	dst = append(dst, `,"method":`...)
	dst = AppendQuote(dst, method)
	if len(params) > 0 {
		dst = append(dst, `,"params":`...)
		dst = append(dst, params...)
	}
	return append(dst, '}')
}

// AppendResult appends a result response. A nil result is written as {}, the empty MCP result.
func AppendResult(dst []byte, id ID, result []byte) []byte {
	dst = slices.Grow(dst, envelopeRoom+len(id.raw)+len(result))
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = id.AppendTo(dst)
	dst = append(dst, `,"result":`...)
	if len(result) == 0 {
		dst = append(dst, "{}"...)
	} else {
		dst = append(dst, result...)
	}
	return append(dst, '}')
}

// AppendError appends an error response. A zero id is written as null, as JSON-RPC requires
// when the request's id could not be read.
func AppendError(dst []byte, id ID, e *Error) []byte {
	dst = slices.Grow(dst, envelopeRoom+len(id.raw)+len(e.Message)+len(e.Data))
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = id.AppendTo(dst)
	dst = append(dst, `,"error":{"code":`...)
	dst = strconv.AppendInt(dst, e.Code, 10)
	dst = append(dst, `,"message":`...)
	dst = AppendQuote(dst, e.Message)
	if len(e.Data) > 0 {
		dst = append(dst, `,"data":`...)
		dst = append(dst, e.Data...)
	}
	return append(dst, "}}"...)
}

// envelopeRoom is room for a message's fixed members, beyond its id, method and raw values (a
// method or message with characters to escape may still grow dst a second time).
const envelopeRoom = 64

// AppendMessage appends m according to its Kind. A Message of [KindInvalid] appends nothing.
func AppendMessage(dst []byte, m *Message) []byte {
	switch m.Kind {
	case KindRequest:
		return AppendRequest(dst, m.ID, m.Method, m.Params)
	case KindNotification:
		return AppendNotification(dst, m.Method, m.Params)
	case KindResponse:
		return AppendResult(dst, m.ID, m.Result)
	case KindError:
		if m.Error == nil {
			return AppendError(dst, m.ID, &Error{Code: CodeInternalError, Message: "missing error"})
		}
		return AppendError(dst, m.ID, m.Error)
	}
	return dst
}
