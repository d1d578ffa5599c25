package server

import (
	"runtime"
	"runtime/debug"
	"time"
)

// DefaultParkIdleAfter is the zero value of Config.ParkIdleAfter.
const DefaultParkIdleAfter = time.Second

// Parking idle connections
//
// A goroutine blocked in a read keeps its stack (4 KiB or more), the
// largest part of an idle connection's cost. So a connection idle for
// Config.ParkIdleAfter, with nothing buffered, is parked: its descriptor
// (a plain connection's own duplicate, see bare.go) is registered
// (one-shot) in the server's poller and its goroutine ends;
// when the descriptor becomes readable the poller starts a new goroutine
// that carries on where the old one stopped. A connection with work
// always has a goroutine, so a Session may still block.
//
// The sweeper, one goroutine per server, finds connections waiting for a
// request for longer than ParkIdleAfter and pokes them: it moves their
// read deadline into the past. The woken goroutine parks its connection
// if nothing is buffered (else it carries on). Connection c's pmu orders
// parking against waking, stopping and the sweeper: whoever changes
// c.parked under it owns the connection next. pmu also guards c.nc and
// c.fd, which the owner changes when the connection goes bare or takes
// a net.Conn again, against the goroutines that read them (addresses,
// Shutdown, the sweeper). Lock order: Server.mu, Conn.pmu, poller.mu.

// Crowded servers park at once
//
// Waiting ParkIdleAfter before parking keeps the request path free of
// epoll calls while a server has few connections. When many connections
// arrive together (a client pool opening, a proxy reconnecting), each
// would hold a goroutine for that second, and the runtime never frees a
// goroutine's descriptor (runtime.g, about 0.4 KiB) once it has existed:
// the peak count of goroutines stays in the process for good. So while
// more than crowdedAbove connections are not parked, a connection whose
// read would block with nothing buffered parks at once, as in an event
// loop: one epoll_ctl per wake-up, and the goroutine count stays near
// crowdedAbove plus the connections with work.
const crowdedAbove = 512

// busyWindow: a connection whose request came within this long of its
// previous one is busy, and keeps its goroutine while the server is
// crowded: it does not park at once, and a bare one that wakes that soon
// takes a net.Conn again. Parking at once costs a busy connection far
// more than the one epoll_ctl it was meant to: measured with 1000
// connections at pipeline 1 (-t 1), the poller's wake-up, a goroutine
// started per wake-up and the epoll_ctl took the server from 7.3-7.9 us
// to 12.6-15.8 us per request and halved its throughput (BENCHMARKS.md,
// "Busy connections on a crowded server"). A connection that is not busy
// (one request and then silence, as a pool opening) parks at once as
// before; a busy one that falls silent parks after ParkIdleAfter.
const busyWindow = 100 * time.Millisecond

// crowded reports whether connections should park as soon as a read
// would block (see crowdedAbove).
func (s *Server) crowded() bool {
	return s.poller != nil && s.curr.Load()-s.parked.Load() > s.crowdedAbove.Load()
}

// park registers c in the poller and reports whether the calling
// goroutine must end (the poller or a stopper now owns c).
func (c *Conn) park() bool {
	p := c.srv.poller
	if p == nil || c.fd < 0 {
		return false
	}
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if c.srv.stopping.Load() {
		return false
	}
	c.poked.Store(false)
	switch {
	case c.bare:
	case c.raw == nil:
		// A plain connection parks bare: its net.Conn goes back to
		// the runtime (see bare.go).
		if !c.shed() {
			c.nc.SetReadDeadline(time.Time{})
		}
	default:
		c.nc.SetReadDeadline(time.Time{})
		// A TLS connection holds a read buffer between reads; with
		// nothing buffered (park's precondition) it goes back now.
		c.dropBuf()
	}
	if !p.arm(c) {
		return false
	}
	c.parked = true
	c.srv.parked.Add(1)
	c.srv.parks.Add(1)
	return true
}

// wake is called by the poller when a parked connection's descriptor is
// readable (or closed): it gives the connection a goroutine again.
func (c *Conn) wake() {
	if c.claim() {
		go c.resume()
	}
}

// claim takes a parked connection over from the poller; it reports false
// when c was not parked.
func (c *Conn) claim() bool {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	ok := c.parked
	if ok {
		c.parked = false
		c.srv.parked.Add(-1)
	}
	return ok
}

// poke wakes a connection blocked waiting for a request so that it parks;
// it reports false when c is parked or poked already.
func (c *Conn) poke() bool {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if c.parked || c.poked.Load() || c.nc == nil || c.fd < 0 {
		// (A bare connection's reads never block; a connection
		// without a descriptor cannot park.)
		return false
	}
	c.poked.Store(true)
	c.nc.SetReadDeadline(aLongTimeAgo)
	return true
}

// resume is a parked connection's new goroutine.
func (c *Conn) resume() {
	if since := time.Now().UnixNano() - c.lastReq.Load(); c.bare && c.reads.Load() > 0 &&
		(since < c.srv.busyWindow.Load() || c.srv.curr.Load() <= c.srv.crowdedAbove.Load() && time.Duration(since) < c.srv.cfg.ParkIdleAfter) {
		// Busy again, and the server has too few connections to be
		// crowded, or busy (see busyWindow) on a crowded one: back to
		// Go's poller, where waiting for the next request costs no
		// system call (see bare.go). (A connection that is not busy
		// on a crowded server stays bare: as crowding comes and goes
		// it would take a net.Conn and give it up again, over ten
		// system calls each time.)
		if err := c.dress(); err != nil {
			c.logClose(err)
			c.finish()
			return
		}
	}
	if c.serveLoop(false) {
		return
	}
	c.finish()
}

// stopParked finishes c if it is parked, for stop (called under s.mu).
func (c *Conn) stopParked() bool {
	if !c.claim() {
		return false
	}
	go c.finish()
	return true
}

// sweep runs until the server stops: every ParkIdleAfter (or
// IdleTimeout, if shorter) it pokes the connections that have waited
// ParkIdleAfter for a request, and closes parked ones past the idle
// timeout.
func (s *Server) sweep() {
	defer s.bg.Done()
	// Connections that park at once (bare or crowded) are closed for
	// the idle timeout only here: sweep at least that often.
	period := s.cfg.ParkIdleAfter
	if it := s.cfg.IdleTimeout; it > 0 && it < period {
		period = it
	}
	t := time.NewTicker(period)
	defer t.Stop()
	var (
		release     <-chan time.Time // armed after a mass park
		lastRelease time.Time
		pending     int   // connections parked since the last release
		eager       int64 // s.eagerParks at the last tick
	)
	for {
		select {
		case <-s.done:
			return
		case now := <-t.C:
			poked := s.sweepOnce(now)
			e := s.eagerParks.Load()
			poked += int(e - eager)
			eager = e
			pending += poked
			if pending >= s.releaseAfter && poked <= s.releaseAfter/8 && release == nil &&
				(lastRelease.IsZero() || now.Sub(lastRelease) >= releaseInterval) {
				release, pending = time.After(releaseDelay), 0
			}
		case now := <-release:
			release, lastRelease = nil, now
			s.releaseMemory()
		}
	}
}

// Returning memory after a mass park
//
// Connections that arrive together each run in a goroutine until they
// park: their stacks, buffers and sessions are freed then, but Go keeps
// freed memory for reuse (up to about twice the live heap, longer while
// nothing allocates), so the process's RSS, which operators see, stays
// at the peak. When the sweeps have poked releaseAfterParked connections
// (or connections have parked at once that many times, see crowdedAbove)
// or more (each frees at least a few KiB: its stack and its session's
// working state) and the burst is over (a sweep pokes at most an eighth
// of that), the sweeper waits releaseDelay for the last ones to park and
// returns the free memory to the OS: two collections (sync.Pools give
// their items up on the second) and debug.FreeOSMemory. At most once per
// releaseInterval: it costs two full collections, in the background.
// Connections that keep waking and parking never look over, so steady
// churn never pays for it.
const (
	releaseAfterParked = 1024
	releaseDelay       = 100 * time.Millisecond
	releaseInterval    = 30 * time.Second
)

// releaseMemory returns free memory to the OS.
func (s *Server) releaseMemory() {
	runtime.GC()
	debug.FreeOSMemory()
	s.releases.Add(1)
}

// sweepOnce pokes the connections that have waited ParkIdleAfter for a
// request and closes parked ones past the idle timeout; it returns how
// many it poked.
func (s *Server) sweepOnce(now time.Time) int {
	park := now.Add(-s.cfg.ParkIdleAfter).UnixNano()
	idle := int64(0)
	if s.cfg.IdleTimeout > 0 {
		idle = now.Add(-s.cfg.IdleTimeout).UnixNano()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping.Load() {
		return 0
	}
	poked := 0
	for c := range s.conns {
		last := c.lastReq.Load()
		if idle != 0 && last < idle && c.claim() {
			// Counted before the close, so a client that sees it
			// sees the count.
			s.idleKicks.Add(1)
			c.flags |= flagIdleKicked // c is ours: claimed
			c.srv.logger.Debug("server: closing idle connection", "conn", c.id)
			go c.finish()
			continue
		}
		if last < park && State(c.state.Load()) == StateWaiting && c.poke() {
			poked++
		}
	}
	return poked
}
