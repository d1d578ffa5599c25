package persistent

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mnemo-cache/mnemo/engine"
)

// slowKV commits at a fixed rate (a sleep of the batch's bytes over
// bytesPerSec, then a commit without fsync): a disk slower than the
// writers. It records the longest commit.
type slowKV struct {
	kv
	bytesPerSec float64
	mu          sync.Mutex
	longest     time.Duration
}

func (s *slowKV) Commit(ops []kvOp, sync bool) error {
	start := time.Now()
	n := 0
	for _, op := range ops {
		n += len(op.Key) + len(op.Value)
	}
	time.Sleep(time.Duration(float64(n) / s.bytesPerSec * float64(time.Second)))
	err := s.kv.Commit(ops, false)
	s.mu.Lock()
	s.longest = max(s.longest, time.Since(start))
	s.mu.Unlock()
	return err
}

// TestLagBoundQueued: async writes of 32 KB values far faster than a
// 16 MB/s disk, with a queue that holds a second of that disk's work. No
// write waits for the disk longer than the lag bound (lagFactor
// intervals) plus one commit: writers are held back while what is
// queued could not be committed, at the measured drain rate, before the
// oldest write not yet on disk passes the bound. The test allows one
// interval more for the flusher's own scheduling; the interval is long
// (200 ms) so that a busy machine's scheduling delays stay well inside
// it. Measured: lag_max 1.0-1.1 s against a bound of about 1.4 s (with
// -race and a CPU hog beside it); before, writers waited only once the
// oldest write was already that old, with the queue full, and it then
// waited for the whole queue: 1.64-1.77 s here.
func TestLagBoundQueued(t *testing.T) {
	const (
		interval = 200 * time.Millisecond
		size     = 32 << 10
		writers  = 8
		perW     = 150 // 39 MB: about 2.5 s of the slow disk
	)
	x := newFx(t, engine.Env{MemoryLimit: 256 << 20},
		"warmup=false,sweep_interval=0,interval="+interval.String()+",queue="+strconv.Itoa(16<<20))
	slow := &slowKV{kv: x.f.kv, bytesPerSec: 16e6}
	x.e.kvmu.Lock()
	x.f.kv = slow
	x.e.kvmu.Unlock()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perW {
				k := "lag:" + strconv.Itoa(w*perW+i)
				if _, _, err := x.e.Update([]byte(k), storeM{engine.Item{Value: value(i, size)}}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	x.flushQueue()
	lagMax := time.Duration(x.statInt("persistent_queue_lag_max_us")) * time.Microsecond
	slow.mu.Lock()
	longest := slow.longest
	slow.mu.Unlock()
	bound := lagFactor*interval + longest + interval
	t.Logf("lag_max %v, longest commit %v, bound %v; %d writes waited for the lag bound, %d for a full queue",
		lagMax, longest, bound, x.statInt("persistent_queue_lag_waits"), x.statInt("persistent_queue_full_waits"))
	if lagMax > bound {
		t.Errorf("a write waited %v for the disk; the bound is %v (%d intervals of %v, plus the longest commit %v and an interval)",
			lagMax, bound, lagFactor, interval, longest)
	}
	if x.statInt("persistent_queue_lag_waits") == 0 {
		t.Error("no writer waited for the lag bound: the disk was not slower than the writers")
	}
	for i := 0; i < writers*perW; i += 97 {
		x.mustHave("lag:"+strconv.Itoa(i), string(value(i%perW, size)))
	}
}
