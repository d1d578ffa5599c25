package memory

import (
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
)

func TestZeroAllocs(t *testing.T) {
	e, _ := testEngine(t, engine.Env{MemoryLimit: 4 << 20}, "")
	val := make([]byte, 100)
	m := &setM{value: val}
	hit, miss := []byte("present"), []byte("absent")
	if _, _, err := e.Update(hit, m); err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 0, 256)
	keys := make([][]byte, 4096)
	for i := range keys {
		keys[i] = []byte("key-" + strconv.Itoa(i))
		e.Update(keys[i], m) // the index reaches its steady size
	}
	var i int
	for _, tc := range []struct {
		name string
		fn   func()
	}{
		{"Get hit", func() { e.Get(hit, dst[:0], 0) }},
		{"Get hit touch", func() { e.Get(hit, dst[:0], engine.GetTouch) }},
		{"Get miss", func() { e.Get(miss, dst[:0], 0) }},
		{"Update set", func() { e.Update(hit, m) }},
		// Overwriting 4096 keys of 100 bytes cycles the 4 MiB arena:
		// reclaim is allocation-free too.
		{"Update set cycling", func() { e.Update(keys[i%len(keys)], m); i++ }},
		{"Delete miss", func() { e.Delete(miss) }},
	} {
		if n := testing.AllocsPerRun(20000, tc.fn); n != 0 {
			t.Errorf("%s: %v allocations per call", tc.name, n)
		}
	}
}

func benchEngine(b *testing.B) *Engine {
	e, err := New(engine.Env{MemoryLimit: 256 << 20}, "sweep_interval=0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	return e
}

const benchKeys = 100_000

func benchKeySet() [][]byte {
	keys := make([][]byte, benchKeys)
	for i := range keys {
		keys[i] = []byte("key:" + strconv.Itoa(1_000_000_000+i)) // 14 bytes
	}
	return keys
}

func fill(b *testing.B, e *Engine, keys [][]byte, m engine.Mutator) {
	for _, k := range keys {
		if _, _, err := e.Update(k, m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	e, keys := benchEngine(b), benchKeySet()
	fill(b, e, keys, &setM{value: make([]byte, 100)})
	dst := make([]byte, 0, 128)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e.Get(keys[i%benchKeys], dst[:0], engine.GetTouch)
		i++
	}
}

func BenchmarkSet(b *testing.B) {
	e, keys := benchEngine(b), benchKeySet()
	m := &setM{value: make([]byte, 100)}
	fill(b, e, keys, m)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e.Update(keys[i%benchKeys], m)
		i++
	}
}

func BenchmarkGetParallel(b *testing.B) {
	e, keys := benchEngine(b), benchKeySet()
	fill(b, e, keys, &setM{value: make([]byte, 100)})
	var seed atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		dst := make([]byte, 0, 128)
		i := int(seed.Add(7919))
		for pb.Next() {
			e.Get(keys[i%benchKeys], dst[:0], engine.GetTouch)
			i++
		}
	})
}

func BenchmarkSetParallel(b *testing.B) {
	e, keys := benchEngine(b), benchKeySet()
	fill(b, e, keys, &setM{value: make([]byte, 100)})
	var seed atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		m := &setM{value: make([]byte, 100)}
		i := int(seed.Add(7919))
		for pb.Next() {
			e.Update(keys[i%benchKeys], m)
			i++
		}
	})
}

// BenchmarkGetMiss looks up absent keys in a full index: the longest probe
// runs.
func BenchmarkGetMiss(b *testing.B) {
	e, keys := benchEngine(b), benchKeySet()
	fill(b, e, keys, &setM{value: make([]byte, 100)})
	miss := benchKeySet()
	for _, k := range miss {
		k[4] = 'm'
	}
	dst := make([]byte, 0, 128)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e.Get(miss[i%benchKeys], dst[:0], 0)
		i++
	}
}
