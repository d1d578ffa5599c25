package memory

import (
	"strconv"
)

// counters is a sum of the shards' counters.
type counters struct {
	items, bytes, indexBytes                                           int64
	totalItems, evictions, evictedUnfetched, evictedActive, reinserted uint64
	expiredUnfetched, reclaimed                                        uint64
}

func (e *Engine) sum() counters {
	var c counters
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.RLock()
		c.items += int64(sh.n)
		c.bytes += sh.bytes
		c.indexBytes += int64(len(sh.tab)) * entryBytes
		c.totalItems += sh.totalItems
		c.evictions += sh.evictions
		c.evictedUnfetched += sh.evictedUnfetched
		c.evictedActive += sh.evictedActive
		c.reinserted += sh.reinserted
		c.expiredUnfetched += sh.expiredUnfetched
		c.reclaimed += sh.reclaimed
		sh.mu.RUnlock()
	}
	return c
}

func itoa(n int64) string  { return strconv.FormatInt(n, 10) }
func utoa(n uint64) string { return strconv.FormatUint(n, 10) }

// Stats implements engine.Engine. Besides memcached's names it reports
// memory_segment_size, memory_segments_total (usable, not retired),
// memory_segments_free, memory_index_bytes (the index, outside the
// budget), memory_arena_bytes (segments in use × size) and
// memory_reinserted (items given another round by the reclaim).
func (e *Engine) Stats(add func(name, value string)) {
	c := e.sum()
	e.amu.Lock()
	total, free := e.segCountsLocked()
	e.amu.Unlock()
	add("curr_items", itoa(c.items))
	add("total_items", utoa(c.totalItems))
	add("bytes", itoa(c.bytes))
	add("limit_maxbytes", itoa(e.limit.Load()))
	add("evictions", utoa(c.evictions))
	add("evicted_unfetched", utoa(c.evictedUnfetched))
	add("evicted_active", utoa(c.evictedActive))
	add("expired_unfetched", utoa(c.expiredUnfetched))
	add("reclaimed", utoa(c.reclaimed))
	add("memory_segment_size", itoa(e.segSize))
	add("memory_segments_total", strconv.Itoa(total))
	add("memory_segments_free", strconv.Itoa(free))
	add("memory_arena_bytes", itoa(int64(total-free)*e.segSize))
	add("memory_index_bytes", itoa(c.indexBytes))
	add("memory_reinserted", utoa(c.reinserted))
}

// GroupStats implements engine.GroupStater. The engine has one "slab
// class" (1), whose chunks are the segments.
func (e *Engine) GroupStats(group string, add func(name, value string)) bool {
	switch group {
	case "items":
		c := e.sum()
		if c.items == 0 {
			return true
		}
		age := int64(0)
		e.amu.Lock()
		if len(e.fifo) > 0 {
			age = e.clock.Now() - e.segs[e.fifo[0]].opened
		}
		e.amu.Unlock()
		add("items:1:number", itoa(c.items))
		add("items:1:age", itoa(max(age, 0)))
		add("items:1:evicted", utoa(c.evictions))
		add("items:1:evicted_nonzero", "0")
		add("items:1:outofmemory", "0")
		add("items:1:reclaimed", utoa(c.reclaimed))
		add("items:1:expired_unfetched", utoa(c.expiredUnfetched))
		add("items:1:evicted_unfetched", utoa(c.evictedUnfetched))
		add("items:1:evicted_active", utoa(c.evictedActive))
		return true
	case "slabs":
		e.amu.Lock()
		total, free := e.segCountsLocked()
		e.amu.Unlock()
		c := e.sum()
		add("1:chunk_size", itoa(e.segSize))
		add("1:chunks_per_page", "1")
		add("1:total_pages", strconv.Itoa(total))
		add("1:total_chunks", strconv.Itoa(total))
		add("1:used_chunks", strconv.Itoa(total-free))
		add("1:free_chunks", strconv.Itoa(free))
		add("1:mem_requested", itoa(c.bytes))
		add("active_slabs", "1")
		add("total_malloced", itoa(int64(total-free)*e.segSize))
		return true
	case "sizes":
		add("sizes_status", "disabled")
		return true
	}
	return false
}

// ResetStats implements engine.StatsResetter: it clears the counters that
// memcached's "stats reset" clears (not curr_items or bytes).
func (e *Engine) ResetStats() {
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.Lock()
		sh.totalItems = 0
		sh.evictions = 0
		sh.evictedUnfetched = 0
		sh.evictedActive = 0
		sh.reinserted = 0
		sh.expiredUnfetched = 0
		sh.reclaimed = 0
		sh.mu.Unlock()
	}
}
