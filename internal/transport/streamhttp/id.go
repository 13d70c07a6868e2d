package streamhttp

import (
	"bytes"
	"strconv"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
)

// idKey returns a key that is equal for JSON-RPC ids a JSON reader considers equal ("a" and
// "\u0061", 0 and -0) and differs between a string and a number ("1" and 1). Only strings
// and integers in JSON's syntax are ids.
func idKey(raw []byte) (string, bool) {
	raw = bytes.Trim(raw, " \t\r\n") // JSON's whitespace only
	if len(raw) == 0 {
		return "", false
	}
	if raw[0] == '"' {
		s, ok := jsonrpc.String(raw)
		if !ok {
			return "", false
		}
		return "s" + s, true
	}
	if !isJSONInteger(raw) {
		return "", false
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return "", false
	}
	return "n" + strconv.FormatInt(n, 10), true
}

// responseKey returns the id key of msg if msg is a JSON-RPC response (it has an id and a
// result or an error, and no method: a server-to-client request may reuse the number of one
// of ours).
func responseKey(msg []byte) (string, bool) {
	var id []byte
	var hasID, hasOutcome, hasMethod bool
	err := jsonrpc.Members(msg, func(k string, v []byte) error {
		switch k {
		case "id":
			if !hasID {
				id = v
			}
			hasID = true
		case "result", "error":
			hasOutcome = true
		case "method":
			hasMethod = true
		}
		return nil
	})
	if err != nil || !hasID || !hasOutcome || hasMethod {
		return "", false
	}
	return idKey(id)
}

// isJSONInteger reports whether b is -?(0|[1-9][0-9]*).
func isJSONInteger(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 1 && b[0] == '0' {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
