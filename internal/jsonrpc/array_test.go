package jsonrpc_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
)

func TestElements(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr error
	}{
		{name: "empty", in: ` [ ] `},
		{name: "scalars", in: `[1, "a,b", true, null, -2.5e3]`, want: []string{`1`, `"a,b"`, `true`, `null`, `-2.5e3`}},
		{name: "nested", in: `[{"a":[1,2]},[3,{"b":"]"}]]`, want: []string{`{"a":[1,2]}`, `[3,{"b":"]"}]`}},
		{name: "escaped quote", in: `["x\"]", 2]`, want: []string{`"x\"]"`, `2`}},
		{name: "spaces", in: "[ 1 ,\n\t2 ]", want: []string{`1`, `2`}},
		{name: "object", in: `{"a":1}`, wantErr: jsonrpc.ErrNotArray},
		{name: "truncated", in: `[1,`, want: []string{`1`}, wantErr: jsonrpc.ErrNotArray},
		{name: "missing comma", in: `[1 2]`, want: []string{`1`}, wantErr: jsonrpc.ErrNotArray},
		{name: "nil", in: ``, wantErr: jsonrpc.ErrNotArray},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			err := jsonrpc.Elements([]byte(tt.in), func(e []byte) error { got = append(got, string(e)); return nil })
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Elements(%s) error = %v, want %v", tt.in, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Elements(%s) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}

	t.Run("stops at callback error", func(t *testing.T) {
		t.Parallel()
		stop := errors.New("stop")
		n := 0
		err := jsonrpc.Elements([]byte(`[1,2,3]`), func([]byte) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Errorf("Elements = %v after %d calls, want stop after 1", err, n)
		}
	})
}
