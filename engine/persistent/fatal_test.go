package persistent

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/mnemo-cache/mnemo/engine"
)

// fatalFS wraps the OS's file system and injects the write errors that
// Pebble treats as fatal: while armed, creating a write-ahead log fails
// (logCreate), syncing one inside Pebble's rotateWAL fails (logClose),
// writing one fails (logWrite), or writing or syncing a MANIFEST fails
// (manifest). Each fails with EIO.
type fatalFS struct {
	vfs.FS
	logCreate, logClose, logWrite, manifest atomic.Bool
}

var errIO = &os.PathError{Op: "write", Path: "(injected)", Err: syscall.EIO}

func isLog(name string) bool      { return strings.HasSuffix(name, ".log") }
func isManifest(name string) bool { return strings.HasPrefix(filepath.Base(name), "MANIFEST") }

func (fs *fatalFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return f, err
	}
	return &fatalFile{File: f, fs: fs, name: name}, nil
}

func (fs *fatalFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	if isLog(name) && fs.logCreate.Load() {
		return nil, errIO
	}
	f, err := fs.FS.Create(name, cat)
	return fs.wrap(name, f, err)
}

func (fs *fatalFS) ReuseForWrite(old, new string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	if isLog(new) && fs.logCreate.Load() {
		return nil, errIO
	}
	f, err := fs.FS.ReuseForWrite(old, new, cat)
	return fs.wrap(new, f, err)
}

type fatalFile struct {
	vfs.File
	fs   *fatalFS
	name string
}

// err fails a write (sync: a sync) of the file when the test says so.
func (f *fatalFile) err(sync bool) error {
	if isManifest(f.name) && f.fs.manifest.Load() {
		return errIO
	}
	if sync && isLog(f.name) && f.fs.logClose.Load() {
		if _, rotating := fatalContext(); rotating {
			return errIO
		}
	}
	return nil
}

func (f *fatalFile) Write(p []byte) (int, error) {
	if err := f.err(false); err != nil {
		return 0, err
	}
	if isLog(f.name) && f.fs.logWrite.Load() {
		return 0, errIO
	}
	return f.File.Write(p)
}

func (f *fatalFile) Sync() error {
	if err := f.err(true); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *fatalFile) SyncData() error {
	if err := f.err(true); err != nil {
		return err
	}
	return f.File.SyncData()
}

func (f *fatalFile) SyncTo(n int64) (bool, error) {
	if err := f.err(true); err != nil {
		return false, err
	}
	return f.File.SyncTo(n)
}

// openFatal opens an engine on dir with config over a fatalFS, logging
// to lb.
func openFatal(t *testing.T, lb *logBuf, dir, config string) (*fx, *fatalFS) {
	t.Helper()
	env := engine.Env{Logger: slog.New(slog.NewTextHandler(lb, nil))}.WithDefaults()
	fs := &fatalFS{FS: vfs.Default}
	e, f := openAtFS(t, dir, env, config, fs)
	return &fx{t: t, e: e, f: f, dir: dir, env: env, cfg: config}, fs
}

// fatalSetup writes the keys disk0..disk9 and closes the engine, so that
// they are only on disk, then opens the engine on the same directory
// over a fatalFS and writes mem=1 (in memory and on disk).
func fatalSetup(t *testing.T, lb *logBuf, config string) (*fx, *fatalFS) {
	t.Helper()
	dir := t.TempDir()
	x := &fx{t: t, dir: dir}
	x.e, x.f = openAt(t, dir, engine.Env{}, config)
	for i := range 10 {
		x.set("disk"+strconv.Itoa(i), "d"+strconv.Itoa(i))
	}
	if err := x.e.Close(); err != nil {
		t.Fatal(err)
	}
	x, fs := openFatal(t, lb, dir, config)
	x.set("mem", "1")
	x.flushQueue()
	return x, fs
}

// checkFailed checks an engine whose store failed for good, with cause
// in the log: the failure is in stats and logged once, every write
// answers ErrWrite at once, keys in memory are served and keys only on
// disk are misses, flush_all fails, stats answer, and Close returns
// (with an error) instead of hanging or panicking. Then it opens the
// directory again (as a restart does) and checks that every write in
// want reads back.
func checkFailed(x *fx, lb *logBuf, cause string, want map[string]string) {
	t := x.t
	x.eventually("the store fails", func() bool { return x.statInt("persistent_store_failed") == 1 })
	if n := x.statInt("persistent_fatal_errors"); n < 1 {
		t.Errorf("persistent_fatal_errors = %d, want at least 1", n)
	}
	before := x.statInt("persistent_write_errors")
	for i := range 5 {
		_, _, err := x.e.Update([]byte("after"+strconv.Itoa(i)), storeM{engine.Item{Value: []byte("x")}})
		if !errors.Is(err, ErrWrite) {
			t.Fatalf("a write after the failure: %v, want ErrWrite", err)
		}
	}
	if n := x.statInt("persistent_write_errors") - before; n < 5 {
		t.Errorf("persistent_write_errors grew by %d for 5 refused writes", n)
	}
	if ok, err := x.e.Delete([]byte("mem")); ok || !errors.Is(err, ErrWrite) {
		t.Errorf("a delete after the failure: %v %v, want ErrWrite", ok, err)
	}
	if err := x.e.Flush(0); !errors.Is(err, ErrWrite) {
		t.Errorf("flush_all after the failure: %v, want ErrWrite", err)
	}
	x.mustHave("mem", "1")
	x.mustMiss("disk3") // only on disk: a miss
	x.mustMiss("after0")
	_ = x.stat("persistent_disk_bytes")
	log := lb.String()
	if n := strings.Count(log, "THE DISK STORE FAILED"); n != 1 {
		t.Errorf("the failure was logged %d times, want once:\n%s", n, log)
	}
	if !strings.Contains(log, cause) {
		t.Errorf("the log does not name the cause %q:\n%s", cause, log)
	}
	if strings.Contains(log, "DISK WRITE FAILED") {
		t.Errorf("the flusher logs the failed store again:\n%s", log)
	}
	err := x.e.Close()
	t.Logf("Close: %v", err)
	if !errors.Is(err, ErrStoreFailed) {
		t.Errorf("Close: %v, want ErrStoreFailed", err)
	}

	// A restart: the directory opens and holds every acknowledged write.
	x.e, x.f = openAt(t, x.dir, engine.Env{}, x.cfg)
	defer x.e.Close()
	for k, v := range want {
		x.mustHave(k, v)
	}
	if n := x.statInt("persistent_store_failed"); n != 0 {
		t.Errorf("persistent_store_failed = %d after a restart", n)
	}
	x.set("new", "value")
	x.mustHave("new", "value")
}

// TestWALRotationFails makes the write-ahead log's rotation (when a
// memtable fills) fail: creating the new log, or syncing the old one
// as it is closed. Pebble's rotateWAL panics on that with DB.mu
// released, which killed the process (fatal error: sync: unlock of
// unlocked mutex). Now the store fails: the write gets ErrWrite, and
// checkFailed checks the rest.
func TestWALRotationFails(t *testing.T) {
	for _, tc := range []struct {
		name  string
		arm   func(*fatalFS)
		cause string
	}{
		{"create", func(fs *fatalFS) { fs.logCreate.Store(true) }, "rotating the write-ahead log"},
		{"close", func(fs *fatalFS) { fs.logClose.Store(true) }, "rotating the write-ahead log"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var lb logBuf
			x, fs := fatalSetup(t, &lb, "durability=sync,warmup=false,sweep_interval=0")
			want := map[string]string{"mem": "1"}
			for i := range 10 {
				want["disk"+strconv.Itoa(i)] = "d" + strconv.Itoa(i)
			}
			tc.arm(fs)
			// 64 KiB values: Pebble's 4 MiB memtable fills (and the log
			// rotates) within about 64 writes.
			val := strings.Repeat("v", 64<<10)
			for i := 0; ; i++ {
				if i == 1000 {
					t.Fatal("1000 writes of 64 KiB and no log rotation")
				}
				k := "big" + strconv.Itoa(i)
				_, _, err := x.e.Update([]byte(k), storeM{engine.Item{Value: []byte(val)}})
				if err == nil {
					want[k] = val
					continue
				}
				if !errors.Is(err, ErrWrite) {
					t.Fatalf("write %d: %v, want ErrWrite", i, err)
				}
				t.Logf("write %d failed: %v", i, err)
				break
			}
			checkFailed(x, &lb, tc.cause, want)
		})
	}
	// A batch larger than half a memtable is queued as a memtable of
	// its own: the commit rotates the log right after writing the batch
	// to it. When that write failed, the log's close at the rotation
	// returned the error and rotateWAL panicked on it. (disk_size=4m
	// makes memtables of 256 KiB.)
	t.Run("write", func(t *testing.T) {
		var lb logBuf
		x, fs := fatalSetup(t, &lb, "durability=sync,warmup=false,sweep_interval=0,disk_size=4m")
		fs.logWrite.Store(true)
		_, _, err := x.e.Update([]byte("big"), storeM{engine.Item{Value: []byte(strings.Repeat("v", 200<<10))}})
		if !errors.Is(err, ErrWrite) {
			t.Fatalf("a write of 200 KiB with the log failing: %v, want ErrWrite", err)
		}
		t.Logf("write: %v", err)
		want := map[string]string{"mem": "1"}
		for i := range 10 {
			want["disk"+strconv.Itoa(i)] = "d" + strconv.Itoa(i)
		}
		checkFailed(x, &lb, "closing the write-ahead log", want)
	})
}

// TestManifestWriteFails makes the MANIFEST write of a flush fail. Pebble
// calls Logger.Fatalf on its flush goroutine, where the panic
// pebbleLogger made killed the process. Now the store fails, in async
// mode: writes queued before stay served, new ones get ErrWrite at once.
func TestManifestWriteFails(t *testing.T) {
	var lb logBuf
	x, fs := fatalSetup(t, &lb, "durability=async,interval=10ms,warmup=false,sweep_interval=0")
	want := map[string]string{"mem": "1"}
	for i := range 10 {
		want["disk"+strconv.Itoa(i)] = "d" + strconv.Itoa(i)
	}
	x.set("queued", "q")
	x.flushQueue()
	want["queued"] = "q"
	fs.manifest.Store(true)
	x.f.kv.(*pebbleKV).db.AsyncFlush()
	checkFailed(x, &lb, "MANIFEST", want)
}

// TestFatalForeground calls Pebble's Logger.Fatalf on a goroutine that
// is inside a call of the engine into Pebble (a scan's callback, where
// an iterator's invariant check would call it): the call returns
// ErrStoreFailed (it panicked through the engine before) and the store
// fails. A Fatalf on any other goroutine parks it instead.
func TestFatalForeground(t *testing.T) {
	t.Run("scan", func(t *testing.T) {
		var lb logBuf
		x, _ := fatalSetup(t, &lb, "durability=sync,warmup=false,sweep_interval=0")
		p := x.f.kv.(*pebbleKV)
		l := pebbleLogger{log: x.e.log, f: p.dead.Load()}
		err := p.Scan(dataLower, dataUpper, func(k, v []byte) bool {
			l.Fatalf("injected: invariant violation at %q", k)
			return true
		})
		if !errors.Is(err, ErrStoreFailed) {
			t.Fatalf("Scan: %v, want ErrStoreFailed", err)
		}
		checkFailed(x, &lb, "injected: invariant violation", map[string]string{"mem": "1", "disk0": "d0"})
	})
	t.Run("background", func(t *testing.T) {
		var lb logBuf
		x, _ := fatalSetup(t, &lb, "durability=sync,warmup=false,sweep_interval=0")
		p := x.f.kv.(*pebbleKV)
		l := pebbleLogger{log: x.e.log, f: p.dead.Load()}
		go l.Fatalf("injected: background %d", 1) // parks
		checkFailed(x, &lb, "injected: background 1", map[string]string{"mem": "1", "disk0": "d0"})
	})
}

// TestFatalAtOpen makes the first MANIFEST of a new store fail to sync:
// Pebble calls Logger.Fatalf inside Open, on the caller's goroutine, and
// the panic went through New. Now New returns ErrOpen and releases the
// directory.
func TestFatalAtOpen(t *testing.T) {
	var lb logBuf
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(&lb, nil))
	fs := &fatalFS{FS: vfs.Default}
	fs.manifest.Store(true)
	p, err := openPebbleFS(dir, 1<<20, log, nil, fs)
	if err == nil {
		p.Close()
		t.Fatal("the store opened with its MANIFEST failing")
	}
	t.Logf("open: %v", err)
	if !errors.Is(err, ErrOpen) || !errors.Is(err, ErrStoreFailed) {
		t.Errorf("open: %v, want ErrOpen and ErrStoreFailed (a fatal error)", err)
	}
	e, err := New(engine.Env{Logger: slog.New(slog.DiscardHandler)}, "path="+dir+",warmup=false")
	if err != nil {
		t.Fatalf("a second open with a working disk: %v", err)
	}
	x := &fx{t: t, e: e}
	x.set("a", "1")
	x.mustHave("a", "1")
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestFatalDuringRead: a read-through inside Pebble when the store fails
// (here: blocked in a table read, as a read waiting for a mutex that
// the failed goroutine holds, parked forever, would be) answers a miss,
// as every key only on disk does after the failure, instead of waiting
// forever; then checkFailed checks the rest (Close returns, a restart
// has every write). Before, the read waited for the disk read, holding
// the engine's lock that Close takes.
func TestFatalDuringRead(t *testing.T) {
	x, lb, fs, p := openBlocked(t)
	fs.BlockReads.Store(true)
	type result struct {
		found bool
		err   error
	}
	got := make(chan result, 1)
	go func() {
		_, _, found, err := x.e.Get([]byte("pad1234"), nil, 0)
		got <- result{found, err}
	}()
	<-fs.Entered // the read is inside Pebble, reading the table
	l := pebbleLogger{log: x.e.log, f: p.dead.Load()}
	go l.Fatalf("injected: failed during a read %d", 1) // parks
	select {
	case r := <-got:
		if r.found || r.err != nil {
			t.Fatalf("the read in flight at the failure: found %v, err %v; want a miss", r.found, r.err)
		}
	case <-time.After(time.Minute): // a hang, not a slow machine
		t.Fatal("the read in flight when the store failed did not return within a minute")
	}
	checkFailed(x, lb, "injected: failed during a read", map[string]string{"mem": "1", "disk0": "d0", "disk3": "d3"})

	// The abandoned read ends once its file read returns: it releases
	// the value and its reader goroutine exits (the idle readers exited
	// at Close).
	fs.Release()
	x.eventually("the abandoned reader ends", func() bool { return p.rp.alive() == 0 })
}

// TestCloseAfterReadThrough: a read from a table releases what it holds
// of Pebble (the table's entry in Pebble's file cache) before Get
// returns, so that a Close right after it closes the DB cleanly. The
// reverted first fix of TestFatalDuringRead released it after Get
// returned: Pebble's Close then found the entry still referenced
// ("element has outstanding references"), and the store was marked
// failed instead of closed. (That fix fails this test only when Close
// wins the race with the reader's release, which it rarely does here:
// what the test holds is that every path of a read releases the value.)
func TestCloseAfterReadThrough(t *testing.T) {
	dir := t.TempDir()
	cfg := "durability=sync,warmup=false,sweep_interval=0"
	e, f := openAt(t, dir, engine.Env{}, cfg)
	for i := range 100 {
		if _, _, err := e.Update([]byte("k"+strconv.Itoa(i)), storeM{engine.Item{Value: []byte("v" + strconv.Itoa(i))}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.kv.(*pebbleKV).db.Flush(); err != nil { // into a table
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	x := &fx{t: t}
	for i := range 20 {
		e, f = openAt(t, dir, engine.Env{}, cfg)
		k := "k" + strconv.Itoa(i*5)
		_, v, found, err := e.Get([]byte(k), nil, 0) // memory is empty: from the table
		if err != nil || !found || string(v) != "v"+strconv.Itoa(i*5) {
			t.Fatalf("Get %s: %q %v %v", k, v, found, err)
		}
		if err := e.Close(); err != nil {
			t.Fatalf("Close right after a read from a table: %v", err)
		}
		// Its reader, idle, ended at Close.
		x.eventually("the readers end", func() bool { return f.kv.(*pebbleKV).rp.alive() == 0 })
	}
}

// TestFatalDuringReads: reads from 8 goroutines, each of a key only on
// disk, while the store fails: every read returns, with the right value
// or a miss (a read abandoned as it finishes never hands over a wrong
// or half-copied value), later reads of keys only on disk are misses,
// and Close returns. Run with -race, it checks the hand-over between
// Get, its reader and the failure.
func TestFatalDuringReads(t *testing.T) {
	dir := t.TempDir()
	cfg := "durability=sync,warmup=false,sweep_interval=0"
	e, f := openAt(t, dir, engine.Env{}, cfg)
	val := func(i int) string { return strings.Repeat(strconv.Itoa(i%10), 100+i%900) }
	const n = 2000
	for i := range n {
		if _, _, err := e.Update([]byte("k"+strconv.Itoa(i)), storeM{engine.Item{Value: []byte(val(i))}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.kv.(*pebbleKV).db.Flush(); err != nil { // into a table
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e, f = openAt(t, dir, engine.Env{}, cfg)
	p := f.kv.(*pebbleKV)
	var reads atomic.Int64
	failAt, failed := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	var found, missed atomic.Int64
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dst := make([]byte, 0, 1024)
			for i := g; i < n; i += 8 {
				if reads.Add(1) == n/4 {
					// This goroutine's next reads come after the
					// failure; the others' race it.
					close(failAt)
					<-failed
				}
				k := "k" + strconv.Itoa(i)
				_, v, ok, err := e.Get([]byte(k), dst[:0], 0)
				switch {
				case err != nil:
					t.Errorf("Get %s: %v", k, err)
					return
				case ok && string(v) != val(i):
					t.Errorf("Get %s: %q, want %q", k, v, val(i))
					return
				case ok:
					found.Add(1)
				default:
					missed.Add(1)
				}
			}
		}()
	}
	<-failAt
	l := pebbleLogger{log: e.log, f: p.dead.Load()}
	go l.Fatalf("injected: failed during reads %d", 1) // parks
	x := &fx{t: t}
	x.eventually("the store fails", func() bool { return p.Failed() != nil })
	close(failed)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute): // a hang, not a slow machine
		t.Fatal("reads did not return within a minute after the store failed")
	}
	t.Logf("%d reads found, %d missed", found.Load(), missed.Load())
	if found.Load() < n/4-8 || missed.Load() == 0 {
		t.Errorf("%d reads found, %d missed: want those before the failure found and those after it missed", found.Load(), missed.Load())
	}
	for _, i := range []int{1, 77, n - 1} { // read already: in memory
		k := "k" + strconv.Itoa(i)
		if _, v, ok, err := e.Get([]byte(k), nil, 0); err != nil || ok && string(v) != val(i) {
			t.Errorf("Get %s after the failure: %q %v %v", k, v, ok, err)
		}
	}
	if err := e.Close(); !errors.Is(err, ErrStoreFailed) {
		t.Errorf("Close: %v, want ErrStoreFailed", err)
	}
}
