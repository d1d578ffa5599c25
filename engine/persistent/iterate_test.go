package persistent

import (
	"fmt"
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
)

// TestIterateBatches checks that Iterate, reading the disk in batches,
// visits every item once, with its value, across batch boundaries set by
// count and by bytes, and that queued items are visited once too.
func TestIterateBatches(t *testing.T) {
	x := newFx(t, engine.Env{}, "interval=1h")
	want := map[string]string{}
	n := 3*iterateBatch + 7
	for i := range n {
		k, v := fmt.Sprintf("k%05d", i), fmt.Sprintf("v%d", i)
		x.set(k, v)
		want[k] = v
	}
	// Big values end batches by bytes.
	big := make([]byte, iterateBatchBytes/3)
	for i := range 7 {
		k := fmt.Sprintf("big%d", i)
		x.store(k, big, 0, 0)
		want[k] = string(big)
	}
	x.flushQueue()
	// Queued, not yet on disk (the queue is committed only when
	// flushQueue asks): a new key and a new value of an old one.
	x.set("queued", "q")
	want["queued"] = "q"
	x.set("k00003", "new")
	want["k00003"] = "new"

	got := map[string]string{}
	if err := x.e.Iterate(func(k []byte, it *engine.Item) bool {
		if _, dup := got[string(k)]; dup {
			t.Errorf("Iterate visited %q twice", k)
		}
		got[string(k)] = string(it.Value)
		return true
	}); err != nil {
		t.Fatalf("Iterate: %v", err)
	}
	if len(got) != len(want) {
		t.Errorf("Iterate visited %d items, want %d", len(got), len(want))
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("Iterate: %s = %.20q (seen %v), want %.20q", k, g, ok, v)
		}
	}
}
