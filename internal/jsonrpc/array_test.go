package jsonrpc

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestElements(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", `[]`, nil},
		{"scalars", `[1, "a,b", true, null]`, []string{`1`, `"a,b"`, `true`, `null`}},
		{"nested", `[{"a":[1,2]},[3,{"b":"]"}]]`, []string{`{"a":[1,2]}`, `[3,{"b":"]"}]`}},
		{"escaped quote", `["x\"]", 2]`, []string{`"x\"]"`, `2`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			if err := Elements([]byte(tt.in), func(e []byte) error { got = append(got, string(e)); return nil }); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Elements(%s) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
	if err := Elements([]byte(`{"a":1}`), func([]byte) error { return nil }); err != ErrNotArray {
		t.Errorf("Elements(object) = %v, want ErrNotArray", err)
	}
}
