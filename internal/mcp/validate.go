package mcp

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// ProtocolError is a request the protocol says to reject, with the JSON-RPC error that says
// why. Every ProtocolError this package returns goes with HTTP status 400 on Streamable HTTP.
type ProtocolError struct {
	Code    int64  // CodeHeaderMismatch, CodeInvalidParams or CodeUnsupportedProtocolVersion
	Message string // the JSON-RPC error message; values from the request are quoted and truncated
	// Requested and Supported fill the data of a CodeUnsupportedProtocolVersion error.
	Requested string
	Supported []string
}

// Error returns the message.
func (e *ProtocolError) Error() string { return e.Message }

// HTTPStatus returns the status a Streamable HTTP server answers with: 400 Bad Request.
func (e *ProtocolError) HTTPStatus() int { return http.StatusBadRequest }

// Data returns the JSON of the error's data member, or nil when it has none. For
// CodeUnsupportedProtocolVersion it is {"supported":[...],"requested":"..."}.
func (e *ProtocolError) Data() []byte {
	if e.Code != CodeUnsupportedProtocolVersion {
		return nil
	}
	supported := e.Supported
	if supported == nil {
		supported = []string{}
	}
	b, err := json.Marshal(struct {
		Supported []string `json:"supported"`
		Requested string   `json:"requested"`
	}{supported, e.Requested}, jsontext.AllowInvalidUTF8(true))
	if err != nil {
		return nil // cannot happen for strings once invalid UTF-8 is allowed
	}
	return b
}

// maxShown bounds how many bytes of a request value an error message repeats.
const maxShown = 128

// shown renders a request value for an error message: control and invalid bytes escaped,
// truncated to maxShown bytes.
func shown(s string) string {
	cut := false
	if len(s) > maxShown {
		n := maxShown
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s, cut = s[:n], true
	}
	q := strconv.QuoteToGraphic(s)
	q = q[1 : len(q)-1]
	if cut {
		q += "..."
	}
	return q
}

func headerMismatch(format string, args ...any) *ProtocolError {
	return &ProtocolError{Code: CodeHeaderMismatch, Message: "Header mismatch: " + fmt.Sprintf(format, args...)}
}

func valueMismatch(header, got, want string) *ProtocolError {
	return headerMismatch("%s header value '%s' does not match body value '%s'", header, shown(got), shown(want))
}

// headerValues returns every value of the named header, matching the name
// case-insensitively even in an http.Header built without canonical keys.
func headerValues(h http.Header, name string) []string {
	var out []string
	for k, vs := range h {
		if strings.EqualFold(k, name) {
			out = append(out, vs...)
		}
	}
	return out
}

// singleHeader returns the one value of the named header without its surrounding optional
// whitespace, and whether it is present. Two or more field lines are a malformed request.
func singleHeader(h http.Header, name string) (string, bool, *ProtocolError) {
	vs := headerValues(h, name)
	switch len(vs) {
	case 0:
		return "", false, nil
	case 1:
		return trimOWS(vs[0]), true, nil
	default:
		return "", false, headerMismatch("%d %s header field lines where one is allowed", len(vs), name)
	}
}

// plainHeader returns the value of a header that is never Base64-encoded (MCP-Protocol-Version,
// Mcp-Method), rejecting a missing one and invalid characters.
func plainHeader(h http.Header, name string) (string, *ProtocolError) {
	v, ok, perr := singleHeader(h, name)
	if perr != nil {
		return "", perr
	}
	if !ok {
		return "", headerMismatch("missing required %s header", name)
	}
	if i := invalidHeaderByte(v); i >= 0 {
		return "", headerMismatch("%s header value contains invalid character %s at offset %d", name, quoteByte(v[i]), i)
	}
	return v, nil
}

// RequestEra tells which era a Streamable HTTP POST to a dual-era endpoint belongs to
// (2026-07-28 versioning, "A dual-era server selects its behavior from how the client
// opens"): an initialize request is legacy; a request whose params._meta carries
// io.modelcontextprotocol/protocolVersion is modern, whatever version it names (a legacy
// version there earns an UnsupportedProtocolVersion error from [ValidateRequestHeaders]); so
// is a request whose MCP-Protocol-Version header names a modern version (without _meta it is
// then rejected as malformed). Anything else — including a request without the header, which
// a server MAY treat as 2025-03-26 — is legacy. Unreadable params count as absent.
func RequestEra(h http.Header, method string, params []byte) Era {
	p, _ := CheckParams(params)
	return p.Era(h, method)
}

// Era is [RequestEra] for params already read.
func (p *Params) Era(h http.Header, method string) Era {
	if method == MethodInitialize {
		return EraLegacy
	}
	if p.ProtocolVersion != nil {
		return EraModern
	}
	for _, v := range headerValues(h, HeaderProtocolVersion) {
		if IsModern(trimOWS(v)) {
			return EraModern
		}
	}
	return EraLegacy
}

// ValidateRequestHeaders checks a modern Streamable HTTP POST carrying a JSON-RPC request:
// that the headers the client mirrors from the body are present and agree with it
// (2026-07-28 Streamable HTTP, "Request Metadata" and "Server Validation"). method and params
// come from the parsed body (params may be nil); bindings are the x-mcp-header bindings of the
// called tool (see [ParamBindings]) and matter only for tools/call — pass nil when the tool is
// unknown. Header requirements for notification POSTs are not defined by 2026-07-28, so do not
// call it for notifications.
//
// It returns nil or a *ProtocolError, checking in this order:
//
//  1. MCP-Protocol-Version is present, once → else -32020 HeaderMismatch.
//  2. params._meta has io.modelcontextprotocol/protocolVersion (a string) and
//     io.modelcontextprotocol/clientCapabilities (an object) → else -32602 Invalid params.
//  3. the header equals the _meta version → else -32020.
//  4. the version is a modern one this package knows → else -32022 UnsupportedProtocolVersion
//     listing the versions served over Streamable HTTP.
//  5. Mcp-Method is present and equals method, case-sensitively → else -32020.
//  6. for tools/call, prompts/get, resources/read (and the tasks extension's tasks/get,
//     tasks/update, tasks/cancel): the body names a string (else -32602) and Mcp-Name is
//     present and, after Base64-sentinel decoding, equal to it → else -32020.
//  7. for tools/call, every binding: when the argument is present and not null, its
//     Mcp-Param-{Name} header is present and, decoded, equal to the argument (integers
//     compared numerically: "42.0" matches 42); when it is absent or null, the header is
//     absent too → else -32020. An argument that is not a string, an integer within
//     ±(2^53-1) or a boolean cannot be mirrored → -32602.
//
// Header names match case-insensitively; optional whitespace around a value is ignored;
// a header given on two field lines, or holding a character outside visible ASCII, space and
// tab, or an invalid Base64 sentinel, is rejected with -32020. Mcp-Param headers with no
// binding are not checked (intermediaries forward unrecognized ones).
func ValidateRequestHeaders(h http.Header, method string, params []byte, bindings []ParamBinding) error {
	p, err := CheckParams(params)
	if err == nil {
		err = p.ValidateHeaders(h, method, bindings)
	} else if _, perr := plainHeader(h, HeaderProtocolVersion); perr != nil {
		err = perr
	} else {
		err = invalidParams("params must be a JSON object: %v", err)
	}
	return err
}

// ValidateHeaders is [ValidateRequestHeaders] for params already read.
func (p *Params) ValidateHeaders(h http.Header, method string, bindings []ParamBinding) error {
	if _, err := p.CheckHeaders(h, method); err != nil {
		return err
	}
	if method == MethodToolsCall {
		return p.CheckParamHeaders(h, bindings)
	}
	return nil
}

// CheckHeaders runs checks 1 to 6 of [ValidateRequestHeaders] and returns the per-request
// protocol fields it read on the way.
func (p *Params) CheckHeaders(h http.Header, method string) (RequestMeta, error) {
	meta, perr := p.checkHeaders(h, method)
	if perr != nil {
		return RequestMeta{}, perr
	}
	return meta, nil
}

// CheckParamHeaders runs check 7 of [ValidateRequestHeaders]: a tools/call's Mcp-Param headers
// against its arguments, for the called tool's bindings.
func (p *Params) CheckParamHeaders(h http.Header, bindings []ParamBinding) error {
	for _, b := range bindings {
		if perr := checkParam(h, b, p.Arguments); perr != nil {
			return perr
		}
	}
	return nil
}

func (p *Params) checkHeaders(h http.Header, method string) (RequestMeta, *ProtocolError) {
	headerVersion, perr := plainHeader(h, HeaderProtocolVersion)
	if perr != nil {
		return RequestMeta{}, perr
	}
	nameParam := NameParam(method)
	meta, perr := p.RequestMeta()
	if perr != nil {
		return RequestMeta{}, perr
	}
	if headerVersion != meta.ProtocolVersion {
		return RequestMeta{}, valueMismatch(HeaderProtocolVersion, headerVersion, meta.ProtocolVersion)
	}
	if !IsModern(meta.ProtocolVersion) {
		supported := streamableHTTPVersions()
		return RequestMeta{}, &ProtocolError{
			Code:      CodeUnsupportedProtocolVersion,
			Message:   fmt.Sprintf("Unsupported protocol version '%s' (supported: %s)", shown(meta.ProtocolVersion), strings.Join(supported, ", ")),
			Requested: meta.ProtocolVersion,
			Supported: supported,
		}
	}

	headerMethod, perr := plainHeader(h, HeaderMethod)
	if perr != nil {
		return RequestMeta{}, perr
	}
	if headerMethod != method {
		return RequestMeta{}, valueMismatch(HeaderMethod, headerMethod, method)
	}
	if nameParam != "" {
		if perr := checkName(h, method, nameParam, p.member(nameParam)); perr != nil {
			return RequestMeta{}, perr
		}
	}
	return meta, nil
}

// checkName checks Mcp-Name against the body value raw of params.<nameParam>.
func checkName(h http.Header, method, nameParam string, raw jsontext.Value) *ProtocolError {
	var body string
	if raw.Kind() != '"' || json.Unmarshal(raw, &body) != nil {
		return invalidParams("params.%s of %s must be a string", nameParam, method)
	}
	v, ok, perr := singleHeader(h, HeaderName)
	if perr != nil {
		return perr
	}
	if !ok {
		return headerMismatch("missing required %s header for %s", HeaderName, method)
	}
	got, err := DecodeHeaderValue(v)
	if err != nil {
		return headerMismatch("%s header value is malformed: %v", HeaderName, err)
	}
	if got != body {
		return valueMismatch(HeaderName, got, body)
	}
	return nil
}

// checkParam checks the Mcp-Param header of binding b against the arguments object args.
func checkParam(h http.Header, b ParamBinding, args jsontext.Value) *ProtocolError {
	header := b.Header()
	v, present, perr := singleHeader(h, header)
	if perr != nil {
		return perr
	}
	raw, found := lookupPath(args, b.Path)
	if !found || raw.Kind() == 'n' {
		if present {
			return headerMismatch("unexpected %s header: %s is absent or null", header, argumentPath(b.Path))
		}
		return nil
	}
	body, err := ParamValueString(raw)
	if err != nil {
		return invalidParams("%s cannot be mirrored into the %s header: %v", argumentPath(b.Path), header, err)
	}
	if !present {
		return headerMismatch("missing %s header for %s", header, argumentPath(b.Path))
	}
	got, err := DecodeHeaderValue(v)
	if err != nil {
		return headerMismatch("%s header value is malformed: %v", header, err)
	}
	if raw.Kind() == '0' {
		// Integers compare numerically (Streamable HTTP, "Server Validation").
		n, err := safeInteger(got)
		if want, _ := safeInteger(body); err != nil || n != want {
			return valueMismatch(header, got, body)
		}
		return nil
	}
	if got != body {
		return valueMismatch(header, got, body)
	}
	return nil
}

// RequestHeaders returns the headers a client adds to a modern Streamable HTTP POST carrying
// the JSON-RPC request (method, params): MCP-Protocol-Version from params._meta, Mcp-Method,
// Mcp-Name for the methods that have one (see [NameParam]), and, for tools/call, one
// Mcp-Param-{Name} header per binding whose argument is present and not null, each value
// converted with [ParamValueString] and encoded with [EncodeHeaderValue]. bindings are the
// called tool's (see [ParamBindings]).
//
// It fails when params lack the required _meta fields, when the protocol version or method
// cannot be sent as a plain header value, when the name member is missing or not a string,
// or when an argument cannot be mirrored (a non-integral or unsafe number, an object or an
// array): such a request would be rejected by the server.
func RequestHeaders(method string, params []byte, bindings []ParamBinding) (http.Header, error) {
	p, err := CheckParams(params)
	if err != nil {
		return nil, fmt.Errorf("build %s headers: params: %w", method, err)
	}
	return p.Headers(method, bindings)
}

// Headers is [RequestHeaders] for params already read.
func (p *Params) Headers(method string, bindings []ParamBinding) (http.Header, error) {
	nameParam := NameParam(method)
	wantArgs := method == MethodToolsCall && len(bindings) > 0
	meta, perr := p.RequestMeta()
	if perr != nil {
		return nil, fmt.Errorf("build %s headers: %w", method, perr)
	}
	if !isPlainHeaderValue(meta.ProtocolVersion) {
		return nil, fmt.Errorf("build %s headers: protocol version %q cannot be sent as a header value", method, meta.ProtocolVersion)
	}
	if !isPlainHeaderValue(method) {
		return nil, fmt.Errorf("build headers: method %q cannot be sent as a header value", method)
	}
	h := make(http.Header, 4+len(bindings))
	h.Set(HeaderProtocolVersion, meta.ProtocolVersion)
	h.Set(HeaderMethod, method)
	if nameParam != "" {
		var name string
		raw := p.member(nameParam)
		if raw.Kind() != '"' || json.Unmarshal(raw, &name) != nil {
			return nil, fmt.Errorf("build %s headers: params.%s must be a string", method, nameParam)
		}
		h.Set(HeaderName, EncodeHeaderValue(name))
	}
	if wantArgs {
		for _, b := range bindings {
			raw, found := lookupPath(p.Arguments, b.Path)
			if !found || raw.Kind() == 'n' {
				continue // absent or null: the header is omitted
			}
			s, err := ParamValueString(raw)
			if err != nil {
				return nil, fmt.Errorf("build %s headers: %s cannot be mirrored into the %s header: %w", method, argumentPath(b.Path), b.Header(), err)
			}
			h.Set(b.Header(), EncodeHeaderValue(s))
		}
	}
	return h, nil
}

// isPlainHeaderValue reports whether s can be sent as a header value without encoding.
func isPlainHeaderValue(s string) bool {
	return s != "" && s == trimOWS(s) && invalidHeaderByte(s) < 0
}
