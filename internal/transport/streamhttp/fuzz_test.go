package streamhttp

import (
	"encoding/json"
	"strconv"
	"testing"
)

// FuzzIDKey checks the id canonicalisation against encoding/json: an accepted id is a JSON
// string or an int64, and two ids have the same key exactly when they decode to the same
// value of the same type. The seed corpus is in testdata/fuzz/FuzzIDKey.
func FuzzIDKey(f *testing.F) {
	for _, p := range [][2]string{
		{`1`, `"1"`}, {`"a"`, `"\u0061"`}, {`0`, `-0`}, {`9223372036854775807`, `9223372036854775808`},
		{`"\ud800"`, `"\ufffd"`}, {`1.0`, `1`}, {` 7 `, `7`}, {`"é"`, `"\u00e9"`},
	} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ka, oka := idKey([]byte(a))
		kb, okb := idKey([]byte(b))
		va, vokA := decodeID(a)
		vb, vokB := decodeID(b)
		if oka && !vokA || okb && !vokB {
			t.Fatalf("accepted an id encoding/json does not read as a string or int64: %q / %q", a, b)
		}
		if oka && okb && (ka == kb) != (va == vb) {
			t.Fatalf("ids %q and %q: same key %v, same value %v", a, b, ka == kb, va == vb)
		}
		// A response carrying the id matches on the same key.
		if oka {
			rk, ok := responseKey([]byte(`{"jsonrpc":"2.0","id":` + a + `,"result":{}}`))
			if !ok || rk != ka {
				t.Fatalf("response with id %q: key %q, %v; want %q", a, rk, ok, ka)
			}
		}
	})
}

// decodeID decodes an id with encoding/json into a comparable value.
func decodeID(raw string) (string, bool) {
	var s string
	if err := json.Unmarshal([]byte(raw), &s); err == nil {
		return "s" + s, true
	}
	var n json.Number
	if err := json.Unmarshal([]byte(raw), &n); err != nil {
		return "", false
	}
	i, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil {
		return "", false
	}
	return "n" + strconv.FormatInt(i, 10), true
}
