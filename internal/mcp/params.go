package mcp

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
)

// Params is a request's params object read once: the top-level members MCP gives meaning to,
// and the per-request protocol fields of its _meta, as sub-slices of the raw params (nil when
// absent). A request's params are read with [ReadParams] once; every later check reads Params.
// The raw params must have passed jsonrpc.Parse, which refuses malformed JSON, duplicate names
// and case variants, so each member here is the only one of its name.
type Params struct {
	Raw []byte // the params object as sent; nil when the request had none

	Name, URI, TaskID, Arguments, Ref, Level, Cursor jsontext.Value
	// Meta is params._meta. When it is an object, the fields below are its members.
	Meta                                                                   jsontext.Value
	ProtocolVersion, ClientCapabilities, ClientInfo, LogLevel, Traceparent jsontext.Value
}

var (
	paramNames = []string{"name", "uri", "taskId", "arguments", "ref", "level", "cursor", "_meta"}
	metaNames  = []string{MetaProtocolVersion, MetaClientCapabilities, MetaClientInfo, MetaLogLevel, MetaTraceparent}
)

// ReadParams splits a request's params (absent or null params count as {}). It fails only when
// params is not a JSON object. raw must be from a message jsonrpc.Parse accepted; see
// [CheckParams] for params from anywhere else.
func ReadParams(raw []byte) (Params, error) {
	p := Params{Raw: raw}
	if t := bytes.TrimSpace(raw); len(t) == 0 || string(t) == "null" {
		return p, nil
	}
	var top [8][]byte
	if err := jsonrpc.Pick(raw, paramNames, top[:]); err != nil {
		return p, errNotObject
	}
	p.Name, p.URI, p.TaskID, p.Arguments = top[0], top[1], top[2], top[3]
	p.Ref, p.Level, p.Cursor, p.Meta = top[4], top[5], top[6], top[7]
	if p.Meta.Kind() == '{' {
		var meta [5][]byte
		if err := jsonrpc.Pick(p.Meta, metaNames, meta[:]); err != nil {
			return p, errNotObject
		}
		p.ProtocolVersion, p.ClientCapabilities, p.ClientInfo = meta[0], meta[1], meta[2]
		p.LogLevel, p.Traceparent = meta[3], meta[4]
	}
	return p, nil
}

// CheckParams is [ReadParams] for params that did not pass jsonrpc.Parse: it first validates
// them as strictly (syntax, UTF-8, no duplicate or case-variant member names).
func CheckParams(raw []byte) (Params, error) {
	if t := bytes.TrimSpace(raw); len(t) > 0 && string(t) != "null" {
		if err := jsonrpc.CheckValue(raw, jsonrpc.Limits{}); err != nil {
			var e *jsonrpc.Error
			if errors.As(err, &e) {
				return Params{Raw: raw}, errors.New(e.Message)
			}
			return Params{Raw: raw}, err
		}
	}
	return ReadParams(raw)
}

// member returns the top-level member that NameParam names.
func (p *Params) member(name string) jsontext.Value {
	switch name {
	case "name":
		return p.Name
	case "uri":
		return p.URI
	case "taskId":
		return p.TaskID
	}
	return nil
}

var errNotObject = errors.New("not a JSON object")

// lookupPath returns the value at path inside the JSON object args, and whether there is one.
// A step through anything but an object finds nothing.
func lookupPath(args jsontext.Value, path []string) (jsontext.Value, bool) {
	cur := args
	for _, p := range path {
		if cur.Kind() != '{' {
			return nil, false
		}
		v, ok := jsonrpc.Lookup(cur, p)
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

// RequestMeta reads the per-request protocol fields from the params of a modern request.
// A request without a required field, or with a field of the wrong JSON type, is malformed:
// the error is a *ProtocolError with code -32602 (Invalid params), which on HTTP goes with
// status 400 (2026-07-28 basic/index, "Per-request protocol fields").
func (p *Params) RequestMeta() (RequestMeta, *ProtocolError) {
	var m RequestMeta
	if p.Meta != nil && p.Meta.Kind() != '{' {
		return RequestMeta{}, invalidParams("params._meta must be a JSON object")
	}
	var missing []string
	if v := p.ProtocolVersion; v == nil {
		missing = append(missing, MetaProtocolVersion)
	} else if s, ok := jsonrpc.String(v); !ok {
		return RequestMeta{}, invalidParams("_meta %q must be a string", MetaProtocolVersion)
	} else {
		m.ProtocolVersion = s
	}
	if v := p.ClientCapabilities; v == nil {
		missing = append(missing, MetaClientCapabilities)
	} else if v.Kind() != '{' {
		return RequestMeta{}, invalidParams("_meta %q must be a JSON object", MetaClientCapabilities)
	} else {
		m.ClientCapabilities = v
	}
	if len(missing) > 0 {
		return RequestMeta{}, invalidParams("missing required _meta %s %s", plural(len(missing), "field", "fields"), quoteList(missing))
	}
	if v := p.ClientInfo; v != nil {
		if v.Kind() != '{' {
			return RequestMeta{}, invalidParams("_meta %q must be a JSON object", MetaClientInfo)
		}
		m.ClientInfo = v
	}
	if v := p.LogLevel; v != nil {
		s, ok := jsonrpc.String(v)
		if !ok {
			return RequestMeta{}, invalidParams("_meta %q must be a string", MetaLogLevel)
		}
		m.LogLevel = s
	}
	return m, nil
}

// ParseRequestMeta reads params and its per-request protocol fields; see [Params.RequestMeta].
func ParseRequestMeta(params []byte) (RequestMeta, error) {
	p, err := CheckParams(params)
	if err != nil {
		return RequestMeta{}, invalidParams("params must be a JSON object: %v", err)
	}
	m, perr := p.RequestMeta()
	if perr != nil {
		return RequestMeta{}, perr
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
