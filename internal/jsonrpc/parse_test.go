package jsonrpc_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
)

// msgView is a Message with raw JSON shown as text, so diffs are readable; nil stays nil.
type msgView struct {
	Kind   string
	ID     string
	Method string
	Params *string
	Result *string
	Error  *errView
}

type errView struct {
	Code    int64
	Message string
	Data    *string
}

func rawView(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

func view(m *jsonrpc.Message) *msgView {
	if m == nil {
		return nil
	}
	v := &msgView{Kind: m.Kind.String(), ID: m.ID.String(), Method: m.Method, Params: rawView(m.Params), Result: rawView(m.Result)}
	if m.Error != nil {
		v.Error = &errView{Code: m.Error.Code, Message: m.Error.Message, Data: rawView(m.Error.Data)}
	}
	return v
}

func str(s string) *string { return &s }

func TestParseAcceptsMCPTraffic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want msgView
	}{
		{
			name: "initialize 2025-11-25",
			in: `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25",` +
				`"capabilities":{"roots":{"listChanged":true},"sampling":{},"elicitation":{"form":{}}},` +
				`"clientInfo":{"name":"claude-ai","version":"0.1.0"}}}`,
			want: msgView{Kind: "request", ID: "0", Method: "initialize", Params: str(`{"protocolVersion":"2025-11-25",` +
				`"capabilities":{"roots":{"listChanged":true},"sampling":{},"elicitation":{"form":{}}},` +
				`"clientInfo":{"name":"claude-ai","version":"0.1.0"}}`)},
		},
		{
			name: "initialized notification without params",
			in:   `{"jsonrpc":"2.0","method":"notifications/initialized"}`,
			want: msgView{Kind: "notification", ID: "null", Method: "notifications/initialized"},
		},
		{
			name: "tools/call with nested arguments",
			in: `{"jsonrpc":"2.0","id":"call-7","method":"tools/call","params":{"name":"transfer_funds",` +
				`"arguments":{"from":"ACC-1","to":"ACC-2","amount":{"value":125.5,"currency":"EUR"},` +
				`"tags":["rent",{"note":"März"}],"dryRun":false,"memo":null}}}`,
			want: msgView{Kind: "request", ID: `"call-7"`, Method: "tools/call", Params: str(`{"name":"transfer_funds",` +
				`"arguments":{"from":"ACC-1","to":"ACC-2","amount":{"value":125.5,"currency":"EUR"},` +
				`"tags":["rent",{"note":"März"}],"dryRun":false,"memo":null}}`)},
		},
		{
			name: "2026-07-28 tools/call with _meta",
			in: `{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"get_weather","arguments":{"city":"Paris"},` +
				`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",` +
				`"io.modelcontextprotocol/clientCapabilities":{"elicitation":{}},` +
				`"io.modelcontextprotocol/clientInfo":{"name":"inspector","version":"1.0"},"progressToken":"p-1"}}}`,
			want: msgView{Kind: "request", ID: "12", Method: "tools/call", Params: str(`{"name":"get_weather","arguments":{"city":"Paris"},` +
				`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",` +
				`"io.modelcontextprotocol/clientCapabilities":{"elicitation":{}},` +
				`"io.modelcontextprotocol/clientInfo":{"name":"inspector","version":"1.0"},"progressToken":"p-1"}}`)},
		},
		{
			name: "server/discover with empty params",
			in:   `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{}}`,
			want: msgView{Kind: "request", ID: "1", Method: "server/discover", Params: str(`{}`)},
		},
		{
			name: "tools/list result",
			in: `{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"echo","description":"Echoes","inputSchema":` +
				`{"type":"object","properties":{"message":{"type":"string"}},"required":["message"]}}],"nextCursor":"c2"}}`,
			want: msgView{Kind: "response", ID: "2", Result: str(`{"tools":[{"name":"echo","description":"Echoes","inputSchema":` +
				`{"type":"object","properties":{"message":{"type":"string"}},"required":["message"]}}],"nextCursor":"c2"}`)},
		},
		{
			name: "input_required result",
			in: `{"jsonrpc":"2.0","id":"r1","result":{"resultType":"input_required","inputRequests":` +
				`{"confirm":{"method":"elicitation/create","params":{"message":"Proceed?","requestedSchema":{"type":"object"}}}}}}`,
			want: msgView{Kind: "response", ID: `"r1"`, Result: str(`{"resultType":"input_required","inputRequests":` +
				`{"confirm":{"method":"elicitation/create","params":{"message":"Proceed?","requestedSchema":{"type":"object"}}}}}`)},
		},
		{
			name: "error response with data",
			in:   `{"jsonrpc":"2.0","id":3,"error":{"code":-32602,"message":"Unknown tool: nope","data":{"tool":"nope"}}}`,
			want: msgView{Kind: "error", ID: "3", Error: &errView{Code: -32602, Message: "Unknown tool: nope", Data: str(`{"tool":"nope"}`)}},
		},
		{
			name: "error response with null id",
			in:   `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}`,
			want: msgView{Kind: "error", ID: "null", Error: &errView{Code: -32700, Message: "Parse error"}},
		},
		{
			name: "cancelled notification",
			in:   `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"call-7","reason":"user"}}`,
			want: msgView{Kind: "notification", ID: "null", Method: "notifications/cancelled", Params: str(`{"requestId":"call-7","reason":"user"}`)},
		},
		{
			name: "members in any order with whitespace",
			in:   " \r\n\t{ \"params\" : { \"cursor\" : \"x\" } , \"method\" : \"tools/list\" , \"id\" : 9 , \"jsonrpc\" : \"2.0\" } \n",
			want: msgView{Kind: "request", ID: "9", Method: "tools/list", Params: str(`{ "cursor" : "x" }`)},
		},
		{
			name: "escaped string id is canonical",
			in:   `{"jsonrpc":"2.0","id":"\u0061\/b","method":"ping"}`,
			want: msgView{Kind: "request", ID: `"a/b"`, Method: "ping"},
		},
		{
			name: "negative zero id is zero",
			in:   `{"jsonrpc":"2.0","id":-0,"method":"ping"}`,
			want: msgView{Kind: "request", ID: "0", Method: "ping"},
		},
		{
			name: "largest integer id",
			in:   `{"jsonrpc":"2.0","id":-9223372036854775808,"method":"ping"}`,
			want: msgView{Kind: "request", ID: "-9223372036854775808", Method: "ping"},
		},
		{
			name: "escaped envelope names",
			in:   `{"\u006asonrpc":"\u0032.0","\u0069d":1,"method":"custom/\u00e9t\u00e9"}`,
			want: msgView{Kind: "request", ID: "1", Method: "custom/été"},
		},
		{
			name: "names that differ other than by case",
			in:   `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"ß":1,"SS":2,"ss_":3,"a":{"a":{"a":1}}}}}`,
			want: msgView{Kind: "request", ID: "1", Method: "tools/call", Params: str(`{"name":"t","arguments":{"ß":1,"SS":2,"ss_":3,"a":{"a":{"a":1}}}}`)},
		},
		{
			name: "escaped surrogate pair and unicode",
			in:   `{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"\ud83d\ude00 日本 \n"}}`,
			want: msgView{Kind: "notification", ID: "null", Method: "notifications/message", Params: str(`{"level":"info","data":"\ud83d\ude00 日本 \n"}`)},
		},
		{
			name: "result of any JSON type",
			in:   `{"jsonrpc":"2.0","id":5,"result":[1,2.5e-3,true,null,"x"]}`,
			want: msgView{Kind: "response", ID: "5", Result: str(`[1,2.5e-3,true,null,"x"]`)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := jsonrpc.Parse([]byte(tt.in), jsonrpc.Limits{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(&tt.want, view(m)); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	const (
		parse   = jsonrpc.CodeParseError
		invalid = jsonrpc.CodeInvalidRequest
	)
	req := func(params string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":` + params + `}`
	}
	tests := []struct {
		name string
		in   string
		lim  jsonrpc.Limits
		code int64
		msg  string
	}{
		// Not one well-formed JSON value.
		{name: "empty", in: ``, code: parse, msg: "empty message"},
		{name: "only whitespace", in: " \n\t ", code: parse, msg: "empty message"},
		{name: "truncated", in: `{"jsonrpc":"2.0","id":1`, code: parse, msg: "unexpected end of input at offset 23"},
		{name: "truncated string", in: `{"jsonrpc":"2.`, code: parse, msg: "unexpected end of input at offset 14"},
		{name: "trailing garbage", in: `{"jsonrpc":"2.0","method":"ping"}x`, code: parse, msg: "unexpected data after the JSON value at offset 33"},
		{name: "two values", in: `{"jsonrpc":"2.0","method":"ping"} {"jsonrpc":"2.0","method":"ping"}`, code: parse, msg: "unexpected data after the JSON value at offset 34"},
		{name: "invalid UTF-8 in string", in: "{\"jsonrpc\":\"2.0\",\"method\":\"p\xffng\"}", code: parse, msg: "invalid UTF-8 in string at offset 28"},
		{name: "UTF-16 surrogate encoded as UTF-8", in: "{\"jsonrpc\":\"2.0\",\"method\":\"\xed\xa0\x80\"}", code: parse, msg: "invalid UTF-8 in string at offset 27"},
		{name: "invalid UTF-8 outside strings", in: "{\xff}", code: parse, msg: "invalid UTF-8 at offset 1"},
		{name: "byte order mark", in: "\xef\xbb\xbf{}", code: parse, msg: "invalid character '\\ufeff' looking for the start of a value at offset 0"},
		{name: "single quotes", in: `{'jsonrpc':'2.0'}`, code: parse, msg: `invalid character '\'' looking for an object member name at offset 1`},
		{name: "unquoted name", in: `{jsonrpc:"2.0"}`, code: parse, msg: `invalid character 'j' looking for an object member name at offset 1`},
		{name: "trailing comma in object", in: `{"jsonrpc":"2.0",}`, code: parse, msg: `invalid character '}' looking for an object member name at offset 17`},
		{name: "trailing comma in array", in: req(`{"a":[1,]}`), code: parse, msg: `invalid character ']' looking for the start of a value at offset 63`},
		{name: "missing colon", in: `{"jsonrpc" "2.0"}`, code: parse, msg: `invalid character '"' after object member name at offset 11`},
		{name: "missing comma", in: `{"jsonrpc":"2.0" "id":1}`, code: parse, msg: `invalid character '"' after object member at offset 17`},
		{name: "comment", in: `{"jsonrpc":"2.0" /* c */}`, code: parse, msg: `invalid character '/' after object member at offset 17`},
		{name: "leading zero", in: `{"jsonrpc":"2.0","id":01,"method":"ping"}`, code: parse, msg: `invalid character '1' after object member at offset 23`},
		{name: "NaN", in: req(`{"a":NaN}`), code: parse, msg: `invalid character 'N' looking for the start of a value at offset 60`},
		{name: "bad literal", in: req(`{"a":nul}`), code: parse, msg: `invalid character '}' in literal null at offset 63`},
		{name: "fraction without digits", in: req(`{"a":1.}`), code: parse, msg: `invalid character '}' after decimal point in number at offset 62`},
		{name: "raw control character", in: req("{\"a\":\"x\ny\"}"), code: parse, msg: `control character U+000A in string at offset 62`},
		{name: "bad escape", in: req(`{"a":"\x41"}`), code: parse, msg: `invalid escape sequence in string at offset 61`},
		{name: "short unicode escape", in: req(`{"a":"\u41"}`), code: parse, msg: `invalid \u escape in string at offset 61`},
		{name: "lone high surrogate", in: req(`{"a":"\ud800x"}`), code: parse, msg: `unpaired surrogate escape in string at offset 61`},
		{name: "lone low surrogate", in: req(`{"a":"\udc00"}`), code: parse, msg: `unpaired surrogate escape in string at offset 61`},
		{name: "syntax error wins over duplicate", in: req(`{"name":"a","name":"b"`), code: parse, msg: `unexpected end of input at offset 78`},

		// Batches and other non-object messages.
		{name: "batch", in: `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]`, code: invalid, msg: "batch requests are not supported"},
		{name: "empty batch", in: `[]`, code: invalid, msg: "batch requests are not supported"},
		{name: "malformed batch", in: `[{"jsonrpc":"2.0"`, code: parse, msg: "unexpected end of input at offset 17"},
		{name: "string message", in: `"ping"`, code: invalid, msg: "message must be a JSON object"},
		{name: "null message", in: `null`, code: invalid, msg: "message must be a JSON object"},

		// Duplicate names.
		{name: "duplicate name in params", in: req(`{"name":"read_file","name":"delete_file"}`), code: invalid, msg: `duplicate key "name" in params`},
		{name: "duplicate name through escape", in: req(`{"name":"read_file","\u006eame":"delete_file"}`), code: invalid, msg: `duplicate key "name" in params`},
		{name: "duplicate deep in arguments", in: req(`{"name":"t","arguments":{"items":[{},{"path":"/a","path":"/etc/passwd"}]}}`), code: invalid, msg: `duplicate key "path" in params.arguments.items[1]`},
		{name: "duplicate in _meta", in: req(`{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/protocolVersion":"2025-11-25"}}`), code: invalid, msg: `duplicate key "io.modelcontextprotocol/protocolVersion" in params._meta`},
		{name: "duplicate envelope method", in: `{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}`, code: invalid, msg: `duplicate key "method" in the message`},
		{name: "duplicate id", in: `{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}`, code: invalid, msg: `duplicate key "id" in the message`},
		{name: "duplicate in result", in: `{"jsonrpc":"2.0","id":1,"result":{"isError":false,"isError":true}}`, code: invalid, msg: `duplicate key "isError" in result`},
		{name: "duplicate odd name", in: req(`{"arguments":{"a b":{"x.y":1,"x.y":2}}}`), code: invalid, msg: `duplicate key "x.y" in params.arguments["a b"]`},

		// Names equal under case folding.
		{name: "case variant of name in params", in: req(`{"Name":"delete_file"}`), code: invalid, msg: `key "Name" differs only in case from "name" in params`},
		{name: "name and Name in params", in: req(`{"name":"read_file","Name":"delete_file"}`), code: invalid, msg: `key "Name" differs only in case from "name" in params`},
		{name: "case variants in arguments", in: req(`{"name":"t","arguments":{"path":"/a","PATH":"/b"}}`), code: invalid, msg: `keys "path" and "PATH" differ only in case in params.arguments`},
		{name: "kelvin sign folds to k", in: req(`{"arguments":{"k":1,"\u212a":2}}`), code: invalid, msg: "keys \"k\" and \"\u212a\" differ only in case in params.arguments"},
		{name: "greek sigma forms", in: req(`{"arguments":{"σ":1,"ς":2}}`), code: invalid, msg: `keys "σ" and "ς" differ only in case in params.arguments`},
		{name: "case variant of envelope member", in: `{"jsonrpc":"2.0","id":1,"Method":"tools/call"}`, code: invalid, msg: `key "Method" differs only in case from "method" in the message`},
		{name: "case variant of id", in: `{"jsonrpc":"2.0","ID":1,"method":"ping"}`, code: invalid, msg: `key "ID" differs only in case from "id" in the message`},
		{name: "case variant in error object", in: `{"jsonrpc":"2.0","id":1,"error":{"Code":1,"message":"x"}}`, code: invalid, msg: `key "Code" differs only in case from "code" in error`},
		{name: "case variant of protocolVersion", in: req(`{"protocolversion":"2025-11-25"}`), code: invalid, msg: `key "protocolversion" differs only in case from "protocolVersion" in params`},
		{name: "case variant of _meta", in: req(`{"_META":{}}`), code: invalid, msg: `key "_META" differs only in case from "_meta" in params`},

		// Envelope shape.
		{name: "unknown envelope member", in: `{"jsonrpc":"2.0","id":1,"method":"ping","extra":1}`, code: invalid, msg: `unknown member "extra" in the message`},
		{name: "unknown error member", in: `{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x","trace":"y"}}`, code: invalid, msg: `unknown member "trace" in error`},
		{name: "missing jsonrpc", in: `{"id":1,"method":"ping"}`, code: invalid, msg: `missing "jsonrpc" member`},
		{name: "wrong jsonrpc version", in: `{"jsonrpc":"1.0","id":1,"method":"ping"}`, code: invalid, msg: `"jsonrpc" must be "2.0"`},
		{name: "jsonrpc as number", in: `{"jsonrpc":2.0,"id":1,"method":"ping"}`, code: invalid, msg: `"jsonrpc" must be "2.0"`},
		{name: "null id in request", in: `{"jsonrpc":"2.0","id":null,"method":"ping"}`, code: invalid, msg: `"id" must not be null in a request`},
		{name: "fractional id", in: `{"jsonrpc":"2.0","id":1.5,"method":"ping"}`, code: invalid, msg: `"id" must be an integer or a string, not a fractional number`},
		{name: "exponent id", in: `{"jsonrpc":"2.0","id":1e3,"method":"ping"}`, code: invalid, msg: `"id" must be an integer or a string, not a fractional number`},
		{name: "id out of range", in: `{"jsonrpc":"2.0","id":9223372036854775808,"method":"ping"}`, code: invalid, msg: `"id" is outside the 64-bit integer range`},
		{name: "boolean id", in: `{"jsonrpc":"2.0","id":true,"method":"ping"}`, code: invalid, msg: `"id" must be a string or an integer`},
		{name: "object id", in: `{"jsonrpc":"2.0","id":{},"method":"ping"}`, code: invalid, msg: `"id" must be a string or an integer`},
		{name: "long id", in: `{"jsonrpc":"2.0","id":"` + strings.Repeat("x", 255) + `","method":"ping"}`, code: invalid, msg: `"id" is longer than 256 bytes`},
		{name: "method not a string", in: `{"jsonrpc":"2.0","id":1,"method":7}`, code: invalid, msg: `"method" must be a string`},
		{name: "empty method", in: `{"jsonrpc":"2.0","id":1,"method":""}`, code: invalid, msg: `"method" must not be empty`},
		{name: "positional params", in: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["t",{}]}`, code: invalid, msg: `"params" must be an object; positional (array) params are not supported`},
		{name: "null params", in: `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":null}`, code: invalid, msg: `"params" must be an object`},
		{name: "request with result", in: `{"jsonrpc":"2.0","id":1,"method":"ping","result":{}}`, code: invalid, msg: `a request must not have "result" or "error"`},
		{name: "no method result or error", in: `{"jsonrpc":"2.0","id":1}`, code: invalid, msg: `message has none of "method", "result" and "error"`},
		{name: "result and error", in: `{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"x"}}`, code: invalid, msg: `a response must not have both "result" and "error"`},
		{name: "response without id", in: `{"jsonrpc":"2.0","result":{}}`, code: invalid, msg: `a response must have an "id" member`},
		{name: "result with null id", in: `{"jsonrpc":"2.0","id":null,"result":{}}`, code: invalid, msg: `"id" must not be null in a result response`},
		{name: "params in response", in: `{"jsonrpc":"2.0","id":1,"result":{},"params":{}}`, code: invalid, msg: `"params" is not allowed in a response`},
		{name: "error not an object", in: `{"jsonrpc":"2.0","id":1,"error":"boom"}`, code: invalid, msg: `"error" must be an object`},
		{name: "error without code", in: `{"jsonrpc":"2.0","id":1,"error":{"message":"x"}}`, code: invalid, msg: `error object has no "code" member`},
		{name: "fractional error code", in: `{"jsonrpc":"2.0","id":1,"error":{"code":-32000.5,"message":"x"}}`, code: invalid, msg: `"code" in error must be an integer`},
		{name: "string error code", in: `{"jsonrpc":"2.0","id":1,"error":{"code":"-32000","message":"x"}}`, code: invalid, msg: `"code" in error must be an integer`},
		{name: "error without message", in: `{"jsonrpc":"2.0","id":1,"error":{"code":1}}`, code: invalid, msg: `error object has no "message" member`},
		{name: "error message not a string", in: `{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":{}}}`, code: invalid, msg: `"message" in error must be a string`},

		// Limits.
		{name: "nesting deeper than default", in: req(`{"arguments":{"x":` + strings.Repeat("[", 62) + strings.Repeat("]", 62) + `}}`), code: invalid,
			msg: `nesting deeper than 64 levels in params.arguments.x` + strings.Repeat("[0]", 61)},
		{name: "nesting deeper than custom", lim: jsonrpc.Limits{MaxDepth: 3}, in: req(`{"arguments":{"x":[1]}}`), code: invalid, msg: `nesting deeper than 3 levels in params.arguments.x`},
		{name: "too many members", lim: jsonrpc.Limits{MaxKeys: 4}, in: req(`{"arguments":{"a":1,"b":2,"c":3,"d":4,"e":5}}`), code: invalid, msg: `object has more than 4 members in params.arguments`},
		{name: "string too long", lim: jsonrpc.Limits{MaxStringBytes: 10}, in: req(`{"arguments":{"a":"12345678901"}}`), code: invalid, msg: `string longer than 10 bytes in params.arguments.a`},
		{name: "name too long", lim: jsonrpc.Limits{MaxStringBytes: 10}, in: req(`{"arguments":{"12345678901":1}}`), code: invalid, msg: `string longer than 10 bytes in params.arguments`},
		{name: "message too large", lim: jsonrpc.Limits{MaxBytes: 16}, in: `{"jsonrpc":"2.0","method":"ping"}`, code: invalid, msg: `message is 33 bytes, over the 16-byte limit`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := jsonrpc.Parse([]byte(tt.in), tt.lim)
			var e *jsonrpc.Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse error = %v (%T), want *jsonrpc.Error", err, err)
			}
			if e.Code != tt.code || e.Message != tt.msg {
				t.Errorf("Parse error = %d %q, want %d %q", e.Code, e.Message, tt.code, tt.msg)
			}
		})
	}
}

func TestParseDefaultLimits(t *testing.T) {
	t.Parallel()
	nest := func(depth int) string {
		// The message object is level 1, params level 2, arguments level 3.
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":` +
			strings.Repeat("[", depth-2) + strings.Repeat("]", depth-2) + `}}`
	}
	members := func(n int) string {
		var b strings.Builder
		b.WriteString(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"k%d":%d`, i, i)
		}
		b.WriteString(`}}}`)
		return b.String()
	}
	sized := func(n int) string {
		head, tail := `{"jsonrpc":"2.0","method":"m","params":{"a":"`, `"}}`
		return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
	}
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{name: "64 levels", in: nest(64)},
		{name: "65 levels", in: nest(65), wantErr: "nesting deeper than 64 levels in params.arguments" + strings.Repeat("[0]", 62)},
		{name: "10000 members", in: members(10000)},
		{name: "10001 members", in: members(10001), wantErr: "object has more than 10000 members in params.arguments"},
		{name: "4 MiB", in: sized(4 << 20)},
		{name: "over 4 MiB", in: sized(4<<20 + 1), wantErr: "message is 4194305 bytes, over the 4194304-byte limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := jsonrpc.Parse([]byte(tt.in), jsonrpc.Limits{})
			got := ""
			if err != nil {
				got = err.(*jsonrpc.Error).Message
			}
			if got != tt.wantErr {
				t.Errorf("Parse error = %q, want %q", got, tt.wantErr)
			}
		})
	}
}

// TestParseLargeObjects covers the sorted duplicate check used for objects with many members.
func TestParseLargeObjects(t *testing.T) {
	t.Parallel()
	obj := func(names ...string) string {
		var b strings.Builder
		b.WriteString(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{`)
		for i, n := range names {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"%s":%d`, n, i)
		}
		b.WriteString(`}}}`)
		return b.String()
	}
	many := func(n int, extra ...string) []string {
		names := make([]string, 0, n+len(extra))
		for i := range n {
			names = append(names, fmt.Sprintf("field_%04d", n-i)) // reverse order, so sorting moves them
		}
		return append(names, extra...)
	}
	tests := []struct {
		name    string
		names   []string
		wantErr string
	}{
		{name: "distinct", names: many(500)},
		{name: "exact duplicate", names: many(500, "field_0042"), wantErr: `duplicate key "field_0042" in params.arguments`},
		{name: "case variant", names: many(500, "FIELD_0007"), wantErr: `keys "field_0007" and "FIELD_0007" differ only in case in params.arguments`},
		{name: "escaped duplicate", names: many(100, `field_\u0030001`), wantErr: `duplicate key "field_0001" in params.arguments`},
		{name: "kelvin variant", names: many(100, "k", "\u212a"), wantErr: "keys \"k\" and \"\u212a\" differ only in case in params.arguments"},
		{name: "first duplicate in document order", names: append(many(100, "zz", "aa"), "ZZ", "AA"), wantErr: `keys "zz" and "ZZ" differ only in case in params.arguments`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := jsonrpc.Parse([]byte(obj(tt.names...)), jsonrpc.Limits{})
			got := ""
			if err != nil {
				got = err.(*jsonrpc.Error).Message
			}
			if got != tt.wantErr {
				t.Errorf("Parse error = %q, want %q", got, tt.wantErr)
			}
		})
	}
}

// namesObject is a tools/call whose arguments hold 10 000 names built by name.
func namesObject(name func(i int) string) []byte {
	var b strings.Builder
	b.WriteString(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{`)
	for i := range 10000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"%s":0`, name(i))
	}
	b.WriteString(`}}}`)
	return []byte(b.String())
}

var namePrefix = strings.Repeat("A", 300)

// sharedPrefixNames differ only in their last bytes: a duplicate check that compares names from
// the start, or hashes only a prefix, is quadratic on them. BenchmarkParseAdversarialNames
// times them against names that differ at once.
func sharedPrefixNames(i int) string { return fmt.Sprintf("%s%05d", namePrefix, i) }
func distinctNames(i int) string     { return fmt.Sprintf("%05d%s", i, namePrefix) }

// TestParseAdversarialNames: 10 000 distinct names sharing a long prefix are accepted, and one
// duplicate among them is still found. How long it takes is BenchmarkParseAdversarialNames's.
func TestParseAdversarialNames(t *testing.T) {
	t.Parallel()
	if _, err := jsonrpc.Parse(namesObject(sharedPrefixNames), jsonrpc.Limits{}); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	dup := namesObject(func(i int) string { return sharedPrefixNames(min(i, 9998)) })
	if _, err := jsonrpc.Parse(dup, jsonrpc.Limits{}); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("Parse of a duplicate among names sharing a prefix = %v, want a duplicate-key error", err)
	}
}

func BenchmarkParseAdversarialNames(b *testing.B) {
	for _, c := range []struct {
		name string
		in   []byte
	}{{"shared-prefix", namesObject(sharedPrefixNames)}, {"distinct", namesObject(distinctNames)}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.in)))
			for b.Loop() {
				if _, err := jsonrpc.Parse(c.in, jsonrpc.Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestParseErrorsStayShort(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 2000)
	tests := []struct {
		name string
		in   string
	}{
		{name: "duplicate long name", in: `{"jsonrpc":"2.0","id":1,"method":"m","params":{"` + long + `":1,"` + long + `":2}}`},
		{name: "unknown long member", in: `{"jsonrpc":"2.0","id":1,"method":"m","` + long + `":1}`},
		{name: "deep path of long names", in: `{"jsonrpc":"2.0","id":1,"method":"m","params":` +
			strings.Repeat(`{"`+long+`":`, 70) + `1` + strings.Repeat("}", 70) + `}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := jsonrpc.Parse([]byte(tt.in), jsonrpc.Limits{})
			if err == nil {
				t.Fatal("Parse accepted the message")
			}
			if msg := err.(*jsonrpc.Error).Message; len(msg) > 400 {
				t.Errorf("error message is %d bytes: %q", len(msg), msg)
			}
		})
	}
}

// TestParseReturnsIDOnInvalidRequest checks that the id survives for the error reply.
func TestParseReturnsIDOnInvalidRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     string
		wantID string // "" means no Message
	}{
		{name: "duplicate in params", in: `{"jsonrpc":"2.0","id":"abc","method":"tools/call","params":{"name":"a","name":"b"}}`, wantID: `"abc"`},
		{name: "positional params", in: `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":[]}`, wantID: `7`},
		{name: "wrong version", in: `{"jsonrpc":"1.0","id":7,"method":"ping"}`, wantID: `7`},
		{name: "duplicate id", in: `{"jsonrpc":"2.0","id":7,"id":8,"method":"ping"}`},
		{name: "id and ID", in: `{"jsonrpc":"2.0","id":7,"ID":8,"method":"ping"}`},
		{name: "null id", in: `{"jsonrpc":"2.0","id":null,"method":"ping"}`},
		{name: "bad id", in: `{"jsonrpc":"2.0","id":1.5,"method":"ping"}`},
		{name: "parse error", in: `{"jsonrpc":"2.0","id":7,"method":"ping"`},
		{name: "batch", in: `[{"jsonrpc":"2.0","id":7,"method":"ping"}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := jsonrpc.Parse([]byte(tt.in), jsonrpc.Limits{})
			if err == nil {
				t.Fatal("Parse accepted the message")
			}
			got := ""
			if m != nil {
				if m.Kind != jsonrpc.KindInvalid {
					t.Errorf("Kind = %v, want invalid", m.Kind)
				}
				got = m.ID.String()
			}
			if got != tt.wantID {
				t.Errorf("ID = %q, want %q", got, tt.wantID)
			}
		})
	}
}

func TestParseAliasesInput(t *testing.T) {
	t.Parallel()
	in := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}`)
	m, err := jsonrpc.Parse(in, jsonrpc.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	// Appending to Params must not overwrite the input that follows it.
	_ = append(m.Params, "XXXX"...)
	if got, want := string(in[len(in)-1:]), "}"; got != want {
		t.Errorf("input modified by append to Params: ends %q", got)
	}
}
