package server

import (
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"
)

// Bare connections
//
// A parked connection's net.Conn costs more than memcached's whole
// connection: the runtime's netFD, TCPConn and two TCPAddrs (about
// 250 B of heap) and its pollDesc (about 300 B allocated outside the
// heap, reused but never freed). So a plain (TCP or unix) connection
// parks bare: it duplicates its descriptor, closes the net.Conn (the
// runtime takes its objects back; the socket stays open through the
// duplicate) and parks the duplicate in the server's poller. What is
// left of it is the Conn, its session and its entries in the server's
// tables.
//
// A bare connection that wakes reads its descriptor itself
// (non-blocking): it serves what it reads, and when a read would block
// it parks again at once (one epoll_ctl), as in an event loop, without a
// goroutine; with part of a request buffered it parks with that part
// (its read buffer stays, and its Session is not told: the rest of the
// request wakes it). It goes back to a net.Conn (net.FileConn, about ten
// system calls) when it must wait with its goroutine: a reply does not
// fit in the socket's buffer (the write then waits in Go's poller, under
// the idle timeout's write deadline), the Session takes the connection
// over (NetConn), parking fails (the server is stopping), or it wakes
// within ParkIdleAfter of its last request while the server has too few
// connections to be crowded (a busy connection: Go's poller waits for
// its next request without a system call). A connection with work thus
// still has its goroutine and may block in its Session.
//
// TLS connections keep their net.Conn (crypto/tls reads through it) and
// park as before.

// shed makes the connection bare; see above. It reports false (and
// changes nothing) when the descriptor cannot be duplicated. Called by
// the owner under pmu.
func (c *Conn) shed() bool {
	nfd := -1
	if err := c.rd.rc.Control(func(fd uintptr) { nfd = dupCloexec(int(fd)) }); err != nil || nfd < 0 {
		return false
	}
	if p := c.srv.poller; p != nil {
		// (Registered if it parked before without shedding.)
		p.forget(c)
	}
	c.nc.Close()
	c.nc, c.rd = nil, nil
	c.fd = int32(nfd)
	c.bare = true
	return true
}

// dress gives a bare connection a net.Conn again (see above). On failure
// (out of descriptors) the descriptor is closed and the connection must
// end. Called by the owner.
func (c *Conn) dress() error {
	if p := c.srv.poller; p != nil {
		p.forget(c)
	}
	f := os.NewFile(uintptr(c.fd), "")
	nc, err := net.FileConn(f)
	var rc syscall.RawConn
	nfd := int32(-1)
	if err == nil {
		if rc, err = nc.(syscall.Conn).SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) { nfd = int32(fd) })
		} else {
			nc.Close()
		}
	}
	c.pmu.Lock()
	defer c.pmu.Unlock()
	f.Close()
	c.bare = false
	c.flags &^= flagDrained
	if err != nil {
		c.fd = -1
		return err
	}
	c.nc, c.rd, c.fd = nc, c.newRawReader(rc), nfd
	if c.srv.cfg.IdleTimeout > 0 {
		// The deadline the connection's reads are under (the loop
		// sets it again before its next read).
		c.armIdle()
	}
	return nil
}

// bareRead reads from a bare connection's descriptor, taking a pooled
// buffer only when needed. A read that would block returns EAGAIN.
func (c *Conn) bareRead() (int, error) {
	if c.flags&flagDrained != 0 {
		c.flags &^= flagDrained
		if c.w == c.r && c.need == 0 {
			// The last read came back short and all of it was
			// served: park without a read that would find nothing.
			// The poller's registration is level-triggered, so a
			// request that arrived since wakes the connection at
			// once.
			if c.w == 0 && c.pooledBase() {
				c.dropBuf()
			}
			return 0, syscall.EAGAIN
		}
	}
	if c.buf == nil {
		c.getPooledBuf()
	}
	for {
		space := len(c.buf) - c.w
		n, err := sysRead(int(c.fd), c.buf[c.w:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			c.srv.emptyReads.Add(1)
			if c.w == 0 && c.pooledBase() {
				c.dropBuf()
			}
			return 0, err
		case err != nil:
			return 0, os.NewSyscallError("read", err)
		case n == 0:
			return 0, io.EOF
		}
		if n < space {
			c.flags |= flagDrained
		}
		return n, nil
	}
}

// bareWrite writes b to a bare connection's descriptor; when the socket
// takes no more, the connection gets a net.Conn and the rest waits in Go's
// poller.
func (c *Conn) bareWrite(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := sysWrite(int(c.fd), b[n:])
		if m > 0 {
			n += m
		}
		switch err {
		case nil:
		case syscall.EINTR:
		case syscall.EAGAIN:
			if err := c.dress(); err != nil {
				return n, err
			}
			if t := c.srv.cfg.IdleTimeout; t > 0 {
				c.nc.SetWriteDeadline(time.Now().Add(t))
			}
			m, err := c.nc.Write(b[n:])
			return n + m, err
		default:
			return n, os.NewSyscallError("write", err)
		}
	}
	return n, nil
}

// interrupt wakes a connection blocked in a read (Shutdown), or closes
// its net.Conn (Close). A bare connection never blocks in a read; its
// goroutine, if it has one, sees the server stopping; Close shuts its
// socket down (the goroutine closes the descriptor, whose number must
// not be reused under it).
func (c *Conn) interrupt(close bool) {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	switch {
	case c.nc == nil:
		if close && c.bare {
			syscall.Shutdown(int(c.fd), syscall.SHUT_RDWR)
		}
	case close && c.rd != nil && c.fd >= 0:
		// The goroutine may be serving inside its read (see
		// serveInline), where closing the net.Conn would wait for
		// it, and it may need pmu: shut the socket down (its next
		// read or write fails) and wake a waiting read; the
		// goroutine closes the net.Conn.
		syscall.Shutdown(int(c.fd), syscall.SHUT_RDWR)
		c.nc.SetReadDeadline(aLongTimeAgo)
	case close:
		c.nc.Close()
	default:
		c.nc.SetReadDeadline(aLongTimeAgo)
	}
}

// fdAddr returns the peer's (or the local) address of the socket fd, as
// the net package would report it for a connection accepted on a
// listener of network ln ("tcp", "unix"); an empty address when fd is
// closed or the socket has none.
func fdAddr(fd int32, ln string, peer bool) net.Addr {
	var sa syscall.Sockaddr
	if fd >= 0 {
		if peer {
			sa, _ = syscall.Getpeername(int(fd))
		} else {
			sa, _ = syscall.Getsockname(int(fd))
		}
	}
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: append(net.IP(nil), a.Addr[:]...), Port: a.Port}
	case *syscall.SockaddrInet6:
		ta := &net.TCPAddr{IP: append(net.IP(nil), a.Addr[:]...), Port: a.Port}
		if a.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(a.ZoneId)); err == nil {
				ta.Zone = ifi.Name
			} else {
				ta.Zone = strconv.Itoa(int(a.ZoneId))
			}
		}
		return ta
	case *syscall.SockaddrUnix:
		return &net.UnixAddr{Name: a.Name, Net: "unix"}
	}
	if ln == "unix" {
		return &net.UnixAddr{Net: "unix"}
	}
	return &net.TCPAddr{}
}

// Connections born bare
//
// On a plain TCP or unix listener, while connections park (Linux, and
// ParkIdleAfter > 0), the accept loop takes connections with accept4 on
// the listener's descriptor (non-blocking, close-on-exec) rather than
// Listener.Accept: a connection is bare from the start, and one that
// waits for its first request parks without ever having had a net.Conn
// (the runtime's netFD, addresses and pollDesc, and the system calls
// that register and release them). Go would set TCP_NODELAY and
// keep-alive on each accepted TCP connection; the listener gets them
// instead (Linux copies them to the connections it accepts), as
// memcached does: from its creation by Listen, or when Serve starts for a
// listener made elsewhere (a connection that was already waiting then
// goes without). The listener itself still waits in Go's poller: when
// no connection is waiting (accept4 would block), the loop waits in
// Listener.Accept, and the connection that ends the wait gets a net.Conn
// (it goes bare when it parks). So a burst of connections is born bare,
// and a lone one keeps Go's fast path for its first requests.

// rawAcceptor accepts connections on a listener's descriptor.
type rawAcceptor struct {
	rc  syscall.RawConn
	nfd int
	err error
	fn  func(fd uintptr)
}

// newRawAcceptor returns an acceptor for l, or nil when connections of l
// are not to be born bare.
func (s *Server) newRawAcceptor(l net.Listener, tls bool) *rawAcceptor {
	if s.poller == nil || tls {
		return nil
	}
	var tcp bool
	switch l.(type) {
	case *net.TCPListener:
		tcp = true
	case *net.UnixListener:
	default:
		return nil
	}
	rc, err := l.(syscall.Conn).SyscallConn()
	if err != nil {
		return nil
	}
	if tcp {
		ok := true
		rc.Control(func(fd uintptr) { ok = setConnOptions(int(fd)) })
		if !ok {
			return nil
		}
	}
	a := &rawAcceptor{rc: rc}
	a.fn = a.accept4
	return a
}

// accept returns the descriptor of a waiting connection, or EAGAIN when
// none is waiting.
func (a *rawAcceptor) accept() (int, error) {
	if err := a.rc.Control(a.fn); err != nil {
		return -1, err
	}
	switch a.err {
	case nil:
		return a.nfd, nil
	case syscall.EAGAIN:
		return -1, syscall.EAGAIN
	}
	return -1, os.NewSyscallError("accept4", a.err)
}

// acceptedBare is accepted for a connection born bare.
func (s *Server) acceptedBare(fd int, le *listener) {
	if n := s.curr.Add(1); n > int64(s.cfg.MaxConns) {
		s.curr.Add(-1)
		s.rejected.Add(1)
		if msg := s.cfg.RejectMessage; len(msg) > 0 {
			// A fresh socket's send buffer takes a short message
			// at once.
			syscall.Write(fd, msg)
		}
		syscall.Close(fd)
		return
	}
	c := &Conn{srv: s, id: s.nextID.Add(1), ln: le, fd: int32(fd), bare: true}
	c.lastReq.Store(time.Now().UnixNano())
	s.mu.Lock()
	if s.stopping.Load() {
		s.mu.Unlock()
		s.curr.Add(-1)
		syscall.Close(fd)
		return
	}
	s.conns[c] = struct{}{}
	s.notePeakLocked()
	s.mu.Unlock()
	s.total.Add(1)
	go c.run()
}
