package server

import (
	"io"
	"net"
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
