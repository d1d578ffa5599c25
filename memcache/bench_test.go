package memcache_test

import (
	"io"
	"strings"
	"testing"
)

// BenchmarkPipelinedGets measures the text protocol's request path over
// loopback: one write of 100 requests (a hit and a miss each), one read
// of their replies. It is the benchmark for what logging costs when off
// (-vv, watch): run it before and after a change to the request path.
func BenchmarkPipelinedGets(b *testing.B) {
	s := startMnemo(b, opts{})
	benchPipelined(b, s.addr, "get hit miss\r\n", "VALUE hit 0 5\r\nvalue\r\nEND\r\n")
}

// BenchmarkPipelinedSets is BenchmarkPipelinedGets for set.
func BenchmarkPipelinedSets(b *testing.B) {
	s := startMnemo(b, opts{})
	benchPipelined(b, s.addr, "set k 0 0 5\r\nvalue\r\n", "STORED\r\n")
}

func benchPipelined(b *testing.B, addr, req, reply string) {
	c := dial(b, addr)
	c.send("set hit 0 0 5\r\nvalue\r\n")
	if got := string(c.read(len("STORED\r\n"))); got != "STORED\r\n" {
		b.Fatalf("set: %q", got)
	}
	const batch = 100
	reqs := strings.Repeat(req, batch)
	buf := make([]byte, batch*len(reply))
	b.ReportAllocs()
	b.SetBytes(int64(len(reqs)))
	b.ResetTimer()
	for range b.N {
		if _, err := io.WriteString(c.nc, reqs); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c.nc, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if string(buf[len(buf)-len(reply):]) != reply {
		b.Fatalf("reply %q", buf[len(buf)-len(reply):])
	}
}
