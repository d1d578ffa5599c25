package memory

import (
	"math/bits"
	"strconv"
	"sync/atomic"
)

// lruCounters are the engine-wide figures of memcached's LRU and crawler
// statistics, in mnemo's model.
type lruCounters struct {
	evictedTime    atomic.Int64  // seconds between the last access and the eviction of the last item evicted
	outOfMemory    atomic.Uint64 // stores refused with engine.ErrNoMemory
	directReclaims atomic.Uint64 // segment reclaims run by a writer that needed room
	crawlerStarts  atomic.Uint64 // background sweep rounds started
	crawlerRunning atomic.Int32  // sweeps running now
	compactions    atomic.Uint64 // segments compacted before a cold segment was taken
	released       atomic.Uint64 // free segments whose pages went back to the kernel
}

// counters is a sum of the shards' counters.
type counters struct {
	items, bytes, indexBytes, slots                                    int64
	totalItems, evictions, evictedUnfetched, evictedActive, reinserted uint64
	expiredUnfetched, reclaimed, evictedNonzero                        uint64
	getExpired, getFlushed, crawlerChecked, crawlerReclaimed           uint64
	compacted                                                          uint64
}

func (e *Engine) sum() counters {
	var c counters
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.RLock()
		c.items += int64(sh.n)
		c.bytes += sh.bytes
		c.slots += int64(len(sh.tab))
		c.indexBytes += int64(len(sh.tab)) * entryBytes
		c.totalItems += sh.totalItems
		c.evictions += sh.evictions
		c.evictedUnfetched += sh.evictedUnfetched
		c.evictedActive += sh.evictedActive
		c.evictedNonzero += sh.evictedNonzero
		c.reinserted += sh.reinserted
		c.compacted += sh.compacted
		c.expiredUnfetched += sh.expiredUnfetched
		c.reclaimed += sh.reclaimed
		c.getExpired += sh.getExpired
		c.getFlushed += sh.getFlushed
		c.crawlerChecked += sh.crawlerChecked
		c.crawlerReclaimed += sh.crawlerReclaimed
		sh.mu.RUnlock()
	}
	return c
}

func itoa(n int64) string  { return strconv.FormatInt(n, 10) }
func utoa(n uint64) string { return strconv.FormatUint(n, 10) }

// Stats implements engine.Engine. It reports memcached's names in mnemo's
// model:
//
//	get_expired, get_flushed  lookups (Get, Update, Delete) that met an
//	                          expired or flushed item, which they then
//	                          remove (so each item counts once, as in
//	                          memcached's do_item_get); the background
//	                          sweep and reclaim do not count
//	hash_power_level          log2 of the index slots of all shards
//	hash_bytes                the index's bytes (memory_index_bytes)
//	hash_is_expanding         always 0: a shard grows its table at once,
//	                          under its own lock
//	lru_crawler_running       1 while the background sweep runs
//	lru_crawler_starts        background sweep rounds
//	crawler_items_checked     index entries the sweep looked at
//	crawler_reclaimed         dead items it removed
//	reclaimed                 dead items the segment reclaim met (memory
//	                          reused from an expired item, memcached's
//	                          LRU tail pull)
//	expired_unfetched         never-read expired items the reclaim or the
//	                          sweep removed
//	moves_within_lru          items the reclaim moved to a newer segment
//	                          because they were read (memory_reinserted)
//	direct_reclaims           segment reclaims run by a store that needed
//	                          room (all of mnemo's reclaims)
//	moves_to_cold,            0: one FIFO queue with reinsertion, no
//	moves_to_warm,            segmented LRU, no tail locks, no LRU
//	lrutail_reflocked,        maintainer
//	lru_maintainer_juggles
//
// and its own: memory_segment_size, memory_segments_total (usable, not
// retired), memory_segments_free, memory_index_bytes (the index, outside
// the budget), memory_arena_bytes (segments in use × size),
// memory_reinserted, memory_arena_resident_bytes (segments whose pages
// may be resident: written since they were mapped or last given back),
// memory_compactions (segments compacted so that the arena did not grow),
// memory_compacted (records those compactions moved) and
// memory_segments_released (free segments whose pages went back to the
// kernel).
func (e *Engine) Stats(add func(name, value string)) {
	c := e.sum()
	e.amu.Lock()
	total, free := e.segCountsLocked()
	resident := 0
	for i := range e.segs {
		if e.segs[i].resident {
			resident++
		}
	}
	e.amu.Unlock()
	running := "0"
	if e.lc.crawlerRunning.Load() > 0 {
		running = "1"
	}
	add("get_expired", utoa(c.getExpired))
	add("get_flushed", utoa(c.getFlushed))
	add("hash_power_level", strconv.Itoa(powerLevel(c.slots)))
	add("hash_bytes", itoa(c.indexBytes))
	add("hash_is_expanding", "0")
	add("lru_crawler_running", running)
	add("lru_crawler_starts", utoa(e.lc.crawlerStarts.Load()))
	add("lru_maintainer_juggles", "0")
	add("curr_items", itoa(c.items))
	add("total_items", utoa(c.totalItems))
	add("bytes", itoa(c.bytes))
	add("limit_maxbytes", itoa(e.limit.Load()))
	add("evictions", utoa(c.evictions))
	add("evicted_unfetched", utoa(c.evictedUnfetched))
	add("evicted_active", utoa(c.evictedActive))
	add("expired_unfetched", utoa(c.expiredUnfetched))
	add("reclaimed", utoa(c.reclaimed))
	add("crawler_reclaimed", utoa(c.crawlerReclaimed))
	add("crawler_items_checked", utoa(c.crawlerChecked))
	add("lrutail_reflocked", "0")
	add("moves_to_cold", "0")
	add("moves_to_warm", "0")
	add("moves_within_lru", utoa(c.reinserted))
	add("direct_reclaims", utoa(e.lc.directReclaims.Load()))
	add("memory_segment_size", itoa(e.segSize))
	add("memory_segments_total", strconv.Itoa(total))
	add("memory_segments_free", strconv.Itoa(free))
	add("memory_arena_bytes", itoa(int64(total-free)*e.segSize))
	add("memory_index_bytes", itoa(c.indexBytes))
	add("memory_reinserted", utoa(c.reinserted))
	add("memory_arena_resident_bytes", itoa(int64(resident)*e.segSize))
	add("memory_compactions", utoa(e.lc.compactions.Load()))
	add("memory_compacted", utoa(c.compacted))
	add("memory_segments_released", utoa(e.lc.released.Load()))
	if e.file != nil {
		// How the start with a restartable file (-e) went.
		r := &e.restart
		how := "crash"
		switch {
		case r.reason != "":
			how = "empty"
		case r.clean:
			how = "clean"
		}
		add("memory_restart", how)
		add("memory_restart_items", strconv.Itoa(r.restored))
		add("memory_restart_seconds", strconv.FormatFloat(r.took.Seconds(), 'f', 6, 64))
	}
}

// powerLevel is memcached's hash_power_level for n slots: log2, rounded
// down.
func powerLevel(n int64) int {
	if n <= 0 {
		return 0
	}
	return bits.Len64(uint64(n)) - 1
}

// GroupStats implements engine.GroupStater. The engine shows its arena as
// one slab class (1) whose pages and chunks are the segments (memcached's
// chunks_per_page is 1), and its one FIFO queue with reinsertion as
// memcached's COLD LRU (where memcached keeps every item when its LRU is
// not segmented). The per-class command counters (stats slabs get_hits,
// cmd_set, ..., stats items hits_to_*) are counted where the commands run
// and added by the server; see engine.GroupStater.
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
		age = max(age, 0)
		add("items:1:number", itoa(c.items))
		add("items:1:number_hot", "0")
		add("items:1:number_warm", "0")
		add("items:1:number_cold", itoa(c.items))
		add("items:1:age_hot", "0")
		add("items:1:age_warm", "0")
		add("items:1:age", itoa(age))
		add("items:1:mem_requested", itoa(c.bytes))
		add("items:1:evicted", utoa(c.evictions))
		add("items:1:evicted_nonzero", utoa(c.evictedNonzero))
		add("items:1:evicted_time", itoa(e.lc.evictedTime.Load()))
		add("items:1:outofmemory", utoa(e.lc.outOfMemory.Load()))
		add("items:1:tailrepairs", "0")
		add("items:1:reclaimed", utoa(c.reclaimed))
		add("items:1:expired_unfetched", utoa(c.expiredUnfetched))
		add("items:1:evicted_unfetched", utoa(c.evictedUnfetched))
		add("items:1:evicted_active", utoa(c.evictedActive))
		add("items:1:crawler_reclaimed", utoa(c.crawlerReclaimed))
		add("items:1:crawler_items_checked", utoa(c.crawlerChecked))
		add("items:1:lrutail_reflocked", "0")
		add("items:1:moves_to_cold", "0")
		add("items:1:moves_to_warm", "0")
		add("items:1:moves_within_lru", utoa(c.reinserted))
		add("items:1:direct_reclaims", utoa(e.lc.directReclaims.Load()))
		return true
	case "slabs":
		e.amu.Lock()
		total, free := e.segCountsLocked()
		e.amu.Unlock()
		add("1:chunk_size", itoa(e.segSize))
		add("1:chunks_per_page", "1")
		add("1:total_pages", strconv.Itoa(total))
		add("1:total_chunks", strconv.Itoa(total))
		add("1:used_chunks", strconv.Itoa(total-free))
		add("1:free_chunks", strconv.Itoa(free))
		add("1:free_chunks_end", "0")
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
// memcached's "stats reset" clears (not curr_items, bytes or the gauges).
func (e *Engine) ResetStats() {
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.Lock()
		sh.totalItems = 0
		sh.evictions = 0
		sh.evictedUnfetched = 0
		sh.evictedActive = 0
		sh.evictedNonzero = 0
		sh.reinserted = 0
		sh.compacted = 0
		sh.expiredUnfetched = 0
		sh.reclaimed = 0
		sh.getExpired = 0
		sh.getFlushed = 0
		sh.crawlerChecked = 0
		sh.crawlerReclaimed = 0
		sh.mu.Unlock()
	}
	e.lc.evictedTime.Store(0)
	e.lc.outOfMemory.Store(0)
	e.lc.directReclaims.Store(0)
	e.lc.crawlerStarts.Store(0)
	e.lc.compactions.Store(0)
	e.lc.released.Store(0)
}
