package persistent

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
)

func TestRestart(t *testing.T) {
	for _, d := range []string{"async", "sync"} {
		t.Run(d, func(t *testing.T) {
			x := newFx(t, engine.Env{}, "durability="+d+",warmup=false")
			now := x.clock.Now()
			a := x.store("a", []byte("alpha"), 42, 0)
			x.store("b", []byte("beta"), 7, now+100)
			x.store("short", []byte("gone soon"), 0, now+5)
			x.set("del", "x")
			if ok, err := x.e.Delete([]byte("del")); !ok || err != nil {
				t.Fatalf("Delete = %v, %v", ok, err)
			}
			x.set("stale", "s")
			if _, _, err := x.e.Update([]byte("stale"), touchM{exptime: now + 50, bits: engine.BitStale}); err != nil {
				t.Fatal(err)
			}
			x.reopen()
			if m := x.mustHave("a", "alpha"); m.Flags != 42 || m.CAS != a.CAS {
				t.Errorf("a after restart: %+v, want flags 42 and CAS %d", m, a.CAS)
			}
			if m := x.mustHave("b", "beta"); m.Flags != 7 || m.Exptime != now+100 {
				t.Errorf("b after restart: %+v", m)
			}
			if m := x.mustHave("stale", "s"); m.Bits&engine.BitStale == 0 || m.Exptime != now+50 {
				t.Errorf("stale after restart: %+v, want BitStale and exptime %d", m, now+50)
			}
			x.mustMiss("del")
			x.clock.Advance(5)
			x.mustMiss("short")
			// CAS values keep increasing across restarts.
			if m := x.set("new", "n"); m.CAS <= a.CAS {
				t.Errorf("CAS after restart %d, not above %d", m.CAS, a.CAS)
			}
		})
	}
}

// touchM sets exptime and bits, keeping the CAS.
type touchM struct {
	exptime int64
	bits    uint8
}

func (m touchM) Mutate(cur *engine.Item, found bool, next *engine.Item) engine.Op {
	if !found {
		return engine.OpNone
	}
	next.Meta = cur.Meta
	next.Exptime, next.Bits = m.exptime, m.bits
	return engine.OpMeta
}

func TestFlushPersists(t *testing.T) {
	x := newFx(t, engine.Env{}, "warmup=false")
	t0 := x.clock.Now()
	x.set("old", "1")
	if err := x.e.Flush(t0); err != nil {
		t.Fatal(err)
	}
	x.set("new", "2")
	x.set("later", "3")
	if err := x.e.Flush(t0 + 10); err != nil {
		t.Fatal(err)
	}
	x.reopen()
	x.mustMiss("old")
	x.mustHave("new", "2")
	x.clock.Set(t0 + 10)
	x.mustMiss("new")
	x.mustMiss("later")
	x.set("after", "4")
	x.reopen()
	x.mustHave("after", "4")
	x.mustMiss("new")
	x.mustMiss("old")
}

// TestReadThrough stores a data set 4 times the memory tier and runs every
// kind of operation on keys that are only on disk.
func TestReadThrough(t *testing.T) {
	const n, size = 4096, 4000 // 16 MiB in a 4 MiB tier
	x := newFx(t, engine.Env{MemoryLimit: 4 << 20}, "warmup=false")
	for i := range n {
		x.store("k"+strconv.Itoa(i), value(i, size), uint32(i), 0)
	}
	// Commit the write-behind queue: the reads below must find the
	// evicted items on disk, not in a queue the flusher has not yet
	// drained (which depends on how the machine schedules it).
	x.flushQueue()
	if ev := x.statInt("evictions"); ev == 0 {
		t.Fatalf("no evictions after storing %d bytes in 4 MiB", n*size)
	}
	for i := range n {
		m, v, ok := x.get("k" + strconv.Itoa(i))
		if !ok || !bytes.Equal(v, value(i, size)) || m.Flags != uint32(i) {
			t.Fatalf("k%d: found %v, flags %d, value %.20q", i, ok, m.Flags, v)
		}
	}
	if x.statInt("persistent_disk_hits") == 0 {
		t.Error("no disk hits")
	}
	// Operations on disk-only keys: the first keys are long evicted.
	for i := range 20 {
		key := "k" + strconv.Itoa(i)
		for range 3 { // push the key out of memory again
			for j := n - 600; j < n; j++ {
				x.get("k" + strconv.Itoa(j))
			}
		}
		switch i % 4 {
		case 0: // delete
			if ok, err := x.e.Delete([]byte(key)); !ok || err != nil {
				t.Fatalf("Delete %s = %v, %v", key, ok, err)
			}
			x.mustMiss(key)
		case 1: // add-like: must see the disk item
			r := &recM{}
			x.e.Update([]byte(key), r)
			if !r.found || !bytes.Equal(r.val, value(i, size)) {
				t.Fatalf("Mutator on disk-only %s: found %v", key, r.found)
			}
		case 2: // touch
			if op, _, err := x.e.Update([]byte(key), touchM{exptime: x.clock.Now() + 1}); op != engine.OpMeta || err != nil {
				t.Fatalf("touch %s: %d, %v", key, op, err)
			}
			x.clock.Advance(1)
			x.mustMiss(key)
		case 3: // overwrite
			x.set(key, "new")
			x.mustHave(key, "new")
		}
	}
}

// recM records what it saw and leaves the key alone.
type recM struct {
	found bool
	val   []byte
}

func (m *recM) Mutate(cur *engine.Item, found bool, next *engine.Item) engine.Op {
	m.found, m.val = found, bytes.Clone(cur.Value)
	return engine.OpNone
}

// TestConcurrentReadThrough races writers, deleters and readers on a data
// set larger than memory: a reader must never see a value older than one
// it saw before (values carry a counter), nor a damaged one.
func TestConcurrentReadThrough(t *testing.T) {
	const keys, size = 512, 8000 // 4 MiB on a 2 MiB tier
	x := newFx(t, engine.Env{MemoryLimit: 2 << 20}, "warmup=false")
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := range 600 {
				k := (i*7 + w) % keys
				key := []byte("c" + strconv.Itoa(k))
				v := append([]byte(strconv.Itoa(i)+"|"), bytes.Repeat([]byte{byte(k)}, size)...)
				if w == 2 && i%10 == 0 {
					if _, err := x.e.Delete(key); err != nil {
						t.Error(err)
						return
					}
					continue
				}
				if _, _, err := x.e.Update(key, storeM{engine.Item{Meta: engine.Meta{Flags: uint32(k)}, Value: v}}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for i := range 1500 {
				k := (i * 13) % keys
				m, v, ok, err := x.e.Get([]byte("c"+strconv.Itoa(k)), nil, engine.GetTouch)
				if err != nil {
					t.Error(err)
					return
				}
				if !ok {
					continue
				}
				_, body, cut := bytes.Cut(v, []byte("|"))
				if !cut || m.Flags != uint32(k) || !bytes.Equal(body, bytes.Repeat([]byte{byte(k)}, size)) {
					t.Errorf("c%d: damaged or foreign value (flags %d)", k, m.Flags)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestSyncWriteFailure(t *testing.T) {
	x := newFx(t, engine.Env{}, "durability=sync,warmup=false")
	x.set("k", "old")
	x.f.set(errDiskFull, nil)
	_, _, err := x.e.Update([]byte("k"), storeM{engine.Item{Value: []byte("new")}})
	if !errors.Is(err, ErrWrite) || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("sync write on a full disk: %v, want ErrWrite naming the cause", err)
	}
	// The failed write is undone: the key reads as on disk.
	x.mustHave("k", "old")
	if _, _, err := x.e.Update([]byte("fresh"), storeM{engine.Item{Value: []byte("v")}}); !errors.Is(err, ErrWrite) {
		t.Fatalf("second write: %v", err)
	}
	x.mustMiss("fresh")
	if x.statInt("persistent_commit_errors") == 0 {
		t.Error("commit errors not counted")
	}
	x.f.set(nil, nil)
	x.set("k", "newer")
	x.reopen()
	x.mustHave("k", "newer")
	x.mustMiss("fresh")
}

func TestAsyncWriteFailure(t *testing.T) {
	x := newFx(t, engine.Env{}, "durability=async,warmup=false,interval=1h,queue=65536")
	x.f.set(errDiskFull, nil)
	x.set("k", "v") // acknowledged before the disk
	x.flushQueue()
	if x.statInt("persistent_commit_errors") == 0 {
		t.Fatal("failed commit not counted")
	}
	x.mustHave("k", "v")
	// The queue fills; writers get an error instead of waiting forever.
	big := bytes.Repeat([]byte("x"), 20000)
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		_, _, err = x.e.Update([]byte("big"+strconv.Itoa(i)), storeM{engine.Item{Value: big}})
	}
	if !errors.Is(err, ErrWrite) {
		t.Fatalf("writes to a full queue on a failing disk: %v, want ErrWrite", err)
	}
	// The disk recovers: the retried writes reach it.
	x.f.set(nil, nil)
	x.flushQueue()
	x.reopen()
	x.mustHave("k", "v")
	x.mustHave("big0", string(big))
}

func TestReadFailure(t *testing.T) {
	x := newFx(t, engine.Env{}, "warmup=false")
	x.set("k", "v")
	x.reopen()
	x.f.set(nil, errors.New("input/output error (injected)"))
	if _, _, _, err := x.e.Get([]byte("k"), nil, 0); !errors.Is(err, ErrRead) {
		t.Fatalf("Get on a failing disk: %v, want ErrRead", err)
	}
	x.f.set(nil, nil)
	x.mustHave("k", "v")
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	e, err := New(engine.Env{}, "path="+dir)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_, err = New(engine.Env{}, "path="+dir)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second open of %s: %v, want ErrLocked naming the directory", dir, err)
	}
}

func TestCorruptStore(t *testing.T) {
	dir := t.TempDir()
	e, err := New(engine.Env{}, "path="+dir)
	if err != nil {
		t.Fatal(err)
	}
	e.Update([]byte("k"), storeM{engine.Item{Value: []byte("v")}})
	e.Close()
	ms, _ := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
	if len(ms) == 0 {
		t.Fatal("no MANIFEST")
	}
	for _, m := range ms {
		os.WriteFile(m, []byte("this is not a manifest, this is garbage"), 0o644)
	}
	_, err = New(engine.Env{}, "path="+dir)
	if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrOpen) {
		t.Fatalf("open of a damaged store: %v, want ErrCorrupt or ErrOpen", err)
	}
	if !strings.Contains(err.Error(), "move the directory aside") {
		t.Errorf("error %q does not say what to do", err)
	}
	t.Log(err)
}

func TestForeignStore(t *testing.T) {
	dir := t.TempDir()
	p, err := openPebble(dir, 1<<20, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Commit([]kvOp{{Key: []byte("dsomething"), Value: []byte("not ours")}}, true)
	p.Close()
	if _, err := New(engine.Env{}, "path="+dir); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open of a store without a format record: %v, want ErrCorrupt", err)
	}
}

func TestDamagedRecord(t *testing.T) {
	x := newFx(t, engine.Env{}, "warmup=false")
	x.set("k", "value")
	x.reopen()
	rec, _, _ := x.f.kv.Get([]byte("dk"), nil)
	rec[len(rec)-1] ^= 1
	x.f.kv.Commit([]kvOp{{Key: []byte("dk"), Value: rec}}, true)
	x.mustMiss("k")
	if x.statInt("persistent_corrupt_records") != 1 {
		t.Errorf("persistent_corrupt_records = %s", x.stat("persistent_corrupt_records"))
	}
}

// TestSweepStripeMoved moves every stripe's counter between a sweep
// step's scan and its deletions, as a commit of other keys does: the
// dead items must still be removed in that step, not skipped for a pass.
func TestSweepStripeMoved(t *testing.T) {
	x := newFx(t, engine.Env{}, "warmup=false,sweep_interval=0")
	now := x.clock.Now()
	for i := range 100 {
		x.store("k"+strconv.Itoa(i), []byte("v"), 0, now+10)
	}
	x.flushQueue()
	x.clock.Advance(10)
	x.e.sweepHook = func() {
		for i := range x.e.stripes {
			s := &x.e.stripes[i]
			s.mu.Lock()
			s.wseq++
			s.mu.Unlock()
		}
	}
	removed := x.e.sweepStep(1000)
	if removed != 100 {
		t.Errorf("a step removed %d of the 100 expired items", removed)
	}
}

func TestSweep(t *testing.T) {
	x := newFx(t, engine.Env{}, "warmup=false,sweep_interval=0")
	now := x.clock.Now()
	for i := range 100 {
		exp := int64(0)
		if i%2 == 0 {
			exp = now + 10
		}
		x.store("k"+strconv.Itoa(i), []byte("v"), 0, exp)
	}
	x.flushQueue()
	x.clock.Advance(10)
	// A key rewritten after it expired must survive the sweep.
	x.set("k0", "again")
	removed := 0
	for x.statInt("persistent_sweep_passes") < 2 {
		removed += x.e.sweepStep(7)
		x.flushQueue()
	}
	if removed != 49 {
		t.Errorf("sweep removed %d items, want the 49 expired ones", removed)
	}
	if got := x.statInt("persistent_disk_items"); got != 51 {
		t.Errorf("persistent_disk_items = %d, want 51", got)
	}
	x.mustHave("k0", "again")
	n := 0
	x.f.kv.Scan(dataLower, dataUpper, func(k, v []byte) bool { n++; return true })
	if n != 51 {
		t.Errorf("%d records on disk after the sweep, want 51", n)
	}
}

func TestWarmup(t *testing.T) {
	x := newFx(t, engine.Env{MemoryLimit: 4 << 20}, "")
	for i := range 2000 {
		x.store("w"+strconv.Itoa(i), value(i, 4000), 0, 0) // 8 MB: more than memory
	}
	x.reopen()
	for i := range 2000 { // served at once, warm-up or not
		if _, v, ok := x.get("w" + strconv.Itoa(i)); !ok || !bytes.Equal(v, value(i, 4000)) {
			t.Fatalf("w%d not served during warm-up", i)
		}
	}
	x.e.Close()
	x.e, x.f = openAt(t, x.dir, x.env, x.cfg)
	x.eventually("the warm-up ends", func() bool { return x.stat("persistent_warmup_state") != "running" })
	if s := x.stat("persistent_warmup_state"); s != "memory_full" {
		t.Errorf("warm-up state %s, want memory_full", s)
	}
	if n := x.statInt("persistent_warmup_items"); n < 500 || x.statInt("curr_items") < 500 {
		t.Errorf("warm-up loaded %d items (curr_items %d)", n, x.statInt("curr_items"))
	}
	// The memory tier evicts a 1 MiB segment at a time; warm-up stops at
	// the first eviction.
	if ev := x.statInt("evictions"); ev > (1<<20)/4000+8 {
		t.Errorf("warm-up evicted %d items; it should stop at the first eviction", ev)
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ok   bool
		want string
	}{
		{"path=/x", true, "path=/x,durability=async,interval=100ms,queue=16777216,sweep_interval=1s,sweep_batch=10000,warmup=true,cache=16777216,disk_size=0"},
		{"path=/x,durability=sync,interval=5ms,queue=1000000,sweep_interval=0,sweep_batch=5,warmup=false,cache=1024", true,
			"path=/x,durability=sync,interval=5ms,queue=1000000,sweep_interval=-1ns,sweep_batch=5,warmup=false,cache=1024,disk_size=0"},
		{"path=/x,disk_size=64m", true, "path=/x,durability=async,interval=100ms,queue=16777216,sweep_interval=1s,sweep_batch=10000,warmup=true,cache=16777216,disk_size=67108864"},
		{"path=/x,disk_size=2G", true, "path=/x,durability=async,interval=100ms,queue=16777216,sweep_interval=1s,sweep_batch=10000,warmup=true,cache=16777216,disk_size=2147483648"},
		{"path=/x,disk_size=4194304", true, "path=/x,durability=async,interval=100ms,queue=16777216,sweep_interval=1s,sweep_batch=10000,warmup=true,cache=16777216,disk_size=4194304"},
		{"path=/x,disk_size=8192k", true, "path=/x,durability=async,interval=100ms,queue=16777216,sweep_interval=1s,sweep_batch=10000,warmup=true,cache=16777216,disk_size=8388608"},
		{"path=/x,disk_size=0", true, "path=/x,durability=async,interval=100ms,queue=16777216,sweep_interval=1s,sweep_batch=10000,warmup=true,cache=16777216,disk_size=0"},
		{"path=/x,disk_size=1m", false, ""},
		{"path=/x,disk_size=lots", false, ""},
		{"path=/x,disk_size=-5m", false, ""},
		{"path=/x,disk_size=99999999999t", false, ""},
		{"", false, ""},
		{"path=/x,durability=maybe", false, ""},
		{"path=/x,interval=0", false, ""},
		{"path=/x,queue=-1", false, ""},
		{"path=/x,colour=blue", false, ""},
		{"path=/x,warmup=perhaps", false, ""},
		{"path", false, ""},
	} {
		c, err := ParseConfig(tc.in)
		if err == nil {
			err = c.Validate(64 << 20)
		}
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v, want ok %v", tc.in, err, tc.ok)
			continue
		}
		if err != nil && !errors.Is(err, engine.ErrBadConfig) {
			t.Errorf("%q: %v does not wrap ErrBadConfig", tc.in, err)
		}
		if tc.ok && c.String() != tc.want {
			t.Errorf("%q: String() = %s, want %s", tc.in, c, tc.want)
		}
	}
}

func TestRecord(t *testing.T) {
	m := engine.Meta{Flags: 0xdeadbeef, Exptime: 1 << 40, CAS: 99, Bits: engine.BitStale | 0x80}
	rec := appendRecord(nil, []byte("key"), &m, 1234, []byte("value\r\n"))
	var got engine.Meta
	v, err := decodeRecord([]byte("key"), rec, &got)
	want := engine.Meta{Flags: 0xdeadbeef, Exptime: 1 << 40, CAS: 99, Bits: engine.BitStale, Atime: 1234}
	if err != nil || string(v) != "value\r\n" || got != want {
		t.Fatalf("decode = %q, %+v, %v; want %+v", v, got, err, want)
	}
	if _, err := decodeRecord([]byte("kez"), rec, &got); err == nil {
		t.Error("record accepted under another key")
	}
	for i := range len(rec) * 8 {
		b := bytes.Clone(rec)
		b[i/8] ^= 1 << (i % 8)
		// Every byte is covered: the CRC, the header (pad and unused
		// bits too) and the value.
		if _, err := decodeRecord([]byte("key"), b, &got); err == nil {
			t.Fatalf("bit %d flipped: record accepted", i)
		}
	}
	for n := range recHdrSize {
		if _, err := decodeRecord([]byte("key"), rec[:n], &got); err == nil {
			t.Fatalf("record cut to %d bytes accepted", n)
		}
	}
	p, err := decodeMeta(metaCAS, appendMeta(nil, metaCAS, []byte("12345678")), 8)
	if err != nil || string(p) != "12345678" {
		t.Fatalf("meta = %q, %v", p, err)
	}
	if _, err := decodeMeta(metaFlush, appendMeta(nil, metaCAS, []byte("12345678")), 8); err == nil {
		t.Error("meta record accepted under another name")
	}
}

// blindStore is a plain set that says so (engine.BlindMutator).
type blindStore struct{ storeM }

func (blindStore) Blind() bool { return true }

// TestBlindSetSkipsDisk checks that a set of a key that is on disk but not
// in memory does not read the disk first, while a read-modify-write does.
func TestBlindSetSkipsDisk(t *testing.T) {
	x := newFx(t, engine.Env{}, "warmup=false")
	x.set("k", "old")
	x.set("j", "old")
	x.flushQueue()
	x.reopen() // memory is empty now, the items are on disk only
	before := x.statInt("persistent_disk_reads")
	op, _, err := x.e.Update([]byte("k"), blindStore{storeM{engine.Item{Value: []byte("new")}}})
	if err != nil || op != engine.OpStore {
		t.Fatalf("blind set: op %d, err %v", op, err)
	}
	if got := x.statInt("persistent_disk_reads"); got != before {
		t.Errorf("a blind set read the disk: disk reads %d -> %d", before, got)
	}
	x.mustHave("k", "new")
	if _, _, err := x.e.Update([]byte("j"), storeM{engine.Item{Value: []byte("new")}}); err != nil {
		t.Fatal(err)
	}
	if got := x.statInt("persistent_disk_reads"); got != before+1 {
		t.Errorf("a set that is not blind should read the disk once: disk reads %d -> %d", before, got)
	}
}
