package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpguard/mcpguard/internal/store"
)

// runCompliance checks store.Compliance: the subject index, the subject keys, legal holds and
// pruning. Every backend must implement it.
func runCompliance(t *testing.T, open Open) {
	ctx := context.Background()
	compliant := func(t *testing.T) (store.Store, store.Compliance) {
		s := open(t)
		c, ok := s.(store.Compliance)
		if !ok {
			s.Close()
			t.Fatalf("%T does not implement store.Compliance", s)
		}
		return s, c
	}
	t.Run("subject index", func(t *testing.T) {
		s, _ := compliant(t)
		defer s.Close()
		recs := records(0, 300)
		for i := range recs {
			switch {
			case i%10 == 3:
				recs[i].Subjects = []string{"c-alpha"}
			case i%50 == 7:
				recs[i].Subjects = []string{"c-alpha", "c-beta"}
			}
		}
		if err := s.Append(ctx, recs[:150]); err != nil {
			t.Fatal(err)
		}
		if err := s.Append(ctx, recs[150:]); err != nil {
			t.Fatal(err)
		}
		var want, got []int64
		for _, r := range recs {
			if slices.Contains(r.Subjects, "c-alpha") {
				want = append(want, r.Seq)
			}
		}
		err := s.Search(ctx, store.Query{Subject: "c-alpha", AfterSeq: -1}, func(r *store.Record) error {
			got = append(got, r.Seq)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Search(subject c-alpha) (-want +got):\n%s", diff)
		}
		got = nil
		err = s.Search(ctx, store.Query{Subject: "c-beta", Principal: "bob", AfterSeq: -1}, func(r *store.Record) error {
			got = append(got, r.Seq)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int64{7, 157}, got); diff != "" {
			t.Errorf("Search(subject c-beta, principal bob) (-want +got):\n%s", diff)
		}
		err = s.Search(ctx, store.Query{Subject: "c-nobody", AfterSeq: -1}, func(r *store.Record) error {
			t.Errorf("record %d found for a subject no record names", r.Seq)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("subject keys", func(t *testing.T) {
		s, c := compliant(t)
		defer s.Close()
		k1 := store.SubjectKey{Commitment: "c1", KeyID: "k1", Wrapped: []byte("wrapped-1"), Created: t0}
		got, err := c.PutSubjectKey(ctx, k1)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(k1, got); diff != "" {
			t.Errorf("PutSubjectKey (-want +got):\n%s", diff)
		}
		// A second key for the same subject loses: the first one is returned.
		got, err = c.PutSubjectKey(ctx, store.SubjectKey{Commitment: "c1", KeyID: "k1b", Wrapped: []byte("other"), Created: t0.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if got.KeyID != "k1" {
			t.Errorf("PutSubjectKey over an existing key returned key %q, want the existing k1", got.KeyID)
		}
		for _, k := range []store.SubjectKey{{Commitment: "c2", KeyID: "k2", Wrapped: []byte("w2"), Created: t0}, {Commitment: "c3", KeyID: "k3", Wrapped: []byte("w3"), Created: t0}} {
			if _, err := c.PutSubjectKey(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		gone, err := c.DeleteSubjectKeys(ctx, []string{"c1"}, []string{"k3", "k-unknown"})
		if err != nil {
			t.Fatal(err)
		}
		ids := []string{}
		for _, k := range gone {
			ids = append(ids, k.KeyID)
		}
		slices.Sort(ids)
		if diff := cmp.Diff([]string{"k1", "k3"}, ids); diff != "" {
			t.Errorf("DeleteSubjectKeys deleted (-want +got):\n%s", diff)
		}
		for _, cm := range []string{"c1", "c3"} {
			if _, err := c.SubjectKey(ctx, cm); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("SubjectKey(%s) after deletion: %v, want ErrNotFound", cm, err)
			}
		}
		if k, err := c.SubjectKey(ctx, "c2"); err != nil || string(k.Wrapped) != "w2" {
			t.Errorf("SubjectKey(c2) = %+v, %v; want the untouched key", k, err)
		}
	})
	t.Run("legal holds", func(t *testing.T) {
		s, c := compliant(t)
		defer s.Close()
		h1 := store.Hold{ID: "h1", Kind: "principal", Value: "alice", Reason: "case 1", Actor: "op", Created: t0}
		h2 := store.Hold{ID: "h2", Kind: "range", From: t0.Add(-time.Hour), Until: t0.Add(time.Hour), Reason: "case 2", Actor: "op", Created: t0.Add(time.Second)}
		for _, h := range []store.Hold{h1, h2} {
			if err := c.AddHold(ctx, h); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.AddHold(ctx, h1); err == nil {
			t.Error("a second hold with the same id was stored")
		}
		if err := c.ReleaseHold(ctx, "h1", t0.Add(time.Minute), "op2"); err != nil {
			t.Fatal(err)
		}
		if err := c.ReleaseHold(ctx, "h1", t0.Add(time.Minute), "op2"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("releasing a released hold: %v, want ErrNotFound", err)
		}
		if err := c.ReleaseHold(ctx, "h-unknown", t0, "op2"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("releasing an unknown hold: %v, want ErrNotFound", err)
		}
		got, err := c.Holds(ctx)
		if err != nil {
			t.Fatal(err)
		}
		h1.Released, h1.ReleasedBy = t0.Add(time.Minute), "op2"
		if diff := cmp.Diff([]store.Hold{h1, h2}, got); diff != "" {
			t.Errorf("Holds (-want +got):\n%s", diff)
		}
	})
	t.Run("prune", func(t *testing.T) {
		s, c := compliant(t)
		defer s.Close()
		recs := records(0, 20)
		recs[4].Subjects = []string{"c-x"}
		recs[9].Subjects = []string{"c-x"}
		if err := s.Append(ctx, recs); err != nil {
			t.Fatal(err)
		}
		if err := c.Prune(ctx, []store.Pruned{{Seq: 4, Data: []byte(`{"pruned":4}`)}, {Seq: 5, Data: []byte(`{"pruned":5}`)}}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, 4)
		if err != nil {
			t.Fatal(err)
		}
		want := record(4)
		want.Data = []byte(`{"pruned":4}`)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("pruned record 4: only its data may change (-want +got):\n%s", diff)
		}
		var found []int64
		if err := s.Search(ctx, store.Query{Subject: "c-x", AfterSeq: -1}, func(r *store.Record) error {
			found = append(found, r.Seq)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int64{9}, found); diff != "" {
			t.Errorf("a pruned record is still found by its subject (-want +got):\n%s", diff)
		}
		// A batch naming a record that does not exist changes nothing.
		if err := c.Prune(ctx, []store.Pruned{{Seq: 6, Data: []byte(`{}`)}, {Seq: 99, Data: []byte(`{}`)}}); err == nil {
			t.Error("pruning a record that does not exist succeeded")
		}
		if got, _ := s.Get(ctx, 6); string(got.Data) != string(record(6).Data) {
			t.Errorf("record 6 was changed by a failed prune: %s", got.Data)
		}
	})
}
