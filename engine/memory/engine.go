package memory

import (
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math/bits"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/mnemo-cache/mnemo/engine"
	"github.com/mnemo-cache/mnemo/internal/invariants"
)

func init() {
	engine.Register("memory", engine.Constructor(New))
}

// Interface guards.
var (
	_ engine.Engine           = (*Engine)(nil)
	_ engine.GroupStater      = (*Engine)(nil)
	_ engine.StatsResetter    = (*Engine)(nil)
	_ engine.MemoryLimiter    = (*Engine)(nil)
	_ engine.EvictionNotifier = (*Engine)(nil)
	_ engine.CASCounter       = (*Engine)(nil)
)

const (
	minSegSize = 1 << 20
	pageSize   = 4096
	// defaultReserve is the least address space reserved (not committed)
	// so that SetMemoryLimit can grow the arena in place; by default the
	// reserve is 4× the memory limit and at least this.
	defaultReserve = 1 << 30
	// defaultCompact is Config.Compact's default: see BENCHMARKS.md
	// ("RSS under overwrite churn") for the measured trade.
	defaultCompact = 0.85
	// keepWarmBytes is how much of the free list keeps its pages with
	// compaction on (at least one segment).
	keepWarmBytes = 4 << 20
)

// Config is the engine's configuration string, parsed. Its zero value means
// the defaults documented on each field.
type Config struct {
	// Shards is the number of index shards, rounded up to a power of two.
	// 0 means 4×GOMAXPROCS rounded up, at least 256.
	Shards int
	// Reserve is the address space reserved for the arena, the most that
	// SetMemoryLimit can grow it to. 0 means four times the memory limit,
	// at least 1 GiB (address space only; nothing is committed).
	Reserve int64
	// SweepInterval is how often the background sweep runs. 0 means one
	// second; negative disables it.
	SweepInterval time.Duration
	// SweepSlots is how many index slots of each shard one sweep visits.
	// 0 means 1024.
	SweepSlots int
	// Compact is the live fraction at or below which a closed segment is
	// compacted (its live records moved to a fresh segment) before the
	// arena takes a segment whose pages are not resident yet, and free
	// segments beyond a few give their pages back to the kernel: the
	// arena's resident memory then tracks the live data under overwrite
	// churn instead of growing to the memory limit. 0 means 0.85; a
	// negative value (compact=0 in the configuration string) turns it
	// off: the arena fills the memory limit before it reclaims anything,
	// and keeps every page it touched.
	Compact float64
	// File is the restartable arena file (the daemon's -e): empty for an
	// anonymous arena. With a file the arena is exactly the memory limit
	// (no reserve to grow into) and survives the process; see the package
	// documentation.
	File string
}

// ParseConfig parses "shards=N,reserve=BYTES,sweep_interval=DUR,
// sweep_slots=N,compact=FRACTION,file=PATH". Unknown keys are errors wrapping
// engine.ErrBadConfig.
func ParseConfig(s string) (Config, error) {
	var c Config
	pairs, err := engine.ParseConfig(s)
	if err != nil {
		return c, err
	}
	for _, kv := range pairs {
		k, v := kv[0], kv[1]
		switch k {
		case "shards", "sweep_slots":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1<<16 {
				return c, fmt.Errorf("%w: %s=%q: want an integer in 1..65536", engine.ErrBadConfig, k, v)
			}
			if k == "shards" {
				c.Shards = n
			} else {
				c.SweepSlots = n
			}
		case "reserve":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return c, fmt.Errorf("%w: reserve=%q: want a byte count", engine.ErrBadConfig, v)
			}
			c.Reserve = n
		case "file":
			if v == "" {
				return c, fmt.Errorf("%w: file=: want a path", engine.ErrBadConfig)
			}
			c.File = v
		case "compact":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 0.95 {
				return c, fmt.Errorf("%w: compact=%q: want a fraction in 0..0.95 (0 turns compaction off)", engine.ErrBadConfig, v)
			}
			if f == 0 {
				f = -1
			}
			c.Compact = f
		case "sweep_interval":
			d, err := time.ParseDuration(v)
			if err != nil {
				return c, fmt.Errorf("%w: sweep_interval=%q: %v", engine.ErrBadConfig, v, err)
			}
			if d == 0 {
				d = -1
			}
			c.SweepInterval = d
		default:
			return c, fmt.Errorf("%w: unknown key %q (known: shards, reserve, sweep_interval, sweep_slots, compact, file)", engine.ErrBadConfig, k)
		}
	}
	return c, nil
}

// String renders the configuration with defaults resolved, for stats
// settings.
func (c Config) String() string {
	s := fmt.Sprintf("shards=%d,reserve=%d,sweep_interval=%s,sweep_slots=%d,compact=%g", c.Shards, c.Reserve, c.SweepInterval, c.SweepSlots, max(c.Compact, 0))
	if c.File != "" {
		s += ",file=" + c.File
	}
	return s
}

// flushMark is the flush state (see engine.FlushMark), replaced whole on
// Flush.
type flushMark = engine.FlushMark

// Engine is the memory engine. Its methods are safe for concurrent use.
type Engine struct {
	env     engine.Env
	cfg     Config
	clock   engine.Clock
	log     *slog.Logger
	seed    maphash.Seed
	noEvict bool
	itemMax int
	noCAS   bool // count items without a CAS (engine.ItemSize)

	onEvict atomic.Pointer[func(key []byte, m *engine.Meta, vlen int)] // engine.EvictionNotifier

	shards     []shard
	shardShift uint
	stripes    []stripe

	mem     []byte // the arena: segs × segSize bytes of reserved address space
	segSize int64

	amu       sync.Mutex // guards free, fifo, reserve, segment states, limitSegs
	segs      []segment
	free      []int32
	fifo      []int32 // closed segments, oldest first
	reserve   int32   // an empty segment kept for reclaim; -1 when none
	limitSegs int
	limit     atomic.Int64 // bytes, as last set

	compactAt int64 // live bytes at or below which a segment is compacted; 0: off
	keepWarm  int   // free segments that keep their pages (with compaction)
	warmFree  int   // under amu: resident segments on top of the free list

	fullSweepNow   int64      // under amu: clock and flush mark of the
	fullSweepFlush *flushMark // last full sweep for -M

	cas    atomic.Uint64
	fmu    sync.Mutex // serializes Flush
	flush  atomic.Pointer[flushMark]
	closed atomic.Bool
	cmu    sync.Mutex // serializes Close

	lc        lruCounters // stats.go
	scratch   sync.Pool   // *scratch
	stopSweep chan struct{}
	sweepDone chan struct{}
	yieldHook func() // tests: runs in place of the sweep's runtime.Gosched (sweep.go)

	inv *invState // invariant checker's scratch, under amu; nil unless invariants.Enabled

	file    *arenaFile    // the restartable arena file; nil for an anonymous arena
	gen     atomic.Uint64 // the last segment generation handed out (with file)
	restart restartInfo   // how the start went (with file)
}

// New creates a memory engine for env (zero fields take their defaults)
// with the configuration string config (see ParseConfig).
func New(env engine.Env, config string) (*Engine, error) {
	env = env.WithDefaults()
	cfg, err := ParseConfig(config)
	if err != nil {
		return nil, err
	}
	if env.MemoryLimit < 0 || env.ItemSizeMax < 0 {
		return nil, fmt.Errorf("%w: negative memory limit or item size", engine.ErrBadConfig)
	}
	if cfg.Shards == 0 {
		cfg.Shards = max(256, 4*runtime.GOMAXPROCS(0))
	}
	cfg.Shards = 1 << bits.Len(uint(cfg.Shards-1))
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = time.Second
	}
	if cfg.SweepSlots == 0 {
		cfg.SweepSlots = 1024
	}
	if cfg.Compact == 0 {
		cfg.Compact = defaultCompact
	}
	segSize := max(int64(minSegSize), (int64(env.ItemSizeMax)+pageSize-1)&^(pageSize-1))
	n := max(2, int(env.MemoryLimit/segSize))
	if cfg.Reserve == 0 {
		cfg.Reserve = max(4*min(env.MemoryLimit, maxArena/4), defaultReserve)
	}
	cfg.Reserve = min(max(cfg.Reserve, int64(n)*segSize), maxArena)
	if cfg.File != "" {
		cfg.Reserve = int64(n) * segSize
	}
	nres := int(cfg.Reserve / segSize)
	if nres < n {
		return nil, fmt.Errorf("%w: memory limit %d exceeds the largest arena (%d)", engine.ErrBadConfig, env.MemoryLimit, int64(maxArena))
	}
	var (
		file   *arenaFile
		reason string
		mem    []byte
		start  = time.Now()
	)
	if cfg.File != "" {
		want := fileMeta{segSize: segSize, nsegs: n, itemMax: env.ItemSizeMax}
		if env.NoCAS {
			want.settings |= settingNoCAS
		}
		file, reason, err = openArenaFile(cfg.File, fileLayout{segSize: segSize, nsegs: n}, want)
		if err != nil {
			return nil, err
		}
		mem = file.segs()
	} else {
		mem, err = mapArena(int64(nres) * segSize)
	}
	if err != nil && nres > n {
		// Not enough address space for growth: reserve just the limit.
		nres = n
		mem, err = mapArena(int64(nres) * segSize)
	}
	if err != nil {
		return nil, fmt.Errorf("memory: mmap %d bytes: %w", int64(nres)*segSize, err)
	}
	cfg.Reserve = int64(nres) * segSize

	e := &Engine{
		env:        env,
		cfg:        cfg,
		clock:      env.Clock,
		log:        env.Logger,
		seed:       maphash.MakeSeed(),
		noEvict:    env.NoEvict,
		itemMax:    env.ItemSizeMax,
		noCAS:      env.NoCAS,
		shards:     make([]shard, cfg.Shards),
		shardShift: uint(64 - bits.Len(uint(cfg.Shards-1))),
		mem:        mem,
		segSize:    segSize,
		segs:       make([]segment, nres),
		reserve:    -1,
		keepWarm:   max(1, int(keepWarmBytes/segSize)),
	}
	if cfg.Compact > 0 {
		e.compactAt = max(1, int64(cfg.Compact*float64(segSize)))
	}
	e.limit.Store(env.MemoryLimit)
	if invariants.Enabled {
		e.inv = &invState{}
	}
	for i := range e.shards {
		e.shards[i].init(minTable)
	}
	for i := range e.segs {
		e.segs[i].state = segRetired
	}
	e.amu.Lock()
	err = e.setLimitLocked(n)
	e.amu.Unlock()
	if err != nil {
		for i := range e.shards {
			e.shards[i].free()
		}
		if file != nil {
			_ = file.close()
		} else {
			_ = unixMunmap(mem)
		}
		return nil, err
	}
	if file != nil {
		e.file = file
		e.restart = restartInfo{file: cfg.File, reason: reason, clean: reason == "" && file.meta.state&stateClean != 0}
		if reason == "" {
			e.amu.Lock()
			st := e.recoverLocked()
			e.amu.Unlock()
			e.restart.scan = st
			e.restart.restored = st.live - st.replaced
			e.gen.Store(max(st.genHigh, file.meta.genHigh))
			e.cas.Store(max(st.casHigh, file.meta.casHigh))
			if fm := file.meta.flush; fm != (flushMark{}) {
				e.flush.Store(&fm)
			}
		}
		e.restart.took = time.Since(start)
		// From here on the file is in use: a crash is not a clean stop.
		_ = file.writeMeta(func(m *fileMeta) { m.state &^= stateClean })
		switch reason {
		case "new file":
			e.log.Info("memory: restartable arena file created", "file", cfg.File)
		case "":
			e.log.Info("memory: restartable arena file restored", "file", cfg.File, "items", e.restart.restored,
				"clean", e.restart.clean, "seconds", e.restart.took.Seconds())
		default:
			e.log.Warn("memory: restartable arena file starts empty", "file", cfg.File, "reason", reason)
		}
	}
	// Leave most segments to the FIFO: at most one stripe per 4 segments.
	ns := min(runtime.GOMAXPROCS(0), 8, max(1, (n-1)/4))
	ns = 1 << (bits.Len(uint(ns)) - 1)
	e.stripes = make([]stripe, ns)
	for i := range e.stripes {
		e.stripes[i].head = -1
	}
	e.scratch.New = func() any { return new(scratch) }
	if cfg.SweepInterval > 0 {
		e.stopSweep = make(chan struct{})
		e.sweepDone = make(chan struct{})
		go e.sweepLoop(cfg.SweepInterval, cfg.SweepSlots)
	}
	return e, nil
}

// Config returns the engine's configuration with defaults resolved.
func (e *Engine) Config() Config { return e.cfg }

func (e *Engine) hash(key []byte) uint64 { return maphash.Bytes(e.seed, key) }

func (e *Engine) shardOf(h uint64) *shard {
	if e.shardShift == 64 {
		return &e.shards[0]
	}
	return &e.shards[h>>e.shardShift]
}

func (e *Engine) stripeOf(h uint64) int {
	return int(h>>tagBits) & (len(e.stripes) - 1)
}

// dead reports whether the record r is expired or flushed at now.
func (e *Engine) dead(r rec, now int64, fm *flushMark) bool {
	if x := r.exptime(); x != 0 && x <= now {
		return true
	}
	return fm.Flushed(now, int64(r.atime()), r.cas())
}

func readMeta(r rec, m *engine.Meta) { r.meta(m) }

// inArena reports whether b's bytes lie inside the arena.
func (e *Engine) inArena(b []byte) bool {
	if len(b) == 0 || len(e.mem) == 0 {
		return false
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	base := uintptr(unsafe.Pointer(unsafe.SliceData(e.mem)))
	return p >= base && p < base+uintptr(len(e.mem))
}

// clampTime converts a unix time to the record's uint32 atime.
func clampTime(t int64) uint32 {
	if t < 0 {
		return 0
	}
	if t > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(t)
}

// Get implements engine.Engine. Read hits take only their shard's read
// lock; a touching read updates the record's access word atomically.
func (e *Engine) Get(key, dst []byte, flags engine.GetFlags) (engine.Meta, []byte, bool, error) {
	sh, r, m, ok, err := e.lookup(key, flags, "get")
	if !ok {
		return m, dst, false, err
	}
	if flags&engine.GetNoValue == 0 {
		dst = append(dst, r.value()...)
	}
	sh.mu.RUnlock()
	return m, dst, true, nil
}

// View implements engine.Engine: Get's lookup, with fn called under the
// shard's read lock (a panic in fn releases it).
func (e *Engine) View(key []byte, flags engine.GetFlags, fn func(engine.Meta, []byte)) (engine.Meta, bool, error) {
	sh, r, m, ok, err := e.lookup(key, flags, "view")
	if !ok {
		return m, false, err
	}
	viewLocked(sh, m, r, flags, fn)
	return m, true, nil
}

// lookup finds key's live record for Get and View (op names the caller
// in invariant failures). When it finds one it returns with the shard's
// read lock held, for the caller to release, the record's metadata in m,
// and the access word touched if flags has GetTouch; a missing, expired
// or flushed key (the last two removed) or an error returns found false
// and no lock held.
func (e *Engine) lookup(key []byte, flags engine.GetFlags, op string) (sh *shard, r rec, m engine.Meta, found bool, err error) {
	if !engine.ValidKey(key) {
		return nil, r, m, false, engine.ErrBadKey
	}
	h := e.hash(key)
	sh = e.shardOf(h)
	now := e.clock.Now()
	fm := e.flush.Load()
	sh.mu.RLock()
	if e.closed.Load() {
		sh.mu.RUnlock()
		return nil, r, m, false, engine.ErrClosed
	}
	slot, ent := sh.find(e.mem, h&tagMask, key)
	if slot < 0 {
		sh.mu.RUnlock()
		return nil, r, m, false, nil
	}
	r = recAt(e.mem, entryOff(ent))
	if invariants.Enabled {
		e.assertRecord(op, entryOff(ent), key)
	}
	if e.dead(r, now, fm) {
		sh.mu.RUnlock()
		e.removeDead(sh, ent, now, fm)
		return nil, r, m, false, nil
	}
	readMeta(r, &m)
	if flags&engine.GetTouch != 0 {
		r.setAtime(clampTime(now))
		r.touchBits()
	}
	return sh, r, m, true, nil
}

// viewLocked calls fn with r's value and releases sh's read lock, also
// when fn panics.
func viewLocked(sh *shard, m engine.Meta, r rec, flags engine.GetFlags, fn func(engine.Meta, []byte)) {
	defer sh.mu.RUnlock()
	var v []byte
	if flags&engine.GetNoValue == 0 {
		v = r.value()
	}
	fn(m, v)
}

// countDeadLocked counts a lookup that met r dead, which the caller then
// removes: memcached's get_flushed or get_expired (flushed first, as in
// its do_item_get), counted once per item since the item is gone after.
func (e *Engine) countDeadLocked(sh *shard, r rec, now int64, fm *flushMark) {
	if fm.Flushed(now, int64(r.atime()), r.cas()) {
		sh.getFlushed++
	} else {
		sh.getExpired++
	}
}

// removeDead removes entry ent from sh if it is still there and dead.
func (e *Engine) removeDead(sh *shard, ent uint64, now int64, fm *flushMark) {
	sh.mu.Lock()
	if !e.closed.Load() {
		if slot := sh.findEntry(ent); slot >= 0 {
			if r := recAt(e.mem, entryOff(ent)); e.dead(r, now, fm) {
				e.dropLocked(sh, slot, r, dropLookup, now, fm)
			}
		}
	}
	sh.mu.Unlock()
}

// dropWhy tells dropLocked why an entry goes, for memcached's counters.
type dropWhy uint8

const (
	// dropDeleted: a Delete or OpDelete of a live item.
	dropDeleted dropWhy = iota
	// dropLookup: a lookup met the item expired or flushed (memcached's
	// do_item_get): get_expired or get_flushed.
	dropLookup
	// dropSweep: the background sweep found it dead (memcached's
	// crawler): crawler_reclaimed, and expired_unfetched unless it was
	// flushed or read.
	dropSweep
)

// dropLocked removes the entry at slot (whose record is r) and updates the
// counters for why it goes. (reclaimed counts only what the segment
// reclaim finds dead, memcached's LRU tail pull: memory reused from an
// expired item.)
func (e *Engine) dropLocked(sh *shard, slot int, r rec, why dropWhy, now int64, fm *flushMark) {
	off := entryOff(sh.tab[slot])
	size := r.size()
	switch why {
	case dropLookup:
		e.countDeadLocked(sh, r, now, fm)
	case dropSweep:
		sh.crawlerReclaimed++
		if infoBits(r.info())&engine.BitFetched == 0 && !fm.Flushed(now, int64(r.atime()), r.cas()) {
			sh.expiredUnfetched++
		}
	}
	if e.file != nil {
		r.setState(stDead)
	}
	sh.remove(slot)
	sh.bytes -= size
	e.segs[off/e.segSize].live.Add(-size)
	if invariants.Enabled {
		e.assertCounts("drop", sh, off/e.segSize)
	}
}

// scratch holds an Update's Mutator arguments (which escape through the
// interface call) and a buffer for values that alias the arena.
type scratch struct {
	cur, next engine.Item
	buf       []byte
}

// seen is what a Mutator saw: the entry (0 if absent) and, if the item was
// live, its metadata.
type seen struct {
	ent   uint64
	alive bool
	meta  engine.Meta
}

// unchangedLocked reports whether key's state in sh is still s.
func (e *Engine) unchangedLocked(sh *shard, tag uint64, key []byte, s *seen, now int64, fm *flushMark) (int, bool) {
	if s.ent == 0 {
		slot, _ := sh.find(e.mem, tag, key)
		return -1, slot < 0
	}
	slot := sh.findEntry(s.ent)
	if slot < 0 {
		return -1, false
	}
	r := recAt(e.mem, entryOff(s.ent))
	if !s.alive {
		return slot, e.dead(r, now, fm)
	}
	if e.dead(r, now, fm) {
		return -1, false
	}
	var m engine.Meta
	readMeta(r, &m)
	m.Atime, s.meta.Atime = 0, 0
	m.Bits &^= engine.BitFetched
	s.meta.Bits &^= engine.BitFetched
	return slot, m == s.meta
}

// Update implements engine.Engine. The Mutator runs under the shard's
// write lock; a store is then written to the arena outside the lock and
// published after re-checking that the key did not change meanwhile
// (otherwise the Mutator runs again).
func (e *Engine) Update(key []byte, m engine.Mutator) (engine.Op, engine.Meta, error) {
	var zero engine.Meta
	if !engine.ValidKey(key) {
		return engine.OpNone, zero, engine.ErrBadKey
	}
	h := e.hash(key)
	tag := h & tagMask
	sh := e.shardOf(h)
	now := e.clock.Now()
	fm := e.flush.Load()
	sc := e.scratch.Get().(*scratch)
	defer func() {
		// Drop references into the arena and the caller's buffers.
		sc.cur, sc.next = engine.Item{}, engine.Item{}
		if cap(sc.buf) > 64<<10 {
			sc.buf = nil
		}
		e.scratch.Put(sc)
	}()
	cur, next := &sc.cur, &sc.next
	var s seen
	for {
		sh.mu.Lock()
		if e.closed.Load() {
			sh.mu.Unlock()
			return engine.OpNone, zero, engine.ErrClosed
		}
		slot, ent := sh.find(e.mem, tag, key)
		*cur, *next, s = engine.Item{}, engine.Item{}, seen{ent: ent}
		var r rec
		if slot >= 0 {
			r = recAt(e.mem, entryOff(ent))
			if !e.dead(r, now, fm) {
				s.alive = true
				readMeta(r, &cur.Meta)
				cur.Value = r.value()
				s.meta = cur.Meta
			}
		}
		op := m.Mutate(cur, s.alive, next)
		var (
			val   []byte
			exp   = expWord(next.Exptime)
			atime = clampTime(now)
			bitsv = next.Bits & bitsMeta
			casv  = next.CAS
		)
		switch op {
		case engine.OpStore:
			val = next.Value
		case engine.OpMeta:
			if !s.alive {
				e.dropDeadLocked(sh, slot, r, now, fm)
				sh.mu.Unlock()
				return engine.OpNone, zero, nil
			}
			if casv == 0 {
				casv = e.cas.Add(1)
			}
			if e.file != nil || !r.fitsMeta(exp, next.Flags) {
				// The record has no room for an exptime or flags it did
				// not have, or is in a restartable file, where an in-place
				// rewrite of checksummed fields is not crash-safe: write
				// it again, keeping its atime and frequency counter.
				val = cur.Value
				if next.Atime != 0 {
					atime = clampTime(next.Atime)
				} else {
					atime = r.atime()
				}
				bitsv |= infoBits(r.info()) & freqMask
				break
			}
			r.writeMeta(casv, exp, next.Flags)
			if next.Atime != 0 {
				r.setAtime(clampTime(next.Atime))
			}
			b := infoBits(r.info())
			r.setBits(b&^bitsMeta | next.Bits&bitsMeta)
			r.sealCRC()
			if invariants.Enabled {
				e.assertRecord("metadata update", entryOff(ent), key)
			}
			var out engine.Meta
			readMeta(r, &out)
			sh.mu.Unlock()
			return engine.OpMeta, out, nil
		case engine.OpDelete:
			if slot >= 0 {
				why := dropDeleted
				if !s.alive {
					why = dropLookup
				}
				e.dropLocked(sh, slot, r, why, now, fm)
			}
			sh.mu.Unlock()
			return engine.OpDelete, zero, nil
		default:
			if !s.alive {
				e.dropDeadLocked(sh, slot, r, now, fm)
			}
			sh.mu.Unlock()
			return engine.OpNone, cur.Meta, nil
		}

		// OpStore, or OpMeta rewriting the record.
		if e.inArena(val) {
			sc.buf = append(sc.buf[:0], val...)
			val = sc.buf
		}
		sh.mu.Unlock()
		if engine.ItemSize(len(key), len(val), next.Flags, e.noCAS) > e.itemMax {
			return engine.OpNone, zero, engine.ErrTooLarge
		}
		size := recSizeOf(len(key), len(val), exp, next.Flags, e.file != nil)
		off, err := e.alloc(size, e.stripeOf(h), len(key), len(val), exp, next.Flags)
		if err != nil {
			if err == engine.ErrNoMemory {
				e.lc.outOfMemory.Add(1)
			}
			return engine.OpNone, zero, err
		}
		if casv == 0 {
			casv = e.cas.Add(1)
		}
		writeRecord(e.mem[off:off+size], key, val, casv, exp, next.Flags, atime, bitsv, e.file != nil)

		sh.mu.Lock()
		if e.closed.Load() {
			sh.mu.Unlock()
			e.abandon(off)
			return engine.OpNone, zero, engine.ErrClosed
		}
		slot, ok := e.unchangedLocked(sh, tag, key, &s, now, fm)
		if !ok {
			sh.mu.Unlock()
			e.abandon(off)
			continue
		}
		nent := makeEntry(tag, off)
		if e.file != nil {
			publishRecord(e.mem, off, entryOff(s.ent), slot >= 0)
		}
		if slot >= 0 {
			old := recAt(e.mem, entryOff(s.ent))
			if !s.alive {
				e.countDeadLocked(sh, old, now, fm)
			}
			osize := old.size()
			sh.bytes -= osize
			e.segs[entryOff(s.ent)/e.segSize].live.Add(-osize)
			if invariants.Enabled {
				e.assertCounts("overwrite", sh, entryOff(s.ent)/e.segSize)
			}
			sh.tab[slot] = nent
		} else {
			sh.insert(nent)
		}
		sh.bytes += size
		if op == engine.OpStore {
			sh.totalItems++
		}
		e.segs[off/e.segSize].live.Add(size)
		if invariants.Enabled {
			e.assertPublished(sh, key, nent, size)
		}
		sh.mu.Unlock()
		e.release(off)
		return op, engine.Meta{Flags: next.Flags, Exptime: int64(exp), CAS: casv, Atime: int64(atime), Bits: bitsv & bitsMeta}, nil
	}
}

// abandon gives up an allocation whose record was written but will not be
// published: stored dead in a restartable file, so it is never recovered.
func (e *Engine) abandon(off int64) {
	if e.file != nil {
		recAt(e.mem, off).setState(stDead)
	}
	e.release(off)
}

// Delete implements engine.Engine.
func (e *Engine) Delete(key []byte) (bool, error) {
	if !engine.ValidKey(key) {
		return false, engine.ErrBadKey
	}
	h := e.hash(key)
	sh := e.shardOf(h)
	now := e.clock.Now()
	fm := e.flush.Load()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e.closed.Load() {
		return false, engine.ErrClosed
	}
	slot, ent := sh.find(e.mem, h&tagMask, key)
	if slot < 0 {
		return false, nil
	}
	r := recAt(e.mem, entryOff(ent))
	dead := e.dead(r, now, fm)
	why := dropDeleted
	if dead {
		why = dropLookup
	}
	e.dropLocked(sh, slot, r, why, now, fm)
	return !dead, nil
}

// dropDeadLocked removes the dead item an Update's lookup met at slot
// (if any) when the Mutator left the key alone, and counts the lookup, as
// memcached unlinks an expired item its lookup meets.
func (e *Engine) dropDeadLocked(sh *shard, slot int, r rec, now int64, fm *flushMark) {
	if slot < 0 {
		return
	}
	e.dropLocked(sh, slot, r, dropLookup, now, fm)
}

// Flush implements engine.Engine. It only sets a time mark (see
// flushMark); flushed items are removed lazily and by the sweep. A flush
// whose time has passed stays in force when a later Flush is scheduled,
// so a delayed flush never revives items an earlier one invalidated.
func (e *Engine) Flush(at int64) error {
	if e.closed.Load() {
		return engine.ErrClosed
	}
	e.fmu.Lock()
	defer e.fmu.Unlock()
	now := e.clock.Now()
	nm := e.flush.Load().Next(now, at, func() uint64 { return e.cas.Add(1) })
	if e.file != nil {
		// The mark is in the file before the flush is acknowledged.
		_ = e.file.writeMeta(func(m *fileMeta) {
			m.flush = nm
			m.casHigh = max(m.casHigh, e.cas.Load())
			m.genHigh = max(m.genHigh, e.gen.Load())
		})
	}
	e.flush.Store(&nm)
	return nil
}

// Iterate implements engine.Engine. It snapshots each shard's table under
// its read lock, then for each entry re-takes the read lock, checks the
// entry is still there and alive, copies the item into a buffer and calls
// fn with no lock held. An item is seen at most once; one present for the
// whole iteration is seen unless reclaim moves it (a reinsertion, or -M
// compaction) after its shard was snapshotted, which changes its entry.
func (e *Engine) Iterate(fn func(key []byte, it *engine.Item) bool) error {
	var (
		snap []uint64
		buf  []byte
		it   engine.Item
	)
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.RLock()
		if e.closed.Load() {
			sh.mu.RUnlock()
			return engine.ErrClosed
		}
		snap = append(snap[:0], sh.tab...)
		sh.mu.RUnlock()
		for _, ent := range snap {
			if ent == 0 {
				continue
			}
			now := e.clock.Now()
			fm := e.flush.Load()
			sh.mu.RLock()
			if e.closed.Load() {
				sh.mu.RUnlock()
				return engine.ErrClosed
			}
			if sh.findEntry(ent) < 0 {
				sh.mu.RUnlock()
				continue
			}
			r := recAt(e.mem, entryOff(ent))
			if e.dead(r, now, fm) {
				sh.mu.RUnlock()
				continue
			}
			readMeta(r, &it.Meta)
			k := r.key()
			buf = append(append(buf[:0], k...), r.value()...)
			sh.mu.RUnlock()
			it.Value = buf[len(k):]
			if !fn(buf[:len(k)], &it) {
				return nil
			}
		}
	}
	return nil
}

// SetMemoryLimit implements engine.MemoryLimiter. Growing makes more
// segments usable at once (up to the address space reserved at start, see
// Config.Reserve). Shrinking releases free segments at once, evicts the
// full segments beyond the new limit, and retires the segments being
// written beyond it as soon as they fill and are reclaimed.
func (e *Engine) SetMemoryLimit(n int64) error {
	if n <= 0 {
		return fmt.Errorf("%w: memory limit must be positive", engine.ErrBadConfig)
	}
	e.amu.Lock()
	defer e.amu.Unlock()
	if e.closed.Load() {
		return engine.ErrClosed
	}
	if e.file != nil && max(2, int(n/e.segSize)) != e.limitSegs {
		return fmt.Errorf("%w: the memory limit of a restartable arena file cannot change", engine.ErrBadConfig)
	}
	if err := e.setLimitLocked(max(2, int(n/e.segSize))); err != nil {
		return err
	}
	e.limit.Store(n)
	return nil
}

// Close implements engine.Engine. It waits for in-flight calls, stops the
// sweep and unmaps the arena.
func (e *Engine) Close() error {
	e.cmu.Lock()
	defer e.cmu.Unlock()
	if invariants.Enabled && !e.closed.Load() {
		// Last chance, while the engine is whole; a violation leaves it
		// open.
		e.checkInvariants()
	}
	if e.closed.Swap(true) {
		return engine.ErrClosed
	}
	if e.stopSweep != nil {
		close(e.stopSweep)
		<-e.sweepDone
	}
	// No new allocations (alloc checks closed under its stripe lock) ...
	for i := range e.stripes {
		e.stripes[i].mu.Lock()
	}
	e.amu.Lock()
	// ... and no reader or writer left inside a shard; the index goes.
	for i := range e.shards {
		e.shards[i].mu.Lock()
		e.shards[i].free()
		e.shards[i].mu.Unlock()
	}
	for i := range e.segs {
		for e.segs[i].writers.Load() != 0 {
			runtime.Gosched()
		}
	}
	var err error
	if e.file != nil {
		// A graceful stop: the next start reports a clean restart.
		_ = e.file.writeMeta(func(m *fileMeta) {
			m.state |= stateClean
			m.casHigh = max(m.casHigh, e.cas.Load())
			m.genHigh = max(m.genHigh, e.gen.Load())
		})
		err = e.file.close()
	} else {
		err = unixMunmap(e.mem)
	}
	e.mem = nil
	e.amu.Unlock()
	for i := range e.stripes {
		e.stripes[i].mu.Unlock()
	}
	if err != nil {
		return errors.Join(errors.New("memory: munmap"), err)
	}
	return nil
}

// NotifyEvictions implements engine.EvictionNotifier: fn is called, under
// the evicted item's shard lock, for each item a reclaim evicts.
func (e *Engine) NotifyEvictions(fn func(key []byte, m *engine.Meta, vlen int)) {
	if fn == nil {
		e.onEvict.Store(nil)
		return
	}
	e.onEvict.Store(&fn)
}

// LastCAS returns the last CAS value handed out (engine.CASCounter).
func (e *Engine) LastCAS() uint64 { return e.cas.Load() }
