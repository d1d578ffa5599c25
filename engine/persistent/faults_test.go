package persistent

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/mnemo-cache/mnemo/engine"
)

// logBuf is a goroutine-safe log sink.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDamagedSST writes garbage into a real .sst file of the store and
// checks that reads, the sweep, warm-up and Close go on (Pebble's default
// would have crashed the process): the damaged keys are misses, the
// damage is counted and logged once, everything else is served.
func TestDamagedSST(t *testing.T) {
	var lb logBuf
	env := engine.Env{Logger: slog.New(slog.NewTextHandler(&lb, nil))}
	x := newFx(t, env, "warmup=false,sweep_interval=0")
	const n = 3000
	key := func(i int) string { return fmt.Sprintf("key%05d", i) }
	for i := range n {
		x.store(key(i), value(i, 500), 0, 0)
	}
	x.flushQueue()
	if err := x.f.kv.(*pebbleKV).db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := x.e.Close(); err != nil {
		t.Fatal(err)
	}
	ssts, _ := filepath.Glob(filepath.Join(x.dir, "*.sst"))
	if len(ssts) == 0 {
		t.Fatal("no .sst file in the store")
	}
	for _, name := range ssts {
		f, err := os.OpenFile(name, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := f.Stat()
		if _, err := f.WriteAt(bytes.Repeat([]byte{0xa5}, 512), fi.Size()/3); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	x.e, x.f = openAt(t, x.dir, x.env, x.cfg)

	hits, misses := 0, 0
	for i := range n {
		_, v, ok := x.get(key(i))
		switch {
		case !ok:
			misses++
		case !bytes.Equal(v, value(i, 500)):
			t.Fatalf("Get %s = a wrong value", key(i))
		default:
			hits++
		}
	}
	t.Logf("%d hits, %d misses", hits, misses)
	if misses == 0 || hits == 0 {
		t.Fatalf("%d hits, %d misses: want the damaged block's keys missing and the rest served", hits, misses)
	}
	if x.statInt("persistent_corrupt_blocks") == 0 {
		t.Error("persistent_corrupt_blocks = 0")
	}
	if x.statInt("persistent_read_errors") != 0 {
		t.Errorf("persistent_read_errors = %d, want 0 (damage is counted apart)", x.statInt("persistent_read_errors"))
	}
	if c := strings.Count(lb.String(), "damaged store file"); c != len(ssts) {
		t.Errorf("the damage was logged %d times, want once per file (%d):\n%s", c, len(ssts), lb.String())
	}
	x.set("new", "value")
	x.mustHave("new", "value")

	// The sweep steps over the damaged file and completes its pass.
	for i := 0; x.statInt("persistent_sweep_passes") == 0; i++ {
		if i > n {
			t.Fatal("the sweep does not complete a pass over the damaged store")
		}
		x.e.sweepStep(100)
	}

	// Warm-up steps over it too (the whole damaged file: Pebble reports
	// the file's bounds, not the block's; its intact keys read through).
	x.cfg = "sweep_interval=0"
	x.reopen()
	x.eventually("warm-up end", func() bool { return x.e.st.warmState.Load() != warmRunning })
	if s := x.stat("persistent_warmup_state"); s != "done" {
		t.Errorf("persistent_warmup_state = %s, want done", s)
	}
	if w := x.statInt("persistent_warmup_items"); w == 0 {
		t.Error("persistent_warmup_items = 0")
	}
	x.mustHave(key(n-1), string(value(n-1, 500)))
	if err := x.e.Close(); err != nil {
		t.Logf("Close: %v", err)
	}
	x.e, x.f = openAt(t, x.dir, x.env, x.cfg) // for the cleanup's Close
}

// TestBackgroundErrorsCounted checks that Pebble's background errors,
// before and after the engine is built, reach persistent_background_errors
// (its callback used to count into a copy).
func TestBackgroundErrorsCounted(t *testing.T) {
	dir := t.TempDir()
	env := engine.Env{Logger: slog.New(slog.DiscardHandler)}.WithDefaults()
	cfg, err := ParseConfig("path=" + dir + ",warmup=false")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(env.MemoryLimit); err != nil {
		t.Fatal(err)
	}
	ev := newPebbleEvents(env.Logger)
	p, err := openPebble(dir, cfg.CacheSize, env.Logger, ev)
	if err != nil {
		t.Fatal(err)
	}
	ev.backgroundError(errDiskFull) // while the store opens
	e, err := newEngine(env, cfg, p, ev)
	if err != nil {
		p.Close()
		t.Fatal(err)
	}
	defer e.Close()
	ev.backgroundError(errDiskFull) // while it runs
	x := &fx{t: t, e: e}
	if n := x.statInt("persistent_background_errors"); n != 2 {
		t.Errorf("persistent_background_errors = %d, want 2", n)
	}
}

// TestBackgroundErrorLoggedOncePerEpisode checks that a failing flush
// retried many times logs one line (and counts every retry), and that a
// successful flush ends the episode.
func TestBackgroundErrorLoggedOncePerEpisode(t *testing.T) {
	var lb logBuf
	ev := newPebbleEvents(slog.New(slog.NewTextHandler(&lb, nil)))
	var st counters
	ev.attach(&st)
	for range 50 {
		ev.backgroundError(errDiskFull)
	}
	ev.recovered(errDiskFull) // a failed flush does not end it
	if n := strings.Count(lb.String(), "background disk error"); n != 1 {
		t.Errorf("%d log lines for one episode, want 1:\n%s", n, lb.String())
	}
	if st.bgErrors.Load() != 50 {
		t.Errorf("bgErrors = %d, want 50", st.bgErrors.Load())
	}
	ev.recovered(nil)
	if !strings.Contains(lb.String(), "succeeds again") {
		t.Errorf("no recovery line:\n%s", lb.String())
	}
	ev.backgroundError(errDiskFull)
	if n := strings.Count(lb.String(), "background disk error"); n != 2 {
		t.Errorf("%d log lines for two episodes, want 2:\n%s", n, lb.String())
	}
}

// TestDamagedWAL flips bits in the middle of the write-ahead log: the
// start either refuses the store (ErrCorrupt) or opens it and reports the
// lost writes (logged, persistent_wal_damaged); it never loses them
// without a word.
func TestDamagedWAL(t *testing.T) {
	var lb logBuf
	env := engine.Env{Logger: slog.New(slog.NewTextHandler(&lb, nil))}
	dir := t.TempDir()
	e, err := New(env, "path="+dir+",durability=sync,warmup=false,sweep_interval=0")
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	for i := range n {
		if _, _, err := e.Update([]byte(fmt.Sprintf("key%05d", i)), storeM{engine.Item{Value: value(i, 100)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	// An intact log reads to its end: no report.
	ev := newPebbleEvents(env.Logger)
	checkWAL(dir, vfs.Default, env.Logger, ev)
	if n := ev.target.Load().walDamaged.Load(); n != 0 {
		t.Fatalf("an intact log is reported damaged (%d):\n%s", n, lb.String())
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	var name string
	var size int64
	for _, l := range logs {
		if fi, err := os.Stat(l); err == nil && fi.Size() > size {
			name, size = l, fi.Size()
		}
	}
	if size < 20000 {
		t.Fatalf("no write-ahead log holds the writes (%v, largest %d bytes)", logs, size)
	}
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	f.ReadAt(b, size/2)
	b[0] ^= 0x10
	f.WriteAt(b, size/2)
	f.Close()

	e, err = New(env, "path="+dir+",warmup=false,sweep_interval=0")
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("open: %v, want ErrCorrupt or a report", err)
		}
		t.Logf("refused: %v", err)
		return
	}
	defer e.Close()
	x := &fx{t: t, e: e}
	misses := 0
	for i := range n {
		if _, _, ok := x.get(fmt.Sprintf("key%05d", i)); !ok {
			misses++
		}
	}
	t.Logf("%d of %d writes lost", misses, n)
	if misses > 0 {
		if x.statInt("persistent_wal_damaged") != 1 {
			t.Errorf("persistent_wal_damaged = %d, want 1", x.statInt("persistent_wal_damaged"))
		}
		if !strings.Contains(lb.String(), "the writes after this point are lost") {
			t.Errorf("the loss is not logged:\n%s", lb.String())
		}
	}
}
