package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/mcpguard/mcpguard/internal/store"
)

// The record segment (Options.Writer) is an append-only file beside the database, named
// SegmentSuffix after it. A batch of records is durable once its frames are written there and
// the file is synced: one write and one fdatasync, where a SQLite commit costs several times
// that in CPU. The database receives the same records a little later, in large transactions
// (IndexDelay), and every read of the store first adds what is still pending, so readers see a
// record as soon as AppendNoSync returns, as store.Pipeliner requires. Once the database holds
// every record of the segment and its log is synced, the segment is emptied (segmentLimit).
// At open, the records of a segment that the database lacks (a crash before they were added)
// are added before anything else reads the store.
//
// The file is grown ahead of the frames, with zeros, and emptying it starts the next frames at
// its beginning again instead of truncating it: a write then lands on blocks the file already
// has, and its fdatasync has only data to flush, not the file's size and extents (a quarter
// less CPU and a third less time per sync on ext4). So the frames of the current pass are
// followed by zeros, or by frames of an earlier pass, which the database holds already and
// whose sequence numbers are below the current pass's: reading stops at either.
//
// A frame is a record: its payload's length and CRC-32C (little endian, 4 bytes each), then the
// payload: a version byte, the sequence number and the time in nanoseconds (varints), then
// kind, principal, tool, decision, request id, data, hashes and each subject as uvarint-length-
// prefixed bytes, the subjects preceded by their count.
const SegmentSuffix = "-seg"

const (
	segmentVersion = 1
	// IndexDelay is how long records wait in the segment before the database receives them:
	// long enough that a transaction holds many of them, short enough that other processes
	// reading the database see them soon.
	IndexDelay = 50 * time.Millisecond
	// maxPending bounds the records waiting for the database: past it, AppendNoSync adds them
	// itself before it returns, which slows the log to the database's pace.
	maxPending = 8192
	// segmentLimit is the size past which the segment is emptied once the database holds it.
	segmentLimit = 16 << 20
	// indexTimeout bounds one addition of pending records to the database.
	indexTimeout = 30 * time.Second
	// The file grows by its own size, between minGrow and maxGrow at a time, ahead of the
	// frames: a small log keeps a small file, a busy one grows it a few times up to about
	// segmentLimit and then writes over it.
	minGrow = 64 << 10
	maxGrow = 1 << 20
)

// zeros is what the file grows with.
var zeros [minGrow]byte

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errSegmentLocked: another process holds the segment, so it writes the log.
var errSegmentLocked = errors.New("locked by another process")

// segment is the open record segment. Its writes are serialised by Store.gmu.
type segment struct {
	f     *os.File
	path  string
	size  int64  // the bytes of this pass's frames: the next write's offset
	alloc int64  // the file's length: beyond size, zeros or an earlier pass's frames
	buf   []byte // frames being written, reused
}

// openSegment opens the segment at path, creating it when create is set, and takes an
// exclusive lock on it that lasts until it is closed; a missing file without create is
// (nil, nil).
func openSegment(path string, create bool) (*segment, error) {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if errors.Is(err, os.ErrNotExist) && !create {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errSegmentLocked
		}
		return nil, err
	}
	return &segment{f: f, path: path}, nil
}

// read returns the file's contents.
func (g *segment) read() ([]byte, error) {
	if _, err := g.f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(g.f)
}

// write appends the frames of recs. A failed write leaves the file as it was, as far as it can:
// the next write starts where this one did, and the file ends there, so that no whole frame of
// the failed write can follow the next one's.
func (g *segment) write(recs []store.Record) error {
	g.buf = g.buf[:0]
	for i := range recs {
		g.buf = appendFrame(g.buf, &recs[i])
	}
	end := g.size + int64(len(g.buf))
	err := g.grow(end)
	if err == nil {
		_, err = g.f.WriteAt(g.buf, g.size)
	}
	if len(g.buf) > 64<<10 {
		g.buf = nil // keep no large buffer for the writes of a quiet log
	}
	if err != nil {
		if g.f.Truncate(g.size) == nil {
			g.alloc = g.size
		}
		return err
	}
	g.size = end
	return nil
}

// grow extends the file with zeros to at least end, by at least its own length (minGrow to
// maxGrow). The next sync makes the new length durable, once.
func (g *segment) grow(end int64) error {
	if end <= g.alloc {
		return nil
	}
	n := max(end, g.alloc+min(max(g.alloc, minGrow), maxGrow))
	for off := g.alloc; off < n; {
		k := min(n-off, int64(len(zeros)))
		if _, err := g.f.WriteAt(zeros[:k], off); err != nil {
			return err
		}
		off += k
		g.alloc = off
	}
	return nil
}

// sync makes every write that returned before it durable: fdatasync flushes the data and the
// file's size, not its times.
func (g *segment) sync() error {
	return ignoringEINTR(func() error { return syscall.Fdatasync(int(g.f.Fd())) })
}

func ignoringEINTR(fn func() error) error {
	for {
		err := fn()
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// empty truncates the segment and syncs the truncation, so that no earlier frame can reappear
// after a crash ahead of the frames written next.
func (g *segment) empty() error {
	if err := g.f.Truncate(0); err != nil {
		return err
	}
	g.size, g.alloc = 0, 0
	return g.sync()
}

// rewind starts the next frames at the beginning of the file, over frames the database holds
// durably; their sequence numbers are below every frame written from now on, so reading stops
// at the first of them.
func (g *segment) rewind() { g.size = 0 }

// remove deletes the segment and closes it, releasing its lock.
func (g *segment) remove() error {
	err := os.Remove(g.path)
	if cerr := g.f.Close(); err == nil {
		err = cerr
	}
	return err
}

func appendFrame(b []byte, r *store.Record) []byte {
	start := len(b)
	b = append(b, make([]byte, 8)...)
	b = append(b, segmentVersion)
	b = binary.AppendVarint(b, r.Seq)
	b = binary.AppendVarint(b, r.Time.UnixNano())
	for _, s := range [...]string{r.Kind, r.Principal, r.Tool, r.Decision, r.RequestID} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for _, s := range [...][]byte{r.Data, r.Hashes} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Subjects)))
	for _, s := range r.Subjects {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	putFrameHeader(b[start:], b[start+8:])
	return b
}

// putFrameHeader writes the length and checksum of payload into the first 8 bytes of b.
func putFrameHeader(b, payload []byte) {
	binary.LittleEndian.PutUint32(b, uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(payload, castagnoli))
}

// decodeSegment returns the records of the segment's frames, which must number consecutively,
// and the length of the frames that are whole. Reading stops at zeros (where the file was grown
// and not yet written), at the first frame that is cut short or fails its checksum (a write a
// crash interrupted, never synced, so never acknowledged), and at a frame whose record comes
// before the one it follows (a frame of an earlier pass over the file). A whole frame whose
// payload does not parse, or whose record skips ahead of the one before, is an error: the file
// is not what this store wrote.
func decodeSegment(data []byte) ([]store.Record, int, error) {
	var recs []store.Record
	off := 0
	for len(data)-off >= 8 {
		n := int(binary.LittleEndian.Uint32(data[off:]))
		sum := binary.LittleEndian.Uint32(data[off+4:])
		if n == 0 || n > len(data)-off-8 {
			break
		}
		payload := data[off+8 : off+8+n]
		if crc32.Checksum(payload, castagnoli) != sum {
			break
		}
		r, err := decodeRecord(payload)
		if err != nil {
			return nil, off, fmt.Errorf("frame at byte %d: %w", off, err)
		}
		if len(recs) > 0 && r.Seq != recs[len(recs)-1].Seq+1 {
			if r.Seq <= recs[len(recs)-1].Seq {
				break // an earlier pass's frame: the end of this one
			}
			return nil, off, fmt.Errorf("frame at byte %d holds record %d after record %d", off, r.Seq, recs[len(recs)-1].Seq)
		}
		recs = append(recs, r)
		off += 8 + n
	}
	return recs, off, nil
}

var errBadPayload = errors.New("malformed record")

func decodeRecord(p []byte) (store.Record, error) {
	var r store.Record
	if len(p) == 0 || p[0] != segmentVersion {
		return r, fmt.Errorf("%w: unknown version", errBadPayload)
	}
	p = p[1:]
	varint := func() int64 {
		v, n := binary.Varint(p)
		if n <= 0 {
			p = nil
			return -1
		}
		p = p[n:]
		return v
	}
	bytes := func() []byte {
		l, n := binary.Uvarint(p)
		if n <= 0 || l > uint64(len(p)-n) {
			p = nil
			return nil
		}
		b := p[n : n+int(l) : n+int(l)]
		p = p[n+int(l):]
		return b
	}
	fail := func(what string) (store.Record, error) {
		return store.Record{}, fmt.Errorf("%w: %s", errBadPayload, what)
	}
	r.Seq = varint()
	ns := varint()
	if p == nil || r.Seq < 0 {
		return fail("sequence number or time")
	}
	r.Time = time.Unix(0, ns).UTC()
	for _, s := range [...]*string{&r.Kind, &r.Principal, &r.Tool, &r.Decision, &r.RequestID} {
		b := bytes()
		if p == nil {
			return fail("indexed columns")
		}
		*s = string(b)
	}
	r.Data = bytes()
	r.Hashes = bytes()
	if p == nil {
		return fail("data or hashes")
	}
	count, n := binary.Uvarint(p)
	if n <= 0 || count > uint64(len(p)) {
		return fail("subjects")
	}
	p = p[n:]
	if count > 0 {
		r.Subjects = make([]string, count)
		for i := range r.Subjects {
			b := bytes()
			if p == nil {
				return fail("subjects")
			}
			r.Subjects[i] = string(b)
		}
	}
	if len(p) != 0 {
		return fail("trailing bytes")
	}
	return r, nil
}

// CommitsAfterSync is true with a record segment, whose appends are a write each
// (store.SerialCommitter).
func (s *Store) CommitsAfterSync() bool { return s.seg != nil }

// openSegment opens the record segment: as the writer, to write the log through it; otherwise
// only to add the records of a writer that crashed, when no process holds it.
func (s *Store) openSegment(ctx context.Context, writer bool) error {
	path := s.path + SegmentSuffix
	g, err := openSegment(path, writer)
	switch {
	case errors.Is(err, errSegmentLocked) && writer:
		return fmt.Errorf("the record segment %s is locked: another mcpguard process writes this audit log (one SQLite file holds the log of one instance)", path)
	case errors.Is(err, errSegmentLocked), err == nil && g == nil:
		return nil // the process that holds it writes the log; nothing to add
	case err != nil:
		return fmt.Errorf("record segment %s: %w", path, err)
	}
	if err := s.recoverSegment(ctx, g); err != nil {
		g.f.Close()
		return err
	}
	if !writer {
		if err := g.remove(); err != nil {
			return fmt.Errorf("record segment %s: %w", path, err)
		}
		return nil
	}
	next, err := s.sizeOfTable(ctx)
	if err != nil {
		g.f.Close()
		return err
	}
	s.seg, s.next = g, next
	s.wake, s.stop, s.indexed = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	go s.index()
	return nil
}

// recoverSegment adds to the database the records of g it lacks, makes them durable there and
// empties g.
func (s *Store) recoverSegment(ctx context.Context, g *segment) error {
	data, err := g.read()
	if err != nil {
		return fmt.Errorf("read the record segment %s: %w", g.path, err)
	}
	if len(data) == 0 {
		return nil
	}
	recs, whole, err := decodeSegment(data)
	if err != nil {
		return fmt.Errorf("the record segment %s is damaged (%w): it holds acknowledged records the database may lack; keep a copy, then move it aside to open the database without them", g.path, err)
	}
	size, err := s.sizeOfTable(ctx)
	if err != nil {
		return err
	}
	for len(recs) > 0 && recs[0].Seq < size {
		recs = recs[1:] // the database received them before the segment was emptied
	}
	if len(recs) > 0 && recs[0].Seq != size {
		return fmt.Errorf("the record segment %s continues the log at record %d, but the database holds %d records: the database has lost the records between (restored from an older copy?); put back the database the segment continues, or move the segment aside, keeping a copy, to open this one without its records", g.path, recs[0].Seq, size)
	}
	if len(recs) > 0 {
		s.wmu.Lock()
		err := s.appendLocked(ctx, recs)
		s.wmu.Unlock()
		if err == nil {
			err = s.syncDatabase()
		}
		if err != nil {
			return fmt.Errorf("add the records of the record segment %s: %w", g.path, err)
		}
		s.logger.Info("audit records added to the database from the record segment", "records", len(recs), "first_seq", recs[0].Seq)
	}
	if whole < len(data) && !zero(data[whole:]) {
		s.logger.Warn("end of the record segment dropped: a write a crash cut short, or frames of an earlier pass over the file; neither was acknowledged", "segment", g.path, "bytes", len(data)-whole)
	}
	if err := g.empty(); err != nil {
		return fmt.Errorf("empty the record segment %s: %w", g.path, err)
	}
	return nil
}

// appendSegment writes recs to the segment and queues them for the database.
func (s *Store) appendSegment(ctx context.Context, recs []store.Record) error {
	s.gmu.Lock()
	defer s.gmu.Unlock()
	if err := s.indexFailed(ctx); err != nil {
		return err
	}
	for i := range recs {
		if want := s.next + int64(i); recs[i].Seq != want {
			return fmt.Errorf("append audit records: record %d is out of sequence: the log continues at %d", recs[i].Seq, want)
		}
	}
	if err := s.seg.write(recs); err != nil {
		return fmt.Errorf("append audit records: write the record segment: %w", err)
	}
	s.next += int64(len(recs))
	s.pmu.Lock()
	first := len(s.pending) == 0
	s.pending = append(s.pending, recs...)
	full := len(s.pending) >= maxPending
	s.pmu.Unlock()
	switch {
	case full:
		// The database falls behind: add the records here, so the log waits for it. They are
		// written either way; a failure is the next append's.
		if err := s.catchUp(ctx); err != nil {
			s.indexErr.Store(&err)
		}
	case first:
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// indexFailed returns nil when the database takes the pending records, trying again after a
// failure: records it cannot take are refused, not kept waiting without bound.
func (s *Store) indexFailed(ctx context.Context) error {
	if s.indexErr.Load() == nil {
		return nil
	}
	if err := s.catchUp(ctx); err != nil {
		return fmt.Errorf("append audit records: the database does not take the records written to the record segment: %w", err)
	}
	return nil
}

// catchUp adds the pending records to the database, in one transaction. The work is shared by
// every reader and the writer, so a caller that gives up does not cut it short: it runs with
// the caller's values and its own deadline, indexTimeout.
func (s *Store) catchUp(ctx context.Context) error {
	if s.seg == nil {
		return nil
	}
	s.pmu.Lock()
	idle := len(s.pending) == 0 // records are taken out of pending only once they are added
	s.pmu.Unlock()
	if idle {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), indexTimeout)
	defer cancel()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.pmu.Lock()
	batch := s.pending[:len(s.pending):len(s.pending)]
	s.pmu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if err := s.appendLocked(ctx, batch); err != nil {
		s.indexErr.Store(&err)
		return err
	}
	s.indexErr.Store(nil)
	s.pmu.Lock()
	n := copy(s.pending, s.pending[len(batch):])
	clear(s.pending[n:])
	s.pending = s.pending[:n]
	s.pmu.Unlock()
	return nil
}

// index is the indexer: woken by the first pending record, it waits IndexDelay for more and
// adds them all to the database, then empties the segment when it is past segmentLimit; while
// records are pending it goes on every IndexDelay.
func (s *Store) index() {
	defer close(s.indexed)
	timer := time.NewTimer(IndexDelay)
	timer.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.wake:
		}
		timer.Reset(IndexDelay)
		select {
		case <-s.stop:
			timer.Stop()
			return
		case <-timer.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), indexTimeout)
		err := s.catchUp(ctx)
		if err == nil && s.segmentSize() > segmentLimit {
			err = s.emptySegment(ctx)
		}
		cancel()
		if err != nil {
			s.logger.Error("audit records not added to the database from the record segment; appends are refused until they are", "err", err)
		}
		s.pmu.Lock()
		more := len(s.pending) > 0 // appended meanwhile, or refused: wake tells only of the first
		s.pmu.Unlock()
		if more {
			select {
			case s.wake <- struct{}{}:
			default:
			}
		}
	}
}

func (s *Store) segmentSize() int64 {
	s.gmu.Lock()
	defer s.gmu.Unlock()
	return s.seg.size
}

// emptySegment empties the segment once the database holds its records durably: the next
// frames start at the beginning of the file again (rewind). Appends wait meanwhile: the records
// left to add are the few of one IndexDelay at most.
func (s *Store) emptySegment(ctx context.Context) error {
	s.gmu.Lock()
	defer s.gmu.Unlock()
	if err := s.catchUp(ctx); err != nil {
		return err
	}
	if err := s.syncDatabase(); err != nil {
		return s.poison(err)
	}
	s.seg.rewind()
	return nil
}

// closeSegment stops the indexer, adds the pending records to the database, makes them durable
// and removes the segment. When the database does not take them the segment stays, for the
// next open to add them.
func (s *Store) closeSegment() error {
	if s.seg == nil {
		return nil
	}
	close(s.stop)
	<-s.indexed
	ctx, cancel := context.WithTimeout(context.Background(), indexTimeout)
	defer cancel()
	s.gmu.Lock()
	defer s.gmu.Unlock()
	g := s.seg
	err := s.catchUp(ctx)
	if err == nil && s.failed() == nil {
		err = s.syncDatabase()
		if err == nil {
			err = g.remove()
			s.seg = nil
			return err
		}
	}
	g.f.Close()
	s.seg = nil
	return fmt.Errorf("close the record segment %s: its records stay there for the next open to add: %w", g.path, errors.Join(err, s.failed()))
}

// sizeOfTable is the size the database holds, without the pending records.
func (s *Store) sizeOfTable(ctx context.Context) (int64, error) {
	var n sql.NullInt64
	if err := s.db.QueryRowContext(ctx, "SELECT MAX(seq) FROM audit_records").Scan(&n); err != nil {
		return 0, fmt.Errorf("audit log size: %w", err)
	}
	if !n.Valid {
		return 0, nil
	}
	return n.Int64 + 1, nil
}

// SegmentBytes returns the length of the frames in the record segment of the database at path:
// records a writer may not have added to it yet (0 when there is no segment). It reads the file
// (at most about segmentLimit), since the file's own length counts the zeros it was grown with.
func SegmentBytes(path string) (int64, error) {
	data, err := os.ReadFile(path + SegmentSuffix)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	_, whole, err := decodeSegment(data)
	if err != nil {
		return 0, err
	}
	return int64(whole), nil
}

// zero reports whether b holds only zero bytes.
func zero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
