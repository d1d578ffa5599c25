package persistent

import (
	"bytes"
	"runtime"
	"sync"
	"time"

	"github.com/mnemo-cache/mnemo/engine"
)

// Range deletions for runs of dead keys.
//
// A mass expiry leaves most of the store dead, and dead keys then come in
// runs in key order (keys of one prefix written together expire
// together). A point deletion per key cost the write-behind queue a map
// entry, the flusher a batch entry, a WAL record and a memtable node, and
// the compactions a tombstone to merge with its item, per key: for 2M
// expired items, 2M of each on the core the readers need. A run of at
// least minRangeRun dead keys (adjacent among the keys a sweep step read:
// no live key between them) is deleted instead with one range deletion
// from its first key up to the next key the step read (or just past its
// last key), which covers exactly the run's keys and any key written into
// the span since; the ranges of a run that spans several steps abut, so
// Pebble sees one span and can drop the tables under it whole.
//
// That last part is why the sweep cannot commit a range itself: a key
// written into the span after the sweep's scan would be erased. The sweep
// queues the range (enqueueRange) and the flusher, the only writer of
// items to the store, decides at commit time, with nothing else writing:
//
//   - Writes in the same batch: the range deletions come first in the
//     batch, and Pebble gives a batch's entries increasing sequence
//     numbers, so a set later in the batch is newer than the range
//     deletion and survives it. Writes queued after the round commit after
//     it and survive too.
//   - Writes committed by earlier rounds, after the sweep's scan began:
//     the flusher counts the commits that hold item writes (setGen, odd
//     while one is under way). The sweep reads the count before its scan;
//     if it is unchanged (and was even) at commit time, no item was
//     written since the scan's snapshot and the range is committed as it
//     is. Otherwise the flusher reads the span again (one scan) and
//     commits range deletions only for the runs of records still dead
//     there, splitting at every live one (persistent_sweep_range_checks,
//     persistent_sweep_range_kept).
//
// A dead record stays dead (an expiry time or a flush mark in the past
// stays in the past), so a deletion of one never changes what a reader
// sees: the stripes' counters (wseq) do not move for range deletions. A
// failed commit drops its ranges; the next pass finds their keys again.
// Shorter runs are deleted point by point through the stripes, as before.
const minRangeRun = 32

// keyAfter returns, in a new slice, the least key greater than k (k and
// a zero byte): a range that ends there covers k and nothing after it.
func keyAfter(k []byte) []byte {
	return append(append(make([]byte, 0, len(k)+1), k...), 0)
}

// sweptRange is a span of dead keys the sweep found: store keys in [lo,
// hi).
type sweptRange struct {
	lo, hi []byte
	n      int    // dead items the sweep found in it
	gen    uint64 // queue.setGen when the sweep's scan began
}

// rangeQueue holds the ranges queued for the next round.
type rangeQueue struct {
	mu   sync.Mutex
	list []sweptRange
	// Flusher only: the ranges of the round being committed.
	taken []sweptRange
}

// rangeBytes is what a queued range counts in the queue's bytes.
func rangeBytes(r *sweptRange) int64 {
	return int64(len(r.lo) + len(r.hi) + entryOverhead)
}

// enqueueRange queues the deletion of the span r for the next round.
func (q *queue) enqueueRange(r sweptRange) {
	q.ranges.mu.Lock()
	q.ranges.list = append(q.ranges.list, r)
	q.ranges.mu.Unlock()
	q.items.Add(1)
	q.bytes.Add(rangeBytes(&r))
	if q.firstPending.Load() == 0 {
		q.firstPending.CompareAndSwap(0, time.Now().UnixNano())
	}
}

// takeRanges moves the queued ranges to the round being committed and
// returns how many it took. Flusher only.
func (q *queue) takeRanges() int {
	q.ranges.mu.Lock()
	q.ranges.taken, q.ranges.list = q.ranges.list, q.ranges.taken[:0]
	q.ranges.mu.Unlock()
	return len(q.ranges.taken)
}

// endRanges ends the round's ranges: they leave the queue's counts,
// committed or (after a failed commit) dropped. Flusher only.
func (q *queue) endRanges() {
	var b int64
	for i := range q.ranges.taken {
		b += rangeBytes(&q.ranges.taken[i])
	}
	q.items.Add(-int64(len(q.ranges.taken)))
	q.bytes.Add(-b)
	clear(q.ranges.taken)
	q.ranges.taken = q.ranges.taken[:0]
}

// appendRanges appends the round's range deletions to ops (which must be
// the start of the batch: see above). Flusher only, before the commit's
// setGen moves; the caller holds e.kvmu for reading.
func (q *queue) appendRanges(ops []kvOp) []kvOp {
	gen := q.setGen.Load()
	for i := range q.ranges.taken {
		r := &q.ranges.taken[i]
		if r.gen == gen && gen%2 == 0 {
			ops = append(ops, kvOp{Key: r.lo, End: r.hi, Delete: true})
			q.e.st.sweepRanges.Add(1)
			continue
		}
		ops = q.checkRange(ops, r)
	}
	return ops
}

// checkRange reads the span of r again and appends a range deletion for
// each run of records still dead in it. Items were committed since the
// sweep read it; the store holds everything committed so far, as only
// the flusher writes items.
func (q *queue) checkRange(ops []kvOp, r *sweptRange) []kvOp {
	e := q.e
	e.st.sweepRangeChecks.Add(1)
	var (
		m        engine.Meta
		lo, last []byte // the run of dead records being read; last is reused
		kept     int
		read     int
	)
	now := e.clock.Now()
	emit := func(end []byte) {
		if lo != nil {
			if end == nil {
				end = keyAfter(last)
			}
			ops = append(ops, kvOp{Key: lo, End: end, Delete: true})
			e.st.sweepRanges.Add(1)
			lo = nil
		}
	}
	err := e.kv.Scan(r.lo, r.hi, func(k, v []byte) bool {
		if read++; read%yieldEvery == 0 {
			runtime.Gosched() // as the sweep does (pace.go)
		}
		if recordMeta(v, &m) != nil || !e.alive(&m, now) {
			if lo == nil {
				lo = bytes.Clone(k)
			}
			last = append(last[:0], k...)
			return true
		}
		kept++
		emit(nil)
		return true
	})
	if err != nil {
		// A damaged or unreadable span: nothing of it is deleted now;
		// the sweep's next pass finds its dead keys again.
		return ops
	}
	emit(r.hi) // the run reaches the end of the span
	e.st.sweepRangeKept.Add(uint64(kept))
	return ops
}
