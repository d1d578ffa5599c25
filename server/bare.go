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
// with nothing buffered it parks again at once (one epoll_ctl), as in an
// event loop, without a goroutine. It goes back to a net.Conn
// (net.FileConn, about ten system calls) when it must wait with its
// goroutine: part of a request is buffered, a reply does not fit in the
// socket's buffer (the write then waits in Go's poller, under the idle
// timeout's write deadline), the Session takes the connection over
// (NetConn), or it wakes within ParkIdleAfter of its last request while
// the server is not crowded (a busy connection: Go's poller waits for
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
	if err != nil {
		c.fd = -1
		return err
	}
	c.nc, c.rd, c.fd = nc, c.newRawReader(rc), nfd
	if t := c.srv.cfg.IdleTimeout; t > 0 {
		// The deadline the connection's reads are under (the loop
		// sets it again before its next read).
		c.armedAt = time.Now().UnixNano()
		nc.SetReadDeadline(time.Now().Add(t))
	}
	return nil
}

// bareRead reads from a bare connection's descriptor, taking a pooled
// buffer only when needed. A read that would block returns EAGAIN.
func (c *Conn) bareRead() (int, error) {
	if c.buf == nil {
		c.getPooledBuf()
	}
	for {
		n, err := syscall.Read(int(c.fd), c.buf[c.w:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			if c.w == 0 && c.bufp != nil {
				c.dropBuf()
			}
			return 0, err
		case err != nil:
			return 0, os.NewSyscallError("read", err)
		case n == 0:
			return 0, io.EOF
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
		m, err := syscall.Write(int(c.fd), b[n:])
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
// goroutine, if it has one, sees the server stopping.
func (c *Conn) interrupt(close bool) {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	switch {
	case c.nc == nil:
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
