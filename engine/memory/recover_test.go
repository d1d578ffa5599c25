package memory

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// The crash test drives the restartable format's primitives (allocFrame,
// writeRecord, moveRecord, publishRecord, setState, startChain) through a
// small single-threaded allocator shaped like the engine's (write head,
// FIFO of closed segments, one spare that a reclaim moves read items
// into), and journals every store the primitives make. A crash after k
// stores is the initial image with the first k stores applied; each such
// image is scanned (scanArena) and every key must be in the state after
// the last completed operation or, for the keys of the operation in
// flight, the state before or after it: no torn, stale, deleted or
// overwritten record may come back.
//
// Stores are journaled at the granularity the crash model gives: the
// body of a record byte by byte (in ascending, descending or shuffled
// order, since plain stores may land in any order), and the atomic word
// stores whole, in the order the code makes them.

type cstore struct {
	at int
	b  []byte
}

type cmodel map[string]string // key -> value; absent keys are missing

type crashWriter struct {
	t       *testing.T
	segSize int64
	nsegs   int
	tabLen  int
	img     []byte // segment table, then the segments
	init    []byte
	journal []cstore
	opOf    []int    // journal index -> operation index
	models  []cmodel // the model after each operation
	op      int
	order   string
	rng     *rand.Rand

	gen            uint64
	head, spare    int
	used           []int64
	free, fifo     []int
	idx            map[string]int64
	evicted        map[int]map[string]bool // operation -> keys its reclaim evicted
	deadBeforeLive bool                    // a deliberately wrong publish order (harness self-test)
	moveNext       bool
}

func newCrashWriter(t *testing.T, segSize int64, nsegs int, order string, seed uint64) *crashWriter {
	w := &crashWriter{t: t, segSize: segSize, nsegs: nsegs, tabLen: 8 * nsegs, order: order,
		rng: rand.New(rand.NewPCG(seed, 1)), head: -1, spare: nsegs - 1,
		used: make([]int64, nsegs), idx: map[string]int64{}, evicted: map[int]map[string]bool{}}
	w.img = make([]byte, w.tabLen+int(segSize)*nsegs)
	// Leftovers of an earlier life: the scan must never read them.
	for i := w.tabLen; i < len(w.img); i++ {
		w.img[i] = byte(w.rng.Uint32())
	}
	for i := 0; i < nsegs-1; i++ {
		w.free = append(w.free, i)
	}
	// A segment never started has generation 0 and an empty chain.
	for i := 0; i < nsegs; i++ {
		markEnd(w.mem(), int64(i)*segSize, segSize)
	}
	w.init = bytes.Clone(w.img)
	w.models = []cmodel{{}}
	return w
}

func (w *crashWriter) mem() []byte { return w.img[w.tabLen:] }
func (w *crashWriter) tab() []byte { return w.img[:w.tabLen] }

// diff runs fn and returns the bytes it changed, as single-byte stores in
// ascending order.
func (w *crashWriter) diff(fn func()) []cstore {
	before := bytes.Clone(w.img)
	fn()
	var out []cstore
	for i := range w.img {
		if w.img[i] != before[i] {
			out = append(out, cstore{i, []byte{w.img[i]}})
		}
	}
	return out
}

func (w *crashWriter) add(s cstore) {
	w.journal = append(w.journal, s)
	w.opOf = append(w.opOf, w.op)
}

// word journals fn, which makes one aligned atomic store, as one store.
func (w *crashWriter) word(fn func()) {
	d := w.diff(fn)
	if len(d) == 0 {
		return
	}
	lo, hi := d[0].at, d[len(d)-1].at
	if lo/8 != hi/8 && lo/4 != hi/4 {
		w.t.Fatalf("a store meant to be one word changed bytes %d..%d", lo, hi)
	}
	s := cstore{at: lo, b: bytes.Clone(w.img[lo : hi+1])}
	w.add(s)
}

// words journals fn, which makes atomic word stores at descending
// addresses (allocFrame: the end marker, the value length word, the info
// word), one store per 4-byte word, highest first.
func (w *crashWriter) words(fn func()) {
	d := w.diff(fn)
	slices.Reverse(d)
	for i := 0; i < len(d); {
		wd := d[i].at / 4
		j := i
		for j < len(d) && d[j].at/4 == wd {
			j++
		}
		lo := d[j-1].at
		w.add(cstore{at: lo, b: bytes.Clone(w.img[lo : d[i].at+1])})
		i = j
	}
}

// body journals fn's plain stores one byte at a time in w.order.
func (w *crashWriter) body(fn func()) {
	d := w.diff(fn)
	switch w.order {
	case "desc":
		slices.Reverse(d)
	case "shuffle":
		w.rng.Shuffle(len(d), func(i, j int) { d[i], d[j] = d[j], d[i] })
	}
	for _, s := range d {
		w.add(s)
	}
}

// startSeg makes segment id a fresh chain with the next generation.
func (w *crashWriter) startSeg(id int) {
	w.gen++
	// startChain's two stores, journaled in its order.
	w.word(func() { markEnd(w.mem(), int64(id)*w.segSize, w.segSize) })
	w.word(func() { setSegGen(w.tab(), id, w.gen) })
	w.used[id] = 0
}

// alloc frames an allocation of size bytes for the given record fields.
func (w *crashWriter) alloc(size int64, klen, vlen int, exp, flags uint32) int64 {
	if w.head < 0 || w.used[w.head]+size > w.segSize {
		if w.head >= 0 {
			w.fifo = append(w.fifo, w.head)
			w.head = -1
		}
		if n := len(w.free); n > 0 {
			w.head = w.free[n-1]
			w.free = w.free[:n-1]
			w.startSeg(w.head)
		} else {
			w.reclaim()
		}
		if w.used[w.head]+size > w.segSize {
			return w.alloc(size, klen, vlen, exp, flags)
		}
	}
	off := int64(w.head)*w.segSize + w.used[w.head]
	w.used[w.head] += size
	w.words(func() { allocFrame(w.mem(), off, size, w.segSize, klen, vlen, exp, flags) })
	return off
}

// reclaim empties the oldest closed segment into the spare, moving every
// other indexed record and evicting the rest; the spare becomes the head
// and the emptied segment the spare.
func (w *crashWriter) reclaim() {
	victim := w.fifo[0]
	w.fifo = w.fifo[1:]
	dest := w.spare
	w.startSeg(dest)
	mem := w.mem()
	base := int64(victim) * w.segSize
	for p := int64(0); p < w.used[victim]; {
		off := base + p
		r := recAt(mem, off)
		size := r.size()
		p += size
		key := string(r.key())
		if o, ok := w.idx[key]; !ok || o != off {
			continue
		}
		w.moveNext = !w.moveNext
		if w.moveNext && w.used[dest]+size <= w.segSize {
			doff := int64(dest)*w.segSize + w.used[dest]
			w.used[dest] += size
			w.words(func() {
				allocFrame(mem, doff, size, w.segSize, r.klen(), r.vlen(), uint32(r.exptime()), r.flags())
			})
			w.body(func() { moveRecord(mem, doff, off, size, infoBits(r.info())) })
			w.word(func() { recAt(mem, doff).setState(stLive) })
			w.word(func() { recAt(mem, off).setState(stDead) })
			w.idx[key] = doff
			continue
		}
		// Evict: a state change only, the key leaves the model.
		w.word(func() { r.setState(stDead) })
		delete(w.idx, key)
		m := w.cur()
		delete(m, key)
		if w.evicted[w.op] == nil {
			w.evicted[w.op] = map[string]bool{}
		}
		w.evicted[w.op][key] = true
	}
	w.head, w.spare = dest, victim
}

func (w *crashWriter) cur() cmodel { return w.models[len(w.models)-1] }

// begin starts an operation: the model after it starts as a copy of the
// current one.
func (w *crashWriter) begin() {
	w.op++
	w.models = append(w.models, maps(w.cur()))
}

func maps(m cmodel) cmodel {
	c := cmodel{}
	for k, v := range m {
		c[k] = v
	}
	return c
}

func (w *crashWriter) set(key, val string, exp, flags uint32) {
	w.begin()
	size := recSizeOf(len(key), len(val), exp, flags, true)
	off := w.alloc(size, len(key), len(val), exp, flags)
	mem := w.mem()
	w.body(func() {
		writeRecord(mem[off:off+size], []byte(key), []byte(val), uint64(w.op), exp, flags, 1000, 0, true)
	})
	old, had := w.idx[key]
	if w.deadBeforeLive && had {
		w.word(func() { recAt(mem, old).setState(stDead) })
		w.word(func() { recAt(mem, off).setState(stLive) })
	} else {
		w.word(func() { recAt(mem, off).setState(stLive) })
		if had {
			w.word(func() { recAt(mem, old).setState(stDead) })
		}
	}
	w.idx[key] = off
	w.cur()[key] = val
}

// abandon writes a complete record of key and then gives it up (a store
// whose re-check failed): it must never be recovered.
func (w *crashWriter) abandon(key, val string) {
	w.begin()
	size := recSizeOf(len(key), len(val), 0, 0, true)
	off := w.alloc(size, len(key), len(val), 0, 0)
	mem := w.mem()
	w.body(func() { writeRecord(mem[off:off+size], []byte(key), []byte(val), uint64(w.op), 0, 0, 1000, 0, true) })
	w.word(func() { recAt(mem, off).setState(stDead) })
	// Nothing changes: the model after equals the model before, so the
	// check allows only the old state even mid-operation.
}

func (w *crashWriter) del(key string) {
	w.begin()
	if off, ok := w.idx[key]; ok {
		w.word(func() { recAt(w.mem(), off).setState(stDead) })
		delete(w.idx, key)
	}
	delete(w.cur(), key)
}

// check scans the image after every prefix of the journal and returns the
// first violation.
func (w *crashWriter) check() error {
	img := bytes.Clone(w.init)
	if !bytes.Equal(w.replay(len(w.journal)), w.img) {
		return fmt.Errorf("journal does not reproduce the final image")
	}
	for k := 0; k <= len(w.journal); k++ {
		if k > 0 {
			s := w.journal[k-1]
			copy(img[s.at:], s.b)
		}
		before, after := w.models[len(w.models)-1], w.models[len(w.models)-1]
		var evicted map[string]bool
		if k < len(w.journal) {
			j := w.opOf[k]
			before, after, evicted = w.models[j-1], w.models[j], w.evicted[j]
		}
		if err := w.checkImage(bytes.Clone(img), before, after, evicted); err != nil {
			return fmt.Errorf("crash after %d of %d stores (operation %d): %w", k, len(w.journal), w.opOfSafe(k), err)
		}
	}
	return nil
}

func (w *crashWriter) opOfSafe(k int) int {
	if k < len(w.opOf) {
		return w.opOf[k]
	}
	return w.op
}

func (w *crashWriter) replay(k int) []byte {
	img := bytes.Clone(w.init)
	for _, s := range w.journal[:k] {
		copy(img[s.at:], s.b)
	}
	return img
}

func (w *crashWriter) scan(img []byte) (map[string]int64, scanStats) {
	got := map[string]int64{}
	st := scanArena(img[w.tabLen:], img[:w.tabLen], w.segSize, w.nsegs, nil, func(key []byte, off int64) (int64, bool) {
		old, had := got[string(key)]
		got[string(key)] = off
		return old, had
	})
	return got, st
}

// checkImage checks a crash image: each key in the state before or after
// the operation in flight, or absent if that operation's reclaim evicted
// it (an eviction may happen at any time; a later set of the key in the
// same operation does not make its absence a loss).
func (w *crashWriter) checkImage(img []byte, before, after cmodel, evicted map[string]bool) error {
	got, st := w.scan(img)
	mem := img[w.tabLen:]
	for k, off := range got {
		r := recAt(mem, off)
		if !r.valid(int(w.segSize)) {
			return fmt.Errorf("key %q: recovered record does not check", k)
		}
		v := string(r.value())
		bv, bok := before[k]
		av, aok := after[k]
		if !(bok && v == bv) && !(aok && v == av) {
			return fmt.Errorf("key %q: recovered %q, want %q (%v) or %q (%v)", k, trunc(v), trunc(bv), bok, trunc(av), aok)
		}
	}
	for k := range before {
		if _, ok := got[k]; ok || evicted[k] {
			continue
		}
		if _, ok := after[k]; ok {
			return fmt.Errorf("key %q lost", k)
		}
	}
	for k := range after {
		if _, ok := got[k]; !ok && !evicted[k] {
			if _, ok := before[k]; ok {
				return fmt.Errorf("key %q lost", k)
			}
		}
	}
	// The scan stored the losers dead: a second crash recovers the same.
	again, st2 := w.scan(img)
	if st2.replaced != 0 || st2.torn != 0 || len(again) != len(got) {
		return fmt.Errorf("second scan differs: %+v then %+v", st, st2)
	}
	for k, off := range got {
		if again[k] != off {
			return fmt.Errorf("key %q: second scan found %d, first %d", k, again[k], off)
		}
	}
	return nil
}

func trunc(s string) string {
	if len(s) > 24 {
		return s[:24] + "..."
	}
	return s
}

// workload runs a mix of sets, overwrites, deletes, abandoned stores and
// (through the allocator) segment reuse with moves and evictions.
func workload(w *crashWriter, nops int) {
	keys := []string{"a", "key-b", "k:c", "ddddddddddddddd", "e", "f-long-key-" + string(bytes.Repeat([]byte("x"), 40))}
	for i := 0; i < nops; i++ {
		k := keys[w.rng.IntN(len(keys))]
		switch n := w.rng.IntN(12); {
		case n >= 10 && w.head >= 0:
			// A record that fills the head exactly: the allocation past
			// it is the next segment's start, which it must not touch.
			v := fmt.Sprintf("%s=%d|", k, i)
			vlen := int(w.segSize-w.used[w.head]) - hdrMin - 4 - len(k) // the header and CRC
			if vlen < len(v) {
				w.del(k)
				continue
			}
			w.set(k, v+string(bytes.Repeat([]byte{'f'}, vlen-len(v))), 0, 0)
		case n < 6:
			v := fmt.Sprintf("%s=%d|", k, i)
			v += string(bytes.Repeat([]byte{byte('a' + i%26)}, w.rng.IntN(300)))
			var exp, flags uint32
			if n == 1 {
				exp = 4000000000
			}
			if n == 2 {
				flags = uint32(i)
			}
			w.set(k, v, exp, flags)
		case n < 8:
			w.del(k)
		default:
			w.abandon(k, fmt.Sprintf("abandoned %s %d", k, i))
		}
	}
}

func TestRecoverCrashAtEveryStore(t *testing.T) {
	for _, tc := range []struct {
		order string
		seed  uint64
	}{{"asc", 7}, {"desc", 7}, {"shuffle", 7}, {"shuffle", 8}, {"asc", 9}} {
		t.Run(fmt.Sprintf("%s-%d", tc.order, tc.seed), func(t *testing.T) {
			w := newCrashWriter(t, 2048, 4, tc.order, tc.seed)
			workload(w, 120)
			if w.gen < 6 {
				t.Fatalf("workload reused segments only %d times: reuse not exercised", w.gen)
			}
			if err := w.check(); err != nil {
				t.Fatal(err)
			}
			t.Logf("%d stores, %d operations, %d segment generations", len(w.journal), w.op, w.gen)
		})
	}
}

// TestRecoverHarnessCatchesBadOrder proves the crash check can fail: with
// the old record stored dead before the new one is live, a crash between
// the two loses the key, and the check must say so.
func TestRecoverHarnessCatchesBadOrder(t *testing.T) {
	w := newCrashWriter(t, 2048, 4, "asc", 7)
	w.deadBeforeLive = true
	workload(w, 60)
	if err := w.check(); err == nil {
		t.Fatal("a publish order that loses keys passed the crash check")
	} else {
		t.Logf("caught, as it should be: %v", err)
	}
}

// TestRecoverScanStats checks the scan's accounting and chain ends on a
// finished workload: the used offsets match the writer's, and the CAS
// high-water mark is the largest CAS written.
func TestRecoverScanStats(t *testing.T) {
	w := newCrashWriter(t, 2048, 4, "asc", 11)
	workload(w, 200)
	img := bytes.Clone(w.img)
	used := make([]int64, w.nsegs)
	got := map[string]int64{}
	st := scanArena(img[w.tabLen:], img[:w.tabLen], w.segSize, w.nsegs, used, func(key []byte, off int64) (int64, bool) {
		old, had := got[string(key)]
		got[string(key)] = off
		return old, had
	})
	for i := range used {
		if used[i] != w.used[i] {
			t.Errorf("segment %d: chain ends at %d, writer used %d", i, used[i], w.used[i])
		}
	}
	if st.torn != 0 || st.corrupt != 0 || st.replaced != 0 || st.live != len(w.idx) {
		t.Errorf("stats %+v with %d indexed keys", st, len(w.idx))
	}
	if st.genHigh != w.gen {
		t.Errorf("genHigh %d, want %d", st.genHigh, w.gen)
	}
	if st.casHigh == 0 || st.casHigh > uint64(w.op) {
		t.Errorf("casHigh %d, ops %d", st.casHigh, w.op)
	}
	for k, off := range w.idx {
		if got[k] != off {
			t.Errorf("key %q at %d, want %d", k, got[k], off)
		}
	}
}
