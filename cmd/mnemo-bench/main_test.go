package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mnemo-cache/mnemo/internal/testserver"
)

func mustCodec(t *testing.T) *valueCodec {
	t.Helper()
	ks, err := newKeyspace(100, 15, "key:")
	if err != nil {
		t.Fatal(err)
	}
	vc, err := newValueCodec(ks, 100)
	if err != nil {
		t.Fatal(err)
	}
	return vc
}

func TestKeyspace(t *testing.T) {
	ks, err := newKeyspace(1000, 15, "key:")
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 7, 999} {
		k := ks.appendKey(nil, i)
		if len(k) != 15 || !strings.HasPrefix(string(k), "key:") {
			t.Errorf("key %d = %q", i, k)
		}
		if got := ks.parseKey(k); got != i {
			t.Errorf("parseKey(%q) = %d, want %d", k, got, i)
		}
	}
	if got := ks.parseKey([]byte("key:00000001000")); got != -1 {
		t.Errorf("parseKey of an index out of range = %d", got)
	}
	if _, err := newKeyspace(1000, 6, "key:"); err == nil {
		t.Error("a key size too small for the digits was accepted")
	}
	if _, err := newKeyspace(0, 15, "key:"); err == nil {
		t.Error("0 keys accepted")
	}
}

func TestValueCheck(t *testing.T) {
	vc := mustCodec(t)
	good := vc.appendValue(nil, 5, 42)
	if len(good) != 100 || !bytes.HasPrefix(good, []byte("key:00000000005#42#")) {
		t.Fatalf("value = %q", good)
	}
	if ver, err := vc.check(good, 5, 42); err != nil || ver != 42 {
		t.Fatalf("check(good) = %d, %v", ver, err)
	}
	corrupt := bytes.Clone(good)
	corrupt[70]++
	spliced := append(bytes.Clone(good[:50]), vc.appendValue(nil, 5, 41)[50:]...)
	tests := []struct {
		name string
		val  []byte
		key  int
		max  uint64
		want error
	}{
		{"another key's value", vc.appendValue(nil, 6, 1), 5, 42, errValueKey},
		{"truncated", good[:99], 5, 42, errValueSize},
		{"too long", append(bytes.Clone(good), 'x'), 5, 42, errValueSize},
		{"corrupted byte", corrupt, 5, 42, errValueFiller},
		{"spliced from two versions", spliced, 5, 42, errValueFiller},
		{"version never written", good, 5, 41, errValueVersion},
		{"no version", append([]byte("key:00000000005##"), bytes.Repeat([]byte("a"), 83)...), 5, 42, errValueFormat},
		{"not ours", bytes.Repeat([]byte("x"), 100), 5, 42, errValueKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := vc.check(tc.val, tc.key, tc.max); !errors.Is(err, tc.want) {
				t.Errorf("check = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := newValueCodec(vc.ks, 20); err == nil {
		t.Error("a value size too small to embed the key was accepted")
	}
}

func TestVersionsAcceptEarlierRuns(t *testing.T) {
	vc := mustCodec(t)
	earlier := newVersions(100, 1000)
	v := vc.appendValue(nil, 3, earlier.next(3))
	later := newVersions(100, 2000)
	if _, err := vc.check(v, 3, later.max(3)); err != nil {
		t.Errorf("a value written by an earlier run was rejected: %v", err)
	}
	future := vc.appendValue(nil, 3, 2005)
	later.next(3)
	if _, err := vc.check(future, 3, later.max(3)); !errors.Is(err, errValueVersion) {
		t.Errorf("a version never handed out passed: %v", err)
	}
}

func TestParseRatio(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"1:10", 1.0 / 11, true},
		{"0:1", 0, true},
		{"1:0", 1, true},
		{"0:0", 0, false},
		{"1", 0, false},
		{"a:b", 0, false},
		{"-1:2", 0, false},
	}
	for _, tc := range tests {
		got, err := parseRatio(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("parseRatio(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestZipf(t *testing.T) {
	const n = 1000
	c, err := newZipf(n, 0.99)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	counts := make([]int, n)
	const draws = 200000
	for range draws {
		k := c.next(r)
		if k < 0 || k >= n {
			t.Fatalf("rank %d out of range", k)
		}
		counts[k]++
	}
	// P(rank k) = 1/((k+1)^0.99 zeta(n)): about 13% for rank 0 with n=1000.
	z := zeta(n, 0.99)
	for _, k := range []int{0, 1, 9, 99} {
		want := draws / (z * math.Pow(float64(k+1), 0.99))
		if got := float64(counts[k]); got < 0.85*want || got > 1.15*want {
			t.Errorf("rank %d drawn %v times, want about %.0f", k, got, want)
		}
	}
	for _, bad := range []float64{0, -1, 1} {
		if _, err := newZipf(n, bad); err == nil {
			t.Errorf("newZipf(%v) accepted", bad)
		}
	}
	big, err := newZipf(n, 1.2)
	if err != nil {
		t.Fatal(err)
	}
	next := perConn(big, r)
	for range 1000 {
		if k := next(); k < 0 || k >= n {
			t.Fatalf("theta 1.2: rank %d out of range", k)
		}
	}
}

// fakeServer is a memcached text-protocol server for tests. corrupt, when
// set, rewrites the value returned for a key.
type fakeServer struct {
	ln      net.Listener
	mu      sync.Mutex
	data    map[string][]byte
	corrupt func(key string, val []byte, all map[string][]byte) []byte
	wg      sync.WaitGroup
}

func startFake(t *testing.T, corrupt func(string, []byte, map[string][]byte) []byte) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{ln: ln, data: map[string][]byte{}, corrupt: corrupt}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *fakeServer) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	// A text-only server closes a connection that speaks binary (as
	// memcached -B ascii does), so a binary probe fails at once instead
	// of waiting for a reply that never comes.
	if b, err := r.Peek(1); err != nil || b[0] == 0x80 {
		return
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			w.WriteString("ERROR\r\n")
		} else {
			switch f[0] {
			case "version":
				w.WriteString("VERSION fake\r\n")
			case "stats":
				w.WriteString("STAT curr_items " + strconv.Itoa(len(s.data)) + "\r\nEND\r\n")
			case "set":
				n, _ := strconv.Atoi(f[4])
				buf := make([]byte, n+2)
				if _, err := io.ReadFull(r, buf); err != nil {
					return
				}
				s.mu.Lock()
				s.data[f[1]] = buf[:n]
				s.mu.Unlock()
				w.WriteString("STORED\r\n")
			case "get":
				for _, key := range f[1:] {
					s.mu.Lock()
					v, ok := s.data[key]
					if ok && s.corrupt != nil {
						v = s.corrupt(key, v, s.data)
					}
					s.mu.Unlock()
					if ok {
						w.WriteString("VALUE " + key + " 0 " + strconv.Itoa(len(v)) + "\r\n")
						w.Write(v)
						w.WriteString("\r\n")
					}
				}
				w.WriteString("END\r\n")
			default:
				w.WriteString("ERROR\r\n")
			}
		}
		if r.Buffered() == 0 {
			if w.Flush() != nil {
				return
			}
		}
	}
}

// testTimeout is -timeout for the tests: the dial, probe and stats waits
// end early unless something hangs, and no test waits for one to fire.
const testTimeout = "2m"

func testOptions(addr string) *options {
	opt, err := parseFlags([]string{"-server", addr, "-conns", "4", "-pipeline", "4", "-keys", "64", "-requests", "4000", "-duration", "0", "-ratio", "1:3", "-fill", "-timeout", testTimeout}, io.Discard)
	if err != nil {
		panic(err)
	}
	return opt
}

func TestRunCountsBadValues(t *testing.T) {
	swapKey := func(key string, v []byte, all map[string][]byte) []byte {
		for k, o := range all {
			if k != key {
				return o
			}
		}
		return v
	}
	tests := []struct {
		name    string
		corrupt func(string, []byte, map[string][]byte) []byte
		bad     bool
	}{
		{"correct server", nil, false},
		{"another key's value", swapKey, true},
		{"flipped byte", func(_ string, v []byte, _ map[string][]byte) []byte {
			v = bytes.Clone(v)
			v[len(v)-1] ^= 1
			return v
		}, true},
		{"truncated", func(_ string, v []byte, _ map[string][]byte) []byte { return v[:len(v)-1] }, true},
		{"invented version", func(key string, v []byte, _ map[string][]byte) []byte {
			i := strings.IndexByte(string(v), '#')
			j := strings.IndexByte(string(v[i+1:]), '#') + i + 1
			out := append([]byte(key+"#99999999999999999#"), v[j+1:]...)
			return out[:len(v)]
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startFake(t, tc.corrupt)
			res, err := execute(t.Context(), testOptions(s.ln.Addr().String()))
			if err != nil {
				t.Fatal(err)
			}
			if res.Ops != 4000 || res.Gets == 0 || res.Sets == 0 {
				t.Errorf("ops %d (gets %d sets %d), want 4000 of both kinds", res.Ops, res.Gets, res.Sets)
			}
			if got := res.BadValues > 0; got != tc.bad {
				t.Errorf("bad values = %d (%s), want bad: %v", res.BadValues, res.BadSample, tc.bad)
			}
			if res.Hits != res.Gets {
				t.Errorf("hits %d of %d gets after a fill", res.Hits, res.Gets)
			}
		})
	}
}

func TestExitStatus(t *testing.T) {
	s := startFake(t, func(_ string, v []byte, _ map[string][]byte) []byte { return bytes.ToUpper(v) })
	args := []string{"-server", s.ln.Addr().String(), "-conns", "2", "-keys", "10", "-requests", "200", "-duration", "0", "-fill", "-json", "-timeout", testTimeout}
	var out bytes.Buffer
	if code := run(args, &out, io.Discard); code != 1 {
		t.Errorf("exit status %d with bad values, want 1", code)
	}
	if !strings.Contains(out.String(), `"bad_values": `) {
		t.Errorf("JSON output lacks bad_values:\n%s", out.String())
	}
	s2 := startFake(t, nil)
	args[1] = s2.ln.Addr().String()
	if code := run(args, io.Discard, io.Discard); code != 0 {
		t.Errorf("exit status %d against a correct server", code)
	}
	if code := run([]string{"-ratio", "x"}, io.Discard, io.Discard); code != 1 {
		t.Errorf("exit status %d for a bad ratio", code)
	}
	if code := run([]string{"-conns", "0"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("exit status %d for -conns 0", code)
	}
}

func TestUnsupportedProtocol(t *testing.T) {
	s := startFake(t, nil)
	for _, p := range []string{"meta", "binary"} {
		opt := testOptions(s.ln.Addr().String())
		opt.protocol = p
		_, err := execute(t.Context(), opt)
		if err == nil || !strings.Contains(err.Error(), "not supported yet") {
			t.Errorf("%s against a text-only server: %v", p, err)
		}
	}
}

func TestMetaReplies(t *testing.T) {
	vc := mustCodec(t)
	key := vc.ks.appendKey(nil, 1)
	val := vc.appendValue(nil, 1, 1)
	var p metaProto
	if got := string(p.appendSet(nil, key, []byte("ab"), 0)); got != "ms "+string(key)+" 2 T0 F0\r\nab\r\n" {
		t.Errorf("ms = %q", got)
	}
	if got := string(p.appendGet(nil, key, 0)); got != "mg "+string(key)+" k v\r\n" {
		t.Errorf("mg = %q", got)
	}
	tests := []struct {
		name, reply string
		hit         bool
		err         error
	}{
		{"hit", "VA 100 k" + string(key) + "\r\n" + string(val) + "\r\n", true, nil},
		{"miss", "EN\r\n", false, nil},
		{"other key", "VA 100 kkey:00000000002\r\n" + string(val) + "\r\n", false, errProtocol},
		{"bad data end", "VA 100 k" + string(key) + "\r\n" + string(val) + "xx", false, errProtocol},
		{"garbage", "HD\r\n", false, errProtocol},
	}
	for _, tc := range tests {
		r := bufio.NewReader(strings.NewReader(tc.reply))
		v, hit, err := p.readGet(r, key, 0, nil)
		if hit != tc.hit || !errors.Is(err, tc.err) || (hit && !bytes.Equal(v, val)) {
			t.Errorf("%s: hit %v err %v", tc.name, hit, err)
		}
	}
	var er *errReply
	if err := p.readSet(bufio.NewReader(strings.NewReader("SERVER_ERROR out of memory storing object\r\n")), 0); !errors.As(err, &er) {
		t.Errorf("readSet of SERVER_ERROR: %v", err)
	}
}

func binReply(op byte, status uint16, opaque uint32, extras, key, val []byte) []byte {
	h := make([]byte, binHdr)
	h[0], h[1] = binResMagic, op
	binary.BigEndian.PutUint16(h[2:], uint16(len(key)))
	h[4] = byte(len(extras))
	binary.BigEndian.PutUint16(h[6:], status)
	binary.BigEndian.PutUint32(h[8:], uint32(len(extras)+len(key)+len(val)))
	binary.BigEndian.PutUint32(h[12:], opaque)
	return append(append(append(h, extras...), key...), val...)
}

func TestBinaryReplies(t *testing.T) {
	vc := mustCodec(t)
	key := vc.ks.appendKey(nil, 1)
	val := vc.appendValue(nil, 1, 1)
	var p binaryProto
	req := p.appendSet(nil, key, val, 7)
	if req[0] != binReqMagic || req[1] != binOpSet || binary.BigEndian.Uint32(req[8:]) != uint32(8+len(key)+len(val)) || binary.BigEndian.Uint32(req[12:]) != 7 {
		t.Errorf("set header % x", req[:binHdr])
	}
	flags := []byte{0, 0, 0, 0}
	tests := []struct {
		name  string
		reply []byte
		hit   bool
		err   error
	}{
		{"hit", binReply(binOpGetK, 0, 9, flags, key, val), true, nil},
		{"miss", binReply(binOpGetK, binStatusMiss, 9, nil, nil, []byte("Not found")), false, nil},
		{"other key", binReply(binOpGetK, 0, 9, flags, []byte("key:00000000002"), val), false, errProtocol},
		{"wrong opaque", binReply(binOpGetK, 0, 8, flags, key, val), false, errProtocol},
		{"wrong magic", append([]byte{0x80}, binReply(binOpGetK, 0, 9, flags, key, val)[1:]...), false, errProtocol},
	}
	for _, tc := range tests {
		v, hit, err := p.readGet(bufio.NewReader(bytes.NewReader(tc.reply)), key, 9, nil)
		if hit != tc.hit || !errors.Is(err, tc.err) || (hit && !bytes.Equal(v, val)) {
			t.Errorf("%s: hit %v err %v", tc.name, hit, err)
		}
	}
	var er *errReply
	if err := p.readSet(bufio.NewReader(bytes.NewReader(binReply(binOpSet, 0x82, 3, nil, nil, []byte("Out of memory")))), 3); !errors.As(err, &er) {
		t.Errorf("readSet of status 0x82: %v", err)
	}
}

// TestAgainstMnemo runs a short checked load against a mnemo server
// started in-process.
func TestAgainstMnemo(t *testing.T) {
	addr, _ := testserver.Mnemo(t, "-m", "16")
	opt := testOptions(addr)
	opt.keys = 1000
	opt.dist = "zipf"
	res, err := execute(t.Context(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if res.BadValues != 0 || res.ErrorReplies != 0 || res.ProtocolErrors != 0 || res.Hits != res.Gets {
		t.Errorf("against mnemo: %+v (%s %s)", res.counts, res.FirstError, res.BadSample)
	}
	if res.Server_ == nil || res.Server_.Stats["curr_items"] != "1000" {
		t.Errorf("stats after filling 1000 keys: %+v", res.Server_)
	}
}

// TestMultiGet: with -multiget each get names several keys; a request
// counts once, each key as a hit or a miss, and every value returned is
// checked (a corrupted one is caught, a miss is not a hit).
func TestMultiGet(t *testing.T) {
	multi := func(addr string, fill bool) *options {
		opt := testOptions(addr)
		opt.multiGet, opt.ratio, opt.fill, opt.requests = 8, "0:1", fill, 400
		return opt
	}
	for _, tc := range []struct {
		name    string
		corrupt func(string, []byte, map[string][]byte) []byte
	}{{"correct", nil}, {"flipped byte", func(_ string, v []byte, _ map[string][]byte) []byte {
		v = bytes.Clone(v)
		v[len(v)-1] ^= 1
		return v
	}}} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := execute(t.Context(), multi(startFake(t, tc.corrupt).ln.Addr().String(), true))
			if err != nil {
				t.Fatal(err)
			}
			if res.Gets != 400 || res.Ops != 400 || res.Hits != 8*400 || res.Misses != 0 || res.HitRatio != 1 {
				t.Errorf("%+v, want 400 gets, 3200 hits", res.counts)
			}
			if got := res.BadValues > 0; got != (tc.corrupt != nil) {
				t.Errorf("bad values %d (%s)", res.BadValues, res.BadSample)
			}
		})
	}

	addr, _ := testserver.Mnemo(t, "-m", "16")
	for _, fill := range []bool{false, true} {
		res, err := execute(t.Context(), multi(addr, fill))
		if err != nil {
			t.Fatal(err)
		}
		hits, misses := uint64(0), uint64(3200)
		if fill {
			hits, misses = 3200, 0
		}
		if res.Gets != 400 || res.Hits != hits || res.Misses != misses || res.BadValues != 0 || res.ProtocolErrors != 0 {
			t.Errorf("against mnemo, fill %v: %+v (%s), want %d hits and %d misses", fill, res.counts, res.FirstError, hits, misses)
		}
	}
}

// TestAgainstMnemoTLS runs a checked load, idle connections and the
// handshake mode over TLS against a mnemo started in-process with -Z.
func TestAgainstMnemoTLS(t *testing.T) {
	pki := testserver.NewPKI(t)
	addr, _ := testserver.Mnemo(t, pki.ServerFlags("ssl_session_cache")...)
	opt := testOptions(addr)
	opt.keys = 1000
	opt.valueSize = 20000 // more than one TLS record
	opt.tls, opt.tlsCA, opt.tlsVersion = true, pki.CACert, "1.3"
	res, err := execute(t.Context(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if res.BadValues != 0 || res.ErrorReplies != 0 || res.ProtocolErrors != 0 || res.Hits != res.Gets || !strings.HasPrefix(res.TLS, "TLS 1.3 ") {
		t.Errorf("over TLS: %+v %q (%s %s)", res.counts, res.TLS, res.FirstError, res.BadSample)
	}
	if res.Server_ == nil || res.Server_.Stats["curr_items"] != "1000" {
		t.Errorf("stats over TLS: %+v", res.Server_)
	}

	opt = testOptions(addr)
	opt.tls, opt.tlsCA, opt.idle = true, pki.CACert, 20
	opt.idleSettle = 0
	if _, err := execute(t.Context(), opt); err != nil {
		t.Fatalf("idle over TLS: %v", err)
	}

	for _, resume := range []bool{false, true} {
		opt = testOptions(addr)
		opt.tls, opt.tlsCA, opt.tlsResume, opt.handshakes, opt.tlsCurve = true, pki.CACert, resume, true, "x25519"
		opt.conns, opt.duration, opt.requests = 2, 0, 20
		res, err = execute(t.Context(), opt)
		if err != nil {
			t.Fatal(err)
		}
		h := res.Handshakes
		if h == nil || h.Conns != 20 || h.Errors != 0 || (h.Resumed > 0) != resume || h.KeyExchange != "X25519" {
			t.Errorf("handshakes (resume %v): %+v %s", resume, h, res.FirstError)
		}
	}
}

// TestTTL: -ttl puts the exptime in every protocol's set.
func TestTTL(t *testing.T) {
	key, val := []byte("k"), []byte("ab")
	for _, tc := range []struct {
		p    protocol
		want string
	}{
		{textProto{30}, "set k 0 30 2\r\nab\r\n"},
		{metaProto{30}, "ms k 2 T30 F0\r\nab\r\n"},
	} {
		if got := string(tc.p.appendSet(nil, key, val, 0)); got != tc.want {
			t.Errorf("%s set = %q, want %q", tc.p.name(), got, tc.want)
		}
	}
	req := binaryProto{30}.appendSet(nil, key, val, 0)
	if got := binary.BigEndian.Uint32(req[binHdr+4:]); got != 30 {
		t.Errorf("binary set exptime %d, want 30", got)
	}
	if _, err := parseFlags([]string{"-ttl", "-1"}, io.Discard); err == nil {
		t.Error("-ttl -1 accepted")
	}
}

// TestSlowLog: -slow-log lists every measured request at or over
// -slow-us (0: all of them), in send order, with its latency and the
// client's own delay in writing it (at most the latency).
func TestSlowLog(t *testing.T) {
	s := startFake(t, nil)
	opt := testOptions(s.ln.Addr().String())
	opt.slowLog, opt.slowUs = filepath.Join(t.TempDir(), "slow.txt"), 0
	begin := time.Now().UnixMicro()
	res, err := execute(t.Context(), opt)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(opt.slowLog)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if uint64(len(lines)) != res.Ops {
		t.Fatalf("%d lines for %d requests", len(lines), res.Ops)
	}
	prev := begin
	for _, l := range lines {
		var at, us, lag int64
		if _, err := fmt.Sscan(l, &at, &us, &lag); err != nil || at < prev || us < 0 || lag < 0 || lag > us {
			t.Fatalf("line %q after send time %d: want a later send time, a latency and a send lag within it (%v)", l, prev, err)
		}
		prev = at
	}
}
