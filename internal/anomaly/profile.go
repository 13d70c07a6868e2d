package anomaly

import "slices"

// profile is what the detector knows about one principal. It is small and bounded: about 300
// bytes, plus 8 bytes per tool learned (at most Options.MaxTools) and 8 per denial remembered
// (Options.DenialBurst, only once the principal has been denied).
type profile struct {
	key        string
	prev, next int32 // neighbours in the table's recency list; -1 at either end

	calls uint64 // every call observed
	first int64  // time of the first (Unix ns)

	// hours counts the calls made in each hour of the day (Options.Location); hoursTotal is
	// their sum. When a count would overflow all are halved, which keeps their shares.
	hours      [24]uint32
	hoursTotal uint32

	// tools holds the sorted hashes of the tools the principal has used, at most MaxTools.
	tools []uint64

	// The per-minute rate: minute is the Unix minute being counted and inMinute the calls in
	// it so far; rate averages the calls of the completed minutes that had calls (idle minutes
	// are not averaged in, so a principal that works in bursts is measured by its bursts).
	// minutes counts the completed minutes, the first of which is partial and not averaged.
	minute   int64
	inMinute uint32
	minutes  uint32
	rate     float64

	// denials is a ring of the times (Unix ns) of the last DenialBurst denials; denialNext is
	// where the next one goes and denialCount how many it holds.
	denials     []int64
	denialNext  int
	denialCount int

	// fired is when each kind of signal last fired (Unix ns, 0 never) and firedSeverity at
	// which severity, for the cooldown.
	fired         [numKinds]int64
	firedSeverity [numKinds]Severity
}

// reset forgets everything but the memory already allocated.
func (p *profile) reset(key string) {
	tools, denials := p.tools[:0], p.denials[:0]
	*p = profile{key: key, tools: tools, denials: denials, prev: -1, next: -1}
}

// knows reports whether the tool with hash h is learned.
func (p *profile) knows(h uint64) bool {
	_, ok := slices.BinarySearch(p.tools, h)
	return ok
}

// learn adds the tool with hash h, unless max tools are learned already.
func (p *profile) learn(h uint64, max int) {
	i, ok := slices.BinarySearch(p.tools, h)
	if ok || len(p.tools) >= max {
		return
	}
	p.tools = slices.Insert(p.tools, i, h)
}

// table holds at most max profiles; adding one more evicts the least recently seen. Profiles
// live in one slice and are linked by index, most recently seen first.
type table struct {
	index      map[string]int32
	slots      []profile
	head, tail int32 // most and least recently seen; -1 when empty
	max        int
}

func newTable(max int) *table {
	return &table{index: make(map[string]int32), head: -1, tail: -1, max: max}
}

// get returns the profile of key, making it the most recently seen; a new one if key has none,
// evicting the least recently seen profile when the table is full.
func (t *table) get(key string) *profile {
	if i, ok := t.index[key]; ok {
		t.touch(i)
		return &t.slots[i]
	}
	var i int32
	if len(t.slots) < t.max {
		i = int32(len(t.slots))
		t.slots = append(t.slots, profile{})
	} else {
		i = t.tail
		t.unlink(i)
		delete(t.index, t.slots[i].key)
	}
	t.slots[i].reset(key)
	t.index[key] = i
	t.pushFront(i)
	return &t.slots[i]
}

func (t *table) len() int { return len(t.index) }

func (t *table) touch(i int32) {
	if t.head == i {
		return
	}
	t.unlink(i)
	t.pushFront(i)
}

func (t *table) unlink(i int32) {
	p := &t.slots[i]
	if p.prev >= 0 {
		t.slots[p.prev].next = p.next
	} else {
		t.head = p.next
	}
	if p.next >= 0 {
		t.slots[p.next].prev = p.prev
	} else {
		t.tail = p.prev
	}
	p.prev, p.next = -1, -1
}

func (t *table) pushFront(i int32) {
	p := &t.slots[i]
	p.prev, p.next = -1, t.head
	if t.head >= 0 {
		t.slots[t.head].prev = i
	}
	t.head = i
	if t.tail < 0 {
		t.tail = i
	}
}
