package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// maxArgsDepth bounds the nesting of call arguments the policy decodes.
const maxArgsDepth = 64

// argsDecoder decodes call arguments into JSON values (objects as
// map[string]any, arrays []any, numbers json.Number), reusing its token
// decoders across decisions. Duplicate member names and invalid UTF-8 are
// refused, as the gateway's own parser refuses them.
type argsDecoder struct {
	pool sync.Pool // of *argsReader
	// names interns the argument names the policy constrains, so that
	// decoding them allocates nothing.
	names map[string]string
	// values interns the strings constraints list under enum and const,
	// boxed, so that decoding an argument that takes one of them
	// allocates nothing.
	values map[string]any
}

type argsReader struct {
	r   bytes.Reader
	dec *jsontext.Decoder
}

// decode decodes the object raw into m, which must be empty.
func (ad *argsDecoder) decode(raw []byte, m map[string]any) error {
	ar, _ := ad.pool.Get().(*argsReader)
	if ar == nil {
		ar = &argsReader{}
		ar.dec = jsontext.NewDecoder(&ar.r)
	}
	ar.r.Reset(raw)
	ar.dec.Reset(&ar.r)
	defer func() {
		ar.r.Reset(nil)
		ar.dec.Reset(&ar.r)
		ad.pool.Put(ar)
	}()
	if ar.dec.PeekKind() != '{' {
		return errNotObject
	}
	if err := decodeObject(ar.dec, m, 0, ad.names, ad.values); err != nil {
		return fmt.Errorf("arguments are not valid JSON: %s", shorten(err.Error()))
	}
	if _, err := ar.dec.ReadToken(); !errors.Is(err, io.EOF) {
		return errors.New("arguments are not valid JSON: data after the object")
	}
	return nil
}

// decodeObject decodes the object at the decoder's position into m.
// Names found in names are taken from it, and string values from values.
func decodeObject(dec *jsontext.Decoder, m map[string]any, depth int, names map[string]string, values map[string]any) error {
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	for dec.PeekKind() != '}' {
		var name string
		if names != nil {
			raw, err := dec.ReadValue()
			if err != nil {
				return err
			}
			inner, plain := unescaped(raw)
			if s, ok := names[string(inner)]; ok && plain {
				name = s
			} else if name, err = unquote(raw, inner, plain); err != nil {
				return err
			}
		} else {
			k, err := dec.ReadToken()
			if err != nil {
				return err
			}
			name = k.String() // before the next read voids the token
		}
		v, err := decodeValue(dec, depth+1, values)
		if err != nil {
			return err
		}
		m[name] = v
	}
	_, err := dec.ReadToken()
	return err
}

// unescaped returns the text between the quotes of the JSON string raw,
// and whether it has no escape, so that it is the string itself.
func unescaped(raw jsontext.Value) (inner []byte, plain bool) {
	inner = raw[1 : len(raw)-1]
	return inner, bytes.IndexByte(inner, '\\') < 0
}

// unquote returns the string that the JSON string raw denotes.
func unquote(raw jsontext.Value, inner []byte, plain bool) (string, error) {
	if plain {
		return string(inner), nil
	}
	unq, err := jsontext.AppendUnquote(nil, raw)
	return string(unq), err
}

func decodeValue(dec *jsontext.Decoder, depth int, values map[string]any) (any, error) {
	if depth > maxArgsDepth {
		return nil, fmt.Errorf("nested deeper than %d levels", maxArgsDepth)
	}
	switch dec.PeekKind() {
	case '{':
		m := map[string]any{}
		if err := decodeObject(dec, m, depth, nil, values); err != nil {
			return nil, err
		}
		return m, nil
	case '[':
		if _, err := dec.ReadToken(); err != nil {
			return nil, err
		}
		a := []any{}
		for dec.PeekKind() != ']' {
			v, err := decodeValue(dec, depth+1, values)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, err
		}
		return a, nil
	case '0':
		raw, err := dec.ReadValue()
		if err != nil {
			return nil, err
		}
		return json.Number(raw), nil
	case '"':
		raw, err := dec.ReadValue()
		if err != nil {
			return nil, err
		}
		inner, plain := unescaped(raw)
		if v, ok := values[string(inner)]; ok && plain {
			return v, nil
		}
		return unquote(raw, inner, plain)
	case 't', 'f', 'n':
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, err
		}
		switch tok.Kind() {
		case 't':
			return true, nil
		case 'f':
			return false, nil
		}
		return nil, nil
	}
	_, err := dec.ReadToken() // reports the syntax error
	if err == nil {
		err = errors.New("unexpected token")
	}
	return nil, err
}

// shorten bounds a message that may quote the caller's input.
func shorten(s string) string {
	const limit = 2 * maxQuoted
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "..."
}
