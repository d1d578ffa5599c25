package persistent

import (
	"bytes"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/mnemo-cache/mnemo/engine"
	"github.com/mnemo-cache/mnemo/engine/enginetest"
)

// faultKV wraps a kv and fails its calls on demand.
type faultKV struct {
	kv
	mu        sync.Mutex
	failWrite error // Commit fails with it
	failRead  error // Get fails with it
	noSync    bool  // commits skip fsync (fast tests of the engine logic)
	commits   int
	onCommit  func(ops []kvOp) // runs before each commit (under mu)
}

func (f *faultKV) set(write, read error) {
	f.mu.Lock()
	f.failWrite, f.failRead = write, read
	f.mu.Unlock()
}

func (f *faultKV) Commit(ops []kvOp, sync bool) error {
	f.mu.Lock()
	err, noSync := f.failWrite, f.noSync
	f.commits++
	if f.onCommit != nil {
		f.onCommit(ops)
	}
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return f.kv.Commit(ops, sync && !noSync)
}

func (f *faultKV) Get(key, dst []byte) ([]byte, bool, error) {
	f.mu.Lock()
	err := f.failRead
	f.mu.Unlock()
	if err != nil {
		return dst, false, err
	}
	return f.kv.Get(key, dst)
}

var errDiskFull = errors.New("no space left on device (injected)")

// openAt opens an engine on dir with config (path is added) over a
// faultKV, and returns both. The caller closes the engine.
func openAt(t testing.TB, dir string, env engine.Env, config string) (*Engine, *faultKV) {
	t.Helper()
	return openAtFS(t, dir, env, config, nil)
}

// openAtFS is openAt with Pebble over fs (nil: the OS's file system).
func openAtFS(t testing.TB, dir string, env engine.Env, config string, fs vfs.FS) (*Engine, *faultKV) {
	t.Helper()
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
	env = env.WithDefaults()
	if config != "" {
		config = "," + config
	}
	cfg, err := ParseConfig("path=" + dir + config)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(env.MemoryLimit); err != nil {
		t.Fatal(err)
	}
	ev := newPebbleEvents(env.Logger)
	p, err := openPebbleSized(dir, cfg.CacheSize, cfg.DiskSize, env.Logger, ev, fs)
	if err != nil {
		t.Fatal(err)
	}
	f := &faultKV{kv: p}
	e, err := newEngine(env, cfg, f, ev)
	if err != nil {
		p.Close()
		t.Fatal(err)
	}
	return e, f
}

// fx is an engine under test with helpers that fail the test on error.
type fx struct {
	t     testing.TB
	e     *Engine
	f     *faultKV
	dir   string
	env   engine.Env
	cfg   string
	clock *enginetest.FakeClock
}

func newFx(t testing.TB, env engine.Env, config string) *fx {
	t.Helper()
	x := &fx{t: t, dir: t.TempDir(), env: env, cfg: config, clock: enginetest.NewFakeClock(1_700_000_000)}
	x.env.Clock = x.clock
	x.e, x.f = openAt(t, x.dir, x.env, config)
	t.Cleanup(func() { x.e.Close() })
	return x
}

// reopen closes the engine and opens it again on the same directory.
func (x *fx) reopen() {
	x.t.Helper()
	if err := x.e.Close(); err != nil {
		x.t.Fatalf("Close: %v", err)
	}
	x.e, x.f = openAt(x.t, x.dir, x.env, x.cfg)
}

type storeM struct{ it engine.Item }

func (m storeM) Mutate(cur *engine.Item, found bool, next *engine.Item) engine.Op {
	*next = m.it
	return engine.OpStore
}

func (x *fx) store(key string, value []byte, flags uint32, exptime int64) engine.Meta {
	x.t.Helper()
	op, meta, err := x.e.Update([]byte(key), storeM{engine.Item{Meta: engine.Meta{Flags: flags, Exptime: exptime}, Value: value}})
	if err != nil || op != engine.OpStore {
		x.t.Fatalf("store %s: op %d, err %v", key, op, err)
	}
	return meta
}

func (x *fx) set(key, value string) engine.Meta { return x.store(key, []byte(value), 0, 0) }

func (x *fx) get(key string) (engine.Meta, []byte, bool) {
	x.t.Helper()
	m, v, ok, err := x.e.Get([]byte(key), nil, 0)
	if err != nil {
		x.t.Fatalf("Get %s: %v", key, err)
	}
	return m, v, ok
}

func (x *fx) mustHave(key, value string) engine.Meta {
	x.t.Helper()
	m, v, ok := x.get(key)
	if !ok || string(v) != value {
		x.t.Fatalf("Get %s = %q, %v; want %q", key, v, ok, value)
	}
	return m
}

func (x *fx) mustMiss(key string) {
	x.t.Helper()
	if _, v, ok := x.get(key); ok {
		x.t.Fatalf("Get %s = %q, want a miss", key, v)
	}
}

func (x *fx) stat(name string) string {
	var v string
	x.e.Stats(func(n, val string) {
		if n == name {
			v = val
		}
	})
	return v
}

func (x *fx) statInt(name string) int64 {
	x.t.Helper()
	n, err := strconv.ParseInt(x.stat(name), 10, 64)
	if err != nil {
		x.t.Fatalf("stat %s = %q", name, x.stat(name))
	}
	return n
}

// flushQueue makes the flusher commit what is queued.
func (x *fx) flushQueue() {
	x.t.Helper()
	for x.e.q.items.Load() > 0 {
		ch := *x.e.q.room.Load()
		x.e.q.wake()
		<-ch
		if x.e.q.errSeq.Load() != 0 && x.e.q.err() != nil && x.f.failWrite != nil {
			return
		}
	}
}

// eventually polls cond until it holds. It waits for background work
// whose timing is up to the scheduler: the one-minute bound only stops a
// hang, it is not a timing expectation (a busy machine may take seconds).
func (x *fx) eventually(what string, cond func() bool) {
	x.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			x.t.Fatalf("still waiting after a minute: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// value is a test value for key i.
func value(i, n int) []byte {
	v := bytes.Repeat([]byte{byte('a' + i%26)}, n)
	copy(v, strconv.Itoa(i)+":")
	return v
}
