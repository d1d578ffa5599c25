package server

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startTLS starts a server on a TLS listener with config (the test PKI's
// server certificate when nil) and returns it with its address.
func startTLS(t *testing.T, cfg Config, config *tls.Config) (*testServer, string) {
	t.Helper()
	if config == nil {
		config = testPKI(t).serverConfig()
	}
	ts := &testServer{t: t, h: newLineHandler(), errc: make(chan error, 1)}
	ts.s = New(ts.h, cfg)
	l, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.l = l
	addr := l.Addr().String()
	pki := testPKI(t)
	ts.dial = func() (net.Conn, error) { return tls.Dial("tcp", addr, pki.clientConfig()) }
	go func() { ts.errc <- ts.s.ServeTLS(l, config) }()
	t.Cleanup(ts.stop)
	return ts, addr
}

// rawDial opens a plain TCP connection to addr.
func rawDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readUntilClosed reads from c until the server closes it and returns
// what came first.
func readUntilClosed(t *testing.T, c net.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil && !isReset(err) {
		t.Fatalf("want the server to close, got %v", err)
	}
	return b
}

// TestTLSBadClients: clients that fail their handshake are closed with a
// logged reason and counted; one that says nothing is not counted; a good
// client is served all along; nothing leaks.
func TestTLSBadClients(t *testing.T) {
	base := runtime.NumGoroutine()
	logs := &lockedBuffer{}
	growingTimeout(t, func(timeout time.Duration) bool {
		ts, addr := startTLS(t, Config{TLSHandshakeTimeout: timeout, Logger: testLogger(logs)}, nil)
		good := ts.connect()
		good.send("hello\n")
		good.expect("HELLO\n")

		// A plaintext client: the server answers with a TLS alert at
		// most (no protocol bytes) and closes.
		c := rawDial(t, addr)
		c.Write([]byte("get foo\r\n"))
		if b := readUntilClosed(t, c); bytes.Contains(b, []byte("FOO")) {
			t.Errorf("plaintext client got a reply: %q", b)
		}
		eventually(t, "plaintext counted", func() bool { return ts.s.Stats().TLSHandshakeErrors == 1 })
		// A client that stalls: a record header, then nothing.
		start := time.Now()
		c = rawDial(t, addr)
		c.Write([]byte{0x16, 0x03, 0x01, 0x00, 0x40})
		readUntilClosed(t, c)
		if time.Since(start) < timeout {
			t.Errorf("stalled handshake closed after %v, before the %v deadline", time.Since(start), timeout)
		}
		eventually(t, "stall counted", func() bool { return ts.s.Stats().TLSHandshakeErrors == 2 })
		// A truncated record: half a ClientHello, then the close.
		hello := clientHelloBytes(t)
		c = rawDial(t, addr)
		c.Write(hello[:len(hello)/2])
		c.(*net.TCPConn).CloseWrite()
		readUntilClosed(t, c)
		eventually(t, "truncation counted", func() bool { return ts.s.Stats().TLSHandshakeErrors == 3 })
		// A client that connects and closes without a byte: a probe,
		// not an error.
		c = rawDial(t, addr)
		c.Close()
		eventually(t, "probe released", func() bool { return ts.s.Stats().CurrConns == 1 })

		good.send("still\n")
		good.expect("STILL\n")
		st := ts.s.Stats()
		if st.TLSHandshakeErrors != 3 || st.TLSHandshakes != 1 {
			t.Errorf("TLSHandshakeErrors = %d, TLSHandshakes = %d; want 3, 1", st.TLSHandshakeErrors, st.TLSHandshakes)
		}
		if ts.h.created.Load() != 1 {
			t.Errorf("%d sessions created, want 1 (only the good client's)", ts.h.created.Load())
		}
		ts.stop()
		return false
	})
	out := logs.String()
	for _, want := range []string{
		"TLS handshake failed", "first record does not look like a TLS handshake",
		"handshake not finished within", "unexpected EOF",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	noLeaks(t, base)
}

// clientHelloBytes returns the first flight of a Go TLS client.
func clientHelloBytes(t *testing.T) []byte {
	t.Helper()
	srv, cli := net.Pipe()
	defer srv.Close()
	go func() {
		tc := tls.Client(cli, &tls.Config{InsecureSkipVerify: true})
		tc.Handshake()
		cli.Close()
	}()
	// The record header gives the record's length.
	var hdr [5]byte
	if _, err := io.ReadFull(srv, hdr[:]); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(srv, body); err != nil {
		t.Fatal(err)
	}
	return append(hdr[:], body...)
}

// TestTLSClientCertificates: a server that requires a client certificate
// signed by its CA serves a client that has one and refuses (counting the
// error) one without and one with a certificate the CA did not sign.
func TestTLSClientCertificates(t *testing.T) {
	pki := testPKI(t)
	config := pki.serverConfig()
	config.ClientAuth = tls.RequireAndVerifyClientCert
	config.ClientCAs = pki.pool
	logs := &lockedBuffer{}
	ts, addr := startTLS(t, Config{Logger: testLogger(logs)}, config)

	ok := pki.clientConfig()
	ok.Certificates = []tls.Certificate{pki.client}
	c, err := tls.Dial("tcp", addr, ok)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	c.Write([]byte("hi\n"))
	if l, err := br.ReadString('\n'); l != "HI\n" {
		t.Fatalf("with a certificate: %q, %v", l, err)
	}

	other, err := newPKI() // a CA the server does not know
	if err != nil {
		t.Fatal(err)
	}
	for i, certs := range [][]tls.Certificate{nil, {other.client}} {
		cfg := pki.clientConfig()
		cfg.Certificates = certs
		c, err := tls.Dial("tcp", addr, cfg)
		if err == nil {
			// TLS 1.3: the client learns of the refusal at its
			// first read.
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			c.Write([]byte("hi\n"))
			_, err = c.Read(make([]byte, 10))
			c.Close()
		}
		if err == nil {
			t.Errorf("client %d was served", i)
		}
		want := uint64(i + 1)
		eventually(t, "refusal counted", func() bool { return ts.s.Stats().TLSHandshakeErrors == want })
	}
	// The refusal is counted before it is logged.
	for _, want := range []string{"client didn't provide a certificate", "certificate signed by unknown authority"} {
		eventually(t, "log has "+strconv.Quote(want), func() bool { return strings.Contains(logs.String(), want) })
	}
}

// TestTLSStateAndConns: a TLS connection reports its parameters, and
// EachConn marks TLS listeners and connections.
func TestTLSStateAndConns(t *testing.T) {
	pki := testPKI(t)
	var mu sync.Mutex
	var state tls.ConnectionState
	var isTLS bool
	lh := newLineHandler()
	s := New(HandlerFunc(func(c *Conn) Session {
		mu.Lock()
		state, isTLS = c.TLSState()
		mu.Unlock()
		return &lineSession{h: lh}
	}), Config{})
	l, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.ServeTLS(l, pki.serverConfig()) }()
	go s.Serve(plain)
	ts := &testServer{t: t, h: lh, s: s, l: l, errc: errc,
		dial: func() (net.Conn, error) { return tls.Dial("tcp", l.Addr().String(), pki.clientConfig()) }}
	t.Cleanup(ts.stop)

	pc := rawDial(t, plain.Addr().String())
	pc.Write([]byte("x\n"))
	bufio.NewReader(pc).ReadString('\n')
	mu.Lock()
	if isTLS {
		t.Errorf("plain connection: TLSState() = %+v, true", state)
	}
	mu.Unlock()
	c := ts.connect()
	c.send("y\n")
	c.expect("Y\n")
	mu.Lock()
	if !isTLS || state.Version != tls.VersionTLS13 || !state.HandshakeComplete {
		t.Errorf("TLSState() = %+v, %v", state, isTLS)
	}
	mu.Unlock()

	tlsByAddr := map[string]bool{}
	ts.s.EachConn(func(ci ConnInfo) {
		if ci.Listening {
			tlsByAddr["listen "+ci.LocalAddr.String()] = ci.TLS
		} else {
			tlsByAddr["conn "+ci.ListenAddr.String()] = ci.TLS
		}
	})
	for k, want := range map[string]bool{
		"listen " + ts.l.Addr().String(): true, "conn " + ts.l.Addr().String(): true,
		"listen " + plain.Addr().String(): false, "conn " + plain.Addr().String(): false,
	} {
		if got, ok := tlsByAddr[k]; !ok || got != want {
			t.Errorf("EachConn: %s TLS = %v (listed %v), want %v", k, got, ok, want)
		}
	}
}

// TestTLSDeadlineKeepsBufferedRecords checks what parking a TLS
// connection relies on: with records already read from the socket, a
// Read whose deadline has passed returns their data, not the deadline
// error, and after the deadline error the connection still works.
func TestTLSDeadlineKeepsBufferedRecords(t *testing.T) {
	pki := testPKI(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	// The client's records go through a buffer, so that three records
	// reach the socket in one write.
	bw := &bufferedConn{Conn: raw}
	cli := tls.Client(bw, pki.clientConfig())
	sc := <-accepted
	if sc == nil {
		t.Fatal("accept failed")
	}
	defer sc.Close()
	srv := tls.Server(sc, pki.serverConfig())
	errc := make(chan error, 1)
	go func() { errc <- srv.Handshake() }()
	bw.direct = true
	if err := cli.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	bw.direct = false
	for _, r := range []string{"one\n", "two\n", "three\n"} {
		cli.Write([]byte(r))
	}
	if err := bw.flush(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	srv.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, err := srv.Read(buf)
	if err != nil || string(buf[:n]) != "one\n" {
		t.Fatalf("first read: %q, %v", buf[:n], err)
	}
	srv.SetReadDeadline(aLongTimeAgo)
	var got []string
	for range 2 {
		n, err := srv.Read(buf)
		if err != nil {
			t.Fatalf("read past the deadline with records buffered: %v (got %q so far)", err, got)
		}
		got = append(got, string(buf[:n]))
	}
	if strings.Join(got, "") != "two\nthree\n" {
		t.Fatalf("buffered records: %q", got)
	}
	if _, err := srv.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read with nothing buffered: %v, want the deadline error", err)
	}
	// The deadline error is not fatal to the connection.
	srv.SetReadDeadline(time.Now().Add(20 * time.Second))
	cli.Write([]byte("four\n"))
	bw.flush()
	if n, err := srv.Read(buf); err != nil || string(buf[:n]) != "four\n" {
		t.Fatalf("after the deadline error: %q, %v", buf[:n], err)
	}
}

// bufferedConn holds writes until flush (unless direct).
type bufferedConn struct {
	net.Conn
	direct bool
	buf    []byte
}

func (b *bufferedConn) Write(p []byte) (int, error) {
	if b.direct {
		return b.Conn.Write(p)
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *bufferedConn) flush() error {
	_, err := b.Conn.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

// TestTLSParkingCoalescedRecords: requests that arrive as several records
// in one segment are all served when the connection parks between them.
func TestTLSParkingCoalescedRecords(t *testing.T) {
	if newPoller() == nil {
		t.Skip("no poller on this platform")
	}
	pki := testPKI(t)
	ts, addr := startTLS(t, Config{ParkIdleAfter: time.Millisecond}, nil)
	raw := rawDial(t, addr)
	bw := &bufferedConn{Conn: raw, direct: true}
	cli := tls.Client(bw, pki.clientConfig())
	if err := cli.Handshake(); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(cli)
	for round := range 20 {
		bw.direct = false
		for _, r := range []string{"a\n", "b\n", "c\n"} {
			cli.Write([]byte(r))
		}
		bw.flush()
		bw.direct = true
		cli.SetReadDeadline(time.Now().Add(20 * time.Second))
		for _, want := range []string{"A\n", "B\n", "C\n"} {
			if got, err := br.ReadString('\n'); got != want {
				t.Fatalf("round %d: got %q (%v), want %q", round, got, err, want)
			}
		}
		eventually(t, "parked", func() bool { return ts.s.parkedCount() == 1 })
	}
}

// writeCountingListener counts the Write calls on the connections it
// accepts.
type writeCountingListener struct {
	net.Listener
	writes *atomic.Int64
}

type writeCountingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (l writeCountingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return writeCountingConn{c, l.writes}, nil
}

func (c writeCountingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestTLSOneWritePerBatch: a batch of replies larger than a TLS record
// leaves in one write on the socket, not one per record.
func TestTLSOneWritePerBatch(t *testing.T) {
	pki := testPKI(t)
	var writes atomic.Int64
	s := New(newLineHandler(), Config{})
	l, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.ServeTLS(writeCountingListener{l, &writes}, pki.serverConfig())
	t.Cleanup(func() { s.Close() })
	c, err := tls.Dial("tcp", l.Addr().String(), pki.clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	c.Write([]byte("hi\n"))
	br.ReadString('\n')
	before := writes.Load()
	c.Write([]byte("reply 100000\n"))
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if l, err := br.ReadString('\n'); len(l) != 100001 || err != nil {
		t.Fatalf("reply of %d bytes, %v", len(l), err)
	}
	if n := writes.Load() - before; n != 1 {
		t.Errorf("a 100 KB reply (7 records) took %d writes, want 1", n)
	}
}
