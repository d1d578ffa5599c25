//go:build linux

package server

import (
	"io"
	"net"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// startWith serves l with a fresh lineHandler, crowdedAbove set first.
func startWith(t *testing.T, l net.Listener, cfg Config, crowded int) *testServer {
	t.Helper()
	h := newLineHandler()
	s := New(h, cfg)
	s.crowdedAbove.Store(int64(crowded))
	// No connection is busy (see busyWindow): these tests park at once
	// between requests that follow each other quickly.
	s.busyWindow.Store(0)
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	network, addr := l.Addr().Network(), l.Addr().String()
	ts := &testServer{t: t, h: h, s: s, l: l, errc: errc,
		dial: func() (net.Conn, error) { return net.Dial(network, addr) }}
	t.Cleanup(ts.stop)
	return ts
}

// oneParkedBare starts a crowded server (crowdedAbove 0, the sweeper an
// hour away, busyWindow busy) with one connection that has served a
// request and parked bare.
func oneParkedBare(t *testing.T, busy time.Duration) (*testServer, *client) {
	t.Helper()
	if newPoller() == nil {
		t.Skip("no poller on this platform")
	}
	l, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := startWith(t, l, Config{ParkIdleAfter: time.Hour}, 0)
	ts.s.busyWindow.Store(int64(busy))
	c := ts.connect()
	c.send("hello\n")
	c.expect("HELLO\n")
	eventually(t, "parked bare", func() bool { return ts.s.bareCount() == 1 })
	return ts, c
}

// bareCount counts the parked connections that are bare (no net.Conn).
func (s *Server) bareCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		c.pmu.Lock()
		if c.parked && c.bare && c.nc == nil {
			n++
		}
		c.pmu.Unlock()
	}
	return n
}

// TestBareConnections: a parked plain connection gives its net.Conn back
// (it is bare) on TCP and unix sockets; woken while the server is crowded
// it stays bare, serves requests (pipelined, split across parks, which
// it parks with, replies larger than the socket takes at once, which send
// it back to a net.Conn for the wait), and reports the same addresses as before; Shutdown
// closes bare connections.
func TestBareConnections(t *testing.T) {
	if newPoller() == nil {
		t.Skip("no poller on this platform")
	}
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			var l net.Listener
			var err error
			if network == "unix" {
				l, err = ListenUnix(filepath.Join(t.TempDir(), "s"), 0)
			} else {
				l, err = Listen("tcp", "127.0.0.1:0")
			}
			if err != nil {
				t.Fatal(err)
			}
			testBare(t, l)
		})
	}
}

func testBare(t *testing.T, l net.Listener) {
	base := runtime.NumGoroutine()
	// crowdedAbove 0: any connection not parked makes the server
	// crowded, so connections park (bare) as soon as a read would
	// block and stay bare when they wake; the sweeper is an hour away.
	ts := startWith(t, l, Config{ParkIdleAfter: time.Hour}, 0)
	const n = 8
	cs := make([]*client, n)
	for i := range cs {
		cs[i] = ts.connect()
		cs[i].send("hello\n")
		cs[i].expect("HELLO\n")
	}
	eventually(t, "all parked bare", func() bool { return ts.s.bareCount() == n })
	checkAddrs := func() {
		t.Helper()
		want := map[string]string{} // remote -> local, as the clients see them
		for _, c := range cs {
			want[c.c.LocalAddr().String()] = c.c.RemoteAddr().String()
		}
		got := 0
		ts.s.EachConn(func(ci ConnInfo) {
			if ci.Listening {
				return
			}
			got++
			if l.Addr().Network() == "unix" {
				if ci.RemoteAddr.Network() != "unix" || ci.LocalAddr.String() != l.Addr().String() {
					t.Errorf("conn %d: addresses %v %v, want unix ones on %v", ci.ID, ci.RemoteAddr, ci.LocalAddr, l.Addr())
				}
				return
			}
			if local, ok := want[ci.RemoteAddr.String()]; !ok || local != ci.LocalAddr.String() {
				t.Errorf("conn %d: remote %v local %v, not a client's", ci.ID, ci.RemoteAddr, ci.LocalAddr)
			}
		})
		if got != n {
			t.Errorf("EachConn listed %d connections, want %d", got, n)
		}
	}
	checkAddrs()
	for range 3 {
		for _, c := range cs {
			c.send("again\nand again\n")
		}
		for _, c := range cs {
			c.expect("AGAIN\n")
			c.expect("AND AGAIN\n")
		}
		eventually(t, "bare again", func() bool { return ts.s.bareCount() == n })
	}
	checkAddrs()
	// A request split across a park: the connection parks bare with the
	// part it has (its read buffer stays), and the rest wakes it.
	c := cs[0]
	c.send("big 1000\n" + strings.Repeat("p", 10))
	eventually(t, "parked with part of a request", func() bool {
		return ts.s.bareCount() == n && ts.s.Stats().ReadBufBytes > 0
	})
	c.send(strings.Repeat("p", 990))
	if got := c.line(); !strings.HasPrefix(got, "GOT 1000 ") {
		t.Fatalf("got %q", got)
	}
	eventually(t, "bare after a split request", func() bool { return ts.s.bareCount() == n })
	// A reply far larger than the socket's buffers, the client reading
	// only once the server has filled them.
	const size = 32 << 20 // more than loopback buffers take unread
	c = cs[1]
	c.send("reply " + strconv.Itoa(size) + "\n")
	eventually(t, "the server waits to write", func() bool {
		writing := false
		ts.s.EachConn(func(ci ConnInfo) {
			// (Unix clients have no names: any connection writing
			// is this one.)
			if !ci.Listening && ci.State == StateWriting &&
				(l.Addr().Network() == "unix" || ci.RemoteAddr.String() == c.c.LocalAddr().String()) {
				writing = true
			}
		})
		return writing
	})
	c.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, size+1)
	if _, err := io.ReadFull(c.br, buf); err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(buf), "r") != size || buf[size] != '\n' {
		t.Fatal("the large reply came back wrong")
	}
	c.send("after\n")
	c.expect("AFTER\n")
	eventually(t, "bare after a large reply", func() bool { return ts.s.bareCount() == n })
	// Clients that close while parked are released.
	for _, c := range cs[n/2:] {
		c.c.Close()
	}
	eventually(t, "closed while parked", func() bool { return ts.s.Stats().CurrConns == n/2 })
	ts.stop()
	for _, c := range cs[:n/2] {
		c.expectEOF()
	}
	noLeaks(t, base)
}

// TestBareWakeBusy: a bare connection woken within ParkIdleAfter of its
// last request while the server is not crowded takes a net.Conn again
// (it is busy: Go's poller waits for its requests without a system call).
func TestBareWakeBusy(t *testing.T) {
	ts, c := oneParkedBare(t, 0)
	// Not crowded from now on; the last request was just now (an hour
	// is ParkIdleAfter).
	ts.s.crowdedAbove.Store(1 << 30)
	c.send("again\n")
	c.expect("AGAIN\n")
	var dressed bool
	eventually(t, "dressed", func() bool {
		ts.s.mu.Lock()
		defer ts.s.mu.Unlock()
		for cn := range ts.s.conns {
			cn.pmu.Lock()
			dressed = !cn.parked && !cn.bare && cn.nc != nil
			cn.pmu.Unlock()
		}
		return dressed
	})
	c.send("more\n")
	c.expect("MORE\n")
}

// maxParkedHeap bounds the live heap one parked plain connection may
// hold in the server framework: its Conn (256 B), a small session, its
// share of the server's and the poller's tables. Before connections
// parked bare it was about 750 B (the runtime's netFD, TCPConn and
// addresses besides, and off the heap a pollDesc of about 300 B each);
// memcached's idle connection costs about 640 B of RSS.
const maxParkedHeap = 560

// TestParkedMemory: 1000 parked connections hold no goroutine each, no
// net.Conn (so none of the runtime's socket objects, pollDescs included),
// and at most maxParkedHeap bytes of live heap each (runtime/metrics,
// after collections, less the same figure before they opened). The
// clients are raw sockets, off the heap.
func TestParkedMemory(t *testing.T) {
	if newPoller() == nil {
		t.Skip("no poller on this platform")
	}
	if testing.Short() {
		t.Skip("opens 1000 connections")
	}
	const n, batch = 1000, 100
	l, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := startWith(t, l, Config{ParkIdleAfter: time.Millisecond}, crowdedAbove)
	sa := l.Addr().(*net.TCPAddr)
	dial := func() int {
		t.Helper()
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		to := &syscall.SockaddrInet4{Port: sa.Port}
		copy(to.Addr[:], sa.IP.To4())
		if err := syscall.Connect(fd, to); err != nil {
			t.Fatal(err)
		}
		return fd
	}
	var fds []int
	t.Cleanup(func() {
		for _, fd := range fds {
			syscall.Close(fd)
		}
	})
	buf := make([]byte, 64)
	open := func(k int) {
		t.Helper()
		for range k {
			fd := dial()
			fds = append(fds, fd)
			if _, err := syscall.Write(fd, []byte("hello\n")); err != nil {
				t.Fatal(err)
			}
			if m, err := syscall.Read(fd, buf); err != nil || string(buf[:m]) != "HELLO\n" {
				t.Fatalf("reply %q, %v", buf[:max(m, 0)], err)
			}
		}
		eventually(t, "parked", func() bool { return ts.s.Stats().ParkedConns == uint64(len(fds)) })
	}
	// A first batch, closed again: the pools, the poller's table and
	// the runtime's caches reach their working size.
	open(batch)
	for _, fd := range fds {
		syscall.Close(fd)
	}
	fds = fds[:0]
	eventually(t, "closed", func() bool { return ts.s.Stats().CurrConns == 0 })

	g0, h0 := runtime.NumGoroutine(), settledHeap()
	for len(fds) < n {
		open(batch)
	}
	g1, h1 := runtime.NumGoroutine(), settledHeap()
	if b := ts.s.bareCount(); b != n {
		t.Errorf("%d of %d parked connections bare", b, n)
	}
	heap := (float64(h1) - float64(h0)) / n
	t.Logf("%d parked connections: %+d goroutines, %.0f B of live heap each", n, g1-g0, heap)
	if g1-g0 > n/100 {
		t.Errorf("%d more goroutines with %d connections parked", g1-g0, n)
	}
	if heap > maxParkedHeap {
		t.Errorf("a parked connection holds %.0f B of live heap, want at most %d", heap, maxParkedHeap)
	}
}

// settledHeap returns the live heap (runtime/metrics) after two
// collections: sync.Pools give their items up on the second.
func settledHeap() uint64 {
	runtime.GC()
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestConnSize: a parked connection's Conn is most of what it costs; it
// stays in the 256-byte size class.
func TestConnSize(t *testing.T) {
	if n := unsafe.Sizeof(Conn{}); n > 256 {
		t.Errorf("Conn is %d bytes, want at most 256 (a parked connection's cost)", n)
	}
}

// TestBornBare: connections waiting when the accept loop looks are
// accepted with accept4 and never get a net.Conn; they carry the
// listener's TCP_NODELAY and keep-alive (what Go sets on the connections
// it accepts), and are served like any other.
func TestBornBare(t *testing.T) {
	if newPoller() == nil {
		t.Skip("no poller on this platform")
	}
	l, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Connected before Serve: they wait in the backlog.
	const n = 5
	cs := make([]net.Conn, n)
	for i := range cs {
		if cs[i], err = net.Dial("tcp", l.Addr().String()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cs[i].Close() })
	}
	ts := startWith(t, l, Config{ParkIdleAfter: time.Hour}, crowdedAbove)
	eventually(t, "all parked bare", func() bool { return ts.s.bareCount() == n })
	ts.s.mu.Lock()
	for c := range ts.s.conns {
		c.pmu.Lock()
		for _, o := range []struct {
			level, opt int
			name       string
		}{
			{syscall.IPPROTO_TCP, syscall.TCP_NODELAY, "TCP_NODELAY"},
			{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, "SO_KEEPALIVE"},
		} {
			if v, err := syscall.GetsockoptInt(int(c.fd), o.level, o.opt); err != nil || v == 0 {
				t.Errorf("conn %d: %s = %d, %v", c.id, o.name, v, err)
			}
		}
		if c.rd != nil {
			t.Errorf("conn %d has a poller reader", c.id)
		}
		c.pmu.Unlock()
	}
	ts.s.mu.Unlock()
	for _, nc := range cs {
		c := &client{t: t, c: nc, br: newReader(nc)}
		c.send("born bare\n")
		c.expect("BORN BARE\n")
	}
}

// TestBareReject: a connection born bare beyond MaxConns gets
// RejectMessage and is closed.
func TestBareReject(t *testing.T) {
	s := New(newLineHandler(), Config{MaxConns: 1, RejectMessage: []byte("FULL\n")})
	s.curr.Store(1)
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fds[1])
	s.acceptedBare(fds[0], nil)
	var got []byte
	buf := make([]byte, 64)
	for {
		n, err := syscall.Read(fds[1], buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != "FULL\n" {
		t.Errorf("rejected connection got %q", got)
	}
	if st := s.Stats(); st.RejectedConns != 1 || st.CurrConns != 1 {
		t.Errorf("RejectedConns %d, CurrConns %d; want 1, 1", st.RejectedConns, st.CurrConns)
	}
}

// TestBareIdleTimeout: a connection parked at once (here bare, the
// server crowded) is closed for the idle timeout even when ParkIdleAfter
// is far longer: the sweeper runs at least every IdleTimeout.
func TestBareIdleTimeout(t *testing.T) {
	if newPoller() == nil {
		t.Skip("no poller on this platform")
	}
	l, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := startWith(t, l, Config{ParkIdleAfter: time.Hour, IdleTimeout: 200 * time.Millisecond}, 0)
	c := ts.connect()
	c.send("hi\n")
	c.expect("HI\n")
	c.expectEOF()
	eventually(t, "released", func() bool { return ts.s.Stats().CurrConns == 0 })
	if n := ts.s.Stats().IdleKicks; n != 1 {
		t.Errorf("IdleKicks = %d, want 1", n)
	}
}

// TestBareOneReadPerRequest: a bare connection on a crowded server that
// served all of a short read parks at once, without a read that finds
// nothing (its registration is level-triggered: a request that arrived
// meanwhile wakes it at once), and serves every request.
func TestBareOneReadPerRequest(t *testing.T) {
	ts, c := oneParkedBare(t, 0)
	base := ts.s.emptyReads.Load()
	const n = 200
	for range n {
		c.send("abc\n")
		c.expect("ABC\n")
	}
	// Pipelined requests split across reads still get their replies.
	c.send("x\ny\n")
	c.expect("X\n")
	c.expect("Y\n")
	if e := ts.s.emptyReads.Load() - base; e > n/10 {
		t.Errorf("%d reads found nothing for %d requests, want at most %d", e, n, n/10)
	}
}

// TestCrowdedBusyKeepsGoroutine: on a crowded server a connection whose
// requests follow each other within busyWindow takes a net.Conn again
// and stops parking at once (see busyWindow); one request and then
// silence parks at once.
func TestCrowdedBusyKeepsGoroutine(t *testing.T) {
	// Every request counts as soon after its previous one.
	ts, c := oneParkedBare(t, time.Hour)
	const n = 50
	for range n {
		c.send("abc\n")
		c.expect("ABC\n")
	}
	// Parking at once would park it after every request.
	if p := ts.s.parks.Load(); p > 2 {
		t.Errorf("parked %d times for %d requests, want at most 2", p, n+1)
	}
	if b := ts.s.bareCount(); b != 0 {
		t.Errorf("%d bare connections after a busy run, want 0", b)
	}
}
