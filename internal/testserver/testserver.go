// Package testserver starts the servers that end-to-end tests talk to:
// mnemo in-process, and Debian's memcached as a child process, each on a
// loopback port of its own, stopped when the test ends. Tools that are
// missing fail the test with the Debian package to install; they never skip
// it.
package testserver

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mnemo-cache/mnemo/config"
	"github.com/mnemo-cache/mnemo/internal/daemon"
)

// LockedBuffer is a bytes.Buffer safe for concurrent writers: a server's
// log goes there and is printed only when the test fails.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// EngineEnv names the environment variable that chooses the engine Mnemo
// starts: "memory" (the default) or "persistent" (on a fresh directory of
// the test's), so that the protocol suites run against every engine.
const EngineEnv = "MNEMO_TEST_ENGINE"

// Mnemo starts mnemo in-process on a free loopback port with the given
// memcached flags (after "-U 0 -l 127.0.0.1:0 -m 64" and the engine that
// $MNEMO_TEST_ENGINE names) and returns its address and its log. The test
// stops it, and prints the log if it failed.
func Mnemo(t testing.TB, flags ...string) (string, *LockedBuffer) {
	t.Helper()
	args := []string{"-U", "0", "-l", "127.0.0.1:0", "-m", "64"}
	switch e := os.Getenv(EngineEnv); e {
	case "", "memory":
	case "persistent":
		args = append(args, "--engine", "persistent", "--engine-config", "path="+t.TempDir())
	default:
		t.Fatalf("%s=%q: want memory or persistent", EngineEnv, e)
	}
	args = append(args, flags...)
	cfg, err := config.Parse(args, io.Discard)
	if err != nil {
		t.Fatalf("mnemo flags %q: %v", args, err)
	}
	logs := &LockedBuffer{}
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
	return d.Addrs()[0].String(), logs
}

// LookPath finds a tool or fails the test, naming the Debian package that
// provides it.
func LookPath(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: install Debian package %s (or run scripts/test.sh)", name, pkg)
	}
	return p
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Memcached starts Debian's memcached on a free loopback port with the
// given environment additions and flags (after "-U 0 -l 127.0.0.1 -p PORT
// -m 64", and "-u root" when running as root), and returns its address.
// The test kills it.
func Memcached(t testing.TB, env []string, flags ...string) string {
	t.Helper()
	path := LookPath(t, "memcached", "memcached")
	var lastErr error
	for range 5 {
		port := FreePort(t)
		args := []string{"-U", "0", "-l", "127.0.0.1", "-p", strconv.Itoa(port), "-m", "64"}
		if os.Geteuid() == 0 {
			args = append(args, "-u", "root")
		}
		args = append(args, flags...)
		cmd := exec.Command(path, args...)
		cmd.Env = append(os.Environ(), env...)
		var out LockedBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("memcached %q: %v", args, err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err := WaitListening(addr, exited); err != nil {
			cmd.Process.Kill()
			lastErr = fmt.Errorf("memcached %q: %v; output: %s", args, err, out.String())
			continue // the port was taken meanwhile: try another
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

// WaitListening waits until addr accepts connections, the process whose
// exit exited reports ends, or five seconds pass.
func WaitListening(addr string, exited <-chan error) error {
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
