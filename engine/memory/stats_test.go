package memory

import (
	"strconv"
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
)

// statsOf returns the engine's general statistics.
func statsOf(e *Engine) map[string]string {
	m := map[string]string{}
	e.Stats(func(name, value string) { m[name] = value })
	return m
}

// TestGetExpiredFlushed checks that get_expired and get_flushed count the
// lookups (Get, Update, Delete) that meet an expired or a flushed item,
// once per item, as memcached's do_item_get, and that a miss on an absent
// key, the sweep and stats reset behave as memcached's.
func TestGetExpiredFlushed(t *testing.T) {
	e, clock := testEngine(t, engine.Env{}, "")
	want := func(what string, expired, flushed int) {
		t.Helper()
		s := statsOf(e)
		if s["get_expired"] != strconv.Itoa(expired) || s["get_flushed"] != strconv.Itoa(flushed) {
			t.Errorf("%s: get_expired %s get_flushed %s, want %d and %d", what, s["get_expired"], s["get_flushed"], expired, flushed)
		}
	}
	none := funcM(func(*engine.Item, bool, *engine.Item) engine.Op { return engine.OpNone })
	meta := funcM(func(cur *engine.Item, _ bool, next *engine.Item) engine.Op {
		next.Meta = cur.Meta
		return engine.OpMeta
	})
	want("start", 0, 0)
	get(t, e, "absent")
	want("absent key", 0, 0)

	for _, k := range []string{"g", "u", "m", "d", "s"} {
		set(t, e, k, "v", t0+10)
	}
	clock.Advance(10)
	if _, ok := get(t, e, "g"); ok {
		t.Fatal("expired item found")
	}
	want("Get of an expired item", 1, 0)
	get(t, e, "g")
	want("Get again: the item is gone", 1, 0)
	e.Update([]byte("u"), none)
	e.Update([]byte("u"), none)
	want("Update (OpNone) twice", 2, 0)
	e.Update([]byte("m"), meta)
	want("Update (OpMeta) of an expired item", 3, 0)
	if ok, _ := e.Delete([]byte("d")); ok {
		t.Fatal("Delete of an expired item reported a live item")
	}
	want("Delete", 4, 0)
	set(t, e, "s", "new", 0)
	want("a store over an expired item", 5, 0)

	set(t, e, "f1", "v", 0)
	set(t, e, "f2", "v", t0+5) // expired and flushed: counts as flushed
	clock.Advance(10)
	if err := e.Flush(clock.Now()); err != nil {
		t.Fatal(err)
	}
	get(t, e, "f1")
	e.Update([]byte("f2"), none)
	want("lookups of flushed items", 5, 2)
	get(t, e, "s")
	want("flushed store", 5, 3)

	set(t, e, "w", "v", clock.Now()+1)
	clock.Advance(1)
	e.sweep(1 << 20)
	get(t, e, "w")
	want("an item the sweep removed", 5, 3)
	if s := statsOf(e); s["expired_unfetched"] != "1" || s["reclaimed"] != "0" {
		t.Errorf("expired_unfetched %s reclaimed %s, want 1 (the sweep's, not the lookups') and 0 (no segment reclaim)",
			s["expired_unfetched"], s["reclaimed"])
	}
	if s := statsOf(e); s["crawler_reclaimed"] != "1" || s["lru_crawler_starts"] != "1" || s["crawler_items_checked"] == "0" {
		t.Errorf("after one sweep: crawler_reclaimed %s lru_crawler_starts %s crawler_items_checked %s, want 1, 1 and > 0",
			s["crawler_reclaimed"], s["lru_crawler_starts"], s["crawler_items_checked"])
	}

	e.ResetStats()
	want("stats reset", 0, 0)
	if s := statsOf(e); s["crawler_reclaimed"] != "0" || s["lru_crawler_starts"] != "0" || s["crawler_items_checked"] != "0" {
		t.Errorf("after ResetStats: crawler stats %s %s %s, want 0", s["crawler_reclaimed"], s["lru_crawler_starts"], s["crawler_items_checked"])
	}
}

// TestEvictionStats checks the eviction figures of stats items:
// evicted_nonzero, evicted_time and direct_reclaims, and outofmemory with
// NoEvict.
func TestEvictionStats(t *testing.T) {
	e, clock := testEngine(t, engine.Env{MemoryLimit: 4 << 20}, "")
	value := make([]byte, 100<<10)
	// 60 items of 100 KiB, then (7 seconds later) 5 more: the last items
	// evicted were stored 7 seconds before.
	for i := range 65 {
		if i == 60 {
			clock.Advance(7)
		}
		exp := int64(0)
		if i%2 == 1 {
			exp = t0 + 1000
		}
		if _, _, err := e.Update([]byte("k"+strconv.Itoa(i)), &setM{value: value, exptime: exp}); err != nil {
			t.Fatal(err)
		}
	}
	items := map[string]string{}
	e.GroupStats("items", func(name, value string) { items[name] = value })
	evicted, _ := strconv.Atoi(items["items:1:evicted"])
	nonzero, _ := strconv.Atoi(items["items:1:evicted_nonzero"])
	if evicted == 0 || nonzero == 0 || nonzero >= evicted {
		t.Errorf("evicted %d, evicted_nonzero %d: want half-ish of the evictions to have an exptime", evicted, nonzero)
	}
	if items["items:1:evicted_time"] != "7" {
		t.Errorf("evicted_time %s, want 7 (seconds since the last evicted item's last access)", items["items:1:evicted_time"])
	}
	if statsOf(e)["direct_reclaims"] == "0" {
		t.Error("direct_reclaims 0 after evictions")
	}

	m, _ := testEngine(t, engine.Env{MemoryLimit: 4 << 20, NoEvict: true}, "")
	var oom int
	for i := range 200 {
		if _, _, err := m.Update([]byte("k"+strconv.Itoa(i)), &setM{value: value}); err == engine.ErrNoMemory {
			oom++
		}
	}
	items = map[string]string{}
	m.GroupStats("items", func(name, value string) { items[name] = value })
	if oom == 0 || items["items:1:outofmemory"] != strconv.Itoa(oom) {
		t.Errorf("outofmemory %s, want %d (stores refused with ErrNoMemory)", items["items:1:outofmemory"], oom)
	}
}
