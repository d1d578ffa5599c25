// Package testserver starts the servers that end-to-end tests talk to:
// mnemo in-process, and Debian's memcached as a child process, each on a
// loopback port of its own, stopped when the test ends. Tools that are
// missing fail the test with the Debian package to install; they never skip
// it.
package testserver

import (
	"errors"
	"fmt"
	"github.com/mnemo-cache/mnemo/internal/syncbuf"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mnemo-cache/mnemo/config"
	"github.com/mnemo-cache/mnemo/internal/daemon"
)

// LockedBuffer is a bytes.Buffer safe for concurrent writers: a server's
// log goes there and is printed only when the test fails.
type LockedBuffer = syncbuf.Buffer

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
	addrs, logs := MnemoAddrs(t, flags...)
	return addrs[0], logs
}

// MnemoAddrs is Mnemo, returning the address of every listener in the
// order of the -l flags (the first is Mnemo's "-l 127.0.0.1:0").
func MnemoAddrs(t testing.TB, flags ...string) ([]string, *LockedBuffer) {
	t.Helper()
	args := []string{"-U", "0", "-l", "127.0.0.1:0", "-m", "64"}
	switch e := os.Getenv(EngineEnv); e {
	case "", "memory":
	case "persistent":
		// Not t.TempDir(): its name holds the test's, and a subtest's
		// name may hold a comma, which ends "path=" in --engine-config.
		dir, err := os.MkdirTemp("", "mnemo-persistent-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		args = append(args, "--engine", "persistent", "--engine-config", "path="+dir)
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
	var addrs []string
	for _, a := range d.Addrs() {
		addrs = append(addrs, a.String())
	}
	return addrs, logs
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

// AsRoot returns the flags a mnemo or memcached binary needs to run as
// the test's user: "-u root" when that is root (both refuse root without
// -u), nothing otherwise.
func AsRoot() []string {
	if os.Geteuid() == 0 {
		return []string{"-u", "root"}
	}
	return nil
}

// Memcached starts Debian's memcached on a loopback port of its own with
// the given environment additions and flags (after "-U 0 -l 127.0.0.1:0
// -m 64", and "-u root" when running as root), and returns its address.
// The kernel picks the port, and the test reads it from /proc once
// memcached listens: no port is guessed (another test may take a guessed
// one meanwhile), and no probe connection shows up in its stats. The test
// kills it.
func Memcached(t testing.TB, env []string, flags ...string) string {
	t.Helper()
	path := LookPath(t, "memcached", "memcached")
	args := append([]string{"-U", "0", "-l", "127.0.0.1:0", "-m", "64"}, AsRoot()...)
	args = append(args, flags...)
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	out := &LockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("memcached %q: %v", args, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	var port int
	err := Wait(exited, func() (bool, error) {
		var err error
		port, err = listeningPort(cmd.Process.Pid)
		return port != 0, err
	})
	if err != nil {
		t.Fatalf("memcached %q: %v; output: %s", args, err, out.String())
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// MemcachedDeterministic are memcached flags for tests that compare its
// replies byte for byte: they stop its background LRU threads (maintainer
// and crawler), which take references to items at moments of their own.
// memcached updates an item in place only when no one else holds it, so
// with them a decr answers "4  " (padded) or, about once in a hundred on
// a loaded machine, "4" (a new item). mnemo has no such threads.
var MemcachedDeterministic = []string{"-o", "no_lru_maintainer,no_lru_crawler"}

// listeningPort returns the port of a listening IPv4 TCP socket of the
// process pid (Linux /proc), or 0 while it has none.
func listeningPort(pid int) (int, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	sockets := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join(dir, fd.Name()))
		if inode, ok := strings.CutPrefix(l, "socket:["); err == nil && ok {
			sockets[strings.TrimSuffix(inode, "]")] = true
		}
	}
	// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
	tcp, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(tcp), "\n")[1:] {
		f := strings.Fields(line)
		const listen = "0A"
		if len(f) < 10 || f[3] != listen || !sockets[f[9]] {
			continue
		}
		if p := hexPort(f[1]); p != 0 {
			return p, nil
		}
		return 0, fmt.Errorf("/proc/%d/net/tcp: bad local address %q", pid, f[1])
	}
	return 0, nil
}

// Patience bounds every wait of the end-to-end tests that ends early unless
// something hangs: a server starting or stopping, a reply, a client run, a
// condition polled for. It is never what a test measures or passes on, so
// it is long enough for a loaded 2-core machine running the race detector
// (waits that took 2 s idle have taken more than 15 s there), and short
// enough to fail, with a message, well before "go test -timeout".
const Patience = 2 * time.Minute

// pollEvery is how often Wait looks at its condition.
const pollEvery = 10 * time.Millisecond

// ErrImpatient is the error of a Wait that ran out of Patience.
var ErrImpatient = errors.New("still not so after " + Patience.String())

// Wait polls cond until it reports true or an error, the process whose
// exit exited reports ends (exited may be nil), or Patience runs out.
func Wait(exited <-chan error, cond func() (bool, error)) error {
	deadline := time.Now().Add(Patience)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("exited early: %v", err)
		default:
		}
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return ErrImpatient
		}
		time.Sleep(pollEvery)
	}
}

// Eventually polls cond until it is true, and fails the test, saying what
// was awaited, when Patience runs out first.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if err := Wait(nil, func() (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// WaitListening waits until addr accepts connections, the process whose
// exit exited reports ends, or Patience runs out.
func WaitListening(addr string, exited <-chan error) error {
	err := Wait(exited, func() (bool, error) {
		c, err := net.DialTimeout("tcp", addr, Patience)
		if err != nil {
			return false, nil
		}
		c.Close()
		return true, nil
	})
	if errors.Is(err, ErrImpatient) {
		return fmt.Errorf("not listening on %s: %w", addr, err)
	}
	return err
}

// Dial connects to addr and returns a connection on which every Read and
// Write waits at most Patience: a deadline that turns a hang into an error
// and otherwise never fires, however long the whole conversation takes.
// The test closes it.
func Dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, Patience)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return Patient(c)
}

// Patient wraps c so that every Read and Write waits at most Patience.
func Patient(c net.Conn) net.Conn { return patientConn{c} }

type patientConn struct{ net.Conn }

func (c patientConn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(Patience))
	return c.Conn.Read(p)
}

func (c patientConn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(Patience))
	return c.Conn.Write(p)
}

// CloseWrite shuts down the writing side when the wrapped connection can.
func (c patientConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// MemccapableArgs returns memccapable's arguments for the server at addr:
// flags, then -t with Patience in seconds (memccapable waits 2 s by
// default for each read and write, which a loaded machine exceeds; no
// memccapable test expects the wait to end), then -h and -p.
func MemccapableArgs(addr string, flags ...string) []string {
	host, port, _ := net.SplitHostPort(addr)
	return append(append([]string{}, flags...),
		"-t", strconv.Itoa(int(Patience/time.Second)), "-h", host, "-p", port)
}

// WaitConsumed waits until the peer of the loopback TCP connection c has
// read every byte written to c so far: c's send queue is acknowledged and
// the peer's receive queue is empty (/proc/net/tcp), or the connection is
// gone. A test that must make a server see two writes in two reads waits
// for this between them: a pause does not keep a busy server from reading
// both at once.
func WaitConsumed(c net.Conn) error {
	local, ok1 := c.LocalAddr().(*net.TCPAddr)
	remote, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return fmt.Errorf("WaitConsumed: %v is not a TCP connection", c.LocalAddr())
	}
	return Wait(nil, func() (bool, error) {
		tcp, err := os.ReadFile("/proc/net/tcp")
		if err != nil {
			return false, err
		}
		for _, line := range strings.Split(string(tcp), "\n")[1:] {
			// sl local_address rem_address st tx_queue:rx_queue ...
			f := strings.Fields(line)
			if len(f) < 5 {
				continue
			}
			lport, rport := hexPort(f[1]), hexPort(f[2])
			tx, rx, _ := strings.Cut(f[4], ":")
			switch {
			case lport == local.Port && rport == remote.Port && strings.Trim(tx, "0") != "":
				return false, nil // not yet acknowledged by the peer
			case lport == remote.Port && rport == local.Port && strings.Trim(rx, "0") != "":
				return false, nil // received, not yet read
			}
		}
		return true, nil
	})
}

// hexPort returns the port of a /proc/net/tcp address ("0100007F:2CCB").
func hexPort(addr string) int {
	_, h, _ := strings.Cut(addr, ":")
	p, _ := strconv.ParseUint(h, 16, 16)
	return int(p)
}
