package jsonrpc

import "errors"

// ErrNotArray is returned by [Elements] for a value that is not a JSON array.
var ErrNotArray = errors.New("jsonrpc: not a JSON array")

// Elements calls fn with each element of the raw JSON array arr, in order. Like the other raw
// helpers it expects JSON that [Parse] has already validated. It stops at and returns the
// first error from fn, and returns [ErrNotArray] if arr is not a well-formed array.
func Elements(arr []byte, fn func(elem []byte) error) error {
	countPass()
	i := skipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return ErrNotArray
	}
	if i = skipSpace(arr, i+1); i < len(arr) && arr[i] == ']' {
		return nil
	}
	for {
		end := skipValue(arr, i)
		if end < 0 {
			return ErrNotArray
		}
		if err := fn(arr[i:end:end]); err != nil {
			return err
		}
		if i = skipSpace(arr, end); i >= len(arr) {
			return ErrNotArray
		}
		switch arr[i] {
		case ']':
			return nil
		case ',':
			i = skipSpace(arr, i+1)
		default:
			return ErrNotArray
		}
	}
}
