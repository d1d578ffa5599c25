package allocs

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/mnemo-cache/mnemo/config"
	"github.com/mnemo-cache/mnemo/internal/daemon"
)

// TestSteadyStateAllocsInstrumented is TestSteadyStateAllocs with every
// request-path instrument on: latency histograms (--metrics-listen) and
// hot keys counted for every request (--hotkeys-sample 1). They must add
// no allocation, whatever key comes (new keys replace old counters).
func TestSteadyStateAllocsInstrumented(t *testing.T) {
	cfg, err := config.Parse([]string{"-l", "127.0.0.1:0", "-U", "0", "-m", "64",
		"--metrics-listen", "127.0.0.1:0", "--hotkeys", "10", "--hotkeys-sample", "1"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.Start(cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	c, err := net.Dial("tcp", d.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	value := bytes.Repeat([]byte("v"), 100)
	set := append(append([]byte("set key:00000042 0 0 100\r\n"), value...), "\r\n"...)
	get := []byte("get key:00000042\r\n")
	hit := append(append([]byte("VALUE key:00000042 0 100\r\n"), value...), "\r\nEND\r\n"...)
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
	buf := make([]byte, 4096)
	for range 500 {
		roundTrip(t, c, set, []byte("STORED\r\n"), buf)
		roundTrip(t, c, get, hit, buf)
		roundTrip(t, c, miss, []byte("END\r\n"), buf)
		next()
	}
	limit := 0.0
	if raceEnabled {
		limit = 1
	}
	for _, tc := range []struct {
		name      string
		req, want []byte
		after     func()
	}{
		{"set", set, []byte("STORED\r\n"), nil},
		{"get", get, hit, nil},
		{"get miss, new keys", miss, []byte("END\r\n"), next},
		{"mg", []byte("mg key:00000042 v f\r\n"), append(append([]byte("VA 100 f0\r\n"), value...), "\r\n"...), nil},
	} {
		n := testing.AllocsPerRun(2000, func() {
			roundTrip(t, c, tc.req, tc.want, buf)
			if tc.after != nil {
				tc.after()
			}
		})
		if n > limit {
			t.Errorf("%s: %v heap allocations per request with metrics and hot keys on, want %v", tc.name, n, limit)
		}
	}
}
