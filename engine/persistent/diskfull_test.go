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

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/mnemo-cache/mnemo/engine"
)

// fullFS wraps the OS's file system and, while full is set, fails every
// write, preallocation and sync of a file with ENOSPC, as a full disk
// does.
type fullFS struct {
	vfs.FS
	full atomic.Bool
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
	cfg, err := ParseConfig("path=" + dir + "," + config)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(env.MemoryLimit); err != nil {
		t.Fatal(err)
	}
	fs := &fullFS{FS: vfs.Default}
	ev := newPebbleEvents(env.Logger)
	p, err := openPebbleFS(dir, cfg.CacheSize, env.Logger, ev, fs)
	if err != nil {
		t.Fatal(err)
	}
	f := &faultKV{kv: p}
	e, err := newEngine(env, cfg, f, ev)
	if err != nil {
		p.Close()
		t.Fatal(err)
	}
	x := &fx{t: t, e: e, f: f, dir: dir, env: env, cfg: config}
	t.Cleanup(func() { x.e.Close() })
	return x, fs
}

// TestDiskFullSync fills the disk under a sync engine: a write answers
// ErrWrite (SERVER_ERROR) instead of hanging, reads go on, the failure is
// counted and logged once, and when space returns writes succeed again
// without a restart.
func TestDiskFullSync(t *testing.T) {
	var lb logBuf
	x, fs := openFull(t, &lb, "durability=sync,warmup=false,sweep_interval=0")
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
	if n := strings.Count(lb.String(), "the store cannot write"); n != 1 {
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
	if !strings.Contains(lb.String(), "the store writes again") {
		t.Errorf("no recovery line:\n%s", lb.String())
	}
	x.reopen()
	x.mustHave("a", "1")
	x.mustHave("c", "3")
	x.mustHave("d", "4")
}
