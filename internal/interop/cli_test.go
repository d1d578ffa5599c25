package interop

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mnemo-cache/mnemo/internal/testbin"
	"github.com/mnemo-cache/mnemo/internal/testserver"
)

// mnemoBin is cmd/mnemo, built once for the tests that run it.
var mnemoBin = testbin.Build{Pkg: "github.com/mnemo-cache/mnemo/cmd/mnemo", Name: "mnemo"}

func TestMain(m *testing.M) {
	code := m.Run()
	mnemoBin.Remove()
	if exporterDir != "" {
		os.RemoveAll(exporterDir) // exporter_test.go
	}
	os.Exit(code)
}

// mnemoBinary returns the path of cmd/mnemo, built once.
func mnemoBinary(t *testing.T) string {
	t.Helper()
	return mnemoBin.Path(t)
}

// runBinary runs the mnemo binary to completion and returns its stdout,
// stderr and exit status.
func runBinary(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(mnemoBinary(t), append(testserver.AsRoot(), args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(patience):
		cmd.Process.Kill()
		<-done
		t.Fatalf("mnemo %q did not exit within %v", args, patience)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

var (
	// shortFlag matches a short option at the start of a memcached -h line.
	shortFlag = regexp.MustCompile(`(?m)^(-[a-zA-Z]+)[, ]`)
	// longFlag matches a long option in a memcached -h line.
	longFlag = regexp.MustCompile(`(?m)^-[a-zA-Z],? +(--[a-z_-]+)`)
	// extOption matches an -o key in the memcached -h list.
	extOption = regexp.MustCompile(`(?m)^   - ([a-z_]+):`)
)

func TestHelpListsMemcachedFlags(t *testing.T) {
	mcBin := lookPath(t, "memcached", "memcached")
	// memcached -h exits 0 and writes to stdout.
	mcHelp, err := exec.Command(mcBin, "-h").Output()
	if err != nil {
		t.Fatalf("memcached -h: %v", err)
	}
	help, stderr, code := runBinary(t, "-h")
	if code != 0 {
		t.Fatalf("mnemo -h exited %d: %s", code, stderr)
	}
	shorts := shortFlag.FindAllStringSubmatch(string(mcHelp), -1)
	if len(shorts) < 35 {
		t.Fatalf("found only %d short flags in memcached -h; is it memcached 1.6?", len(shorts))
	}
	for _, m := range shorts {
		flag := m[1]
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(flag) + `[, ]`).MatchString(help) {
			t.Errorf("mnemo -h does not list %s", flag)
		}
	}
	for _, m := range longFlag.FindAllStringSubmatch(string(mcHelp), -1) {
		// mnemo spells --napi_ids as memcached's option table does,
		// --napi-ids, and parses both.
		if !strings.Contains(help, m[1]) && !strings.Contains(help, strings.ReplaceAll(m[1], "_", "-")) {
			t.Errorf("mnemo -h does not list %s", m[1])
		}
	}
	for _, m := range extOption.FindAllStringSubmatch(string(mcHelp), -1) {
		if !strings.Contains(help, "   - "+m[1]+":") {
			t.Errorf("mnemo -h does not list -o %s", m[1])
		}
	}
}

func TestVersionFlag(t *testing.T) {
	out, stderr, code := runBinary(t, "-V")
	if code != 0 {
		t.Fatalf("mnemo -V exited %d: %s", code, stderr)
	}
	if !regexp.MustCompile(`^mnemo [0-9]+\.[0-9]+\.[0-9]+\S*\n$`).MatchString(out) {
		t.Errorf("mnemo -V printed %q, want \"mnemo <version>\"", out)
	}
}

func TestUnsupportedFlags(t *testing.T) {
	tests := [][]string{
		{"-L"},
		{"-k"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			port := strconv.Itoa(freePort(t))
			_, stderr, code := runBinary(t, append([]string{"-l", "127.0.0.1", "-p", port}, args...)...)
			if code == 0 {
				t.Errorf("mnemo %q exited 0", args)
			}
			if !strings.Contains(stderr, "not supported") {
				t.Errorf("mnemo %q: stderr %q does not say \"not supported\"", args, stderr)
			}
		})
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--bogus"}, {"-m", "1g"}, {"-p", "x"}, {"stray"}} {
		_, stderr, code := runBinary(t, args...)
		if code == 0 || stderr == "" {
			t.Errorf("mnemo %q: exit %d, stderr %q; want a non-zero exit and a message", args, code, stderr)
		}
	}
}

// startBinary runs the mnemo binary on a free loopback port and returns
// the command, its address, and a channel that receives its exit.
func startBinary(t *testing.T, extra ...string) (*exec.Cmd, string, <-chan error, *lockedBuffer) {
	t.Helper()
	bin := mnemoBinary(t)
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port := strconv.Itoa(freePort(t))
		args := append([]string{"-l", "127.0.0.1", "-p", port, "-U", "0"}, testserver.AsRoot()...)
		cmd := exec.Command(bin, append(args, extra...)...)
		logs := &lockedBuffer{}
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		addr := net.JoinHostPort("127.0.0.1", port)
		if err := waitListening(addr, exited); err != nil {
			cmd.Process.Kill()
			lastErr = errors.New(err.Error() + ": " + logs.String())
			continue
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
		})
		return cmd, addr, exited, logs
	}
	t.Fatalf("could not start mnemo: %v", lastErr)
	return nil, "", nil, nil
}

// waitExit waits for the process to exit and returns its status.
func waitExit(t *testing.T, cmd *exec.Cmd, exited <-chan error, logs *lockedBuffer) int {
	t.Helper()
	select {
	case <-exited:
		return cmd.ProcessState.ExitCode()
	case <-time.After(patience):
		t.Fatalf("mnemo did not exit within %v; output: %s", patience, logs.String())
		return -1
	}
}

// checkPortFree fails unless addr can be listened on again.
func checkPortFree(t *testing.T, addr string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Errorf("port still busy after exit: %v", err)
		return
	}
	l.Close()
}

func TestSignalStopsGracefully(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd, addr, exited, logs := startBinary(t)
			c := dial(t, addr)
			c.send("set k 0 0 2\r\nhi\r\nget k\r\n")
			for _, want := range []string{"STORED", "VALUE k 0 2", "hi", "END"} {
				if got := c.line(); got != want {
					t.Fatalf("got %q, want %q", got, want)
				}
			}
			// The connection stays open (idle) while the server stops.
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if code := waitExit(t, cmd, exited, logs); code != 0 {
				t.Errorf("exit status %d after %v, want 0; output: %s", code, sig, logs.String())
			}
			checkPortFree(t, addr)
			// The idle connection was closed by the server: EOF (or a
			// reset), not a timeout.
			if b, err := c.r.ReadByte(); err == nil {
				t.Errorf("the idle connection is still open after the stop: read %q", b)
			} else if !errors.Is(err, io.EOF) && !isReset(err) {
				t.Errorf("reading the idle connection after the stop: %v, want EOF", err)
			}
		})
	}
}

func TestShutdownCommand(t *testing.T) {
	cmd, addr, exited, logs := startBinary(t, "-A")
	c := dial(t, addr)
	c.send("shutdown\r\n")
	if code := waitExit(t, cmd, exited, logs); code != 0 {
		t.Errorf("exit status %d after shutdown, want 0; output: %s", code, logs.String())
	}
	checkPortFree(t, addr)
}
