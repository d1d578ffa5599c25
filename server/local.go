package server

import (
	"io"
	"net"
	"time"
)

// LocalConn returns a Conn of s with no client behind it, for the
// application to run a request of its own in-process (an admin surface:
// a metrics scrape runs "stats" this way, so that it reads exactly what a
// client would). Its Server is s; what its session flushes is written to
// w (the rest stays in Out). It is not one of s's connections: the
// server's counters, its limits and EachConn do not see it. It is not
// safe for concurrent use.
func (s *Server) LocalConn(w io.Writer) *Conn {
	return &Conn{srv: s, nc: localNetConn{w}, fd: -1}
}

// localNetConn is the net.Conn of a LocalConn: writes go to w, reads
// find nothing.
type localNetConn struct{ w io.Writer }

type localAddr struct{}

func (localAddr) Network() string { return "local" }
func (localAddr) String() string  { return "local" }

func (c localNetConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (c localNetConn) Write(b []byte) (int, error)      { return c.w.Write(b) }
func (c localNetConn) Close() error                     { return nil }
func (c localNetConn) LocalAddr() net.Addr              { return localAddr{} }
func (c localNetConn) RemoteAddr() net.Addr             { return localAddr{} }
func (c localNetConn) SetDeadline(time.Time) error      { return nil }
func (c localNetConn) SetReadDeadline(time.Time) error  { return nil }
func (c localNetConn) SetWriteDeadline(time.Time) error { return nil }
