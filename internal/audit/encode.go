package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
)

// appendBody writes what encoding/json writes for body{…} of r, without the leading "{", byte
// for byte (the verifier re-encodes every record with encoding/json and compares), without
// reflection: strings escaped as encoding/json escapes them (HTML characters, U+2028 and U+2029
// included, invalid UTF-8 as U+FFFD), raw members compacted and HTML-escaped, map keys sorted.
// FuzzAppendBody holds it to encoding/json.
func appendBody(dst []byte, r *Record) ([]byte, error) {
	dst = append(dst, `"time":`...)
	dst = append(r.Time.UTC().AppendFormat(append(dst, '"'), timeFormat), '"') // digits and "-:.TZ": nothing to escape
	dst = append(dst, `,"kind":`...)
	dst = jsonrpc.AppendQuoteHTML(dst, string(r.Kind))
	dst = appendField(dst, "request_id", r.RequestID)
	dst = appendField(dst, "trace_id", r.TraceID)
	dst = appendField(dst, "principal", r.Principal)
	dst = appendList(dst, "roles", r.Roles)
	dst = appendField(dst, "auth_method", r.AuthMethod)
	dst = appendField(dst, "client_ip", r.ClientIP)
	dst = appendField(dst, "era", r.Era)
	dst = appendField(dst, "method", r.Method)
	dst = appendField(dst, "upstream", r.Upstream)
	dst = appendField(dst, "tool", r.Tool)
	var err error
	if dst, err = appendRaw(dst, "arguments", r.Arguments); err != nil {
		return nil, err
	}
	dst = appendCounts(dst, "redactions", r.Redactions)
	dst = appendField(dst, "decision", r.Decision)
	dst = appendField(dst, "rule", r.Rule)
	dst = appendList(dst, "reasons", r.Reasons)
	if o := r.Outcome; o != nil {
		dst = append(dst, `,"outcome":{"status":`...)
		dst = jsonrpc.AppendQuoteHTML(dst, o.Status)
		if o.ErrorCode != 0 {
			dst = append(dst, `,"error_code":`...)
			dst = strconv.AppendInt(dst, int64(o.ErrorCode), 10)
		}
		dst = appendField(dst, "error", o.Error)
		dst = appendField(dst, "result_digest", o.ResultDigest)
		dst = appendCounts(dst, "masked", o.Masked)
		dst = append(dst, '}')
	}
	dst = appendInt(dst, "duration_us", r.DurationMicros)
	dst = appendInt(dst, "request_bytes", r.RequestBytes)
	dst = appendInt(dst, "response_bytes", r.ResponseBytes)
	if dst, err = appendRaw(dst, "detail", r.Detail); err != nil {
		return nil, err
	}
	if len(r.Subjects) > 0 {
		dst = append(dst, `,"subjects":[`...)
		for i, s := range r.Subjects {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"c":`...)
			dst = jsonrpc.AppendQuoteHTML(dst, s.Commitment)
			dst = appendField(dst, "k", s.KeyID)
			dst = appendField(dst, "ct", s.Ciphertext)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	return append(dst, '}'), nil
}

// appendField writes an omitempty string member.
func appendField(dst []byte, name, v string) []byte {
	if v == "" {
		return dst
	}
	dst = append(append(append(append(dst, ',', '"'), name...), '"'), ':')
	return jsonrpc.AppendQuoteHTML(dst, v)
}

func appendList(dst []byte, name string, vs []string) []byte {
	if len(vs) == 0 {
		return dst
	}
	dst = append(append(append(append(dst, ',', '"'), name...), '"'), ':', '[')
	for i, v := range vs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonrpc.AppendQuoteHTML(dst, v)
	}
	return append(dst, ']')
}

// appendCounts writes an omitempty map of counts, its keys sorted.
func appendCounts(dst []byte, name string, m map[string]int) []byte {
	if len(m) == 0 {
		return dst
	}
	dst = append(append(append(append(dst, ',', '"'), name...), '"'), ':', '{')
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(jsonrpc.AppendQuoteHTML(dst, k), ':')
		dst = strconv.AppendInt(dst, int64(m[k]), 10)
	}
	return append(dst, '}')
}

func appendInt(dst []byte, name string, v int64) []byte {
	if v == 0 {
		return dst
	}
	dst = append(append(append(append(dst, ',', '"'), name...), '"'), ':')
	return strconv.AppendInt(dst, v, 10)
}

// appendRaw writes an omitempty json.RawMessage member as encoding/json does: compacted, with
// <, >, &, U+2028 and U+2029 escaped.
func appendRaw(dst []byte, name string, raw json.RawMessage) ([]byte, error) {
	if len(raw) == 0 {
		return dst, nil
	}
	if plainRaw(raw) && json.Valid(raw) {
		// Already compact, with nothing to escape: the common case (the redactor compacts).
		dst = append(append(append(append(dst, ',', '"'), name...), '"'), ':')
		return append(dst, raw...), nil
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return nil, fmt.Errorf("encode audit record: %s: %w", name, err)
	}
	dst = append(append(append(append(dst, ',', '"'), name...), '"'), ':')
	out := bytes.NewBuffer(dst)
	json.HTMLEscape(out, compact.Bytes())
	return out.Bytes(), nil
}

// plainRaw reports whether raw holds none of the bytes that compaction or HTML escaping would
// change: white space, <, >, & and 0xE2 (the first byte of U+2028 and U+2029, and of other
// characters, which take the slow path too).
func plainRaw(raw []byte) bool {
	for _, b := range raw {
		switch b {
		case ' ', '\t', '\n', '\r', '<', '>', '&', 0xE2:
			return false
		}
	}
	return true
}
