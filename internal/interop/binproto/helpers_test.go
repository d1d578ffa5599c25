package binproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mnemo-cache/mnemo/config"
	"github.com/mnemo-cache/mnemo/internal/daemon"
	bin "github.com/mnemo-cache/mnemo/protocol/binary"
)

// lockedBuffer is a bytes.Buffer safe for concurrent writers: the daemon's
// log goes there.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startMnemo starts mnemo in-process on a free loopback port with the given
// extra memcached flags and returns its address and its log. The test
// stops it.
func startMnemo(t testing.TB, flags ...string) (string, *lockedBuffer) {
	t.Helper()
	args := append([]string{"-U", "0", "-l", "127.0.0.1:0", "-m", "64"}, flags...)
	cfg, err := config.Parse(args, io.Discard)
	if err != nil {
		t.Fatalf("mnemo flags %q: %v", args, err)
	}
	logs := &lockedBuffer{}
	d, err := daemon.Start(cfg, logs)
	if err != nil {
		t.Fatalf("mnemo start %q: %v", args, err)
	}
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Errorf("mnemo stop: %v", err)
		}
		if t.Failed() {
			t.Logf("mnemo log:\n%s", logs.String())
		}
	})
	return d.Addrs()[0].String(), logs
}

func lookPath(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: install Debian package %s (or run scripts/test.sh)", name, pkg)
	}
	return p
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startMemcached starts Debian's memcached on a free loopback port with the
// given environment additions and flags, and returns its address. The test
// kills it.
func startMemcached(t testing.TB, env []string, flags ...string) string {
	t.Helper()
	path := lookPath(t, "memcached", "memcached")
	var lastErr error
	for range 5 {
		port := freePort(t)
		args := []string{"-U", "0", "-l", "127.0.0.1", "-p", strconv.Itoa(port), "-m", "64"}
		if os.Geteuid() == 0 {
			args = append(args, "-u", "root")
		}
		args = append(args, flags...)
		cmd := exec.Command(path, args...)
		cmd.Env = append(os.Environ(), env...)
		var out lockedBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("memcached %q: %v", args, err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err := waitListening(addr, exited); err != nil {
			cmd.Process.Kill()
			lastErr = fmt.Errorf("memcached %q: %v; output: %s", args, err, out.String())
			continue
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-exited
		})
		return addr
	}
	t.Fatalf("could not start memcached: %v", lastErr)
	return ""
}

func waitListening(addr string, exited <-chan error) error {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("exited early: %v", err)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("not listening on %s after 5s", addr)
}

// writeFile writes content to a new file in the test's temporary directory.
func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// frame is one response frame.
type frame struct {
	bin.Header
	raw  []byte // header and body as received
	body []byte
}

func (f frame) status() bin.Status { return bin.Status(f.VBucket) }
func (f frame) key() []byte        { return f.body[f.ExtLen : int(f.ExtLen)+int(f.KeyLen)] }
func (f frame) value() []byte      { return f.body[int(f.ExtLen)+int(f.KeyLen):] }

func (f frame) String() string {
	return fmt.Sprintf("%s status=0x%02x opaque=%d cas=%d extras=%x key=%q value=%q",
		f.Opcode, f.VBucket, f.Opaque, f.CAS, f.body[:f.ExtLen], f.key(), f.value())
}

// bclient is a binary-protocol connection for tests.
type bclient struct {
	t    testing.TB
	conn net.Conn
}

func dial(t testing.TB, addr string) *bclient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &bclient{t: t, conn: c}
}

func (c *bclient) send(b []byte) {
	c.t.Helper()
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// next reads one response frame; io.EOF when the server closed.
func (c *bclient) next() (frame, error) {
	var h [bin.HeaderLen]byte
	if _, err := io.ReadFull(c.conn, h[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || isReset(err) {
			err = io.EOF
		}
		return frame{}, err
	}
	f := frame{Header: bin.ParseHeader(h[:])}
	if f.Magic != bin.MagicResponse {
		return f, fmt.Errorf("bad response magic 0x%02x", f.Magic)
	}
	f.body = make([]byte, f.BodyLen)
	if _, err := io.ReadFull(c.conn, f.body); err != nil {
		return f, err
	}
	f.raw = append(h[:], f.body...)
	return f, nil
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// read reads one frame or fails the test.
func (c *bclient) read() frame {
	c.t.Helper()
	f, err := c.next()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return f
}

// roundTrip sends one request and reads one response.
func (c *bclient) roundTrip(req []byte) frame {
	c.t.Helper()
	c.send(req)
	return c.read()
}

// expectClosed reads until the server closes the connection and fails if
// it sends anything.
func (c *bclient) expectClosed() {
	c.t.Helper()
	f, err := c.next()
	if err == nil {
		c.t.Fatalf("got %v, want the connection closed", f)
	}
	if !errors.Is(err, io.EOF) {
		c.t.Fatalf("got %v, want the connection closed", err)
	}
}

// Request builders.

func req(op bin.Opcode, opaque uint32, cas uint64, extras []byte, key, value string) []byte {
	return bin.AppendRequest(nil, op, opaque, cas, extras, []byte(key), []byte(value))
}

func get(op bin.Opcode, opaque uint32, key string) []byte { return req(op, opaque, 0, nil, key, "") }

func store(op bin.Opcode, opaque uint32, cas uint64, key, value string, flags, exptime uint32) []byte {
	e := binary.BigEndian.AppendUint32(nil, flags)
	e = binary.BigEndian.AppendUint32(e, exptime)
	return req(op, opaque, cas, e, key, value)
}

func arith(op bin.Opcode, opaque uint32, cas uint64, key string, delta, initial uint64, exptime uint32) []byte {
	e := binary.BigEndian.AppendUint64(nil, delta)
	e = binary.BigEndian.AppendUint64(e, initial)
	e = binary.BigEndian.AppendUint32(e, exptime)
	return req(op, opaque, cas, e, key, "")
}

func touch(op bin.Opcode, opaque uint32, key string, exptime uint32) []byte {
	return req(op, opaque, 0, binary.BigEndian.AppendUint32(nil, exptime), key, "")
}

func simple(op bin.Opcode, opaque uint32) []byte { return req(op, opaque, 0, nil, "", "") }

// raw builds a request header with arbitrary lengths, followed by body.
func raw(magic byte, op bin.Opcode, keyLen uint16, extLen uint8, bodyLen uint32, opaque uint32, body string) []byte {
	h := bin.Header{Magic: magic, Opcode: op, KeyLen: keyLen, ExtLen: extLen, BodyLen: bodyLen, Opaque: opaque}
	return append(h.Append(nil), body...)
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func itoa(n int) string { return strconv.Itoa(n) }

func writeFileErr(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }
