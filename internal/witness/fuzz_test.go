package witness

import (
	"bytes"
	"testing"
)

// FuzzParseAddRequest: the add-checkpoint parser never panics, bounds the proof, and accepts
// exactly the bodies formatAddRequest writes: what it accepts formats back to the same bytes,
// so no two readings of one body exist.
func FuzzParseAddRequest(f *testing.F) {
	f.Add([]byte("old 0\n\nmcpguard.audit/log\n10\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— ops-log Ab==\n"))
	f.Add([]byte("old 4\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\njrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"))
	f.Add([]byte("old 01\n\nx"))
	f.Add([]byte("old -1\n\nx"))
	f.Add([]byte("old 1\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw\n\nx"))
	f.Add([]byte("old 1\r\n\nx"))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseAddRequest(body)
		if err != nil {
			return
		}
		if len(req.proof) > MaxProofLines {
			t.Fatalf("accepted a proof of %d lines", len(req.proof))
		}
		if req.old < 0 || len(req.checkpoint) == 0 {
			t.Fatalf("accepted old %d and a checkpoint of %d bytes", req.old, len(req.checkpoint))
		}
		if again := formatAddRequest(req.old, req.proof, req.checkpoint); !bytes.Equal(again, body) {
			t.Fatalf("parsed %q but it formats as %q", body, again)
		}
	})
}
