package contain

import (
	"context"
	"hash/maphash"
	"math"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// LocalOptions configures a Local backend; the zero value is ready to use.
type LocalOptions struct {
	// MaxKeys bounds the keys kept, every method's key space together (default 100 000).
	MaxKeys int
	// MaxEvents bounds the event times of sliding windows and the leases of slots kept, all
	// keys together (default 1 048 576: 8 MiB of times).
	MaxEvents int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

const (
	defaultMaxKeys   = 100_000
	defaultMaxEvents = 1 << 20
	// Keys are spread over up to maxShards shards, each with its own lock, as long as each
	// shard holds at least minShardKeys: fewer, larger shards evict closer to true LRU order.
	maxShards    = 64
	minShardKeys = 1024
)

// Local is the Backend of a single instance (SQLite deployments): its state lives in this
// process and dies with it.
//
// Bounds. Local keeps at most MaxKeys keys and MaxEvents event times and leases. Keys are
// spread by hash over shards, each with its own lock and an equal share of both bounds. When a
// shard is full it first drops its expired entries — a bucket refilled to full, a counter past
// its window, a window whose events are all older than it, slots whose leases all ended, a mark
// past its ttl — which changes no answer (the sweep runs at most once every MaxKeys/8
// insertions into a full shard, so its cost is spread over them); then it drops the least
// recently used entry. Dropping a live entry forgets it: an evicted bucket starts full again,
// an evicted counter or window starts from zero, evicted slots are free. That leniency is
// accepted because eviction only happens under a flood of distinct keys, far more than a
// deployment's principals, addresses and tools make; what the bound buys is that such a flood
// cannot exhaust the memory. A sliding window keeps at most WindowCap event times (fewer when
// a shard's share of MaxEvents is smaller), the newest; a key holds at most its shard's share
// of MaxEvents slots.
//
// Take on an existing key does not allocate.
type Local struct {
	now      func() time.Time
	epoch    time.Time // the clock's reading at start: times are kept as nanoseconds since
	seed     maphash.Seed
	shards   []localShard
	mask     uint64
	capTimes int // the most event times one window keeps
	slotIDs  atomic.Uint64
}

// NewLocal returns an empty Local backend.
func NewLocal(opts LocalOptions) *Local {
	maxKeys := opts.MaxKeys
	if maxKeys <= 0 {
		maxKeys = defaultMaxKeys
	}
	maxEvents := opts.MaxEvents
	if maxEvents <= 0 {
		maxEvents = defaultMaxEvents
	}
	n := 1
	for n < maxShards && maxKeys/(2*n) >= minShardKeys {
		n *= 2
	}
	l := &Local{
		now:    opts.Now,
		seed:   maphash.MakeSeed(),
		shards: make([]localShard, n),
		mask:   uint64(n - 1),
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.epoch = l.now()
	for i := range l.shards {
		s := &l.shards[i]
		s.entries = make(map[localKey]*localEntry)
		s.recent.next, s.recent.prev = &s.recent, &s.recent
		s.maxKeys = max(1, maxKeys/n)
		s.maxEvents = max(1, maxEvents/n)
	}
	l.capTimes = min(WindowCap, l.shards[0].maxEvents)
	return l
}

// Len returns how many keys Local holds, expired ones not yet dropped included.
func (l *Local) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.entries)
		s.mu.Unlock()
	}
	return n
}

// clock reads the time as nanoseconds since l.epoch (monotonic with the real clock).
func (l *Local) clock() int64 { return int64(l.now().Sub(l.epoch)) }

func (l *Local) shard(key string) *localShard {
	return &l.shards[maphash.String(l.seed, key)&l.mask]
}

// Take implements Backend.
func (l *Local) Take(_ context.Context, key string, rate, burst, cost float64) (bool, time.Duration, error) {
	if err := checkTake(rate, burst, cost); err != nil {
		return false, 0, err
	}
	now := l.clock()
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	id := localKey{kindBucket, key}
	e := s.lookup(id)
	if e == nil {
		e = s.insert(id, now)
		e.value, e.at = burst, now
	}
	tokens := e.value
	if now > e.at {
		tokens += float64(now-e.at) / 1e9 * rate
		e.at = now
	}
	tokens = min(tokens, burst)
	ok := tokens >= cost
	var wait time.Duration
	if ok {
		tokens -= cost
	} else {
		wait = time.Duration(seconds((cost - tokens) / rate))
	}
	e.value = tokens
	e.expires = addSat(now, seconds((burst-tokens)/rate))
	return ok, wait, nil
}

// Acquire implements Backend.
func (l *Local) Acquire(_ context.Context, key string, maxSlots int, lease time.Duration) (func(), bool, error) {
	if err := checkAcquire(maxSlots, lease); err != nil {
		return nil, false, err
	}
	now := l.clock()
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	id := localKey{kindSlots, key}
	e := s.lookup(id)
	if e == nil {
		e = s.insert(id, now)
	}
	live := slices.DeleteFunc(e.slots, func(sl localSlot) bool { return sl.ends <= now })
	s.events -= len(e.slots) - len(live)
	e.slots = live
	if len(e.slots) >= maxSlots || len(e.slots) >= s.maxEvents {
		return nil, false, nil
	}
	slot := localSlot{id: l.slotIDs.Add(1), ends: addSat(now, int64(lease))}
	e.slots = append(e.slots, slot)
	s.grew(e, 1)
	e.expires = max(e.expires, slot.ends)
	return func() { l.release(key, slot.id) }, true, nil
}

func (l *Local) release(key string, slot uint64) {
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[localKey{kindSlots, key}]
	if e == nil {
		return
	}
	if i := slices.IndexFunc(e.slots, func(sl localSlot) bool { return sl.id == slot }); i >= 0 {
		e.slots = slices.Delete(e.slots, i, i+1)
		s.events--
	}
	if len(e.slots) == 0 {
		e.expires = math.MinInt64
	}
}

// Add implements Backend.
func (l *Local) Add(_ context.Context, key string, amount, limit float64, expires time.Time) (float64, bool, error) {
	if err := checkAdd(amount, limit); err != nil {
		return 0, false, err
	}
	now := l.clock()
	ends := int64(expires.Sub(l.epoch))
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	id := localKey{kindCounter, key}
	e := s.lookup(id)
	if e == nil {
		e = s.insert(id, now)
	}
	if e.expires <= now {
		e.value = 0
	}
	total := e.value + amount
	if total > limit {
		return e.value, false, nil
	}
	e.value, e.expires = total, ends
	return total, true, nil
}

// Count implements Backend.
func (l *Local) Count(_ context.Context, key string, window time.Duration) (int, error) {
	if err := checkDuration("window", window); err != nil {
		return 0, err
	}
	now := l.clock()
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	id := localKey{kindWindow, key}
	e := s.lookup(id)
	if e == nil {
		e = s.insert(id, now)
	}
	cut := now - int64(window)
	for e.n > 0 && e.times[e.head] <= cut {
		e.head = (e.head + 1) % len(e.times)
		e.n--
	}
	switch size := len(e.times); {
	case e.n == size && size < l.capTimes:
		s.resize(e, min(l.capTimes, max(8, 2*size)))
	case e.n == size:
		e.head = (e.head + 1) % size // full: the oldest event makes room
		e.n--
	case size > 64 && e.n < size/4:
		s.resize(e, size/2)
	}
	e.times[(e.head+e.n)%len(e.times)] = now
	e.n++
	e.expires = addSat(now, int64(window))
	return e.n, nil
}

// Mark implements Backend.
func (l *Local) Mark(_ context.Context, key string, ttl time.Duration) error {
	if err := checkDuration("ttl", ttl); err != nil {
		return err
	}
	now := l.clock()
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	id := localKey{kindMark, key}
	e := s.lookup(id)
	if e == nil {
		e = s.insert(id, now)
	}
	e.expires = addSat(now, int64(ttl))
	return nil
}

// Seen implements Backend.
func (l *Local) Seen(_ context.Context, key string) (bool, error) {
	now := l.clock()
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.lookup(localKey{kindMark, key})
	return e != nil && e.expires > now, nil
}

// Admit implements Backend. It locks the shards of every key the batch names, in the order of
// their index, so that two batches sharing shards never wait for each other in a cycle; checks
// every part against the state as it stands, changing nothing; and only when all hold, applies
// them. The locks are held for the whole batch, so no other call sees part of it.
func (l *Local) Admit(_ context.Context, b *Batch) (BatchResult, error) {
	if err := b.check(); err != nil {
		return BatchResult{}, err
	}
	var buf [16]uint8
	sh := l.shardsOf(b, buf[:0])
	var locked uint64 // one bit a shard: there are at most maxShards (64)
	for _, i := range sh {
		locked |= 1 << i
	}
	for m := locked; m != 0; m &= m - 1 {
		l.shards[bits.TrailingZeros64(m)].mu.Lock()
	}
	defer func() {
		for m := locked; m != 0; m &= m - 1 {
			l.shards[bits.TrailingZeros64(m)].mu.Unlock()
		}
	}()
	now := l.clock()

	// Check. Nothing changes here: the new state of each bucket and counter is kept aside, and
	// so is each part's entry (nil when its key has none), with its shard's removal count.
	var entBuf [16]*localEntry
	var genBuf [16]uint64
	ents, gens := entBuf[:0], genBuf[:0]
	find := func(kind localKind, key string) *localEntry {
		s := &l.shards[sh[len(ents)]]
		e := s.entries[localKey{kind, key}]
		ents, gens = append(ents, e), append(gens, s.removals)
		return e
	}
	for i, k := range b.Seen {
		if e := find(kindMark, k); e == nil || e.expires <= now {
			return BatchResult{Refused: PartSeen, Index: i}, nil
		}
	}
	var tokBuf [8]float64
	var atBuf [8]int64
	tokens, ats := tokBuf[:0], atBuf[:0]
	for i := range b.Buckets {
		bt := &b.Buckets[i]
		e := find(kindBucket, bt.Key)
		var value float64
		var at int64
		if j := slices.IndexFunc(b.Buckets[:i], func(o BucketTake) bool { return o.Key == bt.Key }); j >= 0 {
			value, at = tokens[j], ats[j]
		} else if e != nil {
			value, at = e.value, e.at
		} else {
			value, at = bt.Burst, now
		}
		if now > at {
			value += float64(now-at) / 1e9 * bt.Rate
			at = now
		}
		value = min(value, bt.Burst)
		if value < bt.Cost {
			return BatchResult{Refused: PartBucket, Index: i, RetryAfter: time.Duration(seconds((bt.Cost - value) / bt.Rate))}, nil
		}
		tokens, ats = append(tokens, value-bt.Cost), append(ats, at)
	}
	for i := range b.Slots {
		sa := &b.Slots[i]
		e := find(kindSlots, sa.Key)
		held := 0
		for _, o := range b.Slots[:i] {
			if o.Key == sa.Key {
				held++
			}
		}
		if e != nil {
			for _, sl := range e.slots {
				if sl.ends > now {
					held++
				}
			}
		}
		if held >= sa.Max || held >= l.shards[sh[len(ents)-1]].maxEvents {
			return BatchResult{Refused: PartSlot, Index: i}, nil
		}
	}
	var totBuf [8]float64
	totals := totBuf[:0]
	for i := range b.Counters {
		ca := &b.Counters[i]
		e := find(kindCounter, ca.Key)
		var cur float64
		if j := slices.IndexFunc(b.Counters[:i], func(o CounterAdd) bool { return o.Key == ca.Key }); j >= 0 {
			cur = totals[j]
		} else if e != nil && e.expires > now {
			cur = e.value
		}
		if cur+ca.Amount > ca.Limit {
			return BatchResult{Refused: PartCounter, Index: i, Total: cur}, nil
		}
		totals = append(totals, cur+ca.Amount)
	}

	// Apply, each part to the entry the check found, unless an insertion since then made room
	// in its shard (the entry may be gone, or reused for another key): then to the entry its
	// key has now, or a new one.
	p := 0
	entry := func(kind localKind, key string) *localEntry {
		s, e := &l.shards[sh[p]], ents[p]
		id := localKey{kind, key}
		if e != nil && s.removals == gens[p] {
			if s.recent.next != e {
				s.unlink(e)
				s.pushFront(e)
			}
		} else if e = s.lookup(id); e == nil {
			e = s.insert(id, now)
		}
		p++
		return e
	}
	for _, k := range b.Seen {
		entry(kindMark, k)
	}
	for i := range b.Buckets {
		bt := &b.Buckets[i]
		e := entry(kindBucket, bt.Key)
		e.value, e.at = tokens[i], ats[i]
		e.expires = addSat(now, seconds((bt.Burst-tokens[i])/bt.Rate))
	}
	release := noRelease
	if len(b.Slots) > 0 {
		held := make([]heldSlot, 0, len(b.Slots))
		for i := range b.Slots {
			sa := &b.Slots[i]
			s := &l.shards[sh[p]]
			e := entry(kindSlots, sa.Key)
			live := slices.DeleteFunc(e.slots, func(sl localSlot) bool { return sl.ends <= now })
			s.events -= len(e.slots) - len(live)
			e.slots = live
			slot := localSlot{id: l.slotIDs.Add(1), ends: addSat(now, int64(sa.Lease))}
			e.slots = append(e.slots, slot)
			s.grew(e, 1)
			e.expires = max(e.expires, slot.ends)
			held = append(held, heldSlot{sa.Key, slot.id})
		}
		release = func() {
			for _, h := range held {
				l.release(h.key, h.id)
			}
		}
	}
	for i := range b.Counters {
		ca := &b.Counters[i]
		e := entry(kindCounter, ca.Key)
		e.value, e.expires = totals[i], int64(ca.Expires.Sub(l.epoch))
	}
	return BatchResult{OK: true, Release: release}, nil
}

// heldSlot is a slot a batch acquired.
type heldSlot struct {
	key string
	id  uint64
}

// shardsOf appends the shard index of every part of b, in the order Admit visits them.
func (l *Local) shardsOf(b *Batch, dst []uint8) []uint8 {
	idx := func(key string) uint8 { return uint8(maphash.String(l.seed, key) & l.mask) }
	for _, k := range b.Seen {
		dst = append(dst, idx(k))
	}
	for i := range b.Buckets {
		dst = append(dst, idx(b.Buckets[i].Key))
	}
	for i := range b.Slots {
		dst = append(dst, idx(b.Slots[i].Key))
	}
	for i := range b.Counters {
		dst = append(dst, idx(b.Counters[i].Key))
	}
	return dst
}

// localKind is the key space of one Backend method.
type localKind uint8

const (
	kindBucket localKind = iota
	kindSlots
	kindCounter
	kindWindow
	kindMark
)

type localKey struct {
	kind localKind
	key  string
}

// localEntry is the state of one key. Times are nanoseconds on the Local's clock.
type localEntry struct {
	id         localKey
	prev, next *localEntry // the shard's recency list
	// expires is when dropping the entry starts to change no answer.
	expires int64
	// A bucket holds value tokens as of at; a counter holds its total in value.
	value float64
	at    int64
	// A window's event times: a ring of n times from head, oldest first.
	times   []int64
	head, n int
	// The slots held, each until it is released or its lease ends.
	slots []localSlot
}

type localSlot struct {
	id   uint64
	ends int64
}

// localShard holds a share of the keys under one lock.
type localShard struct {
	mu      sync.Mutex
	entries map[localKey]*localEntry
	// recent is the sentinel of a circular list of the entries: recent.next is the most
	// recently used, recent.prev the least.
	recent localEntry
	// events is the length of every window's ring and slot list together.
	events             int
	maxKeys, maxEvents int
	// sweepIn counts down the insertions into a full shard until the next sweep of expired
	// entries.
	sweepIn int
	// removals counts the entries removed: while it stays the same, an entry found stays
	// its key's (Admit).
	removals uint64
	_        [64]byte // keeps two shards' locks off one cache line
}

// lookup returns the entry of id, marked as the most recently used, or nil.
func (s *localShard) lookup(id localKey) *localEntry {
	e := s.entries[id]
	if e != nil && s.recent.next != e {
		s.unlink(e)
		s.pushFront(e)
	}
	return e
}

// insert adds an empty entry for id, making room first when the shard is full.
func (s *localShard) insert(id localKey, now int64) *localEntry {
	var e *localEntry
	if len(s.entries) >= s.maxKeys {
		if s.sweepIn <= 0 {
			s.sweep(now)
			s.sweepIn = max(1, s.maxKeys/8)
		}
		s.sweepIn--
		if len(s.entries) >= s.maxKeys {
			e = s.recent.prev
			s.remove(e)
			*e = localEntry{} // reused, so a flood of keys does not churn the heap
		}
	}
	if e == nil {
		e = new(localEntry)
	}
	e.id = id
	s.entries[id] = e
	s.pushFront(e)
	return e
}

// sweep drops every expired entry.
func (s *localShard) sweep(now int64) {
	for e := s.recent.prev; e != &s.recent; {
		prev := e.prev
		if e.expires <= now {
			s.remove(e)
		}
		e = prev
	}
}

func (s *localShard) remove(e *localEntry) {
	s.removals++
	delete(s.entries, e.id)
	s.unlink(e)
	s.events -= len(e.times) + len(e.slots)
}

func (s *localShard) unlink(e *localEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (s *localShard) pushFront(e *localEntry) {
	e.prev, e.next = &s.recent, s.recent.next
	e.next.prev = e
	s.recent.next = e
}

// grew accounts for delta more events held by e, then drops the least recently used other
// entries until the shard is back within its bound.
func (s *localShard) grew(e *localEntry, delta int) {
	s.events += delta
	for s.events > s.maxEvents {
		v := s.recent.prev
		if v == e {
			v = e.prev
		}
		if v == &s.recent {
			return
		}
		s.remove(v)
	}
}

// resize gives e's window ring size places, keeping its events in order.
func (s *localShard) resize(e *localEntry, size int) {
	times := make([]int64, size)
	for i := range e.n {
		times[i] = e.times[(e.head+i)%len(e.times)]
	}
	delta := size - len(e.times)
	e.times, e.head = times, 0
	s.grew(e, delta)
}

// seconds converts seconds to nanoseconds, rounded up and saturated.
func seconds(s float64) int64 {
	ns := math.Ceil(s * 1e9)
	if ns >= math.MaxInt64/2 || math.IsNaN(ns) {
		return math.MaxInt64 / 2
	}
	return int64(ns)
}

// addSat adds d to t, saturating instead of overflowing.
func addSat(t, d int64) int64 {
	if d > 0 && t > math.MaxInt64-d {
		return math.MaxInt64
	}
	return t + d
}
