package gdpr_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/gdpr"
	"github.com/mcpguard/mcpguard/internal/store/sqlite"
)

// FuzzSeal seals arbitrary arguments of a tool with subject paths: whatever it accepts, the
// record's arguments no longer hold an identifier found at a subject path, and every subject it
// names has a commitment, a key and a ciphertext.
func FuzzSeal(f *testing.F) {
	for _, s := range []string{
		`{"client_id":"C-1001"}`,
		`{"client_id":12345,"symbol":"ACME","quantity":10}`,
		`{"client_id":"C-1","counterparty":{"client_id":"C-2"}}`,
		`{"client_id":"C-1","counterparty":{"client_id":"C-1"}}`,
		`{"client_id":["C-1"]}`,
		`{"counterparty":"C-2"}`,
		`[1,2]`,
		`{"client_id":""}`,
		`{"client_id":"\u003cscript\u003e","x":1e400}`,
		`{"transfers":[{"client_id":"C-1"},{"client_id":"C-2"},{}],"watch":["C-3",7,null,{"a":"C-4"}]}`,
		`{"transfers":{"client_id":"C-1"},"watch":"C-3"}`,
		`{"watch":[["C-1"]]}`,
	} {
		f.Add(s)
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(f.TempDir(), "audit.db"), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	subjects, err := gdpr.NewSubjects(st, secret, &gdpr.Options{Tools: tools})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, args string) {
		rec := &audit.Record{Kind: audit.KindToolCall, Tool: "execute_trade", Arguments: json.RawMessage(args)}
		if err := subjects.Seal(ctx, rec, func(b []byte) []byte { return b }); err != nil {
			t.Fatalf("Seal(%s): %v", args, err)
		}
		if len(rec.Subjects) == 0 {
			if args != string(rec.Arguments) {
				t.Fatalf("no subject found, but the arguments changed: %s → %s", args, rec.Arguments)
			}
			return
		}
		var out map[string]any
		d := json.NewDecoder(strings.NewReader(string(rec.Arguments)))
		d.UseNumber()
		if err := d.Decode(&out); err != nil {
			t.Fatalf("the sealed arguments do not decode: %s", rec.Arguments)
		}
		// Every subject path that held an identifier now holds a commitment. An empty string names
		// no one (CheckSubject refuses it), so it stays as it was.
		for _, v := range []any{out["client_id"], nested(out)} {
			if s, ok := v.(string); ok && s != "" && !strings.HasPrefix(s, gdpr.CommitmentPrefix) {
				t.Fatalf("a subject path still holds %q: %s → %s", s, args, rec.Arguments)
			}
			if n, ok := v.(json.Number); ok {
				t.Fatalf("a subject path still holds the number %v: %s → %s", n, args, rec.Arguments)
			}
		}
		for _, sl := range rec.Subjects {
			if len(sl.Commitment) != 64 || sl.KeyID == "" || sl.Ciphertext == "" {
				t.Fatalf("subject sealed incompletely: %+v", sl)
			}
		}
		if _, err := audit.Canonical(rec); err != nil {
			t.Fatalf("the sealed record does not encode: %v", err)
		}

		// Through arrays: every element's identifier is replaced, or the record refused whole.
		arr := &audit.Record{Kind: audit.KindToolCall, Tool: "transfer_batch", Arguments: json.RawMessage(args)}
		err := subjects.Seal(ctx, arr, func(b []byte) []byte { return b })
		if errors.Is(err, gdpr.ErrTooManySubjects) {
			return
		}
		if err != nil {
			t.Fatalf("Seal(%s) through arrays: %v", args, err)
		}
		if len(arr.Subjects) == 0 {
			return
		}
		out = nil
		d = json.NewDecoder(strings.NewReader(string(arr.Arguments)))
		d.UseNumber()
		if err := d.Decode(&out); err != nil {
			t.Fatalf("the sealed arguments do not decode: %s", arr.Arguments)
		}
		var at []any
		if ts, ok := out["transfers"].([]any); ok {
			for _, e := range ts {
				if m, ok := e.(map[string]any); ok {
					at = append(at, m["client_id"])
				}
			}
		}
		if ws, ok := out["watch"].([]any); ok {
			at = append(at, ws...)
		}
		for _, v := range at {
			if s, ok := v.(string); ok && s != "" && len(s) <= gdpr.MaxSubjectBytes && !strings.HasPrefix(s, gdpr.CommitmentPrefix) {
				t.Fatalf("an array subject path still holds %q: %s → %s", s, args, arr.Arguments)
			}
			if n, ok := v.(json.Number); ok {
				t.Fatalf("an array subject path still holds the number %v: %s → %s", n, args, arr.Arguments)
			}
		}
	})
}

func nested(m map[string]any) any {
	if c, ok := m["counterparty"].(map[string]any); ok {
		return c["client_id"]
	}
	return nil
}
