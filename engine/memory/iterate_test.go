package memory

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

// TestIterateFnMayBlock checks the contract metadump relies on: while fn
// blocks (a slow client), every other call on every key goes on, Close
// included.
func TestIterateFnMayBlock(t *testing.T) {
	const n = 2000
	for _, closeWhileBlocked := range []bool{false, true} {
		t.Run(fmt.Sprintf("close=%v", closeWhileBlocked), func(t *testing.T) {
			e, _ := testEngine(t, engine.Env{}, "")
			for i := range n {
				set(t, e, fmt.Sprintf("k%d", i), "v", 0)
			}
			entered, release := make(chan struct{}), make(chan struct{})
			seen := map[string]bool{}
			iterDone := make(chan struct{})
			var iterErr error
			go func() {
				defer close(iterDone)
				first := true
				iterErr = e.Iterate(func(k []byte, it *engine.Item) bool {
					if seen[string(k)] {
						t.Errorf("Iterate visited %q twice", k)
					}
					seen[string(k)] = true
					if first {
						first = false
						close(entered)
						<-release
					}
					return true
				})
			}()
			waitDone(t, "Iterate's first call of fn", entered)

			opsDone := make(chan struct{})
			go func() {
				defer close(opsDone)
				for i := range n {
					k := []byte(fmt.Sprintf("k%d", i))
					if _, _, err := e.Update([]byte(fmt.Sprintf("new%d", i)), &setM{value: []byte("w")}); err != nil {
						t.Errorf("set new%d while fn blocks: %v", i, err)
					}
					if _, _, _, err := e.Get(k, nil, engine.GetTouch); err != nil {
						t.Errorf("get %s while fn blocks: %v", k, err)
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
					if k := fmt.Sprintf("k%d", i); !seen[k] {
						t.Errorf("Iterate missed %s, present throughout", k)
					}
				}
			}
		})
	}
}
