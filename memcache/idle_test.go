//go:build linux

package memcache_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mnemo-cache/mnemo/cache"
	"github.com/mnemo-cache/mnemo/engine"
	"github.com/mnemo-cache/mnemo/engine/enginetest"
	"github.com/mnemo-cache/mnemo/engine/memory"
	"github.com/mnemo-cache/mnemo/memcache"
	"github.com/mnemo-cache/mnemo/server"
)

// idleServer serves the memcached application on a loopback port with
// parking after parkAfter; it returns the server and its address.
func idleServer(t testing.TB, parkAfter time.Duration) (*server.Server, *net.TCPAddr) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	clock := enginetest.NewFakeClock(epoch)
	eng, err := memory.New(engine.Env{MemoryLimit: 64 << 20, ItemSizeMax: 1 << 20, Clock: clock, Logger: log}, "")
	if err != nil {
		t.Fatalf("memory.New: %v", err)
	}
	h := memcache.NewHandler(memcache.Config{Cache: cache.New(eng, clock, cache.Options{}), Logger: log})
	srv := server.New(h, server.Config{
		MaxConns:       100_000,
		MaxRequestSize: h.MaxRequestSize(),
		ParkIdleAfter:  parkAfter,
		Logger:         log,
	})
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(l)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
		eng.Close()
	})
	return srv, l.Addr().(*net.TCPAddr)
}

// rawConn is a client connection made with plain system calls, so that
// the client side of the test holds no Go heap per connection (the live
// heap the test measures is the server's).
type rawConn int

func dialRaw(t testing.TB, a *net.TCPAddr) rawConn {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	sa := &syscall.SockaddrInet4{Port: a.Port}
	copy(sa.Addr[:], a.IP.To4())
	tv := syscall.NsecToTimeval(int64(ioTimeout))
	syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	if err := syscall.Connect(fd, sa); err != nil {
		syscall.Close(fd)
		t.Fatalf("connect: %v", err)
	}
	return rawConn(fd)
}

// roundTrip sends req and reads until the reply ends with want's length
// of bytes, which must equal want.
func (c rawConn) roundTrip(t testing.TB, buf []byte, req, want string) {
	t.Helper()
	if _, err := syscall.Write(int(c), []byte(req)); err != nil {
		t.Fatalf("write: %v", err)
	}
	n := 0
	for n < len(want) {
		k, err := syscall.Read(int(c), buf[n:len(want)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil || k == 0 {
			t.Fatalf("read after %q: %d bytes %q, %v", req, n, buf[:n], err)
		}
		n += k
	}
	if string(buf[:n]) != want {
		t.Fatalf("%q: got %q, want %q", req, buf[:n], want)
	}
}

func (c rawConn) close() { syscall.Close(int(c)) }

// idleCost is what n parked connections hold in the server.
type idleCost struct {
	heapPerConn float64 // live heap per connection, bytes
	goroutines  int     // goroutines with the connections parked, less before
	heapBase    int64
	heapParked  int64
}

// idleBatch is how many connections measureIdle opens before it waits
// for them to park: it bounds how many goroutines serve them at once (the
// runtime keeps a dead goroutine's descriptor for reuse, so the peak
// number of goroutines, not the number of connections, would show in the
// heap).
const idleBatch = 50

// measureIdle opens n connections that each send one command (cmd(i),
// answered with want(i)), idleBatch at a time, waits until the server
// reports all n parked, and measures the live heap per connection. A
// warm-up batch, closed before the measure, pays the one-time costs
// (pools, the poller, goroutine descriptors). With MNEMO_IDLE_PROFILE
// set to a file name it writes a heap profile there while they are
// parked.
func measureIdle(t testing.TB, n int, cmd, want func(i int) string) idleCost {
	if os.Getenv("MNEMO_IDLE_PROFILE") != "" {
		runtime.MemProfileRate = 1
	}
	srv, addr := idleServer(t, time.Millisecond)
	buf := make([]byte, 4096)
	var conns []rawConn
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	open := func(from, to int) {
		for i := from; i < to; i++ {
			c := dialRaw(t, addr)
			conns = append(conns, c)
			c.roundTrip(t, buf, cmd(i), want(i))
		}
	}
	open(-idleBatch, 0)
	waitParked(t, srv, idleBatch)
	for _, c := range conns {
		c.close()
	}
	conns = conns[:0]
	waitConns(t, srv, 0)

	g0 := runtime.NumGoroutine()
	h0 := settledHeap()
	for i := 0; i < n; i += idleBatch {
		open(i, min(i+idleBatch, n))
		waitParked(t, srv, len(conns))
	}
	h1 := settledHeap()
	if f := os.Getenv("MNEMO_IDLE_PROFILE"); f != "" {
		out, err := os.Create(f)
		if err != nil {
			t.Fatal(err)
		}
		pprof.Lookup("heap").WriteTo(out, 0)
		out.Close()
	}
	return idleCost{
		heapPerConn: float64(h1-h0) / float64(n),
		goroutines:  runtime.NumGoroutine() - g0,
		heapBase:    h0,
		heapParked:  h1,
	}
}

// settledHeap is the live heap once sync.Pools have given up what they
// held (they keep their items through one collection): what the server
// holds for good.
func settledHeap() int64 {
	runtime.GC()
	return liveHeap()
}

// waitParked waits until the server reports n connections parked. It
// waits on the server's own count, not on time; ioTimeout is only a
// safety net against a server that never parks them.
func waitParked(t testing.TB, srv *server.Server, n int) {
	t.Helper()
	waitFor(t, func() bool { return srv.Stats().ParkedConns == uint64(n) },
		func() string { return fmt.Sprintf("%d of %d connections parked", srv.Stats().ParkedConns, n) })
}

func waitConns(t testing.TB, srv *server.Server, n int) {
	t.Helper()
	waitFor(t, func() bool { return srv.Stats().CurrConns == uint64(n) },
		func() string { return fmt.Sprintf("%d connections open, want %d", srv.Stats().CurrConns, n) })
}

func waitFor(t testing.TB, ok func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(6 * ioTimeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what())
		}
		time.Sleep(time.Millisecond)
	}
}

// idleCommands are the one command each idle connection sends.
var idleCommands = []struct {
	name      string
	cmd, want func(i int) string
}{
	{"get", func(i int) string { return "get idle:" + strconv.Itoa(i) + "\r\n" }, func(int) string { return "END\r\n" }},
	{"version", func(int) string { return "version\r\n" }, func(int) string { return "VERSION " + memcache.Version + "\r\n" }},
	{"binary-noop", func(int) string {
		return "\x80\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	},
		func(int) string {
			return "\x81\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
		}},
}

// maxParkedHeap bounds the live heap one parked connection may hold in
// the server: its Conn (256 B) and descriptor (a parked plain connection
// keeps no net.Conn), a small session, and its share of the server's
// maps; measured 350 to 430 B. memcached holds about 640 bytes per idle
// connection.
const maxParkedHeap = 600

// TestParkedConnectionHeap: connections that each sent one command and
// were parked hold at most maxParkedHeap bytes of live heap each, and no
// goroutine.
func TestParkedConnectionHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1000 connections")
	}
	const n = 1000
	for _, tc := range idleCommands {
		t.Run(tc.name, func(t *testing.T) {
			c := measureIdle(t, n, tc.cmd, tc.want)
			t.Logf("%d parked connections: live heap %d -> %d bytes, %.0f bytes per connection, %+d goroutines",
				n, c.heapBase, c.heapParked, c.heapPerConn, c.goroutines)
			if c.heapPerConn > maxParkedHeap {
				t.Errorf("live heap per parked connection %.0f bytes, want at most %d", c.heapPerConn, maxParkedHeap)
			}
			if c.goroutines > n/10 {
				t.Errorf("%d more goroutines with %d connections parked", c.goroutines, n)
			}
		})
	}
}

// BenchmarkIdleConnections reports what MNEMO_IDLE_CONNS (default 10000)
// parked connections hold: live heap per connection (heap-B/conn) and
// goroutines. Run it once: go test -run XXX -bench IdleConnections
// -benchtime 1x ./memcache/
func BenchmarkIdleConnections(b *testing.B) {
	n := 10000
	if s := os.Getenv("MNEMO_IDLE_CONNS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	for _, tc := range idleCommands {
		b.Run(tc.name, func(b *testing.B) {
			var c idleCost
			for range b.N {
				c = measureIdle(b, n, tc.cmd, tc.want)
			}
			b.ReportMetric(c.heapPerConn, "heap-B/conn")
			b.ReportMetric(float64(c.goroutines), "goroutines")
		})
	}
}

// TestParkedStatsExact: a connection's command counters survive its
// parking (its cache session folds them into the totals) and keep
// counting after it wakes; "stats" counts each command once.
func TestParkedStatsExact(t *testing.T) {
	srv, addr := idleServer(t, time.Millisecond)
	buf := make([]byte, 64<<10)
	a := dialRaw(t, addr)
	defer a.close()
	a.roundTrip(t, buf, "get k1\r\n", "END\r\n")
	waitParked(t, srv, 1)
	a.roundTrip(t, buf, "set k1 0 0 1\r\nx\r\n", "STORED\r\n")
	a.roundTrip(t, buf, "get k1\r\n", "VALUE k1 0 1\r\nx\r\nEND\r\n")
	waitParked(t, srv, 1)
	m := dialRaw(t, addr)
	defer m.close()
	stats := m.stats(t, buf)
	for name, want := range map[string]string{"cmd_get": "2", "get_hits": "1", "get_misses": "1", "cmd_set": "1"} {
		if stats[name] != want {
			t.Errorf("%s = %q, want %s", name, stats[name], want)
		}
	}
}

// stats sends "stats" and returns its values by name.
func (c rawConn) stats(t testing.TB, buf []byte) map[string]string {
	t.Helper()
	if _, err := syscall.Write(int(c), []byte("stats\r\n")); err != nil {
		t.Fatal(err)
	}
	n := 0
	for !strings.HasSuffix(string(buf[:n]), "END\r\n") {
		k, err := syscall.Read(int(c), buf[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil || k == 0 {
			t.Fatalf("stats: %q, %v", buf[:n], err)
		}
		n += k
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(buf[:n]), "\r\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "STAT" {
			out[f[1]] = f[2]
		}
	}
	return out
}
