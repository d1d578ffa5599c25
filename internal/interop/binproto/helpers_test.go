package binproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mnemo-cache/mnemo/internal/testserver"
	bin "github.com/mnemo-cache/mnemo/protocol/binary"
)

type lockedBuffer = testserver.LockedBuffer

var (
	startMnemo     = testserver.Mnemo
	startMemcached = testserver.Memcached
	lookPath       = testserver.LookPath
)

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

// bclient is a binary-protocol connection for tests. Each read and write
// waits at most testserver.Patience: only a hang fails it.
type bclient struct {
	t    testing.TB
	conn net.Conn
}

func dial(t testing.TB, addr string) *bclient {
	t.Helper()
	return &bclient{t: t, conn: testserver.Dial(t, addr)}
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
