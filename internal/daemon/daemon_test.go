package daemon

import (
	"bufio"
	"context"
	"errors"
	"github.com/mnemo-cache/mnemo/internal/syncbuf"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mnemo-cache/mnemo/config"
)

// hangBound bounds how long a test waits for a reply that must come: it
// only turns a hang into a failure, so it is generous enough for a busy
// machine and never what a test measures.
const hangBound = time.Minute

// syncBuffer is a log sink safe for the daemon's goroutines.
type syncBuffer = syncbuf.Buffer

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
	c.SetDeadline(time.Now().Add(hangBound))
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
	// ask sends req, which ends the connection (a quit, or input the
	// listener's protocol refuses by closing), and returns every byte the
	// server sent until it closed.
	ask := func(addr, req string) string {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(hangBound))
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(c)
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("%q: %v after %q", req, err, b)
		}
		return string(b)
	}
	// A binary NOOP: magic, opcode 0x0a, no key, extras or body.
	noop := "\x80\x0a" + strings.Repeat("\x00", 22)
	if got := ask(addrs[0].String(), "version\r\nquit\r\n"); !strings.HasPrefix(got, "VERSION ") {
		t.Errorf("ascii listener answered text with %q", got)
	}
	// To the text protocol a NOOP is garbage lines (0x0a is a newline);
	// the quit that follows ends the connection.
	if got := ask(addrs[0].String(), noop+"\r\nquit\r\n"); got != "ERROR\r\nERROR\r\n" {
		t.Errorf("ascii listener answered a binary NOOP with %q", got)
	}
	if got := ask(addrs[1].String(), noop+"\x80\x07"+strings.Repeat("\x00", 22)); !strings.HasPrefix(got, "\x81\x0a") {
		t.Errorf("binary listener answered NOOP with %q", got)
	}
	if got := ask(addrs[1].String(), "version\r\n"); strings.Contains(got, "VERSION") {
		t.Errorf("binary listener spoke text: %q", got)
	}
}

// start runs a daemon with the given command line on loopback and stops
// it when the test ends.
func start(t *testing.T, args ...string) *Daemon {
	t.Helper()
	cfg, err := config.Parse(append([]string{"-l", "127.0.0.1:0"}, args...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Start(cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop() })
	return d
}

// conn is a test client of a daemon.
type conn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, d *Daemon) *conn {
	t.Helper()
	c, err := net.Dial("tcp", d.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(hangBound))
	return &conn{t: t, c: c, r: bufio.NewReader(c)}
}

// do sends req and returns the reply's lines, through the first one that
// last accepts.
func (c *conn) do(req string, last func(line string) bool) []string {
	c.t.Helper()
	if _, err := io.WriteString(c.c, req); err != nil {
		c.t.Fatal(err)
	}
	var lines []string
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("%q: %v after %q", req, err, lines)
		}
		lines = append(lines, line)
		if last(line) {
			return lines
		}
	}
}

func anyLine(string) bool { return true }

func isEnd(line string) bool { return line == "END\r\n" }

// TestRejectMessage: beyond -c connections, a new one is told so in
// memcached's words and closed.
func TestRejectMessage(t *testing.T) {
	d := start(t, "-c", "1")
	c1 := dial(t, d)
	if got := c1.do("version\r\n", anyLine); !strings.HasPrefix(got[0], "VERSION ") {
		t.Fatalf("version: %q", got)
	}
	c2 := dial(t, d) // c1 has been served: it holds the only slot
	b, err := io.ReadAll(c2.r)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("rejected connection: %v after %q", err, b)
	}
	if string(b) != "ERROR Too many open connections\r\n" {
		t.Errorf("rejected connection got %q", b)
	}
	if got := c1.do("version\r\n", anyLine); !strings.HasPrefix(got[0], "VERSION ") {
		t.Errorf("first connection after the reject: %q", got)
	}
}

// TestStatsConnsStates: "stats conns" names the server's connection states
// with memcached's words.
func TestStatsConnsStates(t *testing.T) {
	d := start(t)
	idle, asker := dial(t, d), dial(t, d)
	idle.do("version\r\n", anyLine)
	idleAddr := idle.c.LocalAddr().String()
	askerAddr := asker.c.LocalAddr().String()
	listenAddr := d.Addrs()[0].String()
	// The idle connection waits for its next request once it has written
	// its reply, an instant after its client has it: ask until it does.
	deadline := time.Now().Add(hangBound)
	for {
		states := map[string]string{} // addr -> state
		addrs := map[string]string{}  // id -> addr
		secs := map[string]string{}   // addr -> secs_since_last_cmd
		for _, line := range asker.do("stats conns\r\n", isEnd) {
			f := strings.Fields(line)
			if len(f) != 3 || f[0] != "STAT" {
				continue
			}
			id, name, _ := strings.Cut(f[1], ":")
			switch name {
			case "addr":
				addrs[id] = strings.TrimPrefix(f[2], "tcp:")
			case "state":
				states[addrs[id]] = f[2]
			case "secs_since_last_cmd":
				secs[addrs[id]] = f[2]
			}
		}
		if states[listenAddr] != "conn_listening" || states[askerAddr] != "conn_parse_cmd" {
			t.Fatalf("states %q; want the listener conn_listening, the asking connection conn_parse_cmd", states)
		}
		for _, a := range []string{listenAddr, idleAddr, askerAddr} {
			if _, err := strconv.ParseUint(secs[a], 10, 64); err != nil {
				t.Errorf("secs_since_last_cmd of %s: %q", a, secs[a])
			}
		}
		if states[idleAddr] == "conn_waiting" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("idle connection never conn_waiting: %q", states)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestListenIPv4Any: -l 0.0.0.0 listens on IPv4 only, as memcached does,
// and "stats conns" shows the listener as tcp:0.0.0.0:P (a dual-stack
// listener would show tcp:[::]:P).
func TestListenIPv4Any(t *testing.T) {
	d := start(t, "-l", "0.0.0.0:0")
	addrs := d.Addrs()
	if len(addrs) != 2 {
		t.Fatalf("Addrs() = %v, want two listeners", addrs)
	}
	wild := addrs[1].String()
	if !strings.HasPrefix(wild, "0.0.0.0:") {
		t.Fatalf("-l 0.0.0.0:0 listens on %s, want 0.0.0.0:P", wild)
	}
	var found bool
	for _, line := range dial(t, d).do("stats conns\r\n", isEnd) {
		if strings.HasSuffix(line, ":addr tcp:"+wild+"\r\n") {
			found = true
		}
	}
	if !found {
		t.Errorf("stats conns does not list tcp:%s", wild)
	}
}

// TestProcs: -t sets the Ps, capped at the usable cores; the persistent
// engine (also chosen by -o ext_path) gets backgroundProcs more for its
// background work.
func TestProcs(t *testing.T) {
	for _, c := range []struct {
		threads, usable int
		engine          string
		want            int
	}{
		{4, 16, "memory", 4},
		{4, 1, "memory", 1},
		{1, 16, "memory", 1},
		{4, 16, "persistent", 7},
		{4, 1, "persistent", 4},
		{1, 1, "persistent", 4},
		{1, 16, config.ExtPathEngine, 4},
	} {
		if got := procs(c.threads, c.usable, c.engine); got != c.want {
			t.Errorf("procs(%d, %d, %q) = %d, want %d", c.threads, c.usable, c.engine, got, c.want)
		}
	}
}
