package memcache_test

import (
	"bufio"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLRUCrawler covers lru_crawler's replies: argument errors, class
// lists, the crawler controls, -X, and dumps of an empty cache, all as
// memcached 1.6.18 answers them.
func TestLRUCrawler(t *testing.T) {
	// seq makes a transcript of one request per step: memcached answers
	// "ERROR cannot pipeline other commands before metadump" to a dump
	// sent behind replies it has not written yet, and answers requests
	// pipelined after a dump only when more bytes arrive.
	seq := func(name string, o opts, pairs ...string) transcript {
		tc := transcript{name: name, opts: o}
		for i := 0; i < len(pairs); i += 2 {
			tc.steps = append(tc.steps, step{send: pairs[i], want: pairs[i+1]})
		}
		return tc
	}
	const (
		badClass = "BADCLASS invalid class id\r\n"
		badFmt   = "CLIENT_ERROR bad command line format\r\n"
		busy     = "memcached's LRU maintainer runs crawls of its own, so a crawl may answer BUSY"
		disabled = "CLIENT_ERROR lru crawler disabled\r\n"
	)
	run(t, []transcript{
		one("malformed",
			"lru_crawler\r\nlru_crawler foo\r\nlru_crawler foo bar\r\nlru_crawler metadump\r\n"+
				"lru_crawler metadump all extra\r\nlru_crawler crawl\r\nlru_crawler crawl all noreply\r\n"+
				"lru_crawler enable noreply\r\nlru_crawler disable now\r\nlru_crawler tocrawl 1 2\r\n"+
				"LRU_CRAWLER metadump all\r\nlru_crawler METADUMP all\r\n",
			strings.Repeat("ERROR\r\n", 12)),
		seq("bad classes", opts{},
			"lru_crawler metadump 0\r\n", badClass,
			"lru_crawler metadump 64\r\n", badClass,
			"lru_crawler metadump x\r\n", badClass,
			"lru_crawler metadump -1\r\n", badClass,
			"lru_crawler metadump ALL\r\n", badClass,
			"lru_crawler metadump 1,x\r\n", badClass,
			"lru_crawler crawl 0\r\n", badClass,
			"lru_crawler crawl all,1\r\n", badClass),
		// memcached answers BUSY to a crawl while another runs, its own
		// included: these replies are from its source (proto_text.c).
		{name: "crawl all", steps: []step{{send: "lru_crawler crawl all\r\n", want: "OK\r\n"}}, mnemoOnly: busy},
		{name: "crawl classes", steps: []step{{send: "lru_crawler crawl 1,63\r\n", want: "OK\r\n"}}, mnemoOnly: busy},
		{name: "crawl hash", steps: []step{{send: "lru_crawler crawl hash\r\n", want: "ERROR an unknown error happened\r\n"}}, mnemoOnly: busy},
		{name: "crawl again", steps: []step{{send: "lru_crawler crawl all\r\nlru_crawler crawl 1\r\n", want: "OK\r\nOK\r\n"}},
			mnemoOnly: "memcached answers BUSY while its crawl runs; mnemo's sweep always runs"},
		{name: "crawl of no class", steps: []step{{send: "lru_crawler crawl ,\r\n", want: "NOTSTARTED no items to crawl\r\n"}}, mnemoOnly: busy},
		// memcached wedges its crawler after this one (its client is never
		// released): a later dump answers "ERROR an unknown error
		// happened". mnemo does not.
		one("metadump of no class", "lru_crawler metadump ,\r\n", "NOTSTARTED no items to crawl\r\n"),
		one("tocrawl and sleep",
			"lru_crawler tocrawl 10\r\nlru_crawler tocrawl 0\r\nlru_crawler tocrawl 4294967296\r\n"+
				"lru_crawler tocrawl -1\r\nlru_crawler tocrawl x\r\n"+
				"lru_crawler sleep 100\r\nlru_crawler sleep 0\r\nlru_crawler sleep 1000000\r\n"+
				"lru_crawler sleep 1000001\r\nlru_crawler sleep x\r\nlru_crawler sleep -1\r\n",
			"OK\r\nOK\r\nOK\r\n"+badFmt+badFmt+
				"OK\r\nOK\r\nOK\r\nCLIENT_ERROR sleep must be one second or less\r\n"+badFmt+badFmt),
		seq("metadump of an empty cache", opts{},
			"lru_crawler metadump all\r\n", "END\r\n",
			"lru_crawler metadump hash\r\n", "END\r\n",
			"lru_crawler metadump 1\r\n", "END\r\n",
			"lru_crawler metadump 2,3\r\n", "END\r\n",
			"lru_crawler metadump 63\r\n", "END\r\n"),
		seq("metadump of a class with no items", opts{},
			"set k 0 0 1\r\na\r\n", "STORED\r\n",
			"lru_crawler metadump 2\r\n", "END\r\n",
			"lru_crawler metadump 5,,7\r\n", "END\r\n"),
		seq("enable when enabled, disable", opts{},
			"lru_crawler enable\r\n", "ERROR failed to start lru crawler thread\r\n",
			"lru_crawler disable\r\nlru_crawler disable\r\n", "OK\r\nOK\r\n"),
		// memcached's disable takes effect when its crawler thread has
		// stopped, and a dump right after enable answers "ERROR an
		// unknown error happened" until the new thread is up.
		{name: "enable and disable", mnemoOnly: "memcached's crawler thread stops and starts in the background", steps: seq("", opts{},
			"lru_crawler disable\r\n", "OK\r\n",
			"lru_crawler metadump all\r\n", disabled,
			"lru_crawler metadump 0\r\n", disabled,
			"lru_crawler crawl all\r\n", disabled,
			"lru_crawler tocrawl 5\r\nlru_crawler sleep 5\r\n", "OK\r\nOK\r\n",
			"lru_crawler enable\r\n", "OK\r\n",
			"lru_crawler metadump all\r\n", "END\r\n",
			"lru_crawler crawl 1\r\n", "OK\r\n").steps},
		seq("metadump disabled (-X)", opts{noDumping: true},
			"set k 0 0 1\r\na\r\n", "STORED\r\n",
			"lru_crawler metadump all\r\n", "ERROR metadump not allowed\r\n",
			"lru_crawler metadump 0\r\n", "ERROR metadump not allowed\r\n"),
		{name: "requests pipelined around a metadump",
			steps: []step{{send: "set foo 0 0 1\r\na\r\nlru_crawler metadump all\r\nget foo\r\nlru_crawler crawl all\r\n",
				want: "STORED\r\nkey=foo exp=-1 la=" + strconv.Itoa(epoch) + " cas=1 fetch=no cls=1 size=63\nEND\r\nVALUE foo 0 1\r\na\r\nEND\r\nOK\r\n"}},
			mnemoOnly: "memcached refuses a metadump behind unwritten replies and answers what follows it only when more bytes come"},

		// mgdump is later memcached's (1.6.19); 1.6.18 answers ERROR.
		{name: "mgdump",
			steps: []step{{send: "set foo 0 0 1\r\na\r\nlru_crawler mgdump all\r\nlru_crawler mgdump 2\r\nlru_crawler mgdump 0\r\n" +
				"lru_crawler mgdump\r\nmgdump\r\n",
				want: "STORED\r\nmg foo\r\nEN\r\nEN\r\nBADCLASS invalid class id\r\nERROR\r\nERROR\r\n"}},
			mnemoOnly: "mgdump is newer than memcached 1.6.18"},
		{name: "mgdump of a key that would break the line",
			steps: []step{{send: "ms IGE= 1 b\r\nx\r\nlru_crawler mgdump hash\r\nmg IGE= b v\r\n",
				want: "HD\r\nmg IGE= b\r\nEN\r\nVA 1\r\nx\r\n"}},
			mnemoOnly: "mgdump is newer than memcached 1.6.18"},
		{name: "mgdump disabled (-X)",
			opts: opts{noDumping: true},
			steps: []step{{send: "lru_crawler mgdump all\r\nlru_crawler disable\r\nlru_crawler mgdump all\r\n",
				want: "ERROR key dump not allowed\r\nOK\r\nCLIENT_ERROR lru crawler disabled\r\n"}},
			mnemoOnly: "mgdump is newer than memcached 1.6.18"},

		// Exact lines, on the fake clock.
		{name: "metadump line",
			mnemoOnly: "la is the fake clock's time (TestMetadumpLines compares with memcached)",
			steps: []step{
				{send: "set foo 5 0 3\r\nbar\r\nlru_crawler metadump all\r\n",
					want: "STORED\r\nkey=foo exp=-1 la=" + strconv.Itoa(epoch) + " cas=1 fetch=no cls=1 size=69\nEND\r\n"},
				{advance: 3, send: "get foo\r\nlru_crawler metadump 1\r\n",
					want: "VALUE foo 5 3\r\nbar\r\nEND\r\nkey=foo exp=-1 la=" + strconv.Itoa(epoch+3) + " cas=1 fetch=yes cls=1 size=69\nEND\r\n"},
			}},
		{name: "metadump line with an expiry time and an encoded key",
			steps: []step{{advance: 1, send: "set b%20\xc3\xa9~-._ 0 100 1\r\nx\r\nlru_crawler metadump hash\r\n",
				want: "STORED\r\nkey=b%2520%C3%A9~-._ exp=" + strconv.Itoa(epoch+101) + " la=" + strconv.Itoa(epoch+1) + " cas=1 fetch=no cls=1 size=70\nEND\r\n"}}},
		{name: "metadump line without CAS (-C)",
			opts: opts{noCAS: true},
			steps: []step{{send: "set foo 0 0 3\r\nbar\r\nlru_crawler metadump all\r\n",
				want: "STORED\r\nkey=foo exp=-1 la=" + strconv.Itoa(epoch) + " cas=0 fetch=no cls=1 size=57\nEND\r\n"}},
			mnemoOnly: "la is the fake clock's time (TestMetadumpLines compares with memcached)"},
		{name: "metadump leaves out expired and flushed items",
			steps: []step{
				{send: "set a 0 2 1\r\na\r\nset b 0 0 1\r\nb\r\nflush_all\r\nset c 0 0 1\r\nc\r\n",
					want: "STORED\r\nSTORED\r\nOK\r\nSTORED\r\n"},
				{advance: 3, send: "lru_crawler metadump all\r\n",
					want: "key=c exp=-1 la=" + strconv.Itoa(epoch) + " cas=4 fetch=no cls=1 size=61\nEND\r\n"},
			}},
	})
}

// metadumpLine is one metadump line, its times made relative: la as T,
// exp as T+<exp-la>, so that memcached's wall-clock times compare.
var metadumpLine = regexp.MustCompile(`^key=(\S+) exp=(-1|\d+) la=(\d+) (cas=\d+ fetch=(?:yes|no) cls=\d+ size=\d+)$`)

// readMetadump reads a metadump to its END and returns its lines with
// relative times, sorted (memcached lists in LRU order, mnemo in hash
// order).
func readMetadump(t *testing.T, r *bufio.Reader) []string {
	t.Helper()
	var lines []string
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("metadump: %v after %d lines (%q)", err, len(lines), l)
		}
		if l == "END\r\n" {
			break
		}
		m := metadumpLine.FindStringSubmatch(strings.TrimSuffix(l, "\n"))
		if m == nil || strings.HasSuffix(l, "\r\n") {
			t.Fatalf("metadump line %q is not in memcached's format", l)
		}
		la, _ := strconv.ParseInt(m[3], 10, 64)
		exp := m[2]
		if exp != "-1" {
			e, _ := strconv.ParseInt(exp, 10, 64)
			exp = fmt.Sprintf("T%+d", e-la)
		}
		lines = append(lines, fmt.Sprintf("key=%s exp=%s la=T %s", m[1], exp, m[4]))
	}
	slices.Sort(lines)
	return lines
}

// TestMetadumpLines checks whole metadumps against memcached (with
// MEMCACHE_ORACLE=1): the same lines up to the clock.
func TestMetadumpLines(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    opts
		want []string
	}{
		{"default", opts{}, []string{
			"key=%C3%A9t%E9 exp=-1 la=T cas=3 fetch=no cls=1 size=64",
			"key=b%2520x exp=T+100 la=T cas=2 fetch=no cls=1 size=65",
			"key=foo exp=-1 la=T cas=1 fetch=yes cls=1 size=69",
		}},
		{"-C", opts{noCAS: true}, []string{
			"key=%C3%A9t%E9 exp=-1 la=T cas=0 fetch=no cls=1 size=56",
			"key=b%2520x exp=T+100 la=T cas=0 fetch=no cls=1 size=57",
			"key=foo exp=-1 la=T cas=0 fetch=yes cls=1 size=61",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := start(t, tc.o)
			c := dial(t, srv.addr)
			c.send("set foo 5 0 3\r\nbar\r\nset b%20x 0 100 1\r\nx\r\nset \xc3\xa9t\xe9 0 0 1\r\ny\r\nget foo\r\n")
			c.expect("sets and get", "STORED\r\nSTORED\r\nSTORED\r\nVALUE foo 5 3\r\nbar\r\nEND\r\n")
			r := bufio.NewReader(c.nc)
			for _, classes := range []string{"all", "hash", "1", "1,2"} {
				c.send("lru_crawler metadump " + classes + "\r\n")
				c.nc.SetReadDeadline(time.Now().Add(ioTimeout))
				if got := readMetadump(t, r); !slices.Equal(got, tc.want) {
					t.Errorf("metadump %s:\n got %q\nwant %q", classes, got, tc.want)
				}
			}
		})
	}
}

// TestMetadumpSlowReader checks that a client that stops reading its
// metadump holds up only itself: once the server is blocked writing the
// dump to it, another client stores, reads, deletes and asks for stats;
// then the slow client reads the rest, each item once, and END.
func TestMetadumpSlowReader(t *testing.T) {
	skipOnOracle(t, "waits for mnemo's connection state conn_mwrite")
	srv := start(t, opts{})
	// More than the socket buffers hold: 30000 lines of about 250 bytes
	// (the slow client's receive buffer is made small below; the server's
	// send buffer is at most net.core.wmem_max, 4 MiB by default).
	const n = 30000
	pad := strings.Repeat("k", 200)
	key := func(i int) string { return fmt.Sprintf("%s%06d", pad, i) }
	loader := dial(t, srv.addr)
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "set %s 0 0 1 noreply\r\nv\r\n", key(i))
	}
	loader.send(b.String() + "version\r\n")
	loader.readUntil("\r\n")

	slow := dial(t, srv.addr)
	if err := slow.nc.SetReadBuffer(16 << 10); err != nil {
		t.Fatal(err)
	}
	slow.send("lru_crawler metadump all\r\n")
	first := slow.read(4)
	if string(first) != "key=" {
		t.Fatalf("metadump starts with %q", first)
	}

	// Wait until the server is blocked writing to the slow client (the
	// one-minute bound only stops a hang).
	canary := dial(t, srv.addr)
	slowAddr := "tcp:" + slow.nc.LocalAddr().String()
	deadline := time.Now().Add(time.Minute)
	for {
		canary.send("stats conns\r\n")
		conns := string(canary.readUntil("END\r\n"))
		id := ""
		for l := range strings.SplitSeq(conns, "\r\n") {
			if f := strings.Fields(l); len(f) == 3 && f[2] == slowAddr && strings.HasSuffix(f[1], ":addr") {
				id = strings.TrimSuffix(f[1], ":addr")
			}
		}
		if id != "" && strings.Contains(conns, "STAT "+id+":state conn_mwrite\r\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server never blocked writing the metadump; stats conns:\n%s", conns)
		}
		time.Sleep(time.Millisecond)
	}

	canary.send("set canary 0 0 2\r\nhi\r\nget canary " + key(7) + "\r\ndelete " + key(8) + "\r\nset " + key(9) + " 0 0 1\r\nw\r\n")
	canary.expect("canary while the metadump is blocked",
		"STORED\r\nVALUE canary 0 2\r\nhi\r\nVALUE "+key(7)+" 0 1\r\nv\r\nEND\r\nDELETED\r\nSTORED\r\n")
	canary.send("stats\r\n")
	canary.readUntil("END\r\n")
	// Stores into every shard of the index (256 by default).
	b.Reset()
	for i := range 5000 {
		fmt.Fprintf(&b, "set canary%d 0 0 1 noreply\r\nc\r\n", i)
	}
	canary.send(b.String() + "get canary4999\r\n")
	canary.expect("canary stores while the metadump is blocked", "VALUE canary4999 0 1\r\nc\r\nEND\r\n")

	// The slow client reads the rest.
	slow.nc.SetReadDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReaderSize(slow.nc, 64<<10)
	seen := map[string]int{}
	line := "key="
	for {
		rest, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("metadump: %v after %d keys", err, len(seen))
		}
		line += rest
		if line == "END\r\n" {
			break
		}
		f := strings.Fields(line)
		if len(f) != 7 || !strings.HasPrefix(f[0], "key=") {
			t.Fatalf("bad metadump line %q", line)
		}
		seen[strings.TrimPrefix(f[0], "key=")]++
		line = ""
	}
	for i := range n {
		k := key(i)
		if c := seen[k]; c > 1 || c == 0 && i != 8 && i != 9 {
			t.Errorf("metadump listed %s %d times", k, c)
		}
	}
	// The connection serves requests again.
	slow.send("get canary\r\n")
	slow.expect("get after the metadump", "VALUE canary 0 2\r\nhi\r\nEND\r\n")
}
