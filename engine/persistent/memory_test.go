package persistent

import (
	"runtime"
	"strconv"

	"github.com/cockroachdb/pebble/v2"
	"sync"
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
)

// capKV records, for each commit, its size as Pebble counts it for its
// memtable (commitSize's formula applied to the ops as committed, index
// entries included), how many stripes it held, and the queue's bytes at
// that moment.
type capKV struct {
	kv
	e         *Engine
	mu        sync.Mutex
	commits   int
	largest   int64 // the largest commit of more than one stripe
	queueMost int64 // the most queue bytes seen at a commit
}

func (c *capKV) Commit(ops []kvOp, sync bool) error {
	var size int64
	stripes := map[int]bool{}
	for _, op := range ops {
		size += int64(len(op.Key) + len(op.Value) + memtableEntryOverhead)
		if len(op.Key) > 0 && op.Key[0] == prefixData {
			stripes[c.e.stripeIndex(op.Key[1:])] = true
		}
	}
	c.mu.Lock()
	c.commits++
	if len(stripes) > 1 {
		c.largest = max(c.largest, size)
	}
	c.queueMost = max(c.queueMost, c.e.q.bytes.Load())
	c.mu.Unlock()
	return c.kv.Commit(ops, false)
}

// TestWriteCaps: under writes far faster than the flusher commits (an
// interval of an hour: only a full queue starts a round), no async commit
// of more than one stripe passes maxCommit (as Pebble counts a batch for
// its memtable, so no commit becomes a "flushable batch" that Pebble
// keeps whole until it is flushed), with and without the disk budget's
// index entries, and the queue never holds more than queue= plus one
// write per writer. Every write reaches the disk.
func TestWriteCaps(t *testing.T) {
	for _, tc := range []struct{ name, config string }{
		{"plain", ""},
		{"budget", ",disk_size=1g"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const queueLimit = 4 << 20
			x := newFx(t, engine.Env{MemoryLimit: 256 << 20}, "warmup=false,sweep_interval=0,interval=1h,queue="+strconv.Itoa(queueLimit)+tc.config)
			c := &capKV{kv: x.f.kv, e: x.e}
			x.e.kvmu.Lock()
			x.f.kv = c
			x.e.kvmu.Unlock()
			const writers, perWriter, size = 8, 1500, 2000 // 24 MB: 6 queues' worth
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for i := range perWriter {
						k := strconv.Itoa(w*perWriter + i)
						if _, _, err := x.e.Update([]byte("cap:"+k), storeM{engine.Item{Value: value(i, size)}}); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			x.flushQueue()
			c.mu.Lock()
			commits, largest, queueMost := c.commits, c.largest, c.queueMost
			c.mu.Unlock()
			if largest > x.e.q.maxCommit {
				t.Errorf("a commit of %d bytes (Pebble's count); the cap is %d", largest, x.e.q.maxCommit)
			}
			if commits < 24<<20/int(x.e.q.maxCommit) {
				t.Errorf("%d commits for 24 MB with a cap of %d bytes", commits, x.e.q.maxCommit)
			}
			entry := int64(len("cap:") + 5 + recHdrSize + size + entryOverhead)
			if queueMost > queueLimit+writers*entry {
				t.Errorf("the queue held %d bytes; its bound is %d plus one write per writer (%d)", queueMost, queueLimit, writers*entry)
			}
			if cap(x.e.q.keys) > 4*int(x.e.q.maxCommit) {
				t.Errorf("the flusher keeps a key buffer of %d bytes", cap(x.e.q.keys))
			}
			x.reopen()
			for i := range writers * perWriter {
				x.mustHave("cap:"+strconv.Itoa(i), string(value(i%perWriter, size)))
			}
		})
	}
}

// TestCommitFitsMemtable: a batch of maxCommitFor(MemTableSize) bytes
// (commitSize's count) is applied to Pebble's memtable, not queued whole
// as a memtable of its own (a "flushable batch", whose buffer Pebble
// drops from the Batch at commit, which is how the test tells); a batch
// of a memtable's size is (so the check can tell the two apart). It
// fails if Pebble's accounting per entry grows past
// memtableEntryOverhead.
func TestCommitFitsMemtable(t *testing.T) {
	for _, diskSize := range []int64{0, 16 << 20} {
		m := memTableSizeFor(diskSize)
		p, err := openPebbleSized(t.TempDir(), 1<<20, diskSize, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		var q queue
		// flushable commits a batch of at most limit commit bytes and
		// reports whether Pebble took it as a flushable batch.
		flushable := func(prefix string, limit int64) bool {
			b := p.db.NewBatch()
			defer b.Close()
			var size int64
			for i := 0; ; i++ {
				key := []byte(prefix + strconv.Itoa(i))
				rec := value(i, 100)
				n := q.commitSize(key, rec)
				if size+n > limit {
					break
				}
				size += n
				if err := b.Set(append([]byte{prefixData}, key...), rec, nil); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Commit(pebble.NoSync); err != nil {
				t.Fatal(err)
			}
			return len(b.Repr()) <= 12 // the header alone: Pebble took the data
		}
		if flushable("fit:", maxCommitFor(m)) {
			t.Errorf("memtables of %d bytes: a batch of maxCommit (%d) bytes was queued as a flushable batch", m, maxCommitFor(m))
		}
		if !flushable("big:", int64(m)) {
			t.Errorf("memtables of %d bytes: a batch of a memtable's size was applied to the memtable (the check cannot see a flushable batch)", m)
		}
		p.Close()
	}
}

// TestHeapRelease: after a write burst of at least releaseAfter commit
// bytes, the first idle round gives the heap back to the OS, once.
func TestHeapRelease(t *testing.T) {
	x := newFx(t, engine.Env{MemoryLimit: 64 << 20}, "warmup=false,sweep_interval=0,interval=5ms")
	x.f.noSync = true
	n := releaseAfter/(2000+memtableEntryOverhead) + 100
	for i := range n {
		x.store("rel:"+strconv.Itoa(i), value(i, 2000), 0, 0)
	}
	x.eventually("a heap release after the burst", func() bool { return x.statInt("persistent_heap_releases") >= 1 })
	x.set("one", "more")
	x.flushQueue()
	if got := x.statInt("persistent_heap_releases"); got != 1 {
		t.Errorf("%d heap releases after one burst and one small write", got)
	}
}

// TestSyncGather: writers made runnable just before a sync round is
// collected join it: gather yields until they have queued their writes.
// With one processor the writers cannot run before the test's goroutine
// yields, so without gather none of them would have queued.
func TestSyncGather(t *testing.T) {
	x := newFx(t, engine.Env{MemoryLimit: 64 << 20}, "warmup=false,sweep_interval=0,durability=sync")
	x.f.noSync = true
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const writers = 16
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			<-start
			if _, _, err := x.e.Update([]byte("gather:"+strconv.Itoa(w)), storeM{engine.Item{Value: []byte("v")}}); err != nil {
				t.Error(err)
			}
		})
	}
	// Let every writer reach <-start: with one processor they ran while
	// this goroutine was blocked only if it yields.
	for range 100 {
		runtime.Gosched()
	}
	queued := x.e.st.queued.Load()
	close(start)
	x.e.q.gather()
	if got := x.e.st.queued.Load() - queued; got != writers {
		t.Errorf("%d of %d ready writers queued their writes by the end of gather", got, writers)
	}
	wg.Wait()
	for w := range writers {
		x.mustHave("gather:"+strconv.Itoa(w), "v")
	}
}
