package server

import (
	"strings"
	"testing"
)

// TestReadBufMemLimit: buffers grown for unfinished requests share one
// budget; a connection that would pass it is answered by its Refuser and
// closed, the refusal is counted, connections that need no grown buffer
// are not affected, and the budget comes back when a request completes.
func TestReadBufMemLimit(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			ts := start(t, tr, Config{ReadBufferSize: 64, MaxRequestSize: 1 << 16, ReadBufMemLimit: 8192})
			data := strings.Repeat("d", 3000)
			// "big 3000\n" + 3000 bytes needs 3009 bytes: a 4096-byte buffer.
			a, b := ts.connect(), ts.connect()
			a.send("big 3000\n" + data[:100])
			b.send("big 3000\n" + data[:100])
			eventually(t, "two grown buffers", func() bool { return ts.s.Stats().ReadBufGrownBytes == 8192 })

			canary := ts.connect()
			canary.send("ok\n")
			canary.expect("OK\n")

			refused := ts.connect()
			refused.send("big 3000\n")
			refused.expect("REFUSED " + ErrReadBufLimit.Error() + "\n")
			refused.expectEOF()
			st := ts.s.Stats()
			if st.ReadBufOOM != 1 || st.ReadBufMemLimit != 8192 {
				t.Errorf("ReadBufOOM %d, ReadBufMemLimit %d; want 1, 8192", st.ReadBufOOM, st.ReadBufMemLimit)
			}
			if st.ReadBufGrownBytes > 8192 {
				t.Errorf("ReadBufGrownBytes %d past the limit", st.ReadBufGrownBytes)
			}

			a.send(data[100:])
			if got := a.line(); !strings.HasPrefix(got, "GOT 3000 ") {
				t.Fatalf("a: %q", got)
			}
			eventually(t, "a's buffer returned", func() bool { return ts.s.Stats().ReadBufGrownBytes == 4096 })
			c := ts.connect()
			c.send("big 3000\n" + data)
			if got := c.line(); !strings.HasPrefix(got, "GOT 3000 ") {
				t.Fatalf("after the budget came back: %q", got)
			}
			canary.send("still\n")
			canary.expect("STILL\n")
			b.send(data[100:])
			if got := b.line(); !strings.HasPrefix(got, "GOT 3000 ") {
				t.Fatalf("b: %q", got)
			}
			eventually(t, "budget back", func() bool { return ts.s.Stats().ReadBufGrownBytes == 0 })
		})
	}
}

// TestReadBufMemLimitLongLine: a line of unknown length grows its buffer
// by doubling, each step within the budget.
func TestReadBufMemLimitLongLine(t *testing.T) {
	ts := start(t, tcp, Config{ReadBufferSize: 64, MaxRequestSize: 1 << 16, ReadBufMemLimit: 4096})
	c := ts.connect()
	c.send(strings.Repeat("x", 3000) + "\n")
	c.expect(strings.Repeat("X", 3000) + "\n")
	c.send(strings.Repeat("y", 5000) + "\n")
	c.expect("REFUSED " + ErrReadBufLimit.Error() + "\n")
	c.expectEOF()
	if st := ts.s.Stats(); st.ReadBufOOM != 1 {
		t.Errorf("ReadBufOOM %d, want 1", st.ReadBufOOM)
	}
	eventually(t, "budget back", func() bool { return ts.s.Stats().ReadBufGrownBytes == 0 })
}
