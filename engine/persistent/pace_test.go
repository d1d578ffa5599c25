package persistent

import (
	"context"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mnemo-cache/mnemo/engine"
)

// diskCount counts the items on disk and the dead ones among them at the
// engine's clock.
func (x *fx) diskCount() (all, dead int) {
	x.t.Helper()
	now := x.clock.Now()
	var m engine.Meta
	err := x.f.kv.Scan(dataLower, dataUpper, func(k, v []byte) bool {
		all++
		if recordMeta(v, &m) != nil || !x.e.alive(&m, now) {
			dead++
		}
		return true
	})
	if err != nil {
		x.t.Fatal(err)
	}
	return all, dead
}

// simulateTTL writes TTL'd items (ttl seconds) at rate items per second
// of virtual time while a sweep paced by p runs, for secs seconds of
// virtual time: before each step the virtual time advances by the wait
// the pacer asked for after the previous one, and the writes of that
// time are made and committed. adapt false keeps the pace fixed (the old
// sweep). Nothing depends on the machine's speed: time is virtual, the
// figures are counters. It returns the dead items on disk at the end.
func simulateTTL(x *fx, p *pacer, rate float64, ttl int64, secs float64, adapt bool) (dead int) {
	x.t.Helper()
	start := x.clock.Now()
	var (
		vt      time.Duration // virtual time since start
		written int
		last    = x.e.st.ttlWrites.Load()
	)
	wait := time.Duration(0)
	for vt.Seconds() < secs {
		n := p.step()
		vt += wait
		x.clock.Set(start + int64(vt/time.Second))
		for ; float64(written) < rate*vt.Seconds(); written++ {
			x.store("t"+strconv.Itoa(written), []byte("v"), 0, x.clock.Now()+ttl)
		}
		x.flushQueue()
		seen, found, _ := x.e.sweep(n)
		x.flushQueue()
		ttlw := x.e.st.ttlWrites.Load()
		if adapt {
			p.observe(seen, found, wait, ttlw-last, false)
		}
		last = ttlw
		wait = p.wait(n)
	}
	_, dead = x.diskCount()
	return dead
}

// TestSweepKeepsUp writes TTL'd items at three times the configured
// sweep pace (sweep_batch per sweep_interval). The old fixed pace falls
// behind (dead items pile up on disk without limit); the adaptive pace
// keeps the dead items below the live ones, and once the writes stop and
// everything has expired, one pass leaves nothing dead: no item skipped.
func TestSweepKeepsUp(t *testing.T) {
	const (
		base = 1000 // items/s: the configured pace
		rate = 3 * base
		ttl  = 2 // seconds: about rate*ttl = 6000 items live
		secs = 20
	)
	cfg := Config{SweepBatch: base, SweepInterval: time.Second, Queue: 16 << 20}

	old := newFx(t, engine.Env{}, "warmup=false,sweep_interval=0")
	oldDead := simulateTTL(old, newPacer(&cfg), rate, ttl, secs, false)

	x := newFx(t, engine.Env{}, "warmup=false,sweep_interval=0")
	p := newPacer(&cfg)
	dead := simulateTTL(x, p, rate, ttl, secs, true)
	live := rate * ttl
	t.Logf("after %ds of %d TTL'd writes/s: %d dead on disk at the fixed pace of %d/s, %d at the adaptive pace (now %.0f/s, floor %.0f/s)",
		secs, rate, oldDead, base, dead, p.rate, p.floor)
	if oldDead < 4*live {
		t.Errorf("the fixed pace left only %d dead items: the test does not load the sweep beyond it", oldDead)
	}
	if dead > live {
		t.Errorf("the adaptive sweep left %d dead items on disk, more than the %d live ones", dead, live)
	}
	if p.floor < 2*rate {
		t.Errorf("pace floor %.0f/s does not follow %d TTL'd writes/s", p.floor, rate)
	}
	if x.statInt("persistent_sweep_removed") < int64(rate*(secs-ttl)-live) {
		t.Errorf("persistent_sweep_removed = %d", x.statInt("persistent_sweep_removed"))
	}

	// Everything expires: the next full pass leaves nothing dead.
	x.clock.Advance(ttl + 1)
	passes := x.statInt("persistent_sweep_passes")
	for x.statInt("persistent_sweep_passes") < passes+2 {
		seen, found, _ := x.e.sweep(p.step())
		x.flushQueue()
		p.observe(seen, found, p.period, 0, false)
	}
	if all, dead := x.diskCount(); all != 0 || dead != 0 {
		t.Errorf("%d items (%d dead) on disk after a full pass with everything expired", all, dead)
	}
}

// TestPacer checks the pace's rules: mostly dead steps speed it up to
// maxFactor times the base, steps that find little slow it down to the
// floor, pressure halves it below the base, and TTL'd writes raise the
// floor.
func TestPacer(t *testing.T) {
	cfg := Config{SweepBatch: 10000, SweepInterval: time.Second, Queue: 16 << 20}
	p := newPacer(&cfg)
	if p.rate != 10000 || p.step() != 1000 || p.wait(p.step()) != 100*time.Millisecond {
		t.Fatalf("start: pace %.0f, step %d, wait %v; want 10000/s, 1000 per 100ms", p.rate, p.step(), p.wait(p.step()))
	}
	for range 20 {
		p.observe(1000, 900, 100*time.Millisecond, 0, false)
	}
	if p.rate != 10000*maxFactor {
		t.Errorf("pace %.0f after mostly dead steps, want %d", p.rate, 10000*maxFactor)
	}
	if p.step() > p.maxStep || p.maxStep > int(cfg.Queue/4/(entryOverhead+32)) {
		t.Errorf("step %d (max %d): more deletions than a quarter of the queue holds", p.step(), p.maxStep)
	}
	p.observe(1000, 10, time.Second, 0, false)
	if p.rate != 10000*maxFactor/2 {
		t.Errorf("pace %.0f after a second of a step with 1%% dead, want it halved", p.rate)
	}
	for range 10 {
		p.observe(1000, 0, 100*time.Millisecond, 0, false)
	}
	if math.Abs(p.rate-10000*maxFactor/4) > 1 {
		t.Errorf("pace %.0f after another second of steps with nothing dead, want it halved again", p.rate)
	}
	for range 100 {
		p.observe(1000, 0, 100*time.Millisecond, 0, false)
	}
	if p.rate != 10000 {
		t.Errorf("pace %.0f after steps with nothing dead, want the base 10000", p.rate)
	}
	for range 10 {
		p.observe(1000, 0, 100*time.Millisecond, 0, true)
	}
	if p.rate != 2500 {
		t.Errorf("pace %.0f under pressure, want base/4 = 2500", p.rate)
	}
	// 50,000 TTL'd writes a second for a minute: the floor follows.
	for range 600 {
		p.observe(1000, 0, 100*time.Millisecond, 5000, false)
	}
	if p.rate < 190000 || p.rate > 200000 {
		t.Errorf("pace %.0f with 50000 TTL'd writes/s, want about %d", p.rate, ttlFactor*50000)
	}
}

// TestSweepYieldsToQueue: while the write-behind queue is behind (here:
// the disk fails, so it never drains), the sweep queues no deletions and
// counts its back-offs.
func TestSweepYieldsToQueue(t *testing.T) {
	x := newFx(t, engine.Env{}, "warmup=false,sweep_interval=10ms,sweep_batch=100,queue=4194304")
	now := x.clock.Now()
	for i := range 200 {
		x.store("k"+strconv.Itoa(i), []byte("v"), 0, now+1)
	}
	x.flushQueue()
	x.f.set(errDiskFull, nil)
	for i := 0; x.e.q.bytes.Load() <= x.e.cfg.Queue/4; i++ {
		x.store("fill"+strconv.Itoa(i), make([]byte, 4096), 0, 0)
	}
	// The sweep is seen backing off before the items expire: a step it
	// began before the queue filled up would otherwise run with the new
	// clock (it checks the queue before a step, not during it).
	backoffs := x.statInt("persistent_sweep_backoffs")
	x.eventually("the sweep backs off", func() bool { return x.statInt("persistent_sweep_backoffs") > backoffs })
	removed := x.statInt("persistent_sweep_removed")
	x.clock.Advance(2)
	backoffs = x.statInt("persistent_sweep_backoffs")
	x.eventually("the sweep keeps backing off", func() bool { return x.statInt("persistent_sweep_backoffs") >= backoffs+3 })
	if got := x.statInt("persistent_sweep_removed"); got != removed {
		t.Errorf("the sweep queued %d deletions while the queue was behind", got-removed)
	}
	x.f.set(nil, nil)
	x.eventually("the sweep removes the expired items", func() bool { return x.statInt("persistent_sweep_removed") >= removed+200 })
}

// blockKV blocks commits while block is set, and records the largest
// batch committed, in queue bytes.
type blockKV struct {
	kv
	mu      sync.Mutex
	gate    chan struct{} // non-nil: commits wait for it to close
	entered chan struct{}
	largest int64
	first   int64 // size of the first commit
	commits int
}

func (b *blockKV) Commit(ops []kvOp, sync bool) error {
	var size int64
	for _, op := range ops {
		size += int64(len(op.Key) - 1 + len(op.Value) + entryOverhead)
	}
	b.mu.Lock()
	gate := b.gate
	b.largest = max(b.largest, size)
	if b.commits == 0 {
		b.first = size
	}
	b.commits++
	b.mu.Unlock()
	if gate != nil {
		select {
		case b.entered <- struct{}{}:
		default:
		}
		<-gate
	}
	return b.kv.Commit(ops, false)
}

// TestCommitCap: an async commit collects at most commitCap bytes of
// stripes (plus one stripe): the first, before any rate is known,
// minCommit; the rest follows in the next rounds at once, and every write
// reaches the disk.
func TestCommitCap(t *testing.T) {
	x := newFx(t, engine.Env{MemoryLimit: 256 << 20}, "warmup=false,sweep_interval=0,interval=1h,queue=67108864")
	b := &blockKV{kv: x.f.kv}
	x.e.kvmu.Lock()
	x.f.kv = b
	x.e.kvmu.Unlock()
	const n, size = 2000, 4000 // 8 MB: 8 commits' worth
	for i := range n {
		x.store("c"+strconv.Itoa(i), value(i, size), 0, 0)
	}
	capped := x.statInt("persistent_commits_capped")
	x.flushQueue()
	b.mu.Lock()
	first, commits := b.first, b.commits
	b.mu.Unlock()
	// One stripe past the cap at most: a stripe holds about n/nStripes
	// writes, a few at most.
	if first > minCommit+8*(size+64) {
		t.Errorf("a first commit of %d bytes; the cap is %d", first, minCommit)
	}
	if commits < 2 || x.statInt("persistent_commits_capped") < capped+1 {
		t.Errorf("%d commits (%d capped) for 8 MB", commits, x.statInt("persistent_commits_capped"))
	}
	x.reopen()
	for i := range n {
		x.mustHave("c"+strconv.Itoa(i), string(value(i, size)))
	}
}

// TestNextRound checks when the flusher starts its next round: once the
// oldest queued write is Interval old (at once when it already is, as
// after a long commit), at once after a capped round, Interval after a
// failed one.
func TestNextRound(t *testing.T) {
	const iv = time.Hour
	q := &queue{e: &Engine{cfg: Config{Interval: iv}}}
	if d := q.nextRound(); d != iv {
		t.Errorf("nothing queued: next round in %v, want %v", d, iv)
	}
	q.firstPending.Store(time.Now().Add(-2 * iv).UnixNano())
	if d := q.nextRound(); d != 0 {
		t.Errorf("a write queued 2 intervals ago: next round in %v, want at once", d)
	}
	q.firstPending.Store(time.Now().Add(-iv / 2).UnixNano())
	if d := q.nextRound(); d > iv/2 || d < iv/2-time.Minute {
		t.Errorf("a write queued half an interval ago: next round in %v, want %v", d, iv/2)
	}
	q.capped = true
	if d := q.nextRound(); d != 0 {
		t.Errorf("after a capped round: next round in %v, want at once", d)
	}
	q.failing = 1
	if d := q.nextRound(); d != iv {
		t.Errorf("after a failed commit: next round in %v, want %v", d, iv)
	}
}

// stuckCommit sets key to value and returns once the round that commits
// it is stuck in a blockKV, until release.
func (x *fx) stuckCommit(key, value string) *blockKV {
	x.t.Helper()
	b := &blockKV{kv: x.f.kv, gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	x.e.kvmu.Lock()
	x.f.kv = b
	x.e.kvmu.Unlock()
	x.set(key, value)
	<-b.entered
	return b
}

// release lets the stuck commit, and every later one, through.
func (b *blockKV) release() {
	b.mu.Lock()
	gate := b.gate
	b.gate = nil
	b.mu.Unlock()
	close(gate)
}

// TestLagMaxStuckCommit: persistent_queue_lag_max_us counts a commit
// while it is stuck, not only once it ends.
func TestLagMaxStuckCommit(t *testing.T) {
	x := newFx(t, engine.Env{}, "warmup=false,sweep_interval=0,interval=10ms")
	b := x.stuckCommit("a", "1")
	x.eventually("lag_max grows during a stuck commit", func() bool {
		return x.statInt("persistent_queue_lag_max_us") > 200_000
	})
	if c := x.statInt("persistent_commits"); c != 0 {
		t.Errorf("persistent_commits = %d while the first commit is stuck", c)
	}
	b.release()
	x.flushQueue()
	x.reopen()
	x.mustHave("a", "1")
}

// CompactRange passes compactions on to the wrapped store.
func (f *faultKV) CompactRange(ctx context.Context, lower, upper []byte) error {
	if c, ok := f.kv.(rangeCompacter); ok {
		return c.CompactRange(ctx, lower, upper)
	}
	return nil
}

// TestSweepReclaims: a pass that removes most of what it looks at
// compacts the span it removed, so the store's size on disk drops to
// that of the live items, not only its item count.
func TestSweepReclaims(t *testing.T) {
	// interval=1h: the queue commits only when the test or the sweep's
	// reclaim wakes it. A commit during the pass would move the stripes
	// of keys the pass read, and the pass would leave those dead items to
	// the next one (as it must: a newer write may be queued), which on a
	// busy machine made this one pass remove too few.
	x := newFx(t, engine.Env{MemoryLimit: 64 << 20}, "warmup=false,sweep_interval=0,interval=1h")
	now := x.clock.Now()
	for i := range 40000 {
		exp := now + 10
		if i%20 == 0 {
			exp = 0 // 2,000 live items
		}
		x.store("r"+strconv.Itoa(i), value(i, 200), 0, exp)
	}
	x.flushQueue()
	x.f.kv.(*pebbleKV).db.Flush()
	full := x.tableBytes()
	x.clock.Advance(10)
	passes := x.statInt("persistent_sweep_passes")
	for x.statInt("persistent_sweep_passes") < passes+1 {
		x.e.sweep(100000)
	}
	if n := x.statInt("persistent_sweep_compactions"); n != 1 {
		t.Fatalf("persistent_sweep_compactions = %d after a pass that removed 95%%", n)
	}
	if all, dead := x.diskCount(); all != 2000 || dead != 0 {
		t.Errorf("%d items on disk (%d dead), want the 2000 live ones", all, dead)
	}
	// The 38,000 dead items' 200-byte values are gone from the tables.
	// (The WAL's files are kept for reuse: DiskUsage counts them.)
	if after := x.tableBytes(); after > full/4 {
		t.Errorf("tables hold %d bytes after the sweep, %d before: not reclaimed", after, full)
	}
	t.Logf("tables hold %d bytes with 40,000 items, %d after the sweep left 2,000 (disk usage %d)", full, x.tableBytes(), x.f.DiskUsage())
	for i := 0; i < 40000; i += 20 {
		x.mustHave("r"+strconv.Itoa(i), string(value(i, 200)))
	}
}

// tableBytes is the size of the store's live tables.
func (x *fx) tableBytes() uint64 {
	m := x.f.kv.(*pebbleKV).db.Metrics()
	return m.Table.Local.LiveSize
}

// TestLagBound: in async mode a writer waits while the oldest write not
// yet on disk is older than lagFactor intervals (here: a commit is
// stuck), and goes on once it is committed.
func TestLagBound(t *testing.T) {
	x := newFx(t, engine.Env{}, "warmup=false,sweep_interval=0,interval=10ms")
	b := x.stuckCommit("a", "1")
	x.eventually("the stuck write is 5 intervals old", func() bool { return x.e.q.lag() > lagFactor*x.e.cfg.Interval })
	done := make(chan struct{})
	go func() {
		defer close(done)
		x.e.Update([]byte("b"), storeM{engine.Item{Value: []byte("2")}})
	}()
	x.eventually("the writer waits for the lag bound", func() bool { return x.statInt("persistent_queue_lag_waits") == 1 })
	select {
	case <-done:
		t.Fatal("a write was acknowledged while an older one has waited 5 intervals")
	default:
	}
	b.release()
	<-done
	x.mustHave("b", "2")
}

// TestSweepYields: a sweep step yields its processor after every
// yieldEvery items it reads and every yieldEvery deletions it queues, and
// never while it holds a stripe's lock, so that with one P a reader
// woken meanwhile runs without waiting for the whole step.
func TestSweepYields(t *testing.T) {
	x := newFx(t, engine.Env{MemoryLimit: 64 << 20}, "warmup=false,sweep_interval=0,interval=1h")
	now := x.clock.Now()
	const n, live = 4000, 1000
	for i := range n {
		exp := now + 10
		if i%(n/live) == 0 {
			exp = 0
		}
		x.store("y"+strconv.Itoa(i), []byte("v"), 0, exp)
	}
	x.flushQueue()
	x.clock.Advance(10)
	yields := 0
	x.e.yieldHook = func() {
		yields++
		for i := range x.e.stripes {
			if !x.e.stripes[i].mu.TryLock() {
				t.Fatalf("the sweep yielded holding stripe %d's lock", i)
			}
			x.e.stripes[i].mu.Unlock()
		}
	}
	seen, found, removed := x.e.sweep(n)
	if seen != n || found != n-live || removed != n-live {
		t.Fatalf("sweep: seen %d, found %d dead, removed %d; want %d, %d, %d", seen, found, removed, n, n-live, n-live)
	}
	if want := seen/yieldEvery + removed/yieldEvery; yields < want {
		t.Errorf("the sweep yielded %d times reading %d items and deleting %d, want at least %d (one per %d)",
			yields, seen, removed, want, yieldEvery)
	}
	x.flushQueue()
	if all, dead := x.diskCount(); all != live || dead != 0 {
		t.Errorf("%d items on disk (%d dead), want the %d live ones", all, dead, live)
	}
}
