package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fdChildEnv marks the test binary re-executed by TestOutOfFDs as the
// child that serves with a low open-file limit.
const fdChildEnv = "MNEMO_SERVER_FD_CHILD"

// greetHandler greets each connection with "HELLO\n" as soon as it is
// served (so that a client learns it was accepted without sending
// anything) and echoes lines.
type greetHandler struct{}

func (greetHandler) NewSession(c *Conn) Session {
	// Through Out and Flush, not NetConn: a connection born bare would
	// need one more descriptor for a net.Conn, which a server at its
	// open-file limit does not have (NetConn then gives a connection
	// that writes nowhere, and the client read EOF instead of HELLO).
	c.Out = append(c.Out, "HELLO\n"...)
	c.Flush()
	return greetSession{}
}

type greetSession struct{}

func (greetSession) Close() {}

func (greetSession) Serve(c *Conn, in []byte) (int, int, error) {
	i := bytes.LastIndexByte(in, '\n')
	c.Out = append(c.Out, in[:i+1]...)
	return i + 1, 0, nil
}

// TestOutOfFDsChild is the child of TestOutOfFDs: it serves on loopback
// with an open-file limit a few descriptors above what it uses, prints
// its address, serves until its standard input closes, then prints its
// counters. Its log goes to standard error.
func TestOutOfFDsChild(t *testing.T) {
	if os.Getenv(fdChildEnv) == "" {
		t.Skip("run by TestOutOfFDs")
	}
	l, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := testLogger(os.Stderr)
	s := New(greetHandler{}, Config{RejectMessage: []byte("REJECT\n"), Logger: log})
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	// Wait until the accept loop holds its spare descriptor.
	for {
		s.spareMu.Lock()
		ok := s.spare != nil
		s.spareMu.Unlock()
		if ok {
			break
		}
		time.Sleep(time.Millisecond)
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	used := map[int]bool{}
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			used[n] = true
		}
	}
	// A new descriptor takes the lowest free number, which must be under
	// the limit: leave room for five (ReadDir's own is closed again).
	n, free := 0, 0
	for ; free < 5; n++ {
		if !used[n] {
			free++
		}
	}
	var lim syscall.Rlimit
	setRlimCur(&lim.Cur, n)
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	lim.Max = old.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("ADDR %s\n", l.Addr())
	io.Copy(io.Discard, os.Stdin)
	st := s.Stats()
	fmt.Printf("STATS pauses=%d fdrejected=%d errors=%d accepting=%v\n", st.AcceptPauses, st.FDRejectedConns, st.AcceptErrors, st.Accepting)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s.Shutdown(ctx)
	<-errc
}

// TestOutOfFDs runs a server with a low open-file limit in a child process
// and churns connections past it three times. Each time, the clients over
// the limit are told RejectMessage (instead of hanging in the backlog),
// the server logs one line for the episode (not one per failed accept),
// and once connections close it serves new ones again.
func TestOutOfFDs(t *testing.T) {
	if os.Getenv(fdChildEnv) != "" {
		t.Skip("in the child")
	}
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("no /proc/self/fd")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestOutOfFDsChild$", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), fdChildEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	out := bufio.NewScanner(stdout)
	var addr string
	for out.Scan() {
		if a, ok := strings.CutPrefix(out.Text(), "ADDR "); ok {
			addr = a
			break
		}
	}
	if addr == "" {
		t.Fatalf("child printed no address; stderr:\n%s", stderr.String())
	}

	// first dials and returns the connection and its first line: "HELLO"
	// when it was served, "REJECT" when the server was out of descriptors.
	first := func() (net.Conn, string) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(time.Minute)) // only against a hang
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("first line: %v (got %q); child stderr:\n%s", err, line, stderr.String())
		}
		return c, strings.TrimSpace(line)
	}
	const cycles, extra = 3, 5
	rejected := 0
	for cycle := range cycles {
		var held []net.Conn
		// Connections closed in the last cycle free their descriptors
		// an instant after the client closes: until then a new client
		// may still be rejected.
		for len(held) == 0 {
			c, line := first()
			if line == "HELLO" {
				held = append(held, c)
			} else {
				rejected++
				c.Close()
			}
		}
		for {
			c, line := first()
			if line == "REJECT" {
				rejected++
				c.Close()
				break
			}
			if line != "HELLO" {
				t.Fatalf("cycle %d: got %q", cycle, line)
			}
			held = append(held, c)
			if len(held) > 100 {
				t.Fatal("over 100 connections served: the limit did not apply")
			}
		}
		for range extra {
			c, line := first()
			if line != "REJECT" {
				t.Fatalf("cycle %d: a client over the limit got %q, want REJECT", cycle, line)
			}
			rejected++
			c.Close()
		}
		t.Logf("cycle %d: %d served, then rejected", cycle, len(held))
		// The served connections still work.
		for _, c := range held {
			fmt.Fprintf(c, "ping\n")
			if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "ping\n" {
				t.Fatalf("held connection: %q, %v", line, err)
			}
			c.Close()
		}
	}
	// Serving again after the last episode.
	for {
		c, line := first()
		c.Close()
		if line == "HELLO" {
			break
		}
		rejected++
	}
	stdin.Close()
	var stats string
	for out.Scan() {
		if s, ok := strings.CutPrefix(out.Text(), "STATS "); ok {
			stats = s
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v; stderr:\n%s", err, stderr.String())
	}
	// One log line per episode, however many accepts failed in it. An
	// episode ends at the first accept that succeeds, so a cycle may
	// have two when the descriptors of the last cycle's connections are
	// freed one by one (the next client takes the first freed one, the
	// one after it finds none left yet): count the episodes from the
	// server's stats, not from the cycles.
	var pauses, fdRejected, errs int
	var accepting bool
	if _, err := fmt.Sscanf(stats, "pauses=%d fdrejected=%d errors=%d accepting=%t", &pauses, &fdRejected, &errs, &accepting); err != nil {
		t.Fatalf("child stats %q: %v", stats, err)
	}
	logs := stderr.String()
	if n := strings.Count(logs, "out of file descriptors"); n != pauses || pauses < cycles {
		t.Errorf("%d log lines about descriptors for %d episodes (at least %d cycles):\n%s", n, pauses, cycles, logs)
	}
	if fdRejected != rejected || !accepting {
		t.Errorf("child stats %q: want fdrejected=%d and accepting=true", stats, rejected)
	}
	if errs < fdRejected || errs <= pauses {
		t.Errorf("child stats %q: every rejected client follows a failed accept, and there are more failed accepts than episodes (log lines)", stats)
	}
}

// setRlimCur sets a field of syscall.Rlimit, which is uint64 on Linux and
// macOS and int64 on the BSDs.
func setRlimCur[T int64 | uint64](p *T, n int) { *p = T(n) }
