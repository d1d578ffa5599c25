package binproto

import (
	"math/rand/v2"
	"strings"
	"testing"

	bin "github.com/mnemo-cache/mnemo/protocol/binary"
)

func TestBadInput(t *testing.T) {
	addr, logs := startMnemo(t, "-I", "1m")

	// A body of 2^32-1 bytes: E2BIG, then the connection closes (nothing
	// is buffered).
	c := dial(t, addr)
	c.send(raw(0x80, bin.OpSet, 3, 8, 1<<32-1, 9, "\x00\x00\x00\x00\x00\x00\x00\x00key"+strings.Repeat("v", 4096)))
	if f := c.read(); f.status() != bin.StatusTooLarge || f.Opaque != 9 {
		t.Fatalf("SET of 2^32-1: %v", f)
	}
	c.expectClosed()
	c = dial(t, addr)
	c.send(raw(0x80, 0xee, 0, 0, 1<<32-1, 9, "xyz"))
	if f := c.read(); f.status() != bin.StatusTooLarge {
		t.Fatalf("unknown opcode with 2^32-1: %v", f)
	}
	c.expectClosed()

	// A value over the item size limit is answered E2BIG and skipped as
	// it arrives, in many writes; the connection goes on.
	c = dial(t, addr)
	c.send(store(bin.OpSet, 1, 0, "big", "old", 0, 0))
	c.read()
	big := store(bin.OpSetQ, 2, 0, "big", strings.Repeat("x", 3<<20), 0, 0)
	for len(big) > 0 {
		n := min(len(big), 64<<10)
		c.send(big[:n])
		big = big[n:]
	}
	if f := c.read(); f.status() != bin.StatusTooLarge || f.Opaque != 2 {
		t.Fatalf("SETQ of 3 MiB: %v", f)
	}
	if f := c.roundTrip(get(bin.OpGet, 3, "big")); f.status() != bin.StatusKeyNotFound {
		t.Fatalf("GET after a too large SET: %v (the old value must be gone)", f)
	}

	// An unknown opcode's body is skipped, and the connection goes on.
	c.send(raw(0x80, 0x50, 3, 0, 100003, 4, "key"+strings.Repeat("b", 100000)))
	if f := c.read(); f.status() != bin.StatusUnknownCommand || f.Opaque != 4 || string(f.value()) != "Unknown command" {
		t.Fatalf("unknown opcode: %v", f)
	}
	if f := c.roundTrip(simple(bin.OpNoop, 5)); f.Opcode != bin.OpNoop || f.Opaque != 5 {
		t.Fatalf("NOOP after unknown opcode: %v", f)
	}

	// Garbage after a first binary byte never panics the server: each
	// connection is answered or closed, and the server keeps serving.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		c := dial(t, addr)
		junk := make([]byte, 24+rng.IntN(200))
		for j := range junk {
			junk[j] = byte(rng.UintN(256))
		}
		junk[0] = bin.MagicRequest
		if i%2 == 0 {
			junk[1] = byte(rng.UintN(0x25)) // a known opcode, mostly
		}
		c.send(junk)
		c.send(simple(bin.OpQuit, 0))
		for {
			if _, err := c.next(); err != nil {
				break
			}
		}
		c.conn.Close()
	}
	c = dial(t, addr)
	if f := c.roundTrip(simple(bin.OpVersion, 1)); f.status() != bin.StatusOK {
		t.Fatalf("VERSION after garbage: %v", f)
	}
	if strings.Contains(logs.String(), "panic") {
		t.Fatalf("the server panicked:\n%s", logs.String())
	}
}

// TestProtocolRestriction checks -B: binary only refuses text; ascii only
// reads a binary frame as text.
func TestProtocolRestriction(t *testing.T) {
	addr, _ := startMnemo(t, "-B", "binary")
	c := dial(t, addr)
	c.send([]byte("version\r\nversion\r\nversion\r\n"))
	c.expectClosed()

	addr, _ = startMnemo(t, "-B", "ascii")
	tc := dialText(t, addr)
	tc.send(string(simple(bin.OpVersion, 0)) + "\r\n")
	if got := tc.line(); got != "ERROR" {
		t.Fatalf("binary frame on -B ascii: %q", got)
	}

	// auto (the default) picks per connection.
	addr, _ = startMnemo(t)
	tc = dialText(t, addr)
	tc.send("version\r\n")
	if got := tc.line(); !strings.HasPrefix(got, "VERSION ") {
		t.Fatalf("text on auto: %q", got)
	}
	c = dial(t, addr)
	if f := c.roundTrip(simple(bin.OpVersion, 3)); f.status() != bin.StatusOK || f.Opaque != 3 {
		t.Fatalf("binary on auto: %v", f)
	}
}
