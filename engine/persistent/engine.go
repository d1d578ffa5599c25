package persistent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/mnemo-cache/mnemo/engine"
	"github.com/mnemo-cache/mnemo/engine/memory"
	"github.com/mnemo-cache/mnemo/internal/testhook"
)

func init() {
	engine.Register("persistent", engine.Constructor(New))
	// For the fault-injection tests of other packages (a server over a
	// failing store); see internal/testhook.
	testhook.OpenPersistent = func(env engine.Env, config string, fs vfs.FS) (engine.Engine, error) {
		e, err := newOnFS(env, config, fs)
		if err != nil {
			return nil, err // not a nil *Engine in an interface
		}
		return e, nil
	}
	testhook.InStoreCall = func() bool {
		ours, _ := fatalContext()
		return ours
	}
}

// Interface guards.
var (
	_ engine.Engine        = (*Engine)(nil)
	_ engine.GroupStater   = (*Engine)(nil)
	_ engine.StatsResetter = (*Engine)(nil)
	_ engine.MemoryLimiter = (*Engine)(nil)
	_ engine.CASCounter    = (*Engine)(nil)
)

// Errors of the persistent engine. Callers test them with errors.Is.
var (
	// ErrLocked: the data directory is held by another running engine.
	ErrLocked = errors.New("persistent: data directory locked")
	// ErrCorrupt: the store is damaged or not a mnemo store.
	ErrCorrupt = errors.New("persistent: store corrupted")
	// ErrOpen: the store could not be opened.
	ErrOpen = errors.New("persistent: cannot open store")
	// ErrWrite: a write could not be made durable (sync mode), or the
	// write-behind queue is full while the disk is failing.
	ErrWrite = errors.New("persistent: disk write failed")
	// ErrRead: an item could not be read from disk.
	ErrRead = errors.New("persistent: disk read failed")
	// ErrStoreFailed: the store failed for good (a fatal error of
	// Pebble, see Faults in the package doc): writes fail with ErrWrite,
	// reads of keys memory and the queue do not hold are misses, until
	// mnemo is restarted.
	ErrStoreFailed = errors.New("persistent: the disk store failed (a fatal error; restart mnemo)")
)

const (
	// nStripes is the number of key stripes. A stripe's mutex orders the
	// writes of its keys into the queue; it is never held across disk
	// I/O except as the last resort of a read that keeps racing writes.
	nStripes = 1024
	// casBlock is how far the persisted CAS high-water mark runs ahead of
	// the counter.
	casBlock = 1 << 22
	// entryOverhead is what the queue counts per entry besides the key
	// and record bytes (map entry, string header).
	entryOverhead = 64
)

// flushMark is the flush state (see engine.FlushMark), replaced whole on
// Flush.
type flushMark = engine.FlushMark

// Engine is the persistent engine. Its methods are safe for concurrent use.
type Engine struct {
	env   engine.Env
	cfg   Config
	clock engine.Clock
	log   *slog.Logger
	seed  maphash.Seed

	kv     kv
	kvmu   sync.RWMutex // read-held around kv calls; Close write-locks it
	mem    atomic.Pointer[memory.Engine]
	limit  atomic.Int64 // memory limit for new memory tiers
	closed atomic.Bool
	cmu    sync.Mutex // serializes Close

	stripes []stripe

	cas      atomic.Uint64
	casLimit atomic.Uint64
	casMu    sync.Mutex

	mark atomic.Pointer[flushMark]
	fmu  sync.Mutex // serializes Flush, SetMemoryLimit and tier swaps

	// write-behind (queue.go)
	q queue

	// disk budget (budget.go)
	budget budget

	// background work (background.go)
	stopBG    chan struct{}
	bg        sync.WaitGroup
	sweepFrom []byte   // the sweep's cursor; sweep goroutine only
	sweepLive int64    // live items seen in the current pass
	sweepDead passDead // dead items removed in the current pass (reclaim.go)
	// sweepRanged counts the range deletions the current pass queued.
	sweepRanged int
	sweepHook   func() // tests: runs between a sweep step's scan and its deletions
	yieldHook   func() // tests: runs in place of the sweep's runtime.Gosched (pace.go)

	st      counters
	memBase map[string]uint64 // cumulative counters of retired memory tiers; under fmu
	wrap    sync.Pool         // *mutator
}

// New opens a persistent engine for env (zero fields take their defaults)
// with the configuration string config (see ParseConfig).
func New(env engine.Env, config string) (*Engine, error) {
	return newOnFS(env, config, nil)
}

// newOnFS is New with the store on fs (nil: the operating system's).
func newOnFS(env engine.Env, config string, fs vfs.FS) (*Engine, error) {
	env = env.WithDefaults()
	cfg, err := ParseConfig(config)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(env.MemoryLimit); err != nil {
		return nil, err
	}
	ev := newPebbleEvents(env.Logger)
	store, err := openPebbleSized(cfg.Path, cfg.CacheSize, cfg.DiskSize, env.Logger, ev, fs)
	if err != nil {
		return nil, err
	}
	e, err := newEngine(env, cfg, store, ev)
	if err != nil {
		store.Close()
		return nil, err
	}
	return e, nil
}

// newEngine builds an engine over an open store and starts its background
// work. env has its defaults and cfg is validated.
func newEngine(env engine.Env, cfg Config, store kv, ev *pebbleEvents) (*Engine, error) {
	e := &Engine{
		env:     env,
		cfg:     cfg,
		clock:   env.Clock,
		log:     env.Logger,
		seed:    maphash.MakeSeed(),
		kv:      store,
		stripes: make([]stripe, nStripes),
		stopBG:  make(chan struct{}),
		memBase: map[string]uint64{},
	}
	if ev != nil {
		// Pebble's callbacks count into e.st from now on (they used to
		// count into a copy, so persistent_background_errors stayed 0).
		ev.attach(&e.st)
	}
	e.st.diskItems.Store(-1)
	e.wrap.New = func() any { return new(mutator) }
	for i := range e.stripes {
		e.stripes[i].index = i
	}
	if err := e.loadMeta(); err != nil {
		return nil, err
	}
	if err := e.openBudget(); err != nil {
		return nil, err
	}
	e.limit.Store(env.MemoryLimit)
	mt, err := e.newTier()
	if err != nil {
		return nil, err
	}
	if fm := e.mark.Load(); fm != nil && fm.PendAt > e.clock.Now() {
		mt.Flush(fm.PendAt)
	}
	e.mem.Store(mt)
	e.q.init(e)
	go e.q.run()
	if cfg.SweepInterval > 0 {
		e.bg.Add(1)
		go e.sweepLoop()
	}
	if cfg.DiskSize > 0 {
		e.bg.Add(1)
		go e.budgetLoop()
	}
	if cfg.NoWarmup {
		e.st.warmState.Store(warmOff)
	} else {
		e.bg.Add(1)
		go e.warmup()
	}
	return e, nil
}

// newTier opens a memory tier with the current memory limit.
func (e *Engine) newTier() (*memory.Engine, error) {
	env := e.env
	env.MemoryLimit = e.limit.Load()
	return memory.New(env, "")
}

// loadMeta checks the store's format record (writing it on a new store),
// and loads the CAS high-water mark and the flush mark. It raises the
// CAS mark for this run before returning.
func (e *Engine) loadMeta() error {
	rec, found, err := e.kv.Get(metaKey(metaFormat), nil)
	if err != nil {
		return fmt.Errorf("%w: %s: reading the format record: %v", ErrCorrupt, e.cfg.Path, err)
	}
	if found {
		p, err := decodeMeta(metaFormat, rec, len(formatMagic))
		if err != nil || string(p) != formatMagic {
			return fmt.Errorf("%w: %s: the format record is damaged or of another version; move the directory aside to start with an empty cache", ErrCorrupt, e.cfg.Path)
		}
	} else {
		items := false
		if err := e.kv.Scan(dataLower, dataUpper, func(k, v []byte) bool { items = true; return false }); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, e.cfg.Path, err)
		}
		if items {
			return fmt.Errorf("%w: %s holds items but no format record: not a mnemo store, or damaged", ErrCorrupt, e.cfg.Path)
		}
		op := kvOp{Key: metaKey(metaFormat), Value: appendMeta(nil, metaFormat, []byte(formatMagic))}
		if err := e.kv.Commit([]kvOp{op}, true); err != nil {
			return fmt.Errorf("%w: %s: writing the format record: %v", ErrWrite, e.cfg.Path, err)
		}
	}

	var casMark uint64
	if rec, found, err = e.kv.Get(metaKey(metaCAS), nil); err != nil {
		return fmt.Errorf("%w: %s: reading the CAS record: %v", ErrCorrupt, e.cfg.Path, err)
	} else if found {
		p, err := decodeMeta(metaCAS, rec, 8)
		if err != nil {
			return fmt.Errorf("%w: %s: the CAS record is damaged", ErrCorrupt, e.cfg.Path)
		}
		casMark = binary.LittleEndian.Uint64(p)
	}
	e.cas.Store(casMark)
	if err := e.raiseCAS(casMark + casBlock); err != nil {
		return err
	}

	if rec, found, err = e.kv.Get(metaKey(metaFlush), nil); err != nil {
		return fmt.Errorf("%w: %s: reading the flush record: %v", ErrCorrupt, e.cfg.Path, err)
	} else if found {
		p, err := decodeMeta(metaFlush, rec, 24)
		if err != nil {
			return fmt.Errorf("%w: %s: the flush record is damaged", ErrCorrupt, e.cfg.Path)
		}
		fm := &flushMark{
			PastAt:  int64(binary.LittleEndian.Uint64(p)),
			PastCAS: binary.LittleEndian.Uint64(p[8:]),
			PendAt:  int64(binary.LittleEndian.Uint64(p[16:])),
		}
		now := e.clock.Now()
		if fm.PendAt != 0 && fm.PendAt <= now {
			fm.PastAt, fm.PendAt = max(fm.PastAt, fm.PendAt), 0
		}
		if fm.PastAt > now+1 {
			// The clock went back since the flush: keep only the CAS
			// part, or every new item would count as flushed.
			e.log.Warn("persistent: the clock is behind the last flush_all; flushing by CAS only", "flush_time", fm.PastAt, "now", now)
			fm.PastAt = 0
		}
		e.mark.Store(fm)
	}
	return nil
}

// raiseCAS persists lim as the CAS high-water mark (synchronously) and
// lets the counter run up to it.
func (e *Engine) raiseCAS(lim uint64) error {
	op := kvOp{Key: metaKey(metaCAS), Value: appendMeta(nil, metaCAS, binary.LittleEndian.AppendUint64(nil, lim))}
	if err := e.kv.Commit([]kvOp{op}, true); err != nil {
		return fmt.Errorf("%w: raising the CAS mark: %v", ErrWrite, err)
	}
	e.casLimit.Store(lim)
	return nil
}

// reserveCAS makes sure the counter has room below the persisted mark. It
// runs before an Update takes any lock; the disk write happens once per
// casBlock/2 CAS values.
func (e *Engine) reserveCAS() error {
	if e.cas.Load()+casBlock/2 < e.casLimit.Load() {
		return nil
	}
	e.casMu.Lock()
	defer e.casMu.Unlock()
	if e.cas.Load()+casBlock/2 < e.casLimit.Load() {
		return nil
	}
	e.kvmu.RLock()
	defer e.kvmu.RUnlock()
	if e.closed.Load() {
		return engine.ErrClosed
	}
	return e.raiseCAS(e.cas.Load() + casBlock)
}

// Config returns the engine's configuration with defaults resolved.
func (e *Engine) Config() Config { return e.cfg }

// stripeIndex returns the index of key's stripe.
func (e *Engine) stripeIndex(key []byte) int {
	return int(maphash.Bytes(e.seed, key) & (nStripes - 1))
}

// stripeOf returns key's stripe.
func (e *Engine) stripeOf(key []byte) *stripe {
	return &e.stripes[e.stripeIndex(key)]
}

// countDead counts a lookup that read d from the queue or the disk and
// found it flushed (get_flushed) or else expired (get_expired), as
// memcached's do_item_get.
func (e *Engine) countDead(d *diskItem, now int64) {
	switch {
	case !d.found:
	case e.mark.Load().Flushed(now, d.meta.Atime, d.meta.CAS):
		e.st.getFlushed.Add(1)
	case d.meta.Expired(now):
		e.st.getExpired.Add(1)
	}
}

// alive reports whether an item with metadata m is live at now.
func (e *Engine) alive(m *engine.Meta, now int64) bool {
	return !m.Expired(now) && !e.mark.Load().Flushed(now, m.Atime, m.CAS)
}

// tier returns the current memory tier, or ErrClosed.
func (e *Engine) tier() (*memory.Engine, error) {
	if e.closed.Load() {
		return nil, engine.ErrClosed
	}
	return e.mem.Load(), nil
}

// retry reports whether an ErrClosed from a memory tier means the tier
// was swapped by a flush (retry on the new one) rather than the engine
// being closed.
func (e *Engine) retry(err error) bool {
	return errors.Is(err, engine.ErrClosed) && !e.closed.Load()
}

// Get implements engine.Engine. A hit in memory touches no lock of this
// engine; a miss reads through the write-behind queue and the disk and
// loads the item into memory.
func (e *Engine) Get(key, dst []byte, flags engine.GetFlags) (engine.Meta, []byte, bool, error) {
	var zero engine.Meta
	if !engine.ValidKey(key) {
		return zero, dst, false, engine.ErrBadKey
	}
	for {
		mt, err := e.tier()
		if err != nil {
			return zero, dst, false, err
		}
		meta, out, found, err := mt.Get(key, dst, flags)
		if e.retry(err) {
			continue
		}
		if err != nil || found {
			return meta, out, found, err
		}
		break
	}
	return e.readThrough(key, dst, flags)
}

// View implements engine.Engine as Get does: fn sees a memory hit under
// the memory tier's lock, and an item read through from the queue or the
// disk after it is loaded into memory.
func (e *Engine) View(key []byte, flags engine.GetFlags, fn func(engine.Meta, []byte)) (engine.Meta, bool, error) {
	var zero engine.Meta
	if !engine.ValidKey(key) {
		return zero, false, engine.ErrBadKey
	}
	for {
		mt, err := e.tier()
		if err != nil {
			return zero, false, err
		}
		meta, found, err := mt.View(key, flags, fn)
		if e.retry(err) {
			continue
		}
		if err != nil || found {
			return meta, found, err
		}
		break
	}
	var d diskItem
	found, err := e.readThroughItem(key, flags, &d)
	if err != nil || !found {
		return zero, false, err
	}
	var v []byte
	if flags&engine.GetNoValue == 0 {
		v = d.value
	}
	fn(d.meta, v)
	return d.meta, true, nil
}

// diskItem is an item read from the queue or the disk.
type diskItem struct {
	meta  engine.Meta
	value []byte // aliases the record
	found bool   // a live item
}

// decode sets d from rec (nil: absent), read for key; a damaged record
// counts as absent and is reported.
func (e *Engine) decode(key, rec []byte, found bool, d *diskItem) {
	*d = diskItem{}
	if !found || rec == nil {
		return
	}
	v, err := decodeRecord(key, rec, &d.meta)
	if err != nil {
		e.corrupt(key, err)
		d.meta = engine.Meta{}
		return
	}
	d.value, d.found = v, true
}

// corrupt counts and logs a damaged record.
func (e *Engine) corrupt(key []byte, err error) {
	e.st.corrupt.Add(1)
	e.log.Error("persistent: damaged record on disk, not served", "key", fmt.Sprintf("%q", key), "err", err)
}

// readThrough serves a memory miss from the queue or the disk.
func (e *Engine) readThrough(key, dst []byte, flags engine.GetFlags) (engine.Meta, []byte, bool, error) {
	var d diskItem
	found, err := e.readThroughItem(key, flags, &d)
	if err != nil || !found {
		return engine.Meta{}, dst, false, err
	}
	if flags&engine.GetNoValue == 0 {
		dst = append(dst, d.value...)
	}
	return d.meta, dst, true, nil
}

// readThroughItem reads key from the queue or the disk into d, loads a
// live item into memory and reports whether it was found; d.value
// aliases the record read.
func (e *Engine) readThroughItem(key []byte, flags engine.GetFlags, d *diskItem) (bool, error) {
	s := e.stripeOf(key)
	s.mu.Lock()
	rec, found, fromDisk, err := e.lookup(s, key, nil)
	if err != nil {
		s.mu.Unlock()
		return false, err
	}
	e.decode(key, rec, found, d)
	now := e.clock.Now()
	if !d.found || !e.alive(&d.meta, now) {
		s.mu.Unlock()
		e.countDead(d, now)
		if fromDisk {
			e.st.diskMisses.Add(1)
		}
		return false, nil
	}
	if fromDisk {
		e.st.diskHits.Add(1)
	}
	e.loadLocked(key, d)
	s.mu.Unlock()
	if flags&engine.GetTouch != 0 {
		if mt, err := e.tier(); err == nil {
			mt.Get(key, nil, engine.GetTouch|engine.GetNoValue)
		}
	}
	return true, nil
}

// lookup returns key's durable state, the newest of the pending queue,
// the batch being committed and the disk: its record (found false:
// absent; a nil record in the queue is a deletion). s.mu is held on entry
// and on return; lookup releases it around the disk read and looks again
// when a write to the stripe raced with the read. fromDisk tells whether
// the disk was read.
func (e *Engine) lookup(s *stripe, key, buf []byte) (rec []byte, found, fromDisk bool, err error) {
	for attempt := 0; ; attempt++ {
		if e.closed.Load() {
			return nil, false, false, engine.ErrClosed
		}
		if rec, ok := s.queued(key); ok {
			return rec, rec != nil, false, nil
		}
		if attempt >= 3 {
			// Writes keep racing the read: read under the lock.
			buf, found, err = e.diskGet(key, buf[:0])
			return buf, found, true, err
		}
		seq := s.wseq
		s.mu.Unlock()
		buf, found, err = e.diskGet(key, buf[:0])
		s.mu.Lock()
		if err != nil {
			return nil, false, true, err
		}
		if s.wseq == seq {
			return buf, found, true, nil
		}
	}
}

// diskGet reads key's record from the store.
func (e *Engine) diskGet(key, dst []byte) ([]byte, bool, error) {
	var kb [1 + engine.KeyMax]byte
	k := append(append(kb[:0], prefixData), key...)
	e.kvmu.RLock()
	defer e.kvmu.RUnlock()
	if e.closed.Load() {
		return dst, false, engine.ErrClosed
	}
	e.st.diskReads.Add(1)
	v, found, err := e.kv.Get(k, dst)
	if errors.Is(err, ErrStoreFailed) {
		// The store failed for good: what memory and the queue do not
		// hold is a miss, as a cache answers for items it lost (the
		// failure is logged once and shown by persistent_store_failed).
		return dst, false, nil
	}
	if err != nil && pebble.IsCorruptionError(err) {
		// A damaged block: a miss, as a cache answers for an item it
		// lost (counted and logged by pebbleEvents.dataCorruption).
		e.st.diskMisses.Add(1)
		return dst, false, nil
	}
	if err != nil {
		e.st.readErrors.Add(1)
		e.log.Error("persistent: disk read failed", "key", fmt.Sprintf("%q", key), "err", err)
		return dst, false, fmt.Errorf("%w: %v", ErrRead, err)
	}
	return v, found, nil
}

// loadLocked puts the live item d into the memory tier unless the tier
// already has the key. The caller holds key's stripe lock, so no write of
// the key can slip between reading d and loading it. A full memory tier
// (NoEvict) is not an error: the item stays on disk.
func (e *Engine) loadLocked(key []byte, d *diskItem) {
	l := loadM{e: e, d: d}
	for {
		mt, err := e.tier()
		if err != nil {
			return
		}
		_, _, err = mt.Update(key, &l)
		if !e.retry(err) {
			return
		}
	}
}

// loadM stores a disk item in the memory tier when the tier has no live
// item for the key and the disk item is still live (a flush may have
// come in between).
type loadM struct {
	e *Engine
	d *diskItem
}

func (l *loadM) Mutate(cur *engine.Item, found bool, next *engine.Item) engine.Op {
	if found || !l.e.alive(&l.d.meta, l.e.clock.Now()) {
		return engine.OpNone
	}
	next.Meta = l.d.meta
	next.Value = l.d.value
	return engine.OpStore
}

// mutator wraps a caller's Mutator for the memory tier: it shows the
// caller the item from the disk when memory has none, assigns CAS values
// from the engine's persistent counter, and encodes the record to queue.
type mutator struct {
	e    *Engine
	user engine.Mutator
	key  []byte
	now  int64

	blind    bool     // the caller's Mutator ignores the current item: no disk read
	haveDisk bool     // the durable state was looked up
	disk     diskItem // that state
	buf      []byte   // holds the disk record

	// Results of the last Mutate call.
	missed   bool      // memory had no live item and haveDisk is false
	found    bool      // the caller was shown a live item
	fromDisk bool      // ... and it came from disk
	op       engine.Op // the caller's decision, as Update reports it
	rec      []byte    // the record to queue for OpStore and OpMeta
}

func (w *mutator) Mutate(cur *engine.Item, found bool, next *engine.Item) engine.Op {
	w.missed, w.found, w.fromDisk, w.op, w.rec = false, false, false, engine.OpNone, nil
	if !found {
		if !w.haveDisk && !w.blind {
			w.missed = true
			return engine.OpNone
		}
		if w.disk.found && w.e.alive(&w.disk.meta, w.now) {
			cur = &engine.Item{Meta: w.disk.meta, Value: w.disk.value}
			found, w.fromDisk = true, true
		}
	}
	w.found = found
	op := w.user.Mutate(cur, found, next)
	switch op {
	case engine.OpStore:
		if next.CAS == 0 {
			next.CAS = w.e.cas.Add(1)
		}
		w.op = engine.OpStore
		w.rec = appendRecord(nil, w.key, &next.Meta, w.now, next.Value)
		return engine.OpStore
	case engine.OpMeta:
		if !found {
			return engine.OpNone
		}
		if next.CAS == 0 {
			next.CAS = w.e.cas.Add(1)
		}
		atime := next.Atime
		if atime == 0 {
			atime = cur.Atime
		}
		w.op = engine.OpMeta
		w.rec = appendRecord(nil, w.key, &next.Meta, atime, cur.Value)
		if w.fromDisk {
			// Memory has no item to change: load the disk value with
			// the new metadata.
			next.Value = w.disk.value
			return engine.OpStore
		}
		return engine.OpMeta
	case engine.OpDelete:
		w.op = engine.OpDelete
		return engine.OpDelete
	}
	if w.fromDisk {
		// Cache the disk item in memory on the way.
		*next = engine.Item{Meta: w.disk.meta, Value: w.disk.value}
		return engine.OpStore
	}
	return engine.OpNone
}

// Update implements engine.Engine. Under key's stripe lock it runs the
// caller's Mutator in the memory tier (showing it the disk item when
// memory has none; the disk is read with the lock released, see lookup)
// and queues the result for the disk, so that memory and queue see the
// key's writes in the same order. In Sync mode it then waits for the
// group commit that makes the write durable.
func (e *Engine) Update(key []byte, m engine.Mutator) (engine.Op, engine.Meta, error) {
	var zero engine.Meta
	if !engine.ValidKey(key) {
		return engine.OpNone, zero, engine.ErrBadKey
	}
	if e.closed.Load() {
		return engine.OpNone, zero, engine.ErrClosed
	}
	if err := e.kv.Failed(); err != nil {
		// The store failed for good: no write can reach the disk, sync or
		// async, so none is taken (memory is left as it is).
		e.st.writeErrors.Add(1)
		return engine.OpNone, zero, fmt.Errorf("%w: %v", ErrWrite, err)
	}
	if err := e.reserveCAS(); err != nil {
		return engine.OpNone, zero, err
	}
	if err := e.q.waitRoom(); err != nil {
		return engine.OpNone, zero, err
	}
	e.waitBudget()
	w := e.wrap.Get().(*mutator)
	*w = mutator{e: e, user: m, key: key, buf: w.buf[:0], blind: engine.IsBlind(m)}
	defer func() {
		if cap(w.buf) > 64<<10 {
			w.buf = nil
		}
		w.user, w.key, w.disk, w.rec = nil, nil, diskItem{}, nil
		e.wrap.Put(w)
	}()

	s := e.stripeOf(key)
	s.mu.Lock()
	var (
		op   engine.Op
		meta engine.Meta
	)
	for {
		mt, err := e.tier()
		if err != nil {
			s.mu.Unlock()
			return engine.OpNone, zero, err
		}
		w.now = e.clock.Now()
		op, meta, err = mt.Update(key, w)
		if e.retry(err) {
			continue
		}
		if err != nil {
			s.mu.Unlock()
			if w.op == engine.OpNone && w.fromDisk {
				// Only caching the disk item failed.
				return engine.OpNone, w.disk.meta, nil
			}
			return engine.OpNone, zero, err
		}
		if !w.missed {
			break
		}
		rec, found, fromDisk, err := e.lookup(s, key, w.buf)
		if err != nil {
			s.mu.Unlock()
			return engine.OpNone, zero, err
		}
		if found && fromDisk {
			// Keep the grown buffer; a queued record is shared and must
			// never become a read buffer.
			w.buf = rec
		}
		e.decode(key, rec, found, &w.disk)
		e.countDead(&w.disk, w.now)
		w.haveDisk = true
	}
	var r *round
	switch w.op {
	case engine.OpStore, engine.OpMeta:
		r = e.q.enqueueLocked(s, key, w.rec)
	case engine.OpDelete:
		if w.found {
			r = e.q.enqueueLocked(s, key, nil)
		}
	}
	s.mu.Unlock()
	if r != nil {
		if err := e.q.wait(r); err != nil {
			return engine.OpNone, zero, err
		}
	}
	switch w.op {
	case engine.OpStore, engine.OpMeta:
		return w.op, meta, nil
	case engine.OpDelete:
		return engine.OpDelete, zero, nil
	}
	if w.fromDisk {
		return engine.OpNone, w.disk.meta, nil
	}
	return op, meta, nil
}

// deleteM deletes a live item and records whether there was one.
type deleteM struct{ found bool }

func (d *deleteM) Mutate(cur *engine.Item, found bool, next *engine.Item) engine.Op {
	d.found = found
	if !found {
		return engine.OpNone
	}
	return engine.OpDelete
}

// Delete implements engine.Engine: an Update that deletes, so that a key
// only on disk is found (and its deletion persisted) too.
func (e *Engine) Delete(key []byte) (bool, error) {
	var d deleteM
	op, _, err := e.Update(key, &d)
	return err == nil && op == engine.OpDelete && d.found, err
}

// Flush implements engine.Engine. The new flush mark is persisted
// (synchronously) before it takes effect. An immediate flush replaces the
// memory tier with an empty one; flushed items on disk are hidden by the
// mark and removed by the sweep. A delayed flush is passed to the memory
// tier as well.
func (e *Engine) Flush(at int64) error {
	if e.closed.Load() {
		return engine.ErrClosed
	}
	if err := e.reserveCAS(); err != nil {
		return err
	}
	e.fmu.Lock()
	defer e.fmu.Unlock()
	now := e.clock.Now()
	nm := e.mark.Load().Next(now, at, func() uint64 { return e.cas.Add(1) })
	var p [24]byte
	binary.LittleEndian.PutUint64(p[0:], uint64(nm.PastAt))
	binary.LittleEndian.PutUint64(p[8:], nm.PastCAS)
	binary.LittleEndian.PutUint64(p[16:], uint64(nm.PendAt))
	op := kvOp{Key: metaKey(metaFlush), Value: appendMeta(nil, metaFlush, p[:])}
	e.kvmu.RLock()
	if e.closed.Load() {
		e.kvmu.RUnlock()
		return engine.ErrClosed
	}
	err := e.kv.Commit([]kvOp{op}, true)
	e.kvmu.RUnlock()
	if err != nil {
		e.st.writeErrors.Add(1)
		return fmt.Errorf("%w: persisting flush_all: %v", ErrWrite, err)
	}
	e.mark.Store(&nm)
	if at > now {
		return e.mem.Load().Flush(at)
	}
	// Swap in an empty memory tier. Calls still running on the old one
	// either finish first or get ErrClosed and retry on the new one.
	nt, err := e.newTier()
	if err != nil {
		// Keep the old tier; flushing it in place is almost as good.
		e.log.Error("persistent: flush_all could not open a new memory tier", "err", err)
		return e.mem.Load().Flush(at)
	}
	old := e.mem.Swap(nt)
	e.retire(old)
	return nil
}

// cumulative are the memory tier's counters that survive a tier swap.
var cumulative = []string{"total_items", "evictions", "evicted_unfetched", "evicted_active", "expired_unfetched", "reclaimed", "memory_reinserted",
	"lru_crawler_starts", "crawler_reclaimed", "crawler_items_checked", "moves_within_lru", "direct_reclaims",
	"memory_compactions", "memory_compacted", "memory_segments_released"}

// retire closes a memory tier replaced by Flush, keeping its counters.
// The caller holds fmu.
func (e *Engine) retire(old *memory.Engine) {
	old.Stats(func(name, value string) {
		for _, c := range cumulative {
			if name == c {
				var n uint64
				fmt.Sscan(value, &n)
				e.memBase[name] += n
			}
		}
	})
	old.Close()
}

// iterateBatch bounds what Iterate copies out of one disk snapshot: at
// most this many records, or this many bytes of keys and records, before
// it closes the snapshot, releases kvmu and hands them to fn.
const (
	iterateBatch      = 256
	iterateBatchBytes = 256 << 10
)

// Iterate implements engine.Engine: every live item on disk or in the
// write-behind queue, once, with the metadata of its copy in memory when
// memory has the same item (memory's atime and fetched bit are newer).
//
// The disk is read in batches: up to iterateBatch records (or
// iterateBatchBytes) are copied out of one snapshot under kvmu, the
// snapshot is closed and kvmu released, and only then is fn called for
// them; the next batch starts at the first key the previous one left. So
// fn holds no lock and no disk snapshot of the engine's, and may block
// (a metadump writing to a slow client) without stalling other callers or
// Close for longer than one batch. A key is visited at most once: the
// scan moves forward in key order, and queued keys are visited from the
// queue alone.
func (e *Engine) Iterate(fn func(key []byte, it *engine.Item) bool) error {
	if e.closed.Load() {
		return engine.ErrClosed
	}
	// The queue first: the disk scan, which starts after, skips its keys.
	queued := map[string][]byte{}
	for i := range e.stripes {
		s := &e.stripes[i]
		s.mu.Lock()
		for k, v := range s.inflight {
			queued[k] = v
		}
		for k, v := range s.pending {
			queued[k] = v
		}
		s.mu.Unlock()
	}
	var it engine.Item
	visit := func(key, rec []byte) bool {
		v, err := decodeRecord(key, rec, &it.Meta)
		if err != nil {
			e.corrupt(key, err)
			return true
		}
		now := e.clock.Now()
		if !e.alive(&it.Meta, now) {
			return true
		}
		if mt, err := e.tier(); err == nil {
			if m, _, ok, err := mt.Get(key, nil, engine.GetNoValue); err == nil && ok && m.CAS == it.CAS {
				it.Meta = m
			}
		}
		it.Value = v
		return fn(key, &it)
	}
	var (
		buf  []byte // the batch's keys and records, back to back
		ends []int  // the end in buf of each key, then of its record
		from []byte // where the next batch starts; nil when done
	)
	for lower := dataLower; lower != nil; lower = from {
		buf, ends, from = buf[:0], ends[:0], nil
		e.kvmu.RLock()
		if e.closed.Load() {
			e.kvmu.RUnlock()
			return engine.ErrClosed
		}
		err := e.kv.Scan(lower, dataUpper, func(k, v []byte) bool {
			if len(ends) >= 2*iterateBatch || len(buf) >= iterateBatchBytes {
				from = bytes.Clone(k)
				return false
			}
			key := k[1:]
			if _, ok := queued[string(key)]; ok {
				return true
			}
			buf = append(buf, key...)
			ends = append(ends, len(buf))
			buf = append(buf, v...)
			ends = append(ends, len(buf))
			return true
		})
		e.kvmu.RUnlock()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrRead, err)
		}
		start := 0
		for i := 0; i < len(ends); i += 2 {
			key, rec := buf[start:ends[i]], buf[ends[i]:ends[i+1]]
			start = ends[i+1]
			if e.closed.Load() {
				return engine.ErrClosed
			}
			if !visit(key, rec) {
				return nil
			}
		}
	}
	for k, rec := range queued {
		if rec == nil {
			continue
		}
		if e.closed.Load() {
			return engine.ErrClosed
		}
		if !visit([]byte(k), rec) {
			break
		}
	}
	return nil
}

// SetMemoryLimit implements engine.MemoryLimiter for the memory tier.
func (e *Engine) SetMemoryLimit(n int64) error {
	e.fmu.Lock()
	defer e.fmu.Unlock()
	mt, err := e.tier()
	if err != nil {
		return err
	}
	if err := mt.SetMemoryLimit(n); err != nil {
		return err
	}
	e.limit.Store(n)
	return nil
}

// Close implements engine.Engine. It stops the background work, commits
// everything queued (with fsync), and closes the store and the memory
// tier.
func (e *Engine) Close() error {
	e.cmu.Lock()
	defer e.cmu.Unlock()
	if e.closed.Swap(true) {
		return engine.ErrClosed
	}
	close(e.stopBG)
	e.bg.Wait()
	// A barrier: no write enqueues after this. Enqueuers check closed and
	// enqueue in one critical section of their stripe lock, so once every
	// stripe lock has been taken and released, each enqueue that saw the
	// engine open has finished, and the final commit (q.stop) collects it.
	for i := range e.stripes {
		e.stripes[i].mu.Lock()
		//lint:ignore SA2001 the empty critical section is the barrier described above
		e.stripes[i].mu.Unlock()
	}
	qerr := e.q.stop()
	e.kvmu.Lock()
	kerr := e.kv.Close()
	e.kvmu.Unlock()
	e.fmu.Lock()
	merr := e.mem.Load().Close()
	e.fmu.Unlock()
	if qerr != nil {
		qerr = fmt.Errorf("%w: final commit at close: %v", ErrWrite, qerr)
	}
	return errors.Join(qerr, kerr, merr)
}

// LastCAS returns the last CAS value handed out (engine.CASCounter).
func (e *Engine) LastCAS() uint64 { return e.cas.Load() }
