package memory

import (
	"bytes"

	"github.com/mnemo-cache/mnemo/internal/invariants"
)

// Invariant checks. Built with the "invariants" tag (invariants.Enabled),
// the engine verifies itself as it runs; without it every call below sits
// behind a constant false and is compiled away.
//
// The full check (checkInvariants, checkLocked) holds the allocator lock
// and every shard's read lock at once, so it sees the index, the counters
// and the segment table in one consistent state, and verifies:
//
//   - every index entry points at a record inside a segment that is a
//     write head or closed (not free, the spare or retired), within the
//     segment's used bytes when it is closed; the record's CRC and lengths
//     check, its key hashes to the entry's shard and tag, and a lookup of
//     that key finds this very slot (so the entry is reachable from its
//     home slot and the key is indexed once);
//   - per shard: the entry count n, and bytes, the sum of its records'
//     sizes; the table is at most 4/5 full;
//   - per segment: live equals the sizes of the records the index points
//     to in it; free, spare and retired segments hold nothing; a closed
//     segment's live bytes fit in its used bytes; no negative writer count;
//   - the segment table: the free list, the spare and the FIFO are
//     disjoint and agree with the segment states, the free list holds
//     its cold segments below its warm (resident) ones, at most one write head
//     per stripe, and exactly the segments beyond the memory limit are
//     retired or marked to retire.
//
// It runs after a segment is reclaimed (evicting or -M compaction; every
// few reclaims in a large arena, so its cost stays a bounded multiple of
// the bytes written), after SetMemoryLimit, and at the start of Close.
// Tests call it directly after their workloads, in every build.
//
// The cheap local checks run on the hot paths: a Get hit's record checks
// (CRC and key); a stored record is found under its key right after it is
// published; counters never go negative when an item is dropped; a record
// moved by reclaim still checks; reclaim empties its segment.

// invState is the invariant checker's scratch, allocated by New only when
// invariants are enabled and used under amu.
type invState struct {
	segLive  []int64 // per segment: live bytes the index accounts for
	segSeen  []uint8 // per segment: which list it was found on
	reclaims int     // reclaims since the last full check
}

// checkInvariants verifies the whole engine and panics with an
// invariants.Violation at the first inconsistency. It may run at any time
// while the engine is open; it takes the allocator lock and every shard's
// read lock.
func (e *Engine) checkInvariants() {
	e.amu.Lock()
	defer e.amu.Unlock()
	e.checkLocked()
}

// afterReclaimLocked runs the full check after a reclaim, every
// limitSegs/4 reclaims (at least every one). Called with amu held.
func (e *Engine) afterReclaimLocked() {
	e.inv.reclaims++
	if e.inv.reclaims*4 < e.limitSegs {
		return
	}
	e.inv.reclaims = 0
	e.checkLocked()
}

var segStateNames = [...]string{segFree: "free", segHead: "head", segClosed: "closed", segRetired: "retired"}

// checkLocked is checkInvariants with amu held.
func (e *Engine) checkLocked() {
	if e.closed.Load() {
		return
	}
	inv := e.inv
	if inv == nil {
		// Tests call the check in builds without the tag.
		inv = &invState{}
	}
	if len(inv.segLive) != len(e.segs) {
		inv.segLive = make([]int64, len(e.segs))
		inv.segSeen = make([]uint8, len(e.segs))
	}
	clear(inv.segLive)
	clear(inv.segSeen)

	locked := 0
	defer func() {
		for i := range locked {
			e.shards[i].mu.RUnlock()
		}
	}()
	for i := range e.shards {
		e.shards[i].mu.RLock()
		locked++
	}

	for si := range e.shards {
		sh := &e.shards[si]
		n, total := 0, int64(0)
		for slot, ent := range sh.tab {
			if ent == 0 {
				continue
			}
			n++
			size := e.checkEntry(si, slot, ent)
			total += size
			inv.segLive[entryOff(ent)/e.segSize] += size
		}
		if n != sh.n {
			invariants.Failf("memory: shard %d has %d entries, counts %d", si, n, sh.n)
		}
		if total != sh.bytes {
			invariants.Failf("memory: shard %d's records take %d bytes, counts %d", si, total, sh.bytes)
		}
		if sh.n*loadDen > len(sh.tab)*loadNum {
			invariants.Failf("memory: shard %d holds %d entries in %d slots, over 4/5", si, sh.n, len(sh.tab))
		}
	}

	const onFree, onSpare, onFIFO = 1, 2, 3
	mark := func(id int32, list uint8, what string) {
		if id < 0 || int(id) >= len(e.segs) {
			invariants.Failf("memory: %s holds segment %d of %d", what, id, len(e.segs))
		}
		if inv.segSeen[id] != 0 {
			invariants.Failf("memory: segment %d is on two lists (%d, and %s)", id, inv.segSeen[id], what)
		}
		inv.segSeen[id] = list
	}
	for _, id := range e.free {
		mark(id, onFree, "the free list")
	}
	if e.reserve >= 0 {
		mark(e.reserve, onSpare, "the spare")
	}
	for _, id := range e.fifo {
		mark(id, onFIFO, "the FIFO")
	}
	if e.warmFree < 0 || e.warmFree > len(e.free) {
		invariants.Failf("memory: %d warm free segments counted, %d free", e.warmFree, len(e.free))
	}
	for i, id := range e.free {
		// Cold segments first, the warmFree resident ones on top.
		if warm := i >= len(e.free)-e.warmFree; e.segs[id].resident != warm {
			invariants.Failf("memory: free segment %d at %d of %d: resident %v, but %d are warm", id, i, len(e.free), e.segs[id].resident, e.warmFree)
		}
	}
	heads := 0
	for id := range e.segs {
		s := &e.segs[id]
		live, want := s.live.Load(), inv.segLive[id]
		state := segStateNames[s.state]
		if live != want {
			invariants.Failf("memory: segment %d (%s) counts %d live bytes, the index points to %d", id, state, live, want)
		}
		if w := s.writers.Load(); w < 0 {
			invariants.Failf("memory: segment %d has %d writers", id, w)
		}
		switch seen := inv.segSeen[id]; s.state {
		case segFree:
			if seen != onFree && seen != onSpare {
				invariants.Failf("memory: free segment %d is neither on the free list nor the spare", id)
			}
			if live != 0 {
				invariants.Failf("memory: free segment %d holds %d live bytes", id, live)
			}
		case segClosed:
			if seen != onFIFO {
				invariants.Failf("memory: closed segment %d is not on the FIFO", id)
			}
			if live > s.used || s.used > e.segSize {
				invariants.Failf("memory: closed segment %d: %d live bytes, %d used of %d", id, live, s.used, e.segSize)
			}
		case segHead:
			heads++
			if seen != 0 {
				invariants.Failf("memory: write head %d is on a list (%d)", id, seen)
			}
		case segRetired:
			if seen != 0 || live != 0 {
				invariants.Failf("memory: retired segment %d is on list %d with %d live bytes", id, seen, live)
			}
		default:
			invariants.Failf("memory: segment %d in unknown state %d", id, s.state)
		}
		beyond := id >= e.limitSegs
		if !beyond && (s.retire || s.state == segRetired) {
			invariants.Failf("memory: segment %d is within the limit of %d segments but retired (%s, retire %v)", id, e.limitSegs, state, s.retire)
		}
		if beyond && !s.retire && s.state != segRetired {
			invariants.Failf("memory: segment %d is beyond the limit of %d segments but %s", id, e.limitSegs, state)
		}
	}
	if heads > len(e.stripes) {
		invariants.Failf("memory: %d write heads for %d stripes", heads, len(e.stripes))
	}
}

// checkEntry verifies the entry ent in slot of shard si (read-locked, amu
// held) and returns its record's size.
func (e *Engine) checkEntry(si, slot int, ent uint64) int64 {
	off := entryOff(ent)
	if off < 0 || off >= int64(len(e.mem)) {
		invariants.Failf("memory: shard %d slot %d: offset %d outside the %d-byte arena", si, slot, off, len(e.mem))
	}
	id := off / e.segSize
	s := &e.segs[id]
	if s.state != segHead && s.state != segClosed {
		invariants.Failf("memory: shard %d slot %d: offset %d in %s segment %d", si, slot, off, segStateNames[s.state], id)
	}
	limit := e.segSize - off%e.segSize
	if s.state == segClosed {
		// A head's used belongs to its stripe; a closed one's to amu.
		limit = s.used - off%e.segSize
	}
	r := recAt(e.mem, off)
	if !r.valid(int(limit)) {
		invariants.Failf("memory: shard %d slot %d: the record at offset %d (segment %d) does not check (CRC or length)", si, slot, off, id)
	}
	if e.file != nil && !r.hasCRC() {
		invariants.Failf("memory: shard %d slot %d: the record at offset %d is in a restartable file but has no CRC", si, slot, off)
	}
	if e.file != nil && r.state() != stLive {
		// Restartable file: what the index holds is what a scan recovers.
		invariants.Failf("memory: shard %d slot %d: the record at offset %d is indexed but in state %#x, not live", si, slot, off, r.state())
	}
	key := r.key()
	h := e.hash(key)
	if e.shardOf(h) != &e.shards[si] || h&tagMask != entryTag(ent) {
		invariants.Failf("memory: shard %d slot %d: key %q belongs to another shard or tag", si, slot, string(key))
	}
	if got, _ := e.shards[si].find(e.mem, entryTag(ent), key); got != slot {
		invariants.Failf("memory: shard %d: key %q is in slot %d, a lookup finds slot %d", si, string(key), slot, got)
	}
	return r.size()
}

// assertRecord panics unless the record at off checks (CRC and lengths,
// within its segment) and, when key is not nil, has that key. what names
// the operation for the message. Only called when invariants are enabled.
func (e *Engine) assertRecord(what string, off int64, key []byte) {
	if off < 0 || off >= int64(len(e.mem)) {
		invariants.Failf("memory: %s: offset %d outside the %d-byte arena", what, off, len(e.mem))
	}
	r := recAt(e.mem, off)
	if !r.valid(int(e.segSize - off%e.segSize)) {
		invariants.Failf("memory: %s: the record at offset %d (segment %d) does not check (CRC or length)", what, off, off/e.segSize)
	}
	if key != nil && !bytes.Equal(r.key(), key) {
		invariants.Failf("memory: %s: the record at offset %d has key %q, want %q", what, off, string(r.key()), string(key))
	}
}

// assertPublished panics unless a lookup of key in sh (write-locked) finds
// exactly the entry ent, whose record of size bytes was just published.
func (e *Engine) assertPublished(sh *shard, key []byte, ent uint64, size int64) {
	if slot, got := sh.find(e.mem, entryTag(ent), key); slot < 0 || got != ent {
		invariants.Failf("memory: store of %q: a lookup finds entry %#x (slot %d), want the published %#x", string(key), got, slot, ent)
	}
	e.assertRecord("store", entryOff(ent), key)
	if got := recAt(e.mem, entryOff(ent)).size(); got != size {
		invariants.Failf("memory: store of %q: record of %d bytes, allocated %d", string(key), got, size)
	}
}

// assertCounts panics if sh's counters or segment id's live bytes went
// negative (an item dropped twice, or never counted).
func (e *Engine) assertCounts(what string, sh *shard, id int64) {
	if l := e.segs[id].live.Load(); sh.bytes < 0 || sh.n < 0 || l < 0 {
		invariants.Failf("memory: %s: negative count: shard bytes %d, entries %d, segment %d live %d", what, sh.bytes, sh.n, id, l)
	}
}
