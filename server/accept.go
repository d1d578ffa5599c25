package server

import (
	"errors"
	"net"
	"os"
	"syscall"
	"time"
)

// The accept loop's back-off after a failed accept: it doubles from
// minAcceptBackoff up to maxAcceptBackoff (as net/http's Server does), and
// a connection that closes cuts it short.
const (
	minAcceptBackoff = 5 * time.Millisecond
	maxAcceptBackoff = time.Second
)

// transient reports an accept error about one client only (it reset the
// connection before it was accepted); the next accept is unaffected.
func transient(err error) bool {
	return errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EINTR)
}

// temporary reports an accept error that a later accept may not have: the
// process or the system is short of descriptors or memory.
func temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func outOfFDs(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// beginPause starts an accept pause (an episode of failed accepts) unless
// one is under way; the first failure of an episode is logged, the others
// only counted.
func (s *Server) beginPause(le *listener, err error) {
	s.mu.Lock()
	if s.paused {
		s.mu.Unlock()
		return
	}
	s.paused = true
	s.pauseStart = time.Now()
	s.pauses++
	s.mu.Unlock()
	if outOfFDs(err) {
		s.logger.Warn("server: out of file descriptors; new connections are rejected until one closes",
			"listener", le.l.Addr().String(), "err", err)
	} else {
		s.logger.Warn("server: accept failing; retrying with back-off",
			"listener", le.l.Addr().String(), "err", err)
	}
}

// endPause ends the accept pause under way, if any, after an accept has
// succeeded, and takes back the spare descriptor if it was lost.
func (s *Server) endPause() {
	s.mu.Lock()
	if !s.paused {
		s.mu.Unlock()
		return
	}
	s.paused = false
	d := time.Since(s.pauseStart)
	s.pausedTime += d
	s.mu.Unlock()
	s.openSpare()
	s.logger.Info("server: accepting connections again", "paused", d)
}

// openSpare opens the spare descriptor if it is not held (and the server
// is not stopping).
func (s *Server) openSpare() {
	s.spareMu.Lock()
	defer s.spareMu.Unlock()
	if s.spare != nil || s.stopping.Load() {
		return
	}
	if f, err := os.Open(os.DevNull); err == nil {
		s.spare = f
	}
}

// closeSpare releases the spare descriptor for good.
func (s *Server) closeSpare() {
	s.spareMu.Lock()
	defer s.spareMu.Unlock()
	if s.spare != nil {
		s.spare.Close()
		s.spare = nil
	}
}

// rejectWithSpare answers one client waiting on l while the process is
// out of descriptors: it gives up the spare descriptor, accepts the
// client without blocking, writes RejectMessage, closes it and takes the
// spare back. It reports whether a client was rejected.
func (s *Server) rejectWithSpare(l net.Listener) bool {
	sc, ok := l.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	s.spareMu.Lock()
	defer s.spareMu.Unlock()
	if s.spare == nil {
		return false
	}
	s.spare.Close()
	s.spare = nil
	rejected := false
	rc.Control(func(fd uintptr) {
		// The listener is non-blocking: with no client waiting (another
		// loop took it, or it went away) this fails with EAGAIN.
		nfd, _, err := syscall.Accept(int(fd))
		if err != nil {
			return
		}
		rejected = true
		if msg := s.cfg.RejectMessage; len(msg) > 0 {
			// A fresh socket's send buffer takes a short message
			// at once.
			syscall.Write(nfd, msg)
		}
		syscall.Close(nfd)
	})
	if rejected {
		s.rejected.Add(1)
		s.fdRejected.Add(1)
	}
	if !s.stopping.Load() {
		if f, err := os.Open(os.DevNull); err == nil {
			s.spare = f
		}
	}
	return rejected
}

// acceptWait waits d, or less if a connection closes (freeing a
// descriptor) first. It reports false when the server is stopping.
func (s *Server) acceptWait(d time.Duration) bool {
	s.mu.Lock()
	if s.freed == nil {
		s.freed = make(chan struct{})
	}
	freed := s.freed
	s.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-freed:
	case <-s.done:
		return false
	}
	return true
}
