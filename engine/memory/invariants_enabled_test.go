//go:build invariants

package memory

import (
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
	"github.com/mnemo-cache/mnemo/internal/invariants"
)

// TestInvariantsWired checks that, built with the invariants tag, the
// engine runs its checks by itself: damage that no operation repairs makes
// the next checking operation panic, so the checks cannot silently be
// no-ops.
func TestInvariantsWired(t *testing.T) {
	if !invariants.Enabled {
		t.Fatal("built with the invariants tag, but invariants.Enabled is false")
	}
	expect := func(t *testing.T, want string, fn func()) {
		t.Helper()
		msg, ok := violation(fn)
		if !ok {
			t.Fatalf("no invariant violation; want one mentioning %q", want)
		}
		if !strings.Contains(msg, want) {
			t.Fatalf("violation %q, want one mentioning %q", msg, want)
		}
	}

	t.Run("Close", func(t *testing.T) {
		e := invFixtureWith(t, false)
		sh, _, _ := entryOf(t, e, "k1")
		sh.bytes++
		expect(t, "records take", func() { e.Close() })
		sh.bytes--
		// The violation left the engine open and unlocked.
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("SetMemoryLimit", func(t *testing.T) {
		e := invFixtureWith(t, false)
		_, _, ent := entryOf(t, e, "k1")
		s := &e.segs[entryOff(ent)/e.segSize]
		s.live.Add(recAlign)
		expect(t, "live bytes, the index points to", func() { e.SetMemoryLimit(16 << 20) })
		s.live.Add(-recAlign)
	})

	t.Run("Get", func(t *testing.T) {
		e := invFixtureWith(t, true) // records with a CRC
		sh, _, ent := entryOf(t, e, "k1")
		v := recAt(e.mem, entryOff(ent)).value()
		v[0] ^= 1
		expect(t, "get: the record at offset", func() { e.Get([]byte("k1"), nil, 0) })
		v[0] ^= 1
		// Get panicked holding the shard's read lock.
		sh.mu.RUnlock()
	})

	t.Run("Delete", func(t *testing.T) {
		e := invFixtureWith(t, false)
		sh, _, _ := entryOf(t, e, "k1")
		was := sh.bytes
		sh.bytes = 0 // as if k1 had been dropped already
		expect(t, "drop: negative count", func() { e.Delete([]byte("k1")) })
		sh.bytes += was // Delete unlocked (deferred); k1 is gone
		if _, ok := get(t, e, "k1"); ok {
			t.Fatal("k1 still found")
		}
	})

	t.Run("reclaim", func(t *testing.T) {
		// The reclaim path panics holding the stripe and allocator
		// locks, so this engine is left unclosed (it maps 4 MiB of
		// address space until the test binary exits).
		e, err := New(engine.Env{MemoryLimit: 4 << 20, Logger: slog.New(slog.DiscardHandler)}, "sweep_interval=0,shards=4")
		if err != nil {
			t.Fatal(err)
		}
		set(t, e, "k", "v", 0)
		sh, _, _ := entryOf(t, e, "k")
		sh.n++
		expect(t, "entries, counts", func() {
			for i := range 20000 {
				k := []byte("fill" + strconv.Itoa(i))
				if _, _, err := e.Update(k, &setM{value: value(string(k), 1000)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	})
}
