package audit

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"
)

// FuzzAppendBody holds the hand-written record encoder to encoding/json, byte for byte: logs
// written by either must verify under the other.
func FuzzAppendBody(f *testing.F) {
	f.Add("tool<&>", "r\u2028\u2029\x01\"\\\b\f\n\r\t", "\xff\xfeé", `{"a": [1, "<b>"], "c":"\u2028"}`, `{"k":1}`, "ok", 42, int64(1500))
	f.Add("", "", "", ``, ``, "", 0, int64(0))
	f.Add("a", "b", "c", `[1,2`, `nope`, "error", -32602, int64(-3))
	f.Fuzz(func(t *testing.T, s1, s2, s3, args, detail, status string, code int, n int64) {
		r := &Record{
			Time: time.Unix(0, n).UTC(), Kind: Kind(s1), RequestID: s2, TraceID: s3, Principal: s1 + s2,
			Roles: []string{s1, s3}, AuthMethod: s3, ClientIP: s2, Era: s1, Method: s2, Upstream: s3, Tool: s1,
			Arguments: json.RawMessage(args), Decision: s2, Rule: s3, Reasons: []string{s2},
			DurationMicros: n, RequestBytes: n / 2, ResponseBytes: -n, Detail: json.RawMessage(detail),
		}
		if n%2 == 0 {
			r.Redactions = map[string]int{s1: code, s2: 1, "z": int(n % 7)}
			r.Outcome = &Outcome{Status: status, ErrorCode: code, Error: s3, ResultDigest: s1, Masked: map[string]int{s2: int(n % 5), "client-identity": code}}
			r.Roles = nil
		}
		want, werr := encodeBodyReflect(r)
		got, gerr := encodeBody(r)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("encoding/json error %v, appendBody error %v", werr, gerr)
		}
		if werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("appendBody differs from encoding/json:\n got %s\nwant %s", got, want)
		}
		// The writer completes the record in the room left before its body: the same bytes.
		if gerr == nil {
			roomy, _ := encodeBodyRoomy(r)
			seq := n & math.MaxInt64
			if in, out := canonicalInPlace(roomy, seq), canonical(nil, seq, got); !bytes.Equal(in, out) {
				t.Fatalf("canonicalInPlace differs from canonical at seq %d:\n got %s\nwant %s", seq, in, out)
			}
		}
	})
}

func BenchmarkEncodeBody(b *testing.B) {
	r := &Record{
		Time: time.Now(), Kind: KindToolCall, RequestID: "01J9ZQ4W8V2M", Principal: "alice", Roles: []string{"analyst"},
		AuthMethod: "jwt", ClientIP: "127.0.0.1", Era: "modern", Method: "tools/call", Upstream: "fin", Tool: "fin.get_stock_analysis",
		Arguments: json.RawMessage(`{"symbol":"VNM","period":"1y"}`), Decision: DecisionAllow, Rule: "MarketAnalystAI",
	}
	for _, enc := range []struct {
		name string
		fn   func(*Record) ([]byte, error)
	}{{"append", encodeBody}, {"reflect", encodeBodyReflect}} {
		b.Run(enc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := enc.fn(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestOutcomeMasked: an outcome's masked counts are part of the canonical encoding, keys
// sorted, and read back by ParseRecord (which verify uses).
func TestOutcomeMasked(t *testing.T) {
	r := &Record{Seq: 7, Time: time.Unix(1_700_000_000, 0).UTC(), Kind: KindOutcome, Tool: "finance.get_client_portfolio",
		Outcome: &Outcome{Status: "ok", ResultDigest: "sha256:00", Masked: map[string]int{"client-identity": 6, "client-email": 2}}}
	b, err := Canonical(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"outcome":{"status":"ok","result_digest":"sha256:00","masked":{"client-email":2,"client-identity":6}}`; !bytes.Contains(b, []byte(want)) {
		t.Errorf("canonical %s lacks %s", b, want)
	}
	back, err := ParseRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.Outcome.Masked["client-identity"] != 6 || back.Outcome.Masked["client-email"] != 2 {
		t.Errorf("read back %+v", back.Outcome)
	}
}
