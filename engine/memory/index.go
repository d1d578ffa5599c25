package memory

import (
	"bytes"
	"sync"
)

// Index entries. Each shard's table is a []uint64 with linear probing and
// backward-shift deletion (no tombstones). An entry packs 28 bits of the
// key's hash (the tag, whose low bits are also the entry's home slot, so a
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
const (
	tagBits    = 28
	offBits    = 64 - tagBits
	tagMask    = 1<<tagBits - 1
	offMask    = 1<<offBits - 1
	maxArena   = (offMask - 1) * recAlign
	minTable   = 16
	loadNum    = 3 // grow when entries*loadDen > slots*loadNum
	loadDen    = 4
	entryBytes = 8
)

func makeEntry(tag uint64, off int64) uint64 {
	return tag<<offBits | (uint64(off)/recAlign + 1)
}

func entryTag(e uint64) uint64 { return e >> offBits }
func entryOff(e uint64) int64  { return int64(e&offMask-1) * recAlign }

// shard is one lock's worth of the index plus the counters that change
// under that lock. Counters are summed by Stats.
type shard struct {
	mu   sync.RWMutex
	tab  []uint64
	mask uint64
	n    int // entries

	bytes            int64 // sum of live record sizes
	totalItems       uint64
	evictions        uint64
	evictedUnfetched uint64
	evictedActive    uint64
	reinserted       uint64
	expiredUnfetched uint64
	reclaimed        uint64
	sweepPos         uint64 // background sweep cursor

	_ [64]byte // keep neighbouring shards' locks off this cache line
}

func (s *shard) init(slots int) {
	s.tab = make([]uint64, slots)
	s.mask = uint64(slots - 1)
	s.n = 0
}

// find returns the slot and entry of key, or -1.
func (s *shard) find(mem []byte, tag uint64, key []byte) (int, uint64) {
	i := tag & s.mask
	for {
		e := s.tab[i]
		if e == 0 {
			return -1, 0
		}
		if entryTag(e) == tag {
			if r := recAt(mem, entryOff(e)); bytes.Equal(r.key(), key) {
				return int(i), e
			}
		}
		i = (i + 1) & s.mask
	}
}

// findEntry returns the slot holding exactly entry e, or -1.
func (s *shard) findEntry(e uint64) int {
	i := entryTag(e) & s.mask
	for {
		x := s.tab[i]
		if x == 0 {
			return -1
		}
		if x == e {
			return int(i)
		}
		i = (i + 1) & s.mask
	}
}

// insert adds e, which must not be present, growing the table first when
// it is too full.
func (s *shard) insert(e uint64) {
	if (s.n+1)*loadDen > len(s.tab)*loadNum {
		s.grow()
	}
	i := entryTag(e) & s.mask
	for s.tab[i] != 0 {
		i = (i + 1) & s.mask
	}
	s.tab[i] = e
	s.n++
}

// grow doubles this shard's table. Only this shard is locked meanwhile.
func (s *shard) grow() {
	old := s.tab
	s.tab = make([]uint64, 2*len(old))
	s.mask = uint64(len(s.tab) - 1)
	for _, e := range old {
		if e == 0 {
			continue
		}
		i := entryTag(e) & s.mask
		for s.tab[i] != 0 {
			i = (i + 1) & s.mask
		}
		s.tab[i] = e
	}
}

// remove deletes the entry in slot i by shifting later entries of its
// probe run back, so lookups never need tombstones.
func (s *shard) remove(i int) {
	hole := uint64(i)
	j := hole
	for {
		j = (j + 1) & s.mask
		e := s.tab[j]
		if e == 0 {
			break
		}
		home := entryTag(e) & s.mask
		// e may move into the hole if its home is not cyclically in
		// (hole, j].
		if (j-home)&s.mask >= (j-hole)&s.mask {
			s.tab[hole] = e
			hole = j
		}
	}
	s.tab[hole] = 0
	s.n--
}
