package persistent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/wal"
	"golang.org/x/sys/unix"
)

// kv is the durable tier as the engine uses it: point reads, atomic
// batches of writes, and ordered scans. Pebble implements it (pebbleKV);
// tests wrap it to inject faults. Keys are full store keys (with their
// prefix byte).
type kv interface {
	// Get appends the value stored under key to dst. found is false when
	// the key is absent.
	Get(key, dst []byte) (value []byte, found bool, err error)
	// Commit applies ops atomically; with sync it returns only once they
	// are on stable storage.
	Commit(ops []kvOp, sync bool) error
	// Scan calls fn for each key in [lower, upper) in order, on one
	// consistent snapshot, until fn returns false. key and value are
	// valid only during the call.
	Scan(lower, upper []byte, fn func(key, value []byte) bool) error
	// DiskUsage reports the bytes the store takes on disk.
	DiskUsage() uint64
	// Last returns the last key in [lower, upper); found is false when
	// there is none.
	Last(lower, upper []byte) (key []byte, found bool, err error)
	// Compact compacts the store's files that hold keys in [lower,
	// upper), so that the space of deleted keys is given back.
	Compact(lower, upper []byte) error
	// Close releases the store.
	Close() error
}

// kvOp is one write of a Commit: a set of Key to Value, a deletion of
// Key when Delete is true, or a deletion of every key in [Key, End) when
// End is not nil.
type kvOp struct {
	Key, Value []byte
	Delete     bool
	End        []byte
}

// lockName is the file in the data directory that a running engine holds
// an exclusive flock(2) on.
const lockName = "mnemo.lock"

// pebbleKV is the kv over a Pebble database.
//
// A failed WAL write (a full disk) is fatal to a Pebble DB: Pebble calls
// Logger.Fatalf (pebbleLogger panics) and its commit pipeline cannot be
// used again. Commit recovers that panic into an error and marks the
// store broken: later commits fail at once while reads go on from the
// broken DB (they do not write). At most once a second a commit probes
// the disk by writing a small file; once that succeeds (space returned)
// it closes the DB and opens it again (the WAL's synced writes are
// replayed), and writes succeed again without a restart.
type pebbleKV struct {
	mu     sync.RWMutex // write-held while the DB is reopened
	db     *pebble.DB
	broken error // the fatal error that broke db; nil: healthy
	tried  time.Time
	full   atomic.Bool // the last space check found the disk full
	lock   *os.File
	dir    string
	fs     vfs.FS
	log    *slog.Logger
	mkOpts func() *pebble.Options
}

// pebbleFatal is what pebbleLogger.Fatalf panics with.
type pebbleFatal struct{ msg string }

func (f pebbleFatal) Error() string { return "persistent: pebble: " + f.msg }

// reopenEvery is how often a broken store probes the disk.
const reopenEvery = time.Second

// probeSize is the size of the file written to probe the disk.
const probeSize = 1 << 20

// pebbleEvents receives Pebble's event callbacks. They may fire before
// the engine exists (while Pebble opens the store) and from any
// goroutine, so they count into target, which New points at the engine's
// counters once it is built.
type pebbleEvents struct {
	target atomic.Pointer[counters]
	log    *slog.Logger
	logged sync.Map // damaged file paths already logged
	// bgFailing is set by a background error and cleared by the next
	// successful flush or compaction.
	bgFailing atomic.Bool
}

func newPebbleEvents(log *slog.Logger) *pebbleEvents {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ev := &pebbleEvents{log: log}
	ev.target.Store(&counters{})
	return ev
}

// compactionBegin and compactionEnd count Pebble's compactions, for the
// disk budget (budget.go).
func (ev *pebbleEvents) compactionBegin(pebble.CompactionInfo) {
	ev.target.Load().compactionsRunning.Add(1)
}

func (ev *pebbleEvents) compactionEnd(info pebble.CompactionInfo) {
	st := ev.target.Load()
	st.compactionsRunning.Add(-1)
	st.compactions.Add(1)
	ev.recovered(info.Err)
}

// attach moves the counts made so far into st and counts into st from now.
func (ev *pebbleEvents) attach(st *counters) {
	old := ev.target.Swap(st)
	st.bgErrors.Add(old.bgErrors.Load())
	st.corruptBlocks.Add(old.corruptBlocks.Load())
	st.walDamaged.Add(old.walDamaged.Load())
	st.compactionsRunning.Add(old.compactionsRunning.Load())
	st.compactions.Add(old.compactions.Load())
}

// backgroundError counts a failed flush or compaction, and logs the
// first of an episode: Pebble retries a failing flush several times a
// second (on a full disk), so the log gets one line, not one per retry,
// until a flush or compaction succeeds again. The error is logged as its
// message: slog formats error values with %+v, which for Pebble's errors
// is a stack trace.
func (ev *pebbleEvents) backgroundError(err error) {
	ev.target.Load().bgErrors.Add(1)
	if !ev.bgFailing.Swap(true) {
		ev.log.Error("persistent: background disk error; further ones are counted in persistent_background_errors, not logged, until the store recovers",
			"err", err.Error())
	}
}

// recovered ends an episode of background errors when Pebble's
// background work succeeds again.
func (ev *pebbleEvents) recovered(err error) {
	if err == nil && ev.bgFailing.Swap(false) {
		ev.log.Warn("persistent: background disk work succeeds again")
	}
}

// dataCorruption replaces Pebble's default handler, which calls
// Logger.Fatalf (a crash). The read that found the damage returns a
// corruption error, which the engine turns into a miss; here it is
// counted, and logged once per damaged file.
func (ev *pebbleEvents) dataCorruption(info pebble.DataCorruptionInfo) {
	ev.target.Load().corruptBlocks.Add(1)
	if _, seen := ev.logged.LoadOrStore(info.Path, true); !seen {
		ev.log.Error("persistent: damaged store file; its keys read as misses until they are written again (see README: repair)",
			"file", info.Path, "err", info.Details.Error())
	}
}

// openPebble opens (creating it if needed) the Pebble store in dir, after
// taking the directory's lock file. ev (nil: a fresh one) receives
// Pebble's events.
func openPebble(dir string, cacheSize int64, log *slog.Logger, ev *pebbleEvents) (*pebbleKV, error) {
	return openPebbleSized(dir, cacheSize, 0, log, ev, nil)
}

// openPebbleFS is openPebble over fs (nil: the OS's); tests pass a
// fault-injecting one.
func openPebbleFS(dir string, cacheSize int64, log *slog.Logger, ev *pebbleEvents, fs vfs.FS) (*pebbleKV, error) {
	return openPebbleSized(dir, cacheSize, 0, log, ev, fs)
}

// openPebbleSized is openPebbleFS for a disk budget of diskSize bytes (0:
// none). Its memtables are memTableSizeFor(diskSize) (queue.go); a
// budget below 64 MiB also gets smaller manifest files.
func openPebbleSized(dir string, cacheSize, diskSize int64, log *slog.Logger, ev *pebbleEvents, fs vfs.FS) (*pebbleKV, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if ev == nil {
		ev = newPebbleEvents(log)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("persistent: data directory %s: %w", dir, err)
	}
	lf, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("persistent: data directory %s: %w", dir, err)
	}
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lf.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is in use by another running mnemo (or another engine in this process); stop it or choose another path=", ErrLocked, dir)
		}
		return nil, fmt.Errorf("persistent: lock %s: %w", filepath.Join(dir, lockName), err)
	}
	if fs == nil {
		fs = vfs.Default
	}
	mkOpts := func() *pebble.Options {
		opts := &pebble.Options{
			FS:                 fs,
			CacheSize:          cacheSize,
			FormatMajorVersion: pebble.FormatNewest,
			Logger:             pebbleLogger{log},
			EventListener: &pebble.EventListener{
				BackgroundError: ev.backgroundError,
				DataCorruption:  ev.dataCorruption,
				FlushEnd:        func(info pebble.FlushInfo) { ev.recovered(info.Err) },
				CompactionBegin: ev.compactionBegin,
				CompactionEnd:   ev.compactionEnd,
			},
		}
		opts.MemTableSize = memTableSizeFor(diskSize)
		if diskSize > 0 && diskSize < 64<<20 {
			opts.MaxManifestFileSize = max(diskSize/16, 256<<10)
		}
		if diskSize > 0 {
			// Levels sized to the budget (Pebble's default base level
			// is 64 MiB), so that compactions move deletions down to
			// the items they delete while the store is near its budget.
			opts.LBaseMaxBytes = min(64<<20, max(diskSize/8, 1<<20))
			budgetTableSizes(opts, diskSize)
		}
		for i := range opts.Levels {
			// Bloom filters on every level: a miss then reads no data block.
			opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
			opts.Levels[i].FilterType = pebble.TableFilter
		}
		// Snappy/MinLZ: pure Go and fast; zstd is left out so that no build
		// depends on cgo for it.
		opts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionFastest })
		return opts
	}
	checkWAL(dir, fs, log, ev)
	db, err := pebble.Open(dir, mkOpts())
	if err != nil {
		lf.Close()
		if pebble.IsCorruptionError(err) {
			return nil, fmt.Errorf("%w: %s: %v; move the directory aside to start with an empty cache", ErrCorrupt, dir, err)
		}
		return nil, fmt.Errorf("%w: %s: %v (a damaged store: move the directory aside to start with an empty cache)", ErrOpen, dir, err)
	}
	return &pebbleKV{db: db, lock: lf, dir: dir, fs: fs, log: log, mkOpts: mkOpts}, nil
}

// errNoStore is the error of a read while a failed reopen left no DB.
var errNoStore = errors.New("persistent: the store is closed after a write failure and could not be reopened yet")

func (p *pebbleKV) Get(key, dst []byte) ([]byte, bool, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.db == nil {
		return dst, false, errNoStore
	}
	v, closer, err := p.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return dst, false, nil
	}
	if err != nil {
		return dst, false, err
	}
	dst = append(dst, v...)
	closer.Close()
	return dst, true, nil
}

func (p *pebbleKV) Commit(ops []kvOp, sync bool) error {
	p.mu.RLock()
	broken := p.broken
	var err error
	if broken == nil {
		err = p.commit(ops, sync)
	}
	p.mu.RUnlock()
	if broken == nil {
		var fatal pebbleFatal
		if errors.As(err, &fatal) {
			p.mu.Lock()
			if p.broken == nil {
				p.broken = err
				p.tried = time.Now()
				p.log.Error("persistent: the store cannot write (its log failed); writes fail until the disk accepts writes again, reads go on",
					"err", err.Error())
			}
			p.mu.Unlock()
		}
		return err
	}
	if err := p.reopen(); err != nil {
		return err
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.broken != nil {
		return p.broken
	}
	return p.commit(ops, sync)
}

// reopen probes the disk (at most once per reopenEvery) and, when it
// takes writes again, reopens the broken DB.
func (p *pebbleKV) reopen() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.broken == nil {
		return nil
	}
	if time.Since(p.tried) < reopenEvery {
		return p.broken
	}
	p.tried = time.Now()
	if err := p.probe(); err != nil {
		return fmt.Errorf("%w (the disk still refuses writes: %v)", p.broken, err)
	}
	func() {
		defer func() { _ = recover() }() // a broken DB may fail to close
		p.db.Close()
	}()
	db, err := pebble.Open(p.dir, p.mkOpts())
	if err != nil {
		// Nothing to read from now: Get and Scan fail until a reopen works.
		p.db = nil
		return fmt.Errorf("%w (reopening the store: %v)", p.broken, err)
	}
	p.db, p.broken = db, nil
	p.log.Warn("persistent: the store writes again (reopened after a write failure)")
	return nil
}

// probe writes, syncs and removes a small file in the store's directory.
func (p *pebbleKV) probe() error {
	name := p.fs.PathJoin(p.dir, "mnemo.probe")
	f, err := p.fs.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	_, err = f.Write(make([]byte, probeSize))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := p.fs.Remove(name); err == nil {
		err = rerr
	}
	return err
}

// diskReserve is the free space a commit leaves on the disk. Below it a
// commit fails with ErrDiskFull before it reaches Pebble: Pebble cannot
// survive some write failures (a WAL that cannot be closed or created on
// a memtable rotation panics with its mutex released, a fatal error of
// the Go runtime, not a recoverable panic), so the engine stops writing
// before the disk is full. Pebble's own flushes and compactions use the
// reserve.
const diskReserve = 64 << 20

// ErrDiskFull is the error of a commit refused because the disk has less
// than diskReserve bytes free.
var ErrDiskFull = errors.New("persistent: the disk is full (less than 64 MiB free)")

// checkSpace fails when the disk holding the store has less than
// diskReserve plus the batch free, logging the first failure of an
// episode and its end.
func (p *pebbleKV) checkSpace(batch int) error {
	u, err := p.fs.GetDiskUsage(p.dir)
	if errors.Is(err, os.ErrNotExist) {
		// The directory was removed under the server: Pebble would panic
		// creating its next log there.
		return fmt.Errorf("persistent: the data directory %s was removed; writes fail until it is restored or the server restarts: %w", p.dir, err)
	}
	if err != nil {
		return nil // unknown: let Pebble try
	}
	if u.AvailBytes < diskReserve+uint64(batch) {
		if !p.full.Swap(true) {
			p.log.Error("persistent: the disk is full: writes fail with SERVER_ERROR until space is freed; reads go on",
				"path", p.dir, "free_bytes", u.AvailBytes, "reserve_bytes", diskReserve)
		}
		return fmt.Errorf("%w: %d bytes free on %s", ErrDiskFull, u.AvailBytes, p.dir)
	}
	if p.full.Swap(false) {
		p.log.Warn("persistent: the disk has room again: writes resume", "path", p.dir, "free_bytes", u.AvailBytes)
	}
	return nil
}

// recoverFatal, deferred, turns Pebble's fatal panic (pebbleFatal, see
// pebbleLogger) into *err; any other panic goes on.
func recoverFatal(err *error) {
	if r := recover(); r != nil {
		f, ok := r.(pebbleFatal)
		if !ok {
			panic(r)
		}
		*err = f
	}
}

// batchRetain is the largest batch buffer Pebble's batch pool keeps for
// reuse: an async commit's (maxCommitFor, 3 MiB) with room for the
// record framing, so the flusher's commits allocate no new buffer.
const batchRetain = 4 << 20

// commit commits ops to db, turning Pebble's fatal panic into an error.
func (p *pebbleKV) commit(ops []kvOp, sync bool) (err error) {
	n := 0
	for i := range ops {
		n += len(ops[i].Key) + len(ops[i].Value)
	}
	if err := p.checkSpace(n); err != nil {
		return err
	}
	defer recoverFatal(&err)
	// Sized for the whole batch at once (growing by doubling copies it
	// and may allocate twice its size); Pebble's pool keeps a committed
	// batch's buffer for the next one up to batchRetain.
	b := p.db.NewBatch(pebble.WithInitialSizeBytes(max(n+12*len(ops)+64, 1<<10)), pebble.WithMaxRetainedSizeBytes(batchRetain))
	defer b.Close()
	for i := range ops {
		var err error
		if ops[i].End != nil {
			err = b.DeleteRange(ops[i].Key, ops[i].End, nil)
		} else if ops[i].Delete {
			err = b.Delete(ops[i].Key, nil)
		} else {
			err = b.Set(ops[i].Key, ops[i].Value, nil)
		}
		if err != nil {
			return err
		}
	}
	wo := pebble.NoSync
	if sync {
		wo = pebble.Sync
	}
	return b.Commit(wo)
}

func (p *pebbleKV) Scan(lower, upper []byte, fn func(key, value []byte) bool) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.db == nil {
		return errNoStore
	}
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return err
		}
		if !fn(it.Key(), v) {
			break
		}
	}
	err = it.Error()
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	return err
}

func (p *pebbleKV) Last(lower, upper []byte) ([]byte, bool, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.db == nil {
		return nil, false, errNoStore
	}
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, false, err
	}
	var key []byte
	ok := it.Last()
	if ok {
		key = bytes.Clone(it.Key())
	}
	err = it.Error()
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	return key, ok && err == nil, err
}

func (p *pebbleKV) Compact(lower, upper []byte) (err error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.db == nil || p.broken != nil {
		return errNoStore
	}
	defer recoverFatal(&err)
	return p.db.Compact(context.Background(), lower, upper, false)
}

func (p *pebbleKV) DiskUsage() uint64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.db == nil {
		return 0
	}
	return p.db.Metrics().DiskSpaceUsage()
}

// Close closes the DB. A DB broken by a failed write may fail to close:
// that is an error, not a panic.
func (p *pebbleKV) Close() (err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.lock.Close() // releases the flock
	if p.db == nil {
		return nil
	}
	defer recoverFatal(&err)
	return p.db.Close()
}

// pebbleLogger sends Pebble's log lines to the engine's logger.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug("persistent: pebble: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error("persistent: pebble: " + fmt.Sprintf(format, args...))
}

// Fatalf is called by Pebble on an unrecoverable internal error; Pebble
// does not expect it to return.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error("persistent: pebble: fatal: " + msg)
	panic(pebbleFatal{msg})
}

// pastDamage returns, when err reports a damaged store file with known
// key bounds, the first key after that file, for a scan from from to
// resume at. ok is false when err is not such an error or the file ends
// before from (the scan would not move forward).
func pastDamage(err error, from []byte) (next []byte, ok bool) {
	info := pebble.ExtractDataCorruptionInfo(err)
	if info == nil || info.Bounds.End.Key == nil {
		return nil, false
	}
	end := info.Bounds.End
	next = bytes.Clone(end.Key)
	if end.IsUpperBoundFor(bytes.Compare, end.Key) {
		// An inclusive end: the file holds end.Key itself.
		next = append(next, 0)
	}
	if bytes.Compare(next, from) <= 0 {
		return nil, false
	}
	return next, true
}

// checkWAL reads the store's write-ahead logs before Pebble replays them,
// and logs (at error level) and counts in persistent_wal_damaged each one
// that does not read to a clean end. Pebble stops its replay of the
// newest log at such a point without a word (it cannot tell a write torn
// by a crash from damage), so the writes after it are lost: the line
// says which log, where, and how much of it is past that point. A
// damaged older log makes Pebble refuse to open the store (ErrCorrupt).
func checkWAL(dir string, fs vfs.FS, log *slog.Logger, ev *pebbleEvents) {
	logs, err := wal.Scan(wal.Dir{FS: fs, Dirname: dir})
	if err != nil {
		return // Pebble's Open reports it
	}
	for _, ll := range logs {
		size, _ := ll.PhysicalSize()
		r := ll.OpenForRead()
		records := 0
		for {
			rec, off, err := r.NextRecord()
			if err == nil {
				_, err = io.Copy(io.Discard, rec)
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				ev.target.Load().walDamaged.Add(1)
				log.Error("persistent: the write-ahead log does not read to its end: the writes after this point are lost (damage, or a write torn by a crash)",
					"log", ll.String(), "records_read", records, "at", fmt.Sprint(off), "log_bytes", size, "err", err.Error())
				break
			}
			records++
		}
		r.Close()
	}
}
