package memcache_test

// Every connection's memory is bounded (issue 10): a client that pipelines
// requests with big replies and never reads them blocks only its own
// connection, which stops reading from it once its pending replies pass
// the flush threshold; the server's heap stays bounded while it does, and
// a canary client on another connection keeps getting its answers. An
// idle connection holds no copy of the last value it read.
//
// The memory figures are the in-process server's live heap (what a forced
// collection finds live), measured against
// a baseline taken once the items are stored. These tests are not
// parallel, so that no other test's heap counts; the deadlines only bound
// a hang.

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mnemo-cache/mnemo/memcache"
)

// hangLimit bounds how long a test waits for an event that a working
// server brings about at once (a blocked write, a closed connection).
const hangLimit = 60 * time.Second

// liveHeap collects garbage and returns the live heap: the bytes the
// collection found live (runtime/metrics /gc/heap/live:bytes), which
// allocations made after it do not change.
func liveHeap() int64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// monitor is the connection a test watches the server with; it counts the
// reply bytes it reads, so that its own share of the server's
// bytes_written can be told apart.
type monitor struct {
	c    *conn
	read uint64
}

// connStates returns how many connections "stats conns" reports in each
// state.
func (m *monitor) connStates() map[string]int {
	m.c.t.Helper()
	m.c.send("stats conns\r\n")
	out := m.c.readUntil("END\r\n")
	m.read += uint64(len(out))
	states := map[string]int{}
	for _, line := range strings.Split(string(out), "\r\n") {
		f := strings.Fields(line)
		if len(f) == 3 && strings.HasSuffix(f[1], ":state") {
			states[f[2]]++
		}
	}
	return states
}

// othersWritten returns the server's bytes_written less what the monitor
// has read: the bytes written to the other connections.
func (m *monitor) othersWritten() uint64 {
	m.c.t.Helper()
	m.c.send("stats\r\n")
	out := m.c.readUntil("END\r\n")
	// The figure counts what was written before this reply.
	before := m.read
	m.read += uint64(len(out))
	for _, line := range strings.Split(string(out), "\r\n") {
		if v, ok := strings.CutPrefix(line, "STAT bytes_written "); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			return n - before
		}
	}
	m.c.t.Fatal("stats has no bytes_written")
	return 0
}

// canary checks that the monitor gets correct answers: a set, a get and
// a meta get, each within the connection's I/O deadline.
func (m *monitor) canary(round int) {
	m.c.t.Helper()
	c := m.c
	v := "canary" + strconv.Itoa(round)
	c.send("set canary 0 0 " + strconv.Itoa(len(v)) + "\r\n" + v + "\r\n")
	c.expect("canary set", "STORED\r\n")
	c.send("get canary\r\n")
	c.expect("canary get", "VALUE canary 0 "+strconv.Itoa(len(v))+"\r\n"+v+"\r\nEND\r\n")
	c.send("mg canary v f\r\n")
	c.expect("canary mg", "VA "+strconv.Itoa(len(v))+" f0\r\n"+v+"\r\n")
	m.read += uint64(len("STORED\r\n") + len("VALUE canary 0 \r\n\r\nEND\r\n") + len("VA  f0\r\n\r\n") + 2*len(strconv.Itoa(len(v))) + 2*len(v))
}

// abuse is one kind of client that pipelines requests with big replies
// and never reads them.
type abuse struct {
	name  string
	opts  opts
	setup func(c *conn) // stores what the requests read
	// request is sent count times in one pipeline.
	request string
	count   int
	// bound is the most the live heap may grow while the client runs.
	bound int64
}

// TestNonReadingClientBlocksOnlyItself runs each abusive client against a
// fresh server: the server writes out what fits in the sockets and then
// blocks in that connection's write (stats conns shows it in
// conn_mwrite), its live heap stays under the bound throughout, and a
// canary connection keeps being answered. memcached 1.6.18 stays at 9-10
// MB RSS against the same clients; mnemo before this test grew by the
// whole reply (2 GB for 4096 meta gets of a 512 KB value).
func TestNonReadingClientBlocksOnlyItself(t *testing.T) {
	skipOnOracle(t, "measures the in-process server's heap")
	big := strings.Repeat("b", 512<<10)
	setBig := func(c *conn) {
		c.send("set big 0 0 " + strconv.Itoa(len(big)) + "\r\n" + big + "\r\n")
		c.expect("set big", "STORED\r\n")
	}
	// Enough long keys that one cachedump is its 2 MB maximum.
	manyKeys := func(c *conn) {
		var b strings.Builder
		pad := strings.Repeat("k", 200)
		for i := range 10000 {
			b.WriteString("set " + pad + strconv.Itoa(i) + " 0 0 1 noreply\r\nx\r\n")
		}
		c.send(b.String() + "mn\r\n")
		c.expect("stored keys", "MN\r\n")
	}
	// 20000 prefixes: one detail dump is about 900 KB.
	manyPrefixes := func(c *conn) {
		var b strings.Builder
		for i := range 20000 {
			b.WriteString("delete prefix" + strconv.Itoa(i) + ":k noreply\r\n")
		}
		c.send(b.String() + "mn\r\n")
		c.expect("counted prefixes", "MN\r\n")
	}
	const mb = 1 << 20
	cases := []abuse{
		{name: "mg of a 512 KB value", setup: setBig, request: "mg big v\r\n", count: 4096, bound: 8 * mb},
		{name: "get of a 512 KB value", setup: setBig, request: "get big\r\n", count: 4096, bound: 8 * mb},
		{name: "multi-key gets of a 512 KB value", setup: setBig, request: "gets big big big big\r\n", count: 1024, bound: 8 * mb},
		{name: "binary GETK of a 512 KB value", setup: setBig, request: req(opGetK, 1, 0, "", "big", ""), count: 4096, bound: 8 * mb},
		{name: "stats cachedump", setup: manyKeys, request: "stats cachedump 1 0\r\n", count: 1000, bound: 16 * mb},
		{name: "stats detail dump", opts: opts{detail: true}, setup: manyPrefixes, request: "stats detail dump\r\n", count: 1000, bound: 16 * mb},
		{name: "binary STAT detail dump", opts: opts{detail: true}, setup: manyPrefixes,
			request: req(opStat, 1, 0, "", "detail dump", ""), count: 1000, bound: 16 * mb},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runAbuse(t, tc) })
	}
}

func runAbuse(t *testing.T, tc abuse) {
	srv := start(t, tc.opts)
	setup := dial(t, srv.addr)
	tc.setup(setup)
	mon := &monitor{c: dial(t, srv.addr)}
	mon.canary(0)
	base := liveHeap()

	a := dial(t, srv.addr)
	sent := make(chan error, 1)
	go func() {
		// The pipeline is small (at most a few hundred KB); the sockets
		// take it whole unless the server stops reading first.
		_, err := io.WriteString(a.nc, strings.Repeat(tc.request, tc.count))
		sent <- err
	}()
	var peak int64
	sample := func() {
		t.Helper()
		g := liveHeap() - base
		peak = max(peak, g)
		if g > tc.bound {
			a.nc.Close() // stop the server's pile-up before failing
			t.Fatalf("live heap grew by %d KB while a client did not read (bound %d KB)", g>>10, tc.bound>>10)
		}
	}
	// Wait until the server is blocked for good in the write to a: a
	// connection in conn_mwrite on two polls in a row, a canary round
	// apart, with nothing written in between.
	deadline := time.Now().Add(hangLimit)
	written := uint64(0)
	for round := 1; ; round++ {
		sample()
		if time.Now().After(deadline) {
			t.Fatalf("the server never blocked writing to the client that does not read")
		}
		mon.canary(round)
		w := mon.othersWritten()
		if mon.connStates()["conn_mwrite"] == 1 && w == written {
			break
		}
		written = w
	}
	// Blocked: its heap stays bounded and the canary is answered.
	for round := 100; round < 105; round++ {
		sample()
		mon.canary(round)
	}
	t.Logf("live heap growth: peak %d KB (bound %d KB)", peak>>10, tc.bound>>10)

	// Hanging up ends the blocked write and the connection.
	a.nc.Close()
	<-sent
	for mon.connStates()["conn_mwrite"] != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the blocked connection did not close after its client hung up")
		}
		time.Sleep(time.Millisecond)
	}
	mon.canary(999)
}

// TestBigRepliesStayInOrder pipelines requests whose replies pass the
// flush threshold many times over, with the client reading as it goes:
// every reply arrives whole and in order.
func TestBigRepliesStayInOrder(t *testing.T) {
	srv := start(t, opts{})
	c := dial(t, srv.addr)
	values := map[string]string{
		"empty": "",
		"one":   "1",
		"small": strings.Repeat("s", 100),
		"mid":   strings.Repeat("m", 300<<10),
		"big":   strings.Repeat("B", 700<<10),
	}
	order := []string{"big", "empty", "mid", "one", "small", "big"}
	for _, k := range order {
		c.send("set " + k + " 7 0 " + strconv.Itoa(len(values[k])) + "\r\n" + values[k] + "\r\n")
		c.expect("set "+k, "STORED\r\n")
	}
	var reqs, want strings.Builder
	for range 4 {
		for _, k := range order {
			v := values[k]
			n := strconv.Itoa(len(v))
			reqs.WriteString("mg " + k + " s v f k Oabc\r\n")
			want.WriteString("VA " + n + " s" + n + " f7 k" + k + " Oabc\r\n" + v + "\r\n")
			reqs.WriteString("mg " + k + " s\r\n")
			want.WriteString("HD s" + n + "\r\n")
		}
		reqs.WriteString("get " + strings.Join(order, " ") + " missing\r\n")
		for _, k := range order {
			want.WriteString("VALUE " + k + " 7 " + strconv.Itoa(len(values[k])) + "\r\n" + values[k] + "\r\n")
		}
		want.WriteString("END\r\n")
		reqs.WriteString("gat 0 big small\r\n")
		want.WriteString("VALUE big 7 " + strconv.Itoa(len(values["big"])) + "\r\n" + values["big"] + "\r\n")
		want.WriteString("VALUE small 7 100\r\n" + values["small"] + "\r\nEND\r\n")
	}
	reqs.WriteString("mn\r\n")
	want.WriteString("MN\r\n")
	go func() { io.WriteString(c.nc, reqs.String()) }()
	c.nc.SetReadDeadline(time.Now().Add(hangLimit))
	got := make([]byte, want.Len())
	if _, err := io.ReadFull(c.nc, got); err != nil {
		t.Fatalf("reading the replies: %v", err)
	}
	if string(got) != want.String() {
		i := 0
		for i < len(got) && got[i] == want.String()[i] {
			i++
		}
		t.Fatalf("replies differ at byte %d of %d:\n got %s\nwant %s", i, len(got), show(got[i:]), show([]byte(want.String()[i:])))
	}

	// The binary protocol: quiet gets with keys, ended by a NOOP.
	var breqs, bwant strings.Builder
	for i := range 3 {
		for j, k := range order {
			opaque := uint32(i*100 + j)
			breqs.WriteString(req(opGetKQ, opaque, 0, "", k, ""))
			bwant.WriteString(item(opGetKQ, opaque, 0, 7, k, values[k]))
			breqs.WriteString(req(opGetQ, opaque, 0, "", "missing", ""))
		}
	}
	breqs.WriteString(req(opNoop, 9, 0, "", "", ""))
	bwant.WriteString(res(opNoop, stOK, 9, 0, "", "", ""))
	b := dial(t, srv.addr)
	go func() { io.WriteString(b.nc, breqs.String()) }()
	b.nc.SetReadDeadline(time.Now().Add(hangLimit))
	got = make([]byte, bwant.Len())
	if _, err := io.ReadFull(b.nc, got); err != nil {
		t.Fatalf("reading the binary replies: %v", err)
	}
	// Blank the CAS of each response before comparing.
	w := []byte(bwant.String())
	for off := 0; off < len(got); {
		body := int(uint32(got[off+8])<<24 | uint32(got[off+9])<<16 | uint32(got[off+10])<<8 | uint32(got[off+11]))
		copy(got[off+16:off+24], make([]byte, 8))
		off += headerBytes + body
	}
	if !bytes.Equal(got, w) {
		i := 0
		for i < len(got) && got[i] == w[i] {
			i++
		}
		t.Fatalf("binary replies differ at byte %d of %d", i, len(got))
	}
}

// TestIdleConnectionsHoldNoValue opens 200 connections that each read a
// 250 KB value and then stay idle: they hold no copy of it. Before,
// each kept a 256 KB value buffer (50 MB for the 200).
func TestIdleConnectionsHoldNoValue(t *testing.T) {
	skipOnOracle(t, "measures the in-process server's heap")
	const (
		conns = 200
		size  = 250 << 10
		// bound is the most the live heap may grow for the idle
		// connections: their sessions and buffers, not their values.
		bound = conns * 32 << 10
	)
	value := strings.Repeat("v", size)
	n := strconv.Itoa(size)
	for _, tc := range []struct {
		name, request, reply string
		skip                 int // reply bytes not compared: a binary header's CAS
	}{
		{"get", "get big\r\n", "VALUE big 0 " + n + "\r\n" + value + "\r\nEND\r\n", 0},
		{"gat", "gat 0 big\r\n", "VALUE big 0 " + n + "\r\n" + value + "\r\nEND\r\n", 0},
		{"mg", "mg big v\r\n", "VA " + n + "\r\n" + value + "\r\n", 0},
		{"binary GET", req(opGet, 1, 0, "", "big", ""), item(opGet, 1, 1, 0, "", value), headerBytes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := start(t, opts{})
			c := dial(t, srv.addr)
			c.send("set big 0 0 " + n + "\r\n" + value + "\r\n")
			c.expect("set big", "STORED\r\n")
			base := liveHeap()
			for range conns {
				ic := dial(t, srv.addr)
				ic.send(tc.request)
				if got := ic.read(len(tc.reply)); !bytes.Equal(got[tc.skip:], []byte(tc.reply[tc.skip:])) {
					t.Fatalf("reply %s, want %s", show(got), show([]byte(tc.reply)))
				}
			}
			c.send("mn\r\n")
			c.expect("mn", "MN\r\n")
			g := liveHeap() - base
			t.Logf("%d idle connections after a %d KB %s: live heap grew by %d KB (bound %d KB)", conns, size>>10, tc.name, g>>10, bound>>10)
			if g > bound {
				t.Fatalf("%d idle connections hold %d KB (bound %d KB)", conns, g>>10, bound>>10)
			}
		})
	}
}

// TestBinaryHugeBodyDropsOldItem sends a SET whose body announces 2^31
// bytes or more: memcached answers E2BIG, drops the old item (as for any
// too-large set) and closes the connection.
func TestBinaryHugeBodyDropsOldItem(t *testing.T) {
	for _, bytewise := range []bool{false, true} {
		t.Run("bytewise="+strconv.FormatBool(bytewise), func(t *testing.T) {
			srv := start(t, opts{})
			c := dial(t, srv.addr)
			c.send(req(opSet, 1, 0, store(5, 0), "k", "v"))
			c.expect("set k", res(opSet, stOK, 1, 1, "", "", "")[:16])
			c.read(8) // the CAS
			huge := []byte(req(opSet, 2, 0, store(0, 0), "k", "vvvv"))
			// The body length: extras, key and a 2^31-byte value.
			bodyLen := uint32(8 + 1 + 1<<31)
			huge[8], huge[9], huge[10], huge[11] = byte(bodyLen>>24), byte(bodyLen>>16), byte(bodyLen>>8), byte(bodyLen)
			// Only the header, extras and key: the server answers and
			// closes once it has the key, so value bytes written after
			// that could meet a closed socket (EPIPE, or a reset that
			// loses the reply).
			huge = huge[:len(huge)-len("vvvv")]
			if bytewise {
				for i := range huge {
					c.send(string(huge[i : i+1]))
				}
			} else {
				c.send(string(huge))
			}
			c.expect("E2BIG", errRes(opSet, stTooLarge, 2))
			// mnemo closes the connection; memcached reads the value as
			// the next request, and closes on its bad magic or, here, at
			// the end of the input.
			if rest := c.rest(true); len(rest) != 0 {
				t.Fatalf("bytes after E2BIG: %s", show(rest))
			}
			d := dial(t, srv.addr)
			d.send(req(opGet, 3, 0, "", "k", ""))
			d.expect("the old item is gone", errRes(opGet, stNotFound, 3))
		})
	}
}

// TestDumpsEscapeKeys stores keys with CR LF and spaces through the meta
// protocol's base64 keys: stats cachedump and stats detail dump show them
// in base64 with " b" at the end of the line, so that no key can forge a
// line (memcached writes them raw).
func TestDumpsEscapeKeys(t *testing.T) {
	skipOnOracle(t, "memcached writes such keys raw")
	srv := start(t, opts{detail: true})
	c := dial(t, srv.addr)
	key := "x\r\nEND\r\nITEM forged [1 b; 0 s]:k"
	b64 := base64.StdEncoding.EncodeToString([]byte(key))
	prefix := base64.StdEncoding.EncodeToString([]byte("x\r\nEND\r\nITEM forged [1 b; 0 s]"))
	c.send("ms " + b64 + " 2 b\r\nhi\r\n")
	c.expect("ms", "HD\r\n")
	c.send("stats cachedump 1 0\r\n")
	c.expect("cachedump", "ITEM "+b64+" [2 b; 0 s] b\r\nEND\r\n")
	c.send("mg " + b64 + " b v\r\n")
	c.expect("mg", "VA 2\r\nhi\r\n")
	c.send("stats detail dump\r\n")
	c.expect("detail dump", "PREFIX "+prefix+" get 0 hit 0 set 1 del 0 b\r\nEND\r\n")
	// A plain key is shown as it is.
	c.send("set plain:k 0 0 1\r\nx\r\nmg plain:k\r\nmd " + b64 + " b\r\nstats cachedump 1 0\r\n")
	c.expect("plain key", "STORED\r\nHD\r\nHD\r\nITEM plain:k [1 b; 0 s]\r\nEND\r\n")
}

// TestCheckSASLPasswordFile: a SASL password database that is not set,
// cannot be read or names no user stops the start.
func TestCheckSASLPasswordFile(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(dir, "good", "alice:secret\n")
	for _, tc := range []struct {
		name, path string
		ok         bool
		is         error
	}{
		{"valid", good, true, nil},
		{"not set", "", false, nil},
		{"missing", filepath.Join(dir, "missing"), false, os.ErrNotExist},
		{"a directory", dir, false, nil},
		{"empty", writeFile(dir, "empty", ""), false, memcache.ErrNoSASLUsers},
		{"no user line", writeFile(dir, "nouser", "\n\njust a line\n"), false, memcache.ErrNoSASLUsers},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := memcache.CheckSASLPasswordFile(tc.path)
			switch {
			case tc.ok && err != nil:
				t.Fatalf("CheckSASLPasswordFile(%q) = %v, want nil", tc.path, err)
			case !tc.ok && err == nil:
				t.Fatalf("CheckSASLPasswordFile(%q) = nil, want an error", tc.path)
			case tc.is != nil && !errors.Is(err, tc.is):
				t.Fatalf("CheckSASLPasswordFile(%q) = %v, want %v", tc.path, err, tc.is)
			}
			if err != nil && strings.Contains(err.Error(), "just a line") {
				t.Fatalf("the error shows the file's content: %v", err)
			}
		})
	}
}
