package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/store"
)

// segRecords returns records from..to-1 with every field set, subjects on every other one.
func segRecords(from, to int64) []store.Record {
	var out []store.Record
	for seq := from; seq < to; seq++ {
		r := store.Record{
			Seq: seq, Time: time.Unix(1700000000, seq).UTC(), Kind: "call", Principal: fmt.Sprintf("user%d", seq%3),
			Tool: "fin.trade", Decision: "allow", RequestID: fmt.Sprintf("req-%d", seq),
			Data: fmt.Appendf(nil, `{"seq":%d}`, seq), Hashes: bytes.Repeat([]byte{byte(seq)}, 32*(1+int(seq%2))),
		}
		if seq%2 == 0 {
			r.Subjects = []string{fmt.Sprintf("subject%d", seq%4)}
		}
		out = append(out, r)
	}
	return out
}

// openWriter opens the writer's store at path with its indexer stopped, so that what it
// appends stays in the segment until a read, catchUp or Close adds it.
func openWriter(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, &Options{Writer: true})
	if err != nil {
		t.Fatal(err)
	}
	close(s.stop)
	<-s.indexed
	s.stop, s.indexed = make(chan struct{}), make(chan struct{})
	close(s.indexed) // Close waits for it
	return s
}

// crash ends s as a killed process would: the database receives nothing more, and the lock on
// the segment goes with its descriptor.
func crash(t *testing.T, s *Store) {
	t.Helper()
	s.seg.f.Close()
	s.seg = nil
	s.wmu.Lock()
	s.dropWriter()
	s.wmu.Unlock()
	s.db.Close()
}

func appendSynced(t *testing.T, s *Store, recs []store.Record) {
	t.Helper()
	ctx := context.Background()
	if err := s.AppendNoSync(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

func tableSize(t *testing.T, path string) int64 {
	t.Helper()
	ro, err := Open(context.Background(), path, &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	n, err := ro.sizeOfTable(context.Background()) // the database alone, not the segment
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkRecords checks that s holds want exactly, searchable by subject.
func checkRecords(t *testing.T, s *Store, want []store.Record) {
	t.Helper()
	ctx := context.Background()
	if n, err := s.Size(ctx); err != nil || n != int64(len(want)) {
		t.Fatalf("Size = %d, %v; want %d", n, err, len(want))
	}
	for _, w := range want {
		got, err := s.Get(ctx, w.Seq)
		if err != nil {
			t.Fatal(err)
		}
		w.Subjects = nil
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Fatalf("record %d = %+v, want %+v", w.Seq, got, w)
		}
	}
	var found []int64
	if err := s.Search(ctx, store.Query{AfterSeq: -1, Subject: "subject0"}, func(r *store.Record) error {
		found = append(found, r.Seq)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var expect []int64
	for _, w := range want {
		if len(w.Subjects) > 0 && w.Subjects[0] == "subject0" {
			expect = append(expect, w.Seq)
		}
	}
	if fmt.Sprint(found) != fmt.Sprint(expect) {
		t.Fatalf("records of subject0 = %v, want %v", found, expect)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestSegmentRecoversAfterCrash: records acknowledged (written and synced) but not yet in the
// database when the process dies are in it after the next open, before anything reads it.
func TestSegmentRecoversAfterCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	s := openWriter(t, path)
	want := segRecords(0, 10)
	appendSynced(t, s, want[:4])
	appendSynced(t, s, want[4:])
	crash(t, s)
	if n := tableSize(t, path); n != 0 {
		t.Fatalf("the database held %d records before recovery; the test needs them only in the segment", n)
	}
	s = openWriter(t, path)
	defer s.Close()
	if got := fileSize(t, path+SegmentSuffix); got != 0 {
		t.Errorf("segment after recovery: %d bytes, want 0 (emptied once the database holds them)", got)
	}
	if n := tableSize(t, path); n != 10 {
		t.Errorf("the database holds %d records after the open, want 10", n)
	}
	checkRecords(t, s, want)
	// The log continues where the segment ended.
	appendSynced(t, s, segRecords(10, 11))
	checkRecords(t, s, segRecords(0, 11))
}

// TestSegmentDropsATornTail: a write the crash cut short was never synced, so never
// acknowledged; the records before it are kept and the log continues.
func TestSegmentDropsATornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	s := openWriter(t, path)
	want := segRecords(0, 5)
	appendSynced(t, s, want)
	crash(t, s)
	frame := appendFrame(nil, &segRecords(5, 6)[0])
	f, err := os.OpenFile(path+SegmentSuffix, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(frame[:len(frame)-3])
	f.Close()
	s = openWriter(t, path)
	defer s.Close()
	checkRecords(t, s, want)
	appendSynced(t, s, segRecords(5, 6))
	checkRecords(t, s, segRecords(0, 6))
}

// TestSegmentRefusesDamage: a whole frame that does not hold what this store writes, or a
// segment that does not continue the database, stops the open with an error naming the file.
func TestSegmentRefusesDamage(t *testing.T) {
	for name, contents := range map[string]func() []byte{
		"bad payload": func() []byte {
			b := appendFrame(nil, &segRecords(0, 1)[0])
			b[8] = 9 // the version byte
			putFrameHeader(b, b[8:])
			return b
		},
		"gap": func() []byte { return appendFrame(nil, &segRecords(3, 4)[0]) },
		"out of order": func() []byte {
			recs := segRecords(0, 3)
			return appendFrame(appendFrame(nil, &recs[0]), &recs[2])
		},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.db")
			s := openWriter(t, path)
			crash(t, s)
			b := contents()
			if err := os.WriteFile(path+SegmentSuffix, b, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(context.Background(), path, &Options{Writer: true})
			if err == nil || !strings.Contains(err.Error(), path+SegmentSuffix) {
				t.Fatalf("Open = %v, want an error naming the segment", err)
			}
			if got := fileSize(t, path+SegmentSuffix); got != int64(len(b)) {
				t.Errorf("segment after the refused open: %d bytes, want %d (left as it was)", got, len(b))
			}
		})
	}
}

// TestSegmentOneWriter: a second writer is refused while the first holds the segment; another
// writable open (a command) leaves the live segment alone.
func TestSegmentOneWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	s := openWriter(t, path)
	defer s.Close()
	appendSynced(t, s, segRecords(0, 3))
	if _, err := Open(context.Background(), path, &Options{Writer: true}); err == nil || !strings.Contains(err.Error(), "another mcpguard process") {
		t.Fatalf("second writer: Open = %v, want it refused", err)
	}
	other, err := Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	other.Close()
	if got := fileSize(t, path+SegmentSuffix); got == 0 {
		t.Error("a command's open emptied the live writer's segment")
	}
	checkRecords(t, s, segRecords(0, 3))
}

// TestSegmentAddedByACommand: a writable open that is not the writer adds a crashed writer's
// records and removes its segment.
func TestSegmentAddedByACommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	s := openWriter(t, path)
	appendSynced(t, s, segRecords(0, 6))
	crash(t, s)
	c, err := Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := os.Stat(path + SegmentSuffix); !os.IsNotExist(err) {
		t.Errorf("segment after the command's open: %v, want it removed", err)
	}
	checkRecords(t, c, segRecords(0, 6))
}

// TestSegmentEmptied: past its limit the segment is emptied once the database holds its records
// durably, and the next frames are written over the first ones; the records stay, through a
// crash too, and the earlier frames after the new ones are not taken for records.
func TestSegmentEmptied(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	s := openWriter(t, path)
	want := segRecords(0, 30)
	for i := 0; i < 30; i += 10 {
		appendSynced(t, s, want[i:i+10])
	}
	grown := fileSize(t, path+SegmentSuffix)
	if err := s.emptySegment(context.Background()); err != nil {
		t.Fatal(err)
	}
	appendSynced(t, s, segRecords(30, 31))
	if got := fileSize(t, path+SegmentSuffix); got != grown {
		t.Errorf("segment after emptySegment and a write: %d bytes, want %d (written over, not grown)", got, grown)
	}
	data, err := os.ReadFile(path + SegmentSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if recs, _, err := decodeSegment(data); err != nil || len(recs) != 1 || recs[0].Seq != 30 {
		t.Fatalf("segment after emptySegment and a write decodes to %+v, %v; want record 30 alone", recs, err)
	}
	crash(t, s)
	s = openWriter(t, path)
	defer s.Close()
	checkRecords(t, s, segRecords(0, 31))
}

// TestSegmentRewoundCrash: a crash right after the segment was emptied, before a new frame, or
// after new frames that end exactly where an earlier frame begins, loses and invents nothing.
func TestSegmentRewoundCrash(t *testing.T) {
	for name, next := range map[string]int{"no new frame": 0, "aligned": 2} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.db")
			s := openWriter(t, path)
			appendSynced(t, s, segRecords(0, 6))
			if err := s.emptySegment(context.Background()); err != nil {
				t.Fatal(err)
			}
			want := segRecords(0, 6+int64(next))
			if next > 0 {
				appendSynced(t, s, want[6:])
				data, err := os.ReadFile(path + SegmentSuffix)
				if err != nil {
					t.Fatal(err)
				}
				end := len(appendFrame(appendFrame(nil, &want[6]), &want[7]))
				if old := appendFrame(appendFrame(nil, &want[0]), &want[1]); len(old) != end {
					t.Fatalf("the test needs the new frames as long as the first two old ones: %d and %d bytes", end, len(old))
				}
				if got := appendFrame(nil, &want[2]); string(data[end:end+len(got)]) != string(got) {
					t.Fatal("the test needs record 2's frame right after the new frames")
				}
			}
			crash(t, s)
			s = openWriter(t, path)
			defer s.Close()
			checkRecords(t, s, want)
		})
	}
}

// TestSegmentGrows: the file grows with zeros ahead of the frames, by its own length, so that
// most writes land on blocks it has; a failed write leaves it ending where the frames do.
func TestSegmentGrows(t *testing.T) {
	g, err := openSegment(filepath.Join(t.TempDir(), "audit.db"+SegmentSuffix), true)
	if err != nil {
		t.Fatal(err)
	}
	defer g.f.Close()
	if err := g.write(segRecords(0, 1)); err != nil {
		t.Fatal(err)
	}
	if g.alloc != minGrow {
		t.Fatalf("after the first write the file is %d bytes, want %d", g.alloc, minGrow)
	}
	next := int64(1)
	for ; g.alloc == minGrow; next++ {
		if err := g.write(segRecords(next, next+1)); err != nil {
			t.Fatal(err)
		}
	}
	if g.alloc != 2*minGrow {
		t.Errorf("grown to %d bytes, want %d (by its own length)", g.alloc, 2*minGrow)
	}
	data, err := g.read()
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != g.alloc || !zero(data[g.size:]) {
		t.Errorf("file of %d bytes, want %d with zeros after the %d bytes of frames", len(data), g.alloc, g.size)
	}
	if _, whole, err := decodeSegment(data); err != nil || int64(whole) != g.size {
		t.Errorf("decodeSegment = %d bytes whole, %v; want %d", whole, err, g.size)
	}
	g.f.Close()
	size := g.size
	if err := g.write(segRecords(next, next+1)); err == nil {
		t.Fatal("a write to a closed file succeeded")
	}
	if g.size != size {
		t.Errorf("a failed write moved the next write's offset from %d to %d", size, g.size)
	}
}

// TestSegmentIndexFailureRefusesAppends: when the database stops taking the records (here a
// row that conflicts with the next one), appends fail closed instead of piling up.
func TestSegmentIndexFailureRefusesAppends(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	s := openWriter(t, path)
	defer s.Close()
	appendSynced(t, s, segRecords(0, 2))
	if _, err := s.db.ExecContext(ctx, "INSERT INTO audit_records ("+columns+") VALUES (1, 0, 'call', '', '', '', '', x'00', x'00')"); err != nil {
		t.Fatal(err)
	}
	if err := s.catchUp(ctx); err == nil {
		t.Fatal("catchUp succeeded over a conflicting row")
	}
	err := s.AppendNoSync(ctx, segRecords(2, 3))
	if err == nil || !strings.Contains(err.Error(), "does not take the records") {
		t.Fatalf("AppendNoSync after the database refused records = %v, want it refused", err)
	}
}

// TestSegmentCloseEmpties: Close adds every record to the database and removes the segment.
func TestSegmentCloseEmpties(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	s := openWriter(t, path)
	appendSynced(t, s, segRecords(0, 7))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + SegmentSuffix); !os.IsNotExist(err) {
		t.Errorf("segment after Close: %v, want it removed", err)
	}
	if n := tableSize(t, path); n != 7 {
		t.Errorf("the database holds %d records after Close, want 7", n)
	}
}

// TestSegmentIndexer: without reads, the indexer adds appended records to the database on its
// own, where another process sees them.
func TestSegmentIndexer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	s, err := Open(context.Background(), path, &Options{Writer: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	appendSynced(t, s, segRecords(0, 4))
	for tableSize(t, path) != 4 {
		s.pmu.Lock()
		n := len(s.pending)
		s.pmu.Unlock()
		if n == 0 && tableSize(t, path) != 4 {
			t.Fatal("nothing pending, yet the database lacks the records")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestDecodeSegmentRoundTrip(t *testing.T) {
	want := segRecords(5, 9)
	want[1].Subjects = []string{"a", "", "c"}
	want[2].Data = []byte{}
	var b []byte
	for i := range want {
		b = appendFrame(b, &want[i])
	}
	got, whole, err := decodeSegment(b)
	if err != nil || whole != len(b) {
		t.Fatalf("decodeSegment = %d bytes whole, %v; want %d, nil", whole, err, len(b))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("decoded %+v\nwant    %+v", got, want)
	}
}

// FuzzDecodeSegment: any file decodes without panicking, and what decodes encodes back to the
// same frames.
func FuzzDecodeSegment(f *testing.F) {
	recs := segRecords(0, 3)
	var b []byte
	for i := range recs {
		b = appendFrame(b, &recs[i])
	}
	f.Add(b)
	f.Add(b[:len(b)-1])
	f.Add([]byte{})
	f.Add(make([]byte, 16))
	f.Add(append(slices.Clone(b), make([]byte, 64)...))                    // grown with zeros
	f.Add(append(appendFrame(nil, &segRecords(7, 8)[0]), b...))            // an earlier pass after
	f.Add(append(appendFrame(nil, &segRecords(7, 8)[0]), b[len(b)/2:]...)) // misaligned
	f.Fuzz(func(t *testing.T, data []byte) {
		got, whole, err := decodeSegment(data)
		if whole > len(data) {
			t.Fatalf("whole %d > %d", whole, len(data))
		}
		if err != nil {
			return
		}
		var again []byte
		for i := range got {
			again = appendFrame(again, &got[i])
		}
		back, _, err := decodeSegment(again)
		if err != nil || fmt.Sprint(back) != fmt.Sprint(got) {
			t.Fatalf("re-encoded records decode to %+v, %v; want %+v", back, err, got)
		}
	})
}

// TestSegmentIndexerKeepsUp: records appended while the indexer adds earlier ones reach the
// database without a read to pull them in. The database is held locked by another connection
// so that the indexer's transaction waits while more records arrive.
func TestSegmentIndexerKeepsUp(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	s, err := Open(ctx, path, &Options{Writer: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	appendSynced(t, s, segRecords(0, 2))
	for s.wmu.TryLock() { // until the indexer is inside its transaction
		s.wmu.Unlock()
		time.Sleep(time.Millisecond)
	}
	appendSynced(t, s, segRecords(2, 3))
	if _, err := other.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	for tableSize(t, path) != 3 {
		time.Sleep(time.Millisecond)
	}
}

// TestReadOnlySeesTheSegment: a read-only open (verify, search, export) sees the records the
// writer has acknowledged and not yet added to the database, once each, before and after the
// writer adds them.
func TestReadOnlySeesTheSegment(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	s := openWriter(t, path)
	defer s.Close()
	want := segRecords(0, 9)
	appendSynced(t, s, want[:3])
	if err := s.catchUp(ctx); err != nil {
		t.Fatal(err)
	}
	appendSynced(t, s, want[3:])
	ro, err := Open(ctx, path, &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	for _, added := range []bool{false, true} {
		if added { // the writer catches up after the reader opened
			if err := s.catchUp(ctx); err != nil {
				t.Fatal(err)
			}
		}
		checkRecords(t, ro, want)
		var seqs []int64
		if err := ro.Scan(ctx, 2, func(r *store.Record) error { seqs = append(seqs, r.Seq); return nil }); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(seqs) != "[2 3 4 5 6 7 8]" {
			t.Errorf("Scan from 2 (added %v) = %v", added, seqs)
		}
		var limited []int64
		if err := ro.Search(ctx, store.Query{AfterSeq: -1, Principal: "user1", Limit: 2}, func(r *store.Record) error { limited = append(limited, r.Seq); return nil }); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(limited) != "[1 4]" {
			t.Errorf("Search user1 limit 2 (added %v) = %v", added, limited)
		}
		var index []string
		if err := ro.SubjectIndex(ctx, func(seq int64, key string) error { index = append(index, fmt.Sprintf("%d %s", seq, key)); return nil }); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(index) != "[0 subject0 2 subject2 4 subject0 6 subject2 8 subject0]" {
			t.Errorf("SubjectIndex (added %v) = %v", added, index)
		}
		h, err := ro.TreeHashes(ctx, []int64{1, 7})
		if err != nil || !bytes.Equal(h[1], want[7].Hashes) {
			t.Errorf("TreeHashes (added %v) = %v, %v", added, h, err)
		}
	}
}

// TestSegmentCatchUpOutlivesItsReader: a read whose caller has given up still adds the pending
// records, so the next append is not refused for a reader's cancellation.
func TestSegmentCatchUpOutlivesItsReader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	s := openWriter(t, path)
	defer s.Close()
	appendSynced(t, s, segRecords(0, 3))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _ = s.Size(ctx) // the count itself fails with the caller's context
	if p := s.indexErr.Load(); p != nil {
		t.Fatalf("a cancelled reader failed the indexing: %v", *p)
	}
	if n := tableSize(t, path); n != 3 {
		t.Errorf("the database holds %d records after the read, want 3", n)
	}
	if err := s.AppendNoSync(context.Background(), segRecords(3, 4)); err != nil {
		t.Errorf("append after a cancelled read: %v", err)
	}
}
