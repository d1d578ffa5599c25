package memory

import (
	"time"

	"golang.org/x/sys/unix"
)

func unixMunmap(b []byte) error {
	if b == nil {
		return nil
	}
	return unix.Munmap(b)
}

// sweepLoop runs sweep every interval until Close.
func (e *Engine) sweepLoop(interval time.Duration, slots int) {
	defer close(e.sweepDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-e.stopSweep:
			return
		case <-t.C:
			e.sweep(slots)
			if e.compactAt > 0 {
				// Segments the sweep (or deletes) emptied give their
				// pages back without waiting for a store to need room.
				e.amu.Lock()
				if !e.closed.Load() {
					e.freeDeadLocked()
				}
				e.amu.Unlock()
			}
		}
	}
}

// sweep visits up to slots index slots of every shard, continuing where the
// previous sweep stopped, and removes entries whose items are expired or
// flushed, so their bytes count as dead (reclaim skips their records, and
// frees a segment left with no live bytes without walking it) and
// curr_items stays accurate. It returns how many
// entries it removed. Each shard is locked once per call, for at most
// slots probes.
func (e *Engine) sweep(slots int) int {
	e.lc.crawlerStarts.Add(1)
	e.lc.crawlerRunning.Add(1)
	defer e.lc.crawlerRunning.Add(-1)
	removed := 0
	for i := range e.shards {
		sh := &e.shards[i]
		now := e.clock.Now()
		fm := e.flush.Load()
		sh.mu.Lock()
		if e.closed.Load() {
			sh.mu.Unlock()
			return removed
		}
		n := min(slots, len(sh.tab))
		pos := int(sh.sweepPos)
		if pos >= len(sh.tab) {
			pos = 0
		}
		for k := 0; k < n; k++ {
			ent := sh.tab[pos]
			if ent != 0 {
				sh.crawlerChecked++
				r := recAt(e.mem, entryOff(ent))
				if e.dead(r, now, fm) {
					e.dropLocked(sh, pos, r, dropSweep, now, fm)
					removed++
					// The backward shift may have moved another entry
					// into pos: look at it again.
					continue
				}
			}
			if pos++; pos == len(sh.tab) {
				pos = 0
			}
		}
		sh.sweepPos = uint64(pos)
		sh.mu.Unlock()
	}
	return removed
}
