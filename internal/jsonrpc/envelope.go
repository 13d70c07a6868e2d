package jsonrpc

import (
	"bytes"
	"strconv"
)

// message interprets the captured envelope members of a well-formed document.
func (p *envelope) message() (*Message, *Error) {
	var id ID
	var idErr *Error
	idOK := false
	if p.present(memID) && !p.idAmbiguous {
		id, idErr = p.id()
		idOK = idErr == nil && !id.IsZero()
	}
	fail := func(e *Error) (*Message, *Error) {
		if idOK {
			return &Message{ID: id}, e
		}
		return nil, e
	}
	if p.err != nil {
		return fail(p.err)
	}

	if !p.present(memJSONRPC) {
		return fail(invalidRequestf(`missing "jsonrpc" member`))
	}
	if !rawStringIs(p.raw(memJSONRPC), "2.0") {
		return fail(invalidRequestf(`"jsonrpc" must be "2.0"`))
	}
	if idErr != nil {
		return nil, idErr
	}

	if p.present(memMethod) {
		if p.present(memResult) || p.present(memError) {
			return fail(invalidRequestf(`a request must not have "result" or "error"`))
		}
		method, err := p.method()
		if err != nil {
			return fail(err)
		}
		m := &Message{Kind: KindNotification, Method: method}
		if p.present(memParams) {
			params := p.raw(memParams)
			switch params[0] {
			case '{':
			case '[':
				return fail(invalidRequestf(`"params" must be an object; positional (array) params are not supported`))
			default:
				return fail(invalidRequestf(`"params" must be an object`))
			}
			m.Params = params
		}
		if p.present(memID) {
			if id.IsZero() {
				return fail(invalidRequestf(`"id" must not be null in a request`))
			}
			m.Kind, m.ID = KindRequest, id
		}
		return m, nil
	}

	hasResult, hasError := p.present(memResult), p.present(memError)
	switch {
	case !hasResult && !hasError:
		return fail(invalidRequestf(`message has none of "method", "result" and "error"`))
	case hasResult && hasError:
		return fail(invalidRequestf(`a response must not have both "result" and "error"`))
	case p.present(memParams):
		return fail(invalidRequestf(`"params" is not allowed in a response`))
	case !p.present(memID):
		return fail(invalidRequestf(`a response must have an "id" member`))
	case hasResult:
		if id.IsZero() {
			return fail(invalidRequestf(`"id" must not be null in a result response`))
		}
		return &Message{Kind: KindResponse, ID: id, Result: p.raw(memResult)}, nil
	}
	e, err := p.errorObject()
	if err != nil {
		return fail(err)
	}
	return &Message{Kind: KindError, ID: id, Error: e}, nil
}

func (p *envelope) present(mem int) bool { return p.mem[mem].end != 0 }

func (p *envelope) raw(mem int) []byte {
	s := p.mem[mem]
	return p.b[s.start:s.end:s.end]
}

// id decodes the envelope id into its canonical form; null gives the zero ID.
func (p *envelope) id() (ID, *Error) {
	raw := p.raw(memID)
	if len(raw) > MaxIDBytes {
		return ID{}, invalidRequestf(`"id" is longer than %d bytes`, MaxIDBytes)
	}
	switch c := raw[0]; {
	case c == '"':
		if bytes.IndexByte(raw, '\\') < 0 {
			return ID{raw: string(raw)}, nil // already minimal
		}
		s := appendUnescaped(nil, raw[1:len(raw)-1])
		return ID{raw: string(AppendQuote(nil, string(s)))}, nil
	case c == 'n':
		return ID{}, nil
	case c == '-' || ('0' <= c && c <= '9'):
		if bytes.ContainsAny(raw, ".eE") {
			return ID{}, invalidRequestf(`"id" must be an integer or a string, not a fractional number`)
		}
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return ID{}, invalidRequestf(`"id" is outside the 64-bit integer range`)
		}
		if n >= 0 && n < 100 || string(raw) == "-0" {
			return IntID(n), nil // small integers need no allocation
		}
		return ID{raw: string(raw)}, nil
	default:
		return ID{}, invalidRequestf(`"id" must be a string or an integer`)
	}
}

func (p *envelope) method() (string, *Error) {
	raw := p.raw(memMethod)
	if raw[0] != '"' {
		return "", invalidRequestf(`"method" must be a string`)
	}
	if len(raw) == 2 {
		return "", invalidRequestf(`"method" must not be empty`)
	}
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') >= 0 {
		body = appendUnescaped(nil, body)
	}
	return methodName(body), nil
}

func (p *envelope) errorObject() (*Error, *Error) {
	raw := p.raw(memError)
	if raw[0] != '{' {
		return nil, invalidRequestf(`"error" must be an object`)
	}
	if !p.present(memCode) {
		return nil, invalidRequestf(`error object has no "code" member`)
	}
	code := p.raw(memCode)
	if c := code[0]; c != '-' && (c < '0' || c > '9') || bytes.ContainsAny(code, ".eE") {
		return nil, invalidRequestf(`"code" in error must be an integer`)
	}
	n, err := strconv.ParseInt(string(code), 10, 64)
	if err != nil {
		return nil, invalidRequestf(`"code" in error is outside the 64-bit integer range`)
	}
	if !p.present(memMessage) {
		return nil, invalidRequestf(`error object has no "message" member`)
	}
	msg, ok := String(p.raw(memMessage))
	if !ok {
		return nil, invalidRequestf(`"message" in error must be a string`)
	}
	e := &Error{Code: n, Message: msg}
	if p.present(memData) {
		e.Data = p.raw(memData)
	}
	return e, nil
}

// rawStringIs reports whether the JSON value raw is the string s (escapes resolved).
func rawStringIs(raw []byte, s string) bool {
	if len(raw) < 2 || raw[0] != '"' {
		return false
	}
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return string(body) == s
	}
	return string(appendUnescaped(nil, body)) == s
}

// methodName returns the method as a string, without allocating for the methods MCP defines.
func methodName(b []byte) string {
	switch string(b) {
	case "initialize":
		return "initialize"
	case "ping":
		return "ping"
	case "tools/call":
		return "tools/call"
	case "tools/list":
		return "tools/list"
	case "resources/list":
		return "resources/list"
	case "resources/read":
		return "resources/read"
	case "resources/templates/list":
		return "resources/templates/list"
	case "resources/subscribe":
		return "resources/subscribe"
	case "resources/unsubscribe":
		return "resources/unsubscribe"
	case "prompts/list":
		return "prompts/list"
	case "prompts/get":
		return "prompts/get"
	case "completion/complete":
		return "completion/complete"
	case "logging/setLevel":
		return "logging/setLevel"
	case "roots/list":
		return "roots/list"
	case "sampling/createMessage":
		return "sampling/createMessage"
	case "elicitation/create":
		return "elicitation/create"
	case "server/discover":
		return "server/discover"
	case "subscriptions/listen":
		return "subscriptions/listen"
	case "notifications/initialized":
		return "notifications/initialized"
	case "notifications/cancelled":
		return "notifications/cancelled"
	case "notifications/progress":
		return "notifications/progress"
	case "notifications/message":
		return "notifications/message"
	case "notifications/resources/updated":
		return "notifications/resources/updated"
	case "notifications/resources/list_changed":
		return "notifications/resources/list_changed"
	case "notifications/tools/list_changed":
		return "notifications/tools/list_changed"
	case "notifications/prompts/list_changed":
		return "notifications/prompts/list_changed"
	case "notifications/roots/list_changed":
		return "notifications/roots/list_changed"
	case "notifications/elicitation/complete":
		return "notifications/elicitation/complete"
	case "notifications/subscriptions/acknowledged":
		return "notifications/subscriptions/acknowledged"
	}
	return string(b)
}
