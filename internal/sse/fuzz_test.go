package sse

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

// FuzzReader checks that any input is read within the bound, that how the input is split
// into reads never changes the events, and that every event read survives a trip through
// the Writer. The seed corpus is in testdata/fuzz/FuzzReader.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"data: hello\n\n",
		"event: endpoint\r\ndata: /messages?sessionid=1\r\n\r\n",
		"\xef\xbb\xbfid: 1\rretry: 500\rdata:\r\r",
		": ping\n\nid: a\x00b\ndata: x\ndata: y\n\ndata",
	} {
		f.Add([]byte(s))
	}
	const max = 256
	f.Fuzz(func(t *testing.T, in []byte) {
		whole, errWhole := readAll(NewReader(bytes.NewReader(in), max))
		split, errSplit := readAll(NewReader(iotest.OneByteReader(bytes.NewReader(in)), max))
		if diff := cmp.Diff(whole, split); diff != "" {
			t.Fatalf("events depend on how the input is split (-whole +bytewise):\n%s", diff)
		}
		if !errors.Is(errWhole, ErrEventTooLarge) && errWhole != nil ||
			errors.Is(errWhole, ErrEventTooLarge) != errors.Is(errSplit, ErrEventTooLarge) {
			t.Fatalf("errors: whole %v, bytewise %v", errWhole, errSplit)
		}
		for _, ev := range whole {
			if len(ev.Data) > max {
				t.Fatalf("event of %d bytes exceeds the bound of %d", len(ev.Data), max)
			}
			var buf bytes.Buffer
			if err := NewWriter(&buf).WriteEvent(ev); err != nil {
				t.Fatalf("WriteEvent(%+v): %v", ev, err)
			}
			wire := bytes.Clone(buf.Bytes())
			back, err := NewReader(&buf, max).Next()
			if err != nil && !(errors.Is(err, io.EOF) && len(ev.Data) == 0 && ev.ID == "" && ev.Type == "") {
				t.Fatalf("reading back %q: %v", wire, err)
			}
			if err == nil {
				if diff := cmp.Diff(ev, back); diff != "" {
					t.Fatalf("round trip through %q (-read +back):\n%s", wire, diff)
				}
			}
		}
	})
}
