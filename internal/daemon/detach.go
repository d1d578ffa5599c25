package daemon

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// detachEnv marks the detached copy that -d starts. Its value is the
// number of the descriptor on which the copy reports its start.
const detachEnv = "MNEMO_DETACHED_READY_FD"

// Messages on the start pipe, from the detached copy to the process that
// started it.
const (
	readyOK   = "ok\n"
	readyFail = "fail " // followed by the exit status, "\n", the message
)

// detach is -d. A Go program cannot fork, so where memcached calls
// daemon(3) mnemo starts a copy of itself with the same arguments: in a
// new session (setsid, no controlling terminal), in "/" unless -r (as
// daemon(3) with memcached's nochdir), with stdin, stdout and stderr on
// /dev/null (stderr stays open with -v, as memcached's noclose). The
// copy reports on a pipe once it serves (listeners bound, pid file
// written) or why it failed; detach then returns 0, or prints the
// failure and returns the copy's exit status, so that "mnemo -d -P FILE"
// returns only when the server answers and FILE names it.
func detach(args []string, verbose int, coredumps bool, stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "failed to daemon() in order to daemonize:", err)
		return 1
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintln(stderr, "failed to daemon() in order to daemonize:", err)
		return 1
	}
	defer devNull.Close()
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintln(stderr, "failed to daemon() in order to daemonize:", err)
		return 1
	}
	defer r.Close()
	cmd := exec.Command(exe, args...)
	// ExtraFiles[0] is descriptor 3 in the copy.
	cmd.Env = append(os.Environ(), detachEnv+"=3")
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devNull, devNull, devNull
	keptStderr := false
	if f, ok := stderr.(*os.File); ok && verbose > 0 {
		cmd.Stderr, keptStderr = f, true
	}
	if !coredumps {
		cmd.Dir = "/"
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		fmt.Fprintln(stderr, "failed to daemon() in order to daemonize:", err)
		return 1
	}
	w.Close()
	report, _ := io.ReadAll(r)
	msg := string(report)
	if msg == readyOK {
		cmd.Process.Release()
		return 0
	}
	// The copy failed: it exits with the status it reported.
	cmd.Wait()
	if rest, ok := strings.CutPrefix(msg, readyFail); ok {
		codeText, text, _ := strings.Cut(rest, "\n")
		if code, err := strconv.Atoi(codeText); err == nil {
			if !keptStderr {
				fmt.Fprint(stderr, text)
			}
			return code
		}
	}
	if code := cmd.ProcessState.ExitCode(); code > 0 {
		return code
	}
	fmt.Fprintln(stderr, "mnemo: the daemon exited before serving:", cmd.ProcessState)
	return exOSErr
}

// startPipe is the detached copy's side of the start pipe; nil when the
// process was not started by detach.
type startPipe struct{ f *os.File }

// detachedPipe returns the start pipe if this process is detach's copy
// (and forgets the mark, so that nothing it starts inherits it).
func detachedPipe() *startPipe {
	v := os.Getenv(detachEnv)
	if v == "" {
		return nil
	}
	os.Unsetenv(detachEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil
	}
	f := os.NewFile(uintptr(fd), "start-pipe")
	if f == nil {
		return nil
	}
	syscall.CloseOnExec(fd)
	return &startPipe{f}
}

// ready tells detach that the server serves.
func (p *startPipe) ready() {
	if p == nil {
		return
	}
	io.WriteString(p.f, readyOK)
	p.f.Close()
}

// fail tells detach that the start failed, with the exit status and the
// message (a line or more) to print.
func (p *startPipe) fail(code int, msg string) {
	if p == nil {
		return
	}
	io.WriteString(p.f, readyFail+strconv.Itoa(code)+"\n"+msg)
	p.f.Close()
}
