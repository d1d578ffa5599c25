package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// A protocol encodes get and set requests and reads their replies. Replies
// are read in request order from a bufio.Reader; values returned alias
// the reader's buffer or scratch and are valid until the next read.
type protocol interface {
	name() string
	appendGet(dst, key []byte, seq uint32) []byte
	appendSet(dst, key, val []byte, seq uint32) []byte
	// readGet reads a get reply for key. It returns the value and whether
	// the key was found; errReply for an error reply the connection
	// survives; any other error means the stream can no longer be parsed.
	readGet(r *bufio.Reader, key []byte, seq uint32, scratch []byte) (val []byte, hit bool, err error)
	// readSet reads a set reply (errReply for a refusal such as
	// SERVER_ERROR out of memory).
	readSet(r *bufio.Reader, seq uint32) error
	// probe checks that the server speaks the protocol.
	probe(c net.Conn, r *bufio.Reader, timeout time.Duration) error
}

// errReply is a well-formed error reply (SERVER_ERROR, NOT_STORED, a
// binary status): counted, and the connection goes on.
type errReply struct{ msg string }

func (e *errReply) Error() string { return "error reply: " + e.msg }

// errProtocol wraps replies that cannot be parsed.
var errProtocol = errors.New("protocol error")

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errProtocol}, args...)...)
}

// newProtocol returns the protocol called name; its sets store items
// with exptime ttl (seconds; 0: never expire).
func newProtocol(name string, ttl int64) (protocol, error) {
	switch name {
	case "text":
		return textProto{ttl}, nil
	case "meta":
		return metaProto{ttl}, nil
	case "binary":
		return binaryProto{ttl}, nil
	}
	return nil, fmt.Errorf("-protocol %q: want text, meta or binary", name)
}

// readLine returns the next line without its "\r\n". The slice aliases
// the reader's buffer.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, protoErr("reply line longer than %d bytes", r.Size())
		}
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, protoErr("reply line %q does not end in \\r\\n", line)
	}
	return line[:len(line)-2], nil
}

// readData reads n bytes followed by "\r\n" into scratch.
func readData(r *bufio.Reader, n int, scratch []byte) ([]byte, error) {
	if cap(scratch) < n+2 {
		scratch = make([]byte, n+2)
	}
	b := scratch[:n+2]
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	if b[n] != '\r' || b[n+1] != '\n' {
		return nil, protoErr("data block of %d bytes not followed by \\r\\n", n)
	}
	return b[:n], nil
}

func isErrorLine(line []byte) bool {
	return bytes.HasPrefix(line, []byte("SERVER_ERROR")) ||
		bytes.HasPrefix(line, []byte("CLIENT_ERROR")) ||
		bytes.Equal(line, []byte("ERROR"))
}

func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// field returns the i-th space-separated field of line, or nil.
func field(line []byte, i int) []byte {
	for {
		for len(line) > 0 && line[0] == ' ' {
			line = line[1:]
		}
		j := bytes.IndexByte(line, ' ')
		if j < 0 {
			j = len(line)
		}
		if i == 0 {
			if j == 0 {
				return nil
			}
			return line[:j]
		}
		if j == len(line) {
			return nil
		}
		line = line[j:]
		i--
	}
}

// textProto is memcached's text protocol: get and set.
type textProto struct{ ttl int64 }

func (textProto) name() string { return "text" }

func (textProto) appendGet(dst, key []byte, _ uint32) []byte {
	dst = append(dst, "get "...)
	dst = append(dst, key...)
	return append(dst, "\r\n"...)
}

func (p textProto) appendSet(dst, key, val []byte, _ uint32) []byte {
	dst = append(dst, "set "...)
	dst = append(dst, key...)
	dst = append(dst, " 0 "...)
	dst = strconv.AppendInt(dst, p.ttl, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(val)), 10)
	dst = append(dst, "\r\n"...)
	dst = append(dst, val...)
	return append(dst, "\r\n"...)
}

func (textProto) readGet(r *bufio.Reader, key []byte, _ uint32, scratch []byte) ([]byte, bool, error) {
	line, err := readLine(r)
	if err != nil {
		return nil, false, err
	}
	if string(line) == "END" {
		return nil, false, nil
	}
	if isErrorLine(line) {
		return nil, false, &errReply{string(line)}
	}
	// VALUE <key> <flags> <bytes>
	if string(field(line, 0)) != "VALUE" || field(line, 4) != nil {
		return nil, false, protoErr("unexpected get reply %q", line)
	}
	if !bytes.Equal(field(line, 1), key) {
		return nil, false, protoErr("get %s answered for key %q", key, field(line, 1))
	}
	n, ok := atoi(field(line, 3))
	if !ok {
		return nil, false, protoErr("bad length in %q", line)
	}
	val, err := readData(r, n, scratch)
	if err != nil {
		return nil, false, err
	}
	end, err := readLine(r)
	if err != nil {
		return nil, false, err
	}
	if string(end) != "END" {
		return nil, false, protoErr("get reply not terminated by END: %q", end)
	}
	return val, true, nil
}

func (textProto) readSet(r *bufio.Reader, _ uint32) error {
	line, err := readLine(r)
	if err != nil {
		return err
	}
	switch {
	case string(line) == "STORED":
		return nil
	case isErrorLine(line), string(line) == "NOT_STORED":
		return &errReply{string(line)}
	}
	return protoErr("unexpected set reply %q", line)
}

func (textProto) probe(c net.Conn, r *bufio.Reader, timeout time.Duration) error {
	return probeLine(c, r, timeout, "version\r\n", "the text protocol", func(l []byte) bool {
		return bytes.HasPrefix(l, []byte("VERSION "))
	})
}

// probeLine sends req and checks that the reply line passes ok.
func probeLine(c net.Conn, r *bufio.Reader, timeout time.Duration, req, what string, ok func([]byte) bool) error {
	c.SetDeadline(time.Now().Add(timeout))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, req); err != nil {
		return err
	}
	line, err := readLine(r)
	if err != nil || !ok(line) {
		got := fmt.Sprintf("%q", line)
		if err != nil {
			got = err.Error()
		}
		return fmt.Errorf("server does not speak %s (not supported yet?): sent %q, got %s", what, req, got)
	}
	return nil
}

// metaProto is memcached's meta protocol: mg and ms.
type metaProto struct{ ttl int64 }

func (metaProto) name() string { return "meta" }

func (metaProto) appendGet(dst, key []byte, _ uint32) []byte {
	dst = append(dst, "mg "...)
	dst = append(dst, key...)
	return append(dst, " k v\r\n"...)
}

func (p metaProto) appendSet(dst, key, val []byte, _ uint32) []byte {
	dst = append(dst, "ms "...)
	dst = append(dst, key...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(val)), 10)
	dst = append(dst, " T"...)
	dst = strconv.AppendInt(dst, p.ttl, 10)
	dst = append(dst, " F0\r\n"...)
	dst = append(dst, val...)
	return append(dst, "\r\n"...)
}

func (metaProto) readGet(r *bufio.Reader, key []byte, _ uint32, scratch []byte) ([]byte, bool, error) {
	line, err := readLine(r)
	if err != nil {
		return nil, false, err
	}
	if string(line) == "EN" {
		return nil, false, nil
	}
	if isErrorLine(line) {
		return nil, false, &errReply{string(line)}
	}
	// VA <bytes> k<key>
	if string(field(line, 0)) != "VA" {
		return nil, false, protoErr("unexpected mg reply %q", line)
	}
	n, ok := atoi(field(line, 1))
	if !ok {
		return nil, false, protoErr("bad length in %q", line)
	}
	kf := field(line, 2)
	if len(kf) < 1 || kf[0] != 'k' || !bytes.Equal(kf[1:], key) {
		return nil, false, protoErr("mg %s answered with %q", key, line)
	}
	val, err := readData(r, n, scratch)
	if err != nil {
		return nil, false, err
	}
	return val, true, nil
}

func (metaProto) readSet(r *bufio.Reader, _ uint32) error {
	line, err := readLine(r)
	if err != nil {
		return err
	}
	switch {
	case string(line) == "HD":
		return nil
	case isErrorLine(line), string(line) == "NS":
		return &errReply{string(line)}
	}
	return protoErr("unexpected ms reply %q", line)
}

func (metaProto) probe(c net.Conn, r *bufio.Reader, timeout time.Duration) error {
	// mn alone is not proof: a server may know mn but not mg.
	return probeLine(c, r, timeout, "mg mnemo-bench-probe v\r\n", "the meta protocol (mg)", func(l []byte) bool {
		return string(l) == "EN" || bytes.HasPrefix(l, []byte("VA "))
	})
}

// binaryProto is memcached's binary protocol: GETK and SET, each request's
// opaque carrying a sequence number that the reply must echo.
type binaryProto struct{ ttl int64 }

const (
	binReqMagic   = 0x80
	binResMagic   = 0x81
	binOpGetK     = 0x0c
	binOpSet      = 0x01
	binOpNoop     = 0x0a
	binHdr        = 24
	binStatusOK   = 0
	binStatusMiss = 1
)

func (binaryProto) name() string { return "binary" }

func appendBinHeader(dst []byte, op byte, keyLen, extLen, bodyLen int, opaque uint32) []byte {
	var h [binHdr]byte
	h[0] = binReqMagic
	h[1] = op
	binary.BigEndian.PutUint16(h[2:], uint16(keyLen))
	h[4] = byte(extLen)
	binary.BigEndian.PutUint32(h[8:], uint32(bodyLen))
	binary.BigEndian.PutUint32(h[12:], opaque)
	return append(dst, h[:]...)
}

func (binaryProto) appendGet(dst, key []byte, seq uint32) []byte {
	dst = appendBinHeader(dst, binOpGetK, len(key), 0, len(key), seq)
	return append(dst, key...)
}

func (p binaryProto) appendSet(dst, key, val []byte, seq uint32) []byte {
	dst = appendBinHeader(dst, binOpSet, len(key), 8, 8+len(key)+len(val), seq)
	dst = append(dst, 0, 0, 0, 0) // flags
	dst = binary.BigEndian.AppendUint32(dst, uint32(p.ttl))
	dst = append(dst, key...)
	return append(dst, val...)
}

// readBin reads one response and returns its opcode, status, key, extras
// length and value.
func readBin(r *bufio.Reader, seq uint32, scratch []byte) (op byte, status uint16, key, val []byte, err error) {
	var h [binHdr]byte
	if _, err = io.ReadFull(r, h[:]); err != nil {
		return
	}
	if h[0] != binResMagic {
		err = protoErr("binary reply magic 0x%02x", h[0])
		return
	}
	op = h[1]
	kl := int(binary.BigEndian.Uint16(h[2:]))
	el := int(h[4])
	status = binary.BigEndian.Uint16(h[6:])
	bl := int(binary.BigEndian.Uint32(h[8:]))
	if got := binary.BigEndian.Uint32(h[12:]); got != seq {
		err = protoErr("binary reply opaque %d, want %d", got, seq)
		return
	}
	if kl+el > bl || bl > 64<<20 {
		err = protoErr("binary reply body %d bytes with key %d and extras %d", bl, kl, el)
		return
	}
	if cap(scratch) < bl {
		scratch = make([]byte, bl)
	}
	body := scratch[:bl]
	if _, err = io.ReadFull(r, body); err != nil {
		return
	}
	return op, status, body[el : el+kl], body[el+kl:], nil
}

func (binaryProto) readGet(r *bufio.Reader, key []byte, seq uint32, scratch []byte) ([]byte, bool, error) {
	op, st, k, v, err := readBin(r, seq, scratch)
	switch {
	case err != nil:
		return nil, false, err
	case op != binOpGetK:
		return nil, false, protoErr("binary reply opcode 0x%02x to GETK", op)
	case st == binStatusMiss:
		return nil, false, nil
	case st != binStatusOK:
		return nil, false, &errReply{fmt.Sprintf("binary status 0x%04x: %s", st, v)}
	case !bytes.Equal(k, key):
		return nil, false, protoErr("GETK %s answered for key %q", key, k)
	}
	return v, true, nil
}

func (binaryProto) readSet(r *bufio.Reader, seq uint32) error {
	op, st, _, v, err := readBin(r, seq, nil)
	switch {
	case err != nil:
		return err
	case op != binOpSet:
		return protoErr("binary reply opcode 0x%02x to SET", op)
	case st != binStatusOK:
		return &errReply{fmt.Sprintf("binary status 0x%04x: %s", st, v)}
	}
	return nil
}

func (binaryProto) probe(c net.Conn, r *bufio.Reader, timeout time.Duration) error {
	c.SetDeadline(time.Now().Add(timeout))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(appendBinHeader(nil, binOpNoop, 0, 0, 0, 0xb0b)); err != nil {
		return err
	}
	var h [binHdr]byte
	_, err := io.ReadFull(r, h[:])
	if err != nil || h[0] != binResMagic || h[1] != binOpNoop {
		got := fmt.Sprintf("%q", h[:])
		if err != nil {
			got = err.Error()
		}
		return fmt.Errorf("server does not speak the binary protocol (not supported yet?): sent NOOP, got %s", got)
	}
	bl := int(binary.BigEndian.Uint32(h[8:]))
	_, err = r.Discard(bl)
	return err
}
