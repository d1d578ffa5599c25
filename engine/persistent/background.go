package persistent

import (
	"bytes"
	"strconv"
	"time"

	"github.com/mnemo-cache/mnemo/engine"
)

// Warm-up states, for stats.
const (
	warmRunning int32 = iota
	warmDone
	warmFull
	warmStopped
	warmOff
)

var warmNames = [...]string{"running", "done", "memory_full", "stopped", "off"}

// warmChunk is how many items warm-up reads per store snapshot.
const warmChunk = 4096

// stripeSeqs snapshots every stripe's wseq into seqs.
func (e *Engine) stripeSeqs(seqs []uint64) {
	for i := range e.stripes {
		s := &e.stripes[i]
		s.mu.Lock()
		seqs[i] = s.wseq
		s.mu.Unlock()
	}
}

// warmup loads the stored items into the memory tier in the background
// until memory is 90% full, logging and counting its progress. The server
// serves from disk meanwhile.
func (e *Engine) warmup() {
	defer e.bg.Done()
	start := time.Now()
	e.st.warmStart.Store(start.UnixNano())
	e.log.Info("persistent: warm-up started", "path", e.cfg.Path)
	state := e.warmScan()
	end := time.Now()
	e.st.warmEnd.Store(end.UnixNano())
	e.st.warmState.Store(state)
	e.log.Info("persistent: warm-up "+warmNames[state], "items", e.st.warmItems.Load(),
		"bytes", e.st.warmBytes.Load(), "seconds", end.Sub(start).Seconds())
}

func (e *Engine) warmScan() int32 {
	seqs := make([]uint64, nStripes)
	from := dataLower
	lastLog := time.Now()
	var d diskItem
	evictions := int64(-1)
	if e.memoryFull(&evictions) {
		return warmFull
	}
	for {
		e.stripeSeqs(seqs)
		n, more, state := 0, false, warmDone
		e.kvmu.RLock()
		if e.closed.Load() {
			e.kvmu.RUnlock()
			return warmStopped
		}
		err := e.kv.Scan(from, dataUpper, func(k, v []byte) bool {
			if n == warmChunk {
				from, more = bytes.Clone(k), true
				return false
			}
			n++
			if n%16 == 0 {
				select {
				case <-e.stopBG:
					state = warmStopped
					return false
				default:
				}
				if e.memoryFull(&evictions) {
					state = warmFull
					return false
				}
			}
			key := k[1:]
			e.decode(key, v, true, &d)
			if !d.found || !e.alive(&d.meta, e.clock.Now()) {
				return true
			}
			i := e.stripeIndex(key)
			s := &e.stripes[i]
			s.mu.Lock()
			if _, q := s.queued(key); !q && s.wseq == seqs[i] {
				// Nothing changed the key since the snapshot: the disk
				// item is current.
				e.loadLocked(key, &d)
				e.st.warmItems.Add(1)
				e.st.warmBytes.Add(uint64(len(key) + len(d.value)))
			}
			s.mu.Unlock()
			return true
		})
		e.kvmu.RUnlock()
		if next, ok := pastDamage(err, from); err != nil && ok {
			// A damaged store file (counted and logged by
			// pebbleEvents): skip its keys, which read as misses.
			from = next
			continue
		}
		if err != nil {
			e.st.readErrors.Add(1)
			e.log.Error("persistent: warm-up read failed; the rest is read through on demand", "err", err)
			return warmStopped
		}
		if state != warmDone || !more {
			return state
		}
		if t := time.Now(); t.Sub(lastLog) >= 5*time.Second {
			lastLog = t
			e.log.Info("persistent: warm-up progress", "items", e.st.warmItems.Load(),
				"bytes", e.st.warmBytes.Load(), "seconds", t.Sub(time.Unix(0, e.st.warmStart.Load())).Seconds())
		}
	}
}

// memoryFull reports whether the memory tier is 90% full or has started
// evicting since evictions was read (a negative evictions reads it).
func (e *Engine) memoryFull(evictions *int64) bool {
	mt, err := e.tier()
	if err != nil {
		return true
	}
	var used, limit, ev int64
	mt.Stats(func(name, value string) {
		switch name {
		case "bytes":
			used, _ = strconv.ParseInt(value, 10, 64)
		case "limit_maxbytes":
			limit, _ = strconv.ParseInt(value, 10, 64)
		case "evictions":
			ev, _ = strconv.ParseInt(value, 10, 64)
		}
	})
	if *evictions < 0 {
		*evictions = ev
	}
	return used >= limit/10*9 || ev > *evictions
}

// sweepLoop runs sweep steps at the pace the pacer sets (pace.go).
func (e *Engine) sweepLoop() {
	defer e.bg.Done()
	p := newPacer(&e.cfg)
	e.st.sweepPace.Store(int64(p.rate))
	t := time.NewTimer(p.wait(p.step()))
	defer t.Stop()
	last := time.Now()
	lastTTL := e.st.ttlWrites.Load()
	for {
		select {
		case <-e.stopBG:
			return
		case <-t.C:
		}
		if e.kv.Failed() != nil {
			// Nothing to sweep until a restart: the timer is not
			// reset, so the loop only waits for Close.
			continue
		}
		pressure := false
		for e.queueBehind() {
			pressure = true
			e.st.sweepBackoffs.Add(1)
			if !e.waitRound() {
				return
			}
		}
		n := p.step()
		start := time.Now()
		seen, dead, _ := e.sweep(n)
		took := time.Since(start)
		ttl := e.st.ttlWrites.Load()
		p.observe(seen, dead, start.Sub(last), ttl-min(lastTTL, ttl), pressure)
		last, lastTTL = start, ttl
		e.st.sweepPace.Store(int64(p.rate))
		t.Reset(max(p.wait(n)-took, dutyGap*took))
	}
}

// queueBehind reports whether the write-behind queue is behind: more
// than a quarter full, or its oldest write older than twice Interval.
// The sweep then queues no deletions (pace.go).
func (e *Engine) queueBehind() bool {
	return e.q.bytes.Load() > e.cfg.Queue/4 || e.q.lag() > 2*e.cfg.Interval
}

// waitRound waits for the flusher's next round; false: the engine stops.
func (e *Engine) waitRound() bool {
	ch := *e.q.room.Load()
	e.q.wake()
	select {
	case <-ch:
		return true
	case <-e.stopBG:
		return false
	}
}

// sweepStep looks at up to n stored items from the sweep cursor and queues
// the deletion of those that are expired, flushed or damaged. A deletion
// is queued only if nothing touched the key's stripe since the snapshot
// the items were read from, so a newer write is never deleted. It returns
// how many deletions it queued. Only the sweep goroutine (or a test) calls
// it.
func (e *Engine) sweepStep(n int) int {
	_, _, removed := e.sweep(n)
	return removed
}

// sweep is sweepStep; it also returns how many items it looked at and
// how many of them it found dead.
func (e *Engine) sweep(n int) (seen, found, removed int) {
	seqs := make([]uint64, nStripes)
	e.stripeSeqs(seqs)
	var (
		dead   [][]byte
		ranged []sweptRange
		keys   []byte // the dead keys to delete one by one: one allocation, not one per key
		ends   []int  // where each of them ends in keys
		// The run of dead keys being read (no live key between them):
		// its keys are in keys from ends[run] on until it is
		// minRangeRun long, then it becomes a range from lo to last.
		run      = -1
		runLen   int
		lo, last []byte
		live     int64
		more     bool
		m        engine.Meta
		start    = e.sweepFrom
	)
	if start == nil {
		start = dataLower
	}
	// endRun ends the run at next, the store key read after it (nil:
	// none; the range then ends just after its last key). A range that
	// ends at the next key read covers the same items, and the ranges of
	// a run that goes on into the next step abut, so Pebble sees one
	// span and can drop whole tables under it (delete-only compactions).
	endRun := func(next []byte) {
		if lo != nil {
			var hi []byte
			if next != nil {
				hi = bytes.Clone(next)
			} else {
				hi = keyAfter(last)
			}
			ranged = append(ranged, sweptRange{lo: lo, hi: hi, n: runLen})
			lo = nil
		}
		run = -1
	}
	now := e.clock.Now()
	// Before the scan's snapshot: a range of dead keys is committed as
	// it is only if no item was committed since (sweeprange.go).
	gen := e.q.setGen.Load()
	e.kvmu.RLock()
	if e.closed.Load() {
		e.kvmu.RUnlock()
		return 0, 0, 0
	}
	err := e.kv.Scan(start, dataUpper, func(k, v []byte) bool {
		if seen == n {
			e.sweepFrom, more = bytes.Clone(k), true
			endRun(k)
			return false
		}
		seen++
		e.sweepYield(seen)
		if recordMeta(v, &m) == nil && e.alive(&m, now) {
			live++
			e.sweepDead.noteLive(m.Exptime)
			endRun(k)
			return true
		}
		switch {
		case lo != nil:
			last = append(last[:0], k...)
		case run < 0 || runLen < minRangeRun-1:
			if run < 0 {
				run, runLen = len(ends), 0
			}
			keys = append(keys, k[1:]...)
			ends = append(ends, len(keys))
		default:
			// The run's minRangeRun-th key: its keys leave the list
			// and the run becomes a range.
			from := 0
			if run > 0 {
				from = ends[run-1]
			}
			lo = append([]byte{prefixData}, keys[from:ends[run]]...)
			last = append(last[:0], k...)
			keys, ends = keys[:from], ends[:run]
		}
		runLen++
		return true
	})
	endRun(nil)
	e.kvmu.RUnlock()
	found = len(ends)
	for i := range ranged {
		ranged[i].gen = gen
		found += ranged[i].n
	}
	if len(ends) > 0 {
		dead = make([][]byte, len(ends))
		from := 0
		for i, end := range ends {
			dead[i] = keys[from:end:end]
			from = end
		}
	}
	if next, ok := pastDamage(err, start); err != nil && ok {
		// A damaged store file (counted and logged by pebbleEvents):
		// the next step resumes after it; the dead items found before
		// it are deleted now.
		e.sweepFrom, more, err = next, true, nil
	}
	if err != nil {
		e.st.readErrors.Add(1)
		e.log.Error("persistent: sweep read failed", "err", err)
		return seen, 0, 0
	}
	e.st.sweepScanned.Add(uint64(seen))
	e.sweepLive += live
	e.st.sweepPassScanned.Add(uint64(seen))
	var passScanned int64 = -1
	if !more {
		passScanned = int64(e.st.sweepPassScanned.Load())
		e.sweepFrom = nil
		e.st.sweepPasses.Add(1)
		e.st.diskItems.Store(e.sweepLive)
		e.st.sweepPassScanned.Store(0)
		e.sweepLive = 0
	}
	if e.sweepHook != nil {
		e.sweepHook()
	}
	removed = 0
	if !e.closed.Load() {
		for _, r := range ranged {
			e.q.enqueueRange(r)
			removed += r.n
			e.sweepDead.noteRange(r)
			e.sweepRanged++
		}
	}
	tried := 0
	// A stripe's counter also moves when the flusher commits any key of
	// it, so a key whose stripe moved is read again (below) rather than
	// skipped until the next pass.
	for try := 0; len(dead) > 0; try++ {
		var moved [][]byte
		for _, key := range dead {
			i := e.stripeIndex(key)
			s := &e.stripes[i]
			s.mu.Lock()
			if _, q := s.queued(key); !q && !e.closed.Load() {
				if s.wseq == seqs[i] {
					e.q.enqueueLocked(s, key, nil)
					seqs[i] = s.wseq
					removed++
					e.sweepDead.note(key)
				} else {
					moved = append(moved, key)
				}
			}
			s.mu.Unlock()
			tried++
			e.sweepYield(tried)
		}
		if len(moved) == 0 || try == 2 {
			break
		}
		dead = e.stillDead(moved, seqs, now)
	}
	e.st.sweepRemoved.Add(uint64(removed))
	if passScanned >= 0 {
		e.reclaim(passScanned)
	}
	return seen, found, removed
}

// stillDeadScan is how many keys stillDead reads with one scan rather
// than a point read each.
const stillDeadScan = 64

// stillDead snapshots the stripes' counters into seqs, then reads keys
// (in key order) again from disk and returns those still dead there.
func (e *Engine) stillDead(keys [][]byte, seqs []uint64, now int64) [][]byte {
	e.stripeSeqs(seqs)
	var (
		out [][]byte
		m   engine.Meta
		kb  []byte
		rec []byte
	)
	e.kvmu.RLock()
	defer e.kvmu.RUnlock()
	if e.closed.Load() {
		return nil
	}
	if len(keys) >= stillDeadScan {
		// Many keys (a mass expiry, whose own deletions move every
		// stripe): one scan over their span, walking the sorted keys
		// beside it, costs far less than a point read each.
		lo := append([]byte{prefixData}, keys[0]...)
		hi := append(append([]byte{prefixData}, keys[len(keys)-1]...), 0)
		j, read := 0, 0
		err := e.kv.Scan(lo, hi, func(k, v []byte) bool {
			read++
			e.sweepYield(read)
			k = k[1:]
			for j < len(keys) && bytes.Compare(keys[j], k) < 0 {
				j++ // not on disk any more
			}
			if j < len(keys) && bytes.Equal(keys[j], k) {
				if recordMeta(v, &m) != nil || !e.alive(&m, now) {
					out = append(out, keys[j])
				}
				j++
			}
			return j < len(keys)
		})
		if err == nil {
			return out
		}
		out = out[:0] // read them one by one
	}
	for _, key := range keys {
		kb = append(append(kb[:0], prefixData), key...)
		var found bool
		var err error
		rec, found, err = e.kv.Get(kb, rec[:0])
		if err != nil || !found {
			continue
		}
		if recordMeta(rec, &m) != nil || !e.alive(&m, now) {
			out = append(out, key)
		}
	}
	return out
}
