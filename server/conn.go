package server

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// State is what a connection (or a listener) is doing, as EachConn
// reports it. The names are the framework's own; an application that
// reports states to its clients maps them to its own words.
type State uint32

// The states, in the order a connection goes through them.
const (
	// StateWaiting: nothing is buffered; the connection waits for the
	// next request.
	StateWaiting State = iota
	// StateReading: part of a request is buffered and the connection
	// reads more, the request's size unknown.
	StateReading
	// StateReadingNeed: the Session said how many bytes it needs (a
	// request with a length-prefixed body) and the connection reads
	// until they are buffered.
	StateReadingNeed
	// StateServing: the connection is in Session.Serve (or has just
	// flushed from it).
	StateServing
	// StateWriting: the connection is writing replies.
	StateWriting
	// StateClosing: the connection is releasing what it holds.
	StateClosing
	// StateListening: a listener accepting connections.
	StateListening
)

var stateNames = [...]string{
	StateWaiting:     "waiting",
	StateReading:     "reading",
	StateReadingNeed: "reading-need",
	StateServing:     "serving",
	StateWriting:     "writing",
	StateClosing:     "closing",
	StateListening:   "listening",
}

// String returns the state's name in the framework's words ("waiting",
// "reading", "reading-need", "serving", "writing", "closing",
// "listening").
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "State(" + strconv.FormatUint(uint64(s), 10) + ")"
}

// Conn is one client connection. Its methods and Out are for the Session's
// use from within Serve (they are not safe for concurrent use), except ID,
// RemoteAddr, LocalAddr, ListenAddr and Server, which are safe anywhere.
type Conn struct {
	// Out is the reply buffer: Serve appends replies to it. It is written
	// after Serve returns (or by Flush) and then emptied.
	Out []byte

	srv     *Server
	nc      net.Conn      // the connection; a *tls.Conn on a TLS listener; nil while bare (see bare.go)
	rd      *rawReader    // nil when nc does not expose its descriptor (TLS included), or bare
	raw     *countingConn // the socket under a TLS connection, else nil
	id      uint64
	ln      *listener
	session Session

	buf  []byte  // read buffer; buf[r:w] is unconsumed; len(buf) == cap(buf)
	bufp *[]byte // pool box when buf is a pooled buffer (of ReadBufferSize, or grown), else nil
	r, w int
	need int
	outp *[]byte // spare pool box for Out

	armedAt int64 // unix nanoseconds when the idle-timeout read deadline was last set

	lastReq      atomic.Int64 // unix nanoseconds of the last consumed request
	bufBytes     atomic.Int64
	outBytes     atomic.Int64 // capacity of Out held between batches
	bytesRead    atomic.Uint64
	bytesWritten atomic.Uint64
	reads        atomic.Uint64
	writes       atomic.Uint64

	state atomic.Uint32 // a State
	// results of rawRead (one read returns less than 2 GiB on Linux)
	rerr int32 // a syscall.Errno
	rn   int32

	// Small fields last, packed: a parked connection's Conn is most of
	// what it costs the server.
	fd     int32       // the socket's descriptor (also under TLS), -1 when nc does not expose it
	pmu    sync.Mutex  // guards parked, and nc, fd and bare against other goroutines; see park.go
	poked  atomic.Bool // the sweeper moved the read deadline to park c
	bare   bool        // no net.Conn: the connection owns fd itself (see bare.go)
	parked bool        // registered in the poller, without a goroutine
	dirty  bool        // a write failed
	flags  uint8       // connFlag bits, for the goroutine that owns c
}

// connFlag bits (Conn.flags), packed so that Conn stays within 256 bytes.
const (
	// flagNoEager: parking failed once; this goroutine waits in its reads.
	flagNoEager uint8 = 1 << iota
	// flagIdleKicked: closed for Config.IdleTimeout (set by the goroutine
	// that closes c, before Session.Close; see ClosedIdle).
	flagIdleKicked
	// flagInline: Serve runs inside rawRead (see serveInline).
	flagInline
	// flagDrained: a bare connection's last read came back short (see
	// bareRead).
	flagDrained
	// flagBusy: the last request came within busyWindow of the one
	// before: do not park at once on a crowded server.
	flagBusy
)

// ClosedIdle reports, from the Session's Close, whether the connection
// was closed for Config.IdleTimeout (memcached's conn_close
// reason=idle_timeout) rather than by the client, an error or the server
// stopping.
func (c *Conn) ClosedIdle() bool { return c.flags&flagIdleKicked != 0 }

func newConn(s *Server, nc net.Conn, le *listener) *Conn {
	c := &Conn{srv: s, nc: nc, id: s.nextID.Add(1), ln: le, fd: -1}
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) { c.fd = int32(fd) })
			if le.tls == nil {
				// Reads go to the descriptor itself; a TLS
				// connection reads through crypto/tls and keeps
				// the descriptor only to park.
				c.rd = c.newRawReader(rc)
			}
		}
	}
	if le.tls != nil {
		c.wrapTLS(nc, le.tls)
	}
	c.lastReq.Store(time.Now().UnixNano())
	return c
}

// ID returns the connection's identifier, unique for the server's life.
func (c *Conn) ID() uint64 { return c.id }

// RemoteAddr returns the client's address.
func (c *Conn) RemoteAddr() net.Addr { return c.addr(true) }

// LocalAddr returns the connection's local address.
func (c *Conn) LocalAddr() net.Addr { return c.addr(false) }

// addr returns the remote (peer) or local address, from the net.Conn or,
// while the connection is bare, from its descriptor.
func (c *Conn) addr(peer bool) net.Addr {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	switch {
	case c.nc == nil:
		return fdAddr(c.fd, c.ln.l.Addr().Network(), peer)
	case peer:
		return c.nc.RemoteAddr()
	}
	return c.nc.LocalAddr()
}

// ListenAddr returns the address of the listener that accepted the
// connection.
func (c *Conn) ListenAddr() net.Addr { return c.ln.l.Addr() }

// Server returns the server the connection belongs to.
func (c *Conn) Server() *Server { return c.srv }

// NetConn returns the underlying connection. Sessions must not read from
// it (but for a Session that has taken the connection over for good,
// such as memcached's watch), and call it from Serve only.
func (c *Conn) NetConn() net.Conn {
	if c.flags&flagInline != 0 {
		return c.takeOver()
	}
	if c.bare {
		if err := c.dress(); err != nil {
			// Out of descriptors: a connection that reads EOF
			// and writes nowhere; the connection closes.
			return localNetConn{io.Discard}
		}
	}
	return c.nc
}

// Flush writes c.Out now and empties it. After a failed write it returns
// ErrConnBroken without writing; the connection closes when Serve returns.
func (c *Conn) Flush() error {
	if c.dirty {
		return ErrConnBroken
	}
	if len(c.Out) == 0 {
		return nil
	}
	err := c.write()
	c.setState(StateServing)
	return err
}

func (c *Conn) setState(st State) { c.state.Store(uint32(st)) }

func (c *Conn) info(now time.Time) ConnInfo {
	return ConnInfo{
		ID:               c.id,
		RemoteAddr:       c.RemoteAddr(),
		LocalAddr:        c.LocalAddr(),
		ListenAddr:       c.ln.l.Addr(),
		TLS:              c.raw != nil,
		State:            State(c.state.Load()),
		SinceLastRequest: time.Duration(now.UnixNano() - c.lastReq.Load()),
	}
}

// run is the connection's first goroutine.
func (c *Conn) run() {
	if (c.raw == nil || c.handshake()) && c.newSession() && c.serveLoop(true) {
		return
	}
	c.finish()
}

// serveLoop reads and serves requests until the connection is to close
// (it returns false) or it has been parked (true: the goroutine must end
// without touching c).
func (c *Conn) serveLoop(first bool) (parked bool) {
	s := c.srv
	for {
		u := c.w - c.r
		switch {
		case u == 0:
			c.setState(StateWaiting)
		case c.need > 0:
			c.setState(StateReadingNeed)
		default:
			c.setState(StateReading)
		}
		if c.bare {
			// A bare connection's reads never block (it parks
			// instead): no deadline to set.
		} else if s.cfg.IdleTimeout > 0 {
			c.armIdle()
		} else if c.poked.Swap(false) {
			c.nc.SetReadDeadline(time.Time{})
		}
		// Checked after setting the deadline: Shutdown sets the flag
		// before it moves the deadline into the past.
		if s.stopping.Load() {
			return false
		}
		if err := c.fill(); err != nil {
			switch err {
			case errServedInline:
				continue
			case errClosedInline:
				return false
			}
			if err == syscall.EAGAIN {
				// Nothing to read and the server is crowded, or the
				// connection is bare: park without waiting for the
				// sweeper (see crowded).
				if c.w == c.r && c.need == 0 {
					if !c.parkSession() {
						c.logClose(ErrSessionPanic)
						return false
					}
					wasBare := c.bare
					if c.park() {
						if !wasBare || first {
							// A goroutine and its working
							// state freed (a bare one woken
							// again held no more than it
							// frees now).
							c.srv.eagerParks.Add(1)
						}
						return true
					}
				} else if c.bare && c.park() {
					// Part of a request is buffered: the bare
					// connection parks with it (and its session
					// keeps its state: no Park call); the rest
					// wakes it.
					return true
				}
				if c.bare {
					// Parking failed (the server is stopping, or the
					// poller is gone): wait in Go's poller.
					if err := c.dress(); err != nil {
						c.logClose(err)
						return false
					}
					continue
				}
				// Not parked (stopping, or the poller is gone): wait
				// in the read as usual.
				c.flags |= flagNoEager
				continue
			}
			if errors.Is(err, os.ErrDeadlineExceeded) && !s.stopping.Load() &&
				(s.cfg.IdleTimeout == 0 || time.Duration(time.Now().UnixNano()-c.armedAt) < s.cfg.IdleTimeout) {
				// The sweeper's poke, not the idle timeout.
				if c.w == c.r && c.need == 0 {
					if !c.parkSession() {
						c.logClose(ErrSessionPanic)
						return false
					}
					if c.park() {
						return true
					}
				}
				c.poked.Store(true) // re-arm the deadline
				continue
			}
			switch {
			case errors.Is(err, ErrReadBufLimit):
				c.refuse(err)
			case c.raw != nil && !errors.Is(err, ErrRequestTooLarge) && !errors.Is(err, io.EOF) &&
				!errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded):
				// A TLS record error: a bad MAC, a record cut
				// short by the close, an alert from the client.
				c.srv.logger.Info("server: closing TLS connection", "conn", c.id, "remote", c.RemoteAddr(), "err", err)
				return false
			}
			c.logClose(err)
			return false
		}
		if c.w == c.r || c.w-c.r < c.need {
			continue
		}
		if !c.serveBuffered() {
			return false
		}
	}
}

// serveBuffered hands the buffered bytes to the Session, writes its
// replies and settles the read buffer. It reports false when the
// connection is to close (the reason logged).
func (c *Conn) serveBuffered() bool {
	c.setState(StateServing)
	in := c.buf[c.r:c.w:c.w]
	consumed, need, err := c.serve(in)
	if consumed < 0 || consumed > len(in) {
		c.Out = c.Out[:0]
		c.logClose(ErrBadConsumed)
		return false
	}
	if consumed > 0 {
		now := time.Now().UnixNano()
		if prev := c.lastReq.Swap(now); now-prev < c.srv.busyWindow.Load() && c.reads.Load() > 1 {
			c.flags |= flagBusy
		} else {
			c.flags &^= flagBusy
		}
	}
	c.r += consumed
	if need <= c.w-c.r {
		need = 0
	}
	c.need = need
	if len(c.Out) > 0 && !c.dirty {
		if werr := c.write(); werr != nil {
			c.logClose(werr)
			return false
		}
	}
	if err != nil {
		c.logClose(err)
		return false
	}
	c.settle()
	return true
}

func (c *Conn) newSession() (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			c.srv.logger.Error("server: panic in NewSession", "conn", c.id, "panic", p, "stack", string(debug.Stack()))
			ok = false
		}
	}()
	c.session = c.srv.h.NewSession(c)
	return c.session != nil
}

// parkSession lets a Parker session give memory up before the connection
// parks; it reports false when the session panicked.
func (c *Conn) parkSession() (ok bool) {
	p, is := c.session.(Parker)
	if !is {
		return true
	}
	defer func() {
		if v := recover(); v != nil {
			c.srv.logger.Error("server: panic in session Park", "conn", c.id, "panic", v, "stack", string(debug.Stack()))
			ok = false
		}
	}()
	p.Park(c)
	return true
}

// serve calls the session, recovering a panic.
func (c *Conn) serve(in []byte) (consumed, need int, err error) {
	defer func() {
		if p := recover(); p != nil {
			c.srv.logger.Error("server: panic in session", "conn", c.id, "remote", c.RemoteAddr(), "panic", p, "stack", string(debug.Stack()))
			c.Out = c.Out[:0]
			consumed, need, err = 0, 0, ErrSessionPanic
		}
	}()
	if c.Out == nil {
		c.getOut()
	}
	return c.session.Serve(c, in)
}

func (c *Conn) logClose(err error) {
	switch {
	case errors.Is(err, ErrClose), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return
	case errors.Is(err, os.ErrDeadlineExceeded) && !c.srv.stopping.Load():
		c.flags |= flagIdleKicked
		c.srv.idleKicks.Add(1)
		c.srv.logger.Debug("server: closing idle connection", "conn", c.id)
		return
	case errors.Is(err, os.ErrDeadlineExceeded):
		return
	}
	c.srv.logger.Debug("server: closing connection", "conn", c.id, "err", err)
}

// refuse lets a Refuser session answer a request the server will not
// buffer and writes the answer; the connection then closes.
func (c *Conn) refuse(err error) {
	r, ok := c.session.(Refuser)
	if !ok {
		return
	}
	func() {
		defer func() {
			if p := recover(); p != nil {
				c.srv.logger.Error("server: panic in session Refuse", "conn", c.id, "panic", p, "stack", string(debug.Stack()))
				c.Out = c.Out[:0]
			}
		}()
		if c.Out == nil {
			c.getOut()
		}
		r.Refuse(c, err)
	}()
	if len(c.Out) > 0 && !c.dirty {
		c.write()
	}
}

// write writes c.Out with one write call and empties it.
func (c *Conn) write() error {
	c.setState(StateWriting)
	if t := c.srv.cfg.IdleTimeout; t > 0 && !c.bare {
		// A client that stops reading its replies is idle too.
		c.nc.SetWriteDeadline(time.Now().Add(t))
	}
	var n int
	var err error
	if c.bare {
		n, err = c.bareWrite(c.Out)
	} else if c.raw != nil {
		n, err = c.writeTLS(c.Out)
	} else if c.rd != nil {
		n, err = c.rawWrite(c.Out)
	} else {
		n, err = c.nc.Write(c.Out)
	}
	c.writes.Add(1)
	if n > 0 {
		c.bytesWritten.Add(uint64(n))
	}
	if cap(c.Out) > MaxKeptReplyBuffer && cap(c.Out) != LargeReplyBuffer {
		c.Out = nil
	} else {
		// A large pooled buffer stays for the rest of the batch
		// (settle gives it back).
		c.Out = c.Out[:0]
	}
	c.outBytes.Store(int64(cap(c.Out)))
	if err != nil {
		c.dirty = true
	}
	return err
}

func (c *Conn) getOut() {
	p := c.srv.opool.Get().(*[]byte)
	c.Out = (*p)[:0]
	*p = nil
	if c.outp == nil {
		c.outp = p // keep the box to put the buffer back in
	}
	c.outBytes.Store(int64(cap(c.Out)))
}

func (c *Conn) putOut() {
	c.outBytes.Store(0)
	pool := &c.srv.opool
	switch {
	case cap(c.Out) == LargeReplyBuffer:
		pool = &c.srv.lpool
	case c.Out == nil || cap(c.Out) > MaxKeptReplyBuffer:
		c.Out = nil
		return
	}
	p := c.outp
	if p == nil {
		p = new([]byte)
	}
	*p = c.Out[:0]
	pool.Put(p)
	c.outp = nil
	c.Out = nil
}

// GrowOut makes room for n more bytes in Out, so that the next n bytes
// appended to it do not reallocate it. A reply that outgrows a small
// buffer moves to a pooled one of LargeReplyBuffer bytes (if it fits
// there), which the connection gives back when its batch is done: a
// Session that knows roughly how much it is about to append (a value of
// the size of the last one) calls GrowOut first, and replies of large
// values reuse a few buffers instead of growing new ones.
func (c *Conn) GrowOut(n int) {
	if cap(c.Out)-len(c.Out) >= n {
		return
	}
	if len(c.Out)+n > LargeReplyBuffer || cap(c.Out) >= LargeReplyBuffer {
		c.Out = slices.Grow(c.Out, n)
		c.outBytes.Store(int64(cap(c.Out)))
		return
	}
	p := c.srv.lpool.Get().(*[]byte)
	nb := append((*p)[:0], c.Out...)
	*p = nil
	if old := c.Out; old != nil && cap(old) <= MaxKeptReplyBuffer {
		// The small buffer goes back to its pool.
		box := c.outp
		if box == nil {
			box = new([]byte)
		}
		*box = old[:0]
		c.srv.opool.Put(box)
	}
	c.outp = p // the box to give the large buffer back in
	c.Out = nb
	c.outBytes.Store(int64(cap(c.Out)))
}

// setBuf installs b (from the pool when p is not nil) as the read buffer.
func (c *Conn) setBuf(b []byte, p *[]byte) {
	c.buf, c.bufp = b[:cap(b)], p
	c.bufBytes.Store(int64(cap(b)))
}

func (c *Conn) getPooledBuf() {
	p := c.srv.rpool.Get().(*[]byte)
	c.setBuf(*p, p)
}

// dropBuf releases the read buffer: a pooled one goes back to the pool, a
// grown one to the garbage collector (and its bytes to the
// ReadBufMemLimit budget).
func (c *Conn) dropBuf() {
	switch {
	case c.pooledBase():
		c.srv.rpool.Put(c.bufp)
	case c.buf != nil:
		c.srv.grown.Add(-int64(cap(c.buf)))
		c.srv.putGrown(c.buf, c.bufp)
	}
	c.buf, c.bufp = nil, nil
	c.bufBytes.Store(0)
}

// pooledBase reports whether the read buffer is a pooled one of
// Config.ReadBufferSize (not a grown one: grown buffers are larger).
func (c *Conn) pooledBase() bool {
	return c.bufp != nil && len(c.buf) == c.srv.cfg.ReadBufferSize
}

// settle tidies the buffers after a Serve call: it releases buffers the
// connection no longer needs and moves the unconsumed tail to the front.
func (c *Conn) settle() {
	base := c.srv.cfg.ReadBufferSize
	u := c.w - c.r
	if u == 0 {
		c.r, c.w = 0, 0
		if c.need > 0 {
			// The session consumed a header and wants the rest:
			// keep the buffer, sized on the next fill.
			return
		}
		if c.rd != nil || c.bare || !c.pooledBase() {
			// Nothing buffered: give the buffer back (a descriptor
			// wait needs none) or drop the grown one.
			c.dropBuf()
		}
		c.putOut()
		return
	}
	if len(c.buf) > base && u <= base && c.need <= base {
		grown, gp := c.buf, c.bufp
		c.getPooledBuf()
		copy(c.buf, grown[c.r:c.w])
		c.srv.grown.Add(-int64(cap(grown)))
		c.srv.putGrown(grown, gp)
		c.r, c.w = 0, u
		return
	}
	if c.r > 0 {
		copy(c.buf, c.buf[c.r:c.w])
		c.r, c.w = 0, u
	}
}

// reserve makes room in the read buffer for the next read, growing it to
// fit c.need (or doubling it when it is full and the need is unknown).
func (c *Conn) reserve() error {
	max := c.srv.cfg.MaxRequestSize
	u := c.w - c.r
	want := 0
	if c.need > u {
		want = c.need
	}
	if want > max {
		return ErrRequestTooLarge
	}
	if c.buf == nil {
		if want <= c.srv.cfg.ReadBufferSize {
			if c.rd == nil && !c.bare {
				c.getPooledBuf()
			}
			// With a descriptor, rawRead takes a pooled buffer
			// only once bytes have arrived.
			return nil
		}
	} else if u == len(c.buf) && want == 0 {
		if len(c.buf) >= max {
			return ErrRequestTooLarge
		}
		want = min(2*len(c.buf), max)
	}
	if want > len(c.buf) {
		size, class := growSize(want)
		if size > max {
			size, class = max, -1
		}
		if !c.srv.reserveGrown(size) {
			return ErrReadBufLimit
		}
		nb, p := c.srv.getGrown(size, class)
		copy(nb, c.buf[c.r:c.w])
		c.dropBuf()
		c.setBuf(nb, p)
		c.r, c.w = 0, u
	} else if c.w == len(c.buf) && c.r > 0 {
		copy(c.buf, c.buf[c.r:c.w])
		c.r, c.w = 0, u
	}
	return nil
}

// fill reads at least one byte into the read buffer.
func (c *Conn) fill() error {
	if err := c.reserve(); err != nil {
		return err
	}
	var n int
	var err error
	if c.bare {
		n, err = c.bareRead()
	} else if c.rd != nil {
		c.rn, c.rerr = 0, 0
		if err := c.rd.rc.Read(c.rd.fn); err != nil {
			return err
		}
		n = int(c.rn)
		switch {
		case c.rerr == rerrServed:
			return errServedInline
		case c.rerr == rerrClosed:
			return errClosedInline
		case c.rerr != 0:
			err = syscall.Errno(c.rerr)
		case n == 0:
			err = io.EOF
		}
	} else {
		n, err = c.nc.Read(c.buf[c.w:])
	}
	if n > 0 {
		c.took(n)
		return nil
	}
	if err == nil {
		// A Reader may return 0, nil; read again.
		return nil
	}
	return err
}

// took counts n bytes just read into the read buffer.
func (c *Conn) took(n int) {
	c.w += n
	c.bytesRead.Add(uint64(n))
	c.reads.Add(1)
}

// armIdle puts the connection's reads under the idle timeout's deadline
// from now (Config.IdleTimeout, which must be set).
func (c *Conn) armIdle() {
	now := time.Now()
	c.armedAt = now.UnixNano()
	c.nc.SetReadDeadline(now.Add(c.srv.cfg.IdleTimeout))
}

// rawReader reads and writes a connection's descriptor through Go's
// poller (a separate object, so that a bare connection does not carry its
// fields).
type rawReader struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool // c.rawRead
	wfn func(fd uintptr) bool // rd.write

	// the write in progress (see rawWrite)
	wb   []byte
	wn   int
	werr error

	// WriteThrough's writev in progress
	c         *Conn
	vfn       func(fd uintptr) bool // rd.writev
	vb, vtail []byte
	vn        int
	verr      error

	tk net.Conn // see takeOver
}

func (c *Conn) newRawReader(rc syscall.RawConn) *rawReader {
	rd := &rawReader{rc: rc, fn: c.rawRead, c: c}
	rd.wfn = rd.write
	rd.vfn = rd.writev
	return rd
}

// rawWrite writes b to the descriptor with raw system calls (see
// rawsys_linux.go); when the socket takes no more, it waits in Go's
// poller for it to drain (under the write deadline).
func (c *Conn) rawWrite(b []byte) (int, error) {
	rd := c.rd
	rd.wb, rd.wn, rd.werr = b, 0, nil
	err := rd.rc.Write(rd.wfn)
	n, werr := rd.wn, rd.werr
	rd.wb, rd.werr = nil, nil
	if err == nil {
		err = werr
	}
	return n, err
}

// write is the function given to syscall.RawConn.Write: it writes rd.wb
// from rd.wn on and returns false when the socket takes no more.
func (rd *rawReader) write(fd uintptr) bool {
	for rd.wn < len(rd.wb) {
		m, err := sysWrite(int(fd), rd.wb[rd.wn:])
		if m > 0 {
			rd.wn += m
		}
		switch err {
		case nil:
			if m == 0 {
				rd.werr = io.ErrShortWrite
				return true
			}
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			rd.werr = os.NewSyscallError("write", err)
			return true
		}
	}
	return true
}

// rawRead is the function given to syscall.RawConn.Read: it reads from
// the non-blocking descriptor, taking a pooled buffer only when needed and
// giving it back while the connection waits for readability.
func (c *Conn) rawRead(fd uintptr) bool {
	if c.buf == nil {
		c.getPooledBuf()
	}
	for {
		space := len(c.buf) - c.w
		n, err := sysRead(int(fd), c.buf[c.w:])
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			c.srv.emptyReads.Add(1)
			if c.w == 0 && c.pooledBase() {
				c.dropBuf()
			}
			if c.w == c.r && c.need == 0 && c.flags&(flagNoEager|flagBusy) == 0 && c.fd >= 0 && c.srv.crowded() {
				// Park now rather than wait here: see crowded.
				c.rerr = int32(syscall.EAGAIN)
				return true
			}
			return false
		case nil:
			if n > 0 && n < space && c.srv.inline {
				c.took(n)
				switch c.serveInline() {
				case inlineWait:
					return false
				case inlineClosed:
					c.rerr = rerrClosed
				default:
					c.rerr = rerrServed
				}
				return true
			}
			c.rn = int32(n)
		default:
			if e, ok := err.(syscall.Errno); ok {
				c.rerr = int32(e)
			} else {
				c.rerr = int32(syscall.EIO)
			}
		}
		return true
	}
}

// Serving inline
//
// Go's poller is edge-triggered, and each RawConn.Read forgets the
// readiness it has seen before its first read: so a connection that
// served a request and reads again for the next one makes a read that
// fails (EAGAIN) before it waits, one system call per request that
// memcached, whose epoll is level-triggered, does not make. Within one
// RawConn.Read, though, a callback that returns false waits for the
// next readiness without that reset. So when a read comes back short
// (the socket had no more), rawRead serves what it read right there,
// inside the callback, and when everything was consumed it returns false
// without reading: the poller wakes it when the next request arrives
// (at once if it arrived meanwhile), and the read after that finds it.
//
// Serve then runs while the connection holds its descriptor's read
// lock. Nothing it may call reads the descriptor or closes the net.Conn
// (which waits for the lock): NetConn gives a Session that reads a
// duplicate of the descriptor (see takeOver), and interrupt shuts the
// socket down instead of closing the net.Conn. Only a plain (not TLS)
// connection with a descriptor serves inline; anything out of the
// ordinary (a partial request, a full read buffer, parking, the server
// stopping) goes back to serveLoop.
//
// Measured (50 connections, pipeline 1, 100-byte values, -t 1): one read
// system call per request instead of two, server CPU per request 7.2 ->
// 6.5 us (BENCHMARKS.md, "Serving inline").

// Outcomes of serveInline.
const (
	inlineWait   = iota // all served: wait for the next request without reading
	inlineReturn        // served: serveLoop carries on
	inlineClosed        // the connection is to close (logged)
)

// rawRead's results (c.rerr) for a read served inline.
const (
	rerrServed = -1
	rerrClosed = -2
)

var (
	errServedInline = errors.New("server: served inline")
	errClosedInline = errors.New("server: closed inline")
)

// serveInline serves the bytes rawRead has just read (see above).
func (c *Conn) serveInline() int {
	if c.w-c.r < c.need {
		return inlineReturn
	}
	c.flags |= flagInline
	ok := c.serveBuffered()
	c.flags &^= flagInline
	switch {
	case !ok:
		return inlineClosed
	case c.w != c.r || c.need != 0 || c.srv.stopping.Load() || c.poked.Load() || c.flags&flagBusy == 0 && c.srv.crowded():
		return inlineReturn
	}
	if c.srv.cfg.IdleTimeout > 0 {
		c.armIdle() // as serveLoop does before each read
	}
	c.setState(StateWaiting)
	return inlineWait
}

// takeOver returns a net.Conn on a duplicate of the descriptor, for a
// Session that calls NetConn while serving inline (see above); it is
// closed with the connection.
func (c *Conn) takeOver() net.Conn {
	rd := c.rd
	if rd.tk != nil {
		return rd.tk
	}
	nfd := -1
	if err := rd.rc.Control(func(fd uintptr) { nfd = dupCloexec(int(fd)) }); err != nil || nfd < 0 {
		return localNetConn{io.Discard}
	}
	f := os.NewFile(uintptr(nfd), "")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return localNetConn{io.Discard}
	}
	rd.tk = nc
	return nc
}

// finish releases everything the connection holds.
func (c *Conn) finish() {
	c.setState(StateClosing)
	if c.srv.poller != nil && c.fd >= 0 {
		c.srv.poller.forget(c)
	}
	c.pmu.Lock()
	if c.rd != nil && c.rd.tk != nil {
		c.rd.tk.Close()
	}
	if c.nc != nil {
		c.nc.Close()
	} else if c.bare {
		syscall.Close(int(c.fd))
		c.bare = false
		c.fd = -1 // the number may be reused at once
	}
	c.pmu.Unlock()
	if c.session != nil {
		func() {
			defer func() {
				if p := recover(); p != nil {
					c.srv.logger.Error("server: panic in session Close", "conn", c.id, "panic", p, "stack", string(debug.Stack()))
				}
			}()
			c.session.Close()
		}()
	}
	c.dropBuf()
	c.putOut()
	c.r, c.w, c.need = 0, 0, 0
	c.srv.removeConn(c)
}
