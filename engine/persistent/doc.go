// Package persistent owns mnemo's persistent storage engine: a two-level
// cache that survives restarts and crashes. The memory engine (package
// memory, with the server's -m budget) sits in front of a durable store
// (Pebble, behind the small kv interface) that holds the whole data set
// (with a disk budget, the newest written items that fit); memory is a
// cache over it. It registers itself as "persistent"
// (engine.Open("persistent", env, config)); New opens one directly.
//
// # Configuration
//
// The configuration string (see ParseConfig and Config) takes:
//
//	path=DIR            data directory, created if missing. Required. An
//	                    exclusive flock on DIR/mnemo.lock keeps a second
//	                    engine (or mnemo) out: ErrLocked.
//	durability=async    (default) a write is acknowledged once it is in
//	                    memory and in the write-behind queue.
//	durability=sync     a write is acknowledged after the batch holding it
//	                    is committed with fsync (group commit).
//	interval=100ms      the queue is committed once its oldest write is
//	                    this old (async); see Loss window.
//	queue=BYTES         bound of the write-behind queue; default -m/4,
//	                    at least 4 MiB, at most 64 MiB.
//	sweep_interval=1s   with sweep_batch, the base pace of the background
//	                    sweep of expired and flushed items on disk
//	                    (sweep_batch items per sweep_interval; the pace
//	                    adapts above it, see Deletes); 0 turns it off.
//	sweep_batch=10000   items the sweep looks at per sweep_interval at
//	                    its base pace.
//	warmup=true         load stored items into memory at start.
//	cache=16777216      Pebble's block cache in bytes (outside -m).
//	disk_size=SIZE      disk budget (bytes, or with K, M, G or T; at
//	                    least 4m); default none. See Disk budget.
//
// # Writes
//
// Every write (Update, Delete) runs the caller's Mutator in the memory
// tier and puts the resulting record, or a deletion, in a write-behind
// queue, both under the key's stripe lock (1024 stripes), so memory and
// queue see a key's writes in the same order. The queue coalesces per key
// (a newer write of a key replaces the queued one). One flusher goroutine
// collects the queue of the stripes that have writes and commits them as
// one Pebble batch with fsync: in async mode once the oldest queued write
// is interval old (at once after a commit that took longer), in sync mode
// as soon as a writer waits (the writers that arrive while a commit runs
// share the next one; before it collects a sync round the flusher yields
// the processor while that lets more writers in, at most 8 times, so
// that the writers already runnable join it). An async commit takes at most about one interval
// of the disk's measured commit rate (at least 1 MiB, at most 3 MiB as
// Pebble counts it, see Memory; what it leaves,
// stripe by stripe in turn, goes in the next commit at once,
// persistent_commits_capped). When the queue holds more than queue bytes,
// writers wait for a commit (back-pressure), so memory never grows
// without bound.
//
// Loss window (async): while commits succeed, an async writer also waits
// while what is queued could not be committed, at the rate the queue
// drained lately, before the oldest write not yet on disk is 5 intervals
// old less a reserve for one stall of the disk (the longest recent
// commit; at least 2 intervals are left) (persistent_queue_lag_waits).
// The target is a loss of writes acknowledged within 5 intervals plus
// the commit under way (about one interval), 600 ms at the default;
// when the disk keeps up, about interval plus one commit. Under writes
// faster than the disk, Pebble stops commits while it compacts its level
// 0 (0.1-0.5 s, at 16 sublevels), and a stop held the queue behind it:
// writers are therefore held while level 0 has no room for what they
// would queue (from 14 sublevels, persistent_queue_l0_waits), so that
// Pebble does not stop; measured 0.13-0.18 s with 32 KB values (0.70-1.01
// s with Pebble's stops). A stall of the disk longer than 3 intervals
// still takes the oldest write past the target by what it is longer. The longest any write waited, counting the commit under
// way, is persistent_queue_lag_max_us. On a failing disk the window is the queue
// (writes are kept and retried until it is full). A commit is a write
// plus one fsync of Pebble's WAL, so this holds for a power loss too, not
// only a process crash. Sync mode loses nothing that was acknowledged.
//
// # Memory
//
// The memory tier's items live outside the Go heap, within -m. What the
// engine adds, on the Go heap (Pebble built without cgo allocates its
// memtables and block cache there too), is bounded by
//
//	queue                   the write-behind queue (queue=; default -m/4, 4 to 64 MiB)
//	+ 3 x 3 MiB             one async commit, capped at 3 MiB as Pebble counts
//	                        it (key, value and 195 bytes per entry): the
//	                        flusher's ops, Pebble's batch (its pool keeps one
//	                        buffer of up to 4 MiB) and the WAL's blocks
//	+ 3 x 8 MiB             Pebble's memtables (MemTableSize 8 MiB: at most
//	                        two queued, one kept for reuse)
//	+ cache                 Pebble's block cache (cache=, 16 MiB)
//	+ about 10 MiB          Pebble's table and file metadata, the stripes'
//	                        maps (a map that held more than 32 entries is
//	                        dropped after its commit, not kept)
//
// 75 MiB at -m 64 (queue 16 MiB, cache 16 MiB), plus the Go runtime's
// headroom of up to the live heap again (GOGC=100) while writes run. A sync commit is
// not capped (its writers wait for it), so it is at most the queue plus
// one write per writer, and one over half a memtable is handed to Pebble
// whole (a "flushable batch", kept until it is flushed). An async commit
// stays below that size (maxCommitFor), so Pebble copies it into its
// memtable and reuses its buffer; a disk budget under 512 MiB has smaller
// memtables (a 64th of the budget, at least 256 KiB) and keeps commits
// of 1 MiB. After
// a write burst (8 MiB committed) the first idle round gives the free
// heap back to the OS (debug.FreeOSMemory, at most once per 10 s,
// persistent_heap_releases): the garbage of a burst would otherwise stay
// until the runtime's next collection, which an idle server may not run
// for minutes. Measured with 5M items at -m 64 (BENCHMARKS.md): RSS
// 135-139 MiB (181 MiB before these bounds), the memory engine alone 91
// MiB.
//
// # Reads
//
// A Get that hits memory touches nothing else. A miss reads through: the
// key's stripe queue (pending, then the batch being committed), then the
// disk, with the stripe lock released around the disk read (a per-stripe
// change counter detects a write that raced the read, which is then
// retried), so a disk read stalls only its own connection. The disk read
// itself runs on one of the store's reader goroutines, which the caller
// waits for, so that a read caught inside Pebble when the store fails is
// left there and its caller answered (below). Handing the read to an
// idle reader costs about 0.4 us (BenchmarkReadThrough, medians of 6:
// 4.38 us per get without it, 4.74 us with it; a goroutine per read cost
// 5.72 us; see readPool). The item found is loaded into memory. Update
// on a key that memory does not have shows
// the caller's Mutator the disk item, so add, replace, cas, append,
// incr, touch and the meta commands behave the same for keys only on
// disk. Memory may evict at any time without losing data: the queue and
// the disk have every acknowledged write.
//
// # Deletes, flush_all, expiry
//
// A delete is queued like a write and becomes a Pebble deletion. Flush
// sets a flush mark (as the memory engine does: items last stored before
// a time, or with a CAS below a mark, are dead; a delayed flush takes
// effect at its time), persisted synchronously in the store before it
// takes effect. An immediate flush also replaces the memory tier with an
// empty one. Items on disk are checked against the mark and their exptime
// on every read, so nothing deleted, expired or flushed is served, after
// an eviction or a restart. A paced background sweep deletes dead items
// from disk, never a newer write of the key (it checks the stripe's
// change counter), and counts the live ones (persistent_disk_items). A
// run of 32 or more dead keys (no live key between them) is deleted with
// one range deletion, which the flusher checks at commit time against the
// writes committed since the sweep read the span (sweeprange.go;
// persistent_sweep_ranges): a mass expiry then costs the queue, the WAL
// and the compactions a few entries instead of one per item. Its
// pace (pace.go; persistent_sweep_pace) starts at sweep_batch items per
// sweep_interval and adapts: at least 4 times the rate of TTL'd writes,
// doubled while its steps find a quarter or more dead (up to 20 times
// the base), halved each second while they find little; while the write-behind queue
// is behind (a quarter full, or its oldest write twice interval old) it
// queues nothing and slows down (persistent_sweep_backoffs), so its
// deletions never make a writer wait; it takes at most a quarter of a core,
// and yields its processor every 64 items it reads or deletes, so that
// requests scheduled on the same P run between. At the end of a pass,
// one more range deletion covers each run of dead keys that took several
// (one per step), so that Pebble drops every table under the run without
// reading it (reclaim.go; persistent_sweep_covers); it is checked like
// the run's ranges, against the writes committed since the run's first
// scan. A pass that removed a quarter or more of what it read then
// compacts the span of keys it removed (persistent_sweep_compactions):
// Pebble would otherwise keep the dead items' tables, tombstoned, for
// minutes. When the pass read items live that have expired since (a mass
// expiry that began during the pass), it leaves that compaction to the
// end of the next pass, which removes them and compacts both spans at
// once (persistent_sweep_deferrals). Pebble's read-triggered compactions
// are off: only iterators sample reads (a Get never does), and the
// engine's only iterators are its own scans, so they came from the
// sweep, and in a mass expiry they rewrote 5-30 MiB tables while
// readers ran. At info level (-v) the log lists Pebble's flushes and
// compactions, with their reasons, levels, bytes and times (kv.go).
//
// # Disk budget
//
// With disk_size the disk evicts the oldest written items first. Why
// that order: Pebble makes it cheap (each write adds a small entry to a
// write-ordered index in the same batch, and the evictor walks the
// index's oldest span and drops it with one range deletion), it never
// turns a read into a disk write (an LRU on disk would rewrite every
// item it reads, or keep an access log), it is what extstore does (it
// frees its oldest page), and the hot items it evicts are still served
// by the memory tier in front, which is an LRU. Measured on a
// read-through load over 4x the budget (BenchmarkBudgetHitRatio, values
// of 4 KiB, -m 4 MiB, disk_size 16 MiB): 71% hits with Zipf(1.01) keys,
// 15% with uniform keys (about what fits: the items are kept at 5/8 to
// 3/4 of the budget). The eviction marks count the items' key, record
// and index bytes as written (before compression), against the budget
// less room for Pebble's write-ahead logs (five memtables, at most a
// quarter of the budget); the rest of the budget
// is room for deletions and overwrites Pebble has not compacted away,
// its logs and manifest. When the directory passes the budget, the
// evictor compacts the store piece by piece (about budget/16 bytes of
// tables per piece, each table at most budget/32, continuing where it
// stopped) down to 7/8 of the budget, holding writers back for a piece
// each while the directory is more than an eighth over; a piece needs
// room for its own tables only, where the whole-store compaction it
// replaced needed the store's size again. Measured peaks through a
// server (bench/budget.sh, BENCHMARKS.md): 1.46x the budget at 8 MiB,
// 1.43x at 64 MiB, 1.15x at 1 GiB, 1.10x at 4 GiB; TestBudget holds 8
// MiB within 1.25x plus 4 MiB. At 64 MiB to a few hundred MiB, Pebble's
// write-ahead logs (8 MiB memtables, up to five logs) take a quarter of
// the budget or more. See budget.go for the index format and the steps.
//
// # Start
//
// New opens the store (Pebble replays its WAL), checks the store's format
// record, loads the CAS high-water mark and the flush mark, and returns:
// the server serves at once, from disk, while a background warm-up loads
// stored items into memory until memory is 90% full or starts evicting.
// Progress (items, bytes, seconds) is logged and in stats
// (persistent_warmup_*).
//
// CAS values come from the engine's counter, seeded from a high-water
// mark persisted (synchronously) casBlock values ahead of it, so they are
// unique and increasing across restarts and crashes.
//
// # On disk
//
// Item records (key "d"+key) carry a version, the flags, exptime, CAS,
// atime, bits and a CRC-32C over header, key and value; meta records
// (key "m"+name) carry a version and a CRC; see the drawings in
// record.go. A damaged record is never served (it reads as a miss, is
// logged and counted as persistent_corrupt_records, and the sweep removes
// it). A damaged store block (Pebble's checksum fails) is not a crash:
// the keys it holds read as misses, as a cache answers for an item it
// lost (not SERVER_ERROR: the client then refills it from its source,
// and the new write makes the key readable again); each such read counts
// in persistent_corrupt_blocks and the damaged file is logged once, by
// name. Warm-up and the sweep skip the damaged file's whole key range
// (Pebble reports the file's bounds, not the block's): its intact keys
// are read through on demand, and its dead items stay until the file is
// compacted or rewritten. Repair: stop the server and move the data
// directory aside (the cache starts empty). Before Pebble replays the
// write-ahead logs, the engine reads them: a log that does not read to a
// clean end (a flipped bit, or a write torn by a crash) is logged at error
// level with the records read, the offset and the log's size, and counted
// in persistent_wal_damaged. Pebble stops replaying the newest log at that
// point, so every write after it in that log is lost (in a test, a flipped
// bit in the middle lost the 251 writes of 500 after it); damage in an
// older log makes Pebble refuse the store (ErrCorrupt). A store Pebble cannot open, or one without a valid format record,
// is refused at start with ErrCorrupt or ErrOpen, naming the directory.
// Pebble runs with bloom filters on every level, so a miss rarely reads a
// data block, and with Snappy/MinLZ compression. Pebble builds without
// cgo (CGO_ENABLED=0); with cgo on, its zstd uses DataDog/zstd unless the
// pebblegozstd build tag is set.
//
// # Faults
//
// A failed commit is counted (persistent_commit_errors,
// persistent_write_errors) and logged at error level. In sync mode the
// writers of the batch get ErrWrite (SERVER_ERROR) and their writes are
// undone (dropped from the queue and from memory), so the key reads as it
// is on disk. In async mode the writes stay queued and are retried by the
// next commit; if the queue fills while the disk keeps failing, writers
// get ErrWrite instead of waiting forever. A failed disk read returns
// ErrRead. The engine never crashes on a disk error.
//
// A full disk: a commit first checks the free space, and when less than
// 64 MiB (plus the batch) is free it fails with ErrDiskFull, logged once
// per episode: sync writers get SERVER_ERROR at once, async writes stay
// queued (back-pressure) until the queue is full, then writers get
// SERVER_ERROR; reads go on; writes succeed again once space is freed,
// without a restart. The reserve is there because Pebble cannot survive
// every write failure (below: the store fails until a restart).
//
// A failed write of Pebble's WAL (an I/O error, or ENOSPC that the check
// did not foresee) breaks the Pebble DB (Pebble treats it as fatal): the
// commit fails at once with ErrWrite,
// later commits fail at once too (sync writers get SERVER_ERROR, async
// writes stay queued until the queue is full, then writers get
// SERVER_ERROR), reads go on from the broken DB, and the failure is
// logged once. At most once a second a commit probes the disk with a
// 1 MiB file; when that succeeds the DB is reopened (replaying its WAL)
// and writes succeed again without a restart. A write answered
// SERVER_ERROR has an unknown outcome: it may read back until the
// reopen (Pebble applied it to its memtable before the sync failed) and
// is then gone. Background errors (a failing flush, retried by Pebble
// several times a second) are counted in persistent_background_errors
// and logged once per episode. A data directory removed under a running
// server fails writes the same way (they would go to an unlinked log,
// and Pebble could not create its next one there).
//
// Any other fatal error of Pebble fails the store until a restart.
// Pebble calls Logger.Fatalf where it cannot go on: a MANIFEST write or
// sync that failed (in a flush or compaction, on Pebble's own
// goroutines), a broken invariant, and a write-ahead log that cannot be
// closed or created when the memtable rotates makes it panic with its
// mutex released. Each of these used to kill the process (a panic on a
// goroutine nobody can recover, or a fatal error of the Go runtime).
// Now the goroutine that hit the error parks forever (one inside a call
// of the engine, other than in the log's rotation, returns the error to
// it instead), every later write of that Pebble DB parks too (so the
// directory stays as the failure left it), and the engine never calls
// the DB again, not even to close it: Pebble's state is unknown and the
// parked goroutine may hold its mutex. The failure is logged once, at
// error level, with its cause ("THE DISK STORE FAILED"), counted in
// persistent_fatal_errors, and persistent_store_failed becomes 1. From
// then on: every write (set, delete, incr, touch, flush_all, in sync and
// async mode) answers ErrWrite (SERVER_ERROR) at once, counted in
// persistent_write_errors, and changes nothing (a sync write whose
// commit was under way gets ErrWrite as soon as the store fails, and is
// undone from memory); reads of what memory or the write-behind queue
// holds go on; other keys are misses (not SERVER_ERROR: a cache may lose
// any item, and the client then reads its source; refilling the cache
// fails until the restart), also for a disk read that was inside Pebble
// when it failed (it may wait forever there, for a mutex the parked
// goroutine holds or a file read that does not return: its reader
// goroutine is left to it, and releases what it read if it ever ends;
// TestFatalDuringRead). A scan (a client's lru_crawler metadump, the
// warm-up, the sweep's and the disk budget's passes) iterates on a
// goroutine of its own that hands copied entries to the caller in
// batches, so one caught inside Pebble likewise ends with the store's
// error (a metadump logs the error, answers SERVER_ERROR with it and
// closes its connection, as for any disk read error: memcache's
// TestMetadumpStoreFails, through a server) and leaves
// the iteration to itself (TestFatalDuringScan, TestFatalDuringLast;
// BenchmarkScan: 182 -> 210 ns per entry of a 100-byte value for the
// copy and the hand-off). The sweep and the evictor stop; stats
// answer (the disk figures are the last known); Close returns an error
// at once (it releases the directory's locks without closing the DB).
// Async writes acknowledged but not yet committed when the store failed
// (persistent_queue_items) are served from memory until the restart and
// then lost, as in a crash. What the operator does: restart mnemo (after
// looking at the disk, with the logged cause). The store opens as after
// a crash: Pebble replays its write-ahead log, so every write that was
// committed (every acknowledged sync write) is there, and the engine
// serves normally (TestWALRotationFails, TestManifestWriteFails and
// TestFatalForeground reopen the directory and read every acknowledged
// write back). A fatal error while the store opens (a MANIFEST that
// cannot be written) makes New return ErrOpen with the cause.
package persistent
