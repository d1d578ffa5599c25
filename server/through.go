package server

import "syscall"

// WriteThrough writes c.Out and then b and tail to the connection, as
// much as its socket takes now, without waiting: what was written of Out
// is removed from it (the rest stays at its front), and WriteThrough
// returns how many bytes of b and tail together were written (none
// unless all of Out was). The Session appends the rest to Out as usual.
//
// It lets a Session send a large value from memory it may not keep (an
// engine's item, under the engine's lock) without copying it into Out
// first, as memcached hands item memory to sendmsg: one writev of the
// pending replies, the value and its tail. It never blocks, so it may be
// called while holding a lock. It writes nothing (and returns 0) on a TLS
// connection, on a connection without a descriptor, after a failed
// write, and where writev is not used (not Linux).
func (c *Conn) WriteThrough(b, tail []byte) int {
	if !writevSupported || c.dirty || c.raw != nil || (c.rd == nil && !c.bare) {
		return 0
	}
	var n int
	var err error
	if c.bare {
		n, err = c.writevNow(int(c.fd), b, tail)
	} else {
		rd := c.rd
		rd.vb, rd.vtail, rd.vn, rd.verr = b, tail, 0, nil
		if rerr := rd.rc.Write(rd.vfn); rerr != nil {
			// The connection is closing (or its write deadline
			// passed): nothing was written.
			rd.vb, rd.vtail = nil, nil
			return 0
		}
		n, err = rd.vn, rd.verr
		rd.vb, rd.vtail, rd.verr = nil, nil, nil
	}
	if err != nil {
		// The connection is broken; the reply is dropped when the
		// Session's next write fails the same way.
		return 0
	}
	c.writes.Add(1)
	c.bytesWritten.Add(uint64(n))
	if n < len(c.Out) {
		c.Out = c.Out[:copy(c.Out, c.Out[n:])]
		return 0
	}
	n -= len(c.Out)
	c.Out = c.Out[:0]
	return n
}

// writevNow is one non-blocking writev of c.Out, b and tail to fd; a
// socket that takes nothing now is no error.
func (c *Conn) writevNow(fd int, b, tail []byte) (int, error) {
	for {
		n, err := sysWritev(fd, c.Out, b, tail)
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, nil
		}
		return n, err
	}
}

// writev is the function given to syscall.RawConn.Write by
// WriteThrough: one attempt, never a wait.
func (rd *rawReader) writev(fd uintptr) bool {
	rd.vn, rd.verr = rd.c.writevNow(int(fd), rd.vb, rd.vtail)
	return true
}
