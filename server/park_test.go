package server

import (
	"context"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// parkedCount counts the connections parked in the poller now.
func (s *Server) parkedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		c.pmu.Lock()
		if c.parked {
			n++
		}
		c.pmu.Unlock()
	}
	return n
}

// TestParking: idle connections are parked without a goroutine, come back
// when a request arrives (or the client closes), and are closed by
// Shutdown while parked.
func TestParking(t *testing.T) {
	for _, tr := range []transport{tcp, tlsTCP} {
		t.Run(string(tr), func(t *testing.T) { testParking(t, tr) })
	}
}

func testParking(t *testing.T, tr transport) {
	if newPoller() == nil {
		t.Skip("no poller on this platform")
	}
	base := runtime.NumGoroutine()
	ts := start(t, tr, Config{ParkIdleAfter: time.Millisecond})
	const n = 50
	cs := make([]*client, n)
	for i := range cs {
		cs[i] = ts.connect()
		cs[i].send("hello\n")
		cs[i].expect("HELLO\n")
	}
	eventually(t, "all parked", func() bool { return ts.s.parkedCount() == n })
	// Parked: no goroutine per connection (the accept loop, the poller
	// and the sweeper remain, and a few of the runtime's).
	eventually(t, "goroutines gone", func() bool { return runtime.NumGoroutine() < base+n/2 })
	if st := ts.s.Stats(); st.ReadBufBytes != 0 || st.ReplyBufBytes != 0 || st.CurrConns != n {
		t.Errorf("parked: %+v", st)
	}
	for range 3 {
		for _, c := range cs {
			c.send("again\n")
		}
		for _, c := range cs {
			c.expect("AGAIN\n")
		}
		eventually(t, "parked again", func() bool { return ts.s.parkedCount() == n })
	}
	// A request pipelined across a park: the first half, a park, the
	// rest.
	c := cs[0]
	c.send("big 1000\n" + strings.Repeat("p", 10))
	c.send(strings.Repeat("p", 990))
	if got := c.line(); !strings.HasPrefix(got, "GOT 1000 ") {
		t.Fatalf("got %q", got)
	}
	// Clients that close while parked are released.
	for _, c := range cs[n/2:] {
		c.c.Close()
	}
	eventually(t, "closed while parked", func() bool { return ts.s.Stats().CurrConns == n/2 })
	// Shutdown closes the parked rest and waits for them.
	ts.stop()
	for _, c := range cs[:n/2] {
		c.expectEOF()
	}
	noLeaks(t, base)
}

// TestParkingIdleTimeout: a parked connection still times out.
func TestParkingIdleTimeout(t *testing.T) {
	for _, tr := range []transport{tcp, tlsTCP} {
		t.Run(string(tr), func(t *testing.T) { testParkingIdleTimeout(t, tr) })
	}
}

func testParkingIdleTimeout(t *testing.T, tr transport) {
	if newPoller() == nil {
		t.Skip("no poller on this platform")
	}
	ts := start(t, tr, Config{ParkIdleAfter: time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	c := ts.connect()
	c.send("hi\n")
	c.expect("HI\n")
	c.expectEOF()
	eventually(t, "released", func() bool { return ts.s.Stats().CurrConns == 0 })
	if n := ts.s.Stats().IdleKicks; n != 1 {
		t.Errorf("IdleKicks = %d, want 1", n)
	}
}

// TestParkingClose: Close releases parked connections too.
func TestParkingClose(t *testing.T) {
	for _, tr := range []transport{tcp, tlsTCP} {
		t.Run(string(tr), func(t *testing.T) { testParkingClose(t, tr) })
	}
}

func testParkingClose(t *testing.T, tr transport) {
	if newPoller() == nil {
		t.Skip("no poller on this platform")
	}
	ts := start(t, tr, Config{ParkIdleAfter: time.Millisecond})
	c := ts.connect()
	c.send("hi\n")
	c.expect("HI\n")
	eventually(t, "parked", func() bool { return ts.s.parkedCount() == 1 })
	ts.s.Close()
	c.expectEOF()
	eventually(t, "released", func() bool { return ts.s.Stats().CurrConns == 0 })
}

// parkerSession counts its Park calls and checks that Serve and Park
// never overlap and that Park comes only with nothing pending.
type parkerSession struct {
	lineSession
	parks   *atomic.Int64
	parked  bool
	serving bool
}

func (s *parkerSession) Park(c *Conn) {
	if s.serving || s.parked {
		panic("Park during Serve or twice")
	}
	s.parked = true
	s.parks.Add(1)
}

func (s *parkerSession) Serve(c *Conn, in []byte) (int, int, error) {
	s.serving, s.parked = true, false
	defer func() { s.serving = false }()
	return s.lineSession.Serve(c, in)
}

// TestParkerAndRelease: a Parker session is told before its connection
// parks and serves again after; a sweep that pokes releaseAfter
// connections returns free memory to the OS.
func TestParkerAndRelease(t *testing.T) {
	if newPoller() == nil {
		t.Skip("no poller on this platform")
	}
	h := newLineHandler()
	var parks atomic.Int64
	s := New(HandlerFunc(func(c *Conn) Session {
		return &parkerSession{lineSession: lineSession{h: h}, parks: &parks}
	}), Config{ParkIdleAfter: time.Millisecond})
	s.releaseAfter = 1 // before Serve starts the sweeper
	l, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	ts := &testServer{t: t, h: h, s: s, l: l, errc: errc,
		dial: func() (net.Conn, error) { return net.Dial("tcp", l.Addr().String()) }}
	t.Cleanup(ts.stop)
	c := ts.connect()
	for i := 1; i <= 3; i++ {
		before := parks.Load()
		c.send("hello\n")
		c.expect("HELLO\n")
		eventually(t, "parked", func() bool { return s.Stats().ParkedConns == 1 })
		// At least one Park call (a connection born bare also parks
		// before its first request, see bare.go); the session
		// panics if Park comes twice without a Serve between.
		if got := parks.Load(); got <= before {
			t.Fatalf("round %d: no Park call", i)
		}
	}
	eventually(t, "memory released", func() bool { return s.releases.Load() >= 1 })
}

// TestParkingCrowded: while more than crowdedAbove connections are not
// parked, a connection parks as soon as its read would block, without
// waiting for the sweeper (here an hour away), and still serves every
// request, pipelined across parks included.
func TestParkingCrowded(t *testing.T) {
	if newPoller() == nil {
		t.Skip("no poller on this platform")
	}
	base := runtime.NumGoroutine()
	h := newLineHandler()
	s := New(h, Config{ParkIdleAfter: time.Hour})
	s.crowdedAbove.Store(4)
	s.busyWindow.Store(0) // the rounds follow each other quickly: none is busy
	l, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	ts := &testServer{t: t, h: h, s: s, l: l, errc: errc,
		dial: func() (net.Conn, error) { return net.Dial("tcp", l.Addr().String()) }}
	t.Cleanup(ts.stop)
	const n = 20
	cs := make([]*client, n)
	for i := range cs {
		cs[i] = ts.connect()
	}
	for round := range 3 {
		for _, c := range cs {
			c.send("hello\n")
		}
		for _, c := range cs {
			c.expect("HELLO\n")
		}
		// Parking stops once only crowdedAbove are left unparked.
		eventually(t, "crowd parked", func() bool { return s.Stats().ParkedConns >= n-4 })
		if round == 0 {
			eventually(t, "goroutines gone", func() bool { return runtime.NumGoroutine() < base+n/2 })
		}
	}
	if s.eagerParks.Load() < n-4 {
		t.Errorf("eagerParks = %d, want at least %d", s.eagerParks.Load(), n-4)
	}
	// A request split across a park.
	c := cs[n-1]
	c.send("big 1000\n" + strings.Repeat("p", 10))
	c.send(strings.Repeat("p", 990))
	if got := c.line(); !strings.HasPrefix(got, "GOT 1000 ") {
		t.Fatalf("got %q", got)
	}
	ts.stop()
	for _, c := range cs {
		c.expectEOF()
	}
	noLeaks(t, base)
}

// TestShutdownRightAfterServe: a Shutdown that races a Serve's start
// stops the poller and sweeper that the Serve starts. (stop once read the
// poller before startPoller set it: the poller then ran on, and Shutdown
// waited for it forever; under -race the two accesses were reported.)
func TestShutdownRightAfterServe(t *testing.T) {
	for range 50 {
		l, err := Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := New(newLineHandler(), Config{ParkIdleAfter: time.Millisecond})
		served := make(chan error, 1)
		go func() { served <- s.Serve(l) }()
		stopped := make(chan error, 1)
		go func() { stopped <- s.Shutdown(context.Background()) }()
		select {
		case err := <-stopped:
			if err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
		case <-time.After(2 * time.Minute):
			t.Fatal("Shutdown did not return: a poller started after stop runs on")
		}
		if err := <-served; err != nil {
			t.Fatalf("Serve: %v", err)
		}
	}
}
