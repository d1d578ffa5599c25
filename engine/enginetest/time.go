package enginetest

import (
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
)

// step is a point in a time-driven scenario: move the clock to start+at and
// expect the key to be present or not.
type step struct {
	at      int64
	present bool
}

// checkKey checks key's presence the three ways an engine reports it: Get,
// the Mutator's found, and Iterate.
func (f *fixture) checkKey(key string, want bool) {
	f.t.Helper()
	_, got := f.get(key)
	_, seen := f.observe(key)
	iterated := false
	if err := f.e.Iterate(func(k []byte, it *engine.Item) bool {
		if string(k) == key {
			iterated = true
		}
		return true
	}); err != nil {
		f.t.Fatalf("Iterate: %v", err)
	}
	if got != want || seen != want || iterated != want {
		f.t.Fatalf("clock %+d: %s present by Get %v, by Update %v, by Iterate %v; want %v",
			f.now()-startTime, q(key), got, seen, iterated, want)
	}
}

// flush calls Flush(at) and fails the test on error.
func (f *fixture) flush(at int64) {
	f.t.Helper()
	if err := f.e.Flush(at); err != nil {
		f.t.Fatalf("Flush(%d): %v", at, err)
	}
}

// testExpiry covers Exptime: 0 never expires, Exptime <= now is absent, a
// future Exptime holds until the clock reaches it.
func testExpiry(t *testing.T, s *suite) {
	const year = 365 * 24 * 3600
	for _, tc := range []struct {
		name    string
		exptime int64 // relative to startTime unless abs
		abs     bool
		steps   []step
	}{
		{"never", 0, true, []step{{0, true}, {1, true}, {100, true}, {10 * year, true}}},
		{"now", 0, false, []step{{0, false}, {1, false}}},
		{"past", -100, false, []step{{0, false}, {1, false}}},
		{"long past", 1, true, []step{{0, false}}},
		{"in one second", 1, false, []step{{0, true}, {1, false}, {2, false}}},
		{"in 100 seconds", 100, false, []step{{0, true}, {50, true}, {99, true}, {100, false}, {10 * year, false}}},
		{"in 30 days", 30 * 24 * 3600, false, []step{{0, true}, {30*24*3600 - 1, true}, {30 * 24 * 3600, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := s.engine(t)
			exp := tc.exptime
			if !tc.abs {
				exp += startTime
			}
			meta := f.store("k", []byte("v"), 0, exp)
			if meta.Exptime != exp {
				t.Errorf("stored Exptime %d, want %d", meta.Exptime, exp)
			}
			f.set("forever", "v")
			for _, st := range tc.steps {
				f.clock.Set(startTime + st.at)
				f.checkKey("k", st.present)
				f.checkKey("forever", true)
			}
			if ok, err := f.e.Delete([]byte("k")); err != nil || ok != tc.steps[len(tc.steps)-1].present {
				t.Errorf("Delete = %v, %v", ok, err)
			}
		})
	}

	t.Run("OpMetaChangesExptime", func(t *testing.T) {
		f := s.engine(t)
		t0 := f.now()
		f.store("k", []byte("v"), 0, t0+10)
		if _, _, err := f.e.Update([]byte("k"), metaM{exptime: t0 + 100, keepCAS: true}); err != nil {
			t.Fatal(err)
		}
		f.clock.Set(t0 + 50)
		f.checkKey("k", true)
		if _, _, err := f.e.Update([]byte("k"), metaM{exptime: 0}); err != nil {
			t.Fatal(err)
		}
		f.clock.Set(t0 + 10*year)
		f.checkKey("k", true)
		if _, _, err := f.e.Update([]byte("k"), metaM{exptime: f.now()}); err != nil {
			t.Fatal(err)
		}
		f.checkKey("k", false)
	})

	t.Run("StoreOverExpired", func(t *testing.T) {
		f := s.engine(t)
		f.store("k", []byte("old"), 1, f.now()+1)
		f.clock.Advance(1)
		r := &recordM{op: engine.OpStore, next: engine.Item{Value: []byte("new")}}
		if _, _, err := f.e.Update([]byte("k"), r); err != nil {
			t.Fatal(err)
		}
		if r.found {
			t.Error("Mutator saw an expired item as found")
		}
		if it := f.mustHave("k", "new"); it.Flags != 0 || it.Exptime != 0 {
			t.Errorf("store over an expired item kept its metadata: %+v", it.Meta)
		}
	})
}

// testFlush covers Flush: immediate, delayed, and replaced.
func testFlush(t *testing.T, s *suite) {
	t.Run("Now", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			at   int64 // relative to startTime unless zero
		}{
			{"now", 0},
			{"past", -5},
			{"zero", -startTime},
		} {
			t.Run(tc.name, func(t *testing.T) {
				f := s.engine(t)
				f.set("a", "1")
				f.store("b", []byte("2"), 0, f.now()+100)
				f.flush(startTime + tc.at)
				f.checkKey("a", false)
				f.checkKey("b", false)
				// Stored after the flush, in the same second: kept.
				f.set("c", "3")
				f.set("a", "4")
				f.checkKey("c", true)
				f.mustHave("a", "4")
				f.clock.Advance(1)
				f.checkKey("c", true)
				f.mustHave("a", "4")
				f.checkKey("b", false)
			})
		}
	})

	t.Run("Future", func(t *testing.T) {
		f := s.engine(t)
		t0 := f.now()
		f.set("before", "1")
		f.flush(t0 + 10)
		f.checkKey("before", true)
		f.clock.Set(t0 + 5)
		f.set("between", "2")
		f.clock.Set(t0 + 9)
		f.checkKey("before", true)
		f.checkKey("between", true)
		f.clock.Set(t0 + 10)
		f.checkKey("before", false)
		f.checkKey("between", false)
		f.set("after", "3")
		f.checkKey("after", true)
		f.clock.Set(t0 + 20)
		f.checkKey("after", true)
		f.checkKey("before", false)
	})

	t.Run("FutureUnobserved", func(t *testing.T) {
		// Nothing looks at the items between the flush and its deadline.
		f := s.engine(t)
		t0 := f.now()
		f.set("a", "1")
		f.flush(t0 + 10)
		f.clock.Set(t0 + 30)
		f.set("b", "2")
		f.checkKey("a", false)
		f.checkKey("b", true)
	})

	t.Run("LaterReplacesPending", func(t *testing.T) {
		f := s.engine(t)
		t0 := f.now()
		f.set("a", "1")
		f.flush(t0 + 10)
		f.flush(t0 + 20)
		f.clock.Set(t0 + 10)
		f.checkKey("a", true)
		f.clock.Set(t0 + 19)
		f.checkKey("a", true)
		f.clock.Set(t0 + 20)
		f.checkKey("a", false)
	})

	t.Run("NowReplacesPending", func(t *testing.T) {
		f := s.engine(t)
		t0 := f.now()
		f.set("a", "1")
		f.flush(t0 + 10)
		f.flush(t0)
		f.checkKey("a", false)
		f.set("b", "2")
		f.clock.Set(t0 + 10)
		f.checkKey("b", true)
		f.clock.Set(t0 + 100)
		f.checkKey("b", true)
	})

	t.Run("NowStaysEffective", func(t *testing.T) {
		// A pending flush issued after an immediate one must not bring
		// back what the immediate one invalidated.
		f := s.engine(t)
		t0 := f.now()
		f.set("a", "1")
		f.flush(t0)
		f.flush(t0 + 100)
		f.checkKey("a", false)
		f.set("b", "2")
		f.clock.Set(t0 + 50)
		f.checkKey("a", false)
		f.checkKey("b", true)
		f.clock.Set(t0 + 100)
		f.checkKey("b", false)
	})

	t.Run("ReachedStaysEffective", func(t *testing.T) {
		// A flush whose deadline has passed is no longer pending: a later
		// Flush must not bring back what it invalidated, even if nothing
		// read the items in between.
		f := s.engine(t)
		t0 := f.now()
		f.set("a", "1")
		f.flush(t0 + 10)
		f.clock.Set(t0 + 10)
		f.flush(t0 + 100)
		f.checkKey("a", false)
		f.clock.Set(t0 + 50)
		f.checkKey("a", false)
	})

	t.Run("Empty", func(t *testing.T) {
		f := s.engine(t)
		f.flush(f.now())
		f.flush(f.now() + 5)
		f.clock.Advance(10)
		f.set("k", "v")
		f.checkKey("k", true)
	})
}
