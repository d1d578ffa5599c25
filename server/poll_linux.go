package server

import (
	"sync"
	"syscall"
)

// poller is the server's epoll set of parked connections.
type poller struct {
	epfd   int
	wakeR  int // read end of a pipe that stops the loop
	wakeW  int
	mu     sync.Mutex
	conns  []*Conn // by descriptor (descriptors are small and dense: a slot costs 8 bytes, a map entry several times that)
	closed bool
}

func newPoller() *poller {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	var pfd [2]int
	if err := syscall.Pipe2(pfd[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		return nil
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(pfd[0])}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, pfd[0], &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(pfd[0])
		syscall.Close(pfd[1])
		return nil
	}
	return &poller{epfd: epfd, wakeR: pfd[0], wakeW: pfd[1]}
}

// arm registers c's descriptor for one readiness event.
func (p *poller) arm(c *Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	fd := c.fd
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: fd}
	op := syscall.EPOLL_CTL_MOD
	if p.at(fd) != c {
		op = syscall.EPOLL_CTL_ADD
	}
	err := syscall.EpollCtl(p.epfd, op, int(fd), &ev)
	if err == syscall.EEXIST {
		err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, int(fd), &ev)
	} else if err == syscall.ENOENT {
		err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	}
	if err != nil {
		return false
	}
	if int(fd) >= len(p.conns) {
		p.conns = append(p.conns, make([]*Conn, int(fd)+1-len(p.conns))...)
		p.conns = p.conns[:cap(p.conns)]
	}
	p.conns[fd] = c
	return true
}

// at returns the connection registered for fd, or nil (called under mu).
func (p *poller) at(fd int32) *Conn {
	if fd < 0 || int(fd) >= len(p.conns) {
		return nil
	}
	return p.conns[fd]
}

// forget removes c's descriptor, before it is closed.
func (p *poller) forget(c *Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fd := c.fd
	if p.closed || p.at(fd) != c {
		return
	}
	p.conns[fd] = nil
	syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
}

// run waits for events until stop; it wakes the connections whose
// descriptors are ready.
func (p *poller) run(done func()) {
	defer done()
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			p.close()
			return
		}
		for _, ev := range events[:n] {
			if ev.Fd == int32(p.wakeR) {
				p.close()
				return
			}
			p.mu.Lock()
			c := p.at(ev.Fd)
			p.mu.Unlock()
			if c != nil {
				c.wake()
			}
		}
	}
}

// stop ends run.
func (p *poller) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		syscall.Write(p.wakeW, []byte{0})
	}
}

func (p *poller) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	p.conns = nil
	syscall.Close(p.epfd)
	syscall.Close(p.wakeR)
	syscall.Close(p.wakeW)
}

// dupCloexec duplicates fd (close-on-exec); it returns -1 on failure.
func dupCloexec(fd int) int {
	for {
		nfd, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return -1
		}
		return int(nfd)
	}
}

// setConnOptions sets on a TCP listener what Go sets on each connection
// it accepts (TCP_NODELAY, keep-alive probes after 15 s idle, every 15 s,
// 9 of them); accepted sockets inherit them. It reports false when one
// cannot be set.
func setConnOptions(fd int) bool {
	for _, o := range [...]struct{ level, opt, v int }{
		{syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1},
		{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, 15},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, 15},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, 9},
	} {
		if syscall.SetsockoptInt(fd, o.level, o.opt, o.v) != nil {
			return false
		}
	}
	return true
}

// accept4 accepts a connection on the listener's descriptor fd, born
// non-blocking and close-on-exec (rawAcceptor's Control function).
func (a *rawAcceptor) accept4(fd uintptr) {
	for {
		a.nfd, _, a.err = syscall.Accept4(int(fd), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if a.err != syscall.EINTR {
			return
		}
	}
}
