package interop

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mnemo-cache/mnemo/internal/testserver"
)

// FuzzServer sends arbitrary bytes, in two writes, to a whole mnemo (text,
// meta and binary protocols, detection included) and then checks that the
// server neither panicked nor stopped serving, and that another client's
// item is intact or gone (the input may flush or delete it) but never
// altered. The seeds are the differential scripts.
func FuzzServer(f *testing.F) {
	scripts, _ := filepath.Glob(filepath.Join("testdata", "diff", "*.txt"))
	for _, p := range scripts {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(strings.ReplaceAll(string(b), "\n", "\r\n"), 7)
	}
	f.Add("\x80\x01\x00\x01\x08\x00\x00\x00\x00\x00\x00\x0d\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00kx", 3)
	f.Add("ms k 2 T0 F5 b\r\nhi\r\nmg k v f t\r\n", 10)
	keepWorkerCrashes(f)
	addr, logs := testserver.Mnemo(f, "-I", "2m")
	// The checking connection's replies may take long on a loaded machine
	// (each read waits up to testserver.Patience); the fuzzing connection
	// only ever waits a moment, and what it gets is not checked.
	check := testserver.Dial(f, addr)
	cr := bufio.NewReader(check)
	f.Fuzz(func(t *testing.T, input string, split int) {
		if _, err := check.Write([]byte("set fuzz-sentinel 1 0 5\r\nalive\r\n")); err != nil {
			t.Fatal(err)
		}
		if line, _ := cr.ReadString('\n'); line != "STORED\r\n" {
			t.Fatalf("sentinel set: %q", line)
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if split < 0 || split > len(input) {
			split = len(input) / 2
		}
		c.Write([]byte(input[:split]))
		c.Write([]byte(input[split:]))
		// Read whatever comes back for a moment, so the server works
		// through the input, then leave.
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
		if _, err := check.Write([]byte("get fuzz-sentinel\r\n")); err != nil {
			t.Fatalf("server stopped serving: %v", err)
		}
		var got []string
		for {
			line, err := cr.ReadString('\n')
			if err != nil {
				t.Fatalf("server stopped serving: %v (got %q)", err, got)
			}
			got = append(got, line)
			if line == "END\r\n" {
				break
			}
		}
		if reply := strings.Join(got, ""); reply != "VALUE fuzz-sentinel 1 5\r\nalive\r\nEND\r\n" && reply != "END\r\n" && !strings.Contains(input, "fuzz-sentinel") {
			t.Fatalf("another client's item changed: %q", got)
		}
		if strings.Contains(logs.String(), "panic") {
			t.Fatalf("the server panicked:\n%s", logs.String())
		}
	})
}

// keepWorkerCrashes makes a crash of a fuzzing worker readable. With
// -fuzz, go test runs the target in worker processes whose standard error
// goes nowhere; the server runs inside them, so a panic on one of its own
// goroutines (or a fatal runtime error) kills the worker, and all the
// coordinator reports is "fuzzing process hung or terminated
// unexpectedly". Each worker therefore sends its standard error to a file
// in a directory of the coordinator's, and the coordinator prints those
// files when the target failed.
func keepWorkerCrashes(f *testing.F) {
	worker := false
	if fl := flag.Lookup("test.fuzzworker"); fl != nil {
		worker = fl.Value.String() == "true"
	}
	coordinator := os.Getpid()
	if worker {
		coordinator = os.Getppid()
	}
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("mnemo-fuzzserver-%d", coordinator))
	if !worker {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() {
			defer os.RemoveAll(dir)
			if !f.Failed() {
				return
			}
			logs, _ := filepath.Glob(filepath.Join(dir, "*.stderr"))
			for _, p := range logs {
				b, _ := os.ReadFile(p)
				if len(b) > 0 {
					f.Logf("fuzzing worker %s wrote:\n%s", filepath.Base(p), b)
				}
			}
		})
		return
	}
	out, err := os.Create(filepath.Join(dir, fmt.Sprintf("%d.stderr", os.Getpid())))
	if err != nil {
		return // the coordinator is not this test's (a plain go test run)
	}
	if err := unix.Dup2(int(out.Fd()), 2); err != nil {
		f.Fatal(err)
	}
}
