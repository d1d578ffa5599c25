// Package memory owns mnemo's default storage engine: items kept in one
// memory arena outside the garbage-collected heap, a pointer-free sharded
// index over it, log-structured allocation with FIFO segment reclaim and
// frequency-based reinsertion, lazy and background expiry, and flush marks.
// It registers itself as "memory" (engine.Open("memory", env, config)); New
// opens one directly.
//
// The configuration string (see ParseConfig) takes shards=N (index shards,
// rounded up to a power of two), reserve=BYTES (address space reserved for
// SetMemoryLimit to grow into), sweep_interval=DURATION (0 turns the
// background sweep off), sweep_slots=N (index slots per shard per sweep)
// and file=PATH (a restartable arena file, the daemon's -e).
//
// # Layout
//
// The arena is one anonymous private mapping (unix.Mmap) of reserve bytes,
// made PROT_NONE except for the segments within the memory limit, so it
// costs address space only and pages become resident when first written.
// It is cut into segments of max(1 MiB, ItemSizeMax rounded up to a page);
// the usable segments are env.MemoryLimit / segment size (at least 2), so
// the arena never exceeds the budget (the index is extra and reported as
// memory_index_bytes). An item is one packed, 4-byte-aligned record that
// never spans segments: a 16-byte header (atime, an info word with the
// key length, bits and the record's form, CAS), then a CRC in a
// restartable file only, the exptime, the client flags and a value
// length of 4 KiB or more only where they are not zero or do not fit
// the info word, the key, the value; see the drawing next to the
// constants in record.go. Exptimes are 32-bit unix seconds (to 2106).
// Records are self-describing: reclaim walks a segment by their sizes.
// In a file the CRC-32C covers the immutable fields, key and value, not
// the atime and bits that reads update, so that the recovery scan can
// tell a whole record from a torn one; the anonymous arena, which no
// one reads after the process ends, spends neither the 4 bytes nor the
// pass over the value. By default the arena is anonymous
// memory and nothing reads a segment back after the process ends; with
// config file=PATH (the daemon's -e) it is a file that survives the
// process, and the index is rebuilt from it at start (format.go,
// recover.go, persist.go; see Restartable arena below). A record is written
// completely before its offset is published in the index, and every
// allocation holds a complete record, published or not, so reclaim can
// walk a segment record by record.
//
// With 15-byte keys and 100-byte values a record takes 132 bytes (136
// with an exptime or flags, 140 with both; 4 more each in a file) and
// the index about 11.5 bytes per item; BENCHMARKS.md ("RSS after 1M
// items") has where a whole server's RSS goes.
//
// # Index
//
// The index is a power-of-two number of shards (default max(256,
// 4×GOMAXPROCS)), chosen by the top bits of the key's maphash (one seed per
// engine). Each shard is an open-addressing table of uint64 entries,
// linear probing, deleting by backward shift (no tombstones). An entry
// holds 28 bits of hash (the tag, from which the home slot is computed as
// tag×slots/2^28, so a table of any size can grow without reading keys)
// and the record's offset; a tag match is confirmed by comparing the key
// in the arena. A shard grows its own table by a quarter under its own
// lock when it is 4/5 full: no global pause, and tables run 64-80% full.
// Tables of a page or more are anonymous mappings outside the Go heap, so
// the GC neither counts them in its heap goal nor keeps outgrown ones.
//
// # Eviction
//
// Stores append records to a few write heads (stripes, each a segment
// with a bump pointer). When no free segment is left, the oldest full
// segment is reclaimed (FIFO): each record the index still points to is
// dropped if expired or flushed, moved to a spare segment if it was read
// since it was written or last moved (a 2-bit frequency counter in the
// record, raised by a Get with GetTouch and lowered by each move, as in
// CLOCK and S3-FIFO's main queue), and evicted otherwise; moves stop short
// of the room the waiting store needs. The emptied segment becomes the next
// spare. Closed segments with no live record are freed without a scan.
//
// # Compaction
//
// A log-structured arena left to itself fills the whole memory limit
// before it reclaims anything: under overwrite churn every overwritten
// record stays in its segment until the FIFO reaches it, so a server
// with 330 MB of live 16 KB items and -m 2048 grew to 1.29 GB of RSS
// (memcached, which reuses a freed chunk in place, held 350 MB). So the
// arena prefers, when a write head fills: a free segment whose pages are
// resident; then every closed segment with no live record (freed, no
// scan); then compaction: the closed segment with the fewest live bytes,
// if they are at most compact (default 0.85) of a segment, has its live
// records moved into the spare, which becomes the write head, and the
// emptied segment becomes the spare, so the arena gains room without
// growing; and only then a free segment whose pages are not resident
// (never written, or given back). Free segments beyond the few kept warm
// (4 MiB) give their pages back to the kernel (madvise MADV_DONTNEED; in
// a restartable file MADV_REMOVE, which punches them out of the tmpfs
// file), when a write head fills and after each background sweep, so
// resident memory follows the live data down too (after deletes, expiry
// or a flush). Eviction is unchanged: when no free segment is left and
// nothing can be compacted, the FIFO reclaim above runs.
//
// The threshold bounds the cost: a compaction moves at most compact/(1-
// compact) bytes per byte it frees (5.7 at 0.85), and with uniformly
// random overwrites the arena settles where the emptiest segment is
// about that full. Measured in-process (20k keys of 16 KB, overwritten
// three times over), arena/live bytes and records moved per store:
// 1.36x and 0.8 at compact=0.6, 1.2x and 1.6 at 0.75, 1.14x and 2.5 at
// 0.8, 1.10x and 3.7 at 0.85; a whole server under 1:1 churn measured
// 1.21x RSS/live at 0.8 and 1.17x at 0.85 (the binary and the Go heap
// are the rest), at 1.16-1.19x memcached's CPU per request against
// 0.99x without compaction. Moves keep a record's frequency counter,
// and count as memory_compacted (memory_compactions segments).
// compact=0 gives the old trade: no moves until the arena is full, and
// every page the arena ever touched stays resident, which spends memory
// on dead records to save the copying (see BENCHMARKS.md, "RSS under
// overwrite churn").
//
// Hit ratios measured by TestHitRatioZipf (read-through Zipf(0.99), one
// million operations, against an exact LRU simulated with the same byte
// budget; the engine's budget includes its spare segment and write heads):
//
//	keys   value   budget   engine   exact LRU
//	100k   1000 B   5 MiB   0.651    0.658
//	100k   1000 B  10 MiB   0.735    0.732
//	100k   1000 B  20 MiB   0.813    0.807
//	1M      100 B   4 MiB   0.650    0.661
//	1M      100 B   8 MiB   0.724    0.721
//
// (The 10 MiB row is from format version 2's 20-byte header; the others
// were measured with the former 36-byte header.) A 1-bit counter (plain CLOCK)
// measured 1-3% lower, so the counter has two bits. With env.NoEvict (memcached -M) the reclaim never evicts: it
// compacts the full segment with the fewest live bytes into the spare;
// when no full segment's live bytes and the waiting store fit there, it
// first sweeps the whole index (if items may have died since the last such
// sweep) and looks again, and Update fails with engine.ErrNoMemory when
// that cannot make room. (Shrinking the memory limit evicts even with -M.)
//
// Counters (memcached names): evictions, evicted_unfetched (never read),
// evicted_active (evicted although read since the last move, because the
// spare ran out of room or there was none), evicted_nonzero (evicted with
// an exptime), evicted_time, reclaimed (dead items the segment reclaim
// met: memory reused from an expired item, as memcached's LRU tail pull),
// expired_unfetched (never-read expired items the reclaim or the sweep
// removed), get_expired and get_flushed (lookups that met a dead item and
// removed it), memory_reinserted (moves, also
// moves_within_lru), direct_reclaims (segment reclaims), outofmemory, and
// the background sweep's lru_crawler_starts, crawler_items_checked and
// crawler_reclaimed; see Engine.Stats for how each maps to memcached's.
//
// # Expiry
//
// Expired and flushed items are absent on access and removed from the
// index when met (Get, Update, Delete). A background goroutine, started by
// New and stopped by Close, visits sweep_slots slots of every shard each
// sweep_interval and removes dead entries, so curr_items stays accurate
// and reclaim skips their records; it holds a shard's lock for at most 128
// slots and yields its processor, and its thread's core (sched_yield on
// Linux), after each hold. Get, Update and Delete read env.Clock
// once each.
//
// Flush sets a mark, never scans. An immediate flush at time now records
// (now, next CAS): items last stored or touched before now, or with a
// smaller CAS, are flushed, which is memcached's item_is_flushed with
// oldest_live = now-1 and oldest_cas. A delayed flush records at: once the
// clock reaches at, items whose atime is before at are flushed. A later
// Flush replaces a pending one; a flush whose time has passed is folded
// into the standing mark, so it keeps applying (memcached forgets it and
// can revive such items).
//
// # Concurrency
//
// A read hit takes only its shard's read lock; GetTouch updates the
// record's atime and bits with atomic operations on aligned words. Update
// runs the Mutator under the shard's write lock; for OpStore it unlocks,
// allocates and writes the record, relocks, checks the key still has the
// entry and metadata the Mutator saw (else the Mutator runs again) and
// publishes. OpMeta rewrites the header in place under the lock, unless
// it gives the item an exptime or flags its record has no room for: then
// the record is written again, like a store of the current value that
// keeps its atime and frequency counter. No shard lock is held while
// allocating, because reclaim takes shard locks; lock order is stripe,
// then the allocator lock, then one shard at a time (only the invariant
// check holds every shard's read lock at once, taken in index order under
// the allocator lock; nothing else holds two shard locks). A segment's
// pending writers are counted so that reclaim never reads a record that is
// still being written. Iterate snapshots one shard's table at a time and
// calls fn with no lock held.
//
// # Memory
//
// SetMemoryLimit grows the usable segments within the reserved address
// space (by default four times the starting limit, at least 1 GiB; config
// reserve=) at once; shrinking releases free segments at once (madvise
// MADV_DONTNEED and PROT_NONE), evicts full segments beyond the new limit
// and retires the ones being written when they are reclaimed. With
// compaction on, free segments beyond a few give their pages back as
// well (see Compaction); memory_arena_resident_bytes counts the segments
// written since they were mapped or last gave their pages back, and
// memory_segments_released how often a free segment gave them back.
// Get, and Update storing a value in steady state, allocate nothing.
//
// # Restartable arena
//
// With file=PATH (-e FILE) the arena is the tail of a file mapped
// MAP_SHARED, exactly the memory limit (no reserve: SetMemoryLimit cannot
// change it), laid
// out as drawn in format.go: a file header, two meta copies, a segment
// table of generations, the segments. Records keep the format of
// record.go with a CRC field (4 bytes per record, the only per-record
// cost of restartability), two state bits of the mutable bits byte, a
// zero info word that ends each segment's chain, and one generation word
// per segment.
//
// Crash model: the process may die at any instruction (kill -9, a panic,
// the OOM killer) and every store it executed before is in the file,
// because the page cache, which tmpfs and DAX mounts are, outlives the
// process. No msync or fsync is done, so a power loss or kernel crash
// may lose or tear anything: out of scope, as for memcached's -e. The
// ordering below relies only on program order of stores, which the
// stores that matter keep: they are sync/atomic operations (the Go
// compiler neither reorders nor splits them, and an aligned word is
// written whole). Stores to a record's body are plain and may land in any
// order; nothing depends on their order because a record stays pending
// until they are done.
//
// A scan after a restart indexes exactly the records that are reachable
// by a segment's chain, in state live, and whose CRC checks; of two such
// records of one key the later (younger generation, then larger offset)
// wins and the other is stored dead. Per operation, the stores in order
// and why the process may die between any two of them:
//
//   - allocate (under the stripe lock, or amu for a reclaim's spare): (1)
//     0 into the info word after the allocation, (2) the allocation's
//     value length word and info word, state pending. Before (1) the
//     chain ends where it ended; after (1) it ends at the new end and the
//     allocation's info word is still the old end marker (0), so the
//     chain stops there; after (2) the chain reaches the new end and the
//     allocation is a pending record. Later allocations come after (2),
//     so a record's frame is in place before any record after it.
//   - set (also add, replace, append, prepend, incr, decr, cas: every
//     OpStore): allocate; write the body and CRC (any order: pending);
//     under the shard lock: (3) state live, (4) the old record's state
//     dead, then the index (RAM). Dying before (3) leaves the old
//     record: the set was not acknowledged. Between (3) and (4) both are
//     live and the scan keeps the later one, normally the new record (the
//     old one is newer by position only if a reclaim moved it to a younger
//     spare, and then it is the state before a set in flight): either is
//     the state of a request in flight. After (4) only the new record.
//     A store whose re-check fails (the key changed meanwhile) stores its
//     allocation dead and tries again: a pending record is never
//     recovered, so an incr computed from a stale value never comes back.
//   - delete: under the shard lock, (1) the record's state dead, then the
//     index. One store: before it the delete did not happen.
//   - evict (reclaim), and expiry or flush met by a lookup, the sweep or a
//     reclaim: (1) state dead before the entry leaves the index. Eviction
//     must store it: a segment is reclaimed while clients keep writing,
//     so an evicted record left live could outlive a later delete of its
//     key. Expired and flushed records are dead by rule anyway; the store
//     keeps a backwards clock from reviving them.
//   - move (reclaim keeps a read item): allocate in the spare (amu);
//     copy the body with state pending; (3) state live, (4) the source
//     dead, index. Between (3) and (4) two identical records are live.
//   - touch, gat, and every OpMeta (meta commands' flags, exptime, CAS):
//     rewrites the record as a set of the current value does, because
//     exptime, flags and CAS are under the CRC and an in-place rewrite
//     of them is several stores. (In the anonymous arena they are still
//     rewritten in place.) Costs a copy of the value per touch with -e; a
//     later format can keep the exptime outside the CRC and make a touch
//     of a record that has an exptime field one aligned store.
//   - flush_all (Flush): write the new mark into the meta copy not holding
//     the current meta (storeMeta: CRC cleared, fields, CRC last; txid one
//     more), then the mark in RAM, then acknowledge. A torn copy fails its
//     CRC and the other copy (the old mark) is used: the flush was in
//     flight. Items are not touched: the mark flushes them at the scan
//     and lazily after it, as in RAM.
//   - segment reuse (a free segment becomes a head or a spare): (1) 0 into
//     its first info word, (2) its new generation in the segment table.
//     Every record of a freed segment was already dead (evicted, moved,
//     deleted, overwritten, or pending): after (1) none is reachable, and
//     before (2) the segment has an empty chain under its old
//     generation, which orders nothing. Stale bytes past a chain's end are
//     never read, whatever they hold.
//   - segment release (compaction on: a free segment beyond the few kept
//     warm, see Compaction, and at start every free segment beyond
//     them): MADV_REMOVE punches its pages out of the file, so it reads
//     as zeros, page by page in any order. Every record in it was dead
//     already, and a zero info word ends a chain, so whatever mix of
//     zeros and dead records a crash leaves has no live record.
//   - compaction: a move (above) of every live record of one segment.
//   - CAS counter: not stored per operation. A start sets it above the
//     meta's CAS high-water mark and every checksummed record's CAS
//     (live, dead or pending), so no CAS of a record still in the file is
//     issued again. The generation counter likewise restarts above the
//     segment table's largest.
//   - Close (graceful: SIGUSR1, SIGTERM, shutdown): a meta with the clean
//     flag, CAS and generation high-water marks; a start clears the flag
//     by writing its own meta before serving. The flag selects the stats
//     line (clean or crash recovery); the scan runs either way because
//     the index is not kept in the file.
//
// A start whose file has another -m (segment count), segment size, -I or
// -C, another format version, or no valid meta copy starts empty (the file
// is reinitialized) with one log line saying why. New scans the file
// before it returns, so the daemon (whose port is already bound, so
// clients wait in the backlog) answers nothing until the index is whole:
// no miss for an item in the file; Stats reports memory_restart (clean,
// crash or empty), memory_restart_items and memory_restart_seconds.
//
// The persistent engine keeps an anonymous arena for its memory tier: it
// already restarts from its durable store and warms memory in the
// background, and two restartable copies of one item (arena file and
// Pebble) would need an order between them; so -e needs the memory
// engine.
//
// Measured (2-core VM, tmpfs): 1M items of 100 bytes restart in 0.17 s
// (TestFileRestartMillion: open, scan, index); BenchmarkSetFile runs about
// 1.2x BenchmarkSet's time per store (the two state stores, one on the
// old record's cold cache line), BenchmarkGetFile as BenchmarkGet.
//
// Record overhead, 15-byte key, 100-byte value, no flags or exptime: 132
// bytes per record in the anonymous arena (a 16-byte header, 1 byte of
// padding), 136 in the restartable one (and its CRC); memcached 1.6.18 takes 48 bytes of item
// header plus 8 of CAS plus key, suffix and value in a 192-byte slab
// chunk. The restartable file adds 8 bytes per segment and three pages.
//
// # Invariants
//
// Built with the invariants tag (go test -tags invariants, see package
// internal/invariants), the engine checks itself and panics at the first
// inconsistency: after reclaims, SetMemoryLimit and at Close, a full
// check that every index entry points at a valid record of its key in a
// write head or closed segment, and that the shards' item and byte counts,
// the segments' live bytes and the segment lists agree with the index;
// on the hot paths, cheap local checks (the record a Get hits checks; a
// store is found right after it is published; counts never go negative).
// Without the tag the checks compile away. See invariants.go.
package memory
