package memory

import (
	"runtime"
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

// sweepChunk is how many index slots the sweep probes per hold of a
// shard's lock: short holds, so that a request for that shard never waits
// long behind the sweep (nor behind a sweep whose thread the OS
// descheduled while it held the lock). After each hold the sweep yields
// its processor (runtime.Gosched): with one P (-t 1, or a one-core
// affinity mask) a request woken by the network otherwise waits for the
// whole sweep, or for the scheduler's 10 ms preemption. It also yields
// its thread's core (yieldThread, sched_yield on Linux): with more Ps
// than cores (the persistent engine runs 3 more Ps than -t's, so 4 on a
// one-core mask) a request's goroutine runs on another P, whose thread
// waits for the kernel to take the core from the sweep's thread, which
// Gosched does not give up: a whole time slice, 3-6 ms behind each
// second's sweep of a 2M-item index (BENCHMARKS.md, "Round six").
const sweepChunk = 128

// osYield is yieldThread, a variable so that a test can count the calls.
var osYield = yieldThread

// sweepYield yields the processor, and its thread's core, between two of
// the sweep's holds.
func (e *Engine) sweepYield() {
	if e.yieldHook != nil {
		e.yieldHook()
		return
	}
	osYield()
	runtime.Gosched()
}

// sweep visits up to slots index slots of every shard, continuing where the
// previous sweep stopped, and removes entries whose items are expired or
// flushed, so their bytes count as dead (reclaim skips their records, and
// frees a segment left with no live bytes without walking it) and
// curr_items stays accurate. It returns how many
// entries it removed. Each shard's lock is held for at most sweepChunk
// probes at a time.
func (e *Engine) sweep(slots int) int {
	e.lc.crawlerStarts.Add(1)
	e.lc.crawlerRunning.Add(1)
	defer e.lc.crawlerRunning.Add(-1)
	removed := 0
	for i := range e.shards {
		sh := &e.shards[i]
		limit := slots // at most the table's size: each slot once
		for done := 0; done < limit; done += sweepChunk {
			m, size, ok := e.sweepShard(sh, min(sweepChunk, limit-done))
			removed += m
			if !ok {
				return removed
			}
			e.sweepYield()
			limit = min(limit, size)
		}
	}
	return removed
}

// sweepShard probes up to n slots of sh under its lock, from where the
// last probe stopped; it returns how many entries it removed, the size of
// the shard's table, and false when the engine is closed.
func (e *Engine) sweepShard(sh *shard, n int) (removed, size int, ok bool) {
	now := e.clock.Now()
	fm := e.flush.Load()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e.closed.Load() {
		return 0, 0, false
	}
	size = len(sh.tab)
	n = min(n, size)
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
	return removed, size, true
}
