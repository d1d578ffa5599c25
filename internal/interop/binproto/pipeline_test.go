package binproto

import (
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"

	"github.com/mnemo-cache/mnemo/cache"
	"github.com/mnemo-cache/mnemo/engine"
	_ "github.com/mnemo-cache/mnemo/engine/memory"
	"github.com/mnemo-cache/mnemo/memcache"
	bin "github.com/mnemo-cache/mnemo/protocol/binary"
	"github.com/mnemo-cache/mnemo/server"
)

// countingConn counts the server's reads and writes on a connection; the
// counts are updated before the bytes reach the client, so a client that
// has read a reply sees them.
type countingConn struct {
	net.Conn
	reads, writes *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.reads.Add(1)
	}
	return n, err
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

type countingListener struct {
	net.Listener
	reads, writes atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{Conn: c, reads: &l.reads, writes: &l.writes}, nil
}

// startServer runs the memcached application on the server framework
// directly, on a listener that counts the server's reads and writes.
func startServer(t *testing.T, cfg memcache.Config) (*countingListener, string) {
	t.Helper()
	eng, err := engine.Open("memory", engine.Env{Logger: slog.New(slog.DiscardHandler)}, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Cache = cache.New(eng, nil, cache.Options{})
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := memcache.NewHandler(cfg)
	srv := server.New(h, server.Config{MaxRequestSize: h.MaxRequestSize()})
	nl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &countingListener{Listener: nl}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
		eng.Close()
	})
	return l, l.Addr().String()
}

// TestPipelinedGetKQOneWrite sends 100 GETKQ (half of them hits) and a NOOP
// in one write and checks that the server answers with one write holding
// exactly the hits and the NOOP, in order.
func TestPipelinedGetKQOneWrite(t *testing.T) {
	counts, addr := startServer(t, memcache.Config{})
	c := dial(t, addr)
	for i := 0; i < 100; i += 2 {
		c.send(store(bin.OpSetQ, 0, 0, fmt.Sprintf("key:%03d", i), fmt.Sprintf("value %d", i), uint32(i), 0))
	}
	if f := c.roundTrip(simple(bin.OpNoop, 1)); f.Opcode != bin.OpNoop || f.status() != bin.StatusOK {
		t.Fatalf("NOOP after sets: %v", f)
	}
	var batch []byte
	for i := range 100 {
		batch = append(batch, get(bin.OpGetKQ, uint32(i), fmt.Sprintf("key:%03d", i))...)
	}
	batch = append(batch, simple(bin.OpNoop, 1000)...)

	// The batch is one write; the server can still receive it in two
	// reads, and then rightly answers in two writes. Retry until the
	// batch arrived in one read.
	for attempt := 0; ; attempt++ {
		reads0, writes0 := counts.reads.Load(), counts.writes.Load()
		c.send(batch)
		for i := 0; i < 100; i += 2 {
			f := c.read()
			want := fmt.Sprintf("key:%03d", i)
			if f.Opcode != bin.OpGetKQ || f.Opaque != uint32(i) || string(f.key()) != want || string(f.value()) != fmt.Sprintf("value %d", i) {
				t.Fatalf("reply %d: %v", i, f)
			}
		}
		if f := c.read(); f.Opcode != bin.OpNoop || f.Opaque != 1000 {
			t.Fatalf("want the NOOP reply, got %v", f)
		}
		reads, writes := counts.reads.Load()-reads0, counts.writes.Load()-writes0
		if reads == 1 {
			if writes != 1 {
				t.Fatalf("one batch read answered with %d writes", writes)
			}
			return
		}
		if attempt == 20 {
			t.Fatalf("the batch never arrived in one read (%d reads)", reads)
		}
	}
}

// TestQuietSemantics checks what quiet commands leave out: GETQ and GETKQ
// misses, and the successes of SETQ, DELETEQ, INCREMENTQ and FLUSHQ; their
// errors are still sent.
func TestQuietSemantics(t *testing.T) {
	addr, _ := startMnemo(t)
	c := dial(t, addr)
	c.send(cat(
		get(bin.OpGetQ, 1, "missing"),
		store(bin.OpSetQ, 2, 0, "k", "1", 0, 0),
		store(bin.OpAddQ, 3, 0, "k", "x", 0, 0), // fails: answered
		arith(bin.OpIncrementQ, 4, 0, "k", 1, 0, 0),
		get(bin.OpGetKQ, 5, "k"), // hit: answered
		get(bin.OpDeleteQ, 6, "k"),
		get(bin.OpDeleteQ, 7, "k"), // miss: answered
		simple(bin.OpFlushQ, 8),
		simple(bin.OpNoop, 9),
	))
	for _, want := range []struct {
		op     bin.Opcode
		opaque uint32
		status bin.Status
	}{
		{bin.OpAddQ, 3, bin.StatusKeyExists},
		{bin.OpGetKQ, 5, bin.StatusOK},
		{bin.OpDeleteQ, 7, bin.StatusKeyNotFound},
		{bin.OpNoop, 9, bin.StatusOK},
	} {
		f := c.read()
		if f.Opcode != want.op || f.Opaque != want.opaque || f.status() != want.status {
			t.Fatalf("got %v, want %s opaque %d status 0x%02x", f, want.op, want.opaque, want.status)
		}
		if want.op == bin.OpGetKQ && string(f.value()) != "2" {
			t.Fatalf("GETKQ after INCREMENTQ: %v", f)
		}
	}
}
