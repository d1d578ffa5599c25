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
	"reflect"
	"runtime"
	"strings"
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
	// Level0 reports how many sublevels the store's level 0 holds now,
	// counting each memtable that waits for its flush as one, at how
	// many the store stops commits until a compaction has taken some
	// away (Pebble's L0StopWritesThreshold), and the size of a memtable
	// now (Pebble's first memtables are small: 256 KiB, each next one
	// twice the last); 0, 0, 0 when it cannot tell (a failed store). The
	// queue's admission reads it (queue.noteLevel0).
	Level0() (sublevels, stop int, memtable int64)
	// Close releases the store.
	Close() error
	// Failed returns the error that stopped the store for good (an
	// error matching ErrStoreFailed), or nil while it works: once it
	// has failed every call fails at once and the store is not used
	// again until a restart.
	Failed() error
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
// Logger.Fatalf from the commit that saw it, and its commit pipeline
// cannot be used again. pebbleLogger turns that Fatalf into a panic,
// Commit recovers it into an error and marks the store broken: later
// commits fail at once while reads go on from the broken DB (they do not
// write). At most once a second a commit probes the disk by writing a
// small file; once that succeeds (space returned) it closes the DB and
// opens it again (the WAL's synced writes are replayed), and writes
// succeed again without a restart.
//
// Every other fatal error fails the store for good (see failure):
// Pebble's state is then unknown and the goroutine that hit it may hold
// Pebble's mutexes, so the DB is never called again, not even to close
// it; every method fails at once with ErrStoreFailed until a restart.
// The calls that may wait on Pebble's mutexes or background work
// (Commit, Compact, Close, the metrics) run on a goroutine of their own
// (await), so that they return when the store fails instead of waiting
// forever.
type pebbleKV struct {
	mu     sync.RWMutex // write-held while the DB is reopened
	db     *pebble.DB
	dead   atomic.Pointer[failure] // db's failure state
	broken error                   // the fatal error that broke db; nil: healthy
	tried  time.Time
	full   atomic.Bool // the last space check found the disk full
	lock   *os.File
	dir    string
	fs     vfs.FS
	log    *slog.Logger
	ev     *pebbleEvents
	mkOpts func(*failure) *pebble.Options
	rp     *readPool // Get's reader goroutines
	// The last figures the metrics gave, for stats after a failure.
	usage, tables atomic.Uint64
}

// pebbleFatal is what pebbleLogger.Fatalf panics with.
type pebbleFatal struct{ msg string }

func (f pebbleFatal) Error() string { return "persistent: pebble: " + f.msg }

// reopenEvery is how often a broken store probes the disk.
const reopenEvery = time.Second

// probeSize is the size of the file written to probe the disk.
const probeSize = 1 << 20

// failure is the fatal state of one Pebble DB. Pebble calls
// Logger.Fatalf, or panics, where it cannot go on (a MANIFEST write or
// sync that failed, a write-ahead log that cannot be closed or created
// when the memtable rotates, a broken invariant), often on one of its
// own goroutines, where a panic cannot be recovered and kills the
// process, and sometimes with its mutex released (a panic then unlocks
// an unlocked mutex, a fatal error of the Go runtime). Instead, fail
// marks the DB failed and the goroutine that hit the error parks
// forever (park): the process goes on, the engine stops calling the DB
// and serves from memory. guardFS parks every later write of the DB's
// goroutines, so the failed DB leaves the directory as it was and a
// restart replays its write-ahead log.
type failure struct {
	ch   chan struct{} // closed when the DB fails
	once sync.Once
	err  error // set before ch is closed
	ev   *pebbleEvents
	log  *slog.Logger
	// lock is Pebble's lock of the directory (guardFS.Lock), which
	// pebbleKV.Close releases when the DB failed (Pebble would release
	// it in DB.Close).
	lock atomic.Pointer[io.Closer]
	// dead is set as the DB fails, before ch is closed and the reads in
	// flight on the DB are abandoned (rp.abandon).
	dead atomic.Bool
	rp   *readPool
}

func newFailure(log *slog.Logger, ev *pebbleEvents, rp *readPool) *failure {
	return &failure{ch: make(chan struct{}), log: log, ev: ev, rp: rp}
}

// fail marks the DB failed with cause (the first cause is kept), and
// counts and logs it once.
func (f *failure) fail(cause error) {
	f.once.Do(func() {
		f.err = fmt.Errorf("%w: %v", ErrStoreFailed, cause)
		st := f.ev.target.Load()
		st.fatalErrors.Add(1)
		st.storeFailed.Store(1)
		f.log.Error("persistent: THE DISK STORE FAILED: writes answer SERVER_ERROR and keys not in memory read as misses until mnemo is restarted (the store reopens at start and replays its log)",
			"err", cause.Error())
		f.dead.Store(true)
		close(f.ch)
		if f.rp != nil {
			f.rp.abandon(f)
		}
	})
}

// failed returns the failure's error, or nil while the DB works.
func (f *failure) failed() error {
	select {
	case <-f.ch:
		return f.err
	default:
		return nil
	}
}

// park blocks the calling goroutine forever: one that hit a fatal error
// inside Pebble, whose state it must not touch again.
func park() {
	select {}
}

// Names of the frames fatalContext looks for.
var (
	ownFrame    = reflect.TypeOf(pebbleKV{}).PkgPath() + ".(*pebbleKV)."
	openFrame   = reflect.TypeOf(pebbleKV{}).PkgPath() + ".openPebbleSized"
	rotateFrame = reflect.TypeOf(pebble.DB{}).PkgPath() + ".(*DB).rotateWAL"
)

// fatalContext reports whether the calling goroutine runs a call of this
// package into Pebble (a pebbleKV method or the open, each of which
// recovers a pebbleFatal panic), and whether it is inside Pebble's
// rotateWAL (which releases DB.mu, so a panic there would unlock an
// unlocked mutex on its way out: a fatal error no recover catches).
func fatalContext() (ours, rotating bool) {
	var pcs [128]uintptr
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs[:])])
	for {
		fr, more := frames.Next()
		switch {
		case fr.Function == rotateFrame:
			rotating = true
		case strings.HasPrefix(fr.Function, ownFrame) || fr.Function == openFrame:
			ours = true
		}
		if !more {
			return ours, rotating
		}
	}
}

// await runs fn, a call into the DB whose failure state is f, on a
// goroutine of its own and returns its error, or f's error as soon as
// the DB fails: fn may then be parked, or wait forever for a mutex a
// parked goroutine holds. A panic of fn other than a pebbleFatal fails
// the DB (its state is unknown).
func (p *pebbleKV) await(f *failure, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		var err error
		defer func() { done <- err }()
		defer func() {
			if r := recover(); r != nil {
				if fe, ok := r.(pebbleFatal); ok {
					err = fe
					return
				}
				f.fail(fmt.Errorf("panic: %v", r))
				err = f.failed()
			}
		}()
		err = fn()
	}()
	select {
	case err := <-done:
		return err
	case <-f.ch:
		select {
		case err := <-done:
			return err // it ended as the DB failed
		default:
			return f.err
		}
	}
}

// Failed implements kv.
func (p *pebbleKV) Failed() error {
	return p.dead.Load().failed()
}

// guardFS is the file system a Pebble DB runs on: the engine's (the OS's
// or a test's) with two guards, for the fatal errors Pebble raises
// outside Logger.Fatalf. An error of a write-ahead log's rotation (the
// old log's close or the new one's creation fails) makes Pebble's
// rotateWAL panic with DB.mu released, a fatal error of the Go runtime:
// guardFS sees the error first, fails the DB and parks the goroutine
// instead of returning it. And once the DB failed, every write to the
// directory parks the goroutine that tries it (the failed DB's flushes,
// compactions and file deletions), so that nothing changes the store
// after the failure.
type guardFS struct {
	vfs.FS
	f *failure
}

// fence parks the caller once the DB failed.
func (g *guardFS) fence() {
	if g.f.failed() != nil {
		park()
	}
}

// check parks the caller, failing the DB, when err happened inside
// rotateWAL; otherwise it returns err.
func (g *guardFS) check(err error) error {
	if err != nil {
		if _, rotating := fatalContext(); rotating {
			g.f.fail(fmt.Errorf("rotating the write-ahead log: %w", err))
			park()
		}
	}
	return err
}

func (g *guardFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err := g.check(err); err != nil {
		return nil, err
	}
	return &guardFile{File: f, g: g}, nil
}

func (g *guardFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	g.fence()
	return g.wrap(g.FS.Create(name, cat))
}

func (g *guardFS) ReuseForWrite(old, new string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	g.fence()
	return g.wrap(g.FS.ReuseForWrite(old, new, cat))
}

func (g *guardFS) OpenReadWrite(name string, cat vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	g.fence()
	return g.wrap(g.FS.OpenReadWrite(name, cat, opts...))
}

func (g *guardFS) OpenDir(name string) (vfs.File, error) {
	return g.wrap(g.FS.OpenDir(name))
}

func (g *guardFS) Link(oldname, newname string) error {
	g.fence()
	return g.check(g.FS.Link(oldname, newname))
}

func (g *guardFS) Remove(name string) error {
	g.fence()
	return g.check(g.FS.Remove(name))
}

func (g *guardFS) RemoveAll(name string) error {
	g.fence()
	return g.check(g.FS.RemoveAll(name))
}

func (g *guardFS) Rename(oldname, newname string) error {
	g.fence()
	return g.check(g.FS.Rename(oldname, newname))
}

func (g *guardFS) MkdirAll(dir string, perm os.FileMode) error {
	g.fence()
	return g.check(g.FS.MkdirAll(dir, perm))
}

// Lock takes Pebble's lock of the directory and keeps it, for Close to
// release when the DB failed.
func (g *guardFS) Lock(name string) (io.Closer, error) {
	c, err := g.FS.Lock(name)
	if err != nil {
		return nil, err
	}
	var oc io.Closer = &onceCloser{c: c}
	g.f.lock.Store(&oc)
	return oc, nil
}

// onceCloser closes c once, whoever closes it first (Pebble, or Close
// abandoning a failed DB); the lock's own Close panics the second time.
type onceCloser struct {
	once sync.Once
	c    io.Closer
	err  error
}

func (o *onceCloser) Close() error {
	o.once.Do(func() { o.err = o.c.Close() })
	return o.err
}

func (g *guardFS) Unwrap() vfs.FS { return g.FS }

// guardFile is a file opened through guardFS.
type guardFile struct {
	vfs.File
	g     *guardFS
	erred atomic.Pointer[error] // the first error of an operation on it
}

// note records err and passes it through guardFS.check.
func (f *guardFile) note(err error) error {
	if err != nil {
		f.erred.CompareAndSwap(nil, &err)
		return f.g.check(err)
	}
	return nil
}

func (f *guardFile) Write(p []byte) (int, error) {
	f.g.fence()
	n, err := f.File.Write(p)
	return n, f.note(err)
}

func (f *guardFile) WriteAt(p []byte, off int64) (int, error) {
	f.g.fence()
	n, err := f.File.WriteAt(p, off)
	return n, f.note(err)
}

func (f *guardFile) Preallocate(off, n int64) error {
	f.g.fence()
	return f.note(f.File.Preallocate(off, n))
}

func (f *guardFile) Sync() error {
	f.g.fence()
	return f.note(f.File.Sync())
}

func (f *guardFile) SyncData() error {
	f.g.fence()
	return f.note(f.File.SyncData())
}

func (f *guardFile) SyncTo(n int64) (bool, error) {
	f.g.fence()
	full, err := f.File.SyncTo(n)
	return full, f.note(err)
}

// Close closes the file. A write-ahead log's writer returns the error of
// an earlier write (from its flushing goroutine) at its close, and
// rotateWAL panics on it: closing a file that failed inside rotateWAL
// fails the DB and parks.
func (f *guardFile) Close() error {
	err := f.File.Close()
	if earlier := f.erred.Load(); err != nil || earlier != nil {
		if _, rotating := fatalContext(); rotating {
			if earlier != nil {
				err = fmt.Errorf("an earlier write to it failed: %w", *earlier)
			}
			f.g.f.fail(fmt.Errorf("closing the write-ahead log: %w", err))
			park()
		}
	}
	return err
}

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
	// manual counts the engine's manual compactions (CompactRange) in
	// flight, for the log: Pebble gives them the reason "default", as
	// it does a compaction a level's score started.
	manual atomic.Int64
	// stallSince is when Pebble's current write stall began (unix ns;
	// 0: none).
	stallSince atomic.Int64
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
// disk budget (budget.go), and log them at info level (-v: -vv would echo
// every command as well, as memcached does), with what
// started them: Pebble's reason ("default" is a level's score, or a
// manual compaction: manual counts the engine's own in flight,
// "delete-only", "elision-only", "read", "tombstone-density", "move",
// ...), the input levels with their tables, bytes and scores, the
// output level, and at the end the bytes written and the time taken.
func (ev *pebbleEvents) compactionBegin(info pebble.CompactionInfo) {
	ev.target.Load().compactionsRunning.Add(1)
	if ev.log.Enabled(context.Background(), slog.LevelInfo) {
		ev.log.Info("persistent: pebble: compaction begins", "job", info.JobID, "reason", info.Reason,
			"manual", ev.manual.Load(), "input", levelsString(info.Input), "to", fmt.Sprintf("L%d", info.Output.Level),
			"annotations", strings.Join(info.Annotations, " "))
	}
}

func (ev *pebbleEvents) compactionEnd(info pebble.CompactionInfo) {
	st := ev.target.Load()
	st.compactionsRunning.Add(-1)
	st.compactions.Add(1)
	ev.recovered(info.Err)
	if ev.log.Enabled(context.Background(), slog.LevelInfo) {
		args := []any{"job", info.JobID, "reason", info.Reason, "manual", ev.manual.Load(),
			"input", levelsString(info.Input), "to", fmt.Sprintf("L%d", info.Output.Level),
			"tables", len(info.Output.Tables), "bytes", tablesSize(info.Output.Tables),
			"duration", info.Duration.Round(time.Microsecond), "total", info.TotalDuration.Round(time.Microsecond)}
		if info.Err != nil {
			args = append(args, "err", info.Err.Error())
		}
		ev.log.Info("persistent: pebble: compaction ends", args...)
	}
}

// flushBegin and flushEnd log Pebble's flushes of memtables to level 0
// at info level (-v); flushEnd also ends an episode of background
// errors.
func (ev *pebbleEvents) flushBegin(info pebble.FlushInfo) {
	if ev.log.Enabled(context.Background(), slog.LevelInfo) {
		ev.log.Info("persistent: pebble: flush begins", "job", info.JobID, "memtables", info.Input,
			"memtable_bytes", info.InputBytes, "ingest", info.Ingest)
	}
}

// writeStallBegin and writeStallEnd count Pebble's write stalls (a
// commit that waits for a flush, or for a compaction of level 0: see
// queue.l0Room) and their time, and log them at info level (-v).
func (ev *pebbleEvents) writeStallBegin(info pebble.WriteStallBeginInfo) {
	ev.stallSince.Store(time.Now().UnixNano())
	ev.target.Load().writeStalls.Add(1)
	if ev.log.Enabled(context.Background(), slog.LevelInfo) {
		ev.log.Info("persistent: pebble: write stall begins", "reason", info.Reason)
	}
}

func (ev *pebbleEvents) writeStallEnd() {
	since := ev.stallSince.Swap(0)
	if since == 0 {
		return
	}
	d := time.Duration(time.Now().UnixNano() - since)
	ev.target.Load().writeStallUs.Add(uint64(d.Microseconds()))
	if ev.log.Enabled(context.Background(), slog.LevelInfo) {
		ev.log.Info("persistent: pebble: write stall ends", "duration", d.Round(time.Microsecond))
	}
}

func (ev *pebbleEvents) flushEnd(info pebble.FlushInfo) {
	ev.recovered(info.Err)
	if ev.log.Enabled(context.Background(), slog.LevelInfo) {
		args := []any{"job", info.JobID, "memtables", info.Input, "memtable_bytes", info.InputBytes,
			"tables", len(info.Output), "bytes", tablesSize(info.Output),
			"duration", info.Duration.Round(time.Microsecond), "total", info.TotalDuration.Round(time.Microsecond)}
		// Pebble reports a flush of an empty memtable (a flush that
		// found nothing to write) with an error: not one for the log.
		if info.Err != nil && info.Err.Error() != "pebble: empty table" {
			args = append(args, "err", info.Err.Error())
		}
		ev.log.Info("persistent: pebble: flush ends", args...)
	}
}

// levelsString formats a compaction's input levels for the log, as
// "L0:3/12582912B@1.20 L5:2/31457280B@0.00": each level's table count,
// their bytes and the level's score when the compaction was picked.
func levelsString(levels []pebble.LevelInfo) string {
	var b strings.Builder
	for i, l := range levels {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "L%d:%d/%dB@%.2f", l.Level, len(l.Tables), tablesSize(l.Tables), l.Score)
	}
	return b.String()
}

// tablesSize is the tables' total size in bytes.
func tablesSize(tables []pebble.TableInfo) uint64 {
	var n uint64
	for _, t := range tables {
		n += t.Size
	}
	return n
}

// attach moves the counts made so far into st and counts into st from now.
func (ev *pebbleEvents) attach(st *counters) {
	old := ev.target.Swap(st)
	st.bgErrors.Add(old.bgErrors.Load())
	st.corruptBlocks.Add(old.corruptBlocks.Load())
	st.walDamaged.Add(old.walDamaged.Load())
	st.fatalErrors.Add(old.fatalErrors.Load())
	if old.storeFailed.Load() != 0 {
		st.storeFailed.Store(1)
	}
	st.compactionsRunning.Add(old.compactionsRunning.Load())
	st.compactions.Add(old.compactions.Load())
	st.writeStalls.Add(old.writeStalls.Load())
	st.writeStallUs.Add(old.writeStallUs.Load())
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
	mkOpts := func(f *failure) *pebble.Options {
		opts := &pebble.Options{
			FS:                 &guardFS{FS: fs, f: f},
			CacheSize:          cacheSize,
			FormatMajorVersion: pebble.FormatNewest,
			Logger:             pebbleLogger{log: log, f: f},
			EventListener: &pebble.EventListener{
				BackgroundError: ev.backgroundError,
				DataCorruption:  ev.dataCorruption,
				FlushBegin:      ev.flushBegin,
				FlushEnd:        ev.flushEnd,
				CompactionBegin: ev.compactionBegin,
				CompactionEnd:   ev.compactionEnd,
				WriteStallBegin: ev.writeStallBegin,
				WriteStallEnd:   ev.writeStallEnd,
			},
		}
		opts.MemTableSize = memTableSizeFor(diskSize)
		// The queue's admission follows the stop (Level0).
		opts.L0CompactionThreshold = 4 // Pebble's default
		opts.L0StopWritesThreshold = l0StopWrites
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
		// No read-triggered compactions. Pebble samples the reads of its
		// iterators (never of a Get) and compacts a table that a sampled
		// key overlaps in a lower level; here the only iterators are the
		// engine's own scans: the expiry sweep, warm-up, the evictor. In
		// a mass expiry the sweep's scan started such compactions of
		// 5-30 MiB (0.1-0.5 s of the core) while readers ran, and the
		// readers' slow requests gathered there (BENCHMARKS.md, "Mass
		// expiry", round five). Compactions of levels over their size
		// and the engine's range compactions reclaim the space as before.
		opts.Experimental.ReadSamplingMultiplier = -1
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
	rp := newReadPool()
	f := newFailure(log, ev, rp)
	db, err := openDB(dir, mkOpts(f))
	if ferr := f.failed(); ferr != nil {
		err = ferr // a fatal error, in Open or on a goroutine of the DB
	}
	if err != nil {
		if errors.Is(err, ErrStoreFailed) {
			// The DB is not closed: its state is unknown after a fatal
			// error (its lock is released: by Open when it failed).
			if c := f.lock.Swap(nil); c != nil {
				(*c).Close()
			}
			lf.Close()
			return nil, fmt.Errorf("%w: %s: %w (check the disk)", ErrOpen, dir, err)
		}
		lf.Close()
		if pebble.IsCorruptionError(err) {
			return nil, fmt.Errorf("%w: %s: %v; move the directory aside to start with an empty cache", ErrCorrupt, dir, err)
		}
		return nil, fmt.Errorf("%w: %s: %v (a damaged store: move the directory aside to start with an empty cache)", ErrOpen, dir, err)
	}
	p := &pebbleKV{db: db, lock: lf, dir: dir, fs: fs, log: log, ev: ev, mkOpts: mkOpts, rp: rp}
	p.dead.Store(f)
	return p, nil
}

// openDB opens a Pebble DB, turning a fatal error (pebbleLogger panics
// on this goroutine) into an error.
func openDB(dir string, opts *pebble.Options) (db *pebble.DB, err error) {
	defer recoverFatal(&err)
	return pebble.Open(dir, opts)
}

// errNoStore is the error of a read while a failed reopen left no DB.
var errNoStore = errors.New("persistent: the store is closed after a write failure and could not be reopened yet")

// Get reads on one of the store's reader goroutines (readPool), and
// returns the store's failure as soon as the DB fails: a read already
// inside Pebble then may wait forever, for a mutex that the parked
// goroutine holds (releasing the value takes the DB's mutex when the
// read held the last reference to an old version of the tables) or for
// a file read that does not return. The reader copies the value into
// dst and releases it (its closer) before Get returns, so that a Close
// right after finds nothing of the read still referenced.
func (p *pebbleKV) Get(key, dst []byte) ([]byte, bool, error) {
	if err := p.Failed(); err != nil {
		return dst, false, err
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.db == nil {
		return dst, false, errNoStore
	}
	f := p.dead.Load()
	r := readReqs.Get().(*readReq)
	r.db, r.key, r.dst = p.db, append(r.key[:0], key...), dst
	r.f.Store(f)
	r.state.Store(readRunning)
	p.rp.run(p, r)
	<-r.done
	if r.state.Load() == readAbandoned {
		// The DB failed (readPool.abandon). The reader is left to
		// itself: it never touches dst again, releases the value if its
		// read ever ends, and drops r.
		return dst, false, f.err
	}
	v, found, err, pv := r.dst, r.found, r.err, r.panic
	r.db, r.dst, r.found, r.err, r.panic = nil, nil, false, nil, nil
	readReqs.Put(r)
	if pv != nil {
		panic(pv) // as if the read had run on this goroutine
	}
	if err != nil {
		return dst, false, err
	}
	return v, found, nil
}

// readReq is a read of Get, handed to a reader. state says who owns it
// and the caller's buffer dst: the reader appends to dst only after
// moving state from readRunning to readCopying, and a read is abandoned
// (its DB failed) only by moving state from readRunning or readCopied
// to readAbandoned; an abandoned readReq is dropped, not reused. done
// gets one send per read: from the reader once state is readDone, or
// from whoever abandoned it.
type readReq struct {
	db       *pebble.DB
	f        atomic.Pointer[failure] // db's failure state
	key, dst []byte
	found    bool
	err      error
	panic    any // a panic of the read other than Pebble's Fatalf, for Get to raise
	state    atomic.Int32
	done     chan struct{} // capacity 1
}

const (
	readRunning   = iota // in Pebble
	readCopying          // the reader sets the result (memory only)
	readCopied           // the result is set; the reader releases the value
	readDone             // the value is released: the result is the caller's
	readAbandoned        // the DB failed: the caller gets the failure
)

var readReqs = sync.Pool{New: func() any { return &readReq{done: make(chan struct{}, 1)} }}

// leave abandons r and wakes its caller, unless the read is done (its
// result is then the caller's, and the reader wakes it).
func (r *readReq) leave() {
	for {
		switch s := r.state.Load(); s {
		case readRunning, readCopied:
			if r.state.CompareAndSwap(s, readAbandoned) {
				r.done <- struct{}{}
				return
			}
		case readCopying:
			runtime.Gosched() // the reader copies the value into dst
		default:
			return
		}
	}
}

// readPool is a store's reader goroutines. Get hands a read to the
// reader that went idle last (its stack is grown to Pebble's depth, and
// warm) through the reader's own channel, or starts a reader when none
// is idle. What a read costs more than on the caller's goroutine
// (medians of 6 interleaved runs on a shared 2-core machine): 0.36 us
// per get in BenchmarkReadThrough (a goroutine per read: 1.34 us, its
// stack grows to Pebble's depth each time), 0.40 us for a read of
// Pebble's block cache alone (a goroutine per read: 2.6 us; one shared
// channel, with the caller selecting on it and the failure, the reader
// on it and a quit channel: 0.50 us). Readers stay idle across reads,
// at most maxIdleReaders of them, until Close. When a DB fails, abandon
// wakes the callers of its reads in flight (which may wait forever in
// Pebble).
type readPool struct {
	mu     sync.Mutex
	idle   []*reader
	all    map[*reader]struct{} // the readers alive, idle or not
	closed bool
}

// reader is one of the goroutines of a readPool.
type reader struct {
	in  chan *readReq           // capacity 1: the next read (nil: exit)
	cur atomic.Pointer[readReq] // the read it serves, for abandon
}

// maxIdleReaders bounds the readers a store keeps idle between reads;
// more read at once when more reads wait, and end after them.
const maxIdleReaders = 64

func newReadPool() *readPool {
	return &readPool{all: make(map[*reader]struct{})}
}

// run hands r to an idle reader, or to a new one.
func (rp *readPool) run(p *pebbleKV, r *readReq) {
	rp.mu.Lock()
	if n := len(rp.idle); n > 0 {
		d := rp.idle[n-1]
		rp.idle[n-1] = nil
		rp.idle = rp.idle[:n-1]
		rp.mu.Unlock()
		d.cur.Store(r)
		d.in <- r
		return
	}
	d := &reader{in: make(chan *readReq, 1)}
	d.cur.Store(r)
	rp.all[d] = struct{}{}
	rp.mu.Unlock()
	go p.readLoop(d, r)
}

// idleOrEnd puts d back among the idle readers and returns true, or,
// when the pool is closed or has enough idle readers, removes d and
// returns false.
func (rp *readPool) idleOrEnd(d *reader) bool {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.closed || len(rp.idle) >= maxIdleReaders {
		delete(rp.all, d)
		return false
	}
	rp.idle = append(rp.idle, d)
	return true
}

// close ends the idle readers, and the others once their reads end.
func (rp *readPool) close() {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	rp.closed = true
	for i, d := range rp.idle {
		delete(rp.all, d)
		d.in <- nil
		rp.idle[i] = nil
	}
	rp.idle = nil
}

// abandon abandons the reads in flight on the DB whose failure is f,
// waking their callers. A read handed to a reader after abandon looked
// at it finds f dead (readLoop), so none is missed: the caller stores the
// reader's cur before the reader reads f.dead, and fail sets f.dead
// before abandon reads cur.
func (rp *readPool) abandon(f *failure) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	for d := range rp.all {
		if r := d.cur.Load(); r != nil && r.f.Load() == f {
			r.leave()
		}
	}
}

// alive returns the number of readers alive.
func (rp *readPool) alive() int {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return len(rp.all)
}

// readLoop is the goroutine of the reader d, which serves r first: it
// serves each read handed to it until the pool is closed or has enough
// idle readers, or a read is abandoned (the DB failed) or panics.
func (p *pebbleKV) readLoop(d *reader, r *readReq) {
	for {
		ok := false
		if r.f.Load().dead.Load() {
			r.leave() // abandon may have looked before d.cur was set
		} else {
			ok = p.serve(r)
		}
		d.cur.Store(nil)
		if !ok {
			p.rp.mu.Lock()
			delete(p.rp.all, d)
			p.rp.mu.Unlock()
			return
		}
		if !p.rp.idleOrEnd(d) {
			return
		}
		if r = <-d.in; r == nil {
			return
		}
	}
}

// serve runs the read r and hands its result to Get, after the value
// is copied and released, unless the read was abandoned (the DB failed
// meanwhile); an abandoned read still releases its value. It returns
// whether the reader may serve another read. serve and get are pebbleKV
// methods so that fatalContext knows them as calls of this package:
// Pebble's Fatalf in them panics, and the panic becomes the read's error
// (as recoverRead does); another panic is raised again by Get, on the
// caller's goroutine, instead of killing the process here.
func (p *pebbleKV) serve(r *readReq) bool {
	v, closer, pv, err := p.get(r.db, r.key)
	if !r.state.CompareAndSwap(readRunning, readCopying) {
		if closer != nil {
			p.release(closer)
		}
		return false
	}
	switch {
	case pv != nil:
		r.panic = pv
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		r.err = err
	default:
		r.dst, r.found = append(r.dst, v...), true
	}
	r.state.Store(readCopied)
	if closer != nil {
		if cpv := p.release(closer); cpv != nil && r.state.CompareAndSwap(readCopied, readCopying) {
			r.dst, r.found, r.panic = r.dst[:0], false, cpv
			r.state.Store(readCopied)
			pv = cpv
		}
	}
	if !r.state.CompareAndSwap(readCopied, readDone) {
		return false
	}
	r.done <- struct{}{}
	return pv == nil
}

// get reads key from db, turning a panic into pv, and Pebble's fatal
// panic into err (the store's failure).
func (p *pebbleKV) get(db *pebble.DB, key []byte) (v []byte, closer io.Closer, pv any, err error) {
	defer func() {
		if x := recover(); x != nil {
			if fe, ok := x.(pebbleFatal); ok {
				err = p.fatalErr(fe)
			} else {
				pv = x
			}
		}
	}()
	v, closer, err = db.Get(key)
	return v, closer, nil, err
}

// release closes a value read by get, and returns a panic of the close
// other than Pebble's fatal one (which failed the store: the value was
// read, and later calls see the failure).
func (p *pebbleKV) release(closer io.Closer) (pv any) {
	defer func() {
		if x := recover(); x != nil {
			if _, ok := x.(pebbleFatal); !ok {
				pv = x
			}
		}
	}()
	closer.Close()
	return nil
}

func (p *pebbleKV) Commit(ops []kvOp, sync bool) error {
	if err := p.Failed(); err != nil {
		return err
	}
	p.mu.RLock()
	broken, f := p.broken, p.dead.Load()
	var err error
	if broken == nil {
		err = p.await(f, func() error { return p.commit(ops, sync) })
	}
	p.mu.RUnlock()
	if ferr := f.failed(); ferr != nil && err != nil {
		return ferr
	}
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
	if err := p.Failed(); err != nil {
		return err
	}
	f = p.dead.Load()
	return p.await(f, func() error { return p.commit(ops, sync) })
}

// reopen probes the disk (at most once per reopenEvery) and, when it
// takes writes again, reopens the broken DB. It does not wait for p.mu
// while a read or a scan holds it: a writer waiting for an RWMutex lets
// no new reader in, and a scan lasts as long as its caller takes (a
// client's metadump, as slow as that client reads), so every read and
// commit would wait behind it. The next commit tries again.
func (p *pebbleKV) reopen() error {
	if !p.mu.TryLock() {
		p.mu.RLock()
		defer p.mu.RUnlock()
		return p.broken
	}
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
	if f := p.dead.Load(); f.failed() == nil {
		// A broken DB may fail to close (an error or a panic, which
		// await turns into an error).
		_ = p.await(f, p.db.Close)
	}
	if err := p.Failed(); err != nil {
		return err // it failed closing: it is left as it is
	}
	f := newFailure(p.log, p.ev, p.rp)
	db, err := openDB(p.dir, p.mkOpts(f))
	if ferr := f.failed(); ferr != nil {
		err = ferr
	}
	if err != nil {
		// Nothing to read from now: Get and Scan fail until a reopen works.
		p.db = nil
		if errors.Is(err, ErrStoreFailed) {
			p.dead.Store(f)
			return err
		}
		return fmt.Errorf("%w (reopening the store: %v)", p.broken, err)
	}
	p.db, p.broken = db, nil
	p.dead.Store(f)
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
// a memtable rotation, a MANIFEST that cannot be written), which fail
// the store until a restart (see failure), so the engine stops writing
// before the disk is full, and writes resume by themselves once space
// is freed. Pebble's own flushes and compactions use the reserve.
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

// recoverRead, deferred by a read, turns Pebble's fatal panic into *err:
// the store's failure (a fatal error in a read fails the store).
func (p *pebbleKV) recoverRead(err *error) {
	if r := recover(); r != nil {
		f, ok := r.(pebbleFatal)
		if !ok {
			panic(r)
		}
		*err = p.fatalErr(f)
	}
}

// fatalErr is the error a call that saw Pebble's fatal panic fe returns:
// the store's failure once it is recorded, fe until then.
func (p *pebbleKV) fatalErr(fe pebbleFatal) error {
	if ferr := p.Failed(); ferr != nil {
		return ferr
	}
	return fe
}

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

// Scan iterates on a goroutine of its own (scanLoop), which copies the
// entries into batches that the caller hands to fn, so that the caller
// gets the store's failure as soon as the DB fails: an iteration inside
// Pebble may then wait forever (see Get). Scans are few (a client's
// metadump, the warm-up, the sweep's and the budget's passes) and long,
// so a goroutine per scan and a hand-off per batch cost little: see
// BenchmarkScan.
func (p *pebbleKV) Scan(lower, upper []byte, fn func(key, value []byte) bool) (err error) {
	if err := p.Failed(); err != nil {
		return err
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.db == nil {
		return errNoStore
	}
	// Pebble's Fatalf in fn (which runs Pebble's code no more) fails
	// the DB, which ends scanLoop too.
	defer p.recoverRead(&err)
	f := p.dead.Load()
	sc := &scan{db: p.db, f: f, lower: lower, upper: upper,
		out: make(chan *scanBatch, 2), ack: make(chan bool, 1)}
	go p.scanLoop(sc)
	for {
		var b *scanBatch
		select {
		case b = <-sc.out:
		case <-f.ch:
			select {
			case b = <-sc.out: // it came as the DB failed
			default:
				return f.err
			}
		}
		if b.last {
			if b.panic != nil {
				panic(b.panic) // as if the scan had run on this goroutine
			}
			return b.err
		}
		more := true
		for i, k := 0, 0; i < len(b.ends); i += 2 {
			kend, vend := b.ends[i], b.ends[i+1]
			if !fn(b.buf[k:kend:kend], b.buf[kend:vend:vend]) {
				more = false
				break
			}
			k = vend
		}
		sc.ack <- more
	}
}

// scan is a Scan's iteration, run by scanLoop.
type scan struct {
	db           *pebble.DB
	f            *failure // db's failure state
	lower, upper []byte
	out          chan *scanBatch // batches for the caller (capacity 2: a batch and the result, when the caller has left)
	ack          chan bool       // the caller is done with a batch: go on?
}

// scanBatch is a batch of copied entries: the key of entry i is
// buf[ends[2i-1]:ends[2i]] (from 0 for the first), its value
// buf[ends[2i]:ends[2i+1]]. The last batch of a scan has no entries and
// carries its result.
type scanBatch struct {
	buf   []byte
	ends  []int
	last  bool
	err   error
	panic any // a panic of the scan other than Pebble's Fatalf, for Scan to raise
}

// Batches hold up to scanBatchBytes (or one entry, if larger) and
// scanBatchEntries entries.
const (
	scanBatchBytes   = 64 << 10
	scanBatchEntries = 512
)

// scanLoop runs sc's iteration and sends its entries in batches, each
// after the caller is done with the one before. When the DB fails while
// it waits for the caller, it closes its iterator and ends; if it is
// itself stuck in Pebble, it ends if the iteration ever does.
func (p *pebbleKV) scanLoop(sc *scan) {
	b := &scanBatch{}
	var err error
	defer func() {
		if r := recover(); r != nil {
			if fe, ok := r.(pebbleFatal); ok {
				err = p.fatalErr(fe)
			} else {
				b.panic = r
			}
		}
		b.buf, b.ends, b.last, b.err = nil, nil, true, err
		sc.out <- b
	}()
	it, err := sc.db.NewIter(&pebble.IterOptions{LowerBound: sc.lower, UpperBound: sc.upper})
	if err != nil {
		return
	}
	// send hands the batch over and reports whether to go on.
	send := func() bool {
		sc.out <- b
		select {
		case more := <-sc.ack:
			b.buf, b.ends = b.buf[:0], b.ends[:0]
			return more
		case <-sc.f.ch:
			return false
		}
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, verr := it.ValueAndErr()
		if verr != nil {
			err = verr
			break
		}
		b.buf = append(b.buf, it.Key()...)
		b.ends = append(b.ends, len(b.buf))
		b.buf = append(b.buf, v...)
		b.ends = append(b.ends, len(b.buf))
		if (len(b.buf) >= scanBatchBytes || len(b.ends) >= 2*scanBatchEntries) && !send() {
			break
		}
	}
	if err == nil && len(b.ends) > 0 && sc.f.failed() == nil {
		send()
	}
	b = &scanBatch{} // for the result: a caller that left may still hold the last batch
	if err == nil {
		err = it.Error()
	}
	if cerr := it.Close(); err == nil {
		err = cerr
	}
}

// Last reads on a goroutine of its own, and returns the store's failure
// as soon as the DB fails (see Scan).
func (p *pebbleKV) Last(lower, upper []byte) (_ []byte, _ bool, err error) {
	if err := p.Failed(); err != nil {
		return nil, false, err
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.db == nil {
		return nil, false, errNoStore
	}
	db := p.db
	var key []byte
	var ok bool
	err = p.await(p.dead.Load(), func() error {
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
		if err != nil {
			return err
		}
		k, found := []byte(nil), it.Last()
		if found {
			k = bytes.Clone(it.Key())
		}
		err = it.Error()
		if cerr := it.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			key, ok = k, found
		}
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return key, ok, nil
}

func (p *pebbleKV) Compact(lower, upper []byte) error {
	return p.CompactRange(context.Background(), lower, upper)
}

// l0StopWrites is the pebbleKV's L0StopWritesThreshold: a memtable's
// rotation waits while level 0 holds this many sublevels. The queue holds
// writers two sublevels before it (queue.l0Held), so Pebble's default,
// 12, would leave 10 for writes between compactions: under 32 KB sets
// faster than the disk that cost 10% of the sets against Pebble's own
// stops, where 16 gave 8% more than them (each compaction of level 0
// takes more sublevels at once; BENCHMARKS.md). A point read looks at a
// table of each sublevel it overlaps (bloom filters first).
const l0StopWrites = 16

// Level0 implements kv: it reads Pebble's metrics (about 10 us). A store
// whose flushes or compactions fail (an episode of background errors)
// reports none: level 0 would not shrink.
func (p *pebbleKV) Level0() (int, int, int64) {
	if p.Failed() != nil || p.ev.bgFailing.Load() {
		return 0, 0, 0
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.db == nil {
		return 0, 0, 0
	}
	var sub, mem atomic.Int64
	err := p.await(p.dead.Load(), func() error {
		m := p.db.Metrics()
		// A memtable waiting for its flush is a sublevel to come.
		sub.Store(int64(m.Levels[0].Sublevels) + max(0, m.MemTable.Count-1))
		mem.Store(int64(m.MemTable.Size) / max(1, m.MemTable.Count))
		return nil
	})
	if err != nil {
		return 0, 0, 0
	}
	return int(sub.Load()), l0StopWrites, mem.Load()
}

func (p *pebbleKV) DiskUsage() uint64 {
	if p.Failed() != nil {
		return p.usage.Load()
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.db == nil {
		return 0
	}
	p.await(p.dead.Load(), func() error {
		m := p.db.Metrics()
		t := m.Table.Local
		p.usage.Store(m.DiskSpaceUsage())
		p.tables.Store(t.LiveSize + t.ObsoleteSize + t.ZombieSize)
		return nil
	})
	return p.usage.Load()
}

// Close closes the DB. A DB broken by a failed write may fail to close:
// that is an error, not a panic. A failed DB is not closed (its state
// is unknown, and its parked goroutines may hold its mutexes or p.mu):
// Close releases the directory (abandon) and returns the failure. Either
// way the idle readers of Get end (a reader left in a failed DB's read
// ends if that read ever does).
func (p *pebbleKV) Close() error {
	p.rp.close()
	f := p.dead.Load()
	locked := make(chan struct{})
	go func() {
		p.mu.Lock()
		close(locked)
	}()
	select {
	case <-locked:
	case <-f.ch:
		// The goroutine above may take p.mu later, or never; no call
		// uses it after Close.
		return p.abandon(f)
	}
	defer p.mu.Unlock()
	if p.db == nil {
		return p.lock.Close() // releases the flock
	}
	f = p.dead.Load()
	if f.failed() == nil {
		err := p.await(f, p.db.Close)
		if f.failed() == nil {
			p.lock.Close()
			return err
		}
	}
	return p.abandon(f)
}

// abandon releases the directory of a failed DB without closing the DB:
// Pebble's lock and the engine's flock (guardFS parks the DB's writes,
// so a restart, or a test opening the directory again, finds it as the
// failure left it). The DB's memory and open files stay until the
// process exits.
func (p *pebbleKV) abandon(f *failure) error {
	if c := f.lock.Swap(nil); c != nil {
		(*c).Close()
	}
	p.lock.Close()
	return fmt.Errorf("persistent: the store was not closed: %w", f.err)
}

// pebbleLogger sends Pebble's log lines to the engine's logger, and
// handles its fatal errors (Fatalf) for the DB whose failure state is f.
type pebbleLogger struct {
	log *slog.Logger
	f   *failure
}

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug("persistent: pebble: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error("persistent: pebble: " + fmt.Sprintf(format, args...))
}

// commitFatal begins the message of the Fatalf a failed commit makes
// (the write-ahead log could not be written or synced), the one fatal
// error a reopen repairs (see pebbleKV).
const commitFatal = "pebble: fatal commit error"

// Fatalf is called by Pebble on an unrecoverable internal error; Pebble
// does not expect it to return, and it does not. On a goroutine of a
// call of this package into Pebble (which recovers the panic) it panics
// with a pebbleFatal: the call returns an error. A failed commit only
// breaks the store (Commit reopens it later); any other fatal error
// fails it for good first. Elsewhere (Pebble's own goroutines, where a
// panic would kill the process, and rotateWAL, where it would unlock an
// unlocked mutex) it fails the store and parks the goroutine.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	ours, rotating := fatalContext()
	if ours && !rotating {
		if strings.HasPrefix(msg, commitFatal) {
			l.f.ev.target.Load().fatalErrors.Add(1)
			l.log.Error("persistent: pebble: fatal: " + msg)
		} else {
			l.f.fail(pebbleFatal{msg})
		}
		panic(pebbleFatal{msg})
	}
	l.f.fail(pebbleFatal{msg})
	park()
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
