package policy

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		raw     string
		want    map[string]any
		wantErr string
	}{
		{"object", `{"symbol":"VNM","n":12,"f":1.5e3,"ok":true,"no":false,"nil":null,"list":[1,"a"],"obj":{"k":"v"}}`, map[string]any{
			"symbol": "VNM", "n": json.Number("12"), "f": json.Number("1.5e3"), "ok": true, "no": false, "nil": nil,
			"list": []any{json.Number("1"), "a"}, "obj": map[string]any{"k": "v"},
		}, ""},
		{"escapes", `{"s":"\u00e9\n","\u0073ymbol":1}`, map[string]any{"s": "é\n", "symbol": json.Number("1")}, ""},
		{"empty", `{}`, map[string]any{}, ""},
		{"array", `[1]`, nil, "arguments must be a JSON object"},
		{"string", `"x"`, nil, "arguments must be a JSON object"},
		{"duplicate key", `{"a":1,"a":2}`, nil, `arguments are not valid JSON: jsontext: duplicate object member name "a"`},
		{"trailing data", `{} {}`, nil, "arguments are not valid JSON: data after the object"},
		{"truncated", `{"a":`, nil, "arguments are not valid JSON: jsontext: unexpected EOF within \"/a\" after offset 5"},
		{"long input is not echoed whole", `{"` + string(bytes.Repeat([]byte("k"), 500)) + `":1,"` + string(bytes.Repeat([]byte("k"), 500)) + `":2}`, nil, "arguments are not valid JSON: jsontext: duplicate object member name \"" + string(bytes.Repeat([]byte("k"), 88)) + "..."},
		{"too deep", `{"a":` + string(bytes.Repeat([]byte("["), 70)) + string(bytes.Repeat([]byte("]"), 70)) + `}`, nil, "arguments are not valid JSON: nested deeper than 64 levels"},
	}
	ad := argsDecoder{names: map[string]string{"symbol": "symbol", "a": "a"}, values: map[string]any{"VNM": "VNM", "a": "a", "": ""}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]any{}
			err := ad.decode([]byte(tt.raw), got)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tt.wantErr {
				t.Errorf("error = %q, want %q", gotErr, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); err == nil && diff != "" {
				t.Errorf("arguments (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzDecodeArgs checks that whatever the argument decoder accepts,
// encoding/json reads the same way.
func FuzzDecodeArgs(f *testing.F) {
	for _, s := range []string{`{}`, `{"symbol":"VNM"}`, `{"a":[1,2.5,{"b":null}],"c":true}`, `{"a":1,"a":2}`, `{"s":"\ud800"}`, `[]`, `{"x":1e400}`} {
		f.Add([]byte(s))
	}
	ad := argsDecoder{names: map[string]string{"symbol": "symbol", "a": "a"}, values: map[string]any{"VNM": "VNM", "a": "a", "": ""}}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got := map[string]any{}
		if err := ad.decode(raw, got); err != nil {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var want map[string]any
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("accepted %q, which encoding/json rejects: %v", raw, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("%q decoded differently (-encoding/json +policy):\n%s", raw, diff)
		}
	})
}
