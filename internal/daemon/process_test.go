package daemon

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mnemo-cache/mnemo/config"
	"github.com/mnemo-cache/mnemo/internal/testbin"
	"github.com/mnemo-cache/mnemo/memcache"
)

// These tests run the mnemo binary: privileges, signals, -d and the files
// it writes belong to the process, not to an in-process Start.

// mnemoBin is cmd/mnemo, built once for these tests.
var mnemoBin = testbin.Build{Pkg: "github.com/mnemo-cache/mnemo/cmd/mnemo", Name: "mnemo"}

func TestMain(m *testing.M) {
	code := m.Run()
	mnemoBin.Remove()
	os.Exit(code)
}

// mnemoBinary returns the path of cmd/mnemo, built once; every user may
// run it, so that a test may run it as nobody.
func mnemoBinary(t *testing.T) string {
	t.Helper()
	return mnemoBin.Path(t)
}

// asUser returns the -u flag a test needs to run the binary: root must
// name a user, as with memcached.
func asUser() []string {
	if os.Geteuid() == 0 {
		return []string{"-u", "root"}
	}
	return nil
}

// proc is a mnemo process started by a test, killed when the test ends.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
}

// runMnemo starts the binary with args and the environment additions.
func runMnemo(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, cmd: exec.Command(mnemoBinary(t), args...), out: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// wait waits for the process to exit and returns its status (-1 when a
// signal killed it).
func (p *proc) wait() int {
	p.t.Helper()
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(hangBound):
		p.t.Fatalf("mnemo %q did not exit; output:\n%s", p.cmd.Args, p.out.String())
		return 0
	}
}

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// waitFile waits until path exists and returns its contents; the process
// exiting first fails the test.
func (p *proc) waitFile(path string) []byte {
	p.t.Helper()
	var b []byte
	waitFor(p.t, path+" written", func() bool {
		if !p.running() {
			p.t.Fatalf("mnemo %q exited (%v) before writing %s; output:\n%s", p.cmd.Args, p.cmd.ProcessState, path, p.out.String())
		}
		var err error
		b, err = os.ReadFile(path)
		return err == nil
	})
	return b
}

// waitLog waits until the output holds s.
func (p *proc) waitLog(s string) {
	p.t.Helper()
	waitFor(p.t, "log "+strconv.Quote(s), func() bool {
		if !p.running() && !strings.Contains(p.out.String(), s) {
			p.t.Fatalf("mnemo exited without logging %q; output:\n%s", s, p.out.String())
		}
		return strings.Contains(p.out.String(), s)
	})
}

var portFileLine = regexp.MustCompile(`^TCP INET: ([1-9][0-9]*)\n$`)

// portFromFile reads the address of the one IPv4 listener from a
// MEMCACHED_PORT_FILENAME file.
func portFromFile(t *testing.T, b []byte) string {
	t.Helper()
	m := portFileLine.FindSubmatch(b)
	if m == nil {
		t.Fatalf("port file %q is not one \"TCP INET: <port>\" line", b)
	}
	return net.JoinHostPort("127.0.0.1", string(m[1]))
}

// serving starts the binary on a kernel-chosen loopback port and returns
// it with its address, read from the port file it writes.
func serving(t *testing.T, args ...string) (*proc, string) {
	t.Helper()
	ports := filepath.Join(t.TempDir(), "ports")
	p := runMnemo(t, []string{"MEMCACHED_PORT_FILENAME=" + ports}, append([]string{"-l", "127.0.0.1:0"}, args...)...)
	return p, portFromFile(t, p.waitFile(ports))
}

func dialAddr(t *testing.T, addr string) *conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(hangBound))
	return &conn{t: t, c: c, r: bufio.NewReader(c)}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// TestRootNeedsUser: as root, mnemo refuses to start without -u with
// memcached's message and status (EX_USAGE), and names an unknown user as
// memcached does (EX_NOUSER). Debian's memcached, when installed, is
// checked to say the same.
func TestRootNeedsUser(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		args []string
		msg  string
		code int
	}{
		{nil, "can't run as root without the -u switch\n", 64},
		{[]string{"-u", "no-such-user-mnemo"}, "can't find the user no-such-user-mnemo to switch to\n", 67},
	} {
		p := runMnemo(t, nil, append([]string{"-l", "127.0.0.1:0"}, tc.args...)...)
		if code := p.wait(); code != tc.code || p.out.String() != tc.msg {
			t.Errorf("mnemo %q: status %d, output %q; want %d, %q", tc.args, code, p.out.String(), tc.code, tc.msg)
		}
		if mc, err := exec.LookPath("memcached"); err == nil {
			cmd := exec.Command(mc, append([]string{"-U", "0", "-p", "0"}, tc.args...)...)
			out, _ := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != tc.code || string(out) != tc.msg {
				t.Errorf("memcached %q: status %d, output %q; the test expects %d, %q", tc.args, code, out, tc.code, tc.msg)
			}
		}
	}
}

// TestDropPrivileges: run as root with -u nobody, mnemo takes nobody's
// uid and gid (real, effective, saved, fs) with no supplementary groups
// once it serves; the persistent engine's data directory, which did not
// exist, is created for nobody and the engine writes to it as nobody.
func TestDropPrivileges(t *testing.T) {
	needRoot(t)
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	base := t.TempDir()
	// nobody must reach the directories under the test's temporary one.
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	run := filepath.Join(base, "run") // pid and port files, written as nobody
	if err := os.Mkdir(run, 0o755); err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	if err := os.Chown(run, uid, gid); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(base, "data", "mnemo")
	ports, pid := filepath.Join(run, "ports"), filepath.Join(run, "pid")
	p := runMnemo(t, []string{"MEMCACHED_PORT_FILENAME=" + ports},
		"-u", "nobody", "-l", "127.0.0.1:0", "-P", pid,
		"--engine", "persistent", "--engine-config", "path="+data+",durability=sync")
	addr := portFromFile(t, p.waitFile(ports))

	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Uid":    strings.Repeat(nobody.Uid+"\t", 3) + nobody.Uid,
		"Gid":    strings.Repeat(nobody.Gid+"\t", 3) + nobody.Gid,
		"Groups": "",
	}
	for line := range strings.Lines(string(status)) {
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), ":")
		if w, ok := want[k]; ok {
			if got := strings.TrimSpace(v); got != w {
				t.Errorf("/proc status %s: %q, want %q", k, got, w)
			}
			delete(want, k)
		}
	}
	if len(want) > 0 {
		t.Errorf("/proc status lacks %v", want)
	}

	c := dialAddr(t, addr)
	if got := c.do("set k 0 0 5\r\nhello\r\n", anyLine); got[0] != "STORED\r\n" {
		t.Fatalf("set as nobody on the persistent engine: %q; output:\n%s", got, p.out.String())
	}
	if got := c.do("get k\r\n", isEnd); strings.Join(got, "") != "VALUE k 0 5\r\nhello\r\nEND\r\n" {
		t.Fatalf("get: %q", got)
	}
	// Everything under the data directory, which mnemo created, is
	// nobody's, as are the pid and port files.
	filepath.Walk(filepath.Join(base, "data"), func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid {
			t.Errorf("%s belongs to uid %d, want nobody (%d)", path, st.Uid, uid)
		}
		return nil
	})
	for _, f := range []string{pid, ports} {
		if fi, err := os.Stat(f); err != nil {
			t.Error(err)
		} else if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid {
			t.Errorf("%s belongs to uid %d, want nobody", f, st.Uid)
		}
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Errorf("exit status %d after SIGTERM; output:\n%s", code, p.out.String())
	}
	if _, err := os.Stat(pid); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file after the stop: %v, want it removed", err)
	}
}

// TestSignals: SIGHUP keeps the server serving; SIGUSR1 stops it
// gracefully (logging memcached's "Gracefully stopping"); SIGTERM and
// SIGINT stop it. Every stop exits 0.
func TestSignals(t *testing.T) {
	t.Run("SIGHUP", func(t *testing.T) {
		p, addr := serving(t, append(asUser(), "-v")...)
		c := dialAddr(t, addr)
		c.do("set k 0 0 1\r\nx\r\n", anyLine)
		for range 2 {
			p.cmd.Process.Signal(syscall.SIGHUP)
		}
		p.waitLog("SIGHUP received")
		if got := c.do("get k\r\n", isEnd); strings.Join(got, "") != "VALUE k 0 1\r\nx\r\nEND\r\n" {
			t.Fatalf("get after SIGHUP: %q", got)
		}
		if got := dialAddr(t, addr).do("version\r\n", anyLine); got[0] != "VERSION "+memcache.Version+"\r\n" {
			t.Fatalf("a new connection after SIGHUP: %q", got)
		}
		if !p.running() {
			t.Fatal("exited after SIGHUP")
		}
	})
	// SIGHUP re-reads the -Y file, as memcached does; a file that
	// cannot be parsed keeps the users in force.
	t.Run("SIGHUP reloads -Y", func(t *testing.T) {
		dir := t.TempDir()
		os.Chmod(dir, 0o755) // readable by -u nobody
		auth := filepath.Join(dir, "auth")
		write := func(s string) {
			if err := os.WriteFile(auth, []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		login := func(addr, user, pass string) string {
			data := user + " " + pass
			return dialAddr(t, addr).do(fmt.Sprintf("set a 0 0 %d\r\n%s\r\n", len(data), data), anyLine)[0]
		}
		const ok, refused = "STORED\r\n", "CLIENT_ERROR authentication failure\r\n"
		write("alice:one\n")
		p, addr := serving(t, append(asUser(), "-v", "-Y", auth)...)
		if a, b := login(addr, "alice", "one"), login(addr, "bob", "two"); a != ok || b != refused {
			t.Fatalf("before SIGHUP: alice %q, bob %q", a, b)
		}
		write("bob:two\n")
		p.cmd.Process.Signal(syscall.SIGHUP)
		p.waitLog("ascii authentication file reloaded")
		if a, b := login(addr, "alice", "one"), login(addr, "bob", "two"); a != refused || b != ok {
			t.Fatalf("after SIGHUP: alice %q, bob %q", a, b)
		}
		write("no colon here\n")
		p.cmd.Process.Signal(syscall.SIGHUP)
		p.waitLog("ascii authentication file not reloaded")
		if b := login(addr, "bob", "two"); b != ok {
			t.Fatalf("after a failed reload: bob %q", b)
		}
	})
	for _, sig := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			pid := filepath.Join(t.TempDir(), "pid")
			p, addr := serving(t, append(asUser(), "-P", pid)...)
			c := dialAddr(t, addr)
			if got := c.do("set k 0 0 1\r\nx\r\n", anyLine); got[0] != "STORED\r\n" {
				t.Fatal(got)
			}
			p.cmd.Process.Signal(sig)
			if code := p.wait(); code != 0 {
				t.Fatalf("exit status %d after %v; output:\n%s", code, sig, p.out.String())
			}
			if sig == syscall.SIGUSR1 && !strings.Contains(p.out.String(), "Gracefully stopping") {
				t.Errorf("SIGUSR1 did not log \"Gracefully stopping\":\n%s", p.out.String())
			}
			if _, err := os.Stat(pid); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("pid file after the stop: %v, want it removed", err)
			}
		})
	}
}

// TestDaemonize: "mnemo -d -P FILE" returns 0 once the detached server
// serves, with FILE naming it; the server runs in its own session, in
// "/", with stdio on /dev/null, answers, and removes FILE when stopped.
func TestDaemonize(t *testing.T) {
	dir := t.TempDir()
	pidFile, ports := filepath.Join(dir, "pid"), filepath.Join(dir, "ports")
	p := runMnemo(t, []string{"MEMCACHED_PORT_FILENAME=" + ports}, append(asUser(), "-d", "-P", pidFile, "-l", "127.0.0.1:0")...)
	if code := p.wait(); code != 0 {
		t.Fatalf("mnemo -d: status %d; output:\n%s", code, p.out.String())
	}
	// No waiting: both files exist when -d returns.
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("pid file when -d returned: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSuffix(string(b), "\n"))
	if err != nil || !strings.HasSuffix(string(b), "\n") {
		t.Fatalf("pid file holds %q, want a pid and a newline", b)
	}
	t.Cleanup(func() {
		if _, err := os.Stat(pidFile); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if pid == p.cmd.Process.Pid {
		t.Fatal("the pid file names the process that returned")
	}
	b, err = os.ReadFile(ports)
	if err != nil {
		t.Fatalf("port file when -d returned: %v", err)
	}
	addr := portFromFile(t, b)

	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) state ppid pgrp session ...
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if fields[3] != strconv.Itoa(pid) {
		t.Errorf("session %s, want its own (%d)", fields[3], pid)
	}
	for fd := range 3 {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd)); err != nil || l != os.DevNull {
			t.Errorf("fd %d: %q, %v; want /dev/null", fd, l, err)
		}
	}
	if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err != nil || cwd != "/" {
		t.Errorf("cwd %q, %v; want /", cwd, err)
	}
	if got := dialAddr(t, addr).do("version\r\n", anyLine); got[0] != "VERSION "+memcache.Version+"\r\n" {
		t.Fatalf("version: %q", got)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The daemon is not this test's child: its pid file going away says
	// that it stopped.
	waitFor(t, "pid file removed", func() bool {
		_, err := os.Stat(pidFile)
		return errors.Is(err, os.ErrNotExist)
	})
}

// TestDaemonizeFailure: when the detached server cannot start, -d prints
// why and returns its status (here EX_OSERR: the port is taken).
func TestDaemonizeFailure(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p := runMnemo(t, nil, append(asUser(), "-d", "-l", l.Addr().String())...)
	if code := p.wait(); code != 71 || !strings.Contains(p.out.String(), "failed to listen on TCP "+l.Addr().String()) {
		t.Errorf("mnemo -d on a taken port: status %d, output %q; want 71 and the reason", code, p.out.String())
	}
}

// TestPidFileBadPath: as memcached, a pid file that cannot be written is
// logged and the server goes on serving.
func TestPidFileBadPath(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "no-such-dir", "pid")
	p, addr := serving(t, append(asUser(), "-P", bad)...)
	if got := dialAddr(t, addr).do("version\r\n", anyLine); got[0] != "VERSION "+memcache.Version+"\r\n" {
		t.Fatalf("version: %q", got)
	}
	p.waitLog("Could not open the pid file " + bad + ".tmp for writing")
}

// TestPortFileFormat: MEMCACHED_PORT_FILENAME gets one "TCP INET: <port>"
// line per TCP listener, as Debian's memcached writes it (checked when
// installed); -s writes no port file, as in memcached.
func TestPortFileFormat(t *testing.T) {
	dir := t.TempDir()
	ports := filepath.Join(dir, "ports")
	p := runMnemo(t, []string{"MEMCACHED_PORT_FILENAME=" + ports}, append(asUser(), "-l", "127.0.0.1:0,127.0.0.2:0")...)
	got := string(p.waitFile(ports))
	if !regexp.MustCompile(`^TCP INET: [1-9][0-9]*\nTCP INET: [1-9][0-9]*\n$`).MatchString(got) {
		t.Errorf("port file %q, want two \"TCP INET: <port>\" lines", got)
	}
	if mc, err := exec.LookPath("memcached"); err == nil {
		mcPorts := filepath.Join(dir, "mc-ports")
		cmd := exec.Command(mc, append(asUser(), "-U", "0", "-l", "127.0.0.1:0")...)
		cmd.Env = append(os.Environ(), "MEMCACHED_PORT_FILENAME="+mcPorts)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		defer func() { cmd.Process.Kill(); <-exited }()
		var b []byte
		waitFor(t, "memcached's port file", func() bool {
			select {
			case <-exited:
				t.Fatal("memcached exited")
			default:
			}
			b, err = os.ReadFile(mcPorts)
			return err == nil
		})
		if !portFileLine.Match(b) {
			t.Errorf("memcached wrote %q; this test expects \"TCP INET: <port>\\n\"", b)
		}
	}

	sock := filepath.Join(dir, "sock")
	unixPorts := filepath.Join(dir, "unix-ports")
	p = runMnemo(t, []string{"MEMCACHED_PORT_FILENAME=" + unixPorts}, append(asUser(), "-s", sock, "-P", filepath.Join(dir, "unix-pid"))...)
	p.waitFile(filepath.Join(dir, "unix-pid"))
	if _, err := os.Stat(unixPorts); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("port file with -s: %v, want none", err)
	}
}

// TestVersion: clients see memcached's version, N.N.N exactly, in the
// text and binary version commands and in stats; -V prints mnemo's own.
func TestVersion(t *testing.T) {
	nnn := regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)
	if !nnn.MatchString(memcache.Version) || memcache.Version != config.MemcachedVersion {
		t.Fatalf("memcache.Version %q, want memcached's %q", memcache.Version, config.MemcachedVersion)
	}
	d := start(t)
	c := dial(t, d)
	if got := c.do("version\r\n", anyLine); got[0] != "VERSION "+config.MemcachedVersion+"\r\n" {
		t.Errorf("version: %q", got)
	}
	if got := strings.Join(c.do("stats\r\n", isEnd), ""); !strings.Contains(got, "\r\nSTAT version "+config.MemcachedVersion+"\r\n") {
		t.Errorf("stats lacks version %s:\n%s", config.MemcachedVersion, got)
	}
	// Binary VERSION: a 24-byte request header, opcode 0x0b.
	bc := dial(t, d)
	req := make([]byte, 24)
	req[0], req[1] = 0x80, 0x0b
	if _, err := bc.c.Write(req); err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, 24)
	if _, err := io.ReadFull(bc.r, hdr); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[8:12]))
	if _, err := io.ReadFull(bc.r, body); err != nil {
		t.Fatal(err)
	}
	if hdr[0] != 0x81 || string(body) != config.MemcachedVersion {
		t.Errorf("binary VERSION: header %x, body %q", hdr, body)
	}

	var out bytes.Buffer
	if code := Run([]string{"-V"}, &out, io.Discard); code != 0 || out.String() != "mnemo "+config.Version+"\n" {
		t.Errorf("-V: status %d, printed %q", code, out.String())
	}
}

// TestUDPPortAccepted: -U PORT starts the server (UDP is not served, and
// the log says so) and stats settings shows udpport, as memcached.
func TestUDPPortAccepted(t *testing.T) {
	cfg, err := config.Parse([]string{"-l", "127.0.0.1:0", "-U", "11999"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	d, err := Start(cfg, &logs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop() })
	if !strings.Contains(logs.String(), "UDP is not served") {
		t.Errorf("no warning that UDP is not served: %q", logs.String())
	}
	if got := strings.Join(dial(t, d).do("stats settings\r\n", isEnd), ""); !strings.Contains(got, "STAT udpport 11999\r\n") {
		t.Errorf("stats settings lacks udpport 11999:\n%s", got)
	}
}
