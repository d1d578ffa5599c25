package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times (100 on
// every Linux architecture Go supports).
const clockTicks = 100

// procRSS returns the resident set size of process pid, from
// /proc/PID/status (VmRSS).
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := bytes.Fields(v)
			if len(f) != 2 || string(f[1]) != "kB" {
				break
			}
			kb, err := strconv.ParseInt(string(f[0]), 10, 64)
			if err != nil {
				break
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// procCPU returns the user+system CPU seconds of process pid.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may hold spaces: fields
	// start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc/PID/stat")
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("short /proc/PID/stat")
	}
	ut, err1 := strconv.ParseUint(string(f[11]), 10, 64)
	st, err2 := strconv.ParseUint(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed /proc/PID/stat times")
	}
	return float64(ut+st) / clockTicks, nil
}

// selfCPU returns this process's user+system CPU seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// serverStats asks the server for "stats" and returns the named ones it
// has (nil on any failure: the stats are informative only).
func serverStats(w *workload, names ...string) map[string]string {
	opt := w.opt
	nc, err := dialServer(w)
	if err != nil {
		return nil
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(opt.timeout))
	if _, err := io.WriteString(nc, "stats\r\n"); err != nil {
		return nil
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]string{}
	r := bufio.NewReader(nc)
	for {
		line, err := readLine(r)
		if err != nil || string(line) == "END" {
			break
		}
		f := bytes.Fields(line)
		if len(f) == 3 && string(f[0]) == "STAT" && want[string(f[1])] {
			out[string(f[1])] = string(f[2])
		}
	}
	return out
}

// runIdle opens opt.idle connections, sends one request on each (the
// protocol's probe) and, with -server-pid, measures the server's RSS
// before and after.
func runIdle(ctx context.Context, w *workload, res *Result) error {
	opt := w.opt
	id := &Idle{Conns: opt.idle}
	res.Idle = id
	if opt.serverPID > 0 {
		var err error
		if id.RSSBefore, err = procRSS(opt.serverPID); err != nil {
			return err
		}
	}
	conns := make([]net.Conn, opt.idle)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	const workers = 32
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ferr error
	)
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < opt.idle; i += workers {
				if ctx.Err() != nil {
					return
				}
				nc, err := dialServer(w)
				if err == nil {
					err = w.proto.probe(nc, bufio.NewReaderSize(nc, 512), opt.timeout)
					if err != nil {
						nc.Close()
					}
				}
				if err != nil {
					mu.Lock()
					if ferr == nil {
						ferr = fmt.Errorf("idle connection %d: %w", i, err)
					}
					mu.Unlock()
					return
				}
				conns[i] = nc
			}
		}()
	}
	wg.Wait()
	if ferr != nil {
		return ferr
	}
	if err := sleepCtx(ctx, opt.idleSettle); err != nil {
		return err
	}
	if opt.serverPID > 0 {
		var err error
		if id.RSSAfter, err = procRSS(opt.serverPID); err != nil {
			return err
		}
		id.BytesPerConn = float64(id.RSSAfter-id.RSSBefore) / float64(opt.idle)
		res.Server_ = &ServerInfo{PID: opt.serverPID, RSSAfter: id.RSSAfter}
	}
	return sleepCtx(ctx, opt.idleHold)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
