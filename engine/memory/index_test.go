package memory

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// indexFixture lays out one record per key in a plain byte slice and gives
// each key a chosen tag, so that collisions and wrap-around are forced.
type indexFixture struct {
	mem  []byte
	offs []int64
	keys [][]byte
}

func newIndexFixture(n int) *indexFixture {
	f := &indexFixture{}
	for i := range n {
		k := []byte("key-" + strconv.Itoa(i))
		size := recSize(len(k), 1)
		off := int64(len(f.mem))
		f.mem = append(f.mem, make([]byte, size)...)
		writeRecord(f.mem[off:off+size], k, []byte{'v'}, 1, 0, 0, 0, 0, false)
		f.offs = append(f.offs, off)
		f.keys = append(f.keys, k)
	}
	return f
}

func TestShardTable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tags  func(i int) uint64
		n     int
		start int
	}{
		{"distinct", func(i int) uint64 { return uint64(i) * 2654435761 & tagMask }, 200, minTable},
		{"one home", func(i int) uint64 { return 5 }, 40, minTable},
		{"same tag", func(i int) uint64 { return 15 }, 40, minTable},
		{"last home", func(i int) uint64 { return tagMask }, 40, minTable}, // wraps past the end
		{"near the end", func(i int) uint64 { return tagMask - uint64(i%5) }, 100, minTable},
		{"low bits differ", func(i int) uint64 { return 3<<20 | uint64(i) }, 100, minTable},
		{"mapped", func(i int) uint64 { return uint64(i) * 2654435761 & tagMask }, 3000, minTable},
		{"few tags", func(i int) uint64 { return uint64(i % 3 * 7) }, 100, minTable},
		{"high bits differ", func(i int) uint64 { return uint64(i)<<20 | 3 }, 100, minTable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newIndexFixture(tc.n)
			var s shard
			s.init(tc.start)
			defer s.free()
			present := make([]bool, tc.n)
			check := func(step int) {
				t.Helper()
				cnt := 0
				for i := range tc.n {
					slot, ent := s.find(f.mem, tc.tags(i), f.keys[i])
					if present[i] {
						cnt++
						if slot < 0 || entryOff(ent) != f.offs[i] || s.findEntry(makeEntry(tc.tags(i), f.offs[i])) != slot {
							t.Fatalf("step %d: key %d missing (slot %d)", step, i, slot)
						}
					} else if slot >= 0 || s.findEntry(makeEntry(tc.tags(i), f.offs[i])) >= 0 {
						t.Fatalf("step %d: deleted key %d still found", step, i)
					}
				}
				if cnt != s.n {
					t.Fatalf("step %d: n = %d, want %d", step, s.n, cnt)
				}
				if s.n*loadDen > len(s.tab)*loadNum {
					t.Fatalf("step %d: load %d/%d over the limit", step, s.n, len(s.tab))
				}
			}
			r := rand.New(rand.NewPCG(7, uint64(tc.n)))
			for step := range 6 * tc.n {
				i := r.IntN(tc.n)
				if present[i] {
					slot, _ := s.find(f.mem, tc.tags(i), f.keys[i])
					s.remove(slot)
				} else {
					s.insert(makeEntry(tc.tags(i), f.offs[i]))
				}
				present[i] = !present[i]
				if step%7 == 0 || step > 5*tc.n {
					check(step)
				}
			}
			check(-1)
		})
	}
}

func TestShardGrow(t *testing.T) {
	f := newIndexFixture(1000)
	var s shard
	s.init(minTable)
	defer s.free()
	for i := range 1000 {
		s.insert(makeEntry(uint64(i*7919)&tagMask, f.offs[i]))
	}
	// 1000 entries need 1250 slots at 80% load; growth by a quarter
	// reaches about 1000/0.64 = 1563, rounded up to whole pages.
	if len(s.tab) < 1250 || len(s.tab) > 2048 {
		t.Errorf("1000 entries: table of %d slots, want 1250..2048", len(s.tab))
	}
	if s.mapped == nil || len(s.mapped) != len(s.tab)*entryBytes {
		t.Errorf("a table of %d slots is not in its own mapping", len(s.tab))
	}
	for i := range 1000 {
		if slot, _ := s.find(f.mem, uint64(i*7919)&tagMask, f.keys[i]); slot < 0 {
			t.Fatalf("key %d lost in growth", i)
		}
	}
}
