package allocs

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"

	"github.com/mnemo-cache/mnemo/cache"
	"github.com/mnemo-cache/mnemo/engine"
	"github.com/mnemo-cache/mnemo/engine/memory"
	"github.com/mnemo-cache/mnemo/memcache"
	"github.com/mnemo-cache/mnemo/protocol/binary"
	"github.com/mnemo-cache/mnemo/server"
)

// The end-to-end benchmarks: one client connection over loopback to a
// whole server in-process (memory engine, cache, memcache handler,
// server framework), request and reply bytes checked once before the
// timed loop. They report the allocations of the whole process per
// request.
//
//	go test -bench . -benchmem -run '^$' ./internal/allocs/

// benchServer serves a fresh server on 127.0.0.1 port 0 for b and returns
// a connection to it.
func benchServer(b *testing.B) net.Conn {
	b.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := memory.New(engine.Env{MemoryLimit: 256 << 20, ItemSizeMax: 1 << 20, Logger: log}, "")
	if err != nil {
		b.Fatal(err)
	}
	h := memcache.NewHandler(memcache.Config{Cache: cache.New(eng, engine.SystemClock{}, cache.Options{}), Logger: log})
	srv := server.New(h, server.Config{MaxRequestSize: h.MaxRequestSize(), Logger: log})
	l, err := server.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(l) }()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		c.Close()
		srv.Shutdown(context.Background())
		<-done
		eng.Close()
	})
	return c
}

// benchRoundTrips stores key with a value of size bytes, then times
// request/reply round trips of req, each reply being want.
func benchRoundTrips(b *testing.B, size int, req func(key string) []byte, want func(key string, value []byte) []byte) {
	c := benchServer(b)
	key := "key:00000042"
	value := bytes.Repeat([]byte("v"), size)
	buf := make([]byte, 2<<20)
	set := append(append([]byte("set "+key+" 0 0 "+strconv.Itoa(size)+"\r\n"), value...), "\r\n"...)
	benchExchange(b, c, set, []byte("STORED\r\n"), buf)
	r, w := req(key), want(key, value)
	benchExchange(b, c, r, w, buf)
	timeExchanges(b, c, r, len(w), buf)
}

// timeExchanges times b.N round trips of req, each reply n bytes long
// (checked once before, by benchExchange).
func timeExchanges(b *testing.B, c net.Conn, req []byte, n int, buf []byte) {
	b.SetBytes(int64(n))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf[:n]); err != nil {
			b.Fatal(err)
		}
	}
}

// benchExchange writes req and checks that the reply is want.
func benchExchange(b *testing.B, c net.Conn, req, want, buf []byte) {
	b.Helper()
	if _, err := c.Write(req); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf[:len(want)]); err != nil {
		b.Fatal(err)
	}
	if !bytes.Equal(buf[:len(want)], want) {
		b.Fatalf("reply %.200q, want %.200q", buf[:len(want)], want)
	}
}

func textGet(key string) []byte { return []byte("get " + key + "\r\n") }

func textHit(key string, v []byte) []byte {
	w := []byte("VALUE " + key + " 0 " + strconv.Itoa(len(v)) + "\r\n")
	return append(append(w, v...), "\r\nEND\r\n"...)
}

func metaGet(key string) []byte { return []byte("mg " + key + " v f\r\n") }

func metaHit(key string, v []byte) []byte {
	w := []byte("VA " + strconv.Itoa(len(v)) + " f0\r\n")
	return append(append(w, v...), "\r\n"...)
}

func binGet(key string) []byte {
	return binary.AppendRequest(nil, binary.OpGet, 7, 0, nil, []byte(key), nil)
}

// binHit is the GET response; its CAS is not known in advance, so the
// benchmark only reads as many bytes (binExchange checks the frame).
func binHit(key string, v []byte) []byte {
	return binary.AppendItem(nil, binary.OpGet, 7, 0, 0, nil, v)
}

func BenchmarkTextGet100(b *testing.B)  { benchRoundTrips(b, 100, textGet, textHit) }
func BenchmarkTextGet4K(b *testing.B)   { benchRoundTrips(b, 4<<10, textGet, textHit) }
func BenchmarkTextGet256K(b *testing.B) { benchRoundTrips(b, 256<<10, textGet, textHit) }
func BenchmarkMetaGet100(b *testing.B)  { benchRoundTrips(b, 100, metaGet, metaHit) }
func BenchmarkMetaGet256K(b *testing.B) { benchRoundTrips(b, 256<<10, metaGet, metaHit) }

func BenchmarkBinaryGet100(b *testing.B)  { benchBinary(b, 100) }
func BenchmarkBinaryGet256K(b *testing.B) { benchBinary(b, 256<<10) }

// BenchmarkTextMultiGet100 is one "get" of 100 keys of 100 bytes each.
func BenchmarkTextMultiGet100(b *testing.B) {
	c := benchServer(b)
	buf := make([]byte, 2<<20)
	value := bytes.Repeat([]byte("v"), 100)
	req := []byte("get")
	var want []byte
	for i := range 100 {
		key := "key:" + strconv.Itoa(1000+i)
		set := append(append([]byte("set "+key+" 0 0 100\r\n"), value...), "\r\n"...)
		benchExchange(b, c, set, []byte("STORED\r\n"), buf)
		req = append(req, " "+key...)
		want = append(want, "VALUE "+key+" 0 100\r\n"...)
		want = append(append(want, value...), "\r\n"...)
	}
	req = append(req, "\r\n"...)
	want = append(want, "END\r\n"...)
	benchExchange(b, c, req, want, buf)
	timeExchanges(b, c, req, len(want), buf)
}

// BenchmarkMetaPipeline100 is 100 pipelined "mg <key> v" of 100-byte
// values ended by "mn".
func BenchmarkMetaPipeline100(b *testing.B) {
	c := benchServer(b)
	buf := make([]byte, 2<<20)
	value := bytes.Repeat([]byte("v"), 100)
	var req, want []byte
	for i := range 100 {
		key := "key:" + strconv.Itoa(1000+i)
		set := append(append([]byte("set "+key+" 0 0 100\r\n"), value...), "\r\n"...)
		benchExchange(b, c, set, []byte("STORED\r\n"), buf)
		req = append(req, "mg "+key+" v\r\n"...)
		want = append(want, "VA 100\r\n"...)
		want = append(append(want, value...), "\r\n"...)
	}
	req = append(req, "mn\r\n"...)
	want = append(want, "MN\r\n"...)
	benchExchange(b, c, req, want, buf)
	timeExchanges(b, c, req, len(want), buf)
}

func benchBinary(b *testing.B, size int) {
	c := benchServer(b)
	key := "key:00000042"
	value := bytes.Repeat([]byte("v"), size)
	buf := make([]byte, 2<<20)
	set := binary.AppendRequest(nil, binary.OpSet, 1, 0, make([]byte, 8), []byte(key), value)
	if _, err := c.Write(set); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf[:binary.HeaderLen]); err != nil {
		b.Fatal(err)
	}
	req := binGet(key)
	want := binHit(key, value)
	if _, err := c.Write(req); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf[:len(want)]); err != nil {
		b.Fatal(err)
	}
	// The CAS (bytes 16 to 24) differs; the rest must match.
	copy(buf[16:24], want[16:24])
	if !bytes.Equal(buf[:len(want)], want) {
		b.Fatalf("reply %.100q, want %.100q", buf[:len(want)], want)
	}
	timeExchanges(b, c, req, len(want), buf)
}
