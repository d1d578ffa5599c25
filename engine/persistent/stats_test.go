package persistent

import (
	"strconv"
	"testing"
	"time"

	"github.com/mnemo-cache/mnemo/engine"
)

// noneM leaves the key alone.
type noneM struct{}

func (noneM) Mutate(*engine.Item, bool, *engine.Item) engine.Op { return engine.OpNone }

// TestGetExpiredFlushed checks that get_expired and get_flushed count the
// lookups that read an expired or flushed item, from the queue and from
// the disk (after a flush_all, which empties memory, and after a reopen),
// and nothing for an absent key; and that stats reset clears them.
func TestGetExpiredFlushed(t *testing.T) {
	x := newFx(t, engine.Env{}, "sweep_interval=0")
	now := x.clock.Now()
	want := func(what string, expired, flushed int64) {
		t.Helper()
		if e, f := x.statInt("get_expired"), x.statInt("get_flushed"); e != expired || f != flushed {
			t.Errorf("%s: get_expired %d get_flushed %d, want %d and %d", what, e, f, expired, flushed)
		}
	}
	x.mustMiss("absent")
	x.e.Update([]byte("absent"), noneM{})
	want("absent key", 0, 0)
	x.store("q", []byte("v"), 0, now+5)
	x.store("d", []byte("v"), 0, now+5)
	x.store("u", []byte("v"), 0, now+5)
	x.flushQueue()
	x.clock.Advance(5)
	x.mustMiss("q")
	want("Get of an expired item", 1, 0)
	x.e.Update([]byte("u"), noneM{})
	want("Update of an expired item", 2, 0)
	x.reopen()
	x.mustMiss("d")
	want("Get of an expired item on disk after a reopen (counters restart)", 1, 0)

	x.set("f", "v")
	x.flushQueue()
	if err := x.e.Flush(x.clock.Now()); err != nil {
		t.Fatal(err)
	}
	x.mustMiss("f")
	want("Get of a flushed item on disk", 1, 1)
	if ok, _ := x.e.Delete([]byte("f")); ok {
		t.Fatal("Delete of a flushed item reported a live item")
	}
	want("Delete of a flushed item", 1, 2)
	x.e.ResetStats()
	want("stats reset", 0, 0)
}

// TestItemsStatsCarryOverFlush checks that the counters of stats items
// survive flush_all, which replaces the memory tier, as the general ones.
func TestItemsStatsCarryOverFlush(t *testing.T) {
	x := newFx(t, engine.Env{MemoryLimit: 4 << 20}, "sweep_interval=0")
	value := make([]byte, 100<<10)
	items := func() map[string]string {
		m := map[string]string{}
		x.e.GroupStats("items", func(name, value string) { m[name] = value })
		return m
	}
	for i := range 60 {
		x.store("k"+strconv.Itoa(i), value, 0, 0)
	}
	// Overwrites leave segments mostly dead, which the memory tier
	// compacts: its compaction counters are cumulative too.
	for i := range 200 {
		x.store("c"+strconv.Itoa(i%4), value, 0, 0)
	}
	before := items()["items:1:evicted"]
	if before == "" || before == "0" || before != x.stat("evictions") {
		t.Fatalf("items:1:evicted %q, evictions %q: want equal and not 0", before, x.stat("evictions"))
	}
	compactions := x.stat("memory_compactions")
	if compactions == "" || compactions == "0" {
		t.Fatalf("memory_compactions %q before flush_all: want some", compactions)
	}
	if err := x.e.Flush(x.clock.Now()); err != nil {
		t.Fatal(err)
	}
	x.set("new", "v")
	if after := items()["items:1:evicted"]; after != before {
		t.Errorf("items:1:evicted %q after flush_all, want %q as before", after, before)
	}
	if after := x.stat("memory_compactions"); after != compactions {
		t.Errorf("memory_compactions %q after flush_all, want %q as before", after, compactions)
	}
}

// TestLagMaxCountsInflight checks that persistent_queue_lag_max_us counts
// the commit under way, not only finished ones.
func TestLagMaxCountsInflight(t *testing.T) {
	x := newFx(t, engine.Env{}, "warmup=false,sweep_interval=0")
	x.e.q.inflightSince.Store(time.Now().Add(-time.Hour).UnixNano())
	defer x.e.q.inflightSince.Store(0)
	if us := x.statInt("persistent_queue_lag_max_us"); us < 3600e6 {
		t.Errorf("persistent_queue_lag_max_us = %d with a commit under way for an hour", us)
	}
}
