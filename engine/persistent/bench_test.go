package persistent

import (
	"bytes"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mnemo-cache/mnemo/engine"
)

// benchEngine opens an engine on a temp dir with the real fsync.
func benchEngine(b *testing.B, memLimit int64, config string) *Engine {
	b.Helper()
	env := engine.Env{MemoryLimit: memLimit}
	dir := b.TempDir()
	e, err := New(env, "path="+dir+","+config)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	return e
}

func benchKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = []byte("bench:key:" + strconv.Itoa(i))
	}
	return keys
}

func benchSet(b *testing.B, config string) {
	e := benchEngine(b, 64<<20, config)
	keys := benchKeys(100_000)
	val := make([]byte, 100)
	var seq atomic.Uint64
	b.SetBytes(int64(len(val)))
	b.ReportAllocs()
	b.SetParallelism(8) // several connections per core, as a server has
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		m := storeM{engine.Item{Value: val}}
		for pb.Next() {
			k := keys[seq.Add(1)%uint64(len(keys))]
			if _, _, err := e.Update(k, m); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkSetAsync measures set throughput with durability=async.
func BenchmarkSetAsync(b *testing.B) { benchSet(b, "durability=async,warmup=false") }

// BenchmarkSetSync measures set throughput with durability=sync (every
// set waits for a group-committed fsync).
func BenchmarkSetSync(b *testing.B) { benchSet(b, "durability=sync,warmup=false") }

// BenchmarkGetHit measures memory hits.
func BenchmarkGetHit(b *testing.B) {
	e := benchEngine(b, 64<<20, "warmup=false")
	keys := benchKeys(100_000)
	val := make([]byte, 100)
	for _, k := range keys {
		e.Update(k, storeM{engine.Item{Value: val}})
	}
	var seq atomic.Uint64
	b.SetBytes(int64(len(val)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		dst := make([]byte, 0, 256)
		for pb.Next() {
			k := keys[seq.Add(7919)%uint64(len(keys))]
			_, _, found, err := e.Get(k, dst[:0], engine.GetTouch)
			if err != nil || !found {
				b.Errorf("Get %s: %v, %v", k, found, err)
				return
			}
		}
	})
}

// BenchmarkReadThrough measures uniformly random gets over a data set four
// times the memory tier (32 MiB of 1 KiB values, 8 MiB of memory): most
// gets read through from disk.
func BenchmarkReadThrough(b *testing.B) {
	e := benchEngine(b, 8<<20, "warmup=false")
	keys := benchKeys(32 << 10)
	val := make([]byte, 1024)
	for _, k := range keys {
		e.Update(k, storeM{engine.Item{Value: val}})
	}
	for e.q.items.Load() > 0 {
		ch := *e.q.room.Load()
		e.q.wake()
		<-ch
	}
	reads0 := e.st.diskReads.Load()
	b.SetBytes(int64(len(val)))
	b.ReportAllocs()
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 1))
		dst := make([]byte, 0, 2048)
		for pb.Next() {
			k := keys[r.IntN(len(keys))]
			_, _, found, err := e.Get(k, dst[:0], engine.GetTouch)
			if err != nil || !found {
				b.Errorf("Get %s: %v, %v", k, found, err)
				return
			}
		}
	})
	b.ReportMetric(float64(e.st.diskReads.Load()-reads0)/float64(b.N), "diskreads/op")
}

// BenchmarkWarmup1M measures the warm-up of one million 100-byte items
// (15-byte keys) into a memory tier that holds them all: the time from
// New to the end of the warm-up. Run it on demand:
//
//	go test -run '^$' -bench Warmup1M -benchtime 1x ./engine/persistent
func BenchmarkWarmup1M(b *testing.B) {
	const n = 1_000_000
	dir := b.TempDir()
	env := engine.Env{MemoryLimit: 1 << 30}
	e, err := New(env, "path="+dir+",warmup=false")
	if err != nil {
		b.Fatal(err)
	}
	val := make([]byte, 100)
	for i := range n {
		e.Update([]byte("warm:"+strconv.Itoa(1_000_000_000+i)), storeM{engine.Item{Value: val}})
	}
	e.Close()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		e, err := New(env, "path="+dir)
		if err != nil {
			b.Fatal(err)
		}
		for e.st.warmState.Load() == warmRunning {
			time.Sleep(time.Millisecond)
		}
		d := time.Since(start)
		b.ReportMetric(d.Seconds(), "s/warmup")
		b.ReportMetric(float64(e.st.warmItems.Load()), "items")
		if got := e.st.warmItems.Load(); got != n {
			b.Errorf("warm-up loaded %d items, want %d (state %s)", got, n, warmNames[e.st.warmState.Load()])
		}
		b.StopTimer()
		e.Close()
		b.StartTimer()
	}
}

// benchDeleted reads from a store of n keys of which every 64th is live
// and the others were deleted, one by one (ranges false) or as the
// sweep deletes runs of dead keys, one range deletion per run (true):
// the cost of the range deletions' fragments on reads. Half the reads
// are of live keys, half of deleted ones.
func benchDeleted(b *testing.B, ranges bool) {
	const n, every = 128 << 10, 64
	dir := b.TempDir()
	log := slog.New(slog.DiscardHandler)
	p, err := openPebbleSized(dir, 16<<20, 0, log, newPebbleEvents(log), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	key := func(i int) []byte { return []byte("dexp:" + strconv.Itoa(1_000_000+i)) }
	val := make([]byte, 100)
	var ops []kvOp
	for i := range n {
		ops = append(ops, kvOp{Key: key(i), Value: val})
	}
	if err := p.Commit(ops, false); err != nil {
		b.Fatal(err)
	}
	ops = ops[:0]
	for i := range n {
		switch {
		case i%every == 0:
		case !ranges:
			ops = append(ops, kvOp{Key: key(i), Delete: true})
		case i%every == 1:
			ops = append(ops, kvOp{Key: key(i), End: append(key(i+every-2), 0), Delete: true})
		}
		if len(ops) >= 4096 || i == n-1 {
			if err := p.Commit(ops, false); err != nil {
				b.Fatal(err)
			}
			ops = ops[:0]
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	var dst []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := r.IntN(n/every) * every
		if i%2 == 1 {
			j += 1 + r.IntN(every-1)
		}
		var found bool
		dst, found, err = p.Get(key(j), dst[:0])
		if err != nil || found != (j%every == 0) {
			b.Fatalf("Get %d: found %v, %v", j, found, err)
		}
	}
}

// BenchmarkReadPointDeleted and BenchmarkReadRangeDeleted: see
// benchDeleted.
func BenchmarkReadPointDeleted(b *testing.B) { benchDeleted(b, false) }
func BenchmarkReadRangeDeleted(b *testing.B) { benchDeleted(b, true) }

// BenchmarkScan: a full scan of 200k entries of 100-byte values (a
// warm-up's or a metadump's pass over the disk), per entry.
func BenchmarkScan(b *testing.B) {
	e, f := openAt(b, b.TempDir(), engine.Env{}, "durability=sync,warmup=false,sweep_interval=0")
	defer e.Close()
	p := f.kv.(*pebbleKV)
	const n = 200000
	val := bytes.Repeat([]byte("v"), 100)
	for i := 0; i < n; i += 1000 {
		ops := make([]kvOp, 0, 1000)
		for j := i; j < i+1000; j++ {
			ops = append(ops, kvOp{Key: []byte(fmt.Sprintf("s%08d", j)), Value: val})
		}
		if err := p.Commit(ops, false); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.db.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		c := 0
		if err := p.Scan([]byte("s"), []byte("t"), func(k, v []byte) bool { c += len(v); return true }); err != nil || c != n*100 {
			b.Fatal(err, c)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
}
