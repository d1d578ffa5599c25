package server

import (
	"testing"
	"time"
)

// TestInlineOneReadPerRequest: a connection that serves its requests
// inline reads each request once, without a read that finds nothing
// before it waits for the next (see serveInline).
func TestInlineOneReadPerRequest(t *testing.T) {
	ts := start(t, tcp, Config{})
	c := ts.connect()
	const n = 200
	for range n {
		c.send("abc\n")
		c.expect("ABC\n")
	}
	// A read finds nothing only after a wake-up without data, which
	// nothing here causes; without inline serving each of the n
	// requests costs one.
	if e := ts.s.emptyReads.Load(); e > n/10 {
		t.Errorf("%d reads found nothing for %d requests, want at most %d", e, n, n/10)
	}
}

// TestCloseWhileServingInline: Close does not wait for a Session blocked
// in Serve inside the connection's read (closing the net.Conn would wait
// for the read to end), and the connection ends when Serve returns.
func TestCloseWhileServingInline(t *testing.T) {
	ts := start(t, tcp, Config{})
	c := ts.connect()
	c.send("a\n")
	c.expect("A\n")
	c.send("block\n")
	<-ts.h.entered
	closed := make(chan error, 1)
	go func() { closed <- ts.s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close waits for a Session blocked in Serve")
	}
	close(ts.h.release)
	c.expectEOF()
	eventually(t, "connection ended", func() bool { return ts.s.Stats().CurrConns == 0 && ts.h.closed.Load() == 1 })
}

// TestInlineTakeOver: a Session that takes the connection over while
// serving inline (memcached's watch) reads what the client sends and
// sees it close.
func TestInlineTakeOver(t *testing.T) {
	for _, tr := range []transport{tcp, parking} {
		t.Run(string(tr), func(t *testing.T) {
			ts := start(t, tr, Config{})
			c := ts.connect()
			c.send("a\n")
			c.expect("A\n")
			c.send("takeover\n")
			c.expect("TAKEN\n")
			c.send("ignored\n")
			c.c.Close()
			eventually(t, "connection ended", func() bool { return ts.s.Stats().CurrConns == 0 && ts.h.closed.Load() == 1 })
		})
	}
}
