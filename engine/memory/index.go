package memory

import (
	"bytes"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Index entries. Each shard's table is a []uint64 with linear probing and
// backward-shift deletion (no tombstones). An entry packs 28 bits of the
// key's hash (the tag, from which the entry's home slot is computed, so a
// table can be rehashed without reading a key) and the record's arena
// offset:
//
//	 63            36 35                               0
//	+----------------+----------------------------------+
//	|   tag (28)     |  offset/4 + 1 (36)               |
//	+----------------+----------------------------------+
//
// The offset field is never 0, so 0 marks an empty slot. Offsets address
// up to 256 GiB of arena.
//
// A table has any number of slots (not only powers of two): the home slot
// of a tag is tag×slots/2^28 (a multiply and a shift, Lemire's "fastrange"),
// so a table grows by a quarter at a time and runs between 64% and 80%
// full; doubling tables run between 37.5% and 75%. Tables of a page or
// more live in their own anonymous mappings outside the Go heap: the
// garbage collector neither counts them towards its heap goal (which
// would double their cost in RSS) nor holds an outgrown table until the
// next cycle; growth unmaps the old table at once.
const (
	tagBits    = 28
	offBits    = 64 - tagBits
	tagMask    = 1<<tagBits - 1
	offMask    = 1<<offBits - 1
	maxArena   = (offMask - 1) * recAlign
	minTable   = 16
	loadNum    = 4 // grow when entries*loadDen > slots*loadNum
	loadDen    = 5
	growNum    = 5 // a growing table gets slots*growNum/growDen slots
	growDen    = 4
	entryBytes = 8
	// mapTable is the smallest table, in slots, that gets its own mapping;
	// smaller ones are ordinary (pointer-free) heap slices. Measured with
	// 1M items: mapped tables save 7 MB of RSS against heap tables (GC
	// headroom and outgrown tables), but BenchmarkGet/Set run 6-11%
	// slower with them (100k keys, 2-core EPYC VM), a cost not yet
	// explained; a very large mapTable gives heap tables everywhere.
	mapTable = pageSize / entryBytes
)

func makeEntry(tag uint64, off int64) uint64 {
	return tag<<offBits | (uint64(off)/recAlign + 1)
}

func entryTag(e uint64) uint64 { return e >> offBits }
func entryOff(e uint64) int64  { return int64(e&offMask-1) * recAlign }

// shard is one lock's worth of the index plus the counters that change
// under that lock. Counters are summed by Stats.
type shard struct {
	mu     sync.RWMutex
	tab    []uint64
	mapped []byte // tab's mapping when it has one, else nil
	n      int    // entries

	bytes            int64 // sum of the sizes of the records the entries point to
	totalItems       uint64
	evictions        uint64
	evictedUnfetched uint64
	evictedActive    uint64
	reinserted       uint64
	compacted        uint64 // records moved by compaction
	expiredUnfetched uint64
	reclaimed        uint64
	getExpired       uint64 // lookups that met an expired item (then removed)
	getFlushed       uint64 // ... a flushed one
	crawlerChecked   uint64 // entries the background sweep looked at
	crawlerReclaimed uint64 // ... and removed as expired or flushed
	evictedNonzero   uint64 // evictions of items with an exptime
	sweepPos         uint64 // background sweep cursor

	_ [64]byte // keep neighbouring shards' locks off this cache line
}

// newTable returns a zeroed table of at least slots slots, and its
// mapping if it has one. Tables of a page or more are mapped (rounded up
// to whole pages); if the mapping fails the table comes from the heap.
func newTable(slots int) ([]uint64, []byte) {
	if slots >= mapTable {
		slots = (slots + mapTable - 1) &^ (mapTable - 1)
		b, err := unix.Mmap(-1, 0, slots*entryBytes, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
		if err == nil {
			return unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(b))), slots), b
		}
	}
	return make([]uint64, slots), nil
}

// setTable installs tab (with its mapping m) and frees the old table.
func (s *shard) setTable(tab []uint64, m []byte) {
	if s.mapped != nil {
		_ = unix.Munmap(s.mapped)
	}
	s.tab, s.mapped = tab, m
}

func (s *shard) init(slots int) {
	s.setTable(newTable(slots))
	s.n = 0
}

// free releases the table; the shard must not be used afterwards.
func (s *shard) free() {
	s.setTable(nil, nil)
	s.n = 0
}

// home returns the home slot of tag in a table of n slots.
func home(tag uint64, n int) int {
	return int(tag * uint64(n) >> tagBits)
}

// find returns the slot and entry of key, or -1.
func (s *shard) find(mem []byte, tag uint64, key []byte) (int, uint64) {
	tab := s.tab
	i := home(tag, len(tab))
	for {
		e := tab[i]
		if e == 0 {
			return -1, 0
		}
		if entryTag(e) == tag {
			if r := recAt(mem, entryOff(e)); bytes.Equal(r.key(), key) {
				return i, e
			}
		}
		if i++; i == len(tab) {
			i = 0
		}
	}
}

// findEntry returns the slot holding exactly entry e, or -1.
func (s *shard) findEntry(e uint64) int {
	tab := s.tab
	i := home(entryTag(e), len(tab))
	for {
		x := tab[i]
		if x == 0 {
			return -1
		}
		if x == e {
			return i
		}
		if i++; i == len(tab) {
			i = 0
		}
	}
}

// insert adds e, which must not be present, growing the table first when
// it is too full.
func (s *shard) insert(e uint64) {
	if (s.n+1)*loadDen > len(s.tab)*loadNum {
		s.grow()
	}
	place(s.tab, e)
	s.n++
}

// place puts e into the first empty slot of its probe run in tab.
func place(tab []uint64, e uint64) {
	i := home(entryTag(e), len(tab))
	for tab[i] != 0 {
		if i++; i == len(tab) {
			i = 0
		}
	}
	tab[i] = e
}

// grow enlarges this shard's table by a quarter. Only this shard is locked
// meanwhile.
func (s *shard) grow() {
	old := s.tab
	tab, m := newTable(max(minTable, len(old)*growNum/growDen+1))
	for _, e := range old {
		if e != 0 {
			place(tab, e)
		}
	}
	s.setTable(tab, m)
}

// remove deletes the entry in slot i by shifting later entries of its
// probe run back, so lookups never need tombstones.
func (s *shard) remove(i int) {
	tab := s.tab
	n := len(tab)
	// dist is the cyclic distance from a forward to b.
	dist := func(a, b int) int {
		if d := b - a; d >= 0 {
			return d
		}
		return b - a + n
	}
	hole := i
	j := hole
	for {
		if j++; j == n {
			j = 0
		}
		e := tab[j]
		if e == 0 {
			break
		}
		// e may move into the hole if its home is not cyclically in
		// (hole, j].
		if dist(home(entryTag(e), n), j) >= dist(hole, j) {
			tab[hole] = e
			hole = j
		}
	}
	tab[hole] = 0
	s.n--
}
