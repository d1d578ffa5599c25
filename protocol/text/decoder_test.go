package text

import (
	"strings"
	"testing"
)

var (
	key250 = strings.Repeat("k", 250)
	key251 = strings.Repeat("k", 251)
)

func newDefault() *Decoder { return NewDecoder(0) }

// The expected results below were checked against memcached 1.6.18.
var decodeTests = []struct {
	name string
	in   string
	want []string
}{
	// Line handling and tokenizing.
	{"empty line", "\r\n", []string{"ERR ERROR"}},
	{"bare newline", "\n", []string{"ERR ERROR"}},
	{"lf only", "version\n", []string{"version"}},
	{"cr stripped once", "version\r\r\n", []string{"ERR ERROR"}},
	{"cr kept in key", "get a\r\r\n", []string{"get k=a\r"}},
	{"one char command", "x\r\n", []string{"ERR ERROR"}},
	{"unknown", "foo bar\r\n", []string{"ERR ERROR"}},
	{"case sensitive", "GET a\r\n", []string{"ERR ERROR"}},
	{"tab is not a separator", "get\ta\r\n", []string{"ERR ERROR"}},
	{"spaces", "   get   a    b  \r\n", []string{"get k=a keys=[a b]"}},
	{"nul ends the line", "get a\x00b c\r\n", []string{"get k=a"}},
	{"nul in command", "get\x00 a\r\n", []string{"ERR ERROR"}},
	{"version args ignored", "version foo bar\r\n", []string{"version"}},
	{"quit", "quit\r\n", []string{"quit"}},
	{"pipelined", "get a\r\nversion\r\nset k 1 2 3\r\nabc\r\ndelete k\r\n",
		[]string{"get k=a", "version", `set k=k f=1 e=2 data="abc"`, "delete k=k"}},

	// HTTP requests close the connection silently.
	{"http", "GET / HTTP/1.1\r\nversion\r\n", []string{"ERR text: HTTP request silent close"}},
	{"http alone", "HTTP/1.0\r\n", []string{"ERR text: HTTP request silent close"}},
	{"http not last", "xx HTTP/1.0 foo\r\n", []string{"ERR ERROR"}},
	{"http one char command", "x foo HTTP/1.0\r\n", []string{"ERR ERROR"}},
	{"http g command", "gxx HTTP/1.0\r\n", []string{"ERR ERROR"}},
	{"http 23rd token", "GET / a b c d e f g h i j k l m n o p q r s t HTTP/1.1 x y z\r\n",
		[]string{"ERR text: HTTP request silent close"}},
	{"http 24th token", "GET / HTTP/1.1 a b c d e f g h i j k l m n o p q r s t u v w x y z\r\n",
		[]string{"ERR ERROR"}},
	{"http bget", "bgot HTTP/1.0\r\n", []string{"ERR text: HTTP request silent close"}},

	// Retrieval.
	{"get", "get a\r\n", []string{"get k=a"}},
	{"gets", "gets a b\r\n", []string{"gets k=a keys=[a b]"}},
	{"bget", "bget a\r\n", []string{`get name="bget" k=a`}},
	{"get no key", "get\r\n", []string{"ERR ERROR"}},
	{"get only spaces", "get   \r\n", []string{"ERR ERROR"}},
	{"get key 250", "get " + key250 + "\r\n", []string{"get k=" + key250}},
	{"get key 251", "get " + key251 + "\r\n", []string{"ERR CLIENT_ERROR bad command line format (get)"}},
	{"get key 251 later", "get a " + key251 + " b\r\nversion\r\n",
		[]string{"ERR CLIENT_ERROR bad command line format (get)", "version"}},
	{"get 30 keys", "get " + strings.Repeat("a ", 29) + "z\r\n",
		[]string{"get k=a keys=[" + strings.Repeat("a ", 29) + "z]"}},
	{"get noreply is a key", "get a noreply\r\n", []string{"get k=a keys=[a noreply]"}},
	{"get http", "get / HTTP/1.1\r\n", []string{"get k=/ keys=[/ HTTP/1.1]"}},
	{"gat", "gat 10 a b\r\n", []string{"gat k=a keys=[a b] e=10"}},
	{"gats", "gats -1 a\r\n", []string{"gats k=a e=-1"}},
	{"gat no key", "gat 10\r\n", []string{"gat e=10"}},
	{"gat no exptime", "gat\r\n", []string{"ERR ERROR"}},
	{"gat bad exptime", "gat x a\r\n", []string{"ERR CLIENT_ERROR invalid exptime argument (gat)"}},
	{"gat key 251", "gat 1 " + key251 + "\r\n", []string{"ERR CLIENT_ERROR bad command line format (gat)"}},
	{"gat exptime truncated", "gat 4294967297 a\r\n", []string{"gat k=a e=1"}},
	{"unknown g", "gimme a\r\n", []string{"ERR ERROR"}},

	// Storage.
	{"set", "set a 5 10 3\r\nabc\r\n", []string{`set k=a f=5 e=10 data="abc"`}},
	{"set lf line", "set a 0 0 1\nx\r\n", []string{`set k=a data="x"`}},
	{"set empty value", "set a 0 0 0\r\n\r\n", []string{`set k=a data=""`}},
	{"set value with crlf", "set a 0 0 4\r\n\r\n\r\n\r\n", []string{`set k=a data="\r\n\r\n"`}},
	{"set noreply", "set a 0 0 1 noreply\r\nx\r\n", []string{`set k=a data="x" noreply`}},
	{"set extra token ignored", "set a 0 0 1 foo\r\nx\r\n", []string{`set k=a data="x"`}},
	{"set spaces", "set  f   0 0 1 \r\nx\r\n", []string{`set k=f data="x"`}},
	{"add", "add a 0 0 1\r\nx\r\n", []string{`add k=a data="x"`}},
	{"replace", "replace a 0 0 1\r\nx\r\n", []string{`replace k=a data="x"`}},
	{"append", "append a 0 0 1\r\nx\r\n", []string{`append k=a data="x"`}},
	{"prepend", "prepend a 0 0 1\r\nx\r\n", []string{`prepend k=a data="x"`}},
	{"cas", "cas a 1 2 1 99\r\nx\r\n", []string{`cas k=a f=1 e=2 c=99 data="x"`}},
	{"cas noreply", "cas a 0 0 1 18446744073709551615 noreply\r\nx\r\n",
		[]string{`cas k=a c=18446744073709551615 data="x" noreply`}},
	{"cas missing unique", "cas a 0 0 1\r\nx\r\n", []string{"ERR ERROR (cas)", "ERR ERROR"}},
	{"cas bad unique", "cas a 0 0 1 -1\r\nx\r\n",
		[]string{"ERR CLIENT_ERROR bad command line format (cas)", "ERR ERROR"}},
	{"set too few", "set a 0 0\r\n", []string{"ERR ERROR (set)"}},
	{"set too many", "set a 0 0 1 2 3\r\n", []string{"ERR ERROR (set)"}},
	{"set 24 tokens", "set a 0 0 1 noreply a b c d e f g h i j k l m n o p q r s t u v w x y z\r\n",
		[]string{"ERR ERROR (set)"}},
	{"set key 250", "set " + key250 + " 0 0 1\r\nx\r\n", []string{`set k=` + key250 + ` data="x"`}},
	{"set key 251 not swallowed", "set " + key251 + " 0 0 1\r\nx\r\n",
		[]string{"ERR CLIENT_ERROR bad command line format (set)", "ERR ERROR"}},
	{"set key 251 noreply", "set " + key251 + " 0 0 1 noreply\r\nversion\r\n",
		[]string{"ERR CLIENT_ERROR bad command line format silent (set)", "version"}},
	{"set negative length", "set a 0 0 -1\r\n", []string{"ERR CLIENT_ERROR bad command line format (set)"}},
	{"set length above int max-2", "set a 0 0 2147483646\r\n", []string{"ERR CLIENT_ERROR bad command line format (set)"}},
	{"set length wraps negative", "set a 0 0 4294967295\r\n", []string{"ERR CLIENT_ERROR bad command line format (set)"}},
	{"set length 2^40 is 0", "set b 0 0 1099511627776\r\n\r\n", []string{`set k=b data=""`}},
	{"set length 2^32+1 is 1", "set c 0 0 4294967297\r\nx\r\n", []string{`set k=c data="x"`}},
	{"set length overflows 64 bits", "set a 0 0 99999999999999999999\r\n", []string{"ERR CLIENT_ERROR bad command line format (set)"}},
	{"set flags 2^32 is 0", "set a 4294967296 0 1\r\nx\r\n", []string{`set k=a data="x"`}},
	{"set flags max", "set a 4294967295 0 1\r\nx\r\n", []string{`set k=a f=4294967295 data="x"`}},
	{"set flags negative", "set a -1 0 1\r\nx\r\n",
		[]string{"ERR CLIENT_ERROR bad command line format (set)", "ERR ERROR"}},
	{"set signs", "set d -0 0 +1\r\nx\r\n", []string{`set k=d data="x"`}},
	{"set flags garbage", "set a 1x 0 1\r\nx\r\n",
		[]string{"ERR CLIENT_ERROR bad command line format (set)", "ERR ERROR"}},
	{"set flags hex", "set a 0x1 0 1\r\nx\r\n",
		[]string{"ERR CLIENT_ERROR bad command line format (set)", "ERR ERROR"}},
	{"set flags tab garbage", "set a 1\tjunk 0 1\r\nx\r\n", []string{`set k=a f=1 data="x"`}},
	{"set exptime negative", "set a 0 -1 1\r\nx\r\n", []string{`set k=a e=-1 data="x"`}},
	{"set exptime truncated", "set a 0 4294967295 1\r\nx\r\n", []string{`set k=a e=-1 data="x"`}},
	{"set bad noreply", "set a 0 0 abc noreply\r\nversion\r\n",
		[]string{"ERR CLIENT_ERROR bad command line format silent (set)", "version"}},
	{"set noreply as length", "set a 0 0 noreply\r\nversion\r\n",
		[]string{"ERR CLIENT_ERROR bad command line format silent (set)", "version"}},
	{"bad data chunk", "set e 0 0 1\r\nabc\r\n",
		[]string{"ERR CLIENT_ERROR bad data chunk (set)", "ERR ERROR"}},
	{"bad data chunk noreply", "set e 0 0 1 noreply\r\nabc\r\nget e\r\n",
		[]string{"ERR CLIENT_ERROR bad data chunk silent (set)", "ERR ERROR", "get k=e"}},
	{"bad data chunk lf", "set a 0 0 1\nx\n\r\nversion\r\n",
		[]string{"ERR CLIENT_ERROR bad data chunk (set)", "ERR ERROR", "version"}},
	{"bad data chunk cr", "set a 0 0 1\r\nx\rversion\r\n",
		[]string{"ERR CLIENT_ERROR bad data chunk (set)", "ERR ERROR"}},
	{"nul ends storage line", "set a 0 0 1\x00junk\r\n2\r\n", []string{`set k=a data="2"`}},
	{"value holds binary", "set a 0 0 3\r\n\x00\n\r\r\n", []string{`set k=a data="\x00\n\r"`}},

	// incr, decr, touch, delete.
	{"incr", "incr a 5\r\n", []string{"incr k=a d=5"}},
	{"decr noreply", "decr a 18446744073709551615 noreply\r\n", []string{"decr k=a d=18446744073709551615 noreply"}},
	{"incr bad delta", "incr a abc\r\n", []string{"ERR CLIENT_ERROR invalid numeric delta argument (incr)"}},
	{"incr negative", "incr a -1\r\n", []string{"ERR CLIENT_ERROR invalid numeric delta argument (incr)"}},
	{"incr minus zero", "incr a -0\r\n", []string{"incr k=a"}},
	{"incr overflow", "incr a 18446744073709551616\r\n", []string{"ERR CLIENT_ERROR invalid numeric delta argument (incr)"}},
	{"incr wrapped negative", "incr a -18446744073709551615\r\n", []string{"incr k=a d=1"}},
	{"incr bad noreply", "incr a x noreply\r\nversion\r\n",
		[]string{"ERR CLIENT_ERROR invalid numeric delta argument silent (incr)", "version"}},
	{"incr too few", "incr a\r\n", []string{"ERR ERROR (incr)"}},
	{"decr too many", "decr a 1 2 3\r\n", []string{"ERR ERROR (decr)"}},
	{"incr key 251", "incr " + key251 + " 1\r\n", []string{"ERR CLIENT_ERROR bad command line format (incr)"}},
	{"incr third token not noreply", "incr a 1 foo\r\n", []string{"incr k=a d=1"}},
	{"touch", "touch a 10\r\n", []string{"touch k=a e=10"}},
	{"touch noreply", "touch a 1 noreply\r\n", []string{"touch k=a e=1 noreply"}},
	{"touch bad", "touch a x\r\n", []string{"ERR CLIENT_ERROR invalid exptime argument (touch)"}},
	{"touch noreply as exptime", "touch a noreply\r\nversion\r\n",
		[]string{"ERR CLIENT_ERROR invalid exptime argument silent (touch)", "version"}},
	{"incr noreply as delta", "incr a noreply\r\n",
		[]string{"ERR CLIENT_ERROR invalid numeric delta argument silent (incr)"}},
	{"gat noreply is not special", "gat noreply a\r\n", []string{"ERR CLIENT_ERROR invalid exptime argument (gat)"}},
	{"cas noreply as unique", "cas a 0 0 1 noreply\r\nx\r\nversion\r\n",
		[]string{"ERR CLIENT_ERROR bad command line format silent (cas)", "ERR ERROR", "version"}},
	{"touch too few", "touch a\r\n", []string{"ERR ERROR (touch)"}},
	{"touch key 251", "touch " + key251 + " 1\r\n", []string{"ERR CLIENT_ERROR bad command line format (touch)"}},
	{"delete", "delete a\r\n", []string{"delete k=a"}},
	{"delete 0", "delete a 0\r\n", []string{"delete k=a"}},
	{"delete noreply", "delete a noreply\r\n", []string{"delete k=a noreply"}},
	{"delete 0 noreply", "delete a 0 noreply\r\n", []string{"delete k=a noreply"}},
	{"delete key noreply", "delete noreply\r\n", []string{"delete k=noreply"}},
	{"delete 1", "delete a 1\r\n",
		[]string{"ERR CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply] (delete)"}},
	{"delete 1 noreply", "delete a 1 noreply\r\nversion\r\n",
		[]string{"ERR CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply] silent (delete)", "version"}},
	{"delete noreply 0", "delete a noreply 0\r\n",
		[]string{"ERR CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply] (delete)"}},
	{"delete 0 0", "delete a 0 0\r\n",
		[]string{"ERR CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply] (delete)"}},
	{"delete too many", "delete a b c d\r\n", []string{"ERR ERROR (delete)"}},
	{"delete no key", "delete\r\n", []string{"ERR ERROR (delete)"}},
	{"delete key 251", "delete " + key251 + "\r\n", []string{"ERR CLIENT_ERROR bad command line format (delete)"}},
	{"delete key 251 noreply", "delete " + key251 + " noreply\r\n",
		[]string{"ERR CLIENT_ERROR bad command line format silent (delete)"}},
	{"delete nul", "delete a \x00noreply\r\n", []string{"delete k=a"}},

	// Administration.
	{"flush_all", "flush_all\r\n", []string{"flush_all"}},
	{"flush_all delay", "flush_all 10\r\n", []string{"flush_all e=10"}},
	{"flush_all noreply", "flush_all noreply\r\n", []string{"flush_all noreply"}},
	{"flush_all delay noreply", "flush_all 10 noreply\r\n", []string{"flush_all e=10 noreply"}},
	{"flush_all extra", "flush_all 0 foo\r\n", []string{"flush_all"}},
	{"flush_all bad", "flush_all abc\r\n", []string{"ERR CLIENT_ERROR invalid exptime argument (flush_all)"}},
	{"flush_all noreply first", "flush_all noreply 10\r\n", []string{"ERR CLIENT_ERROR invalid exptime argument (flush_all)"}},
	{"flush_all bad noreply", "flush_all abc noreply\r\n",
		[]string{"ERR CLIENT_ERROR invalid exptime argument silent (flush_all)"}},
	{"flush_all too many", "flush_all 1 2 3\r\n", []string{"ERR ERROR (flush_all)"}},
	{"verbosity", "verbosity 1\r\n", []string{"verbosity n=1"}},
	{"verbosity extra", "verbosity 1 2\r\n", []string{"verbosity n=1"}},
	{"verbosity noreply", "verbosity 2 noreply\r\n", []string{"verbosity n=2 noreply"}},
	{"verbosity none", "verbosity\r\n", []string{"ERR ERROR (verbosity)"}},
	{"verbosity bad", "verbosity x\r\n", []string{"ERR CLIENT_ERROR bad command line format (verbosity)"}},
	{"verbosity only noreply", "verbosity noreply\r\n",
		[]string{"ERR CLIENT_ERROR bad command line format silent (verbosity)"}},
	{"verbosity http", "verbosity HTTP/1.0\r\n", []string{"ERR CLIENT_ERROR bad command line format (verbosity)"}},
	{"cache_memlimit", "cache_memlimit 64\r\n", []string{"cache_memlimit n=64"}},
	{"cache_memlimit noreply", "cache_memlimit 64 noreply\r\n", []string{"cache_memlimit n=64 noreply"}},
	{"cache_memlimit none", "cache_memlimit\r\n", []string{"ERR ERROR (cache_memlimit)"}},
	{"cache_memlimit bad", "cache_memlimit x\r\n", []string{"ERR ERROR (cache_memlimit)"}},
	{"cache_memlimit bad noreply", "cache_memlimit x noreply\r\n", []string{"ERR ERROR silent (cache_memlimit)"}},
	{"stats", "stats\r\n", []string{"stats"}},
	{"stats group", "stats items\r\n", []string{`stats args=["items"]`}},
	{"stats detail", "stats detail on\r\n", []string{`stats args=["detail" "on"]`}},
	{"stats 22 args", "stats a b c d e f g h i j k l m n o p q r s t u v w x y z\r\n",
		[]string{`stats args=["a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v"]`}},
	{"shutdown", "shutdown\r\n", []string{"shutdown"}},
	{"shutdown graceful", "shutdown graceful\r\n", []string{`shutdown args=["graceful"]`}},
	{"mn", "mn\r\n", []string{`mn`}},
	{"mn args", "mn x\r\n", []string{`mn`}},
	{"mg", "mg a v\r\n", []string{`mg k=a flags=["v"]`}},
	{"m unknown", "mx\r\n", []string{"ERR ERROR"}},
	{"misbehave unknown", "misbehave\r\n", []string{"ERR ERROR"}},
	{"debugtime unknown", "debugtime 1\r\n", []string{"ERR ERROR"}},
	{"lru_crawler", "lru_crawler metadump all\r\n", []string{`misc name="lru_crawler" args=["metadump" "all"]`}},
	{"watch", "watch fetchers noreply\r\n", []string{`misc name="watch" noreply args=["fetchers" "noreply"]`}},
	{"slabs automove noreply", "slabs automove 1 noreply\r\n",
		[]string{`misc name="slabs" noreply args=["automove" "1" "noreply"]`}},
	{"slabs reassign", "slabs reassign 1 2\r\n", []string{`misc name="slabs" args=["reassign" "1" "2"]`}},
	{"lru", "lru mode flat\r\n", []string{`misc name="lru" args=["mode" "flat"]`}},
	{"lru none", "lru\r\n", []string{"ERR ERROR (misc)"}},
	{"extstore none", "extstore\r\n", []string{"ERR ERROR (misc)"}},
	{"refresh_certs", "refresh_certs\r\n", []string{`misc name="refresh_certs"`}},
}

func TestDecode(t *testing.T) {
	for _, tt := range decodeTests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, newDefault, tt.in, tt.want)
		})
	}
}

// TestDecodePipelined decodes all the table's inputs that do not close the
// connection as one stream.
func TestDecodePipelined(t *testing.T) {
	var in strings.Builder
	var want []string
	for _, tt := range decodeTests {
		if strings.Contains(strings.Join(tt.want, ""), " close") {
			continue
		}
		in.WriteString(tt.in)
		want = append(want, tt.want...)
	}
	// Split at every offset is quadratic; a stride keeps it quick.
	stream := []byte(in.String())
	got := run(t, newDefault(), [][]byte{stream})
	if !equal(got, want) {
		t.Fatalf("whole:\n got  %q\n want %q", got, want)
	}
	for i := 1; i < len(stream); i += 7 {
		got := run(t, newDefault(), [][]byte{stream[:i], stream[i:]})
		if !equal(got, want) {
			t.Fatalf("split@%d:\n got  %q\n want %q", i, got, want)
		}
	}
	bytewise := make([][]byte, len(stream))
	for i := range stream {
		bytewise[i] = stream[i : i+1]
	}
	if got := run(t, newDefault(), bytewise); !equal(got, want) {
		t.Fatalf("bytewise:\n got  %q\n want %q", got, want)
	}
}

func TestDecodeFlushDisabled(t *testing.T) {
	dec := func() *Decoder {
		d := NewDecoder(0)
		d.FlushDisabled = true
		return d
	}
	check(t, dec, "flush_all abc\r\nflush_all noreply\r\nflush_all 1 2 3\r\n", []string{
		"ERR CLIENT_ERROR flush_all not allowed (flush_all)",
		"ERR CLIENT_ERROR flush_all not allowed silent (flush_all)",
		"ERR ERROR (flush_all)",
	})
}
