package persistent

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
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
	// Close releases the store.
	Close() error
}

// kvOp is one write of a Commit: a set of Key to Value, or a deletion of
// Key when Delete is true.
type kvOp struct {
	Key, Value []byte
	Delete     bool
}

// lockName is the file in the data directory that a running engine holds
// an exclusive flock(2) on.
const lockName = "mnemo.lock"

// pebbleKV is the kv over a Pebble database.
type pebbleKV struct {
	db   *pebble.DB
	lock *os.File
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
}

func newPebbleEvents(log *slog.Logger) *pebbleEvents {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ev := &pebbleEvents{log: log}
	ev.target.Store(&counters{})
	return ev
}

// attach moves the counts made so far into st and counts into st from now.
func (ev *pebbleEvents) attach(st *counters) {
	old := ev.target.Swap(st)
	st.bgErrors.Add(old.bgErrors.Load())
	st.corruptBlocks.Add(old.corruptBlocks.Load())
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
	opts := &pebble.Options{
		CacheSize:          cacheSize,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             pebbleLogger{log},
		EventListener: &pebble.EventListener{
			BackgroundError: ev.backgroundError,
			DataCorruption:  ev.dataCorruption,
			FlushEnd:        func(info pebble.FlushInfo) { ev.recovered(info.Err) },
			CompactionEnd:   func(info pebble.CompactionInfo) { ev.recovered(info.Err) },
		},
	}
	for i := range opts.Levels {
		// Bloom filters on every level: a miss then reads no data block.
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		opts.Levels[i].FilterType = pebble.TableFilter
	}
	// Snappy/MinLZ: pure Go and fast; zstd is left out so that no build
	// depends on cgo for it.
	opts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionFastest })
	db, err := pebble.Open(dir, opts)
	if err != nil {
		lf.Close()
		if pebble.IsCorruptionError(err) {
			return nil, fmt.Errorf("%w: %s: %v; move the directory aside to start with an empty cache", ErrCorrupt, dir, err)
		}
		return nil, fmt.Errorf("%w: %s: %v (a damaged store: move the directory aside to start with an empty cache)", ErrOpen, dir, err)
	}
	return &pebbleKV{db: db, lock: lf}, nil
}

func (p *pebbleKV) Get(key, dst []byte) ([]byte, bool, error) {
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
	b := p.db.NewBatch()
	defer b.Close()
	for i := range ops {
		var err error
		if ops[i].Delete {
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

func (p *pebbleKV) DiskUsage() uint64 { return p.db.Metrics().DiskSpaceUsage() }

func (p *pebbleKV) Close() error {
	err := p.db.Close()
	p.lock.Close() // releases the flock
	return err
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
	panic("persistent: pebble: " + msg)
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
