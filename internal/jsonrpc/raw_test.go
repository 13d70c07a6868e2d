package jsonrpc_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
)

func TestLookup(t *testing.T) {
	t.Parallel()
	const obj = ` { "name" : "read_file" , "arguments":{"name":"inner","list":[1,{"x":"}"}]},"\u0075ri":"file:///a","e\"q":true } `
	tests := []struct {
		name   string
		obj    string
		key    string
		want   string
		wantOK bool
	}{
		{name: "first member", obj: obj, key: "name", want: `"read_file"`, wantOK: true},
		{name: "object value", obj: obj, key: "arguments", want: `{"name":"inner","list":[1,{"x":"}"}]}`, wantOK: true},
		{name: "escaped name", obj: obj, key: "uri", want: `"file:///a"`, wantOK: true},
		{name: "name with quote", obj: obj, key: `e"q`, want: `true`, wantOK: true},
		{name: "nested names are not top-level", obj: obj, key: "list"},
		{name: "case matters", obj: obj, key: "Name"},
		{name: "empty object", obj: `{}`, key: "name"},
		{name: "not an object", obj: `["name"]`, key: "name"},
		{name: "nil", obj: ``, key: "name"},
		{name: "truncated", obj: `{"name":`, key: "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := jsonrpc.Lookup([]byte(tt.obj), tt.key)
			if string(got) != tt.want || ok != tt.wantOK {
				t.Errorf("Lookup(%q) = %q, %v; want %q, %v", tt.key, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestMembers(t *testing.T) {
	t.Parallel()
	type member struct{ Key, Val string }
	tests := []struct {
		name    string
		obj     string
		want    []member
		wantErr error
	}{
		{name: "in order", obj: `{"b":1, "a" : [2,3] ,"\u00e9":"x","":null}`, want: []member{{"b", "1"}, {"a", "[2,3]"}, {"é", `"x"`}, {"", "null"}}},
		{name: "empty", obj: ` { } `},
		{name: "array", obj: `[1]`, wantErr: jsonrpc.ErrNotObject},
		{name: "truncated", obj: `{"a":1,`, want: []member{{"a", "1"}}, wantErr: jsonrpc.ErrNotObject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []member
			err := jsonrpc.Members([]byte(tt.obj), func(k string, v []byte) error {
				got = append(got, member{k, string(v)})
				return nil
			})
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Members error = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Members mismatch (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("stops at callback error", func(t *testing.T) {
		t.Parallel()
		stop := errors.New("stop")
		n := 0
		err := jsonrpc.Members([]byte(`{"a":1,"b":2}`), func(string, []byte) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Errorf("Members = %v after %d calls, want stop after 1", err, n)
		}
	})
}

func TestSetMember(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		obj  string
		key  string
		val  string
		want string
	}{
		{name: "replace", obj: `{"name":"a","arguments":{"x":1}}`, key: "arguments", val: `{"x":2}`, want: `{"name":"a","arguments":{"x":2}}`},
		{name: "replace escaped name", obj: `{"\u005fmeta":{}}`, key: "_meta", val: `{"a":1}`, want: `{"\u005fmeta":{"a":1}}`},
		{name: "append", obj: `{"name":"a"}`, key: "_meta", val: `{"progressToken":1}`, want: `{"name":"a","_meta":{"progressToken":1}}`},
		{name: "append keeps spacing", obj: "{ \"name\" : \"a\" \n}", key: "b", val: `1`, want: "{ \"name\" : \"a\",\"b\":1 \n}"},
		{name: "append to empty", obj: `{ }`, key: "a", val: `true`, want: `{"a":true }`},
		{name: "nil object", obj: ``, key: "a", val: `1`, want: `{"a":1}`},
		{name: "name needing escapes", obj: `{}`, key: "a\"b\n", val: `1`, want: `{"a\"b\n":1}`},
		{name: "not an object", obj: `[1]`, key: "a", val: `1`, want: ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := []byte(tt.obj)
			got := jsonrpc.SetMember(in, tt.key, []byte(tt.val))
			if string(got) != tt.want {
				t.Errorf("SetMember = %q, want %q", got, tt.want)
			}
			if string(in) != tt.obj {
				t.Errorf("SetMember modified its input to %q", in)
			}
		})
	}
}

func TestDeleteMember(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		obj  string
		key  string
		want string
	}{
		{name: "first", obj: `{"a":1,"b":2,"c":3}`, key: "a", want: `{"b":2,"c":3}`},
		{name: "middle", obj: `{"a":1,"b":2,"c":3}`, key: "b", want: `{"a":1,"c":3}`},
		{name: "last", obj: `{"a":1,"b":2,"c":3}`, key: "c", want: `{"a":1,"b":2}`},
		{name: "only", obj: `{"a":{"b":[1]}}`, key: "a", want: `{}`},
		{name: "with spaces", obj: `{ "a" : 1 , "b" : 2 }`, key: "a", want: `{ "b" : 2 }`},
		{name: "last with spaces", obj: `{ "a" : 1 , "b" : 2 }`, key: "b", want: `{ "a" : 1 }`},
		{name: "escaped name", obj: `{"\u005fmeta":{},"name":"x"}`, key: "_meta", want: `{"name":"x"}`},
		{name: "absent", obj: `{"a":1}`, key: "z", want: `{"a":1}`},
		{name: "not an object", obj: `"a"`, key: "a", want: ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := []byte(tt.obj)
			got := jsonrpc.DeleteMember(in, tt.key)
			if string(got) != tt.want {
				t.Errorf("DeleteMember = %q, want %q", got, tt.want)
			}
			if string(in) != tt.obj {
				t.Errorf("DeleteMember modified its input to %q", in)
			}
		})
	}
}

func TestString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		val    string
		want   string
		wantOK bool
	}{
		{name: "plain", val: `"tools/call"`, want: "tools/call", wantOK: true},
		{name: "empty", val: `""`, want: "", wantOK: true},
		{name: "escapes", val: `"a\"b\\c\/d\b\f\n\r\t"`, want: "a\"b\\c/d\b\f\n\r\t", wantOK: true},
		{name: "unicode escapes", val: `"\u00e9\ud83d\ude00"`, want: "é😀", wantOK: true},
		{name: "raw unicode", val: `"日本"`, want: "日本", wantOK: true},
		{name: "not a string", val: `12`},
		{name: "unterminated", val: `"abc`},
		{name: "inner quote", val: `"a"b"`},
		{name: "lone surrogate", val: `"\ud800"`},
		{name: "bad escape", val: `"\q"`},
		{name: "control character", val: "\"a\tb\""},
		{name: "invalid UTF-8", val: "\"\xff\""},
		{name: "surrounding space", val: ` "a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := jsonrpc.String([]byte(tt.val))
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("String(%q) = %q, %v; want %q, %v", tt.val, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestQuote(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "plain", in: "tools/call", want: `"tools/call"`},
		{name: "quote and backslash", in: `a"b\c`, want: `"a\"b\\c"`},
		{name: "control characters", in: "\b\f\n\r\t\x00\x1f", want: `"\b\f\n\r\t\u0000\u001f"`},
		{name: "unicode kept", in: "été 😀 \u2028", want: "\"été 😀 \u2028\""},
		{name: "invalid UTF-8", in: "a\xffb", want: `"a\ufffdb"`},
		{name: "html not escaped", in: "<a&b>", want: `"<a&b>"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := jsonrpc.Quote(tt.in)
			if string(got) != tt.want {
				t.Errorf("Quote(%q) = %s, want %s", tt.in, got, tt.want)
			}
			if back, ok := jsonrpc.String(got); !ok || (back != tt.in && tt.name != "invalid UTF-8") {
				t.Errorf("String(Quote(%q)) = %q, %v", tt.in, back, ok)
			}
		})
	}
}

func TestPick(t *testing.T) {
	obj := []byte(`{"name":"a","n\u0061me2":2,"_meta":{"name":"inner"},"Name":"case"}`)
	names := []string{"name", "name2", "_meta", "uri"}
	vals := make([][]byte, len(names))
	if err := jsonrpc.Pick(obj, names, vals); err != nil {
		t.Fatal(err)
	}
	want := []string{`"a"`, `2`, `{"name":"inner"}`, ``}
	for i := range names {
		if string(vals[i]) != want[i] {
			t.Errorf("Pick %q = %s, want %s", names[i], vals[i], want[i])
		}
	}
	if vals[3] != nil {
		t.Errorf("an absent member must stay nil, got %q", vals[3])
	}
	for _, bad := range []string{`[1]`, `{"a":}`, `{"a":1`, `"s"`} {
		if err := jsonrpc.Pick([]byte(bad), names, make([][]byte, len(names))); err == nil {
			t.Errorf("Pick(%s) = nil, want an error", bad)
		}
	}
}

func TestCheckValue(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`{"a":1,"b":[true,null,"x"]}`, ""},
		{`  {"a":{"b":1}}  `, ""},
		{`{"a":1,"a":2}`, "duplicate key"},
		{`{"a":1,"\u0061":2}`, "duplicate key"},
		{`{"name":1,"Name":2}`, "differ only in case"},
		{`{"x":{"k":1,"K":2}}`, "differ only in case"},
		{"{\"a\":\"\xff\"}", "UTF-8"},
		{`{"a":1} x`, "after the JSON value"},
		{``, "empty"},
	} {
		err := jsonrpc.CheckValue([]byte(tt.in), jsonrpc.Limits{})
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("CheckValue(%s) = %v, want nil", tt.in, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("CheckValue(%s) = %v, want an error containing %q", tt.in, err, tt.want)
		}
	}
}
