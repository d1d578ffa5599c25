package testserver

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A Process is a server binary (a built mnemo) running as a child process
// on a loopback port of its own, for the tests that kill, signal and
// restart it.
type Process struct {
	T    testing.TB
	Cmd  *exec.Cmd
	Addr string
	Out  *LockedBuffer // its standard output and error, printed when the test fails

	exited chan error // Cmd.Wait's result, put back by whoever takes it
}

// StartProcess runs bin with "-U 0 -l 127.0.0.1 -p PORT" on a free port
// (and "-u root" when running as root) followed by args, and waits until
// it listens. A port another process took meanwhile is retried with
// another. The test kills the process.
func StartProcess(t testing.TB, bin string, args ...string) *Process {
	t.Helper()
	var lastErr error
	for range 5 {
		port := FreePort(t)
		all := append([]string{"-U", "0", "-l", "127.0.0.1", "-p", strconv.Itoa(port)}, AsRoot()...)
		all = append(all, args...)
		p := &Process{T: t, Cmd: exec.Command(bin, all...), exited: make(chan error, 1), Out: &LockedBuffer{}}
		p.Cmd.Stdout, p.Cmd.Stderr = p.Out, p.Out
		if err := p.Cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.exited <- p.Cmd.Wait() }()
		p.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err := WaitListening(p.Addr, p.exited); err != nil {
			p.Cmd.Process.Kill()
			lastErr = fmt.Errorf("%v; output: %s", err, p.Out.String())
			if strings.Contains(p.Out.String(), "address already in use") {
				continue
			}
			break
		}
		t.Cleanup(func() {
			p.Cmd.Process.Kill()
			p.exited <- <-p.exited
			if t.Failed() {
				t.Logf("%s output:\n%s", bin, p.Out.String())
			}
		})
		return p
	}
	t.Fatalf("could not start %s: %v", bin, lastErr)
	return nil
}

// Kill stops the process with SIGKILL and waits for it to exit.
func (p *Process) Kill() {
	p.Cmd.Process.Signal(syscall.SIGKILL)
	p.exited <- <-p.exited
}

// Stop sends sig and waits, up to Patience, for a clean exit; anything
// else fails the test.
func (p *Process) Stop(sig syscall.Signal) {
	p.T.Helper()
	p.Cmd.Process.Signal(sig)
	select {
	case err := <-p.exited:
		p.exited <- err
		if err != nil {
			p.T.Fatalf("%s exited with %v after %v; output:\n%s", p.Cmd.Path, err, sig, p.Out.String())
		}
	case <-time.After(Patience):
		p.T.Fatalf("%s did not exit within %v of %v; output:\n%s", p.Cmd.Path, Patience, sig, p.Out.String())
	}
}
