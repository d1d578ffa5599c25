package interop

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mnemo-cache/mnemo/config"
	"github.com/mnemo-cache/mnemo/internal/daemon"
)

// lockedBuffer is a bytes.Buffer safe for concurrent writers: the daemon's
// log goes there and is printed only when the test fails.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startMnemo starts mnemo in-process on a free loopback port with the given
// extra memcached flags and returns its address. The test stops it.
func startMnemo(t testing.TB, flags ...string) string {
	t.Helper()
	args := append([]string{"-U", "0", "-l", "127.0.0.1:0", "-m", "64"}, flags...)
	cfg, err := config.Parse(args, io.Discard)
	if err != nil {
		t.Fatalf("mnemo flags %q: %v", args, err)
	}
	logs := &lockedBuffer{}
	d, err := daemon.Start(cfg, logs)
	if err != nil {
		t.Fatalf("mnemo start %q: %v", args, err)
	}
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Errorf("mnemo stop: %v", err)
		}
		if t.Failed() {
			t.Logf("mnemo log:\n%s", logs.String())
		}
	})
	return d.Addrs()[0].String()
}

// lookPath finds a tool or fails the test, naming the Debian package that
// provides it.
func lookPath(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: install Debian package %s (or run scripts/test.sh)", name, pkg)
	}
	return p
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startMemcached starts Debian's memcached on a free loopback port with the
// given extra flags and returns its address. The test kills it.
func startMemcached(t testing.TB, flags ...string) string {
	t.Helper()
	bin := lookPath(t, "memcached", "memcached")
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port := freePort(t)
		args := []string{"-U", "0", "-l", "127.0.0.1", "-p", strconv.Itoa(port), "-m", "64"}
		if os.Geteuid() == 0 {
			args = append(args, "-u", "root")
		}
		args = append(args, flags...)
		cmd := exec.Command(bin, args...)
		var stderr lockedBuffer
		cmd.Stdout = &stderr
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("memcached %q: %v", args, err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err := waitListening(addr, exited); err != nil {
			cmd.Process.Kill()
			lastErr = fmt.Errorf("memcached %q: %v; output: %s", args, err, stderr.String())
			continue
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-exited
		})
		return addr
	}
	t.Fatalf("could not start memcached: %v", lastErr)
	return ""
}

// waitListening waits until addr accepts connections, the process exits,
// or five seconds pass.
func waitListening(addr string, exited <-chan error) error {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("exited early: %v", err)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("not listening on %s after 5s", addr)
}

// client is a plain text-protocol connection for tests.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &client{t: t, conn: c, r: bufio.NewReader(c)}
}

// send writes s.
func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// line reads one reply line without its "\r\n".
func (c *client) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// stats sends "stats [group]" and returns the names and values in order.
func (c *client) stats(group string) (names []string, values map[string]string) {
	c.t.Helper()
	cmd := "stats"
	if group != "" {
		cmd += " " + group
	}
	c.send(cmd + "\r\n")
	values = map[string]string{}
	for {
		l := c.line()
		if l == "END" {
			return names, values
		}
		f := strings.SplitN(l, " ", 3)
		if len(f) != 3 || f[0] != "STAT" {
			c.t.Fatalf("%s: unexpected line %q", cmd, l)
		}
		names = append(names, f[1])
		values[f[1]] = f[2]
	}
}
