package jsonrpc_test

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/go-cmp/cmp"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
)

// The seed corpora live in testdata/fuzz/FuzzParse and testdata/fuzz/FuzzRawObject.

// fuzzLimits matches jsontext's own depth limit, so that syntax verdicts are comparable.
var fuzzLimits = jsonrpc.Limits{MaxDepth: 10000}

// FuzzParse checks Parse against go-json-experiment (the future encoding/json/v2) as an
// independent reference, and checks that accepted messages survive re-encoding.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := jsonrpc.Parse(in, fuzzLimits)
		var perr *jsonrpc.Error
		if err != nil && !errors.As(err, &perr) {
			t.Fatalf("Parse error is %T, want *jsonrpc.Error", err)
		}

		// Syntax agrees with jsontext: -32700 exactly when jsontext rejects the bytes.
		syntaxOK := jsontext.Value(in).IsValid(jsontext.AllowDuplicateNames(true))
		if isParse := perr != nil && perr.Code == jsonrpc.CodeParseError; isParse == syntaxOK {
			t.Fatalf("Parse error %v, but jsontext syntax valid = %v", err, syntaxOK)
		}
		if !syntaxOK {
			return
		}
		if perr != nil && perr.Code != jsonrpc.CodeInvalidRequest {
			t.Fatalf("Parse error code %d for well-formed JSON", perr.Code)
		}

		// Duplicate names as encoding/json/v2 sees them, and names equal under
		// strings.EqualFold, are always rejected.
		exactDup := !jsontext.Value(in).IsValid()
		foldDup := hasFoldDuplicate(t, in)
		if exactDup && !foldDup {
			t.Fatalf("reference found an exact duplicate but no case-folded one")
		}
		if foldDup && err == nil {
			t.Fatalf("Parse accepted a message with names equal under case folding")
		}
		if perr != nil && (strings.HasPrefix(perr.Message, "duplicate key ") || strings.HasPrefix(perr.Message, "keys ")) && !foldDup {
			t.Fatalf("Parse reported %q but the reference found no duplicate", perr.Message)
		}
		if err != nil {
			if m != nil && (m.Kind != jsonrpc.KindInvalid || m.ID.IsZero()) {
				t.Fatalf("Parse error with Message %+v", m)
			}
			return
		}

		checkAgainstV2(t, in, m)

		// Re-encoding gives a message that parses to the same thing.
		out := jsonrpc.AppendMessage(nil, m)
		m2, err := jsonrpc.Parse(out, fuzzLimits)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if m2.Kind != m.Kind || m2.ID != m.ID || m2.Method != m.Method ||
			!bytes.Equal(m2.Params, m.Params) || !bytes.Equal(m2.Result, m.Result) {
			t.Fatalf("re-parse differs:\n%+v\n%+v", m, m2)
		}
		if (m.Error == nil) != (m2.Error == nil) ||
			m.Error != nil && (m.Error.Code != m2.Error.Code || m.Error.Message != m2.Error.Message || !bytes.Equal(m.Error.Data, m2.Error.Data)) {
			t.Fatalf("re-parse error object differs: %+v vs %+v", m.Error, m2.Error)
		}
		if m.Params != nil {
			checkRawObject(t, m.Params)
		}
	})
}

// hasFoldDuplicate walks in with jsontext and reports whether any object has two names equal
// under strings.EqualFold.
func hasFoldDuplicate(t *testing.T, in []byte) bool {
	t.Helper()
	d := jsontext.NewDecoder(bytes.NewReader(in), jsontext.AllowDuplicateNames(true))
	var stack [][]string // names per open object; nil for arrays
	found := false
	for {
		tok, err := d.ReadToken()
		if err == io.EOF {
			return found
		}
		if err != nil {
			t.Fatalf("jsontext rejected a value it had validated: %v", err)
		}
		switch tok.Kind() {
		case '{':
			stack = append(stack, []string{})
			continue
		case '[':
			stack = append(stack, nil)
			continue
		case '}', ']':
			stack = stack[:len(stack)-1]
			continue
		}
		if tok.Kind() != '"' {
			continue
		}
		// A string is a name when it leaves its object with an odd count of names and values.
		if kind, n := d.StackIndex(d.StackDepth()); kind == '{' && n%2 == 1 {
			name := tok.String()
			top := stack[len(stack)-1]
			for _, prev := range top {
				if strings.EqualFold(prev, name) {
					found = true
				}
			}
			stack[len(stack)-1] = append(top, name)
		}
	}
}

// checkAgainstV2 decodes the accepted message with encoding/json/v2 semantics (case-sensitive,
// duplicates rejected) and compares what both read.
func checkAgainstV2(t *testing.T, in []byte, m *jsonrpc.Message) {
	t.Helper()
	var v struct {
		JSONRPC string         `json:"jsonrpc"`
		ID      jsontext.Value `json:"id"`
		Method  string         `json:"method"`
		Params  jsontext.Value `json:"params"`
		Result  jsontext.Value `json:"result"`
		Error   *struct {
			Code    int64          `json:"code"`
			Message string         `json:"message"`
			Data    jsontext.Value `json:"data"`
		} `json:"error"`
	}
	if err := json.Unmarshal(in, &v, json.RejectUnknownMembers(true)); err != nil {
		t.Fatalf("encoding/json/v2 rejects a message Parse accepted: %v", err)
	}
	if v.JSONRPC != "2.0" || v.Method != m.Method {
		t.Fatalf("v2 read jsonrpc %q method %q; Parse read method %q", v.JSONRPC, v.Method, m.Method)
	}
	if !bytes.Equal(bytes.TrimSpace(v.Params), m.Params) || !bytes.Equal(bytes.TrimSpace(v.Result), m.Result) {
		t.Fatalf("v2 read params %s result %s; Parse read %s and %s", v.Params, v.Result, m.Params, m.Result)
	}
	if len(v.ID) > 0 && !m.ID.IsZero() {
		var a, b any
		if json.Unmarshal(v.ID, &a) != nil || json.Unmarshal([]byte(m.ID.String()), &b) != nil || a != b {
			t.Fatalf("v2 read id %s; Parse read %s", v.ID, m.ID)
		}
	}
	if (v.Error == nil) != (m.Error == nil) {
		t.Fatalf("v2 error %+v; Parse error %+v", v.Error, m.Error)
	}
	if v.Error != nil && (v.Error.Code != m.Error.Code || v.Error.Message != m.Error.Message) {
		t.Fatalf("v2 error %+v; Parse error %+v", v.Error, m.Error)
	}
}

// FuzzRawObject checks the raw-object helpers on arbitrary bytes: they never panic, and on
// valid objects without duplicate names they agree with jsontext.
func FuzzRawObject(f *testing.F) {
	f.Fuzz(func(t *testing.T, obj []byte, key string, val []byte) {
		// Never panic, whatever the input.
		jsonrpc.Lookup(obj, key)
		_ = jsonrpc.Members(obj, func(string, []byte) error { return nil })
		jsonrpc.SetMember(obj, key, val)
		jsonrpc.DeleteMember(obj, key)
		var picked [2][]byte
		_ = jsonrpc.Pick(obj, []string{key, "name"}, picked[:])
		if jsonrpc.CheckValue(obj, jsonrpc.Limits{}) == nil && !jsontext.Value(obj).IsValid() {
			t.Fatalf("CheckValue accepts %q, which jsontext rejects", obj)
		}
		jsonrpc.String(val)
		_ = jsonrpc.Elements(val, func([]byte) error { return nil })
		if jsontext.Value(val).Kind() == '[' && jsontext.Value(val).IsValid() {
			checkElements(t, val)
		}

		if jsontext.Value(obj).Kind() != '{' || !jsontext.Value(obj).IsValid() {
			return
		}
		checkRawObject(t, obj)
		if jsontext.Value(val).IsValid() && utf8.ValidString(key) {
			checkSetDelete(t, obj, key, bytes.TrimSpace(val))
		}
	})
}

// checkRawObject compares Members and Lookup with jsontext on a valid object.
func checkRawObject(t *testing.T, obj []byte) {
	t.Helper()
	var want []string
	var wantVals [][]byte
	d := jsontext.NewDecoder(bytes.NewReader(obj))
	if _, err := d.ReadToken(); err != nil {
		t.Fatal(err)
	}
	for d.PeekKind() != '}' {
		tok, err := d.ReadToken()
		if err != nil {
			t.Fatal(err)
		}
		name := tok.String() // before the next read voids tok
		val, err := d.ReadValue()
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, name)
		wantVals = append(wantVals, bytes.Clone(val))
	}
	var got []string
	err := jsonrpc.Members(obj, func(k string, v []byte) error {
		got = append(got, k)
		if i := len(got) - 1; i < len(wantVals) && !bytes.Equal(v, wantVals[i]) {
			t.Fatalf("Members value of %q = %s, jsontext says %s", k, v, wantVals[i])
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Members: %v", err)
	}
	if strings.Join(got, "\x00") != strings.Join(want, "\x00") || len(got) != len(want) {
		t.Fatalf("Members names = %q, jsontext says %q", got, want)
	}
	picked := make([][]byte, len(want))
	if err := jsonrpc.Pick(obj, want, picked); err != nil {
		t.Fatalf("Pick: %v", err)
	}
	for i, k := range want {
		if first := slices.Index(want, k); !bytes.Equal(picked[i], wantVals[first]) && i == first {
			t.Fatalf("Pick(%q) = %s; want %s", k, picked[i], wantVals[first])
		}
		if v, ok := jsonrpc.Lookup(obj, k); !ok || !bytes.Equal(v, wantVals[i]) {
			t.Fatalf("Lookup(%q) = %s, %v; want %s", k, v, ok, wantVals[i])
		}
	}
	for _, k := range want {
		if s, ok := jsonrpc.String(jsonrpc.Quote(k)); !ok || s != k {
			t.Fatalf("String(Quote(%q)) = %q, %v", k, s, ok)
		}
	}
}

// checkSetDelete checks that SetMember and DeleteMember keep a valid object valid and do what
// they say.
func checkSetDelete(t *testing.T, obj []byte, key string, val []byte) {
	t.Helper()
	orig := bytes.Clone(obj)
	set := jsonrpc.SetMember(obj, key, val)
	if !bytes.Equal(obj, orig) {
		t.Fatalf("SetMember modified its input")
	}
	if !jsontext.Value(set).IsValid() {
		t.Fatalf("SetMember(%s, %q, %s) = %s, not valid JSON", obj, key, val, set)
	}
	if got, ok := jsonrpc.Lookup(set, key); !ok || !bytes.Equal(got, val) {
		t.Fatalf("after SetMember, Lookup(%q) = %s, %v; want %s", key, got, ok, val)
	}
	del := jsonrpc.DeleteMember(set, key)
	if !jsontext.Value(del).IsValid() {
		t.Fatalf("DeleteMember(%s, %q) = %s, not valid JSON", set, key, del)
	}
	if _, ok := jsonrpc.Lookup(del, key); ok {
		t.Fatalf("after DeleteMember, %q is still in %s", key, del)
	}
	var before, after []string
	_ = jsonrpc.Members(obj, func(k string, _ []byte) error {
		if k != key {
			before = append(before, k)
		}
		return nil
	})
	_ = jsonrpc.Members(del, func(k string, _ []byte) error { after = append(after, k); return nil })
	if strings.Join(before, "\x00") != strings.Join(after, "\x00") {
		t.Fatalf("DeleteMember changed other members: %q -> %q", before, after)
	}
}

// checkElements compares Elements with jsontext on a valid array.
func checkElements(t *testing.T, arr []byte) {
	t.Helper()
	var want [][]byte
	d := jsontext.NewDecoder(bytes.NewReader(arr))
	if _, err := d.ReadToken(); err != nil {
		t.Fatal(err)
	}
	for d.PeekKind() != ']' {
		v, err := d.ReadValue()
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, bytes.Clone(v))
	}
	var got [][]byte
	if err := jsonrpc.Elements(arr, func(e []byte) error { got = append(got, e); return nil }); err != nil {
		t.Fatalf("Elements(%s): %v", arr, err)
	}
	if len(got) != len(want) {
		t.Fatalf("Elements(%s) gave %d elements, jsontext %d", arr, len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("Elements(%s)[%d] = %s, jsontext says %s", arr, i, got[i], want[i])
		}
	}
}

// FuzzDecode checks Decode against encoding/json on every value the strict parser accepts as
// params: the same Go value, numbers kept as written.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"a":[1,-2.5e3,"x\u00e9",true,false,null,{}],"b":{"c":[]}}`, `{}`, `{"s":"\ud83d\ude00"}`, `{"n":0}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, val []byte) {
		got, err := jsonrpc.Decode(val) // never panics
		if !stdjson.Valid(val) {
			// Not one JSON value: spliced into the message it may still make a valid one
			// (`[],"0":0` adds a member); Parse's own strictness is FuzzParse's to check.
			return
		}
		msg := append(append([]byte(`{"jsonrpc":"2.0","id":1,"method":"m","params":{"v":`), val...), "}}"...)
		if _, perr := jsonrpc.Parse(msg, jsonrpc.Limits{}); perr != nil {
			return
		}
		if err != nil {
			t.Fatalf("Decode(%s): %v, though Parse accepts it", val, err)
		}
		dec := stdjson.NewDecoder(bytes.NewReader(val))
		dec.UseNumber()
		var want any
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("encoding/json rejects %s, which Parse accepts: %v", val, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("Decode(%s) differs from encoding/json (-want +got):\n%s", val, diff)
		}
	})
}
