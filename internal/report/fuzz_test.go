package report

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/mcpguard/mcpguard/internal/audit"
)

// fuzzKey is a fixed key, so that the seeds stay valid reports across runs.
const fuzzKey = "PRIVATE+KEY+fuzz-log+c03483f1+Aa7ofvL4UN+JBDz+9AbDT6LeezEG1d7hHK+s8/Zc/SoO"

func fuzzSeeds(t testing.TB) (*Key, note.Verifier, [][]byte) {
	k, err := ParseKey(fuzzKey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(k.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	r := &Report{Version: SchemaVersion, Origin: audit.DefaultOrigin, From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		To: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), LogKey: k.Signer.Name(), OrderTools: DefaultOrderTools, MaxRows: 10}
	r.Verification.Records = 42
	r.Controls = controls(r)
	page, err := HTML(r, k)
	if err != nil {
		t.Fatal(err)
	}
	js, err := JSON(r, k)
	if err != nil {
		t.Fatal(err)
	}
	return k, v, [][]byte{page, js}
}

// FuzzVerifyFile: whatever the file, VerifyFile does not panic, and it accepts a file only when
// its signed content is the content that was signed: a change anywhere in what the digest
// covers is refused.
func FuzzVerifyFile(f *testing.F) {
	_, v, seeds := fuzzSeeds(f)
	signed := map[string]bool{}
	for _, s := range seeds {
		got, err := VerifyFile(s, nil, v)
		if err != nil {
			f.Fatalf("seed refused: %v", err)
		}
		signed[got.Digest] = true
		f.Add(s)
	}
	f.Add([]byte(`{"report":{},"signature":"mcpguard compliance report\n\n— x AAAA\n"}` + "\n"))
	f.Add([]byte("%PDF-1.7"))
	f.Add([]byte(`<pre id="report-signature">` + htmlSigClose))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := VerifyFile(data, nil, v)
		if err != nil {
			return
		}
		if !signed[got.Digest] {
			t.Fatalf("accepted a report whose signed content was never signed: %+v", got)
		}
		if got.Digest != digest(signedPart(t, data)) {
			t.Fatalf("accepted a report whose content does not match its digest")
		}
	})
}

// signedPart returns what the digest of an accepted file covers.
func signedPart(t *testing.T, data []byte) []byte {
	switch SniffFormat(data) {
	case FormatJSON:
		var p struct {
			Report json.RawMessage `json:"report"`
		}
		if err := json.Unmarshal(data, &p); err != nil {
			t.Fatal(err)
		}
		return p.Report
	default:
		s := string(data)
		return []byte(s[:strings.LastIndex(s, htmlSigOpen)])
	}
}

// FuzzSubjectEvent: the Detail of the GDPR record kinds, written by other parts, is read
// without panicking and summed up within bounds, whatever its shape.
func FuzzSubjectEvent(f *testing.F) {
	for _, s := range []string{
		`{"action":"export","subject":"s1","requested_at":"2026-01-01T00:00:00Z","records":3}`,
		`{"subject":{"nested":[1,2]},"duration_ms":"x","status":17}`,
		`[1,2,3]`, `"text"`, `null`, `{"a":` + strings.Repeat(`"x`, 300) + `"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		rec := &audit.Record{Time: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Kind: audit.KindSubject, Detail: raw}
		ev := subjectEvent(Ref{}, rec)
		for _, s := range []string{ev.Action, ev.Subject, ev.Outcome, ev.Summary} {
			if len(s) > maxSummaryBytes+len("…") {
				t.Fatalf("a field of %d bytes exceeds the bound", len(s))
			}
		}
	})
}
