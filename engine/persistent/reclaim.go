package persistent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
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
	return p.awaitOpen(func() error {
		p.ev.manual.Add(1)
		defer p.ev.manual.Add(-1)
		start := time.Now()
		err := p.db.Compact(ctx, lower, upper, false)
		if p.log.Enabled(ctx, slog.LevelInfo) {
			p.log.Info("persistent: manual compaction", "lower", fmt.Sprintf("%q", lower), "upper", fmt.Sprintf("%q", upper),
				"duration", time.Since(start).Round(time.Microsecond), "err", err)
		}
		return err
	})
}

// awaitOpen runs fn through await while the store is open, not failed
// and not broken (under p.mu's read lock), and returns its error.
func (p *pebbleKV) awaitOpen(fn func() error) error {
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
	return p.await(p.dead.Load(), fn)
}

// settleWait bounds how long reclaim waits for Pebble's delete-only
// compactions before it compacts what is left of the span.
const settleWait = 2 * time.Second

// flushSettler is a kv that can flush its memtable and wait for its
// background compactions to settle. pebbleKV is one.
type flushSettler interface {
	// FlushSettle flushes the memtable, then waits until no table's
	// statistics are pending and no compaction runs (at most max, or
	// until ctx is done).
	FlushSettle(ctx context.Context, max time.Duration) error
}

// FlushSettle implements flushSettler. After a flush of range deletions
// Pebble reads the new table's statistics and, where a range deletion
// covers whole tables of the levels below, drops them without reading
// them (a delete-only compaction); a compaction of the span then has
// only the rest to read and rewrite.
func (p *pebbleKV) FlushSettle(ctx context.Context, max time.Duration) error {
	return p.awaitOpen(func() error {
		if err := p.db.Flush(); err != nil {
			return err
		}
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		deadline := time.Now().Add(max)
		for quiet := 0; quiet < 2 && time.Now().Before(deadline); {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
			}
			m := p.db.Metrics()
			if m.Table.PendingStatsCollectionCount == 0 && m.Compact.NumInProgress == 0 {
				quiet++
			} else {
				quiet = 0
			}
		}
		return nil
	})
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

// passDead is what a sweep pass removed: how many, the span of their
// keys (store keys), and the chains of its range deletions. Sweep
// goroutine only.
type passDead struct {
	n           int
	first, last []byte
	chains      []rangeChain
	// minLiveExp is the least exptime of the items with one that the
	// pass found live (0: none).
	minLiveExp int64
	// carried is set when reclaim left the span's compaction to the end
	// of the next pass (first and last are then kept).
	carried bool
}

// noteLive records an item found live with exptime exp (0: none).
func (d *passDead) noteLive(exp int64) {
	if exp != 0 && (d.minLiveExp == 0 || exp < d.minLiveExp) {
		d.minLiveExp = exp
	}
}

// rangeChain is a span covered by range deletions of one pass that abut
// (each begins where the one before ended: a run of dead keys over
// several sweep steps): the span, how many ranges, and the setGen of the
// first one's scan.
type rangeChain struct {
	r     sweptRange
	parts int
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

// noteRange records the queued range deletion r of r.n items (the span
// compacted then reaches r.hi: one key more, at most).
func (d *passDead) noteRange(r sweptRange) {
	d.n += r.n - 2
	d.note(r.lo[1:])
	d.note(r.hi[1:])
	if k := len(d.chains) - 1; k >= 0 && bytes.Equal(d.chains[k].r.hi, r.lo) {
		d.chains[k].r.hi = r.hi
		d.chains[k].r.n += r.n
		d.chains[k].parts++
		return
	}
	c := rangeChain{r: sweptRange{lo: r.lo, hi: r.hi, n: r.n, gen: r.gen}, parts: 1}
	if k := len(d.chains) - 1; k >= 0 && d.chains[k].parts == 1 {
		// A chain of one range gets no cover: only the last chain is
		// kept until it grows (a pass over many short runs keeps one).
		d.chains[k] = c
		return
	}
	d.chains = append(d.chains, c)
}

// Covering range deletions. A chain's ranges are committed one by one,
// flushed to different tables, and Pebble drops a table without reading
// it (a delete-only compaction) only when one range deletion covers it
// whole: a table that straddles two of them is read and rewritten. After
// a mass expiry of 2M items, half of the tables were left to reclaim's
// compaction that way (a pass ends with its ranges split between two
// flushes), which took 30-60% of the core for half a second. So at the
// end of a pass the sweep queues one more range deletion per chain of
// two ranges or more, over the whole chain: it removes nothing new, but
// it lets Pebble drop every table under the chain (measured with Pebble
// alone, 2M items' range deletions over 8 flushes: 34.7 MiB of 64 MiB
// left for a compaction to read; after one covering range, nothing).
//
// A cover is as safe as the chain's ranges: it carries the setGen of the
// chain's first scan, so if any item was committed since, the flusher
// reads the span again and deletes only the runs of dead records there
// (sweeprange.go); with none committed, every key of the span was dead
// or deleted already.

// coverChains queues a covering range deletion over each chain of the
// pass that has more than one range, and returns how many it queued.
func (e *Engine) coverChains() int {
	n := 0
	for _, c := range e.sweepDead.chains {
		if c.parts < 2 || e.closed.Load() {
			continue
		}
		e.q.enqueueRange(sweptRange{lo: c.r.lo, hi: c.r.hi, gen: c.r.gen})
		e.st.sweepCovers.Add(1)
		n++
	}
	return n
}

// A mass expiry that begins while a pass is under way is removed by two
// passes: the rest of the one under way, then the next one, which finds
// dead the items the first read live before the expiry. Each pass's
// compaction rewrote the tables at the edges of its span (a table that
// straddles the point the first pass had reached when the items expired
// is covered whole by neither pass's ranges), and the first one, in the
// middle of the expiry, took 50-99% of the core for half a second. So
// when a pass found live items that have expired since (the next pass
// removes them), reclaim lets Pebble drop what the pass's ranges cover
// and leaves the compaction to the end of the next pass, whose ranges
// then cover the straddling table too, over both passes' spans. It
// defers once: the next pass compacts whatever it removed.

// reclaim runs at the end of a sweep pass that looked at scanned items:
// if the pass removed enough, it waits for the deletions to reach the
// disk and compacts their span (now, or with the next pass's: above).
// It returns whether it compacted.
func (e *Engine) reclaim(scanned int64) bool {
	d := &e.sweepDead
	carried, deferred := d.carried, false
	defer func() {
		if !deferred {
			d.first, d.last, d.carried = d.first[:0:0], d.last[:0:0], false
		}
		d.n, d.chains, d.minLiveExp = 0, d.chains[:0:0], 0
		e.sweepRanged = 0
	}()
	e.coverChains()
	if !carried && (d.n < reclaimMin || int64(d.n)*reclaimShare < scanned) {
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
	if f, ok := e.kv.(flushSettler); ok && e.sweepRanged > 0 {
		// The pass deleted runs with range deletions: let Pebble drop
		// the tables they cover whole before the compaction reads the
		// rest (an error here only leaves more to the compaction).
		f.FlushSettle(ctx, settleWait)
	}
	if !carried && d.minLiveExp != 0 && d.minLiveExp <= e.clock.Now() {
		deferred, d.carried = true, true
		e.st.sweepDeferrals.Add(1)
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

// tableSplitter is a kv that can tell where to split a key range into
// pieces of about a given size on disk. pebbleKV is one.
type tableSplitter interface {
	// NextSplit returns the first key after lower at which the tables
	// between lower and it hold at least piece bytes, or upper when those
	// below upper hold less, and the bytes of the tables below it.
	NextSplit(lower, upper []byte, piece int64) ([]byte, int64, error)
}

// NextSplit implements tableSplitter from the tables' bounds (Pebble's
// metadata; no table is read). It adds up the sizes of the tables of
// every level that start at or after lower, in the order of their
// smallest keys, and splits before the table that brings the sum to
// piece; a table that starts before lower and reaches into the range
// counts too.
func (p *pebbleKV) NextSplit(lower, upper []byte, piece int64) ([]byte, int64, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.db == nil || p.broken != nil {
		return nil, 0, errNoStore
	}
	levels, err := p.db.SSTables()
	if err != nil {
		return nil, 0, err
	}
	type table struct {
		start []byte
		size  int64
	}
	var tables []table
	var sum int64
	for _, l := range levels {
		for _, t := range l {
			lo, hi := t.Smallest.UserKey, t.Largest.UserKey
			if bytes.Compare(hi, lower) < 0 || bytes.Compare(lo, upper) >= 0 {
				continue
			}
			if bytes.Compare(lo, lower) <= 0 {
				sum += int64(t.Size) // already in the first piece
				continue
			}
			tables = append(tables, table{lo, int64(t.Size)})
		}
	}
	slices.SortFunc(tables, func(a, b table) int { return bytes.Compare(a.start, b.start) })
	for _, t := range tables {
		if sum >= piece {
			return bytes.Clone(t.start), sum, nil
		}
		sum += t.size
	}
	return upper, sum, nil
}

// budgetTableSizes caps Pebble's table files at budget/compactPieces/2
// (256 KiB at least; Pebble's defaults are 2 MiB for L0 and twice the
// level above's below it, up to 128 MiB): the evictor's compaction
// pieces (compactStep) are made of whole tables, and the space a piece
// needs while it is compacted is that of its tables.
func budgetTableSizes(opts *pebble.Options, diskSize int64) {
	size := max(diskSize/compactPieces/2, 256<<10)
	for i := range opts.TargetFileSizes {
		def := int64(2<<20) << i
		opts.TargetFileSizes[i] = min(def, size)
	}
}
