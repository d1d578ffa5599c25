package persistent

import (
	"bytes"
	"context"
)

// Reclaiming the sweep's space. A deletion is a tombstone: the dead
// item's bytes stay on disk until a compaction meets the two. Pebble
// compacts when its levels grow, not when they fill with tombstones, so
// after a mass expiry the store kept its size (in a measurement, 9 MiB
// of 200k expired items stayed for minutes). When a sweep pass removed
// at least reclaimShare of what it looked at and at least reclaimMin
// items, the sweep waits for its deletions to be committed and compacts
// the key range between the first and the last dead key it removed in
// the pass; that rewrites the live items of that range once (their bytes
// are what it costs) and gives the dead ones' space back.
const (
	reclaimShare   = 4 // a quarter
	reclaimMin     = 10000
	reclaimRoundsN = 64 // rounds waited for the deletions, at most
)

// rangeCompacter is a kv that can compact a key range. pebbleKV is one.
type rangeCompacter interface {
	// CompactRange compacts the keys in [lower, upper] on every level,
	// until ctx is done.
	CompactRange(ctx context.Context, lower, upper []byte) error
}

// CompactRange implements rangeCompacter.
func (p *pebbleKV) CompactRange(ctx context.Context, lower, upper []byte) error {
	if err := p.Failed(); err != nil {
		return err
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.db == nil {
		return errNoStore
	}
	if p.broken != nil {
		return p.broken
	}
	return p.await(p.dead.Load(), func() error { return p.db.Compact(ctx, lower, upper, false) })
}

// tableSizer is a kv that reports the size of its tables alone (not its
// write-ahead logs, which Pebble keeps for reuse). pebbleKV is one.
type tableSizer interface {
	TableBytes() uint64
}

// TableBytes implements tableSizer: live, obsolete and zombie tables
// (after a failure, as the metrics last gave them).
func (p *pebbleKV) TableBytes() uint64 {
	p.DiskUsage()
	return p.tables.Load()
}

// passDead is what a sweep pass removed: how many, and the span of
// their keys (store keys). Sweep goroutine only.
type passDead struct {
	n           int
	first, last []byte
}

// note records the removal of the item under key (a client key).
func (d *passDead) note(key []byte) {
	d.n++
	if len(d.first) == 0 || bytes.Compare(key, d.first[1:]) < 0 {
		d.first = append(append(d.first[:0], prefixData), key...)
	}
	if len(d.last) == 0 || bytes.Compare(key, d.last[1:]) > 0 {
		d.last = append(append(d.last[:0], prefixData), key...)
	}
}

// reclaim runs at the end of a sweep pass that looked at scanned items:
// if the pass removed enough, it waits for the deletions to reach the
// disk and compacts their span. It returns whether it compacted.
func (e *Engine) reclaim(scanned int64) bool {
	d := &e.sweepDead
	defer func() { d.n = 0; d.first = d.first[:0:0]; d.last = d.last[:0:0] }()
	if d.n < reclaimMin || int64(d.n)*reclaimShare < scanned {
		return false
	}
	for i := 0; i < reclaimRoundsN && e.q.bytes.Load() > 0; i++ {
		if !e.waitRound() {
			return false
		}
	}
	c, ok := e.kv.(rangeCompacter)
	if !ok {
		return false
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-e.stopBG:
			cancel()
		case <-ctx.Done():
		}
	}()
	e.kvmu.RLock()
	defer e.kvmu.RUnlock()
	if e.closed.Load() {
		return false
	}
	if err := c.CompactRange(ctx, d.first, append(d.last, 0)); err != nil {
		if ctx.Err() == nil {
			e.st.bgErrors.Add(1)
			e.log.Warn("persistent: compacting the swept range failed; its space is reclaimed by later compactions", "err", err.Error())
		}
		return false
	}
	e.st.sweepCompactions.Add(1)
	return true
}
