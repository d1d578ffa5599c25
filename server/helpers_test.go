package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// lineHandler serves a line protocol made for these tests: each line is
// answered with itself in upper case, except the commands below.
//
//	quit          close the connection (ErrClose)
//	panic         panic in Serve
//	badconsumed   return a consumed count past the input
//	block         signal entered, wait for release, reply "UNBLOCKED"
//	flush         reply "X", Flush, reply "Y"
//	big N         followed by N bytes of data: reply "GOT N buf=B" where B
//	              is Stats().ReadBufBytes while serving it
//	bufstat       reply "BUF B"
//	reply N       reply N bytes of 'r' and a newline
//	outcap        reply "OUT C" where C is cap(c.Out) when Serve started
//	blob N        reply N bytes of 'b' and a newline, making room with
//	              GrowOut first (as a session that knows the size does)
//	takeover      take the connection over as memcached's watch does: reply
//	              "TAKEN", read NetConn in another goroutine until it
//	              fails, then close (ErrClose)
type lineHandler struct {
	entered chan struct{}
	release chan struct{}

	panicNew atomic.Bool
	created  atomic.Int64
	closed   atomic.Int64
	serves   atomic.Int64 // Serve calls
	outputs  atomic.Int64 // Serve calls that produced output
}

func newLineHandler() *lineHandler {
	return &lineHandler{entered: make(chan struct{}, 16), release: make(chan struct{})}
}

func (h *lineHandler) NewSession(c *Conn) Session {
	if h.panicNew.Load() {
		panic("NewSession boom")
	}
	h.created.Add(1)
	return &lineSession{h: h}
}

type lineSession struct {
	h      *lineHandler
	closed bool
}

func (s *lineSession) Close() {
	if s.closed {
		panic("Close called twice")
	}
	s.closed = true
	s.h.closed.Add(1)
}

// Refuse answers a refused request with "REFUSED <err>".
func (s *lineSession) Refuse(c *Conn, err error) {
	c.Out = append(c.Out, "REFUSED "...)
	c.Out = append(c.Out, err.Error()...)
	c.Out = append(c.Out, '\n')
}

func (s *lineSession) Serve(c *Conn, in []byte) (consumed, need int, err error) {
	s.h.serves.Add(1)
	outCap := cap(c.Out)
	defer func() {
		if len(c.Out) > 0 {
			s.h.outputs.Add(1)
		}
	}()
	for consumed < len(in) {
		rest := in[consumed:]
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return consumed, 0, nil
		}
		line := rest[:i]
		switch {
		case string(line) == "quit":
			return consumed + i + 1, 0, ErrClose
		case string(line) == "panic":
			c.Out = append(c.Out, "partial\n"...)
			panic("Serve boom")
		case string(line) == "badconsumed":
			return len(in) + 1, 0, nil
		case string(line) == "block":
			s.h.entered <- struct{}{}
			<-s.h.release
			c.Out = append(c.Out, "UNBLOCKED\n"...)
		case string(line) == "takeover":
			c.Out = append(c.Out, "TAKEN\n"...)
			if err := c.Flush(); err != nil {
				return consumed, 0, err
			}
			nc := c.NetConn()
			gone := make(chan struct{})
			go func() {
				defer close(gone)
				var b [64]byte
				for {
					if _, err := nc.Read(b[:]); err != nil {
						return
					}
				}
			}()
			<-gone
			return consumed + i + 1, 0, ErrClose
		case string(line) == "flush":
			c.Out = append(c.Out, "X\n"...)
			if err := c.Flush(); err != nil {
				return consumed, 0, err
			}
			c.Out = append(c.Out, "Y\n"...)
		case bytes.HasPrefix(line, []byte("big ")):
			n, _ := strconv.Atoi(string(line[4:]))
			if len(rest) < i+1+n {
				return consumed, i + 1 + n, nil
			}
			c.Out = append(c.Out, "GOT "...)
			c.Out = strconv.AppendInt(c.Out, int64(n), 10)
			c.Out = append(c.Out, " buf="...)
			c.Out = strconv.AppendUint(c.Out, c.Server().Stats().ReadBufBytes, 10)
			c.Out = append(c.Out, '\n')
			consumed += i + 1 + n
			continue
		case string(line) == "bufstat":
			c.Out = append(c.Out, "BUF "...)
			c.Out = strconv.AppendUint(c.Out, c.Server().Stats().ReadBufBytes, 10)
			c.Out = append(c.Out, '\n')
		case bytes.HasPrefix(line, []byte("blob ")):
			n, _ := strconv.Atoi(string(line[5:]))
			c.GrowOut(n + 1)
			for range n {
				c.Out = append(c.Out, 'b')
			}
			c.Out = append(c.Out, '\n')
		case bytes.HasPrefix(line, []byte("reply ")):
			n, _ := strconv.Atoi(string(line[6:]))
			c.Out = append(c.Out, bytes.Repeat([]byte("r"), n)...)
			c.Out = append(c.Out, '\n')
		case string(line) == "outcap":
			c.Out = append(c.Out, "OUT "...)
			c.Out = strconv.AppendInt(c.Out, int64(outCap), 10)
			c.Out = append(c.Out, '\n')
		default:
			for _, b := range line {
				if 'a' <= b && b <= 'z' {
					b -= 'a' - 'A'
				}
				c.Out = append(c.Out, b)
			}
			c.Out = append(c.Out, '\n')
		}
		consumed += i + 1
	}
	return consumed, 0, nil
}

// pipeListener hands out the server ends of net.Pipe connections: they do
// not expose a descriptor, so they exercise the buffered (non-raw) path,
// and a pipe delivers each client write in one read, deterministically.
type pipeListener struct {
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

func newPipeListener() *pipeListener {
	return &pipeListener{ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) dial() (net.Conn, error) {
	srv, cli := net.Pipe()
	select {
	case l.ch <- srv:
		return cli, nil
	case <-l.closed:
		srv.Close()
		cli.Close()
		return nil, net.ErrClosed
	}
}

// testServer is a running server with a way to dial it.
type testServer struct {
	t    *testing.T
	s    *Server
	h    *lineHandler
	l    net.Listener
	dial func() (net.Conn, error)
	errc chan error
}

type transport string

const (
	tcp  transport = "tcp"
	pipe transport = "pipe"
	// parking is TCP with connections parked after a millisecond idle,
	// so that nearly every wait for a request goes through the poller.
	parking transport = "tcp-parking"
	// tlsTCP is TLS over TCP (ServeTLS), tlsParking the same with
	// parking after a millisecond.
	tlsTCP     transport = "tls"
	tlsParking transport = "tls-parking"
)

var transports = []transport{tcp, pipe, parking, tlsTCP, tlsParking}

func start(t *testing.T, tr transport, cfg Config) *testServer {
	t.Helper()
	ts := &testServer{t: t, h: newLineHandler(), errc: make(chan error, 1)}
	if tr == parking || tr == tlsParking {
		if cfg.ParkIdleAfter == 0 {
			cfg.ParkIdleAfter = time.Millisecond
		}
		if tr == parking {
			tr = tcp
		} else {
			tr = tlsTCP
		}
	}
	ts.s = New(ts.h, cfg)
	switch tr {
	case tlsTCP:
		l, err := Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ts.l = l
		pki := testPKI(t)
		ts.dial = func() (net.Conn, error) {
			return tls.Dial("tcp", l.Addr().String(), pki.clientConfig())
		}
		go func() { ts.errc <- ts.s.ServeTLS(ts.l, pki.serverConfig()) }()
		t.Cleanup(ts.stop)
		return ts
	case tcp:
		l, err := Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ts.l = l
		ts.dial = func() (net.Conn, error) { return net.Dial("tcp", l.Addr().String()) }
	case pipe:
		l := newPipeListener()
		ts.l = l
		ts.dial = l.dial
	}
	go func() { ts.errc <- ts.s.Serve(ts.l) }()
	t.Cleanup(ts.stop)
	return ts
}

// stop shuts the server down (once) and checks that Serve returned nil.
func (ts *testServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	select {
	case <-ts.h.release:
	default:
		close(ts.h.release)
	}
	if err := ts.s.Shutdown(ctx); err != nil {
		ts.t.Errorf("Shutdown: %v", err)
	}
	if ts.errc != nil {
		if err := <-ts.errc; err != nil {
			ts.t.Errorf("Serve returned %v", err)
		}
		ts.errc = nil
	}
}

// client is a test connection with a read deadline so that no test hangs.
type client struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func (ts *testServer) connect() *client {
	ts.t.Helper()
	c, err := ts.dial()
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.t.Cleanup(func() { c.Close() })
	return &client{t: ts.t, c: c, br: bufio.NewReader(c)}
}

func (c *client) send(s string) {
	c.t.Helper()
	c.c.SetWriteDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// sendAsync writes s from another goroutine, for a request whose replies
// the test reads while it is still being written. The write's error comes
// back on the channel for the test's goroutine to check (see sent).
func (c *client) sendAsync(s string) <-chan error {
	errc := make(chan error, 1)
	go func() {
		c.c.SetWriteDeadline(time.Now().Add(20 * time.Second))
		_, err := io.WriteString(c.c, s)
		errc <- err
	}()
	return errc
}

// sent waits for a write started by sendAsync and fails the test if it
// failed.
func (c *client) sent(errc <-chan error) {
	c.t.Helper()
	if err := <-errc; err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// exchange sends req and reads one line back, reporting failures instead
// of failing the test.
func (c *client) exchange(req string) (string, error) {
	c.c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c.c, req); err != nil {
		return "", err
	}
	return c.br.ReadString('\n')
}

func (c *client) line() string {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	s, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read line: %v (got %q)", err, s)
	}
	return s
}

func (c *client) expect(want string) {
	c.t.Helper()
	if got := c.line(); got != want {
		c.t.Fatalf("got %q, want %q", got, want)
	}
}

// expectEOF reads until the server closes the connection, failing on any
// byte that arrives first.
func (c *client) expectEOF() {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	b, err := io.ReadAll(c.br)
	if len(b) > 0 {
		c.t.Fatalf("got %q before close", b)
	}
	if err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		c.t.Fatalf("want EOF, got %v", err)
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

// eventually polls cond until it holds, failing after a generous bound.
// It waits for the server's goroutines to reach a state, it times nothing.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s: never happened", what)
}

// lockedBuffer is a log destination safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func testLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

// settled waits until every Serve call that produced replies has had its
// write counted (the counter moves just after the client has the bytes),
// and returns the stats. Call it once the client has read every reply;
// only for tests that do not call Flush. A server that wrote more than
// once per batch shows as Writes above the count of batches with replies.
func (ts *testServer) settled() Stats {
	ts.t.Helper()
	var st Stats
	eventually(ts.t, "writes counted", func() bool {
		st = ts.s.Stats()
		return st.Writes >= uint64(ts.h.outputs.Load())
	})
	return st
}

// growingTimeout runs attempt with a timeout that starts short, so that a
// test of a timeout stays quick, and doubles it each time attempt reports
// that the machine was too slow for it (retry true: something the test
// needed to happen before the timeout did not). A test so built depends
// on the machine being idle for none of its results; it fails only when
// the timeout passes a bound that a working server never needs.
func growingTimeout(t *testing.T, attempt func(timeout time.Duration) (retry bool)) {
	t.Helper()
	for timeout := 50 * time.Millisecond; timeout <= 15*time.Second; timeout *= 2 {
		if !attempt(timeout) {
			return
		}
		t.Logf("timeout %v too short for this machine now; doubling it", timeout)
	}
	t.Fatal("still too slow with a 15s timeout")
}
