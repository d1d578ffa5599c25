package persistent

import (
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// counters are the engine's own statistics.
type counters struct {
	queued, coalesced, waits                        atomic.Uint64
	commits, commitItems, commitErrors, writeErrors atomic.Uint64
	commitLastUs, lagMaxNs, l0Sublevels             atomic.Int64
	diskReads, diskHits, diskMisses                 atomic.Uint64
	getExpired, getFlushed                          atomic.Uint64
	readErrors, corrupt, bgErrors, corruptBlocks    atomic.Uint64
	walDamaged                                      atomic.Uint64
	fatalErrors, storeFailed                        atomic.Uint64 // kv.go: failure
	diskEvictions, diskEvictedBytes                 atomic.Uint64 // budget.go
	manualCompactions, compactions, budgetWaits     atomic.Uint64
	compactionsRunning                              atomic.Int64
	sweepPasses, sweepScanned, sweepRemoved         atomic.Uint64
	sweepPassScanned                                atomic.Uint64
	sweepBackoffs, ttlWrites, commitsCapped         atomic.Uint64
	sweepCompactions, lagWaits, heapReleases        atomic.Uint64
	l0Waits, writeStalls, writeStallUs              atomic.Uint64
	sweepRanges, sweepRangeChecks, sweepRangeKept   atomic.Uint64 // sweeprange.go
	sweepCovers, sweepDeferrals                     atomic.Uint64 // reclaim.go
	sweepPace                                       atomic.Int64  // items/s (pace.go)
	diskItems                                       atomic.Int64  // -1 (unknown) until a sweep pass ends
	warmState                                       atomic.Int32
	warmItems, warmBytes                            atomic.Uint64
	warmStart, warmEnd                              atomic.Int64 // unix ns
}

func utoa(n uint64) string { return strconv.FormatUint(n, 10) }
func itoa(n int64) string  { return strconv.FormatInt(n, 10) }

// Stats implements engine.Engine. It reports the memory tier's statistics
// (curr_items, bytes, limit_maxbytes, evictions, ...: the items in
// memory; counters carry over flush_all, which replaces the tier), except
// get_expired and get_flushed, which count the lookups that read an
// expired or flushed item from the queue or the disk (every memory miss
// reads through, so this covers the items memory dropped too; a dead item
// on disk counts at each lookup until the sweep deletes it), and the
// engine's own, prefixed persistent_:
//
//	persistent_durability          async or sync
//	persistent_queue_items         writes queued or being committed
//	persistent_queue_bytes         their bytes (as counted against queue=)
//	persistent_queue_limit_bytes   queue=
//	persistent_queue_lag_us        age of the oldest write not yet on disk
//	persistent_queue_lag_max_us    the longest any write waited for its commit (including the commit under way)
//	persistent_queue_writes        writes queued
//	persistent_queue_coalesced     writes that replaced a queued write of the same key
//	persistent_queue_full_waits    writers that waited for room (back-pressure)
//	persistent_queue_lag_waits     async writers that waited because the oldest write not yet on disk would pass the lag bound (5 intervals less a reserve for one stall)
//	persistent_queue_l0_waits      ... of which waited while the store's level 0 had no room for another sublevel (at most 5 s each)
//	persistent_queue_ttl_writes    writes queued with an exptime (the sweep's pace follows them)
//	persistent_commits             batches committed (with fsync)
//	persistent_commit_items        writes in them
//	persistent_commit_last_us      duration of the last commit
//	persistent_store_l0_sublevels  sublevels of the store's level 0 after the last commit (commits stop at 16; async writers are held from 14)
//	persistent_store_write_stalls  times the store stopped commits (Pebble's write stalls: a memtable's flush, or level 0 at 16 sublevels)
//	persistent_store_write_stall_us their time in all
//	persistent_commits_capped      commits that left writes for the next one (async: 1 to 3 MiB each, see the package doc);
//	                               once persistent_commits - persistent_commits_capped (read in that
//	                               order) has grown by 2, every write queued before is on disk
//	persistent_heap_releases       times the flusher gave the Go heap's free memory back to the OS after a write burst
//	persistent_commit_errors       failed commits
//	persistent_write_errors        writes in failed commits
//	persistent_disk_reads          point reads of the disk (memory misses)
//	persistent_disk_hits           ... that found a live item
//	persistent_disk_misses         ... that did not
//	persistent_read_errors         failed disk reads
//	persistent_corrupt_records     damaged records found (never served)
//	persistent_corrupt_blocks      damaged store blocks read (their keys read as misses)
//	persistent_wal_damaged         write-ahead logs found damaged at start (writes lost)
//	persistent_background_errors   errors of the store's background work
//	persistent_fatal_errors        fatal errors of the store (Pebble's Fatalf, a failed log rotation)
//	persistent_store_failed        1 once the store failed for good (until a restart; see Faults in the package doc)
//	persistent_disk_bytes          the store's size on disk
//	persistent_disk_table_bytes    ... of which its tables (the rest: write-ahead logs, kept for reuse, and the manifest)
//	persistent_disk_limit_bytes    disk_size= (0: no budget)
//	persistent_disk_evictions      items evicted from disk to keep within disk_size
//	persistent_disk_evicted_bytes  their key, record and index bytes
//	persistent_disk_compactions    compactions of the whole store the evictor ran (Pebble's own lagged)
//	persistent_disk_budget_waits   writers that waited for an eviction step (the store was over disk_size)
//	persistent_disk_items          live items on disk at the end of the last sweep pass (-1: none yet)
//	persistent_sweep_passes        sweep passes completed
//	persistent_sweep_scanned       items the sweep looked at
//	persistent_sweep_pass_scanned  ... in the current pass
//	persistent_sweep_removed       dead items it deleted from disk (queued for deletion)
//	persistent_sweep_ranges        range deletions committed for runs of dead items (sweeprange.go)
//	persistent_sweep_range_checks  ranges read again at commit because items were written since the sweep read them
//	persistent_sweep_range_kept    items those reads found live again (left out of the range)
//	persistent_sweep_covers        range deletions queued over a pass's abutting ranges, so Pebble drops the tables under them (reclaim.go)
//	persistent_sweep_pace          its current pace, items looked at per second (pace.go)
//	persistent_sweep_backoffs      times it waited for a commit because the queue was behind
//	persistent_sweep_compactions   compactions of the key span of a pass that removed much (reclaim.go)
//	persistent_sweep_deferrals     ... left to the end of the next pass, which removes items this one found live that expired since
//	persistent_warmup_state        running, done, memory_full, stopped or off
//	persistent_warmup_items        items loaded into memory at start
//	persistent_warmup_bytes        their key and value bytes
//	persistent_warmup_seconds      warm-up time so far (or in all)
func (e *Engine) Stats(add func(name, value string)) {
	e.fmu.Lock()
	base := make(map[string]uint64, len(e.memBase))
	for k, v := range e.memBase {
		base[k] = v
	}
	mt := e.mem.Load()
	e.fmu.Unlock()
	mt.Stats(func(name, value string) {
		switch name {
		case "get_expired":
			value = utoa(e.st.getExpired.Load())
		case "get_flushed":
			value = utoa(e.st.getFlushed.Load())
		}
		if b, ok := base[name]; ok {
			if n, err := strconv.ParseUint(value, 10, 64); err == nil {
				value = utoa(n + b)
			}
		}
		add(name, value)
	})
	st := &e.st
	add("persistent_durability", e.cfg.Durability.String())
	add("persistent_queue_items", itoa(e.q.items.Load()))
	add("persistent_queue_bytes", itoa(e.q.bytes.Load()))
	add("persistent_queue_limit_bytes", itoa(e.cfg.Queue))
	add("persistent_queue_lag_us", itoa(e.q.lag().Microseconds()))
	lagMax := st.lagMaxNs.Load()
	if since := e.q.inflightSince.Load(); since != 0 {
		// The commit under way counts too: one stuck on the disk would
		// otherwise show only once it ends.
		lagMax = max(lagMax, time.Now().UnixNano()-since)
	}
	add("persistent_queue_lag_max_us", itoa(lagMax/1000))
	add("persistent_queue_writes", utoa(st.queued.Load()))
	add("persistent_queue_coalesced", utoa(st.coalesced.Load()))
	add("persistent_queue_full_waits", utoa(st.waits.Load()))
	add("persistent_queue_lag_waits", utoa(st.lagWaits.Load()))
	add("persistent_queue_l0_waits", utoa(st.l0Waits.Load()))
	add("persistent_queue_ttl_writes", utoa(st.ttlWrites.Load()))
	add("persistent_commits", utoa(st.commits.Load()))
	add("persistent_commit_items", utoa(st.commitItems.Load()))
	add("persistent_commit_last_us", itoa(st.commitLastUs.Load()))
	add("persistent_store_l0_sublevels", itoa(st.l0Sublevels.Load()))
	add("persistent_store_write_stalls", utoa(st.writeStalls.Load()))
	add("persistent_store_write_stall_us", utoa(st.writeStallUs.Load()))
	add("persistent_commits_capped", utoa(st.commitsCapped.Load()))
	add("persistent_heap_releases", utoa(st.heapReleases.Load()))
	add("persistent_commit_errors", utoa(st.commitErrors.Load()))
	add("persistent_write_errors", utoa(st.writeErrors.Load()))
	add("persistent_disk_reads", utoa(st.diskReads.Load()))
	add("persistent_disk_hits", utoa(st.diskHits.Load()))
	add("persistent_disk_misses", utoa(st.diskMisses.Load()))
	add("persistent_read_errors", utoa(st.readErrors.Load()))
	add("persistent_corrupt_records", utoa(st.corrupt.Load()))
	add("persistent_corrupt_blocks", utoa(st.corruptBlocks.Load()))
	add("persistent_wal_damaged", utoa(st.walDamaged.Load()))
	add("persistent_background_errors", utoa(st.bgErrors.Load()))
	add("persistent_fatal_errors", utoa(st.fatalErrors.Load()))
	add("persistent_store_failed", utoa(st.storeFailed.Load()))
	var disk, tables uint64
	e.kvmu.RLock()
	if !e.closed.Load() {
		disk = e.kv.DiskUsage()
		if ts, ok := e.kv.(tableSizer); ok {
			tables = ts.TableBytes()
		}
	}
	e.kvmu.RUnlock()
	add("persistent_disk_bytes", utoa(disk))
	add("persistent_disk_table_bytes", utoa(tables))
	add("persistent_disk_limit_bytes", itoa(e.cfg.DiskSize))
	add("persistent_disk_evictions", utoa(st.diskEvictions.Load()))
	add("persistent_disk_evicted_bytes", utoa(st.diskEvictedBytes.Load()))
	add("persistent_disk_compactions", utoa(st.manualCompactions.Load()))
	add("persistent_disk_budget_waits", utoa(st.budgetWaits.Load()))
	add("persistent_disk_items", itoa(st.diskItems.Load()))
	add("persistent_sweep_passes", utoa(st.sweepPasses.Load()))
	add("persistent_sweep_scanned", utoa(st.sweepScanned.Load()))
	add("persistent_sweep_pass_scanned", utoa(st.sweepPassScanned.Load()))
	add("persistent_sweep_removed", utoa(st.sweepRemoved.Load()))
	add("persistent_sweep_ranges", utoa(st.sweepRanges.Load()))
	add("persistent_sweep_range_checks", utoa(st.sweepRangeChecks.Load()))
	add("persistent_sweep_range_kept", utoa(st.sweepRangeKept.Load()))
	add("persistent_sweep_covers", utoa(st.sweepCovers.Load()))
	add("persistent_sweep_pace", itoa(st.sweepPace.Load()))
	add("persistent_sweep_backoffs", utoa(st.sweepBackoffs.Load()))
	add("persistent_sweep_compactions", utoa(st.sweepCompactions.Load()))
	add("persistent_sweep_deferrals", utoa(st.sweepDeferrals.Load()))
	ws := st.warmState.Load()
	add("persistent_warmup_state", warmNames[ws])
	add("persistent_warmup_items", utoa(st.warmItems.Load()))
	add("persistent_warmup_bytes", utoa(st.warmBytes.Load()))
	var secs float64
	if start := st.warmStart.Load(); start != 0 {
		end := st.warmEnd.Load()
		if end == 0 {
			end = time.Now().UnixNano()
		}
		secs = time.Duration(end - start).Seconds()
	}
	add("persistent_warmup_seconds", strconv.FormatFloat(secs, 'f', 3, 64))
}

// GroupStats implements engine.GroupStater with the memory tier's groups.
// The counters of "stats items" carry over flush_all, as the general ones
// (items:1:evicted is evictions of every tier, and so on).
func (e *Engine) GroupStats(group string, add func(name, value string)) bool {
	if group != "items" {
		return e.mem.Load().GroupStats(group, add)
	}
	e.fmu.Lock()
	base := make(map[string]uint64, len(e.memBase))
	for k, v := range e.memBase {
		base[k] = v
	}
	mt := e.mem.Load()
	e.fmu.Unlock()
	return mt.GroupStats(group, func(name, value string) {
		field := name[strings.LastIndexByte(name, ':')+1:]
		if field == "evicted" {
			field = "evictions"
		}
		if b, ok := base[field]; ok {
			if n, err := strconv.ParseUint(value, 10, 64); err == nil {
				value = utoa(n + b)
			}
		}
		add(name, value)
	})
}

// ResetStats implements engine.StatsResetter: the memory tier's counters
// and the engine's event counters (not its gauges, nor warm-up figures).
func (e *Engine) ResetStats() {
	e.fmu.Lock()
	clear(e.memBase)
	e.mem.Load().ResetStats()
	e.fmu.Unlock()
	st := &e.st
	for _, c := range []*atomic.Uint64{&st.getExpired, &st.getFlushed, &st.queued, &st.coalesced, &st.waits, &st.commits, &st.commitItems,
		&st.commitErrors, &st.writeErrors, &st.diskReads, &st.diskHits, &st.diskMisses, &st.readErrors} {
		c.Store(0)
	}
	st.lagMaxNs.Store(0)
}
