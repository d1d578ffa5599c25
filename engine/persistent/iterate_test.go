package persistent

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mnemo-cache/mnemo/engine"
)

// waitDone waits for done, failing the test if it has not come within a
// minute: a bound that only stops a hang, not a timing expectation.
func waitDone(t *testing.T, what string, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("still waiting after a minute: %s", what)
	}
}

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

// TestIterateFnMayBlock checks the contract metadump relies on: while fn
// blocks (a slow client) in the middle of a disk scan, other calls go on,
// and so does Close.
func TestIterateFnMayBlock(t *testing.T) {
	n := 2*iterateBatch + 10
	for _, closeWhileBlocked := range []bool{false, true} {
		t.Run(fmt.Sprintf("close=%v", closeWhileBlocked), func(t *testing.T) {
			x := newFx(t, engine.Env{}, "")
			for i := range n {
				x.set(fmt.Sprintf("k%05d", i), "v")
			}
			x.flushQueue()
			e := x.e
			entered, release := make(chan struct{}), make(chan struct{})
			seen := map[string]bool{}
			iterDone := make(chan struct{})
			var iterErr error
			go func() {
				defer close(iterDone)
				calls := 0
				iterErr = e.Iterate(func(k []byte, it *engine.Item) bool {
					seen[string(k)] = true
					if calls++; calls == iterateBatch+5 {
						close(entered)
						<-release
					}
					return true
				})
			}()
			waitDone(t, "Iterate's call of fn in its second batch", entered)

			opsDone := make(chan struct{})
			go func() {
				defer close(opsDone)
				for i := range n {
					if _, _, err := e.Update([]byte(fmt.Sprintf("new%d", i)), storeM{engine.Item{Value: []byte("w")}}); err != nil {
						t.Errorf("set new%d while fn blocks: %v", i, err)
					}
					if _, _, _, err := e.Get([]byte(fmt.Sprintf("k%05d", i)), nil, engine.GetTouch); err != nil {
						t.Errorf("get k%05d while fn blocks: %v", i, err)
					}
				}
				if closeWhileBlocked {
					if err := e.Close(); err != nil {
						t.Errorf("Close while fn blocks: %v", err)
					}
				}
			}()
			waitDone(t, "sets, gets (and Close) while Iterate's fn blocks", opsDone)
			close(release)
			waitDone(t, "Iterate", iterDone)
			switch {
			case closeWhileBlocked && !errors.Is(iterErr, engine.ErrClosed):
				t.Errorf("Iterate after a Close while fn blocked: %v, want ErrClosed", iterErr)
			case !closeWhileBlocked && iterErr != nil:
				t.Errorf("Iterate: %v", iterErr)
			case !closeWhileBlocked:
				for i := range n {
					if k := fmt.Sprintf("k%05d", i); !seen[k] {
						t.Errorf("Iterate missed %s, present throughout", k)
					}
				}
			}
		})
	}
}
