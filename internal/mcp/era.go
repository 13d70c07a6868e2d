package mcp

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// wireResponse is the part of a JSON-RPC response that era detection reads.
type wireResponse struct {
	Result jsontext.Value `json:"result"`
	Error  *wireError     `json:"error"`
}

type wireError struct {
	Code jsontext.Value `json:"code"`
	Data jsontext.Value `json:"data"`
}

// errorCode returns the integer code of a JSON-RPC error response in body, and whether body
// is one. The body must be a single JSON object without duplicate names and its error.code an
// integer.
func errorCode(body []byte) (int64, *wireError, bool) {
	var r wireResponse
	if err := json.Unmarshal(bytes.TrimSpace(body), &r); err != nil || r.Error == nil || r.Error.Code.Kind() != '0' {
		return 0, nil, false
	}
	var code int64
	if err := json.Unmarshal(r.Error.Code, &code); err != nil {
		return 0, nil, false
	}
	return code, r.Error, true
}

// ClassifyHTTPError reads the HTTP error response (status, body) to a modern request and
// reports whether it identifies a modern server, so that a dual-era client stays modern
// instead of falling back to initialize (2026-07-28 Streamable HTTP, "Backward
// Compatibility"). It does when body is a JSON-RPC error response with:
//
//   - status 400 and code -32020 (HeaderMismatch), -32021 (MissingRequiredClientCapability)
//     or -32022 (UnsupportedProtocolVersion) — retry with a supported version or correct the
//     request;
//   - status 404 and code -32601 (Method not found), the modern answer to an unknown method,
//     which tells it from the 404 of a server without a Streamable HTTP endpoint.
//
// Anything else — an empty or non-JSON body, any other code (legacy servers answer requests
// without a session with -32000 or -32600, and some legacy servers reject unknown methods
// with -32602), any other status — is not a recognized modern error: fall back to the
// legacy initialize handshake (and, on 400, 404 or 405, possibly to HTTP+SSE). -32602 is
// deliberately not recognized, although a modern server uses it for a request missing a
// required _meta field, because legacy servers use it too; a request built with
// [RequestHeaders] never lacks those fields.
//
// A recognized error says the server understood the modern request, not that it serves a
// modern version: a dual-era server that only serves legacy versions on that endpoint (the
// go-sdk's stateful mode) answers -32022 listing legacy versions only. Negotiate from the
// error's data (see [ParseUnsupportedVersionData] and [Negotiate]) and continue with
// initialize when the version chosen is a legacy one.
func ClassifyHTTPError(status int, body []byte) ProbeResult {
	code, we, ok := errorCode(body)
	if !ok {
		return ProbeResult{}
	}
	p := ProbeResult{Code: code}
	switch status {
	case http.StatusBadRequest:
		p.Modern = IsModernErrorCode(code)
	case http.StatusNotFound:
		p.Modern = code == CodeMethodNotFound
	}
	if p.Modern && code == CodeUnsupportedProtocolVersion && len(we.Data) > 0 {
		p.Supported, _, _ = ParseUnsupportedVersionData(we.Data)
	}
	return p
}

// IsModernError reports whether the HTTP error response (status, body) to a modern request is
// a recognized modern JSON-RPC error, so that a dual-era client stays modern. See
// [ClassifyHTTPError].
func IsModernError(status int, body []byte) bool { return ClassifyHTTPError(status, body).Modern }

// ProbeResult is what a server's answer to a modern request says about the server's era.
type ProbeResult struct {
	// Modern reports a modern server: the answer is a DiscoverResult or a recognized modern
	// error. Otherwise fall back to the legacy initialize handshake.
	Modern bool
	// Supported lists the versions the server named: a DiscoverResult's supportedVersions,
	// or the supported list of an UnsupportedProtocolVersion error (nil when it named none).
	Supported []string
	// Code is the JSON-RPC error code when the answer is a JSON-RPC error, 0 otherwise.
	Code int64
}

// ClassifyDiscoverResponse reads msg, the JSON-RPC response to a server/discover probe sent
// on stdio (2026-07-28 versioning, "Backward Compatibility with Initialization-Based
// Versions"). A DiscoverResult (a result with a non-empty supportedVersions array of strings)
// or an error with a modern code (-32020, -32021, -32022) identifies a modern server; negotiate
// a version from Supported (see [Negotiate]), and use initialize when that version is a
// legacy one. Anything else — any other error, including
// -32601 and -32602 which legacy servers answer unknown methods with, or a result without
// supportedVersions — identifies a legacy server: fall back to initialize. No response within a
// reasonable timeout means legacy too, which the caller decides.
func ClassifyDiscoverResponse(msg []byte) ProbeResult {
	if code, we, ok := errorCode(msg); ok {
		p := ProbeResult{Modern: IsModernErrorCode(code), Code: code}
		if code == CodeUnsupportedProtocolVersion && len(we.Data) > 0 {
			p.Supported, _, _ = ParseUnsupportedVersionData(we.Data)
		}
		return p
	}
	var r wireResponse
	if err := json.Unmarshal(bytes.TrimSpace(msg), &r); err != nil || r.Error != nil || r.Result.Kind() != '{' {
		return ProbeResult{}
	}
	var res struct {
		SupportedVersions []string `json:"supportedVersions"`
	}
	if err := json.Unmarshal(r.Result, &res); err != nil || len(res.SupportedVersions) == 0 {
		return ProbeResult{}
	}
	return ProbeResult{Modern: true, Supported: res.SupportedVersions}
}

// IsModernDiscoverResponse reports whether msg, the response to a server/discover probe on
// stdio, identifies a modern server. See [ClassifyDiscoverResponse].
func IsModernDiscoverResponse(msg []byte) bool { return ClassifyDiscoverResponse(msg).Modern }

// ParseUnsupportedVersionData reads the data member of an UnsupportedProtocolVersion error:
// {"supported": [...], "requested": "..."}.
func ParseUnsupportedVersionData(data []byte) (supported []string, requested string, err error) {
	var d struct {
		Supported []string `json:"supported"`
		Requested string   `json:"requested"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(data), &d); err != nil {
		return nil, "", fmt.Errorf("UnsupportedProtocolVersion data: %w", err)
	}
	if d.Supported == nil {
		return nil, d.Requested, errors.New("UnsupportedProtocolVersion data: no supported list")
	}
	return d.Supported, d.Requested, nil
}
