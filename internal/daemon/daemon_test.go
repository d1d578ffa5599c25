package daemon

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mnemo-cache/mnemo/config"
)

// syncBuffer is a log sink safe for the daemon's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestVerbosityCommandChangesLogLevel checks that the verbosity command
// reaches the logger: info records appear only after "verbosity 1".
func TestVerbosityCommandChangesLogLevel(t *testing.T) {
	cfg, err := config.Parse([]string{"-l", "127.0.0.1:0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	d, err := Start(cfg, &logs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop() })
	if strings.Contains(logs.String(), "mnemo started") {
		t.Fatalf("info record logged at the default level: %s", logs.String())
	}
	ctx := context.Background()
	if d.log.Enabled(ctx, slog.LevelInfo) {
		t.Fatal("info enabled at the default level")
	}
	c, err := net.Dial("tcp", d.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	for _, tc := range []struct {
		cmd         string
		info, debug bool
	}{
		{"verbosity 1\r\n", true, false},
		{"verbosity 2\r\n", true, true},
		{"verbosity 0\r\n", false, false},
	} {
		if _, err := c.Write([]byte(tc.cmd)); err != nil {
			t.Fatal(err)
		}
		if line, err := r.ReadString('\n'); err != nil || line != "OK\r\n" {
			t.Fatalf("%q: reply %q, %v", tc.cmd, line, err)
		}
		if got := d.log.Enabled(ctx, slog.LevelInfo); got != tc.info {
			t.Errorf("after %q info enabled = %v", tc.cmd, got)
		}
		if got := d.log.Enabled(ctx, slog.LevelDebug); got != tc.debug {
			t.Errorf("after %q debug enabled = %v", tc.cmd, got)
		}
	}
}

// TestListenerProtocols checks -l proto[...]: each listener keeps its
// connections to its own protocol.
func TestListenerProtocols(t *testing.T) {
	cfg, err := config.Parse([]string{"-l", "proto[ascii]:127.0.0.1:0", "-l", "proto[binary]:127.0.0.1:0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Start(cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop() })
	addrs := d.Addrs()
	if len(addrs) != 2 {
		t.Fatalf("listening on %v, want two addresses", addrs)
	}
	ask := func(addr, req string) string {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Refused input gets no reply: wait a little, not long.
		c.SetDeadline(time.Now().Add(500 * time.Millisecond))
		c.Write([]byte(req))
		b, _ := io.ReadAll(io.LimitReader(c, 64))
		return string(b)
	}
	// A binary NOOP: magic, opcode 0x0a, no key, extras or body.
	noop := "\x80\x0a" + strings.Repeat("\x00", 22)
	if got := ask(addrs[0].String(), "version\r\nquit\r\n"); !strings.HasPrefix(got, "VERSION ") {
		t.Errorf("ascii listener answered text with %q", got)
	}
	if got := ask(addrs[0].String(), noop); strings.HasPrefix(got, "\x81") {
		t.Errorf("ascii listener spoke binary: %q", got)
	}
	if got := ask(addrs[1].String(), noop+"\x80\x07"+strings.Repeat("\x00", 22)); !strings.HasPrefix(got, "\x81\x0a") {
		t.Errorf("binary listener answered NOOP with %q", got)
	}
	if got := ask(addrs[1].String(), "version\r\n"); strings.Contains(got, "VERSION") {
		t.Errorf("binary listener spoke text: %q", got)
	}
}
