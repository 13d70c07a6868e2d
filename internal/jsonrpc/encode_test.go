package jsonrpc_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
)

func TestAppend(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		got  []byte
		want string
		kind jsonrpc.Kind
	}{
		{
			name: "request",
			got:  jsonrpc.AppendRequest(nil, jsonrpc.IntID(42), "tools/call", []byte(`{"name":"echo","arguments":{"m":"hi"}}`)),
			want: `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"echo","arguments":{"m":"hi"}}}`,
			kind: jsonrpc.KindRequest,
		},
		{
			name: "request without params",
			got:  jsonrpc.AppendRequest(nil, jsonrpc.StringID("a\"1"), "tools/list", nil),
			want: `{"jsonrpc":"2.0","id":"a\"1","method":"tools/list"}`,
			kind: jsonrpc.KindRequest,
		},
		{
			name: "notification",
			got:  jsonrpc.AppendNotification(nil, "notifications/cancelled", []byte(`{"requestId":42}`)),
			want: `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":42}}`,
			kind: jsonrpc.KindNotification,
		},
		{
			name: "result",
			got:  jsonrpc.AppendResult(nil, jsonrpc.IntID(-7), []byte(`{"content":[]}`)),
			want: `{"jsonrpc":"2.0","id":-7,"result":{"content":[]}}`,
			kind: jsonrpc.KindResponse,
		},
		{
			name: "empty result",
			got:  jsonrpc.AppendResult(nil, jsonrpc.IntID(1), nil),
			want: `{"jsonrpc":"2.0","id":1,"result":{}}`,
			kind: jsonrpc.KindResponse,
		},
		{
			name: "error",
			got:  jsonrpc.AppendError(nil, jsonrpc.StringID("x"), &jsonrpc.Error{Code: -31001, Message: `denied by policy: rule "no-delete"`, Data: []byte(`{"rule":"no-delete"}`)}),
			want: `{"jsonrpc":"2.0","id":"x","error":{"code":-31001,"message":"denied by policy: rule \"no-delete\"","data":{"rule":"no-delete"}}}`,
			kind: jsonrpc.KindError,
		},
		{
			name: "error without id",
			got:  jsonrpc.AppendError(nil, jsonrpc.ID{}, jsonrpc.NewError(jsonrpc.CodeParseError, "unexpected end of input at offset 3")),
			want: `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"unexpected end of input at offset 3"}}`,
			kind: jsonrpc.KindError,
		},
		{
			name: "appends to existing bytes",
			got:  jsonrpc.AppendNotification([]byte("data: "), "ping", nil),
			want: `data: {"jsonrpc":"2.0","method":"ping"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if string(tt.got) != tt.want {
				t.Errorf("got  %s\nwant %s", tt.got, tt.want)
			}
			if tt.kind == jsonrpc.KindInvalid {
				return
			}
			m, err := jsonrpc.Parse(tt.got, jsonrpc.Limits{})
			if err != nil {
				t.Fatalf("Parse of encoded message: %v", err)
			}
			if m.Kind != tt.kind {
				t.Errorf("Parse of encoded message: Kind = %v, want %v", m.Kind, tt.kind)
			}
			if again := jsonrpc.AppendMessage(nil, m); string(again) != tt.want {
				t.Errorf("AppendMessage(Parse(x)) = %s, want %s", again, tt.want)
			}
		})
	}
}

func TestID(t *testing.T) {
	t.Parallel()
	parseID := func(raw string) jsonrpc.ID {
		m, err := jsonrpc.Parse([]byte(`{"jsonrpc":"2.0","id":`+raw+`,"method":"ping"}`), jsonrpc.Limits{})
		if err != nil {
			t.Fatalf("Parse id %s: %v", raw, err)
		}
		return m.ID
	}
	tests := []struct {
		name       string
		id         jsonrpc.ID
		wantString string
		wantInt    int64
		isInt      bool
	}{
		{name: "int", id: jsonrpc.IntID(7), wantString: "7", wantInt: 7, isInt: true},
		{name: "negative int", id: jsonrpc.IntID(-12345), wantString: "-12345", wantInt: -12345, isInt: true},
		{name: "string", id: jsonrpc.StringID("req-1"), wantString: `"req-1"`},
		{name: "string with escapes", id: jsonrpc.StringID("a\nb"), wantString: `"a\nb"`},
		{name: "zero", id: jsonrpc.ID{}, wantString: "null"},
		{name: "parsed int", id: parseID("1234"), wantString: "1234", wantInt: 1234, isInt: true},
		{name: "parsed escaped string", id: parseID(`"\u0072eq-1"`), wantString: `"req-1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.id.String(); got != tt.wantString {
				t.Errorf("String() = %s, want %s", got, tt.wantString)
			}
			n, ok := tt.id.Int()
			if n != tt.wantInt || ok != tt.isInt {
				t.Errorf("Int() = %d, %v; want %d, %v", n, ok, tt.wantInt, tt.isInt)
			}
			if tt.id.IsZero() != (tt.wantString == "null") {
				t.Errorf("IsZero() = %v", tt.id.IsZero())
			}
			if raw := tt.id.Raw(); !tt.id.IsZero() && string(raw) != tt.wantString {
				t.Errorf("Raw() = %s, want %s", raw, tt.wantString)
			}
		})
	}

	t.Run("equal ids are equal map keys", func(t *testing.T) {
		t.Parallel()
		seen := map[jsonrpc.ID]string{
			jsonrpc.StringID("req-1"): "string",
			jsonrpc.IntID(0):          "zero",
		}
		got := []string{seen[parseID(`"\u0072eq-1"`)], seen[parseID("-0")], seen[parseID(`"0"`)]}
		if diff := cmp.Diff([]string{"string", "zero", ""}, got); diff != "" {
			t.Errorf("lookups by parsed id (-want +got):\n%s", diff)
		}
	})
}

// TestAppendLargeValueCopiesOnce: a message with a large raw value is built in a buffer grown
// once, not again for its closing brace (a 1 MiB tool result was copied twice).
func TestAppendLargeValueCopiesOnce(t *testing.T) {
	big := []byte(`{"content":[{"type":"text","text":"` + strings.Repeat("x", 1<<20) + `"}]}`)
	for name, build := range map[string]func() []byte{
		"result":       func() []byte { return jsonrpc.AppendResult(nil, jsonrpc.IntID(7), big) },
		"request":      func() []byte { return jsonrpc.AppendRequest(nil, jsonrpc.IntID(7), "tools/call", big) },
		"notification": func() []byte { return jsonrpc.AppendNotification(nil, "notifications/message", big) },
		"error": func() []byte {
			return jsonrpc.AppendError(nil, jsonrpc.IntID(7), &jsonrpc.Error{Code: -32000, Message: "m", Data: big})
		},
	} {
		// Grown once to its size: a second growth would leave a quarter of it spare.
		if out := build(); cap(out) > len(out)+len(out)/64 {
			t.Errorf("%s: a buffer of %d bytes for a %d-byte message", name, cap(out), len(out))
		}
	}
}
