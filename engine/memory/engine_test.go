package memory

import (
	"bytes"
	"errors"
	"strconv"
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
)

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Config
		bad  bool
	}{
		{in: "", want: Config{}},
		{in: "shards=8", want: Config{Shards: 8}},
		{in: " shards = 3 , sweep_slots=10", want: Config{Shards: 3, SweepSlots: 10}},
		{in: "reserve=1073741824", want: Config{Reserve: 1 << 30}},
		{in: "sweep_interval=250ms", want: Config{SweepInterval: 250e6}},
		{in: "sweep_interval=0", want: Config{SweepInterval: -1}},
		{in: "file=/dev/shm/m,shards=4", want: Config{File: "/dev/shm/m", Shards: 4}},
		{in: "compact=0.8", want: Config{Compact: 0.8}},
		{in: "compact=0", want: Config{Compact: -1}},
		{in: "compact=0.99", bad: true},
		{in: "compact=-0.5", bad: true},
		{in: "compact=lots", bad: true},
		{in: "file=", bad: true},
		{in: "shards=0", bad: true},
		{in: "shards=x", bad: true},
		{in: "shards=100000", bad: true},
		{in: "reserve=-1", bad: true},
		{in: "sweep_interval=soon", bad: true},
		{in: "colour=blue", bad: true},
		{in: "shards=2,shards=4", bad: true},
	} {
		got, err := ParseConfig(tc.in)
		if tc.bad {
			if !errors.Is(err, engine.ErrBadConfig) {
				t.Errorf("ParseConfig(%q) err = %v, want ErrBadConfig", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseConfig(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestOpenRegistered(t *testing.T) {
	e, err := engine.Open("memory", engine.Env{MemoryLimit: 4 << 20}, "shards=3")
	if err != nil {
		t.Fatal(err)
	}
	me := e.(*Engine)
	if c := me.Config(); c.Shards != 4 || c.SweepInterval <= 0 || c.SweepSlots != 1024 {
		t.Errorf("resolved config %s", c)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Open("memory", engine.Env{}, "nope=1"); !errors.Is(err, engine.ErrBadConfig) {
		t.Errorf("unknown key: err %v", err)
	}
}

func TestBasic(t *testing.T) {
	e, clock := testEngine(t, engine.Env{}, "")
	m1 := set(t, e, "a", "one", 0)
	if m1.CAS == 0 || m1.Atime != t0 {
		t.Fatalf("stored meta %+v", m1)
	}
	if v, ok := get(t, e, "a"); !ok || v != "one" {
		t.Fatalf("get a = %q %v", v, ok)
	}
	m2 := set(t, e, "a", "two", 0)
	if m2.CAS <= m1.CAS {
		t.Fatalf("CAS did not grow: %d then %d", m1.CAS, m2.CAS)
	}
	clock.Advance(5)
	meta, v, ok, err := e.Get([]byte("a"), []byte("x:"), engine.GetTouch)
	if err != nil || !ok || string(v) != "x:two" || meta.Bits != 0 || meta.Atime != t0 {
		t.Fatalf("touching get = %+v %q %v %v", meta, v, ok, err)
	}
	meta, _, _, _ = e.Get([]byte("a"), nil, engine.GetNoValue)
	if meta.Bits != engine.BitFetched || meta.Atime != t0+5 {
		t.Fatalf("after touch meta = %+v", meta)
	}
	if ok, err := e.Delete([]byte("a")); !ok || err != nil {
		t.Fatalf("delete = %v %v", ok, err)
	}
	if ok, _ := e.Delete([]byte("a")); ok {
		t.Fatal("second delete reported a removal")
	}
	if _, ok := get(t, e, "a"); ok {
		t.Fatal("deleted key found")
	}
	if st := stat(e, "curr_items"); st != "0" {
		t.Fatalf("curr_items %s", st)
	}
	if st := stat(e, "total_items"); st != "2" {
		t.Fatalf("total_items %s", st)
	}
}

func TestExplicitCASAndMeta(t *testing.T) {
	e, clock := testEngine(t, engine.Env{}, "")
	_, m, err := e.Update([]byte("k"), &setM{value: []byte("v"), cas: 999, flags: 7})
	if err != nil || m.CAS != 999 || m.Flags != 7 {
		t.Fatalf("explicit CAS store: %+v %v", m, err)
	}
	clock.Advance(3)
	touch := funcM(func(cur *engine.Item, found bool, next *engine.Item) engine.Op {
		if !found {
			return engine.OpNone
		}
		next.Meta = cur.Meta
		next.Exptime = t0 + 100
		next.Bits |= engine.BitStale
		next.CAS = 0 // fresh
		return engine.OpMeta
	})
	op, m, err := e.Update([]byte("k"), touch)
	if err != nil || op != engine.OpMeta || m.CAS == 999 || m.CAS == 0 || m.Exptime != t0+100 || m.Flags != 7 || m.Bits != engine.BitStale {
		t.Fatalf("OpMeta: op %d meta %+v err %v", op, m, err)
	}
	got, v, ok, _ := e.Get([]byte("k"), nil, 0)
	if !ok || string(v) != "v" || got != m {
		t.Fatalf("after OpMeta get %+v %q, want %+v", got, v, m)
	}
	// The rewritten header still checks.
	sh := e.shardOf(e.hash([]byte("k")))
	_, ent := sh.find(e.mem, e.hash([]byte("k"))&tagMask, []byte("k"))
	if !recAt(e.mem, entryOff(ent)).valid(int(e.segSize)) {
		t.Fatal("record CRC invalid after OpMeta")
	}
	// OpMeta on a missing key does nothing.
	if op, _, _ := e.Update([]byte("absent"), funcM(func(cur *engine.Item, found bool, next *engine.Item) engine.Op { return engine.OpMeta })); op != engine.OpNone {
		t.Fatalf("OpMeta on absent key returned op %d", op)
	}
}

// A Mutator that stores cur.Value itself (aliasing the arena) must work.
func TestStoreAliasingArena(t *testing.T) {
	e, _ := testEngine(t, engine.Env{}, "")
	set(t, e, "k", "hello", 0)
	again := funcM(func(cur *engine.Item, found bool, next *engine.Item) engine.Op {
		next.Value = cur.Value[1:]
		next.Flags = 3
		return engine.OpStore
	})
	for range 3 {
		if _, _, err := e.Update([]byte("k"), again); err != nil {
			t.Fatal(err)
		}
	}
	if v, _ := get(t, e, "k"); v != "lo" {
		t.Fatalf("value %q, want lo", v)
	}
}

func TestKeysAndSizes(t *testing.T) {
	e, _ := testEngine(t, engine.Env{ItemSizeMax: 2 << 20}, "")
	if _, _, _, err := e.Get(nil, nil, 0); !errors.Is(err, engine.ErrBadKey) {
		t.Errorf("empty key: %v", err)
	}
	long := bytes.Repeat([]byte("k"), engine.KeyMax+1)
	if _, _, err := e.Update(long, &setM{}); !errors.Is(err, engine.ErrBadKey) {
		t.Errorf("long key: %v", err)
	}
	if _, err := e.Delete(long); !errors.Is(err, engine.ErrBadKey) {
		t.Errorf("long key delete: %v", err)
	}
	key := bytes.Repeat([]byte("k"), engine.KeyMax)
	for _, tc := range []struct {
		size int
		err  error
	}{
		{1<<20 + 1000, nil},
		{2<<20 - len(key) - 100, nil},
		{2<<20 - engine.ItemSize(len(key), 0, 0, false), nil},
		{2<<20 - engine.ItemSize(len(key), 0, 0, false) + 1, engine.ErrTooLarge},
		{3 << 20, engine.ErrTooLarge},
	} {
		val := bytes.Repeat([]byte{'x'}, tc.size)
		val[0], val[len(val)-1] = 'a', 'z'
		_, _, err := e.Update(key, &setM{value: val})
		if !errors.Is(err, tc.err) {
			t.Errorf("value of %d bytes: err %v, want %v", tc.size, err, tc.err)
			continue
		}
		if err == nil {
			if v, ok := get(t, e, string(key)); !ok || v != string(val) {
				t.Errorf("value of %d bytes did not round-trip", tc.size)
			}
		}
	}
}

func TestExpiryLazy(t *testing.T) {
	e, clock := testEngine(t, engine.Env{}, "")
	set(t, e, "soon", "v", t0+10)
	set(t, e, "never", "v", 0)
	set(t, e, "born-dead", "v", t0)
	if _, ok := get(t, e, "born-dead"); ok {
		t.Error("item with exptime == now is served")
	}
	clock.Set(t0 + 9)
	if _, ok := get(t, e, "soon"); !ok {
		t.Error("item expired early")
	}
	clock.Set(t0 + 10)
	if _, ok := get(t, e, "soon"); ok {
		t.Error("expired item is served")
	}
	if got := stat(e, "curr_items"); got != "1" {
		t.Errorf("curr_items = %s after lazy removal, want 1", got)
	}
	// As memcached's do_item_get: a lookup that meets an expired item
	// counts get_expired; expired_unfetched and reclaimed count what the
	// segment reclaim and the sweep find (memcached's LRU tail and
	// crawler).
	if got := stat(e, "get_expired"); got != "2" {
		t.Errorf("get_expired = %s, want 2", got)
	}
	if got := stat(e, "expired_unfetched"); got != "0" {
		t.Errorf("expired_unfetched = %s after lookups only, want 0", got)
	}
	// Update sees an expired key as absent and replaces it.
	set(t, e, "soon2", "v", t0+11)
	clock.Set(t0 + 20)
	var sawFound bool
	e.Update([]byte("soon2"), funcM(func(cur *engine.Item, found bool, next *engine.Item) engine.Op {
		sawFound = found
		next.Value = []byte("new")
		return engine.OpStore
	}))
	if sawFound {
		t.Error("Mutator saw an expired item as found")
	}
	if v, _ := get(t, e, "soon2"); v != "new" {
		t.Errorf("soon2 = %q", v)
	}
}

func TestExpirySweep(t *testing.T) {
	e, clock := testEngine(t, engine.Env{}, "shards=4,sweep_interval=0")
	for i := range 500 {
		exp := int64(0)
		if i%2 == 0 {
			exp = t0 + 5
		}
		set(t, e, "k"+strconv.Itoa(i), "v", exp)
	}
	clock.Set(t0 + 5)
	removed := 0
	for range 100 {
		n := e.sweep(16)
		removed += n
	}
	if removed != 250 {
		t.Errorf("sweep removed %d, want 250", removed)
	}
	if got := stat(e, "curr_items"); got != "250" {
		t.Errorf("curr_items = %s, want 250", got)
	}
	for i := range 500 {
		_, ok := get(t, e, "k"+strconv.Itoa(i))
		if ok != (i%2 == 1) {
			t.Fatalf("k%d present = %v", i, ok)
		}
	}
}

// The background goroutine removes expired items without any access.
func TestExpiryBackground(t *testing.T) {
	e, clock := testEngine(t, engine.Env{}, "shards=2,sweep_interval=1ms")
	for i := range 100 {
		set(t, e, "k"+strconv.Itoa(i), "v", t0+1)
	}
	clock.Set(t0 + 1)
	// The sweep runs every millisecond of wall time; how many pass before
	// the machine runs it does not matter, so only a hang fails the test.
	eventually(t, "the background sweep removes the expired items", func() bool {
		return stat(e, "curr_items") == "0"
	})
}

func TestFlushImmediate(t *testing.T) {
	e, clock := testEngine(t, engine.Env{}, "")
	set(t, e, "old", "v", 0)
	clock.Advance(1)
	set(t, e, "same-second", "v", 0)
	if err := e.Flush(clock.Now()); err != nil {
		t.Fatal(err)
	}
	set(t, e, "after", "v", 0)
	for key, want := range map[string]bool{"old": false, "same-second": false, "after": true} {
		if _, ok := get(t, e, key); ok != want {
			t.Errorf("%s present = %v, want %v", key, ok, want)
		}
	}
	clock.Advance(10)
	if _, ok := get(t, e, "after"); !ok {
		t.Error("item stored after the flush vanished later")
	}
	// A past-time flush is immediate too.
	e.Flush(t0 - 100)
	if _, ok := get(t, e, "after"); ok {
		t.Error("flush with a past time did not flush")
	}
}

func TestFlushDelayed(t *testing.T) {
	e, clock := testEngine(t, engine.Env{}, "")
	set(t, e, "a", "v", 0)
	e.Flush(t0 + 10)
	clock.Set(t0 + 9)
	set(t, e, "b", "v", 0)
	if _, ok := get(t, e, "a"); !ok {
		t.Fatal("delayed flush took effect early")
	}
	clock.Set(t0 + 10)
	set(t, e, "c", "v", 0)
	for key, want := range map[string]bool{"a": false, "b": false, "c": true} {
		if _, ok := get(t, e, key); ok != want {
			t.Errorf("%s present = %v, want %v", key, ok, want)
		}
	}
	// A later flush replaces a pending one ...
	set(t, e, "d", "v", 0)
	e.Flush(t0 + 100)
	e.Flush(t0 + 200)
	clock.Set(t0 + 150)
	if _, ok := get(t, e, "d"); !ok {
		t.Error("replaced pending flush still applied")
	}
	// ... but one that has happened keeps applying: "a" and "b" stay gone
	// although the current pending flush has not come yet.
	for _, key := range []string{"a", "b"} {
		if _, ok := get(t, e, key); ok {
			t.Errorf("%s revived by a later pending flush", key)
		}
	}
	clock.Set(t0 + 200)
	if _, ok := get(t, e, "d"); ok {
		t.Error("pending flush did not apply")
	}
}

func TestIterate(t *testing.T) {
	e, clock := testEngine(t, engine.Env{}, "shards=4")
	want := map[string]string{}
	for i := range 300 {
		k, v := "k"+strconv.Itoa(i), "value-"+strconv.Itoa(i)
		exp := int64(0)
		if i%10 == 0 {
			exp = t0 + 1
		} else {
			want[k] = v
		}
		set(t, e, k, v, exp)
	}
	clock.Advance(1)
	got := map[string]string{}
	err := e.Iterate(func(key []byte, it *engine.Item) bool {
		if _, dup := got[string(key)]; dup {
			t.Errorf("%s visited twice", key)
		}
		got[string(key)] = string(it.Value)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("visited %d items, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	n := 0
	e.Iterate(func([]byte, *engine.Item) bool { n++; return n < 5 })
	if n != 5 {
		t.Errorf("Iterate went on after fn returned false: %d calls", n)
	}
}

func TestClose(t *testing.T) {
	e, _ := testEngine(t, engine.Env{}, "sweep_interval=1s")
	set(t, e, "k", "v", 0)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := e.Get([]byte("k"), nil, 0); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Get: %v", err)
	}
	if _, _, err := e.Update([]byte("k"), &setM{}); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Update: %v", err)
	}
	if _, err := e.Delete([]byte("k")); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Delete: %v", err)
	}
	if err := e.Flush(0); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Flush: %v", err)
	}
	if err := e.Iterate(func([]byte, *engine.Item) bool { return true }); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Iterate: %v", err)
	}
	if err := e.SetMemoryLimit(8 << 20); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("SetMemoryLimit: %v", err)
	}
	if err := e.Close(); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
}

func TestStatsAndGroups(t *testing.T) {
	e, _ := testEngine(t, engine.Env{MemoryLimit: 8 << 20}, "")
	set(t, e, "k", "v", 0)
	st := map[string]string{}
	e.Stats(func(n, v string) { st[n] = v })
	want := map[string]string{
		"curr_items": "1", "total_items": "1", "bytes": strconv.Itoa(int(recSize(1, 1))),
		"limit_maxbytes": strconv.Itoa(8 << 20), "evictions": "0", "memory_segments_total": "8",
		"memory_segments_free": "7", "memory_segment_size": strconv.Itoa(1 << 20),
	}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("stat %s = %q, want %q", k, st[k], v)
		}
	}
	for _, g := range []string{"items", "slabs", "sizes"} {
		n := 0
		if !e.GroupStats(g, func(string, string) { n++ }) || n == 0 {
			t.Errorf("group %s: not answered", g)
		}
	}
	if e.GroupStats("conns", func(string, string) {}) {
		t.Error("unknown group answered")
	}
	e.ResetStats()
	if stat(e, "total_items") != "0" || stat(e, "curr_items") != "1" {
		t.Error("ResetStats cleared the wrong counters")
	}
}

// TestOpMetaGrowsRecord covers OpMeta giving an item an exptime or flags
// that its record has no room for: the record is written again with the
// same value, atime and frequency counter, and counted as a metadata
// update, not a store.
func TestOpMetaGrowsRecord(t *testing.T) {
	for _, tc := range []struct {
		name           string
		flags          uint32
		exptime        int64
		newFlags       uint32
		newExp         int64
		keepCAS, moved bool
	}{
		{"exptime", 0, 0, 0, t0 + 100, true, true},
		{"flags", 0, 0, 9, 0, false, true},
		{"both", 0, 0, 9, t0 + 100, true, true},
		{"exptime to none", 5, t0 + 50, 5, 0, true, false},
		{"flags to none", 5, t0 + 50, 0, t0 + 60, false, false},
		{"has room", 5, t0 + 50, 6, t0 + 70, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, clock := testEngine(t, engine.Env{MemoryLimit: 4 << 20}, "")
			key, val := []byte("k"), []byte("the value")
			_, old, err := e.Update(key, &setM{value: val, flags: tc.flags, exptime: tc.exptime})
			if err != nil {
				t.Fatal(err)
			}
			clock.Advance(3)
			e.Get(key, nil, engine.GetTouch)
			e.Get(key, nil, engine.GetTouch)
			clock.Advance(3)
			before := e.sum()
			_, ent := e.shardOf(e.hash(key)).find(e.mem, e.hash(key)&tagMask, key)
			op, meta, err := e.Update(key, funcM(func(cur *engine.Item, found bool, next *engine.Item) engine.Op {
				next.Meta = cur.Meta
				next.Flags, next.Exptime, next.Bits = tc.newFlags, tc.newExp, engine.BitStale
				next.CAS = 0
				if tc.keepCAS {
					next.CAS = cur.CAS
				}
				return engine.OpMeta
			}))
			if err != nil || op != engine.OpMeta {
				t.Fatalf("Update = %d, %v", op, err)
			}
			want := engine.Meta{Flags: tc.newFlags, Exptime: tc.newExp, CAS: old.CAS, Atime: t0 + 3, Bits: engine.BitStale}
			if !tc.keepCAS {
				want.CAS = meta.CAS
				if meta.CAS <= old.CAS {
					t.Errorf("CAS %d, want a fresh one after %d", meta.CAS, old.CAS)
				}
			}
			if meta != want {
				t.Errorf("Update meta %+v, want %+v", meta, want)
			}
			got, v, ok, err := e.Get(key, nil, 0)
			if err != nil || !ok || string(v) != string(val) || got != want {
				t.Fatalf("Get = %+v %q %v %v, want %+v %q", got, v, ok, err, want, val)
			}
			h := e.hash(key)
			sh := e.shardOf(h)
			_, nent := sh.find(e.mem, h&tagMask, key)
			if moved := nent != ent; moved != tc.moved {
				t.Errorf("record moved: %v, want %v", moved, tc.moved)
			}
			r := recAt(e.mem, entryOff(nent))
			if f := infoBits(r.info()) >> freqShift; f != 2 {
				t.Errorf("frequency counter %d after two reads, want 2", f)
			}
			if !r.valid(int(e.segSize)) {
				t.Error("record does not check")
			}
			after := e.sum()
			if after.items != 1 || after.totalItems != before.totalItems || after.bytes != r.size() {
				t.Errorf("items %d total %d bytes %d, want 1, %d, %d", after.items, after.totalItems, after.bytes, before.totalItems, r.size())
			}
			var live int64
			for i := range e.segs {
				live += e.segs[i].live.Load()
			}
			if live != r.size() {
				t.Errorf("segments hold %d live bytes, want %d", live, r.size())
			}
		})
	}
}

// TestItemSizeLimit checks that an item fits exactly when it would fit in
// memcached (engine.ItemSize): client flags cost 4 bytes, the CAS 8 unless
// the server runs with -C.
func TestItemSizeLimit(t *testing.T) {
	const max = 1 << 20
	key := []byte("key")
	for _, tc := range []struct {
		noCAS bool
		flags uint32
	}{{false, 0}, {false, 7}, {true, 0}, {true, 7}} {
		e, _ := testEngine(t, engine.Env{ItemSizeMax: max, NoCAS: tc.noCAS}, "")
		largest := max - engine.ItemSize(len(key), 0, tc.flags, tc.noCAS)
		for _, n := range []int{largest, largest + 1} {
			_, _, err := e.Update(key, &setM{value: bytes.Repeat([]byte{'v'}, n), flags: tc.flags})
			if want := n > largest; errors.Is(err, engine.ErrTooLarge) != want {
				t.Errorf("noCAS %v flags %d: %d-byte value: err %v, want too large %v", tc.noCAS, tc.flags, n, err, want)
			}
		}
	}
	if got, want := engine.ItemSize(3, 10, 0, false), 48+3+1+10+2+8; got != want {
		t.Errorf("ItemSize = %d, want %d", got, want)
	}
}

// expiredEngine returns an engine of 4 shards, without a background
// sweep, holding 4000 items that have just expired.
func expiredEngine(t *testing.T) *Engine {
	t.Helper()
	e, clock := testEngine(t, engine.Env{}, "shards=4,sweep_interval=0")
	for i := range 4000 {
		set(t, e, "k"+strconv.Itoa(i), "v", t0+5)
	}
	clock.Set(t0 + 5)
	return e
}

// TestSweepYields: the expiry sweep yields its processor after each hold
// of a shard's lock (sweepChunk probes), with no shard lock held, so that
// with one P a request woken meanwhile runs without waiting for the whole
// sweep.
func TestSweepYields(t *testing.T) {
	e := expiredEngine(t)
	yields := 0
	e.yieldHook = func() {
		yields++
		for i := range e.shards {
			if !e.shards[i].mu.TryLock() {
				t.Fatalf("the sweep yielded holding shard %d's lock", i)
			}
			e.shards[i].mu.Unlock()
		}
	}
	slots := 0
	for i := range e.shards {
		slots += len(e.shards[i].tab)
	}
	// One sweep probes every slot once, in holds of at most sweepChunk
	// probes (a removal's probe stays on its slot, so some expired items
	// are left to the next sweeps).
	removed := e.sweep(1 << 20)
	if min := slots / sweepChunk; yields < min {
		t.Errorf("the sweep yielded %d times probing %d slots, want at least %d (one per %d)", yields, slots, min, sweepChunk)
	}
	for range 10 {
		removed += e.sweep(1 << 20)
	}
	if removed != 4000 {
		t.Fatalf("the sweeps removed %d, want 4000", removed)
	}
}

// TestSweepYieldsThread: besides its P, the sweep yields its thread's
// core after each hold (osYield, sched_yield on Linux), so that with more
// Ps than cores a request's thread gets the core without waiting for the
// kernel's time slice to end.
func TestSweepYieldsThread(t *testing.T) {
	e := expiredEngine(t)
	yields := 0
	saved := osYield
	osYield = func() { yields++; saved() }
	t.Cleanup(func() { osYield = saved })
	slots := 0
	for i := range e.shards {
		slots += len(e.shards[i].tab)
	}
	e.sweep(1 << 20)
	if min := slots / sweepChunk; yields < min {
		t.Errorf("the sweep yielded its thread %d times probing %d slots, want at least %d (one per %d)", yields, slots, min, sweepChunk)
	}
}
