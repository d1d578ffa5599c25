package memory

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
)

// openFile opens an engine on the arena file path with a fake clock at
// now, logging into log.
func openFile(t *testing.T, path string, env engine.Env, now int64, log *bytes.Buffer) *Engine {
	t.Helper()
	return openFileWith(t, path, env, now, log, "")
}

// openFileWith is openFile with more configuration (",key=value...").
func openFileWith(t *testing.T, path string, env engine.Env, now int64, log *bytes.Buffer, config string) *Engine {
	t.Helper()
	env.Clock = newClock(now)
	if log == nil {
		log = &bytes.Buffer{}
	}
	env.Logger = slog.New(slog.NewTextHandler(log, nil))
	e, err := New(env, "sweep_interval=0,file="+path+config)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

type itemState struct {
	ok    bool
	value string
	meta  engine.Meta
}

// snapshot reads every key without touching it.
func snapshot(t *testing.T, e *Engine, keys []string) map[string]itemState {
	t.Helper()
	out := map[string]itemState{}
	for _, k := range keys {
		m, v, ok, err := e.Get([]byte(k), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = itemState{ok: ok, value: string(v), meta: engine.Meta{Flags: m.Flags, Exptime: m.Exptime, CAS: m.CAS}}
	}
	return out
}

func sameState(t *testing.T, what string, want, got map[string]itemState) {
	t.Helper()
	bad := 0
	for k, w := range want {
		g := got[k]
		if w.ok != g.ok || w.value != g.value || w.meta != g.meta {
			if bad++; bad <= 5 {
				t.Errorf("%s: key %q: got %v %q %+v, want %v %q %+v", what, k, g.ok, trunc(g.value), g.meta, w.ok, trunc(w.value), w.meta)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%s: %d of %d keys differ", what, bad, len(want))
	}
}

// churn runs random sets, overwrites, deletes and touches.
func churn(t *testing.T, e *Engine, rng *rand.Rand, keys []string, n, maxVal int) {
	t.Helper()
	for i := 0; i < n; i++ {
		k := []byte(keys[rng.IntN(len(keys))])
		switch r := rng.IntN(10); {
		case r < 6:
			v := fmt.Sprintf("%s/%d/", k, i) + strings.Repeat("v", rng.IntN(maxVal))
			m := &setM{value: []byte(v), flags: uint32(rng.IntN(3)), exptime: []int64{0, 0, t0 + 1000, t0 - 1}[rng.IntN(4)]}
			if _, _, err := e.Update(k, m); err != nil {
				t.Fatal(err)
			}
		case r < 8:
			if _, err := e.Delete(k); err != nil {
				t.Fatal(err)
			}
		default: // touch: a new exptime (OpMeta)
			x := t0 + 500 + int64(rng.IntN(100))
			if _, _, err := e.Update(k, funcM(func(cur *engine.Item, found bool, next *engine.Item) engine.Op {
				if !found {
					return engine.OpNone
				}
				next.Meta = cur.Meta
				next.Exptime = x
				return engine.OpMeta
			})); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func testKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("key:%06d", i)
	}
	return keys
}

// TestFileReopenClean stops gracefully and restarts: every item is back
// with its value, flags, exptime and CAS, and the start says clean.
func TestFileReopenClean(t *testing.T) {
	path := filepath.Join(t.TempDir(), "arena")
	env := engine.Env{MemoryLimit: 8 << 20}
	keys := testKeys(2000)
	e := openFile(t, path, env, t0, nil)
	churn(t, e, rand.New(rand.NewPCG(1, 2)), keys, 20000, 600)
	want := snapshot(t, e, keys)
	verify(t, e)
	lastCAS := e.LastCAS()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	e = openFile(t, path, env, t0, &log)
	defer e.Close()
	verify(t, e)
	sameState(t, "after a clean restart", want, snapshot(t, e, keys))
	if !e.restart.clean || e.restart.reason != "" {
		t.Fatalf("restart %+v, want clean", e.restart)
	}
	if e.LastCAS() < lastCAS {
		t.Fatalf("CAS counter %d after restart, was %d", e.LastCAS(), lastCAS)
	}
	// New stores keep working and get fresh CAS values.
	m, _ := set(t, e, "after", "x", 0), 0
	if m.CAS <= lastCAS {
		t.Fatalf("new CAS %d not above %d", m.CAS, lastCAS)
	}
	if !strings.Contains(log.String(), "restored") {
		t.Fatalf("log: %s", log.String())
	}
}

// TestFileReopenCrash copies the file between operations without closing
// the engine (the page cache of a killed process), with segment reuse
// under a small limit (by compaction, the default, and by eviction with
// compact=0), and restarts from each copy.
func TestFileReopenCrash(t *testing.T) {
	t.Run("compaction", func(t *testing.T) { fileReopenCrash(t, "", "memory_compactions") })
	t.Run("eviction", func(t *testing.T) { fileReopenCrash(t, ",compact=0", "evictions") })
}

func fileReopenCrash(t *testing.T, config, reuse string) {
	dir := t.TempDir()
	path := filepath.Join(dir, "arena")
	env := engine.Env{MemoryLimit: 4 << 20}
	keys := testKeys(3000)
	e := openFileWith(t, path, env, t0, nil, config)
	defer e.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 4; round++ {
		churn(t, e, rng, keys, 5000, 3000)
		if round == 2 {
			if err := e.Flush(0); err != nil {
				t.Fatal(err)
			}
			churn(t, e, rng, keys, 300, 100)
		}
		want := snapshot(t, e, keys)
		img, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		cp := filepath.Join(dir, fmt.Sprintf("crash%d", round))
		if err := os.WriteFile(cp, img, 0o600); err != nil {
			t.Fatal(err)
		}
		r := openFileWith(t, cp, env, t0, nil, config)
		verify(t, r)
		t.Logf("round %d: restored %d items in %v, scan %+v", round, r.restart.restored, r.restart.took, r.restart.scan)
		if r.restart.restored == 0 {
			t.Fatal("nothing restored")
		}
		sameState(t, fmt.Sprintf("round %d after a crash", round), want, snapshot(t, r, keys))
		if r.restart.clean || r.restart.reason != "" {
			t.Fatalf("restart %+v, want crash recovery", r.restart)
		}
		// The recovered engine keeps working: churn it and restart again.
		churn(t, r, rng, keys, 2000, 3000)
		want2 := snapshot(t, r, keys)
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		r = openFileWith(t, cp, env, t0, nil, config)
		sameState(t, fmt.Sprintf("round %d, second restart", round), want2, snapshot(t, r, keys))
		r.Close()
	}
	var n uint64
	e.Stats(func(name, value string) {
		if name == reuse {
			fmt.Sscan(value, &n)
		}
	})
	if n == 0 {
		t.Fatalf("%s 0: segment reuse not exercised", reuse)
	}
}

// TestFileSettingsMismatch: a start with another -m, -I or -C starts
// empty with one log line saying why.
func TestFileSettingsMismatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "arena")
	base := engine.Env{MemoryLimit: 4 << 20}
	for _, c := range []struct {
		name string
		env  engine.Env
		want string
	}{
		{"-m", engine.Env{MemoryLimit: 8 << 20}, "size"},
		{"-I", engine.Env{MemoryLimit: 4 << 20, ItemSizeMax: 2 << 20}, "size"},
		{"-C", engine.Env{MemoryLimit: 4 << 20, NoCAS: true}, "settings"},
	} {
		e := openFile(t, path, base, t0, nil)
		set(t, e, "k", "v", 0)
		e.Close()
		var log bytes.Buffer
		e = openFile(t, path, c.env, t0, &log)
		if _, _, ok, _ := e.Get([]byte("k"), nil, 0); ok {
			t.Fatalf("%s: an item survived a settings change", c.name)
		}
		if e.restart.reason == "" || strings.Count(log.String(), "starts empty") != 1 || !strings.Contains(log.String(), c.want) {
			t.Fatalf("%s: reason %q, log %q", c.name, e.restart.reason, log.String())
		}
		e.Close()
		os.Remove(path)
	}
	// A damaged header starts empty too.
	e := openFile(t, path, base, t0, nil)
	set(t, e, "k", "v", 0)
	e.Close()
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	f.WriteAt([]byte{0xff}, fhVersion)
	f.Close()
	e = openFile(t, path, base, t0, nil)
	defer e.Close()
	if _, _, ok, _ := e.Get([]byte("k"), nil, 0); ok || e.restart.reason == "" {
		t.Fatalf("damaged header: item back %v, reason %q", ok, e.restart.reason)
	}
}

// shmDir returns a directory on /dev/shm (tmpfs, where -e files belong)
// removed when t ends, or t.TempDir() where there is none.
func shmDir(t testing.TB) string {
	d, err := os.MkdirTemp("/dev/shm", "mnemo-test-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func benchFileEngine(b *testing.B) *Engine {
	env := engine.Env{MemoryLimit: 256 << 20, Logger: slog.New(slog.DiscardHandler)}
	e, err := New(env, "sweep_interval=0,file="+filepath.Join(shmDir(b), "arena"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	return e
}

// BenchmarkSetFile and BenchmarkGetFile are BenchmarkSet and BenchmarkGet
// on a restartable arena file (-e).
func BenchmarkSetFile(b *testing.B) {
	e, keys := benchFileEngine(b), benchKeySet()
	m := &setM{value: make([]byte, 100)}
	fill(b, e, keys, m)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e.Update(keys[i%benchKeys], m)
		i++
	}
}

func BenchmarkGetFile(b *testing.B) {
	e, keys := benchFileEngine(b), benchKeySet()
	fill(b, e, keys, &setM{value: make([]byte, 100)})
	dst := make([]byte, 0, 128)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e.Get(keys[i%benchKeys], dst[:0], engine.GetTouch)
		i++
	}
}

// TestFileRestartMillion measures the restart of a file holding 1M items
// (15-byte keys, 100-byte values) after a crash (no Close): the scan that
// rebuilds the index. Skipped with -short.
func TestFileRestartMillion(t *testing.T) {
	if testing.Short() {
		t.Skip("1M items")
	}
	dir := shmDir(t)
	path := filepath.Join(dir, "arena")
	env := engine.Env{MemoryLimit: 256 << 20}
	e := openFile(t, path, env, t0, nil)
	m := &setM{value: make([]byte, 100)}
	const n = 1_000_000
	for i := range n {
		if _, _, err := e.Update(fmt.Appendf(nil, "key:%011d", i), m); err != nil {
			t.Fatal(err)
		}
	}
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	cp := filepath.Join(dir, "crash")
	if err := os.WriteFile(cp, img, 0o600); err != nil {
		t.Fatal(err)
	}
	img = nil
	r := openFile(t, cp, env, t0, nil)
	defer r.Close()
	if r.restart.restored != n || r.restart.clean {
		t.Fatalf("restored %d of %d (clean %v)", r.restart.restored, n, r.restart.clean)
	}
	t.Logf("1M items: crash restart (open, scan, index) in %v", r.restart.took)
}

// TestFileLocked: a second engine on a file in use is refused.
func TestFileLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "arena")
	env := engine.Env{MemoryLimit: 4 << 20, Logger: slog.New(slog.DiscardHandler), Clock: newClock(t0)}
	e := openFile(t, path, env, t0, nil)
	if _, err := New(env, "sweep_interval=0,file="+path); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open: %v, want an in-use error", err)
	}
	e.Close()
	e = openFile(t, path, env, t0, nil)
	e.Close()
}

// TestFileNoEvictAfterCrash: with -M, a full arena restarted after a
// crash still compacts: the emptied spare comes back free.
func TestFileNoEvictAfterCrash(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "arena")
	env := engine.Env{MemoryLimit: 4 << 20, NoEvict: true}
	e := openFile(t, path, env, t0, nil)
	defer e.Close()
	val := make([]byte, 1000)
	n := 0
	for ; ; n++ {
		if _, _, err := e.Update(fmt.Appendf(nil, "k%d", n), &setM{value: val}); err != nil {
			if !errors.Is(err, engine.ErrNoMemory) {
				t.Fatal(err)
			}
			break
		}
	}
	for i := 0; i < n; i += 2 {
		e.Delete(fmt.Appendf(nil, "k%d", i))
	}
	// Compaction makes room for new stores now ...
	for i := 0; i < n/4; i++ {
		if _, _, err := e.Update(fmt.Appendf(nil, "new%d", i), &setM{value: val}); err != nil {
			t.Fatalf("store %d after deleting half, before the crash: %v", i, err)
		}
	}
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(dir, "crash")
	if err := os.WriteFile(cp, img, 0o600); err != nil {
		t.Fatal(err)
	}
	r := openFile(t, cp, env, t0, nil)
	defer r.Close()
	verify(t, r)
	// ... and after the restart.
	for i := 0; i < n/4; i++ {
		if _, _, err := r.Update(fmt.Appendf(nil, "after%d", i), &setM{value: val}); err != nil {
			t.Fatalf("store %d of %d after the restart: %v", i, n/4, err)
		}
	}
	verify(t, r)
}
