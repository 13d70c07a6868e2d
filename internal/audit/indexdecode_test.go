package audit

import (
	"encoding/json"
	"slices"
	"testing"
)

// FuzzIndexDecode feeds the verifier's reader of a stored record's indexed fields and subjects
// whatever bytes a database could hold: it never panics, and what it accepts as a JSON object
// yields the commitments json.Unmarshal reads from its "subjects".
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
			return // json.Unmarshal is stricter about what else the record holds
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
