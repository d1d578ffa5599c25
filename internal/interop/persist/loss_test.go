package persist

import (
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/mnemo-cache/mnemo/internal/testserver"
)

// TestAsyncLossWindow measures what a SIGKILL loses in durability=async
// under heavy writes, and checks it against the engine's guarantee as
// events, not times. Counter writers each set their own key to 1, 2,
// 3, ... (one write in flight at a time) and note when each value was
// acknowledged, while 12 bulk writers set 4 KB values as fast as they can.
// Once the bulk writers have made MNEMO_LOSS_WRITES sets (default
// 20,000), the test takes a checkpoint of the counters, waits for two
// full commits (fullCommits), kills the server, starts it again and
// reads the counters: the newest value on disk must be at least the
// checkpoint's, and at most the last one sent. The loss of a kill is the
// time from the acknowledgement of the oldest lost value to the kill.
//
// MNEMO_LOSS_VALUE sets the bulk values' size (default 4096);
// MNEMO_LOSS_KILLS (default 1) repeats it; MNEMO_LOSS_BIN runs another
// mnemo binary (to measure an older build the same way).
func TestAsyncLossWindow(t *testing.T) {
	kills := envInt("MNEMO_LOSS_KILLS", 1)
	writes := envInt("MNEMO_LOSS_WRITES", 20000)
	size := envInt("MNEMO_LOSS_VALUE", 4096)
	if bin := os.Getenv("MNEMO_LOSS_BIN"); bin != "" {
		old := mnemoBin
		mnemoBin = bin
		defer func() { mnemoBin = old }()
	}
	var windows []time.Duration
	for k := range kills {
		w := lossRun(t, t.TempDir(), writes, size)
		t.Logf("kill %d: lost the last %v of acknowledged writes", k+1, w)
		windows = append(windows, w)
	}
	slices.Sort(windows)
	t.Logf("durability=async, %d kills under heavy writes: loss window median %v, max %v",
		len(windows), windows[len(windows)/2], windows[len(windows)-1])
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// lossRun is one kill of TestAsyncLossWindow; it returns the loss.
func lossRun(t *testing.T, dir string, writes, size int) time.Duration {
	const counters, bulk = 4, 12
	s := start(t, dir, "durability=async", "-m", "256")
	var (
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		bulkN   atomic.Int64
		mu      sync.Mutex
		acked   [counters][]time.Time // acked[w][i-1]: when value i was acknowledged
		sent    [counters]int
		enough  = make(chan struct{})
		reached sync.Once
	)
	for w := range counters {
		c := s.client()
		key := "seq-" + strconv.Itoa(w)
		wg.Go(func() {
			for i := 1; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				sent[w] = i
				mu.Unlock()
				if c.Set(&memcache.Item{Key: key, Value: []byte(strconv.Itoa(i))}) != nil {
					return // killed
				}
				now := time.Now()
				mu.Lock()
				acked[w] = append(acked[w], now)
				mu.Unlock()
			}
		})
	}
	for b := range bulk {
		c := s.client()
		rng := rand.New(rand.NewPCG(uint64(b), 1))
		val := make([]byte, size)
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if c.Set(&memcache.Item{Key: "bulk-" + strconv.Itoa(rng.IntN(100000)), Value: val}) != nil {
					return
				}
				if bulkN.Add(1) >= int64(writes) {
					reached.Do(func() { close(enough) })
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-enough:
	case <-done:
		t.Fatalf("the writers stopped early; output:\n%s", s.Out.String())
	}
	var check [counters]int
	mu.Lock()
	for w := range counters {
		check[w] = len(acked[w])
	}
	mu.Unlock()
	st := dial(t, s.Addr)
	c0 := fullCommits(t, st)
	testserver.Eventually(t, "two full commits after the checkpoint", func() bool { return fullCommits(t, st) >= c0+2 })
	before := stats(t, st)
	killT := time.Now()
	s.kill()
	close(stop)
	<-done
	t.Logf("before the kill: %d bulk sets, persistent_queue_bytes %s, lag %s us, lag_max %s us, last commit %s us, commits %s (%s capped)",
		bulkN.Load(), before["persistent_queue_bytes"], before["persistent_queue_lag_us"], before["persistent_queue_lag_max_us"],
		before["persistent_commit_last_us"], before["persistent_commits"], before["persistent_commits_capped"])

	s2 := start(t, dir, "durability=async", "-m", "256")
	c := s2.client()
	var loss time.Duration
	for w := range counters {
		got := 0
		it, err := c.Get("seq-" + strconv.Itoa(w))
		if err == nil {
			got, _ = strconv.Atoi(string(it.Value))
		} else if err != memcache.ErrCacheMiss {
			t.Fatalf("get seq-%d after restart: %v", w, err)
		}
		if got < check[w] {
			t.Errorf("seq-%d: %d on disk, but %d was acknowledged before a checkpoint followed by two commits", w, got, check[w])
		}
		if got > sent[w] {
			t.Errorf("seq-%d: %d on disk, never sent (last %d)", w, got, sent[w])
		}
		if got < len(acked[w]) { // value got+1 was acknowledged and lost
			loss = max(loss, killT.Sub(acked[w][got]))
		}
	}
	s2.stop()
	return loss
}
