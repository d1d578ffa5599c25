package allocs

import (
	"testing"
)

// TestSteadyStateAllocsInstrumented is TestSteadyStateAllocs with every
// request-path instrument on: latency histograms (--metrics-listen) and
// hot keys counted for every request (--hotkeys-sample 1). They must add
// no allocation, whatever key comes (new keys replace old counters).
func TestSteadyStateAllocsInstrumented(t *testing.T) {
	s := startServer(t, "--metrics-listen", "127.0.0.1:0", "--hotkeys", "10", "--hotkeys-sample", "1")
	// Misses of ever new keys: each takes a hot-key counter from another.
	miss := []byte("get miss:00000000\r\n")
	next := func() {
		for i := len("get miss:00000000") - 1; i >= len("get miss:"); i-- {
			if miss[i]++; miss[i] <= '9' {
				return
			}
			miss[i] = '0'
		}
	}
	for range 500 {
		roundTrip(t, s.c, s.set, []byte("STORED\r\n"), s.buf)
		roundTrip(t, s.c, s.get, s.hit, s.buf)
		roundTrip(t, s.c, miss, []byte("END\r\n"), s.buf)
		next()
	}
	s.checkAllocs(t, " with metrics and hot keys on", []allocCase{
		{"set", s.set, []byte("STORED\r\n"), nil},
		{"get", s.get, s.hit, nil},
		{"get miss, new keys", miss, []byte("END\r\n"), next},
		{"mg", []byte("mg key:00000042 v f\r\n"), append(append([]byte("VA 100 f0\r\n"), s.value...), "\r\n"...), nil},
	})
}
