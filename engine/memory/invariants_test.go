package memory

import (
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
)

// invFixtureWith is an engine whose arena has closed segments, a write head
// and a free list, with the items k0..k(n-1).
// In a restartable file (whose records carry a CRC) if file.
func invFixtureWith(t *testing.T, file bool) *Engine {
	t.Helper()
	config := "shards=4"
	if file {
		config += ",file=" + filepath.Join(t.TempDir(), "arena")
	}
	e, _ := testEngine(t, engine.Env{MemoryLimit: 8 << 20}, config)
	for i := range 3000 {
		k := "k" + strconv.Itoa(i)
		if _, _, err := e.Update([]byte(k), &setM{value: value(k, 1000), flags: uint32(i % 2)}); err != nil {
			t.Fatal(err)
		}
	}
	if len(e.fifo) == 0 || len(e.free) == 0 {
		t.Fatalf("fixture: %d closed and %d free segments, want some of each", len(e.fifo), len(e.free))
	}
	return e
}

// entryOf returns the shard, slot and entry of key.
func entryOf(t *testing.T, e *Engine, key string) (*shard, int, uint64) {
	t.Helper()
	h := e.hash([]byte(key))
	sh := e.shardOf(h)
	slot, ent := sh.find(e.mem, h&tagMask, []byte(key))
	if slot < 0 {
		t.Fatalf("%s not indexed", key)
	}
	return sh, slot, ent
}

// TestCheckInvariantsFindsCorruption damages the index, a record or the
// accounting in one way at a time and checks that the full check (which
// is compiled in every build) panics naming it, and passes once the
// damage is undone. Its wiring into the engine's operations, which only
// the invariants build tag turns on, is tested in
// invariants_enabled_test.go.
func TestCheckInvariantsFindsCorruption(t *testing.T) {
	for _, tc := range []struct {
		name    string
		want    string
		corrupt func(t *testing.T, e *Engine) (undo func())
	}{
		{"shard bytes", "records take", func(t *testing.T, e *Engine) func() {
			sh, _, _ := entryOf(t, e, "k7")
			sh.bytes += recAlign
			return func() { sh.bytes -= recAlign }
		}},
		{"shard entry count", "entries, counts", func(t *testing.T, e *Engine) func() {
			sh, _, _ := entryOf(t, e, "k7")
			sh.n--
			return func() { sh.n++ }
		}},
		{"segment live bytes", "live bytes, the index points to", func(t *testing.T, e *Engine) func() {
			_, _, ent := entryOf(t, e, "k7")
			s := &e.segs[entryOff(ent)/e.segSize]
			s.live.Add(-recAlign)
			return func() { s.live.Add(recAlign) }
		}},
		{"value byte (file: records have a CRC)", "does not check", func(t *testing.T, e *Engine) func() {
			_, _, ent := entryOf(t, e, "k7")
			r := recAt(e.mem, entryOff(ent))
			v := r.value()
			v[len(v)-1] ^= 1
			return func() { v[len(v)-1] ^= 1 }
		}},
		{"key length", "does not check", func(t *testing.T, e *Engine) func() {
			_, _, ent := entryOf(t, e, "k7")
			p := recAt(e.mem, entryOff(ent)).word(offInfo)
			w := atomic.LoadUint32(p)
			atomic.StoreUint32(p, w&^0xff)
			return func() { atomic.StoreUint32(p, w) }
		}},
		{"entry at another key's record", "belongs to another shard or tag", func(t *testing.T, e *Engine) func() {
			sh, slot, ent := entryOf(t, e, "k7")
			_, _, other := entryOf(t, e, "k8")
			sh.tab[slot] = makeEntry(entryTag(ent), entryOff(other))
			return func() { sh.tab[slot] = ent }
		}},
		{"entry into a free segment", "in free segment", func(t *testing.T, e *Engine) func() {
			sh, slot, ent := entryOf(t, e, "k7")
			free := e.free[0]
			sh.tab[slot] = makeEntry(entryTag(ent), int64(free)*e.segSize)
			return func() { sh.tab[slot] = ent }
		}},
		{"duplicate key", "a lookup finds slot", func(t *testing.T, e *Engine) func() {
			sh, _, ent := entryOf(t, e, "k7")
			// Index a second copy of k7's record: the accounting agrees,
			// the key is indexed twice.
			size := recAt(e.mem, entryOff(ent)).size()
			id := entryOff(ent) / e.segSize
			sh.insert(ent)
			sh.bytes += size
			e.segs[id].live.Add(size)
			return func() {
				for i := len(sh.tab) - 1; ; i-- { // the later copy
					if sh.tab[i] == ent {
						sh.remove(i)
						break
					}
				}
				sh.bytes -= size
				e.segs[id].live.Add(-size)
			}
		}},
		{"segment on two lists", "on two lists", func(t *testing.T, e *Engine) func() {
			e.free = append(e.free, e.fifo[0])
			return func() { e.free = e.free[:len(e.free)-1] }
		}},
		{"closed segment off the FIFO", "is not on the FIFO", func(t *testing.T, e *Engine) func() {
			fifo := e.fifo
			e.fifo = fifo[1:]
			return func() { e.fifo = fifo }
		}},
		{"cold free segment counted warm", "warm", func(t *testing.T, e *Engine) func() {
			was := e.warmFree
			e.warmFree = len(e.free)
			return func() { e.warmFree = was }
		}},
		{"retired within the limit", "within the limit", func(t *testing.T, e *Engine) func() {
			s := &e.segs[e.free[0]]
			s.retire = true
			return func() { s.retire = false }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := invFixtureWith(t, strings.Contains(tc.name, "(file"))
			verify(t, e)
			undo := tc.corrupt(t, e)
			msg, ok := violation(e.checkInvariants)
			undo()
			if !ok {
				t.Fatalf("the check passed; want a violation mentioning %q", tc.want)
			}
			if !strings.Contains(msg, tc.want) {
				t.Errorf("violation %q, want one mentioning %q", msg, tc.want)
			}
			verify(t, e) // the check released its locks and passes again
		})
	}
}
