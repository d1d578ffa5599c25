package enginetest

import (
	"bytes"
	"errors"
	"maps"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mnemo-cache/mnemo/engine"
)

// testIterate covers Iterate: exactly the live items, with their metadata
// and values, stopping when fn returns false.
func testIterate(t *testing.T, s *suite) {
	t.Run("FnMayBlock", func(t *testing.T) { testIterateFnMayBlock(t, s) })

	t.Run("Empty", func(t *testing.T) {
		f := s.engine(t)
		if got := f.iterKeys(); len(got) != 0 {
			t.Errorf("Iterate on an empty engine visited %d items", len(got))
		}
	})

	t.Run("LiveOnly", func(t *testing.T) {
		f := s.engine(t)
		t0 := f.now()
		for i := range 60 {
			key := "key-" + strconv.Itoa(i)
			var exp int64
			switch {
			case i%3 == 0:
				exp = t0 + 5 // expires below
			case i%3 == 1:
				exp = t0 + 1000
			}
			f.store(key, pattern(i*13, byte(i)), uint32(i), exp)
			if i%4 == 0 {
				f.getFlags(key, engine.GetTouch)
			}
			if i%7 == 0 {
				f.e.Update([]byte(key), metaM{flags: uint32(i), exptime: exp, bits: engine.BitStale, keepCAS: true})
			}
		}
		f.store("born-expired", []byte("x"), 0, t0)
		for i := 0; i < 60; i += 5 {
			if _, err := f.e.Delete([]byte("key-" + strconv.Itoa(i))); err != nil {
				t.Fatal(err)
			}
		}
		f.clock.Set(t0 + 5)
		// Iterate first: Get may drop expired items.
		got := map[string]engine.Item{}
		if err := f.e.Iterate(func(k []byte, it *engine.Item) bool {
			if _, dup := got[string(k)]; dup {
				t.Errorf("Iterate visited %s twice", qb(k))
			}
			got[string(k)] = engine.Item{Meta: it.Meta, Value: bytes.Clone(it.Value)}
			return true
		}); err != nil {
			t.Fatal(err)
		}
		want := map[string]engine.Item{}
		for i := range 60 {
			key := "key-" + strconv.Itoa(i)
			if it, ok := f.get(key); ok {
				want[key] = it
			}
			if live := i%3 != 0 && i%5 != 0; live != (want[key].CAS != 0) {
				t.Fatalf("%s: present %v, want %v", key, !live, live)
			}
		}
		if len(got) != len(want) {
			t.Errorf("Iterate visited %d items, want the %d live ones", len(got), len(want))
		}
		for k, w := range want {
			g, ok := got[k]
			switch {
			case !ok:
				t.Errorf("Iterate missed %s", k)
			case g.Meta != w.Meta:
				t.Errorf("Iterate: %s meta %+v, Get says %+v", k, g.Meta, w.Meta)
			case !bytes.Equal(g.Value, w.Value):
				t.Errorf("Iterate: %s value %q, Get says %q", k, g.Value, w.Value)
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("Iterate visited %s, which is not live", q(k))
			}
		}
	})

	t.Run("AfterFlush", func(t *testing.T) {
		f := s.engine(t)
		for i := range 10 {
			f.set("old-"+strconv.Itoa(i), "v")
		}
		f.flush(f.now())
		want := map[string]string{}
		for i := range 3 {
			f.set("new-"+strconv.Itoa(i), "w")
			want["new-"+strconv.Itoa(i)] = "w"
		}
		if got := f.iterKeys(); !maps.Equal(got, want) {
			t.Errorf("Iterate after Flush visited %q, want %q", got, want)
		}
	})

	t.Run("Stops", func(t *testing.T) {
		f := s.engine(t)
		for i := range 20 {
			f.set("k"+strconv.Itoa(i), "v")
		}
		for _, stopAt := range []int{1, 3, 19, 20} {
			calls := 0
			if err := f.e.Iterate(func(k []byte, it *engine.Item) bool {
				calls++
				return calls < stopAt
			}); err != nil {
				t.Fatal(err)
			}
			if calls != stopAt {
				t.Errorf("fn returned false on call %d, but Iterate made %d calls", stopAt, calls)
			}
		}
	})
}

// testStats covers the curr_items and total_items statistics.
func testStats(t *testing.T, s *suite) {
	t.Run("Items", func(t *testing.T) {
		f := s.engine(t)
		for name, value := range f.stats() {
			if name == "" {
				t.Errorf("Stats: empty name (value %q)", value)
			}
		}
		check := func(what string, curr, minTotal int64) int64 {
			t.Helper()
			if got := f.statInt("curr_items"); got != curr {
				t.Errorf("%s: curr_items = %d, want %d", what, got, curr)
			}
			total := f.statInt("total_items")
			if total < minTotal {
				t.Errorf("%s: total_items = %d, want at least %d", what, total, minTotal)
			}
			return total
		}
		check("empty", 0, 0)
		for i := range 10 {
			f.set("k"+strconv.Itoa(i), "v")
		}
		total := check("10 stores", 10, 10)
		for i := range 3 {
			f.set("k"+strconv.Itoa(i), "longer value")
		}
		total = check("3 overwrites", 10, total)
		for i := range 4 {
			if ok, _ := f.e.Delete([]byte("k" + strconv.Itoa(i))); !ok {
				t.Fatalf("Delete(k%d) = false", i)
			}
		}
		f.e.Delete([]byte("absent"))
		total = check("4 deletes", 6, total)
		f.e.Update([]byte("k9"), &recordM{op: engine.OpDelete})
		f.e.Update([]byte("k8"), metaM{flags: 1})
		f.e.Update([]byte("k7"), &recordM{op: engine.OpNone})
		check("OpDelete, OpMeta, OpNone", 5, total)
	})

	t.Run("ManyKeys", func(t *testing.T) {
		f := s.engine(t)
		const n = 5000
		for i := range n {
			f.set("many:"+strconv.Itoa(i), strconv.Itoa(i*i))
		}
		for i := range n {
			f.mustHave("many:"+strconv.Itoa(i), strconv.Itoa(i*i))
		}
		if got := f.statInt("curr_items"); got != n {
			t.Errorf("curr_items = %d, want %d", got, n)
		}
		if got := len(f.iterKeys()); got != n {
			t.Errorf("Iterate visited %d items, want %d", got, n)
		}
	})
}

// testConcurrency checks Update's atomicity and that concurrent readers
// never see a torn or foreign value. Run it with -race.
func testConcurrency(t *testing.T, s *suite) {
	t.Run("AtomicIncrement", func(t *testing.T) {
		f := s.engine(t)
		const (
			workers = 8
			incs    = 250
			nkeys   = 4
		)
		var counts [nkeys]atomic.Int64
		var done atomic.Bool
		var wg, readers sync.WaitGroup
		for r := range 2 {
			readers.Go(func() {
				dst := make([]byte, 0, 32)
				for i := 0; !done.Load(); i++ {
					key := []byte("counter-" + strconv.Itoa((i+r)%nkeys))
					_, v, found, err := f.e.Get(key, dst[:0], engine.GetTouch)
					if err != nil {
						t.Errorf("Get: %v", err)
						return
					}
					if _, perr := strconv.ParseUint(string(v), 10, 64); found && perr != nil {
						t.Errorf("Get(%s) = %q, not a number", key, v)
						return
					}
				}
			})
		}
		for w := range workers {
			wg.Go(func() {
				for i := range incs {
					k := (w + i) % nkeys
					op, _, err := f.e.Update([]byte("counter-"+strconv.Itoa(k)), incrM{})
					if err != nil || op != engine.OpStore {
						t.Errorf("increment: op %d, err %v", op, err)
						return
					}
					counts[k].Add(1)
				}
			})
		}
		wg.Wait()
		done.Store(true)
		readers.Wait()
		for k := range nkeys {
			key := "counter-" + strconv.Itoa(k)
			f.mustHave(key, strconv.FormatInt(counts[k].Load(), 10))
		}
	})

	t.Run("SetGet", func(t *testing.T) {
		f := s.engine(t)
		const (
			writers = 4
			writes  = 300
			nkeys   = 16
		)
		keys := make([]string, nkeys)
		for i := range keys {
			keys[i] = "concurrent-" + strconv.Itoa(i)
		}
		var done atomic.Bool
		var wg, others sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(w), 1))
				for i := range writes {
					key := keys[rng.IntN(nkeys)]
					gen := uint32(w<<20 | i)
					m := storeM{next: engine.Item{Meta: engine.Meta{Flags: gen}, Value: taggedValue(key, gen)}}
					if _, _, err := f.e.Update([]byte(key), m); err != nil {
						t.Errorf("store: %v", err)
						return
					}
					if i%50 == 0 {
						if _, err := f.e.Delete([]byte(key)); err != nil {
							t.Errorf("Delete: %v", err)
							return
						}
					}
				}
			})
		}
		for r := range 3 {
			others.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(r), 2))
				var dst []byte
				for !done.Load() {
					key := keys[rng.IntN(nkeys)]
					flags := engine.GetFlags(0)
					if r == 0 {
						flags = engine.GetTouch
					}
					meta, v, found, err := f.e.Get([]byte(key), dst[:0], flags)
					if err != nil {
						t.Errorf("Get: %v", err)
						return
					}
					dst = v
					if found {
						if msg := checkTagged(key, meta.Flags, v); msg != "" {
							t.Errorf("Get: %s", msg)
							return
						}
					}
				}
			})
		}
		others.Go(func() {
			for !done.Load() {
				var msg string
				if err := f.e.Iterate(func(k []byte, it *engine.Item) bool {
					msg = checkTagged(string(k), it.Flags, it.Value)
					return msg == ""
				}); err != nil {
					t.Errorf("Iterate: %v", err)
					return
				}
				if msg != "" {
					t.Errorf("Iterate: %s", msg)
					return
				}
			}
		})
		wg.Wait()
		done.Store(true)
		others.Wait()
		for _, key := range keys {
			if it, ok := f.get(key); ok {
				if msg := checkTagged(key, it.Flags, it.Value); msg != "" {
					t.Error(msg)
				}
			}
		}
	})
}

// taggedValue returns a value that embeds key and gen and whose length and
// contents follow from gen, so that a reader can tell a torn or foreign
// value.
func taggedValue(key string, gen uint32) []byte {
	v := make([]byte, 0, 2048)
	v = append(v, key...)
	v = append(v, '|')
	v = strconv.AppendUint(v, uint64(gen), 10)
	v = append(v, '|')
	n := int(gen*7919) % 1500
	for i := range n {
		v = append(v, byte(i)+byte(gen))
	}
	v = append(v, '|')
	return append(v, key...)
}

// checkTagged checks a value made by taggedValue against the key it was
// read under and the flags stored with it (the gen). It returns a problem
// or "".
func checkTagged(key string, flags uint32, v []byte) string {
	want := taggedValue(key, flags)
	if !bytes.Equal(v, want) {
		return "key " + key + " (flags " + strconv.FormatUint(uint64(flags), 10) + ") holds " + qb(v) + ", want " + qb(want)
	}
	return ""
}

// testClose covers ErrClosed after Close and a second Close.
func testClose(t *testing.T, s *suite) {
	f := s.engine(t)
	f.set("k", "v")
	if err := f.e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, _, _, err := f.e.Get([]byte("k"), nil, 0); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Get after Close: %v, want ErrClosed", err)
	}
	if _, _, _, err := f.e.Get([]byte("k"), nil, engine.GetTouch); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Get(GetTouch) after Close: %v, want ErrClosed", err)
	}
	if _, _, err := f.e.Update([]byte("k"), storeM{}); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Update after Close: %v, want ErrClosed", err)
	}
	if _, err := f.e.Delete([]byte("k")); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Delete after Close: %v, want ErrClosed", err)
	}
	if err := f.e.Flush(0); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Flush after Close: %v, want ErrClosed", err)
	}
	called := false
	if err := f.e.Iterate(func([]byte, *engine.Item) bool { called = true; return true }); !errors.Is(err, engine.ErrClosed) || called {
		t.Errorf("Iterate after Close: err %v, called fn %v; want ErrClosed, false", err, called)
	}
	f.e.Stats(func(string, string) {}) // must not panic
	if err := f.e.Close(); err != nil && !errors.Is(err, engine.ErrClosed) {
		t.Errorf("second Close: %v, want nil or ErrClosed", err)
	}
}

// memItemSize is the value size the memory-pressure tests store.
const memItemSize = 4000

// memBase is the body of the memory-pressure tests' values.
var memBase = pattern(memItemSize, 9)

// memValue fills buf (memItemSize bytes) with the value stored under key
// and returns it.
func memValue(buf []byte, key string) []byte {
	copy(buf, memBase)
	copy(buf, key)
	buf[len(key)] = '|'
	return buf
}

// testMemory covers memory pressure: eviction keeps the engine within its
// limit without failing, and NoEvict makes stores fail with ErrNoMemory
// instead.
func testMemory(t *testing.T, s *suite) {
	const limit = 8 << 20
	const n = 4 * limit / memItemSize

	t.Run("Evicts", func(t *testing.T) {
		f := s.engineWith(t, engine.Env{MemoryLimit: limit})
		buf := make([]byte, memItemSize)
		f.store("hot", []byte("hot value"), 0, 0)
		for i := range n {
			key := "mem-" + strconv.Itoa(i)
			if _, _, err := f.e.Update([]byte(key), storeM{next: engine.Item{Value: memValue(buf, key)}}); err != nil {
				t.Fatalf("store %d of %d (%d bytes each, MemoryLimit %d): %v", i, n, memItemSize, limit, err)
			}
			if i%8 == 0 {
				f.clock.Advance(1)
				f.getFlags("hot", engine.GetTouch)
			}
		}
		present := 0
		for i := range n {
			key := "mem-" + strconv.Itoa(i)
			it, ok := f.get(key)
			if !ok {
				continue
			}
			if !bytes.Equal(it.Value, memValue(buf, key)) {
				t.Fatalf("%s: wrong value after eviction: %s", key, qb(it.Value))
			}
			if i >= n-32 {
				present++
			}
		}
		if present < 24 {
			t.Errorf("only %d of the 32 most recent items survived", present)
		}
		f.mustHave("hot", "hot value")
		st := f.stats()
		if curr := f.statInt("curr_items"); curr >= n {
			t.Errorf("curr_items = %d after storing %d items of %d bytes in %d bytes", curr, n, memItemSize, limit)
		}
		if v, ok := st["limit_maxbytes"]; ok && v != strconv.Itoa(limit) {
			t.Errorf("limit_maxbytes = %s, want %d", v, limit)
		}
		if v, ok := st["bytes"]; ok {
			if b, err := strconv.ParseInt(v, 10, 64); err != nil || b > limit {
				t.Errorf("bytes = %s, want a number no more than %d", v, limit)
			}
		}
	})

	t.Run("NoEvict", func(t *testing.T) {
		f := s.engineWith(t, engine.Env{MemoryLimit: limit, NoEvict: true})
		buf := make([]byte, memItemSize)
		stored := 0
		var failed string
		for i := range n {
			key := "mem-" + strconv.Itoa(i)
			_, _, err := f.e.Update([]byte(key), storeM{next: engine.Item{Value: memValue(buf, key)}})
			if errors.Is(err, engine.ErrNoMemory) {
				failed = key
				break
			}
			if err != nil {
				t.Fatalf("store %d: %v, want nil or ErrNoMemory", i, err)
			}
			stored++
		}
		if failed == "" {
			t.Fatalf("NoEvict: stored %d items of %d bytes in %d bytes without ErrNoMemory", n, memItemSize, limit)
		}
		if stored == 0 {
			t.Fatal("NoEvict: the first store failed")
		}
		f.mustMiss(failed)
		for i := range stored {
			key := "mem-" + strconv.Itoa(i)
			f.mustHave(key, string(memValue(buf, key)))
		}
		// A failed overwrite leaves the old item.
		other := bytes.Repeat([]byte("o"), memItemSize)
		_, _, err := f.e.Update([]byte("mem-0"), storeM{next: engine.Item{Value: other}})
		switch {
		case err == nil:
			f.mustHave("mem-0", string(other))
		case errors.Is(err, engine.ErrNoMemory):
			f.mustHave("mem-0", string(memValue(buf, "mem-0")))
		default:
			t.Fatalf("overwrite: %v", err)
		}
		// Flushing makes room again.
		f.flush(f.now())
		for i := range 10 {
			key := "after-flush-" + strconv.Itoa(i)
			if _, _, err := f.e.Update([]byte(key), storeM{next: engine.Item{Value: memValue(buf, key)}}); err != nil {
				t.Fatalf("store after Flush: %v", err)
			}
			f.mustHave(key, string(memValue(buf, key)))
		}
	})
}

// waitDone waits for done, failing the test if it has not come within a
// minute: a bound that only stops a hang, not a timing expectation.
func waitDone(t *testing.T, what string, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("still waiting after a minute: %s", what)
	}
}

// testIterateFnMayBlock checks the contract metadump relies on: while fn
// blocks (a client that reads its dump slowly), every other call on every
// key goes on, Close included, and Iterate then ends (ErrClosed after a
// Close) having visited each item present throughout once.
func testIterateFnMayBlock(t *testing.T, s *suite) {
	const n = 2000
	for _, closeWhileBlocked := range []bool{false, true} {
		t.Run("close="+strconv.FormatBool(closeWhileBlocked), func(t *testing.T) {
			f := s.engine(t)
			for i := range n {
				f.set("k"+strconv.Itoa(i), "v")
			}
			entered, release := make(chan struct{}), make(chan struct{})
			seen := map[string]bool{}
			iterDone := make(chan struct{})
			var iterErr error
			go func() {
				defer close(iterDone)
				first := true
				iterErr = f.e.Iterate(func(k []byte, it *engine.Item) bool {
					if seen[string(k)] {
						t.Errorf("Iterate visited %s twice", qb(k))
					}
					seen[string(k)] = true
					if first {
						first = false
						close(entered)
						<-release
					}
					return true
				})
			}()
			waitDone(t, "Iterate's first call of fn", entered)

			opsDone := make(chan struct{})
			go func() {
				defer close(opsDone)
				for i := range n {
					set := storeM{next: engine.Item{Value: []byte("w")}}
					if _, _, err := f.e.Update([]byte("new"+strconv.Itoa(i)), set); err != nil {
						t.Errorf("set new%d while fn blocks: %v", i, err)
					}
					k := []byte("k" + strconv.Itoa(i))
					if _, _, _, err := f.e.Get(k, nil, engine.GetTouch); err != nil {
						t.Errorf("get %s while fn blocks: %v", k, err)
					}
				}
				if closeWhileBlocked {
					if err := f.e.Close(); err != nil {
						t.Errorf("Close while fn blocks: %v", err)
					}
				}
			}()
			waitDone(t, "sets, gets (and Close) while Iterate's fn blocks", opsDone)
			close(release)
			waitDone(t, "Iterate", iterDone)
			switch {
			case closeWhileBlocked && !errors.Is(iterErr, engine.ErrClosed):
				t.Errorf("Iterate after a Close while fn blocked: %v, want ErrClosed", iterErr)
			case !closeWhileBlocked && iterErr != nil:
				t.Errorf("Iterate: %v", iterErr)
			case !closeWhileBlocked:
				for i := range n {
					if k := "k" + strconv.Itoa(i); !seen[k] {
						t.Errorf("Iterate missed %s, present throughout", k)
					}
				}
			}
		})
	}
}
