package jsonrpc

import (
	"encoding/json"
	"errors"
)

// errNotJSON is returned by Decode for input that is not one JSON value.
var errNotJSON = errors.New("jsonrpc: not a JSON value")

// Decode returns the Go value of the raw JSON value val: objects as map[string]any, arrays as
// []any, strings as string, numbers as encoding/json's Number, true, false and nil. It is for
// values inside a message [Parse] accepted (the arguments of a call, say): it checks structure
// and strings but leaves the rest of the syntax, and duplicate names, to Parse.
func Decode(val []byte) (any, error) {
	countPass()
	v, i, ok := decodeValue(val, skipSpace(val, 0), 0)
	if !ok || skipSpace(val, i) != len(val) {
		return nil, errNotJSON
	}
	return v, nil
}

func decodeValue(b []byte, i, depth int) (any, int, bool) {
	if i >= len(b) || depth > maxDepthCeiling {
		return nil, i, false
	}
	switch c := b[i]; c {
	case '{':
		m := map[string]any{}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == '}' {
			return m, i + 1, true
		}
		for {
			if i >= len(b) || b[i] != '"' {
				return nil, i, false
			}
			end := skipString(b, i)
			if end < 0 {
				return nil, i, false
			}
			name, ok := String(b[i:end])
			if !ok {
				return nil, i, false
			}
			if i = skipSpace(b, end); i >= len(b) || b[i] != ':' {
				return nil, i, false
			}
			var v any
			if v, i, ok = decodeValue(b, skipSpace(b, i+1), depth+1); !ok {
				return nil, i, false
			}
			m[name] = v
			if i = skipSpace(b, i); i >= len(b) {
				return nil, i, false
			}
			switch b[i] {
			case ',':
				i = skipSpace(b, i+1)
			case '}':
				return m, i + 1, true
			default:
				return nil, i, false
			}
		}
	case '[':
		a := []any{}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == ']' {
			return a, i + 1, true
		}
		for {
			v, j, ok := decodeValue(b, i, depth+1)
			if !ok {
				return nil, j, false
			}
			a = append(a, v)
			if i = skipSpace(b, j); i >= len(b) {
				return nil, i, false
			}
			switch b[i] {
			case ',':
				i = skipSpace(b, i+1)
			case ']':
				return a, i + 1, true
			default:
				return nil, i, false
			}
		}
	case '"':
		end := skipString(b, i)
		if end < 0 {
			return nil, i, false
		}
		s, ok := String(b[i:end])
		return s, end, ok
	case 't':
		return true, i + 4, hasLiteral(b, i, "true")
	case 'f':
		return false, i + 5, hasLiteral(b, i, "false")
	case 'n':
		return nil, i + 4, hasLiteral(b, i, "null")
	default:
		if c != '-' && (c < '0' || c > '9') {
			return nil, i, false
		}
		j := i + 1
		for j < len(b) && isScalarByte(b[j]) {
			j++
		}
		return json.Number(b[i:j]), j, true
	}
}

func hasLiteral(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}
