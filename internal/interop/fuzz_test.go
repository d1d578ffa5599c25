package interop

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
