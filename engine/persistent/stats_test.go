package persistent

import (
	"testing"

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
