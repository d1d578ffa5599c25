package server

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// TLS
//
// ServeTLS serves a listener whose connections speak TLS (crypto/tls).
// The handshake runs in the connection's own goroutine, so a slow client
// never holds up the accept loop, before the Session is created, under a
// deadline of Config.TLSHandshakeTimeout. A handshake that fails (a
// plaintext client on a TLS port, a client that stalls, a client
// certificate the configuration refuses, a truncated or malformed record)
// closes the connection, is logged at info level with its reason and
// counted in Stats.TLSHandshakeErrors; a client that closes before
// sending a byte (a port probe, a health check) is not counted. A
// connection rejected for MaxConns is answered RejectMessage in plaintext
// before any TLS, as memcached does.
//
// After the handshake the Session sees decrypted bytes and its replies are
// encrypted; Conn.TLSState reports the negotiated parameters. An error on
// an established TLS connection (a bad record MAC, a record cut short by
// the close) closes it and is logged at info level.
//
// Parking. A tls.Conn keeps bytes it has read from the socket and not yet
// returned (the rest of a record, records read in the same read), so the
// descriptor's readability alone does not tell whether a TLS connection
// has work. The connection is parked only when a Read on the tls.Conn has
// returned the sweeper's deadline error: crypto/tls returns that error
// only from a socket read, which it attempts only once every complete
// record it holds has been consumed and no decrypted byte is left. What it
// may still hold is the start of a record whose rest has not been read
// from the socket: that rest makes the descriptor readable (the poller is
// level-triggered, so bytes already in the socket wake the connection at
// once). A parked TLS connection gives up its goroutine and its read
// buffer like any other; crypto/tls keeps its own buffer of the largest
// record it has received (up to about 17 KiB) for the connection's life.

// DefaultTLSHandshakeTimeout is the zero value of
// Config.TLSHandshakeTimeout.
const DefaultTLSHandshakeTimeout = 10 * time.Second

// ServeTLS is Serve for a listener whose connections speak TLS with
// config (see the package documentation); a nil config serves plain
// connections. config may change its certificates at run time through its
// callbacks (GetCertificate, VerifyConnection); its other fields must not
// change once ServeTLS has been called.
func (s *Server) ServeTLS(l net.Listener, config *tls.Config) error {
	return s.serve(l, config)
}

// TLSState returns the connection's TLS parameters, and false when the
// connection is not a TLS one.
func (c *Conn) TLSState() (tls.ConnectionState, bool) {
	if c.raw == nil {
		return tls.ConnectionState{}, false
	}
	return c.raw.tlsc.ConnectionState(), true
}

// countingConn is the socket under a tls.Conn: it counts the bytes read
// (0 tells a handshake failure from a client that never said anything),
// and while corked it collects what crypto/tls writes, so that the records
// of one batch of replies leave in one write call (crypto/tls writes each
// record of at most 16 KiB with a call of its own).
type countingConn struct {
	net.Conn
	n    int64
	cork *[]byte   // collected records while corked, from corkPool
	tlsc *tls.Conn // the TLS connection over this socket
}

// corkPool holds the buffers that collect a batch's records; a connection
// holds one only while it writes.
var corkPool = sync.Pool{New: func() any { b := make([]byte, 0, 32<<10); return &b }}

// maxKeptCork is the capacity above which a cork buffer is dropped rather
// than pooled.
const maxKeptCork = 256 << 10

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	if c.cork != nil {
		*c.cork = append(*c.cork, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// writeTLS encrypts b and writes its records with one write call (more
// only if the socket takes part of them at a time).
func (c *Conn) writeTLS(b []byte) (int, error) {
	raw := c.raw
	raw.cork = corkPool.Get().(*[]byte)
	n, err := raw.tlsc.Write(b)
	buf := raw.cork
	raw.cork = nil
	if err == nil && len(*buf) > 0 {
		if _, werr := raw.Conn.Write(*buf); werr != nil {
			n, err = 0, werr
		}
	}
	if cap(*buf) <= maxKeptCork {
		*buf = (*buf)[:0]
		corkPool.Put(buf)
	}
	return n, err
}

// wrapTLS makes c a TLS connection over the socket nc.
func (c *Conn) wrapTLS(nc net.Conn, config *tls.Config) {
	c.raw = &countingConn{Conn: nc}
	c.raw.tlsc = tls.Server(c.raw, config)
	c.nc = c.raw.tlsc
}

// handshake runs the TLS handshake under its deadline; it reports false
// when the connection is to close.
func (c *Conn) handshake() bool {
	s := c.srv
	c.setState(StateReading)
	c.nc.SetDeadline(time.Now().Add(s.cfg.TLSHandshakeTimeout))
	// Checked after setting the deadline: Shutdown sets the flag before
	// it moves the deadline into the past.
	if s.stopping.Load() {
		return false
	}
	err := c.raw.tlsc.Handshake()
	if err == nil {
		c.nc.SetDeadline(time.Time{})
		s.tlsHandshakes.Add(1)
		return true
	}
	switch {
	case s.stopping.Load():
		// Woken by Shutdown: not the client's failure.
	case c.raw.n == 0 && (errors.Is(err, io.EOF) || peerReset(err)):
		s.logger.Debug("server: TLS client closed before its handshake", "conn", c.id, "remote", c.raw.RemoteAddr())
	default:
		s.tlsHandshakeErrors.Add(1)
		reason := err.Error()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			reason = "handshake not finished within " + s.cfg.TLSHandshakeTimeout.String()
		}
		s.logger.Info("server: TLS handshake failed", "conn", c.id, "remote", c.raw.RemoteAddr(), "err", reason)
	}
	return false
}

// peerReset reports a connection reset or aborted by the peer.
func peerReset(err error) bool {
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Timeout() {
		return false
	}
	var se *os.SyscallError
	return errors.As(err, &se)
}
