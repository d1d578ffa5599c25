package server

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
)

func dialBench(tb testing.TB, cfg Config) (net.Conn, func()) {
	tb.Helper()
	s := New(newLineHandler(), cfg)
	l, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go s.Serve(l)
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	return c, func() {
		c.Close()
		s.Close()
	}
}

func roundTrip(tb testing.TB, c net.Conn, req, buf []byte) {
	if _, err := c.Write(req); err != nil {
		tb.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf); err != nil {
		tb.Fatal(err)
	}
}

// TestRoundTripAllocs: a steady-state request/reply costs the server no
// allocation (the count is process-wide, so it includes the server's
// goroutine).
func TestRoundTripAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	c, stop := dialBench(t, Config{})
	defer stop()
	req, buf := []byte("ping\n"), make([]byte, 5)
	for range 100 {
		roundTrip(t, c, req, buf)
	}
	if n := testing.AllocsPerRun(500, func() { roundTrip(t, c, req, buf) }); n > 0.2 {
		t.Errorf("%.2f allocations per round trip", n)
	}
}

// TestLargeReplyAllocs: a pipelined batch of large replies, each made
// room for with GrowOut, reuses the server's pooled large reply buffers:
// no allocation per batch in steady state (a reply buffer grown by append
// would be reallocated several times per batch, and dropped after it).
func TestLargeReplyAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	c, stop := dialBench(t, Config{})
	defer stop()
	const n, size = 24, 16 << 10 // more than LargeReplyBuffer in all
	req := []byte(strings.Repeat("blob 16384\n", n))
	buf := make([]byte, n*(size+1))
	for range 20 {
		roundTrip(t, c, req, buf)
	}
	if buf[0] != 'b' || buf[size] != '\n' {
		t.Fatalf("reply %q...", buf[:10])
	}
	if a := testing.AllocsPerRun(100, func() { roundTrip(t, c, req, buf) }); a > 0.5 {
		t.Errorf("%.2f allocations per batch of %d large replies", a, n)
	}
}

// TestLargeRequestAllocs: a request larger than the read buffer is read
// into a grown buffer that comes from a pool and goes back to it, so a
// steady stream of large requests allocates nothing (before the pools,
// one buffer of the request's size per request).
func TestLargeRequestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	c, stop := dialBench(t, Config{})
	defer stop()
	const size = 300_000
	req := append([]byte("big 300000\n"), bytes.Repeat([]byte("v"), size)...)
	buf := make([]byte, 64)
	var got []byte
	trip := func() {
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		got = buf[:0]
		for len(got) == 0 || got[len(got)-1] != '\n' {
			n, err := c.Read(buf[len(got):cap(buf)])
			if err != nil {
				t.Fatal(err)
			}
			got = buf[:len(got)+n]
		}
	}
	for range 20 {
		trip()
	}
	// The buffer held while serving: 300,000 bytes and the line, rounded
	// up to their size class (growSize).
	want, _ := growSize(size + len("big 300000\n"))
	if w := "GOT 300000 buf=" + strconv.Itoa(want) + "\n"; string(got) != w {
		t.Fatalf("reply %q, want %q", got, w)
	}
	if a := testing.AllocsPerRun(50, trip); a > 0.5 {
		t.Errorf("%.2f allocations per request of %d bytes", a, size)
	}
}

// TestGrowSize checks the size classes of grown read buffers: each fits
// what was wanted with at most 12.5% to spare (above the smallest), and
// a class names one size (up to 32 KiB, the multiples of 4 KiB).
func TestGrowSize(t *testing.T) {
	sizeOf := map[int]int{}
	for want := 1; want <= maxGrowPooled+5<<20; want += 1 + want/97 {
		size, class := growSize(want)
		if size < want {
			t.Fatalf("growSize(%d) = %d, smaller", want, size)
		}
		if want > 1<<minGrowShift && float64(size) > float64(want)*1.125+1 {
			t.Errorf("growSize(%d) = %d: more than 12.5%% to spare", want, size)
		}
		if want <= 1<<minGrowShift && (size%4096 != 0 || size-want >= 4096) {
			t.Errorf("growSize(%d) = %d, want the next multiple of 4096", want, size)
		}
		if class < 0 {
			if want <= maxGrowPooled {
				t.Errorf("growSize(%d): not pooled", want)
			}
			continue
		}
		if class >= growClasses {
			t.Fatalf("growSize(%d): class %d of %d", want, class, growClasses)
		}
		if s, ok := sizeOf[class]; ok && s != size {
			t.Fatalf("class %d has sizes %d and %d", class, s, size)
		}
		sizeOf[class] = size
		if s2, c2 := growSize(size); s2 != size || c2 != class {
			t.Errorf("growSize(%d) = %d, %d; want the class of its own size, %d", size, s2, c2, class)
		}
	}
	if len(sizeOf) != growClasses {
		t.Errorf("%d classes used, want all %d", len(sizeOf), growClasses)
	}
}

// BenchmarkPingPong measures one request/reply round trip over loopback.
func BenchmarkPingPong(b *testing.B) {
	c, stop := dialBench(b, Config{})
	defer stop()
	req, buf := []byte("ping\n"), make([]byte, 5)
	b.ReportAllocs()
	b.SetBytes(int64(len(req)))
	for b.Loop() {
		roundTrip(b, c, req, buf)
	}
}

// BenchmarkPipelined measures 100 pipelined requests per round trip.
func BenchmarkPipelined(b *testing.B) {
	c, stop := dialBench(b, Config{})
	defer stop()
	req := []byte(strings.Repeat("ping\n", 100))
	buf := make([]byte, len(req))
	b.ReportAllocs()
	b.SetBytes(int64(len(req)))
	for b.Loop() {
		roundTrip(b, c, req, buf)
	}
}

// BenchmarkPingPongParallel measures round trips on many connections at
// once.
func BenchmarkPingPongParallel(b *testing.B) {
	s := New(newLineHandler(), Config{})
	l, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go s.Serve(l)
	defer s.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		req, buf := []byte("ping\n"), make([]byte, 5)
		for pb.Next() {
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
