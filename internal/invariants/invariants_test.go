package invariants

import (
	"errors"
	"testing"
)

func TestFailf(t *testing.T) {
	defer func() {
		r := recover()
		v, ok := r.(Violation)
		if !ok {
			t.Fatalf("Failf panicked with %#v, want a Violation", r)
		}
		var err error = v
		if err.Error() != "invariant violated: shard 3: 7 entries, 8 counted" {
			t.Errorf("message %q", err.Error())
		}
		if !errors.As(err, new(Violation)) {
			t.Error("a Violation is not found by errors.As")
		}
	}()
	Failf("shard %d: %d entries, %d counted", 3, 7, 8)
	t.Fatal("Failf returned")
}
