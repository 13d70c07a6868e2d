package mcp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

var errNotObject = errors.New("not a JSON object")

// objectMembers returns the members of the JSON object raw whose names are in want, as
// sub-slices of raw. Names are matched exactly (case-sensitively) after unescaping; a duplicate
// name anywhere in raw, invalid UTF-8, or anything after the object is an error.
func objectMembers(raw []byte, want ...string) (map[string]jsontext.Value, error) {
	// A bytes.Buffer lets the decoder parse raw in place, and InputOffset then locates each
	// value in raw without a copy.
	dec := jsontext.NewDecoder(bytes.NewBuffer(raw))
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, err
	}
	if tok.Kind() != '{' {
		return nil, errNotObject
	}
	out := make(map[string]jsontext.Value, len(want))
	var unquoted []byte
	for {
		switch dec.PeekKind() {
		case '}':
			if _, err := dec.ReadToken(); err != nil {
				return nil, err
			}
			if _, err := dec.ReadToken(); err != io.EOF {
				if err == nil {
					err = errors.New("unexpected data after the object")
				}
				return nil, err
			}
			return out, nil
		case 0:
			_, err := dec.ReadToken()
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		quoted, err := dec.ReadValue() // the member name
		if err != nil {
			return nil, err
		}
		name := quoted[1 : len(quoted)-1]
		if bytes.IndexByte(name, '\\') >= 0 {
			if unquoted, err = jsontext.AppendUnquote(unquoted[:0], quoted); err != nil {
				return nil, err
			}
			name = unquoted
		}
		start := dec.InputOffset()
		if err := dec.SkipValue(); err != nil {
			return nil, err
		}
		for _, w := range want {
			if w != "" && string(name) == w {
				v := raw[start:dec.InputOffset()]
				out[w] = jsontext.Value(bytes.TrimLeft(v, " \t\r\n:"))
				break
			}
		}
	}
}

// paramsObject returns the wanted members of a request's params; absent params count as {}.
func paramsObject(params []byte, names ...string) (map[string]jsontext.Value, error) {
	if len(bytes.TrimSpace(params)) == 0 {
		return map[string]jsontext.Value{}, nil
	}
	return objectMembers(params, names...)
}

// lookupPath returns the value at path inside the JSON object args, and whether there is one.
// A step through anything but an object finds nothing.
func lookupPath(args jsontext.Value, path []string) (jsontext.Value, bool) {
	cur := args
	for _, p := range path {
		if cur.Kind() != '{' {
			return nil, false
		}
		m, err := objectMembers(cur, p)
		if err != nil {
			return nil, false
		}
		v, ok := m[p]
		if !ok {
			return nil, false
		}
		cur = v
	}
	return cur, len(path) > 0
}

// RequestMeta holds the per-request protocol fields of a modern request's params._meta. The
// raw JSON fields alias the params they were parsed from.
type RequestMeta struct {
	ProtocolVersion    string // io.modelcontextprotocol/protocolVersion (required)
	ClientCapabilities []byte // io.modelcontextprotocol/clientCapabilities (required), raw JSON object
	ClientInfo         []byte // io.modelcontextprotocol/clientInfo (optional), raw JSON object or nil
	LogLevel           string // io.modelcontextprotocol/logLevel (optional)
}

// ParseRequestMeta reads the per-request protocol fields from the params of a modern request.
// A request without a required field, or with a field of the wrong JSON type, is malformed:
// the error is a *ProtocolError with code -32602 (Invalid params), which on HTTP goes with
// status 400 (2026-07-28 basic/index, "Per-request protocol fields").
func ParseRequestMeta(params []byte) (RequestMeta, error) {
	top, err := paramsObject(params, "_meta")
	if err != nil {
		return RequestMeta{}, invalidParams("params must be a JSON object: %v", err)
	}
	m, perr := parseMeta(top["_meta"])
	if perr != nil {
		return RequestMeta{}, perr
	}
	return m, nil
}

// parseMeta reads the per-request protocol fields from raw, the value of params._meta (nil
// when absent).
func parseMeta(raw jsontext.Value) (RequestMeta, *ProtocolError) {
	var m RequestMeta
	var meta map[string]jsontext.Value
	if raw != nil {
		if raw.Kind() != '{' {
			return RequestMeta{}, invalidParams("params._meta must be a JSON object")
		}
		var err error
		meta, err = objectMembers(raw, MetaProtocolVersion, MetaClientCapabilities, MetaClientInfo, MetaLogLevel)
		if err != nil {
			return RequestMeta{}, invalidParams("params._meta: %v", err)
		}
	}
	var missing []string
	if v, ok := meta[MetaProtocolVersion]; !ok {
		missing = append(missing, MetaProtocolVersion)
	} else if v.Kind() != '"' || json.Unmarshal(v, &m.ProtocolVersion) != nil {
		return RequestMeta{}, invalidParams("_meta %q must be a string", MetaProtocolVersion)
	}
	if v, ok := meta[MetaClientCapabilities]; !ok {
		missing = append(missing, MetaClientCapabilities)
	} else if v.Kind() != '{' {
		return RequestMeta{}, invalidParams("_meta %q must be a JSON object", MetaClientCapabilities)
	} else {
		m.ClientCapabilities = v
	}
	if len(missing) > 0 {
		return RequestMeta{}, invalidParams("missing required _meta %s %s", plural(len(missing), "field", "fields"), quoteList(missing))
	}
	if v, ok := meta[MetaClientInfo]; ok {
		if v.Kind() != '{' {
			return RequestMeta{}, invalidParams("_meta %q must be a JSON object", MetaClientInfo)
		}
		m.ClientInfo = v
	}
	if v, ok := meta[MetaLogLevel]; ok {
		if v.Kind() != '"' || json.Unmarshal(v, &m.LogLevel) != nil {
			return RequestMeta{}, invalidParams("_meta %q must be a string", MetaLogLevel)
		}
	}
	return m, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

func invalidParams(format string, args ...any) *ProtocolError {
	return &ProtocolError{Code: CodeInvalidParams, Message: fmt.Sprintf(format, args...)}
}
