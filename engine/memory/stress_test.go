package memory

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
)

// stressValue is "key|writer|seq|" followed by filler derived from seq, so
// a reader can tell a torn or misplaced value from one that was written.
func stressValue(key string, w, seq, size int) []byte {
	v := fmt.Appendf(nil, "%s|%d|%d|", key, w, seq)
	for len(v) < size {
		v = append(v, byte('a'+(seq+len(v))%26))
	}
	return v
}

func checkStressValue(key string, v []byte) error {
	parts := bytes.SplitN(v, []byte("|"), 4)
	if len(parts) != 4 || string(parts[0]) != key {
		return fmt.Errorf("value %.40q does not belong to %s", v, key)
	}
	w, err1 := strconv.Atoi(string(parts[1]))
	seq, err2 := strconv.Atoi(string(parts[2]))
	if err1 != nil || err2 != nil {
		return fmt.Errorf("bad header in %.40q", v)
	}
	if want := stressValue(key, w, seq, len(v)); !bytes.Equal(v, want) {
		return fmt.Errorf("%s: torn value %.60q", key, v)
	}
	return nil
}

// incrM adds one to a decimal counter (absent counts as 0).
type incrM struct{ buf []byte }

func (m *incrM) Mutate(cur *engine.Item, found bool, next *engine.Item) engine.Op {
	n := 0
	if found {
		n, _ = strconv.Atoi(string(cur.Value))
	}
	m.buf = strconv.AppendInt(m.buf[:0], int64(n+1), 10)
	next.Value = m.buf
	return engine.OpStore
}

func runStress(t *testing.T, e *Engine, workers, ops, keys, maxSize int, counters bool) {
	var wg sync.WaitGroup
	var incrs atomic.Int64
	errc := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 99))
			inc := &incrM{}
			var dst []byte
			for seq := range ops {
				key := "key-" + strconv.Itoa(r.IntN(keys))
				switch op := r.IntN(10); {
				case op < 4:
					v := stressValue(key, w, seq, 20+r.IntN(maxSize))
					if _, _, err := e.Update([]byte(key), &setM{value: v, flags: uint32(w)}); err != nil {
						errc <- err
						return
					}
				case op < 8:
					_, v, ok, err := e.Get([]byte(key), dst[:0], engine.GetFlags(r.IntN(2)))
					dst = v
					if err != nil {
						errc <- err
						return
					}
					if ok {
						if err := checkStressValue(key, v); err != nil {
							errc <- err
							return
						}
					}
				case op < 9:
					if _, err := e.Delete([]byte(key)); err != nil {
						errc <- err
						return
					}
				default:
					if counters {
						if _, _, err := e.Update([]byte("ctr-"+strconv.Itoa(r.IntN(4))), inc); err != nil {
							errc <- err
							return
						}
						incrs.Add(1)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	verify(t, e) // index, records and accounting agree after the storm
	if counters {
		total := 0
		for i := range 4 {
			v, _ := get(t, e, "ctr-"+strconv.Itoa(i))
			n, _ := strconv.Atoi(v)
			total += n
		}
		if int64(total) != incrs.Load() {
			t.Errorf("counters sum to %d after %d increments", total, incrs.Load())
		}
	}
}

func TestStress(t *testing.T) {
	t.Run("atomic", func(t *testing.T) {
		e, _ := testEngine(t, engine.Env{}, "shards=16")
		runStress(t, e, 8, 3000, 64, 200, true)
	})
	t.Run("evicting", func(t *testing.T) {
		// Many stores of up to 8 KB through 3 MiB: reclaim runs all the
		// time, concurrently with reads and writes.
		e, _ := testEngine(t, engine.Env{MemoryLimit: 3 << 20}, "shards=16")
		runStress(t, e, 8, 2000, 2000, 8000, false)
		if statInt(t, e, "evictions") == 0 {
			t.Error("no evictions: the test did not exercise reclaim")
		}
	})
	t.Run("noevict", func(t *testing.T) {
		e, _ := testEngine(t, engine.Env{MemoryLimit: 3 << 20, NoEvict: true}, "shards=16")
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(w), 5))
				for seq := range 2000 {
					key := "key-" + strconv.Itoa(r.IntN(300))
					v := stressValue(key, w, seq, 20+r.IntN(8000))
					if _, _, err := e.Update([]byte(key), &setM{value: v}); err != nil && err != engine.ErrNoMemory {
						t.Error(err)
						return
					}
					if _, v, ok, _ := e.Get([]byte(key), nil, 0); ok {
						if err := checkStressValue(key, v); err != nil {
							t.Error(err)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		if statInt(t, e, "evictions") != 0 {
			t.Error("NoEvict evicted")
		}
	})
}

// TestIndexGrowth grows the index from its smallest tables to 200k entries
// while readers keep checking that every key already stored is found.
func TestIndexGrowth(t *testing.T) {
	const n = 200_000
	e, _ := testEngine(t, engine.Env{MemoryLimit: 64 << 20}, "shards=4")
	var stored atomic.Int64 // keys [0, stored) are in the engine
	done := make(chan struct{})
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			var key []byte
			for {
				select {
				case <-done:
					return
				default:
				}
				hi := stored.Load()
				if hi == 0 {
					continue
				}
				i := r.Int64N(hi)
				key = strconv.AppendInt(append(key[:0], 'k'), i, 10)
				if _, _, ok, err := e.Get(key, nil, engine.GetNoValue); err != nil || !ok {
					errc <- fmt.Errorf("key %d of %d stored not found (err %v)", i, hi, err)
					return
				}
			}
		}()
	}
	m := &setM{value: []byte("v")}
	var key []byte
	for i := range n {
		key = strconv.AppendInt(append(key[:0], 'k'), int64(i), 10)
		if _, _, err := e.Update(key, m); err != nil {
			t.Fatal(err)
		}
		stored.Store(int64(i + 1))
	}
	close(done)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if got := statInt(t, e, "curr_items"); got != n {
		t.Errorf("curr_items %d, want %d", got, n)
	}
	// 4 shards of 2^16 slots each: load 0.76 would grow to 2^17.
	if ib := statInt(t, e, "memory_index_bytes"); ib > 4*(1<<17)*8 {
		t.Errorf("index of %d bytes for %d entries", ib, n)
	}
}

// TestFootprint checks the per-item cost of small items: arena plus index.
func TestFootprint(t *testing.T) {
	const n = 100_000
	e, _ := testEngine(t, engine.Env{MemoryLimit: 64 << 20}, "")
	m := &setM{value: make([]byte, 100)}
	var key []byte
	for i := range n {
		key = fmt.Appendf(key[:0], "key:%011d", i) // 15 bytes
		if _, _, err := e.Update(key, m); err != nil {
			t.Fatal(err)
		}
	}
	arena := statInt(t, e, "memory_arena_bytes")
	index := statInt(t, e, "memory_index_bytes")
	items := statInt(t, e, "bytes")
	per := float64(items+index) / n
	t.Logf("%d items of 15+100 bytes: records %d, arena %d, index %d, %.1f bytes per item", n, items, arena, index, per)
	if items != n*recSize(15, 100) {
		t.Errorf("bytes = %d, want %d × %d", items, n, recSize(15, 100))
	}
	if per > 175 {
		t.Errorf("%.1f bytes per item, want at most 175", per)
	}
	// Only the write heads' unused tails are lost.
	if slack := arena - items; slack > int64(len(e.stripes))*e.segSize {
		t.Errorf("arena %d for %d bytes of records", arena, items)
	}
}
