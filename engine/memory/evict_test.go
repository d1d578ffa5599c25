package memory

import (
	"bytes"
	"errors"
	"strconv"
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
)

func value(key string, size int) []byte {
	v := bytes.Repeat([]byte{'.'}, size)
	copy(v, key)
	return v
}

func statInt(t *testing.T, e *Engine, name string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(stat(e, name), 10, 64)
	if err != nil {
		t.Fatalf("stat %s: %v", name, err)
	}
	return n
}

func TestEviction(t *testing.T) {
	const limit = 4 << 20
	e, _ := testEngine(t, engine.Env{MemoryLimit: limit}, "")
	const n, size = 20000, 1000 // ~20 MB through 4 MiB
	hot := []byte("hot")
	set(t, e, "hot", "hot value", 0)
	for i := range n {
		k := "k" + strconv.Itoa(i)
		if _, _, err := e.Update([]byte(k), &setM{value: value(k, size)}); err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
		if i%100 == 0 {
			if _, _, ok, _ := e.Get(hot, nil, engine.GetTouch); !ok {
				t.Fatalf("hot item evicted at store %d", i)
			}
		}
		if i%1000 == 0 {
			if arena := statInt(t, e, "memory_arena_bytes"); arena > limit {
				t.Fatalf("arena %d bytes over the %d limit", arena, limit)
			}
		}
	}
	// Everything found is intact; the most recent items survive.
	recent := 0
	for i := range n {
		k := "k" + strconv.Itoa(i)
		v, ok := get(t, e, k)
		if ok && v != string(value(k, size)) {
			t.Fatalf("%s: corrupt value", k)
		}
		if ok && i >= n-500 {
			recent++
		}
	}
	if recent < 490 {
		t.Errorf("only %d of the 500 newest items survived", recent)
	}
	items, ev := statInt(t, e, "curr_items"), statInt(t, e, "evictions")
	if items+ev != n+1 {
		t.Errorf("curr_items %d + evictions %d != %d stored", items, ev, n+1)
	}
	if statInt(t, e, "evicted_unfetched") != ev {
		t.Errorf("evicted_unfetched %d, want all %d evictions (none was read)", statInt(t, e, "evicted_unfetched"), ev)
	}
	if statInt(t, e, "memory_reinserted") == 0 {
		t.Error("the hot item was never reinserted")
	}
	if b := statInt(t, e, "bytes"); b > limit || b < (items-1)*recSize(2, size) {
		t.Errorf("bytes = %d for %d items", b, items)
	}
}

// Overwrites leave dead records; reclaim frees whole dead segments without
// evicting the live set.
func TestOverwriteReclaim(t *testing.T) {
	e, _ := testEngine(t, engine.Env{MemoryLimit: 4 << 20}, "")
	for round := range 50 {
		for i := range 500 {
			k := "k" + strconv.Itoa(i)
			v := value(k+"/"+strconv.Itoa(round), 1000)
			if _, _, err := e.Update([]byte(k), &setM{value: v}); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
	if ev := statInt(t, e, "evictions"); ev != 0 {
		t.Errorf("%d evictions for a 0.5 MB live set in 4 MiB", ev)
	}
	for i := range 500 {
		k := "k" + strconv.Itoa(i)
		if v, ok := get(t, e, k); !ok || v != string(value(k+"/49", 1000)) {
			t.Fatalf("%s lost or stale", k)
		}
	}
}

func TestNoEvict(t *testing.T) {
	e, clock := testEngine(t, engine.Env{MemoryLimit: 4 << 20, NoEvict: true}, "")
	stored := 0
	for i := 0; ; i++ {
		k := "k" + strconv.Itoa(i)
		_, _, err := e.Update([]byte(k), &setM{value: value(k, 1000)})
		if errors.Is(err, engine.ErrNoMemory) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		stored++
		if i > 10000 {
			t.Fatal("NoEvict never refused a store")
		}
	}
	if stored < 2500 { // 4 segments, one spare: at least 3 MiB of items
		t.Errorf("only %d items stored before ErrNoMemory", stored)
	}
	for i := range stored {
		k := "k" + strconv.Itoa(i)
		if v, ok := get(t, e, k); !ok || v != string(value(k, 1000)) {
			t.Fatalf("%s lost under NoEvict", k)
		}
	}
	if statInt(t, e, "evictions") != 0 {
		t.Error("NoEvict evicted")
	}
	// Deleting makes room: compaction reuses it.
	for i := 0; i < stored; i += 2 {
		e.Delete([]byte("k" + strconv.Itoa(i)))
	}
	for i := range stored / 3 {
		k := "new" + strconv.Itoa(i)
		if _, _, err := e.Update([]byte(k), &setM{value: value(k, 1000)}); err != nil {
			t.Fatalf("store %d after deleting half: %v", i, err)
		}
	}
	for i := 1; i < stored; i += 2 {
		k := "k" + strconv.Itoa(i)
		if v, ok := get(t, e, k); !ok || v != string(value(k, 1000)) {
			t.Fatalf("%s lost by compaction", k)
		}
	}
	// Expired items make room too (found by a full sweep).
	e2, clock2 := testEngine(t, engine.Env{MemoryLimit: 2 << 20, NoEvict: true}, "")
	_ = clock
	for i := 0; ; i++ {
		k := "e" + strconv.Itoa(i)
		if _, _, err := e2.Update([]byte(k), &setM{value: value(k, 1000), exptime: t0 + 5}); err != nil {
			break
		}
	}
	clock2.Set(t0 + 5)
	if _, _, err := e2.Update([]byte("fresh"), &setM{value: value("fresh", 1000)}); err != nil {
		t.Errorf("store after everything expired: %v", err)
	}
}

func TestSetMemoryLimit(t *testing.T) {
	e, _ := testEngine(t, engine.Env{MemoryLimit: 4 << 20}, "reserve=16777216")
	fill := func(prefix string) {
		for i := range 12000 {
			k := prefix + strconv.Itoa(i)
			if _, _, err := e.Update([]byte(k), &setM{value: value(k, 1000)}); err != nil {
				t.Fatalf("store: %v", err)
			}
		}
	}
	fill("a")
	if got := statInt(t, e, "memory_arena_bytes"); got > 4<<20 {
		t.Fatalf("arena %d over 4 MiB", got)
	}
	if err := e.SetMemoryLimit(12 << 20); err != nil {
		t.Fatal(err)
	}
	fill("b")
	if got := statInt(t, e, "memory_segments_total"); got != 12 {
		t.Errorf("segments after growing to 12 MiB: %d", got)
	}
	if got := statInt(t, e, "curr_items"); got < 9000 {
		t.Errorf("only %d items in 12 MiB", got)
	}
	if err := e.SetMemoryLimit(3 << 20); err != nil {
		t.Fatal(err)
	}
	fill("c")
	if got := statInt(t, e, "memory_segments_total"); got != 3 {
		t.Errorf("segments after shrinking to 3 MiB and refilling: %d", got)
	}
	if got := statInt(t, e, "bytes"); got > 3<<20 {
		t.Errorf("bytes %d over the 3 MiB limit", got)
	}
	if got := stat(e, "limit_maxbytes"); got != strconv.Itoa(3<<20) {
		t.Errorf("limit_maxbytes %s", got)
	}
	if err := e.SetMemoryLimit(32 << 20); err == nil {
		t.Error("growing past the reserve succeeded")
	}
	for i := 11900; i < 12000; i++ {
		k := "c" + strconv.Itoa(i)
		if v, ok := get(t, e, k); !ok || v != string(value(k, 1000)) {
			t.Fatalf("%s missing after shrink", k)
		}
	}
}
