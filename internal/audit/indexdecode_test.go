package audit

import (
	"slices"
	"testing"

	"github.com/go-json-experiment/json"
)

// FuzzIndexDecode feeds the verifier's reader of a stored record's indexed fields and subjects
// whatever bytes a database could hold: it never panics, and what it accepts as a JSON object
// yields the commitments a JSON decoder reads from its "subjects". The reference matches names
// exactly, as the decoder does (a canonical record spells them one way; encoding/json would
// also take "suBjeCts" and "C").
func FuzzIndexDecode(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"seq":3,"time":"2026-12-06T10:00:00.000000000Z","kind":"call","subjects":[{"c":"ab","k":"k1","ct":"x"},{"c":"cd"}]}`,
		`{"v":1,"seq":0,"kind":"erasure","subjects":[{"c":"ab"}]}`,
		`{"subjects":[]}`,
		`{"subjects":[{"c":1}]}`,
		`{"subjects":{"c":"ab"}}`,
		`{"subjects":[{"k":"only"}]}`,
		`{"pruned":true,"seq":4}`,
		`[]`,
		`{"subjects":[{"c":"a"},`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var d indexDecoder
		var idx indexed
		if err := d.decode(data, &idx); err != nil {
			return
		}
		var want struct {
			Subjects []struct {
				C *string `json:"c"`
			} `json:"subjects"`
		}
		if json.Unmarshal(data, &want) != nil {
			return // the reference is stricter about what else the record holds (duplicate names)
		}
		var cs []string
		for _, s := range want.Subjects {
			if s.C != nil {
				cs = append(cs, *s.C)
			}
		}
		if !slices.Equal(cs, idx.Subjects) {
			t.Fatalf("decode(%q) read subjects %q, json.Unmarshal %q", data, idx.Subjects, cs)
		}
	})
}
