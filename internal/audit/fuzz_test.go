package audit_test

import (
	"bytes"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/mcpguard/mcpguard/internal/audit"
)

func FuzzParseRecord(f *testing.F) {
	f.Add([]byte(`{"v":1,"seq":0,"time":"2026-11-21T09:00:00.001000000Z","kind":"call","principal":"bob","arguments":{"a":[1,"x"]},"redactions":{"key":1},"decision":"allow"}`))
	f.Add([]byte(`{"v":1,"seq":3,"time":"2026-11-21T09:00:00.000000000Z","kind":"outcome","outcome":{"status":"ok","result_digest":"sha256:00"},"duration_us":12}`))
	f.Add([]byte(`{"v":2}`))
	f.Add([]byte(`{"v":1,"seq":4,"time":"2026-11-21T09:00:00.000000000Z","kind":"call","tool":"get_client_portfolio","arguments":{"client_id":"subject:ab12"},"subjects":[{"c":"ab12","k":"k1","ct":"AAEC"}]}`))
	f.Add([]byte(`{"v":1,"seq":5,"time":"2026-11-21T09:00:00.000000000Z","kind":"erasure","detail":{"keys":["k1"]},"subjects":[{"c":"ab12"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := audit.ParseRecord(data)
		if err != nil {
			return
		}
		// Whatever parses is canonical: encoding it again gives the same bytes.
		again, err := audit.Canonical(r)
		if err != nil {
			t.Fatalf("a parsed record does not encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("parsed %q but encodes as %q", data, again)
		}
	})
}

// fuzzVerifierKey signed the seed checkpoints in testdata/fuzz/FuzzParseCheckpoint, so the
// fuzzer starts from notes whose signature verifies.
const fuzzVerifierKey = "fuzz-log+f9d18cc1+AVzbzwJ11ATdwXiHY+Jm7PflmL4uv5hl4uQTsMFJTy3o"

func FuzzParseCheckpoint(f *testing.F) {
	v, err := note.NewVerifier(fuzzVerifierKey)
	if err != nil {
		f.Fatal(err)
	}
	valid := []byte("mcpguard.audit/log\n10\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— fuzz-log +dGMwVFUvNZg0moLczQFBBmbG2qgmlzRBOWAh2jk5AvkfDg6GXvTpxQmOA8ZboX+LVIZH2kMxK0M/D5VEB/qAseKGwo=\n")
	if tree, err := audit.ParseCheckpoint(valid, v); err != nil || tree.Size != 10 || tree.Origin != audit.DefaultOrigin {
		f.Fatalf("the signed seed: %+v, %v", tree, err)
	}
	f.Add(valid)
	f.Add([]byte("x\n-1\n\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		tree, err := audit.ParseCheckpoint(msg, v)
		if err == nil && tree.Size < 0 {
			t.Fatalf("accepted a negative size: %+v", tree)
		}
	})
}

func FuzzPrunedRecord(f *testing.F) {
	f.Add([]byte(`{"v":1,"seq":7,"time":"2026-11-21T09:00:00.000000000Z","kind":"call","request_id":"r7","principal":"analyst","tool":"t","decision":"allow","pruned":true}`))
	f.Add([]byte(`{"v":1,"seq":8,"time":"2026-11-21T09:00:00.000000000Z","kind":"auth_failure","pruned":true}`))
	f.Add([]byte(`{"v":1,"seq":8,"time":"2026-11-21T09:00:00.000000000Z","kind":"call","arguments":{},"pruned":true}`))
	f.Add([]byte(`,"pruned":true}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := audit.PrunedRecord(data)
		if err != nil {
			if _, perr := audit.ParseRecord(data); perr == nil && audit.IsPruned(data) {
				t.Fatalf("%q is both a record and pruned", data)
			}
			return
		}
		// Whatever reads as a pruned form is one, byte for byte, and never a record.
		if again := audit.PrunedForm(r); !bytes.Equal(again, data) {
			t.Fatalf("read %q but it is written %q", data, again)
		}
		if !audit.IsPruned(data) {
			t.Fatalf("%q read as pruned but IsPruned says no", data)
		}
		if _, err := audit.ParseRecord(data); err == nil {
			t.Fatalf("ParseRecord accepted the pruned form %q", data)
		}
	})
}
