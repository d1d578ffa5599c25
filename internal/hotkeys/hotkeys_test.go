package hotkeys

import (
	"bytes"
	"math/rand"
	"slices"
	"strconv"
	"testing"
	"time"
)

// zipfStream returns n keys drawn from a Zipf distribution over universe
// keys (exponent s), and their exact counts.
func zipfStream(n int, universe uint64, s float64, seed int64) ([][]byte, map[string]uint64) {
	r := rand.New(rand.NewSource(seed))
	z := rand.NewZipf(r, s, 1, universe-1)
	names := make([][]byte, universe)
	for i := range names {
		names[i] = []byte("key:" + strconv.Itoa(i))
	}
	stream := make([][]byte, n)
	exact := map[string]uint64{}
	for i := range stream {
		k := names[z.Uint64()]
		stream[i] = k
		exact[string(k)]++
	}
	return stream, exact
}

// exactTop returns the top n keys of counts, largest first.
func exactTop(counts map[string]uint64, n int) []string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if counts[a] != counts[b] {
			if counts[a] > counts[b] {
				return -1
			}
			return 1
		}
		return bytes.Compare([]byte(a), []byte(b))
	})
	return keys[:n]
}

// TestSketchZipf checks Space-Saving's guarantees and its accuracy on a
// skewed stream: 1M requests over 100k keys, Zipf exponent 1.1, 80
// counters. Every counter brackets its key's true count, and the top 10
// are found in order.
func TestSketchZipf(t *testing.T) {
	for _, s := range []float64{1.1, 1.5} {
		stream, exact := zipfStream(1_000_000, 100_000, s, 42)
		sk := NewSketch(80)
		for _, k := range stream {
			sk.Add(k, 1)
		}
		var total uint64
		got := map[string]uint64{}
		sk.Each(func(key []byte, count, err uint64) {
			total += count
			got[string(key)] = count
			truth := exact[string(key)]
			if count < truth || count-err > truth {
				t.Errorf("s=%v: %s: count %d err %d, true %d: not count-err <= true <= count", s, key, count, err, truth)
			}
		})
		if total != uint64(len(stream)) {
			t.Errorf("s=%v: counters sum to %d, want the stream length %d", s, total, len(stream))
		}
		want := exactTop(exact, 10)
		rank := make([]string, 0, len(got))
		for k := range got {
			rank = append(rank, k)
		}
		slices.SortFunc(rank, func(a, b string) int {
			if got[a] != got[b] {
				if got[a] > got[b] {
					return -1
				}
				return 1
			}
			return bytes.Compare([]byte(a), []byte(b))
		})
		if !slices.Equal(rank[:10], want) {
			t.Errorf("s=%v: top 10 %q, exact %q", s, rank[:10], want)
		}
		// Every key above total/capacity must hold a counter.
		for k, c := range exact {
			if c > uint64(len(stream))/80 {
				if _, ok := got[k]; !ok {
					t.Errorf("s=%v: %s seen %d times (> n/capacity) has no counter", s, k, c)
				}
			}
		}
	}
}

// TestTrackerZipf runs a Tracker, sampled 1 in 4, on a Zipf stream with
// byte weights and checks both rankings against the exact ones.
func TestTrackerZipf(t *testing.T) {
	stream, exact := zipfStream(400_000, 50_000, 1.2, 7)
	tr := New(Config{Top: 5, Sample: 4})
	size := func(k []byte) int { return len(k) * 10 } // bytes grow with the key's length
	exactBytes := map[string]uint64{}
	for _, k := range stream {
		tr.Record(k, size(k))
	}
	for k, c := range exact {
		exactBytes[k] = c * uint64(size([]byte(k)))
	}
	rep := tr.Report()
	check := func(name string, got []Entry, counts map[string]uint64) {
		t.Helper()
		want := exactTop(counts, 5)
		if len(got) != 5 {
			t.Fatalf("%s: %d entries, want 5", name, len(got))
		}
		// Sampling blurs close ranks: the top 3 must be exact, and each
		// reported count within 10% of the truth.
		for i, e := range got {
			if i < 3 && string(e.Key) != want[i] {
				t.Errorf("%s rank %d: %s, want %s (got %v)", name, i+1, e.Key, want[i], got)
			}
			truth := float64(counts[string(e.Key)])
			if d := float64(e.Count) - truth; d > 0.1*truth || d < -0.1*truth {
				t.Errorf("%s: %s count %d, true %v", name, e.Key, e.Count, truth)
			}
		}
	}
	check("requests", rep.Requests, exact)
	check("bytes", rep.Bytes, exactBytes)
}

// TestTrackerWindow checks that rotation forgets what left the window and
// keeps what did not.
func TestTrackerWindow(t *testing.T) {
	tr := New(Config{Top: 3})
	for range 100 {
		tr.Record([]byte("old"), 1)
	}
	tr.Rotate()
	for range 10 {
		tr.Record([]byte("new"), 5)
	}
	rep := tr.Report()
	if len(rep.Requests) != 2 || string(rep.Requests[0].Key) != "old" || rep.Requests[0].Count != 100 ||
		string(rep.Requests[1].Key) != "new" || rep.Requests[1].Count != 10 {
		t.Fatalf("requests after one rotation: %+v", rep.Requests)
	}
	if len(rep.Bytes) != 2 || string(rep.Bytes[0].Key) != "old" || rep.Bytes[0].Count != 100 {
		t.Fatalf("bytes after one rotation: %+v", rep.Bytes)
	}
	for range Slices - 1 {
		tr.Rotate()
	}
	rep = tr.Report()
	if len(rep.Requests) != 1 || string(rep.Requests[0].Key) != "new" {
		t.Fatalf("after a full window, want only new: %+v", rep.Requests)
	}
	tr.Rotate()
	if rep = tr.Report(); len(rep.Requests) != 0 || len(rep.Bytes) != 0 {
		t.Fatalf("after the window passed everything, want nothing: %+v", rep)
	}
}

func TestTrackerStartRotates(t *testing.T) {
	tr := New(Config{Top: 1, Window: 4 * time.Millisecond})
	tr.Start()
	defer tr.Close()
	tr.Record([]byte("k"), 1)
	// Poll with patience: the ticker forgets k after a window or so.
	for deadline := time.Now().Add(time.Minute); len(tr.Report().Requests) != 0; {
		if time.Now().After(deadline) {
			t.Fatal("the window never rotated k out")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSketchLongAndEmptyKeys(t *testing.T) {
	sk := NewSketch(4)
	sk.Add(nil, 1)
	sk.Add(bytes.Repeat([]byte("x"), MaxKey+1), 1)
	sk.Add(bytes.Repeat([]byte("y"), MaxKey), 1)
	if sk.Len() != 1 {
		t.Fatalf("Len %d, want only the MaxKey-long key counted", sk.Len())
	}
}

// TestSketchReplacement checks that a replaced counter's key leaves the
// index and the new key inherits the smallest count as its error.
func TestSketchReplacement(t *testing.T) {
	sk := NewSketch(2)
	sk.Add([]byte("a"), 5)
	sk.Add([]byte("b"), 2)
	sk.Add([]byte("c"), 1) // replaces b
	got := map[string][2]uint64{}
	sk.Each(func(k []byte, c, e uint64) { got[string(k)] = [2]uint64{c, e} })
	want := map[string][2]uint64{"a": {5, 0}, "c": {3, 2}}
	if len(got) != 2 || got["a"] != want["a"] || got["c"] != want["c"] {
		t.Fatalf("got %v, want %v", got, want)
	}
	sk.Add([]byte("b"), 1) // b is new again: replaces c (3)
	sk.Each(func(k []byte, c, e uint64) { got[string(k)] = [2]uint64{c, e} })
	if got["b"] != [2]uint64{4, 3} {
		t.Fatalf("b: %v, want count 4 err 3", got["b"])
	}
}

func TestRecordAllocatesNothing(t *testing.T) {
	tr := New(Config{Top: 10})
	keys := make([][]byte, 1000)
	for i := range keys {
		keys[i] = []byte("key:" + strconv.Itoa(i))
	}
	i := 0
	allocs := testing.AllocsPerRun(10000, func() {
		tr.Record(keys[i%len(keys)], 100)
		i++
	})
	if allocs != 0 {
		t.Fatalf("Record allocates %v times per call", allocs)
	}
}

func BenchmarkRecord(b *testing.B) {
	stream, _ := zipfStream(1<<16, 100_000, 1.1, 1)
	for _, sample := range []uint32{1, 16} {
		b.Run("sample="+strconv.Itoa(int(sample)), func(b *testing.B) {
			tr := New(Config{Top: 10, Sample: sample})
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					tr.Record(stream[i&(1<<16-1)], 100)
					i++
				}
			})
		})
	}
}
