package interop

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/mnemo-cache/mnemo/internal/testserver"
)

type lockedBuffer = testserver.LockedBuffer

// startMnemo starts mnemo in-process with the given extra flags and
// returns its address.
func startMnemo(t testing.TB, flags ...string) string {
	t.Helper()
	addr, _ := testserver.Mnemo(t, flags...)
	return addr
}

// startMemcached starts Debian's memcached with the given extra flags and
// returns its address.
func startMemcached(t testing.TB, flags ...string) string {
	t.Helper()
	return testserver.Memcached(t, nil, flags...)
}

var (
	lookPath      = testserver.LookPath
	freePort      = testserver.FreePort
	waitListening = testserver.WaitListening
)

// patience bounds every wait that ends early unless something hangs.
const patience = testserver.Patience

// client is a plain text-protocol connection for tests. Each read and
// write waits at most patience.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	c := testserver.Dial(t, addr)
	return &client{t: t, conn: c, r: bufio.NewReader(c)}
}

// send writes s.
func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// line reads one reply line without its "\r\n".
func (c *client) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// stats sends "stats [group]" and returns the names and values in order.
func (c *client) stats(group string) (names []string, values map[string]string) {
	c.t.Helper()
	cmd := "stats"
	if group != "" {
		cmd += " " + group
	}
	c.send(cmd + "\r\n")
	values = map[string]string{}
	for {
		l := c.line()
		if l == "END" {
			return names, values
		}
		f := strings.SplitN(l, " ", 3)
		if len(f) != 3 || f[0] != "STAT" {
			c.t.Fatalf("%s: unexpected line %q", cmd, l)
		}
		names = append(names, f[1])
		values[f[1]] = f[2]
	}
}
