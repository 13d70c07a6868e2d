package jsonrpc

import "errors"

// ErrNotArray is returned by Elements for a value that is not a JSON array.
var ErrNotArray = errors.New("jsonrpc: not a JSON array")

// Elements calls fn with each element of a raw JSON array, in order. Like the other raw
// helpers it expects JSON that Parse has already validated; it stops at the first error fn
// returns.
func Elements(arr []byte, fn func(elem []byte) error) error {
	i := skipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return ErrNotArray
	}
	i++
	for {
		i = skipSpace(arr, i)
		if i >= len(arr) {
			return ErrNotArray
		}
		if arr[i] == ']' {
			return nil
		}
		if arr[i] == ',' {
			i++
			continue
		}
		end := valueEnd(arr, i)
		if end < 0 {
			return ErrNotArray
		}
		if err := fn(arr[i:end]); err != nil {
			return err
		}
		i = end
	}
}

// valueEnd returns the index just past the JSON value starting at b[i], or -1.
func valueEnd(b []byte, i int) int {
	depth := 0
	for j := i; j < len(b); j++ {
		switch c := b[j]; c {
		case '"':
			j++
			for j < len(b) && b[j] != '"' {
				if b[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(b) {
				return -1
			}
			if depth == 0 {
				return j + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return j
			}
			depth--
			if depth == 0 {
				return j + 1
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return j
			}
		}
	}
	if depth == 0 {
		return len(b)
	}
	return -1
}
