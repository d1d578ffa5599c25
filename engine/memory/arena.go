package memory

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/mnemo-cache/mnemo/engine"
	"github.com/mnemo-cache/mnemo/internal/invariants"
)

// Segment states, guarded by Engine.amu.
const (
	segFree    uint8 = iota // on the free list (or the reserve)
	segHead                 // a stripe's head: records are appended to it
	segClosed               // full; in the FIFO, waiting for reclaim
	segRetired              // beyond the memory limit; pages released
)

// segment is the Go-side bookkeeping of one arena segment.
type segment struct {
	live    atomic.Int64 // bytes of records that the index points to
	writers atomic.Int32 // allocations not yet published or abandoned
	used    int64        // bump offset; owned by the stripe while head, else by amu
	opened  int64        // clock time when it became a head
	state   uint8
	retire  bool // release instead of reusing when next freed
	// resident: the segment has been written since it was mapped or its
	// pages were last given back (its pages may be resident).
	resident bool
}

// stripe is one write head. Writers pick a stripe by key hash (stripeOf),
// so concurrent stores of different keys mostly append to different
// segments.
type stripe struct {
	mu   sync.Mutex
	head int32
	_    [52]byte
}

// mapArena reserves size bytes of address space without committing
// memory; commit makes ranges usable.
func mapArena(size int64) ([]byte, error) {
	return unix.Mmap(-1, 0, int(size), unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANON|mapNoReserve)
}

func (e *Engine) commitSeg(id int32) error {
	b := e.mem[int64(id)*e.segSize : int64(id+1)*e.segSize]
	return unix.Mprotect(b, unix.PROT_READ|unix.PROT_WRITE)
}

// releaseSeg gives a segment's pages back to the kernel and makes the range
// inaccessible again.
func (e *Engine) releaseSeg(id int32) {
	b := e.mem[int64(id)*e.segSize : int64(id+1)*e.segSize]
	_ = unix.Madvise(b, unix.MADV_DONTNEED)
	_ = unix.Mprotect(b, unix.PROT_NONE)
	e.segs[id].resident = false
}

// dropPages gives the pages of a free segment back to the kernel and
// keeps the range usable: the next write faults in zeroed pages. In a
// restartable file the pages are punched out of the file (MADV_REMOVE,
// which frees tmpfs memory; MADV_DONTNEED would only unmap them): the
// segment reads as zeros, an empty chain, which is what a free segment
// may hold (every record in it is dead already).
func (e *Engine) dropPages(id int32) {
	b := e.mem[int64(id)*e.segSize : int64(id+1)*e.segSize]
	if e.file == nil || punchPages(b) != nil {
		_ = unix.Madvise(b, unix.MADV_DONTNEED)
	}
	e.segs[id].resident = false
	e.lc.released.Add(1)
}

// alloc reserves size bytes (a multiple of recAlign, at most segSize) for
// a new record and returns its arena offset. The caller then holds a writer
// reference on the segment and must call release(off) once the record is
// published or abandoned; until then the segment is not reclaimed. alloc
// must not be called with a shard lock held: it may reclaim, which takes
// shard locks. With a restartable file the allocation is framed for a
// record of a klen-byte key, a vlen-byte value, exptime field exp and
// flags (allocFrame), still under the stripe lock.
func (e *Engine) alloc(size int64, si int, klen, vlen int, exp, flags uint32) (int64, error) {
	st := &e.stripes[si]
	st.mu.Lock()
	for {
		if e.closed.Load() {
			st.mu.Unlock()
			return 0, engine.ErrClosed
		}
		if h := st.head; h >= 0 {
			s := &e.segs[h]
			if s.used+size <= e.segSize {
				off := int64(h)*e.segSize + s.used
				s.used += size
				s.writers.Add(1)
				if e.file != nil {
					allocFrame(e.mem, off, size, e.segSize, klen, vlen, exp, flags)
				}
				st.mu.Unlock()
				return off, nil
			}
		}
		e.amu.Lock()
		if st.head >= 0 {
			e.closeLocked(st.head)
			st.head = -1
		}
		id, err := e.takeSegmentLocked(size)
		e.amu.Unlock()
		if err != nil {
			st.mu.Unlock()
			return 0, err
		}
		st.head = id
	}
}

// release drops the writer reference alloc took.
func (e *Engine) release(off int64) {
	n := e.segs[off/e.segSize].writers.Add(-1)
	if invariants.Enabled && n < 0 {
		invariants.Failf("memory: segment %d released more often than allocated from", off/e.segSize)
	}
}

func (e *Engine) closeLocked(id int32) {
	s := &e.segs[id]
	s.state = segClosed
	e.fifo = append(e.fifo, id)
}

// The free list is a stack ordered cold to warm: segments whose pages
// were never written or were given back at the bottom, the warmFree
// resident ones on top, so that a segment taken from it is a resident
// one when there is one.

// popFreeLocked takes a free segment (not the reserve), a resident one
// first, or returns -1.
func (e *Engine) popFreeLocked() int32 {
	n := len(e.free)
	if n == 0 {
		return -1
	}
	id := e.free[n-1]
	e.free = e.free[:n-1]
	if e.warmFree > 0 {
		e.warmFree--
	}
	return id
}

// pushFreeLocked puts an emptied segment on the free list. With
// compaction on, at most keepWarm free segments keep their pages; the
// pages of any more are given back to the kernel (dropPages), so the
// arena's resident memory follows its live data down as well as up.
func (e *Engine) pushFreeLocked(id int32) {
	if e.segs[id].resident && e.compactAt > 0 && e.warmFree >= e.keepWarm {
		e.dropPages(id)
	}
	if !e.segs[id].resident {
		e.free = slices.Insert(e.free, len(e.free)-e.warmFree, id)
		return
	}
	e.free = append(e.free, id)
	e.warmFree++
}

// sortFreeLocked restores the free list's order (cold segments first,
// resident ones on top) and its warmFree count after the list was
// rebuilt.
func (e *Engine) sortFreeLocked() {
	e.warmFree = 0
	slices.SortStableFunc(e.free, func(a, b int32) int {
		ra, rb := e.segs[a].resident, e.segs[b].resident
		switch {
		case ra == rb:
			return 0
		case rb:
			return -1
		}
		return 1
	})
	for _, id := range e.free {
		if e.segs[id].resident {
			e.warmFree++
		}
	}
}

func (e *Engine) makeHeadLocked(id int32) int32 {
	s := &e.segs[id]
	s.state = segHead
	s.used = 0
	s.opened = e.clock.Now()
	s.resident = true
	e.startChainLocked(id)
	return id
}

// startChainLocked empties a reused segment's chain in the restartable
// file and gives it a new generation (startChain); nothing without a file.
func (e *Engine) startChainLocked(id int32) {
	if e.file != nil {
		startChain(e.mem, e.file.tab(), int(id), e.segSize, e.gen.Add(1))
	}
}

// takeSegmentLocked returns an empty or partly filled segment with at
// least size bytes of room, made a head. With compaction on (the
// default) it prefers, in order: a free segment whose pages are
// resident; a closed segment with no live record (freed without a scan);
// compacting the closed segment with the fewest live bytes, if they are
// at most compactAt, into the spare, which becomes the head (this costs
// no segment: the emptied one becomes the spare); and only then a free
// segment whose pages are not resident yet, so the arena's resident
// memory grows only when its live data does. Without free segments it
// reclaims one (evicting, or with -M compacting). Called with amu held.
func (e *Engine) takeSegmentLocked(size int64) (int32, error) {
	for attempt := 0; ; attempt++ {
		if e.compactAt > 0 {
			if e.warmFree == 0 {
				e.freeDeadLocked()
			}
			if e.warmFree > 0 {
				return e.makeHeadLocked(e.popFreeLocked()), nil
			}
			if e.reserve >= 0 {
				if vi := e.compactVictimLocked(size); vi >= 0 {
					dest := e.reserve
					e.reserve = -1
					e.lc.compactions.Add(1)
					e.reclaimLocked(vi, dest, size, true)
					e.segs[dest].state = segHead
					if invariants.Enabled {
						e.afterReclaimLocked()
					}
					return dest, nil
				}
			}
		}
		if id := e.popFreeLocked(); id >= 0 {
			return e.makeHeadLocked(id), nil
		}
		if attempt > 2*len(e.segs) {
			return -1, engine.ErrNoMemory
		}
		// A closed segment without live records is free without a scan.
		if vi := e.deadVictimLocked(); vi >= 0 {
			e.freeVictimLocked(vi)
			continue
		}
		if e.reserve < 0 {
			if e.noEvict || len(e.fifo) == 0 {
				return -1, engine.ErrNoMemory
			}
			// Evict the oldest segment outright to rebuild the reserve.
			e.lc.directReclaims.Add(1)
			e.reclaimLocked(0, -1, size, false)
			if invariants.Enabled {
				e.afterReclaimLocked()
			}
			continue
		}
		vi := e.victimLocked(size)
		if vi < 0 && e.noEvict && e.deadMaybeLocked() {
			// Live byte counts include items that expired or were flushed
			// but are still indexed: remove them all, then look again.
			e.sweep(math.MaxInt)
			continue
		}
		if vi < 0 {
			return -1, engine.ErrNoMemory
		}
		dest := e.reserve
		e.reserve = -1
		e.lc.directReclaims.Add(1)
		e.reclaimLocked(vi, dest, size, false)
		d := &e.segs[dest]
		if d.used+size <= e.segSize {
			d.state = segHead
			if invariants.Enabled {
				e.afterReclaimLocked()
			}
			return dest, nil
		}
		e.closeLocked(dest)
		if invariants.Enabled {
			e.afterReclaimLocked()
		}
	}
}

// deadMaybeLocked reports whether items may have died (the clock moved or
// a flush happened) since the last full sweep on this path.
func (e *Engine) deadMaybeLocked() bool {
	now, fm := e.clock.Now(), e.flush.Load()
	if now == e.fullSweepNow && fm == e.fullSweepFlush {
		return false
	}
	e.fullSweepNow, e.fullSweepFlush = now, fm
	return true
}

// deadVictimLocked returns the FIFO index of a closed segment with no live
// records and no writers, or -1.
func (e *Engine) deadVictimLocked() int {
	for i, id := range e.fifo {
		s := &e.segs[id]
		if s.live.Load() == 0 && s.writers.Load() == 0 {
			return i
		}
	}
	return -1
}

// fewestLiveLocked returns the FIFO index of the closed segment without
// writers that has the fewest live bytes, and those bytes, or -1.
func (e *Engine) fewestLiveLocked() (int, int64) {
	best, bestLive := -1, int64(0)
	for i, id := range e.fifo {
		s := &e.segs[id]
		if s.writers.Load() != 0 {
			continue
		}
		if l := s.live.Load(); best < 0 || l < bestLive {
			best, bestLive = i, l
		}
	}
	return best, bestLive
}

// compactVictimLocked returns the FIFO index of the segment to compact
// before the arena takes a cold segment: the one with the fewest live
// bytes, if they are at most compactAt and leave room for size more
// bytes in one segment; or -1.
func (e *Engine) compactVictimLocked(size int64) int {
	best, live := e.fewestLiveLocked()
	if best < 0 || live > e.compactAt || live+size > e.segSize {
		return -1
	}
	return best
}

// freeDeadLocked frees every closed segment that has no live record and
// no writer (beyond the few kept warm, their pages go back to the
// kernel, see pushFreeLocked). Called with amu held.
func (e *Engine) freeDeadLocked() {
	kept := e.fifo[:0]
	for _, id := range e.fifo {
		s := &e.segs[id]
		if s.live.Load() == 0 && s.writers.Load() == 0 {
			// finishFreeLocked touches the free list, not the FIFO.
			e.finishFreeLocked(id)
			continue
		}
		kept = append(kept, id)
	}
	e.fifo = kept
}

// victimLocked picks the segment to reclaim: the oldest one, or with -M
// the one with the fewest live bytes if its live records and size fit in
// one segment. It returns a FIFO index or -1.
func (e *Engine) victimLocked(size int64) int {
	if len(e.fifo) == 0 {
		return -1
	}
	if !e.noEvict {
		return 0
	}
	best, bestLive := e.fewestLiveLocked()
	if best < 0 || bestLive+size > e.segSize {
		return -1
	}
	return best
}

// removeFIFOLocked removes and returns the segment at FIFO index i.
func (e *Engine) removeFIFOLocked(i int) int32 {
	id := e.fifo[i]
	copy(e.fifo[i:], e.fifo[i+1:])
	e.fifo = e.fifo[:len(e.fifo)-1]
	return id
}

// freeVictimLocked frees the dead closed segment at FIFO index i.
func (e *Engine) freeVictimLocked(i int) {
	id := e.removeFIFOLocked(i)
	e.finishFreeLocked(id)
}

// finishFreeLocked makes an emptied segment the reserve, a free segment,
// or retires it when it lies beyond the memory limit.
func (e *Engine) finishFreeLocked(id int32) {
	s := &e.segs[id]
	s.used = 0
	s.state = segFree
	switch {
	case s.retire:
		s.state = segRetired
		s.retire = false
		e.releaseSeg(id)
	case e.reserve < 0:
		e.reserve = id
	default:
		e.pushFreeLocked(id)
	}
}

// reclaimLocked empties the closed segment at FIFO index vi. Each record
// that the index still points to is dropped when expired or flushed,
// otherwise moved to dest (when dest >= 0) if it was read since it was
// written (its frequency counter is then decremented) or if -M forbids
// eviction, and evicted otherwise. Moves of read records leave room for
// need bytes in dest; with -M every live record moves while it fits.
// compact moves every live record (the caller checked they fit) and
// keeps its frequency counter: a compaction, not a pass of the FIFO.
// Called with amu held and no shard lock; it takes each record's shard
// lock in turn.
func (e *Engine) reclaimLocked(vi int, dest int32, need int64, compact bool) {
	id := e.removeFIFOLocked(vi)
	v := &e.segs[id]
	for v.writers.Load() != 0 {
		runtime.Gosched()
	}
	var d *segment
	if dest >= 0 {
		d = &e.segs[dest]
		d.used = 0
		d.opened = e.clock.Now()
		d.resident = true
		e.startChainLocked(dest)
	}
	now := e.clock.Now()
	fm := e.flush.Load()
	base := int64(id) * e.segSize
	for p := int64(0); p < v.used && v.live.Load() > 0; {
		off := base + p
		r := recAt(e.mem, off)
		if invariants.Enabled && !r.valid(int(v.used-p)) {
			// Every allocation holds a complete record (Update writes
			// it before publishing or abandoning it): the walk relies
			// on it.
			invariants.Failf("memory: reclaim of segment %d: the record at %d of %d used bytes does not check", id, p, v.used)
		}
		size := r.size()
		p += size
		h := e.hash(r.key())
		sh := e.shardOf(h)
		ent := makeEntry(h&tagMask, off)
		sh.mu.Lock()
		slot := sh.findEntry(ent)
		if slot < 0 {
			sh.mu.Unlock()
			continue
		}
		bits := infoBits(r.info())
		fetched := bits&engine.BitFetched != 0
		if e.dead(r, now, fm) {
			if e.file != nil {
				r.setState(stDead)
			}
			sh.remove(slot)
			sh.bytes -= size
			v.live.Add(-size)
			if invariants.Enabled {
				e.assertCounts("reclaim expired", sh, int64(id))
			}
			sh.reclaimed++
			if !fetched {
				sh.expiredUnfetched++
			}
			sh.mu.Unlock()
			continue
		}
		freq := bits >> freqShift
		keep := d != nil && d.used+size <= e.segSize &&
			(e.noEvict || compact || (freq > 0 && d.used+size+need <= e.segSize))
		if keep {
			if compact {
				// A compaction moves; it does not age the record.
				freq = 0
			}
			doff := int64(dest)*e.segSize + d.used
			if e.file != nil {
				// Framed, copied pending, then live before the source
				// goes dead (see the package documentation).
				allocFrame(e.mem, doff, size, e.segSize, r.klen(), r.vlen(), uint32(r.exptime()), r.flags())
				nb := bits
				if freq > 0 {
					nb = bits&^freqMask | (freq-1)<<freqShift
				}
				moveRecord(e.mem, doff, off, size, nb)
				publishRecord(e.mem, doff, off, true)
			} else {
				copy(e.mem[doff:doff+size], e.mem[off:off+size])
				if freq > 0 {
					recAt(e.mem, doff).setBits(bits&^freqMask | (freq-1)<<freqShift)
				}
			}
			d.used += size
			d.live.Add(size)
			v.live.Add(-size)
			sh.tab[slot] = makeEntry(h&tagMask, doff)
			if invariants.Enabled {
				e.assertRecord("reclaim move", doff, r.key())
			}
			if compact {
				sh.compacted++
			} else {
				sh.reinserted++
			}
			sh.mu.Unlock()
			continue
		}
		if e.file != nil {
			r.setState(stDead)
		}
		sh.remove(slot)
		sh.bytes -= size
		v.live.Add(-size)
		if invariants.Enabled {
			e.assertCounts("evict", sh, int64(id))
		}
		sh.evictions++
		if r.exptime() != 0 {
			sh.evictedNonzero++
		}
		e.lc.evictedTime.Store(now - int64(r.atime()))
		if fn := e.onEvict.Load(); fn != nil {
			var m engine.Meta
			r.meta(&m)
			(*fn)(r.key(), &m, r.vlen())
		}
		if !fetched {
			sh.evictedUnfetched++
		}
		if freq > 0 {
			sh.evictedActive++
		}
		sh.mu.Unlock()
	}
	if l := v.live.Load(); l != 0 {
		// Cannot happen: every live record was moved or dropped above.
		if invariants.Enabled {
			invariants.Failf("memory: segment %d still has %d live bytes after reclaim", id, l)
		}
		e.log.Error("memory: segment still has live bytes after reclaim", "segment", id, "live", l)
		v.live.Store(0)
	}
	e.finishFreeLocked(id)
}

// setLimitLocked makes the first n segments usable and marks the rest for
// retirement. Called with amu held.
func (e *Engine) setLimitLocked(n int) error {
	if n > len(e.segs) {
		return fmt.Errorf("memory: limit of %d segments exceeds the %d reserved at start (config reserve=)", n, len(e.segs))
	}
	for id := int32(0); id < int32(len(e.segs)); id++ {
		s := &e.segs[id]
		if int(id) < n {
			s.retire = false
			if s.state == segRetired {
				if err := e.commitSeg(id); err != nil {
					return fmt.Errorf("memory: mprotect: %w", err)
				}
				s.state = segFree
				e.free = append(e.free, id)
			}
			continue
		}
		if s.state == segRetired {
			continue
		}
		s.retire = true
	}
	// Free segments beyond the limit retire now.
	kept := e.free[:0]
	for _, id := range e.free {
		if e.segs[id].retire {
			e.segs[id].retire = false
			e.segs[id].state = segRetired
			e.releaseSeg(id)
			continue
		}
		kept = append(kept, id)
	}
	e.free = kept
	e.sortFreeLocked()
	if e.reserve >= 0 && e.segs[e.reserve].retire {
		id := e.reserve
		e.reserve = -1
		e.segs[id].retire = false
		e.segs[id].state = segRetired
		e.releaseSeg(id)
	}
	if e.reserve < 0 {
		e.reserve = e.popFreeLocked()
	}
	e.limitSegs = n
	// Closed segments beyond the limit are emptied now (evicting, even with
	// -M: the operator asked for less memory).
	for i := 0; i < len(e.fifo); {
		if !e.segs[e.fifo[i]].retire {
			i++
			continue
		}
		e.reclaimLocked(i, -1, 0, false)
	}
	if e.reserve < 0 {
		e.reserve = e.popFreeLocked()
	}
	if invariants.Enabled {
		e.checkLocked()
	}
	return nil
}

// segCountsLocked counts the usable (not retired) segments, and the free
// ones among them (the free list and the spare).
func (e *Engine) segCountsLocked() (total, free int) {
	for i := range e.segs {
		switch e.segs[i].state {
		case segRetired:
		case segFree:
			total++
			free++
		default:
			total++
		}
	}
	return total, free
}
