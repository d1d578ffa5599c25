package persistent

import (
	"errors"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/mnemo-cache/mnemo/engine"
)

// fullFS wraps the OS's file system and, while full is set, fails every
// write, preallocation and sync of a file with ENOSPC, as a full disk
// does.
type fullFS struct {
	vfs.FS
	full atomic.Bool
	// hidden hides the lack of space from GetDiskUsage, so writes
	// reach Pebble and fail there (a write error that is not ENOSPC).
	hidden bool
}

func (fs *fullFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return f, err
	}
	return &fullFile{File: f, fs: fs}, nil
}

func (fs *fullFS) err() error {
	if fs.full.Load() {
		return &os.PathError{Op: "write", Path: "(injected)", Err: syscall.ENOSPC}
	}
	return nil
}

func (fs *fullFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	if err := fs.err(); err != nil {
		return nil, err
	}
	return fs.wrap(fs.FS.Create(name, cat))
}

func (fs *fullFS) ReuseForWrite(old, new string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	if err := fs.err(); err != nil {
		return nil, err
	}
	return fs.wrap(fs.FS.ReuseForWrite(old, new, cat))
}

func (fs *fullFS) OpenReadWrite(name string, cat vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return fs.wrap(fs.FS.OpenReadWrite(name, cat, opts...))
}

// GetDiskUsage reports no free space while full.
func (fs *fullFS) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	u, err := fs.FS.GetDiskUsage(path)
	if fs.full.Load() && !fs.hidden {
		u.AvailBytes = 0
	}
	return u, err
}

type fullFile struct {
	vfs.File
	fs *fullFS
}

func (f *fullFile) Write(p []byte) (int, error) {
	if err := f.fs.err(); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f *fullFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.err(); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *fullFile) Preallocate(off, n int64) error {
	if err := f.fs.err(); err != nil {
		return err
	}
	return f.File.Preallocate(off, n)
}

func (f *fullFile) Sync() error {
	if err := f.fs.err(); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *fullFile) SyncData() error {
	if err := f.fs.err(); err != nil {
		return err
	}
	return f.File.SyncData()
}

func (f *fullFile) SyncTo(n int64) (bool, error) {
	if err := f.fs.err(); err != nil {
		return false, err
	}
	return f.File.SyncTo(n)
}

// openFull opens an engine over a fullFS.
func openFull(t *testing.T, lb *logBuf, config string) (*fx, *fullFS) {
	t.Helper()
	dir := t.TempDir()
	env := engine.Env{Logger: slog.New(slog.NewTextHandler(lb, nil))}.WithDefaults()
	fs := &fullFS{FS: vfs.Default}
	e, f := openAtFS(t, dir, env, config, fs)
	x := &fx{t: t, e: e, f: f, dir: dir, env: env, cfg: config}
	t.Cleanup(func() { x.e.Close() })
	return x, fs
}

// TestDiskFullSync fills the disk under a sync engine: a write answers
// ErrWrite (SERVER_ERROR) instead of hanging, reads go on, the failure is
// counted and logged once, and when space returns writes succeed again
// without a restart.
func TestDiskFullSync(t *testing.T) {
	t.Run("space check", func(t *testing.T) {
		testDiskFullSync(t, false, "until space is freed", "the disk has room again")
	})
	t.Run("write error", func(t *testing.T) {
		testDiskFullSync(t, true, "the store cannot write", "the store writes again")
	})
}

// testDiskFullSync runs TestDiskFullSync with the lack of space hidden or
// not, and checks the log lines failLog (once) and okLog.
func testDiskFullSync(t *testing.T, hidden bool, failLog, okLog string) {
	var lb logBuf
	x, fs := openFull(t, &lb, "durability=sync,warmup=false,sweep_interval=0")
	fs.hidden = hidden
	x.set("a", "1")
	fs.full.Store(true)
	for i := range 5 {
		_, _, err := x.e.Update([]byte("b"), storeM{engine.Item{Value: []byte(strconv.Itoa(i))}})
		if !errors.Is(err, ErrWrite) {
			t.Fatalf("set on a full disk: %v, want ErrWrite", err)
		}
	}
	// (b may read back: Pebble applies a batch to its memtable before
	// the WAL sync that failed; the reply said SERVER_ERROR, an unknown
	// outcome.)
	x.mustHave("a", "1")
	if n := x.statInt("persistent_commit_errors"); n < 5 {
		t.Errorf("persistent_commit_errors = %d, want 5", n)
	}
	if n := strings.Count(lb.String(), failLog); n != 1 {
		t.Errorf("the failure was logged %d times, want once:\n%s", n, lb.String())
	}
	fs.full.Store(false)
	x.eventually("a write succeeds once space returns", func() bool {
		_, _, err := x.e.Update([]byte("c"), storeM{engine.Item{Value: []byte("3")}})
		return err == nil
	})
	x.mustHave("a", "1")
	x.mustHave("c", "3")
	x.set("d", "4")
	if !strings.Contains(lb.String(), okLog) {
		t.Errorf("no recovery line:\n%s", lb.String())
	}
	x.reopen()
	x.mustHave("a", "1")
	x.mustHave("c", "3")
	x.mustHave("d", "4")
}

// TestDiskFullAsync fills the disk under an async engine: writes are
// acknowledged while the queue has room (back-pressure), then answer
// ErrWrite instead of hanging; reads go on; when space returns the
// queued writes reach the disk without a restart.
func TestDiskFullAsync(t *testing.T) {
	var lb logBuf
	x, fs := openFull(t, &lb, "durability=async,queue=1048576,interval=10ms,warmup=false,sweep_interval=0")
	x.set("a", "1")
	x.flushQueue()
	fs.full.Store(true)
	val := make([]byte, 1000)
	acked := 0
	for ; ; acked++ {
		if acked > 100_000 {
			t.Fatal("100,000 writes of 1 KB acknowledged on a full disk with a 1 MiB queue")
		}
		_, _, err := x.e.Update([]byte("q"+strconv.Itoa(acked)), storeM{engine.Item{Value: val}})
		if errors.Is(err, ErrWrite) {
			break
		}
		if err != nil {
			t.Fatalf("write %d: %v", acked, err)
		}
	}
	t.Logf("%d writes acknowledged before ErrWrite", acked)
	x.mustHave("a", "1")
	if x.statInt("persistent_commit_errors") == 0 {
		t.Error("persistent_commit_errors = 0")
	}
	fs.full.Store(false)
	x.eventually("the queue drains once space returns", func() bool {
		return x.e.q.items.Load() == 0
	})
	x.set("z", "26")
	x.reopen()
	x.mustHave("a", "1")
	x.mustHave("q0", string(val))
	x.mustHave("z", "26")
}

// TestDirectoryRemoved removes the data directory under a running engine:
// writes fail with ErrWrite (Pebble would panic creating its next log),
// reads of what memory holds go on, Close does not panic.
func TestDirectoryRemoved(t *testing.T) {
	dir := t.TempDir()
	e, err := New(engine.Env{Logger: slog.New(slog.DiscardHandler)}, "path="+dir+",durability=sync,warmup=false,sweep_interval=0")
	if err != nil {
		t.Fatal(err)
	}
	x := &fx{t: t, e: e}
	x.set("a", "1")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		_, _, err := e.Update([]byte("k"+strconv.Itoa(i)), storeM{engine.Item{Value: make([]byte, 100_000)}})
		if !errors.Is(err, ErrWrite) {
			t.Fatalf("write %d after the directory was removed: %v, want ErrWrite", i, err)
		}
	}
	x.mustHave("a", "1")
	t.Logf("Close: %v", e.Close())
}

// TestBrokenStoreScanHoldsNoOne: a store broken by a failed write tries
// to reopen at each commit; a scan in progress (a client's metadump, as
// slow as its client reads) must not make that attempt wait, nor the
// reads behind it (a writer waiting for the store's lock lets no reader
// in): the commit fails at once and reads go on while the scan waits
// for its caller.
func TestBrokenStoreScanHoldsNoOne(t *testing.T) {
	var lb logBuf
	x, fs := openFull(t, &lb, "durability=sync,warmup=false,sweep_interval=0")
	fs.hidden = true
	for i := range 10 {
		x.set("k"+strconv.Itoa(i), "v")
	}
	fs.full.Store(true)
	if _, _, err := x.e.Update([]byte("b"), storeM{engine.Item{Value: []byte("1")}}); !errors.Is(err, ErrWrite) {
		t.Fatalf("set on a full disk: %v, want ErrWrite", err)
	}
	store := x.f.kv
	inScan, release := make(chan struct{}), make(chan struct{})
	scanned := make(chan error, 1)
	go func() {
		first := true
		scanned <- store.Scan([]byte{prefixData}, []byte{prefixData + 1}, func(key, value []byte) bool {
			if first {
				first = false
				close(inScan)
				<-release
			}
			return true
		})
	}()
	<-inScan
	defer close(release)
	patience := time.After(time.Minute)
	committed := make(chan error, 1)
	go func() {
		committed <- store.Commit([]kvOp{{Key: []byte{prefixData, 'c'}, Value: []byte("x")}}, true)
	}()
	select {
	case err := <-committed:
		if err == nil {
			t.Error("a commit to a full disk succeeded")
		}
	case <-patience:
		t.Fatal("a commit to the broken store waited for a scan in progress")
	}
	got := make(chan bool, 1)
	go func() {
		_, found, err := store.Get([]byte{prefixData, 'k', '1'}, nil)
		got <- found && err == nil
	}()
	select {
	case ok := <-got:
		if !ok {
			t.Error("a read of a stored key during the scan found nothing")
		}
	case <-patience:
		t.Fatal("a read waited for a scan in progress")
	}
}
