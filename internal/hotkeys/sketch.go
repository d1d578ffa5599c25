package hotkeys

import "unsafe"

// MaxKey is the longest key a sketch tracks (memcached's KEY_MAX_LENGTH).
// Longer keys are not counted.
const MaxKey = 250

// Sketch is a Space-Saving summary (Metwally, Agrawal, El Abbadi, "Efficient
// Computation of Frequent and Top-k Elements in Data Streams", 2005) of a
// weighted stream of keys, with a fixed number of counters:
//
//   - a key that holds a counter adds its weight to it;
//   - a new key takes a free counter, or else the counter with the
//     smallest count: it inherits that count as its error and adds its
//     weight.
//
// So a counter overestimates its key's weight by at most its error, and
// every key whose true weight exceeds total/capacity holds a counter.
//
// A Sketch allocates only in NewSketch: keys are copied into fixed slots,
// the index map's keys alias those slots (a slot's key is removed from the
// map before the slot is reused), and the counters form a binary min-heap
// of slot numbers. It is not safe for concurrent use.
type Sketch struct {
	slots []slot
	heap  []int32 // slot numbers, a min-heap by count
	index map[string]int32
}

type slot struct {
	count, err uint64
	pos        int32 // position in heap
	klen       uint8
	key        [MaxKey]byte
}

// NewSketch returns a sketch of capacity counters (at least 1).
func NewSketch(capacity int) *Sketch {
	capacity = max(capacity, 1)
	return &Sketch{
		slots: make([]slot, 0, capacity),
		heap:  make([]int32, 0, capacity),
		index: make(map[string]int32, capacity),
	}
}

// keyOf returns slot i's key, aliasing the slot's bytes.
func (s *Sketch) keyOf(i int32) string {
	sl := &s.slots[i]
	return unsafe.String(&sl.key[0], int(sl.klen))
}

// Add counts weight w for key. A key longer than MaxKey, or an empty one,
// is not counted.
func (s *Sketch) Add(key []byte, w uint64) {
	if len(key) == 0 || len(key) > MaxKey {
		return
	}
	if i, ok := s.index[string(key)]; ok {
		s.slots[i].count += w
		s.down(int(s.slots[i].pos))
		return
	}
	if len(s.slots) < cap(s.slots) {
		i := int32(len(s.slots))
		s.slots = append(s.slots, slot{count: w, pos: int32(len(s.heap))})
		sl := &s.slots[i]
		sl.klen = uint8(copy(sl.key[:], key))
		s.heap = append(s.heap, i)
		s.index[s.keyOf(i)] = i
		s.up(len(s.heap) - 1)
		return
	}
	i := s.heap[0]
	delete(s.index, s.keyOf(i))
	sl := &s.slots[i]
	sl.err = sl.count
	sl.count += w
	sl.klen = uint8(copy(sl.key[:], key))
	s.index[s.keyOf(i)] = i
	s.down(0)
}

// Reset empties the sketch, keeping its memory.
func (s *Sketch) Reset() {
	clear(s.index)
	s.slots = s.slots[:0]
	s.heap = s.heap[:0]
}

// Len returns the number of counters in use.
func (s *Sketch) Len() int { return len(s.slots) }

// Each calls fn with each counted key (valid only during the call), its
// count and its error bound, in no particular order.
func (s *Sketch) Each(fn func(key []byte, count, err uint64)) {
	for i := range s.slots {
		sl := &s.slots[i]
		fn(sl.key[:sl.klen], sl.count, sl.err)
	}
}

func (s *Sketch) less(a, b int) bool {
	return s.slots[s.heap[a]].count < s.slots[s.heap[b]].count
}

func (s *Sketch) swap(a, b int) {
	h := s.heap
	h[a], h[b] = h[b], h[a]
	s.slots[h[a]].pos = int32(a)
	s.slots[h[b]].pos = int32(b)
}

func (s *Sketch) up(j int) {
	for j > 0 {
		p := (j - 1) / 2
		if !s.less(j, p) {
			return
		}
		s.swap(j, p)
		j = p
	}
}

func (s *Sketch) down(j int) {
	n := len(s.heap)
	for {
		l := 2*j + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && s.less(r, l) {
			m = r
		}
		if !s.less(m, j) {
			return
		}
		s.swap(j, m)
		j = m
	}
}
