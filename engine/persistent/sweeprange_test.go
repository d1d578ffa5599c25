package persistent

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
)

// diskRecords counts the items on disk.
func (x *fx) diskRecords() int {
	n := 0
	if err := x.f.kv.Scan(dataLower, dataUpper, func(k, v []byte) bool { n++; return true }); err != nil {
		x.t.Fatal(err)
	}
	return n
}

// TestSweepRanges: runs of dead keys are deleted with range deletions,
// short runs one by one, live keys between them stay, and the counts
// are those of the point deletions.
func TestSweepRanges(t *testing.T) {
	x := newFx(t, engine.Env{}, "warmup=false,sweep_interval=0")
	now := x.clock.Now()
	live, dead := 0, 0
	for i := range 1000 {
		exp := now + 10
		// Runs of 99 dead keys between live ones, and a stretch
		// of every other key dead (runs of one: point deletions).
		if i%100 == 99 || (i >= 500 && i < 600 && i%2 == 0) {
			exp = 0
			live++
		} else {
			dead++
		}
		x.store(fmt.Sprintf("k%04d", i), []byte("v"), 0, exp)
	}
	x.flushQueue()
	x.clock.Advance(10)
	for x.statInt("persistent_sweep_passes") < 1 {
		x.e.sweepStep(300)
		x.flushQueue()
	}
	if got := x.statInt("persistent_sweep_removed"); got != int64(dead) {
		t.Errorf("persistent_sweep_removed = %d, want %d", got, dead)
	}
	if got := x.statInt("persistent_sweep_ranges"); got < 5 {
		t.Errorf("persistent_sweep_ranges = %d, want the runs of 99 dead keys as ranges", got)
	}
	if got := x.statInt("persistent_sweep_range_checks"); got != 0 {
		t.Errorf("persistent_sweep_range_checks = %d with nothing written meanwhile", got)
	}
	if got := x.diskRecords(); got != live {
		t.Errorf("%d records on disk after the sweep, want the %d live ones", got, live)
	}
	for x.statInt("persistent_sweep_passes") < 2 {
		x.e.sweepStep(300)
		x.flushQueue()
	}
	if got := x.statInt("persistent_disk_items"); got != int64(live) {
		t.Errorf("persistent_disk_items = %d, want %d", got, live)
	}
	x.reopen()
	for i := range 1000 {
		k := fmt.Sprintf("k%04d", i)
		if i%100 == 99 || (i >= 500 && i < 600 && i%2 == 0) {
			x.mustHave(k, "v")
		} else {
			x.mustMiss(k)
		}
	}
}

// TestSweepRangeRacingWrites writes into the span of a run of dead keys
// after the sweep read it and before the range is committed: in a round
// committed before the range's (an overwrite of a dead key and a new key
// between two dead ones) and in the range's own round. Every such write
// must survive on disk.
func TestSweepRangeRacingWrites(t *testing.T) {
	x := newFx(t, engine.Env{}, "warmup=false,sweep_interval=0")
	now := x.clock.Now()
	for i := range 200 {
		x.store(fmt.Sprintf("k%04d", i), []byte("v"), 0, now+10)
	}
	x.flushQueue()
	x.clock.Advance(10)
	x.e.sweepHook = func() {
		x.e.sweepHook = nil
		x.set("k0050", "earlier round")
		x.set("k0100a", "earlier round, new key")
		x.flushQueue() // committed before the sweep queues its range
		x.set("k0150", "same round")
	}
	if removed := x.e.sweepStep(1000); removed != 200 {
		t.Fatalf("the step removed %d of the 200 dead items", removed)
	}
	x.flushQueue()
	if got := x.statInt("persistent_sweep_range_checks"); got != 1 {
		t.Errorf("persistent_sweep_range_checks = %d, want 1", got)
	}
	if got := x.statInt("persistent_sweep_range_kept"); got != 2 {
		t.Errorf("persistent_sweep_range_kept = %d, want the 2 keys written in an earlier round", got)
	}
	x.reopen() // an empty memory tier: reads go to the disk
	x.mustHave("k0050", "earlier round")
	x.mustHave("k0100a", "earlier round, new key")
	x.mustHave("k0150", "same round")
	x.mustMiss("k0049")
	x.mustMiss("k0051")
	x.mustMiss("k0199")
	if got := x.diskRecords(); got != 3 {
		t.Errorf("%d records on disk, want the 3 written ones", got)
	}
}

// TestSweepRangeConcurrentWrites runs sweep steps while a writer
// overwrites and deletes dead keys and adds new ones in their span: the
// disk ends with exactly the writer's last writes.
func TestSweepRangeConcurrentWrites(t *testing.T) {
	x := newFx(t, engine.Env{}, "warmup=false,sweep_interval=0,interval=1ms")
	now := x.clock.Now()
	const n = 3000
	for i := range n {
		x.store(fmt.Sprintf("k%05d", i), []byte("v"), 0, now+10)
	}
	x.flushQueue()
	x.clock.Advance(10)
	want := map[string]string{} // the writer's last write of each key ("": deleted)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(1, 2))
		for w := 0; ; w++ {
			select {
			case <-stop:
				return
			default:
			}
			// Every 50th key: the runs of dead keys between them
			// stay long enough for ranges.
			k := fmt.Sprintf("k%05d", 50*r.IntN(n/50))
			switch r.IntN(4) {
			case 0:
				k += "x" // a new key between two dead ones
				fallthrough
			case 1, 2:
				v := fmt.Sprintf("w%d", w)
				x.e.Update([]byte(k), storeM{engine.Item{Value: []byte(v)}})
				want[k] = v
			case 3:
				x.e.Delete([]byte(k))
				want[k] = ""
			}
		}
	}()
	for x.statInt("persistent_sweep_passes") < 5 {
		x.e.sweepStep(100)
	}
	close(stop)
	wg.Wait()
	x.flushQueue()
	if x.statInt("persistent_sweep_ranges") == 0 {
		t.Error("no range deletions")
	}
	t.Logf("ranges %d, checked %d, kept %d, writes %d", x.statInt("persistent_sweep_ranges"),
		x.statInt("persistent_sweep_range_checks"), x.statInt("persistent_sweep_range_kept"), len(want))
	x.reopen()
	stored := 0
	for k, v := range want {
		if v == "" {
			x.mustMiss(k)
			continue
		}
		stored++
		x.mustHave(k, v)
	}
	if got := x.diskRecords(); got > stored {
		t.Errorf("%d records on disk, want at most the %d written (the rest expired)", got, stored)
	}
}
