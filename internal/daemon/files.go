package daemon

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// writePidFile writes the process id to path as memcached's save_pid
// does: a warning when the file names a running process, then the id
// written to path+".tmp" and renamed over path, so that a reader never
// sees an empty file. A failure is logged and the server goes on, as in
// memcached. It reports whether path now holds the pid.
func (d *Daemon) writePidFile(path string) bool {
	if f, err := os.Open(path); err == nil {
		line, _ := bufio.NewReader(f).ReadString('\n')
		f.Close()
		if pid, err := strconv.Atoi(strings.TrimSpace(line)); err == nil && pid > 0 && pid != os.Getpid() && syscall.Kill(pid, 0) == nil {
			d.log.Warn(fmt.Sprintf("WARNING: The pid file contained the following (running) pid: %d", pid))
		}
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		d.log.Error(fmt.Sprintf("Could not open the pid file %s for writing: %v", tmp, unwrapPath(err)))
		return false
	}
	if err := os.Rename(tmp, path); err != nil {
		d.log.Error(fmt.Sprintf("Could not rename the pid file from %s to %s: %v", tmp, path, unwrapPath(err)))
		os.Remove(tmp)
		return false
	}
	return true
}

// removePidFile removes the pid file this process wrote.
func (d *Daemon) removePidFile() {
	if !d.pidWritten {
		return
	}
	d.pidWritten = false
	if err := os.Remove(d.cfg.PidFile); err != nil {
		d.log.Error(fmt.Sprintf("Could not remove the pid file %s: %v", d.cfg.PidFile, unwrapPath(err)))
	}
}

// writePortFile writes the bound TCP ports to path as memcached does for
// MEMCACHED_PORT_FILENAME: one "TCP INET: <port>" or "TCP INET6: <port>"
// line per listening socket, appended to path+".lck", which is then
// renamed to path. memcached writes it only when it listens on TCP (no
// -s); so does mnemo. A failure to open is logged and the server goes on.
func (d *Daemon) writePortFile(path string) {
	if d.cfg.UnixSocket != "" {
		return
	}
	tmp := path + ".lck"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666)
	if err != nil {
		d.log.Error(fmt.Sprintf("Failed to open %q: %v", tmp, unwrapPath(err)))
		return
	}
	w := bufio.NewWriter(f)
	for _, l := range d.lns {
		a, ok := l.Addr().(*net.TCPAddr)
		if !ok {
			continue
		}
		family := "INET6"
		if a.IP.To4() != nil {
			family = "INET"
		}
		fmt.Fprintf(w, "TCP %s: %d\n", family, a.Port)
	}
	err = w.Flush()
	if e := f.Close(); err == nil {
		err = e
	}
	if err != nil {
		d.log.Error(fmt.Sprintf("Failed to write %q: %v", tmp, err))
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		d.log.Error(fmt.Sprintf("Failed to rename %q to %q: %v", tmp, path, unwrapPath(err)))
	}
}

// unwrapPath returns the system error inside a *PathError or *LinkError,
// which repeats the path the message already names.
func unwrapPath(err error) error {
	switch e := err.(type) {
	case *os.PathError:
		return e.Err
	case *os.LinkError:
		return e.Err
	}
	return err
}
