package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestEcho(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			ts := start(t, tr, Config{})
			c := ts.connect()
			c.send("hello\n")
			c.expect("HELLO\n")
			c.send("\n")
			c.expect("\n")
		})
	}
}

// TestPipelineOneWrite: requests that arrive together are answered with
// one write. A pipe delivers the client's write in one read.
func TestPipelineOneWrite(t *testing.T) {
	ts := start(t, pipe, Config{})
	c := ts.connect()
	c.send("warm\n")
	c.expect("WARM\n")
	before := ts.settled()
	serves := ts.h.serves.Load()
	sent := c.sendAsync("a\nb\nc\nd\n")
	for _, want := range []string{"A\n", "B\n", "C\n", "D\n"} {
		c.expect(want)
	}
	c.sent(sent)
	after := ts.settled()
	if d := after.Writes - before.Writes; d != 1 {
		t.Errorf("writes for 4 pipelined requests = %d, want 1", d)
	}
	if d := after.Reads - before.Reads; d != 1 {
		t.Errorf("reads = %d, want 1", d)
	}
	if d := ts.h.serves.Load() - serves; d != 1 {
		t.Errorf("Serve calls = %d, want 1", d)
	}
}

// TestPipelineTCP: over TCP, however the bytes are split into reads, the
// replies of each Serve call (one batch) are written with one write: never
// more writes than batches.
func TestPipelineTCP(t *testing.T) {
	ts := start(t, tcp, Config{})
	c := ts.connect()
	var req, resp strings.Builder
	for i := range 500 {
		fmt.Fprintf(&req, "line%d\n", i)
		fmt.Fprintf(&resp, "LINE%d\n", i)
	}
	sent := c.sendAsync(req.String())
	got := make([]byte, resp.Len())
	c.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadFull(c.br, got); err != nil {
		t.Fatal(err)
	}
	c.sent(sent)
	if string(got) != resp.String() {
		t.Fatal("wrong replies")
	}
	st := ts.settled()
	batches, replied := ts.h.serves.Load(), ts.h.outputs.Load()
	if st.Writes > uint64(batches) || st.Writes != uint64(replied) {
		t.Errorf("%d writes for %d batches (%d with replies); want one write per batch with replies",
			st.Writes, batches, replied)
	}
	if st.Reads < uint64(batches) {
		t.Errorf("%d Serve calls for %d reads", batches, st.Reads)
	}
}

func TestRequestSpanningReads(t *testing.T) {
	ts := start(t, pipe, Config{})
	c := ts.connect()
	before := ts.s.Stats()
	for _, part := range []string{"he", "llo", " ", "wor", "ld\n"} {
		c.send(part)
	}
	c.expect("HELLO WORLD\n")
	if d := ts.s.Stats().Reads - before.Reads; d != 5 {
		t.Errorf("reads = %d, want 5", d)
	}

	// With a known need, Serve is not called again until it is met.
	serves := ts.h.serves.Load()
	c.send("big 10\n")
	c.send("0123")
	c.send("45678")
	c.send("9")
	c.expect("GOT 10 buf=" + strconv.Itoa(DefaultReadBufferSize) + "\n")
	if d := ts.h.serves.Load() - serves; d != 2 {
		t.Errorf("Serve calls = %d, want 2 (header, then complete)", d)
	}
}

func TestGrowAndShrink(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			ts := start(t, tr, Config{ReadBufferSize: 64, MaxRequestSize: 1024})
			c := ts.connect()
			data := strings.Repeat("v", 500)

			c.send("big 500\n" + data)
			got := c.line()
			var n, buf int
			if _, err := fmt.Sscanf(got, "GOT %d buf=%d\n", &n, &buf); err != nil || n != 500 {
				t.Fatalf("got %q", got)
			}
			if buf < 508 || buf > 1024 {
				t.Errorf("buffer while serving a 508-byte request = %d, want 508..1024", buf)
			}
			c.send("bufstat\n")
			c.expect("BUF 64\n")

			// Unknown need: a long line grows the buffer by doubling.
			long := strings.Repeat("x", 900)
			c.send(long + "\n")
			c.expect(strings.ToUpper(long) + "\n")
			c.send("bufstat\n")
			c.expect("BUF 64\n")

			// Pipelined behind a big request.
			c.send("big 300\n" + data[:300] + "after\n")
			if got := c.line(); !strings.HasPrefix(got, "GOT 300 ") {
				t.Fatalf("got %q", got)
			}
			c.expect("AFTER\n")
		})
	}
}

func TestMaxRequestSize(t *testing.T) {
	cases := []struct{ name, req string }{
		{"known need", "big 2000\n"},
		{"need exactly over", "big 1017\n"}, // 8 + 1017 = 1025 > 1024
		{"unknown need", strings.Repeat("y", 1024)},
	}
	for _, tr := range transports {
		for _, tc := range cases {
			t.Run(string(tr)+"/"+tc.name, func(t *testing.T) {
				log := &lockedBuffer{}
				ts := start(t, tr, Config{ReadBufferSize: 64, MaxRequestSize: 1024, Logger: testLogger(log)})
				c := ts.connect()
				c.send("ok\n")
				c.expect("OK\n")
				go func() {
					c.c.SetWriteDeadline(time.Now().Add(20 * time.Second))
					io.WriteString(c.c, tc.req) // may fail once the server has closed
				}()
				c.expectEOF()
				eventually(t, "conn released", func() bool { return ts.s.Stats().CurrConns == 0 })
				if !strings.Contains(log.String(), ErrRequestTooLarge.Error()) {
					t.Errorf("log lacks the reason: %s", log)
				}
			})
		}
	}
	t.Run("fits exactly", func(t *testing.T) {
		ts := start(t, tcp, Config{ReadBufferSize: 64, MaxRequestSize: 1024})
		c := ts.connect()
		c.send("big 1015\n" + strings.Repeat("z", 1015)) // 9 + 1015 = 1024
		if got := c.line(); !strings.HasPrefix(got, "GOT 1015 buf=1024") {
			t.Fatalf("got %q", got)
		}
	})
}

// TestIdleBuffers: a TCP connection waiting for a request holds no read
// buffer; a pipe (no descriptor) keeps one of ReadBufferSize.
func TestIdleBuffers(t *testing.T) {
	for _, tc := range []struct {
		tr   transport
		want uint64
	}{{tcp, 0}, {pipe, 256}} {
		t.Run(string(tc.tr), func(t *testing.T) {
			ts := start(t, tc.tr, Config{ReadBufferSize: 256})
			c := ts.connect()
			c.send("big 5000\n" + strings.Repeat("q", 5000))
			c.line()
			eventually(t, "buffer released", func() bool {
				st := ts.s.Stats()
				return st.ReadBufBytes == tc.want && st.CurrConns == 1
			})
		})
	}
}

func TestReplyBufferReleased(t *testing.T) {
	ts := start(t, pipe, Config{})
	c := ts.connect()
	c.send("reply 100000\n")
	if got := c.line(); len(got) != 100001 {
		t.Fatalf("reply length %d", len(got))
	}
	c.send("outcap\n")
	got := c.line()
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(got, "OUT ")))
	if err != nil || n > MaxKeptReplyBuffer {
		t.Fatalf("reply buffer after a 100 KB reply: %q", got)
	}
}

func TestFlush(t *testing.T) {
	ts := start(t, pipe, Config{})
	c := ts.connect()
	before := ts.s.Stats().Writes
	c.send("flush\n")
	c.expect("X\n")
	c.expect("Y\n")
	// The counter moves just after the write returns.
	eventually(t, "two writes counted", func() bool { return ts.s.Stats().Writes-before >= 2 })
	c.send("n\n")
	c.expect("N\n")
	eventually(t, "three writes counted", func() bool { return ts.s.Stats().Writes-before >= 3 })
	if d := ts.s.Stats().Writes - before; d != 3 {
		t.Errorf("writes = %d, want 3", d)
	}
}

func TestQuit(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			ts := start(t, tr, Config{})
			c := ts.connect()
			sent := c.sendAsync("a\nquit\nb\n")
			c.expect("A\n")
			c.expectEOF()
			c.sent(sent)
			eventually(t, "session closed", func() bool { return ts.h.closed.Load() == 1 })
			if ts.h.created.Load() != 1 {
				t.Errorf("sessions created = %d", ts.h.created.Load())
			}
		})
	}
}

func TestSessionPanic(t *testing.T) {
	log := &lockedBuffer{}
	ts := start(t, tcp, Config{Logger: testLogger(log)})
	c1 := ts.connect()
	c2 := ts.connect()
	c1.send("x\n")
	c1.expect("X\n")
	c1.send("panic\n")
	c1.expectEOF() // the partial reply is dropped
	c2.send("still\n")
	c2.expect("STILL\n")
	eventually(t, "panicked conn released", func() bool { return ts.s.Stats().CurrConns == 1 && ts.h.closed.Load() == 1 })
	if s := log.String(); !strings.Contains(s, "panic in session") || !strings.Contains(s, "Serve boom") {
		t.Errorf("panic not logged: %s", s)
	}

	c2.send("badconsumed\n")
	c2.expectEOF()

	ts.h.panicNew.Store(true)
	c3 := ts.connect()
	c3.expectEOF()
	if !strings.Contains(log.String(), "NewSession boom") {
		t.Error("NewSession panic not logged")
	}
	eventually(t, "all released", func() bool { return ts.s.Stats().CurrConns == 0 })
}

func TestMaxConns(t *testing.T) {
	ts := start(t, tcp, Config{MaxConns: 2})
	c1, c2 := ts.connect(), ts.connect()
	for _, c := range []*client{c1, c2} {
		c.send("hi\n")
		c.expect("HI\n")
	}
	c3 := ts.connect()
	c3.expectEOF() // no RejectMessage: closed without a word
	st := ts.s.Stats()
	if st.RejectedConns != 1 || st.TotalConns != 2 || st.CurrConns != 2 || st.MaxConns != 2 {
		t.Errorf("stats %+v", st)
	}
	c1.c.Close()
	eventually(t, "slot freed", func() bool { return ts.s.Stats().CurrConns == 1 })
	c4 := ts.connect()
	c4.send("back\n")
	c4.expect("BACK\n")
	if st := ts.s.Stats(); st.TotalConns != 3 || st.RejectedConns != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestRejectMessageConfigurable(t *testing.T) {
	ts := start(t, tcp, Config{MaxConns: 1, RejectMessage: []byte("BUSY\r\n")})
	c1 := ts.connect()
	c1.send("a\n")
	c1.expect("A\n")
	c2 := ts.connect()
	c2.expect("BUSY\r\n")
}

// TestIdleTimeout: a connection that sends nothing for IdleTimeout is
// closed, after serving what it sent before.
func TestIdleTimeout(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			growingTimeout(t, func(timeout time.Duration) bool {
				log := &lockedBuffer{}
				ts := start(t, tr, Config{IdleTimeout: timeout, Logger: testLogger(log)})
				c := ts.connect()
				if got, err := c.exchange("a\n"); err != nil || got != "A\n" {
					// Closed before the request arrived: the
					// client was slower than the timeout.
					eventually(t, "released", func() bool { return ts.s.Stats().CurrConns == 0 })
					if !strings.Contains(log.String(), "idle") {
						t.Fatalf("exchange: %q, %v; not an idle close: %s", got, err, log)
					}
					return true
				}
				c.expectEOF()
				eventually(t, "released", func() bool { return ts.s.Stats().CurrConns == 0 && ts.h.closed.Load() == 1 })
				if !strings.Contains(log.String(), "idle") {
					t.Errorf("idle close not logged: %s", log)
				}
				if st := ts.s.Stats(); st.IdleKicks != 1 || st.IdleTimeout != timeout {
					t.Errorf("Stats: IdleKicks %d IdleTimeout %v, want 1 and %v", st.IdleKicks, st.IdleTimeout, timeout)
				}
				return false
			})
		})
	}
}

// TestIdleTimeoutWriting: a client that stops reading its replies is
// idle too: the blocked write times out and the connection is released.
func TestIdleTimeoutWriting(t *testing.T) {
	const size = 32 << 20 // more than loopback socket buffers hold
	growingTimeout(t, func(timeout time.Duration) bool {
		ts := start(t, tcp, Config{IdleTimeout: timeout})
		c := ts.connect()
		c.send("reply " + strconv.Itoa(size) + "\n")
		eventually(t, "stalled writer released", func() bool { return ts.s.Stats().CurrConns == 0 && ts.h.closed.Load() == 1 })
		if ts.h.outputs.Load() == 0 {
			return true // closed idle before the request arrived
		}
		if st := ts.s.Stats(); st.Writes != 1 || st.BytesWritten > size {
			t.Errorf("the reply was written whole (%d bytes, %d writes): the write did not stall", st.BytesWritten, st.Writes)
		}
		return false
	})
}

func TestShutdownWaitsForServe(t *testing.T) {
	base := runtime.NumGoroutine()
	h := newLineHandler()
	s := New(h, Config{})
	l, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	dial := func() *client {
		nc, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		return &client{t: t, c: nc, br: newReader(nc)}
	}
	busy, idle, partial := dial(), dial(), dial()
	idle.send("i\n")
	idle.expect("I\n")
	partial.send("p\n")
	partial.expect("P\n")
	partial.send("half a line")
	busy.send("block\n")
	<-h.entered

	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	if err := <-errc; err != nil {
		t.Errorf("Serve returned %v after Shutdown", err)
	}
	idle.expectEOF()
	partial.expectEOF()
	if _, err := net.Dial("tcp", l.Addr().String()); err == nil {
		t.Error("dial succeeded after Shutdown")
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while a Serve call was in flight", err)
	default:
	}
	close(h.release)
	busy.expect("UNBLOCKED\n")
	busy.expectEOF()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := h.closed.Load(); n != 3 {
		t.Errorf("sessions closed = %d, want 3", n)
	}
	if st := s.Stats(); st.CurrConns != 0 || st.Listeners != 0 {
		t.Errorf("stats after Shutdown %+v", st)
	}
	noLeaks(t, base)

	// Serving after Shutdown returns at once.
	l2, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(l2); err != nil {
		t.Errorf("Serve after Shutdown: %v", err)
	}
}

func TestShutdownDeadline(t *testing.T) {
	base := runtime.NumGoroutine()
	ts := start(t, tcp, Config{})
	c := ts.connect()
	c.send("block\n")
	<-ts.h.entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ts.s.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown = %v, want context.Canceled", err)
	}
	c.expectEOF() // forced close while Serve is blocked
	close(ts.h.release)
	eventually(t, "conn goroutine ended", func() bool { return ts.s.Stats().CurrConns == 0 })
	ts.stop()
	noLeaks(t, base)
}

func TestClose(t *testing.T) {
	base := runtime.NumGoroutine()
	h := newLineHandler()
	s := New(h, Config{})
	l, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := &client{t: t, c: nc, br: newReader(nc)}
	c.send("a\n")
	c.expect("A\n")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Errorf("Serve returned %v after Close", err)
	}
	c.expectEOF()
	eventually(t, "released", func() bool { return s.Stats().CurrConns == 0 && h.closed.Load() == 1 })
	noLeaks(t, base)
}

func noLeaks(t *testing.T, base int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if runtime.NumGoroutine() <= base {
			return
		}
	}
	buf := make([]byte, 1<<20)
	t.Fatalf("goroutines: %d, want <= %d\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
}

func TestCounters(t *testing.T) {
	ts := start(t, pipe, Config{})
	c := ts.connect()
	c.send("abc\n")
	c.expect("ABC\n")
	c.send("de\n")
	c.expect("DE\n")
	eventually(t, "counted", func() bool { return ts.s.Stats().Writes == 2 })
	st := ts.s.Stats()
	if st.BytesRead != 7 || st.BytesWritten != 7 || st.Reads != 2 || st.Writes != 2 ||
		st.CurrConns != 1 || st.TotalConns != 1 || st.Listeners != 1 || st.PeakConns != 2 {
		t.Errorf("stats %+v", st)
	}
	c.c.Close()
	eventually(t, "closed", func() bool { return ts.s.Stats().CurrConns == 0 })
	st = ts.s.Stats()
	if st.BytesRead != 7 || st.BytesWritten != 7 || st.TotalConns != 1 || st.ReadBufBytes != 0 {
		t.Errorf("stats after close %+v", st)
	}
}

func TestEachConn(t *testing.T) {
	ts := start(t, tcp, Config{})
	busy, idle := ts.connect(), ts.connect()
	for _, c := range []*client{busy, idle} {
		c.send("x\n")
		c.expect("X\n")
	}
	busy.send("block\n")
	<-ts.h.entered
	byRemote := map[string]ConnInfo{}
	var listeners []ConnInfo
	var last uint64
	eventually(t, "idle conn waiting", func() bool {
		byRemote, listeners, last = map[string]ConnInfo{}, nil, 0
		ts.s.EachConn(func(ci ConnInfo) {
			if ci.ID <= last {
				t.Errorf("IDs out of order: %d after %d", ci.ID, last)
			}
			last = ci.ID
			if ci.Listening {
				listeners = append(listeners, ci)
				return
			}
			byRemote[ci.RemoteAddr.String()] = ci
		})
		return byRemote[idle.c.LocalAddr().String()].State == StateWaiting
	})
	if len(listeners) != 1 || listeners[0].State != StateListening || listeners[0].LocalAddr.String() != ts.l.Addr().String() {
		t.Errorf("listeners %+v", listeners)
	}
	if len(byRemote) != 2 {
		t.Fatalf("conns %+v", byRemote)
	}
	b := byRemote[busy.c.LocalAddr().String()]
	if b.State != StateServing || b.ListenAddr.String() != ts.l.Addr().String() ||
		b.LocalAddr.String() != busy.c.RemoteAddr().String() || b.SinceLastRequest < 0 || b.ID <= listeners[0].ID {
		t.Errorf("busy conn %+v", b)
	}
	close(ts.h.release)
	busy.expect("UNBLOCKED\n")
}

func TestStateString(t *testing.T) {
	for st, want := range map[State]string{
		StateWaiting: "waiting", StateReading: "reading", StateReadingNeed: "reading-need",
		StateServing: "serving", StateWriting: "writing", StateClosing: "closing",
		StateListening: "listening", StateListening + 1: "State(7)",
	} {
		if got := st.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", uint32(st), got, want)
		}
	}
}

// TestStates: a connection reports what it is doing: reading with an
// unknown or a known need, serving, waiting.
func TestStates(t *testing.T) {
	ts := start(t, pipe, Config{})
	c := ts.connect()
	state := func() State {
		var st State
		ts.s.EachConn(func(ci ConnInfo) {
			if !ci.Listening {
				st = ci.State
			}
		})
		return st
	}
	// A pipe write returns once the server has read it, and the state is
	// set just before the next read: poll until then.
	c.send("half a li")
	eventually(t, "state reading", func() bool { return state() == StateReading })
	c.send("ne\nbig 10\n01234")
	c.expect("HALF A LINE\n") // a pipe's write waits for the reader
	eventually(t, "state reading-need", func() bool { return state() == StateReadingNeed })
	c.send("56789")
	c.expect("GOT 10 buf=" + strconv.Itoa(DefaultReadBufferSize) + "\n")
	eventually(t, "state waiting", func() bool { return state() == StateWaiting })
	c.send("block\n")
	<-ts.h.entered
	if st := state(); st != StateServing {
		t.Errorf("state in Serve = %v, want serving", st)
	}
	close(ts.h.release)
	c.expect("UNBLOCKED\n")
}

func TestUnixSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mnemo.sock")
	l, err := ListenUnix(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want socket 0600", fi.Mode())
	}
	h := newLineHandler()
	s := New(h, Config{})
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	nc, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := &client{t: t, c: nc, br: newReader(nc)}
	c.send("unix\n")
	c.expect("UNIX\n")
	var seen bool
	s.EachConn(func(ci ConnInfo) { seen = seen || (!ci.Listening && ci.ListenAddr.String() == path) })
	if !seen {
		t.Error("unix conn not listed")
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file left after close: %v", err)
	}
}

func TestListenUnixStaleAndMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "stale.sock")
	l, err := ListenUnix(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Perm() != DefaultUnixMode {
		t.Errorf("default mode: %v %v", fi.Mode(), err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	l, err = ListenUnix(path, 0o666)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	if fi, _ := os.Lstat(path); fi.Mode().Perm() != 0o666 {
		t.Errorf("mode %v, want 0666", fi.Mode())
	}
	l.Close()

	file := filepath.Join(dir, "regular")
	if err := os.WriteFile(file, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ListenUnix(file, 0o700); !errors.Is(err, ErrNotSocket) {
		t.Errorf("ListenUnix over a regular file = %v, want ErrNotSocket", err)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep" {
		t.Errorf("regular file touched: %q %v", b, err)
	}
}

func TestListen(t *testing.T) {
	if _, err := Listen("udp", "127.0.0.1:0"); err == nil {
		t.Error("udp accepted")
	}
	l4, err := Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l6, err := Listen("tcp6", "[::1]:0")
	if err != nil {
		l4.Close()
		t.Skipf("no IPv6 loopback: %v", err)
	}
	h := newLineHandler()
	s := New(h, Config{})
	errc := make(chan error, 2)
	go func() { errc <- s.Serve(l4) }()
	go func() { errc <- s.Serve(l6) }()
	for _, l := range []net.Listener{l4, l6} {
		nc, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c := &client{t: t, c: nc, br: newReader(nc)}
		c.send("v\n")
		c.expect("V\n")
		nc.Close()
	}
	eventually(t, "both listeners", func() bool { return s.Stats().Listeners == 2 })
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
}

func TestServeReturnsAcceptError(t *testing.T) {
	s := New(newLineHandler(), Config{})
	want := errors.New("boom")
	if err := s.Serve(failingListener{want}); !errors.Is(err, want) {
		t.Errorf("Serve = %v, want %v", err, want)
	}
}

type failingListener struct{ err error }

func (l failingListener) Accept() (net.Conn, error) { return nil, l.err }
func (l failingListener) Close() error              { return nil }
func (l failingListener) Addr() net.Addr            { return pipeAddr{} }

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg Config
		ok  bool
	}{
		{Config{}, true},
		{Config{MaxConns: 10, IdleTimeout: time.Second, ReadBufferSize: 1024, MaxRequestSize: 4096}, true},
		{Config{MaxConns: -1}, false},
		{Config{IdleTimeout: -1}, false},
		{Config{ReadBufferSize: -1}, false},
		{Config{MaxRequestSize: -1}, false},
		{Config{ReadBufferSize: 8192, MaxRequestSize: 4096}, false},
		{Config{ReadBufMemLimit: -1}, false},
		{Config{ReadBufMemLimit: 1 << 20}, true},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: Validate = %v", tc.cfg, err)
		}
	}
	got := New(newLineHandler(), Config{ReadBufferSize: 1, MaxRequestSize: 2}).Config()
	if got.ReadBufferSize != 64 || got.MaxRequestSize != 64 || got.MaxConns != DefaultMaxConns || got.Logger == nil {
		t.Errorf("defaults: %+v", got)
	}
	if s := (Config{}).String(); s != "maxconns=1024 idle_timeout=0s read_buffer_size=16384 max_request_size=2097152 read_buf_mem_limit=0" {
		t.Errorf("String = %q", s)
	}
}
