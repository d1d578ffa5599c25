package persistent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	stdbits "math/bits"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mnemo-cache/mnemo/engine"
)

// stripe is a slice of the key space: the writes of its keys not yet on
// disk, and the lock that orders them.
type stripe struct {
	mu    sync.Mutex
	index int // in Engine.stripes
	// wseq counts the changes to the stripe's durable state (a write
	// queued, a batch committed); a reader that released mu around a
	// disk read compares it to know that nothing changed meanwhile.
	wseq uint64
	// pending maps keys to their newest queued record (nil: deleted),
	// not yet collected by the flusher; inflight holds the records of the
	// batch being committed. Records are never modified once queued.
	pending  map[string][]byte
	inflight map[string][]byte
	spare    map[string][]byte
	// pbytes is what pending counts in the queue's bytes, and cbytes
	// what it will count in a commit (commitSize), so the flusher can cap
	// a commit's size without reading the map; since is when its oldest
	// pending write was queued (unix ns), read by the flusher without the
	// lock for the stripes a capped round leaves.
	pbytes int64
	cbytes int64
	since  atomic.Int64
	_      [64]byte
}

// queued returns key's newest queued record: ok is false when the key has
// nothing queued; a nil record is a deletion. s.mu must be held.
func (s *stripe) queued(key []byte) (rec []byte, ok bool) {
	if rec, ok = s.pending[string(key)]; ok {
		return rec, true
	}
	rec, ok = s.inflight[string(key)]
	return rec, ok
}

// round is one commit of the write-behind queue; done is closed when it
// is over, err then tells how it went.
type round struct {
	done chan struct{}
	err  error
}

// queue is the write-behind queue: the stripes' pending maps, drained by
// one flusher goroutine into one store batch per round. In Async mode a
// round starts once the oldest queued write is Interval old (so a round
// that follows a long commit starts at once), or sooner when the queue is
// half full, and collects at most commitCap bytes of stripes, starting
// where the last capped round stopped; what is left runs in the next
// round at once. In Sync mode writers wake it and wait for the round
// holding their write, so the writes that arrive during one commit share
// the next (group commit), uncapped: a writer waits for the round it
// was queued in.
type queue struct {
	e *Engine

	items, bytes atomic.Int64 // queued and in-flight entries
	// cbytes is what the queued and in-flight entries count in commits
	// (commitSize): the work left to the flusher, which late compares
	// with the drain rate.
	cbytes atomic.Int64
	// drain is the rate at which the flusher empties the queue, in
	// commit bytes per second of the flusher's time (math.Float64bits;
	// 0: not measured yet): see noteRate.
	drain atomic.Uint64
	// reserve is the longest commit of the last one or two drainWindows
	// (ns): late keeps room for one more like it (admitLimit).
	reserve atomic.Int64
	// l0 and l0stop are the store's level 0 sublevels and the count at
	// which it stops commits, as the flusher last read them
	// (noteLevel0): late bounds what is queued as level 0 nears the stop
	// (l0Room).
	l0, l0stop atomic.Int32
	l0mem      atomic.Int64 // the store's memtable size then (0: q.memtable)
	// memtable is Pebble's MemTableSize (memTableSizeFor): a commit that
	// fills one may wait for the flush of the last (admitLimit), and
	// Pebble takes two of them at memory speed before it stalls
	// (noteRate).
	memtable int64
	// cur is the round that will collect the writes queued now. A
	// writer reads it under its stripe lock when it queues; the flusher
	// replaces it before it collects any stripe, so a writer may wait
	// for one round more than needed, never one too few.
	cur atomic.Pointer[round]
	// dirty has a bit for each stripe whose pending map may be non-empty:
	// set by the write that makes it non-empty, cleared by the flusher
	// before it collects the stripe.
	dirty [nStripes / 64]atomic.Uint64

	kick        chan struct{}
	room        atomic.Pointer[chan struct{}] // closed after each round
	stopc, done chan struct{}
	stopErr     error

	healthy       atomic.Bool  // the last commit succeeded
	firstPending  atomic.Int64 // unix ns of the oldest write not yet collected; 0: none
	inflightSince atomic.Int64 // unix ns of the oldest write in the batch being committed
	errSeq        atomic.Uint64
	lastErr       atomic.Pointer[error]

	// maxCommit caps an async commit, in commit bytes (commitSize): the
	// batch stays below Pebble's large-batch threshold (see
	// maxCommitFor). indexExtra is what the disk budget's index entry
	// adds to a stored item's commit size (0 without a budget).
	maxCommit  int64
	indexExtra int64

	// The sweep's range deletions (sweeprange.go); setGen counts the
	// commits that write items, odd while one is under way (written by
	// the flusher only).
	ranges rangeQueue
	setGen atomic.Uint64

	// Flusher only.
	ops       []kvOp
	keys      []byte // the batch's store keys, reused
	touched   []int
	dirtyList []int
	cursor    int     // stripe where the next capped round starts
	rate      float64 // commit rate, commit bytes per second of commit time (EWMA)
	capped    bool    // the last round left collectable writes behind
	lastLog   time.Time
	failing   int
	idle      bool      // the last round found nothing to commit
	burst     int64     // commit bytes since the heap was last given back
	released  time.Time // when it was

	// The drain rate (noteRate): whether the last successful round was
	// capped (the next one followed it at once), when it ended, and the
	// decayed sums of commit bytes and seconds.
	chained               bool
	lastDone              time.Time
	drainBytes, drainTime float64
	shortBytes, shortTime float64
	// The longest commit of the current and of the previous
	// drainWindow, and when the current one began (reserve).
	longCur, longPrev time.Duration
	longSince         time.Time
	l0At              time.Time // when a Sync mode flusher last read level 0
}

// An Async round collects at most commitCap() commit bytes: what the
// disk commits in about one Interval at the rate the commits so far
// reached (commit bytes per second of commit time, an EWMA), at least
// minCommit and at most maxCommit. A commit's duration, the second part
// of the loss window, stays about one Interval (a commit of the whole
// queue, 64 MiB, took over a second under load), while a fast disk still
// gets large batches (a fixed 1 MiB cap cost throughput: an fsync per
// MiB), up to the size Pebble still applies to its memtable.
const minCommit = 1 << 20

// Pebble's memory: its memtables and the commit's batch (on the Go heap
// in a build without cgo).
const (
	// memTableSize is Pebble's MemTableSize without a small disk
	// budget: 8 MiB, twice Pebble's default, so that a commit can be
	// 3 MiB (maxCommitFor) and an overwritten key is more often
	// replaced within a memtable (less for flushes and compactions to
	// write). Pebble holds at most MemTableStopWritesThreshold (2) of
	// them queued plus one kept for reuse.
	memTableSize = 8 << 20
	// memtableEntryOverhead is what Pebble (v2.1.7) counts for an entry
	// of a batch besides its key and value when it decides whether the
	// batch fits its memtable: a skiplist node with a full tower
	// (arenaskl.MaxNodeSize: 184 bytes), the 8-byte key trailer and 3
	// bytes of alignment.
	memtableEntryOverhead = 195
)

// memTableSizeFor returns Pebble's MemTableSize for a disk budget of
// diskSize bytes (0: none). A budget below 512 MiB gets smaller memtables
// (a 64th of the budget, at least 256 KiB), so that Pebble's fixed costs
// stay a small part of the budget: each memtable has a write-ahead log
// of about its size, and Pebble keeps two in use and three for reuse
// (measured with bench/budget.sh: 8 MiB memtables' logs were 23-30 MiB
// of a 64 MiB budget, and the peak 1.43x of it; a 64th brought the
// peak to 1.11x, and 1.29x at 8 MiB).
func memTableSizeFor(diskSize int64) uint64 {
	if diskSize > 0 && diskSize < 512<<20 {
		return uint64(min(max(diskSize/64, 256<<10), memTableSize))
	}
	return memTableSize
}

// maxCommitFor returns the largest async commit, in commit bytes, for
// memtables of m bytes: 3/4 of Pebble's large-batch threshold (half a
// memtable). A batch at or above the threshold is not applied to the
// memtable: Pebble queues it whole as a memtable of its own ("flushable
// batch"), which keeps the batch's buffer until it is flushed and writes
// a small table per commit (measured: 18 MiB of batches held after a
// fill with 2-8 MiB commits).
func maxCommitFor(m uint64) int64 {
	return int64(m/2) * 3 / 4
}

// commitSize returns what a write of key (rec nil: a deletion) counts
// in a commit: Pebble's accounting of its entries in a memtable (the
// store key is the key and a prefix byte), with the disk budget's index
// entry for a stored item.
func (q *queue) commitSize(key, rec []byte) int64 {
	return q.commitLen(len(key), rec)
}

// commitLen is commitSize for a key of klen bytes.
func (q *queue) commitLen(klen int, rec []byte) int64 {
	n := int64(1 + klen + len(rec) + memtableEntryOverhead)
	if rec != nil {
		n += q.indexExtra + int64(klen)
	}
	return n
}

// commitCap returns the most commit bytes an Async round collects.
// Flusher only.
func (q *queue) commitCap() int64 {
	return min(q.maxCommit, max(minCommit, int64(q.rate*q.e.cfg.Interval.Seconds())))
}

// noteRate updates the commit rate with a successful commit of n commit
// bytes that took d, and the drain rate that late uses. The drain rate
// counts a round's whole time when it followed a capped one at once
// (the flusher behind: collecting the stripes, building the batch,
// waiting for the processor, as well as the commit), so that it is the
// rate at which a queue that outruns the disk empties; otherwise the
// commit's time.
func (q *queue) noteRate(n int64, d time.Duration) {
	now := time.Now()
	round := d
	if q.chained {
		round = max(round, now.Sub(q.lastDone))
	}
	q.chained, q.lastDone = q.capped, now
	if now.Sub(q.longSince) > drainWindow {
		q.longPrev, q.longCur, q.longSince = q.longCur, 0, now
	}
	q.longCur = max(q.longCur, d)
	q.reserve.Store(int64(max(q.longCur, q.longPrev)))
	if n < minCommit/4 || d <= 0 {
		return // small commits are fsync-bound: they say little of the rate
	}
	r := float64(n) / d.Seconds()
	if q.rate == 0 {
		q.rate = r
	} else {
		q.rate += (r - q.rate) / 4
	}
	f := math.Exp(-round.Seconds() / drainWindow.Seconds())
	q.drainBytes = q.drainBytes*f + float64(n)
	q.drainTime = q.drainTime*f + round.Seconds()
	// The drain rate late uses is a lower bound of the disk's: Pebble
	// takes up to two memtables' worth at memory speed before a commit
	// waits for a flush, so those bytes of the window (absorbed) say
	// nothing of the rate at which the disk keeps up (with them, writers
	// starting on an idle store were let in at the first fast commits'
	// rate and waited 4 s in TestLagBoundStalls). It is also the rate
	// over a quarter of the window when that is lower: a disk that slows
	// down (flushes and compactions catching up) is followed within
	// 0.5 s, where the 2 s window let writers in at the rate of the
	// second before. Until that bound reaches assumedDrain, the window's
	// own rate counts, up to assumedDrain.
	whole := q.drainBytes / q.drainTime
	absorbed := (q.drainBytes - float64(2*q.memtable)) / q.drainTime
	g := math.Exp(-round.Seconds() / (drainWindow / 4).Seconds())
	q.shortBytes = q.shortBytes*g + float64(n)
	q.shortTime = q.shortTime*g + round.Seconds()
	q.drain.Store(math.Float64bits(max(min(absorbed, q.shortBytes/q.shortTime), min(whole, assumedDrain))))
}

// drainWindow is how far back the drain rate looks: each commit counts
// with a weight that halves every 0.7 drainWindow of commit rounds after
// it. The rate is the bytes of those commits over their time (not an
// average of each commit's rate): Pebble's commits alternate between a
// few milliseconds for 3 MiB (into the memtable) and a stall of 100-500
// ms while a full memtable is flushed, and an average of the rates
// (0.4-0.9 GB/s) counted the stalls for almost nothing, where the
// queue emptied at 30-60 MB/s.
const drainWindow = 2 * time.Second

// noteOldest records t (unix ns) as the time of a queued write not yet
// collected, if it is older than the one recorded.
func (q *queue) noteOldest(t int64) {
	for {
		old := q.firstPending.Load()
		if (old != 0 && old <= t) || q.firstPending.CompareAndSwap(old, t) {
			return
		}
	}
}

func (q *queue) init(e *Engine) {
	q.e = e
	q.kick = make(chan struct{}, 1)
	q.stopc = make(chan struct{})
	q.done = make(chan struct{})
	ch := make(chan struct{})
	q.room.Store(&ch)
	q.cur.Store(&round{done: make(chan struct{})})
	q.healthy.Store(true)
	// A small disk budget's memtables (memTableSizeFor) would make
	// commits smaller than minCommit: those keep minCommit and may be
	// flushable batches (with 4 KiB values and a 4 MiB queue, commits of
	// 192 KiB reordered the writes in the budget's index by more than its
	// test allows: the index follows commits, which follow stripes).
	q.memtable = int64(memTableSizeFor(e.cfg.DiskSize))
	q.maxCommit = max(minCommit, maxCommitFor(uint64(q.memtable)))
	if e.cfg.DiskSize > 0 {
		// indexKey (9 bytes) and its value (CAS, size: 12 bytes, then
		// the key, counted by commitSize), one more memtable entry.
		q.indexExtra = 9 + 12 + memtableEntryOverhead
	}
	for i := range e.stripes {
		e.stripes[i].pending = map[string][]byte{}
	}
}

// wake makes the flusher run a round now.
func (q *queue) wake() {
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// enqueueLocked queues rec (nil: a deletion) as key's newest state and
// returns the round that will commit it. The caller holds s.mu.
func (q *queue) enqueueLocked(s *stripe, key, rec []byte) *round {
	if old, ok := s.pending[string(key)]; ok {
		q.bytes.Add(int64(len(rec) - len(old)))
		s.pbytes += int64(len(rec) - len(old))
		c := q.commitSize(key, rec) - q.commitSize(key, old)
		s.cbytes += c
		q.cbytes.Add(c)
		q.e.st.coalesced.Add(1)
	} else {
		q.items.Add(1)
		q.bytes.Add(int64(len(key) + len(rec) + entryOverhead))
		s.pbytes += int64(len(key) + len(rec) + entryOverhead)
		c := q.commitSize(key, rec)
		s.cbytes += c
		q.cbytes.Add(c)
		if len(s.pending) == 0 {
			i := s.index
			q.dirty[i/64].Or(1 << (i % 64))
			s.since.Store(time.Now().UnixNano())
		}
	}
	s.pending[string(key)] = rec
	s.wseq++
	q.e.st.queued.Add(1)
	if len(rec) >= recHdrSize && binary.LittleEndian.Uint64(rec[offExptime:]) != 0 {
		q.e.st.ttlWrites.Add(1) // the sweep's pace follows these (pace.go)
	}
	if q.firstPending.Load() == 0 {
		q.firstPending.CompareAndSwap(0, time.Now().UnixNano())
	}
	if q.bytes.Load() > q.e.cfg.Queue/2 {
		q.wake()
	}
	return q.cur.Load()
}

// wait waits, in Sync mode, for the round r that holds a write.
func (q *queue) wait(r *round) error {
	if q.e.cfg.Durability != Sync {
		return nil
	}
	q.wake()
	<-r.done
	if r.err != nil {
		return fmt.Errorf("%w: %v", ErrWrite, r.err)
	}
	return nil
}

// lagFactor bounds the async loss window: while commits succeed, no
// write waits for the disk longer than lagFactor times Interval (plus
// what a commit takes beyond the rate measured), so what a crash loses
// was acknowledged at most that long before it. A writer waits (late)
// while the oldest write not yet on disk, given the time the flusher
// needs to commit everything queued at its measured drain rate, would
// pass that age. Without it, writes faster than the disk filled the
// queue (up to 64 MiB) and the oldest waited seconds; with a bound on
// the oldest write's age alone, writers stopped only once it was passed,
// with up to `queue` bytes already queued, and the oldest then waited
// for them (1.8-2.0 s with 32 KB values, BENCHMARKS.md).
const lagFactor = 5

// late reports whether an async writer must wait for the lag bound:
// the last commit succeeded (on a failing disk the queue's bound
// applies), and the oldest write not yet on disk is admitLimit old, or
// would be before the flusher commits what is queued (cbytes) at its
// drain rate (assumedDrain until a commit measured it), or what is
// queued would fill more memtables than the store's level 0 has room
// for before it stops commits (l0Room). The queue is
// committed in stripe order from a cursor, not oldest first, so the
// oldest write may be in the last commit of all that is queued: the
// whole queue counts.
func (q *queue) late() bool {
	if q.e.cfg.Durability != Async || !q.healthy.Load() {
		return false
	}
	if q.l0Held() {
		return true
	}
	lag := q.lag()
	if lag == 0 {
		return false
	}
	r := math.Float64frombits(q.drain.Load())
	if r == 0 {
		r = assumedDrain
	}
	queued := q.cbytes.Load()
	if room := l0Room(int(q.l0.Load()), int(q.l0stop.Load()), q.l0Fill()); room >= 0 && queued > room {
		return true
	}
	lag += time.Duration(float64(queued) / r * float64(time.Second))
	return lag > q.admitLimit(r)
}

// l0Room returns how many commit bytes late lets the queue hold while
// the store's level 0 holds sublevels (with the memtables waiting for
// their flush, each a sublevel to come) of the stop at which the store
// stops commits, with memtables that take memtable commit bytes each
// (l0Fill): a memtable for each
// sublevel left below the stop's last two (one for the memtable being
// filled, whose rotation takes level 0 to the stop's last), so that
// what is queued fills at most the memtables level 0 still has room
// for; none from there (l0Held). A stop is Pebble's L0StopWritesThreshold: the
// commit that rotates a full memtable waits, with the writes of a whole
// queue behind it, until a compaction of level 0 ends; through a server
// with 32 KB values those stops grew to 0.41 s and took the oldest
// write not yet on disk to 0.64-0.77 s, where without them it stayed
// within 0.16-0.18 s (BENCHMARKS.md, "Async loss window under heavy
// writes"). Writers held back here wait before their writes are queued,
// so the writes already queued do not wait with them; level 0 stays
// below the stop when writers come in no faster than compactions take
// sublevels away (as RocksDB's delayed write rate does). -1: no bound.
func l0Room(sublevels, stop int, memtable int64) int64 {
	if stop <= 0 {
		return -1
	}
	return int64(max(0, stop-2-sublevels)) * memtable
}

// l0Fill returns how many commit bytes fill one of the store's memtables
// before it rotates, at least: the store rotates a memtable when the
// next commit does not fit, so one holds more than its size less the
// largest commit (3 MiB commits into 8 MiB memtables: two, 6 MiB,
// measured), and a quarter of it when commits are larger than that
// (Pebble's first memtables are small: 256 KiB, each next one twice the
// last; a batch of half a memtable or more is a flushable batch of its
// own).
func (q *queue) l0Fill() int64 {
	mem := q.l0mem.Load()
	if mem <= 0 || mem > q.memtable {
		mem = q.memtable
	}
	return max(mem-q.maxCommit, mem/4)
}

// l0Held reports whether level 0 has no room left for what writers
// would queue (l0Room): one sublevel more and the store stops commits.
// late then holds every async writer, an empty queue or not (the
// writes trickling in one round at a time filled a memtable while a
// compaction ran, and the stop came all the same), and the flusher reads
// level 0 every l0Poll (nextRound) until it has room again, or for at
// most l0MaxHold per writer (waitRoom). The hold lasts as long as the
// store's compaction of level 0 (0.25-0.5 s through a server with 32 KB
// values); a store whose background work fails reports no level 0
// (pebbleKV.Level0), so its writers are not held for compactions that
// do not come, and wait for the store as before.
func (q *queue) l0Held() bool {
	stop := q.l0stop.Load()
	return stop > 0 && q.l0.Load() >= stop-2
}

// l0MaxHold is the longest a writer waits for level 0 (l0Held), a last
// resort: a hold of 5 intervals (0.5 s) ended before most compactions
// of level 0 did, and the writers it let in took level 0 to the stop.
const l0MaxHold = 5 * time.Second

// l0Poll is how often the flusher reads level 0 while writers are held
// for it (l0Held).
const l0Poll = 10 * time.Millisecond

// noteLevel0 reads the store's level 0 for late. Flusher only, after
// each successful commit (the commit may have rotated a memtable) and in
// each round while writers are held (l0Held), under e.kvmu. In Sync mode,
// whose writers late does not hold, only for the statistic, at most every
// syncL0Every: a group commit every few hundred microseconds would pay
// for Pebble's metrics each time.
func (q *queue) noteLevel0() {
	if q.e.cfg.Durability != Async {
		now := time.Now()
		if now.Sub(q.l0At) < syncL0Every {
			return
		}
		q.l0At = now
	}
	s, stop, mem := q.e.kv.Level0()
	q.l0.Store(int32(s))
	q.l0stop.Store(int32(stop))
	q.l0mem.Store(mem)
	q.e.st.l0Sublevels.Store(int64(s))
}

// syncL0Every is how often at most a Sync mode flusher reads level 0.
const syncL0Every = 100 * time.Millisecond

// admitLimit returns how old late lets the oldest write not yet on disk
// get, counting the drain of what is queued at the drain rate r: the
// lag bound (lagFactor intervals) less a reserve for one stall, at least
// minAdmit intervals. Under writes faster than the disk Pebble
// alternates commits of a few milliseconds with stalls: while it
// flushes a full memtable (MemTableStopWritesThreshold), and, longer,
// while it compacts level 0 (L0StopWritesThreshold: traced through a
// server with 32 KB values, stalls growing from 0.1 to 0.4 s as the
// store grew, while flushes took a few ms). The drain rate counts the
// stalls on average, but one that starts just after writers were let
// in adds its whole length to their wait (lag_max 1.1-1.6 s at a bound
// of 0.5 s, BENCHMARKS.md). The reserve is the longest of the commits of the
// last 2-4 s, and at least the flush of one memtable at the drain rate
// (a stall's length when the queue outruns the disk, known before the
// first stall: 0.8 s for 8 MiB at assumedDrain, a few ms on a disk that
// keeps up).
func (q *queue) admitLimit(r float64) time.Duration {
	iv := q.e.cfg.Interval
	reserve := max(time.Duration(q.reserve.Load()), time.Duration(float64(q.memtable)/r*float64(time.Second)))
	return max(lagFactor*iv-reserve, minAdmit*iv)
}

// minAdmit is the least admitLimit, in intervals: a round starts once
// the oldest queued write is an interval old, so writers held at one
// interval would wait for every round. A stall longer than lagFactor -
// minAdmit intervals therefore still takes the oldest write past the
// bound, by what it is longer.
const minAdmit = 2

// assumedDrain is the drain rate late assumes before a commit measured
// it (commit bytes per second): a slow disk's. Writers at memory speed
// otherwise filled the queue before the first commit ended (16 MiB in
// 50 ms in TestLagBoundQueued), and the oldest write then waited for all
// of it.
const assumedDrain = 10 << 20

// waitRoom makes a writer wait while the queue is full or late
// (back-pressure). It gives up with ErrWrite when a commit fails while
// it waits for room.
func (q *queue) waitRoom() error {
	limit := q.e.cfg.Queue
	if q.bytes.Load() <= limit && !q.late() {
		return nil
	}
	if q.bytes.Load() <= limit {
		q.e.st.lagWaits.Add(1)
		var held time.Time
		for q.late() && !q.e.closed.Load() {
			ch := *q.room.Load()
			if !q.l0Held() {
				q.wake()
			} else if held.IsZero() {
				held = time.Now()
				q.e.st.l0Waits.Add(1)
			} else if time.Since(held) > l0MaxHold {
				break
			}
			<-ch
		}
		if q.bytes.Load() <= limit {
			return nil
		}
	}
	q.e.st.waits.Add(1)
	seq := q.errSeq.Load()
	for q.bytes.Load() > limit {
		if q.e.closed.Load() {
			return engine.ErrClosed
		}
		ch := *q.room.Load()
		q.wake()
		<-ch
		if q.errSeq.Load() != seq && q.bytes.Load() > limit {
			return fmt.Errorf("%w: the write-behind queue is full and the disk is failing: %v", ErrWrite, q.err())
		}
	}
	return nil
}

// err returns the last commit error.
func (q *queue) err() error {
	if p := q.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// run is the flusher goroutine.
func (q *queue) run() {
	defer close(q.done)
	t := time.NewTimer(q.e.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-q.stopc:
			q.stopErr = q.flushAll()
			if q.stopErr != nil && q.e.cfg.Durability == Async {
				q.stopErr = q.flushAll() // one more try for the acknowledged writes
			}
			closed := make(chan struct{})
			close(closed)
			old := q.room.Swap(&closed)
			close(*old)
			return
		case <-t.C:
		case <-q.kick:
		}
		if q.e.cfg.Durability == Sync {
			q.gather()
		}
		q.flush()
		q.release()
		t.Reset(q.nextRound())
	}
}

// maxGather bounds the yields of gather.
const maxGather = 8

// gather lets the writers that are ready join a Sync round before the
// flusher collects it: it yields the processor (runtime.Gosched) while
// the last yield let more writes into the queue, at most maxGather
// times. A writer woken by the last round (its reply sent, its next
// request already read) is runnable but had not run yet when a writer's
// kick woke the flusher, so without it a round took the few writers
// that came first: measured with 50 connections, 3 to 10 writes per
// commit and 11-23k sets/s; with it about 30 per commit and 42-45k
// sets/s (BENCHMARKS.md). A yield with nothing else runnable returns at
// once: a lone writer waits for no timer. It stops after two yields in a
// row that let no write in, not one: one in 61 times the scheduler runs
// the yielding goroutine again before the local run queue (its fairness
// check of the global queue, where Gosched puts it), and then one yield
// let nobody run (TestSyncGather failed 4% of its runs that way).
func (q *queue) gather() {
	idle := 0
	for range maxGather {
		n := q.items.Load()
		runtime.Gosched()
		if q.items.Load() != n {
			idle = 0
		} else if idle++; idle == 2 {
			return
		}
	}
}

// The flusher gives the Go heap's free memory back to the OS
// (debug.FreeOSMemory: a garbage collection, then every free page
// returned) at the first idle round after at least releaseAfter commit
// bytes, at most once per releaseEvery. A write burst leaves garbage (its
// records, map entries, batches) that the Go runtime would otherwise
// keep until its next collection, which a server idle for writes may not
// run for minutes, plus as much again of GC headroom: measured after a
// fill of 5M items at -m 64, 62 MiB of heap (7 MiB of it live) and 19 MiB
// more held free.
const (
	releaseAfter = 8 << 20
	releaseEvery = 10 * time.Second
)

// release runs after each round; see releaseAfter.
func (q *queue) release() {
	if !q.idle || q.burst < releaseAfter || time.Since(q.released) < releaseEvery {
		return
	}
	q.burst = 0
	q.released = time.Now()
	debug.FreeOSMemory()
	q.e.st.heapReleases.Add(1)
}

// nextRound returns how long the flusher waits before its next round:
// nothing after a capped round (the rest is waiting), else until the
// oldest queued write is Interval old (at once if it already is: a long
// commit is followed by the next one), or Interval when nothing is
// queued (a write queued meanwhile is then at most Interval old when the
// round starts). After a failed commit it waits Interval, so a failing
// disk is retried at that pace, not in a loop.
func (q *queue) nextRound() time.Duration {
	iv := q.e.cfg.Interval
	if q.failing > 0 {
		return iv
	}
	if q.capped {
		return 0
	}
	next := iv
	if p := q.firstPending.Load(); p != 0 {
		next = max(0, time.Duration(p-time.Now().UnixNano())+iv)
	}
	if q.l0Held() {
		next = min(next, l0Poll)
	}
	return next
}

// flushAll runs rounds until one is not capped (everything queued is
// committed) or one fails.
func (q *queue) flushAll() error {
	for {
		if err := q.flush(); err != nil || !q.capped {
			return err
		}
	}
}

// stop commits what is queued and stops the flusher; it returns the
// final commit's error.
func (q *queue) stop() error {
	close(q.stopc)
	<-q.done
	return q.stopErr
}

// lag returns how long the oldest write not yet on disk has waited.
func (q *queue) lag() time.Duration {
	oldest := q.inflightSince.Load()
	if p := q.firstPending.Load(); p != 0 && (oldest == 0 || p < oldest) {
		oldest = p
	}
	if oldest == 0 {
		return 0
	}
	return time.Duration(max(0, time.Now().UnixNano()-oldest))
}

// flush runs one round: it collects every stripe's pending writes,
// commits them in one batch (with fsync), and settles the round.
func (q *queue) flush() error {
	e := q.e
	r := q.cur.Swap(&round{done: make(chan struct{})})
	since := q.firstPending.Swap(0)
	q.touched = q.touched[:0]
	q.dirtyList = q.dirtyList[:0]
	for w := range q.dirty {
		bits := q.dirty[w].Swap(0)
		for bits != 0 {
			b := bits & -bits
			bits &^= b
			q.dirtyList = append(q.dirtyList, w*64+stdbits.TrailingZeros64(b))
		}
	}
	// Start at the cursor, so that capped rounds take every stripe in
	// turn and none waits more than a lap.
	from, _ := slices.BinarySearch(q.dirtyList, q.cursor)
	limit := int64(math.MaxInt64)
	if e.cfg.Durability == Async {
		limit = q.commitCap()
	}
	var size int64
	keyBytes, entries := 0, 0
	left := int64(math.MaxInt64) // the oldest write a capped round leaves
	q.capped = false
	for j := range q.dirtyList {
		i := q.dirtyList[(from+j)%len(q.dirtyList)]
		s := &e.stripes[i]
		if q.capped {
			// Not collected this round: a later one takes it. A writer
			// of the stripe set no bit (its pending map is not empty).
			q.dirty[i/64].Or(1 << (i % 64))
			left = min(left, s.since.Load())
			continue
		}
		s.mu.Lock()
		if n := len(s.pending); n > 0 && size > 0 && size+s.cbytes > limit {
			q.capped = true
			q.cursor = i
			q.dirty[i/64].Or(1 << (i % 64))
			left = min(left, s.since.Load())
		} else if n > 0 {
			size += s.cbytes
			s.inflight, s.pending = s.pending, s.spare
			if s.pending == nil {
				s.pending = map[string][]byte{}
			}
			s.spare = nil
			s.pbytes, s.cbytes = 0, 0
			q.touched = append(q.touched, i)
			for k := range s.inflight {
				keyBytes += 1 + len(k)
			}
			entries += len(s.inflight)
		}
		s.mu.Unlock()
	}
	if q.capped && left != math.MaxInt64 {
		q.noteOldest(left)
	}
	nranges := q.takeRanges()
	q.idle = len(q.touched) == 0 && nranges == 0
	if q.idle {
		if q.l0Held() {
			e.kvmu.RLock()
			q.noteLevel0()
			e.kvmu.RUnlock()
		}
		q.settle(r, nil)
		return nil
	}
	q.burst += size
	q.inflightSince.Store(since)

	// The batch. Records are immutable and inflight maps are written
	// only by this goroutine, so they are read without locks.
	if cap(q.keys) < keyBytes || cap(q.keys) > 4*max(keyBytes, minCommit) {
		// Grown for this batch, or given back after a large one (a sync
		// commit is not capped).
		q.keys = make([]byte, 0, keyBytes)
	}
	keys := q.keys[:0]
	if cap(q.ops) > 4*max(entries, minCommit/memtableEntryOverhead) {
		q.ops = nil
	}
	q.ops = q.ops[:0]
	e.kvmu.RLock()
	// The sweep's range deletions first: every write of the batch is
	// newer than them (sweeprange.go).
	q.ops = q.appendRanges(q.ops)
	sets := false
	for _, i := range q.touched {
		for k, v := range e.stripes[i].inflight {
			n := len(keys)
			keys = append(append(keys, prefixData), k...)
			q.ops = append(q.ops, kvOp{Key: keys[n:len(keys):len(keys)], Value: v, Delete: v == nil})
			sets = sets || v != nil
		}
	}
	q.keys = keys[:0]
	if sets {
		q.setGen.Add(1)
	}
	start := time.Now()
	err := e.kv.Commit(e.withIndex(q.ops), true)
	if sets {
		q.setGen.Add(1)
	}
	done := time.Now()
	if err == nil {
		q.noteLevel0()
	}
	e.kvmu.RUnlock()
	if err == nil {
		q.noteRate(size, done.Sub(start))
	}
	if q.capped {
		// Before commits: commits - capped (read in that order) never
		// counts a capped commit as a full one.
		e.st.commitsCapped.Add(1)
	}
	e.st.commits.Add(1)
	e.st.commitItems.Add(uint64(len(q.ops)))
	e.st.commitLastUs.Store(done.Sub(start).Microseconds())
	if since != 0 {
		lag := done.UnixNano() - since
		for {
			old := e.st.lagMaxNs.Load()
			if lag <= old || e.st.lagMaxNs.CompareAndSwap(old, lag) {
				break
			}
		}
	}
	q.healthy.Store(err == nil)
	if err != nil {
		q.failed(err, since)
	} else {
		q.failing = 0
		e.budgetKick()
		for _, i := range q.touched {
			s := &e.stripes[i]
			s.mu.Lock()
			q.drop(s.inflight)
			q.recycle(s)
			s.wseq++
			s.mu.Unlock()
		}
	}
	q.endRanges()
	q.inflightSince.Store(0)
	q.settle(r, err)
	return err
}

// drop takes the entries of m out of the queue's counts.
func (q *queue) drop(m map[string][]byte) {
	var b, c int64
	for k, v := range m {
		b += int64(len(k) + len(v) + entryOverhead)
		c += q.commitLen(len(k), v)
	}
	q.items.Add(-int64(len(m)))
	q.bytes.Add(-b)
	q.cbytes.Add(-c)
}

// maxSpare is the most entries a stripe's committed map may have held to
// be kept for reuse as its next pending map. A Go map keeps its capacity
// when cleared: the maps a burst grew (a full 64 MiB queue is 300,000
// entries, 300 per stripe) would otherwise stay that size in every
// stripe; a dropped one is rebuilt as its stripe's writes need.
const maxSpare = 32

// recycle ends s's batch: its inflight map, cleared, becomes the spare
// for the next pending map, unless it grew past maxSpare entries. s.mu
// is held.
func (q *queue) recycle(s *stripe) {
	if len(s.inflight) > maxSpare {
		s.inflight, s.spare = nil, nil
		return
	}
	clear(s.inflight)
	s.spare, s.inflight = s.inflight, nil
}

// settle ends round r with err and lets waiting writers look at the queue
// again.
func (q *queue) settle(r *round, err error) {
	r.err = err
	close(r.done)
	ch := make(chan struct{})
	old := q.room.Swap(&ch)
	close(*old)
}

// failed handles a failed commit. In Sync mode the writers of the batch
// get the error, and their writes are undone: dropped from the queue and
// from memory (unless a newer write of the key is queued), so that the
// key reads as it is on disk. In Async mode the writes were acknowledged:
// they go back to the queue to be retried by the next round.
func (q *queue) failed(err error, since int64) {
	e := q.e
	q.errSeq.Add(1)
	q.lastErr.Store(&err)
	e.st.commitErrors.Add(1)
	e.st.writeErrors.Add(uint64(len(q.ops)))
	q.failing++
	q.chained = false
	if t := time.Now(); t.Sub(q.lastLog) >= time.Second && !errors.Is(err, ErrStoreFailed) {
		q.lastLog = t
		e.log.Error("persistent: DISK WRITE FAILED: writes are not reaching the disk",
			"err", err.Error(), "durability", e.cfg.Durability.String(), "batch_items", len(q.ops),
			"failed_in_a_row", q.failing, "queue_bytes", q.bytes.Load())
	}
	for _, i := range q.touched {
		s := &e.stripes[i]
		s.mu.Lock()
		if e.cfg.Durability == Sync {
			for k := range s.inflight {
				if _, newer := s.pending[k]; !newer {
					e.forget([]byte(k))
				}
			}
			q.drop(s.inflight)
		} else {
			for k, v := range s.inflight {
				if _, newer := s.pending[k]; newer {
					q.drop(map[string][]byte{k: v})
				} else {
					s.pending[k] = v
					s.pbytes += int64(len(k) + len(v) + entryOverhead)
					s.cbytes += q.commitSize([]byte(k), v)
					if since != 0 {
						s.since.Store(min(s.since.Load(), since))
					}
				}
			}
			if len(s.pending) > 0 {
				q.dirty[i/64].Or(1 << (i % 64))
			}
		}
		q.recycle(s)
		s.wseq++
		s.mu.Unlock()
	}
	if e.cfg.Durability == Async && since != 0 {
		q.noteOldest(since)
	}
}

// forget removes key from the memory tier. The caller holds its stripe
// lock.
func (e *Engine) forget(key []byte) {
	for {
		mt := e.mem.Load()
		if _, err := mt.Delete(key); !errors.Is(err, engine.ErrClosed) || e.closed.Load() {
			return
		}
	}
}
