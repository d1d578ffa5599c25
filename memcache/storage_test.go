package memcache_test

import (
	"strconv"
	"strings"
	"testing"
)

// TestStorage covers set, add, replace, append, prepend and cas over the
// text protocol.
func TestStorage(t *testing.T) {
	big := strings.Repeat("x", 1<<20) // with its item header, over -I 1m
	run(t, []transcript{
		one("set then get",
			"set k 0 0 5\r\nhello\r\nget k\r\n",
			"STORED\r\nVALUE k 0 5\r\nhello\r\nEND\r\n"),
		one("set keeps flags and an empty value",
			"set k 4294967295 0 0\r\n\r\nget k\r\n",
			"STORED\r\nVALUE k 4294967295 0\r\n\r\nEND\r\n"),
		one("set overwrites",
			"set k 1 0 1\r\na\r\nset k 2 0 2\r\nbb\r\nget k\r\n",
			"STORED\r\nSTORED\r\nVALUE k 2 2\r\nbb\r\nEND\r\n"),
		one("set binary-safe value",
			"set k 0 0 6\r\na\r\nb\x00c\r\nget k\r\n",
			"STORED\r\nVALUE k 0 6\r\na\r\nb\x00c\r\nEND\r\n"),
		one("add new then existing",
			"add k 0 0 1\r\na\r\nadd k 0 0 1\r\nb\r\nget k\r\n",
			"STORED\r\nNOT_STORED\r\nVALUE k 0 1\r\na\r\nEND\r\n"),
		one("replace missing then existing",
			"replace k 0 0 1\r\na\r\nget k\r\nset k 0 0 1\r\na\r\nreplace k 3 0 1\r\nb\r\nget k\r\n",
			"NOT_STORED\r\nEND\r\nSTORED\r\nSTORED\r\nVALUE k 3 1\r\nb\r\nEND\r\n"),
		one("append and prepend keep the flags",
			"set k 7 0 2\r\nmm\r\nappend k 9 0 2\r\nzz\r\nprepend k 9 0 2\r\naa\r\nget k\r\n",
			"STORED\r\nSTORED\r\nSTORED\r\nVALUE k 7 6\r\naammzz\r\nEND\r\n"),
		one("append and prepend to a missing key",
			"append k 0 0 1\r\na\r\nprepend k 0 0 1\r\na\r\nget k\r\n",
			"NOT_STORED\r\nNOT_STORED\r\nEND\r\n"),
		one("cas matches, then is stale",
			"set k 0 0 1\r\na\r\ngets k\r\ncas k 5 0 1 1\r\nb\r\ncas k 0 0 1 1\r\nc\r\ngets k\r\n",
			"STORED\r\nVALUE k 0 1 1\r\na\r\nEND\r\nSTORED\r\nEXISTS\r\nVALUE k 5 1 2\r\nb\r\nEND\r\n"),
		one("cas on a missing key",
			"cas k 0 0 1 1\r\na\r\nget k\r\n",
			"NOT_FOUND\r\nEND\r\n"),
		one("cas without its unique",
			"cas k 0 0 1\r\n",
			"ERROR\r\n"),
		one("cas with a bad unique",
			"cas k 0 0 1 x\r\na\r\n",
			"CLIENT_ERROR bad command line format\r\nERROR\r\n"),
		one("every CAS unique is new",
			"set a 0 0 1\r\na\r\nset b 0 0 1\r\nb\r\nappend a 0 0 1\r\nc\r\ngets a b\r\n",
			"STORED\r\nSTORED\r\nSTORED\r\nVALUE a 0 2 3\r\nac\r\nVALUE b 0 1 2\r\nb\r\nEND\r\n"),
		one("noreply stores",
			"set k 0 0 1 noreply\r\na\r\n"+
				"add k 0 0 1 noreply\r\nb\r\n"+
				"add n 0 0 1 noreply\r\nn\r\n"+
				"replace k 0 0 1 noreply\r\nc\r\n"+
				"replace m 0 0 1 noreply\r\nm\r\n"+
				"append k 0 0 1 noreply\r\nd\r\n"+
				"prepend k 0 0 1 noreply\r\ne\r\n"+
				"cas k 0 0 1 99 noreply\r\nf\r\n"+
				"get k n m\r\n",
			"VALUE k 0 3\r\necd\r\nVALUE n 0 1\r\nn\r\nEND\r\n"),
		one("cas noreply",
			"set k 0 0 1\r\na\r\ncas k 0 0 1 1 noreply\r\nb\r\nget k\r\n",
			"STORED\r\nVALUE k 0 1\r\nb\r\nEND\r\n"),
		one("bad data chunk",
			"set k 0 0 1\r\nab\r\nget k\r\n",
			"CLIENT_ERROR bad data chunk\r\nERROR\r\nEND\r\n"),
		one("bad data chunk keeps the old value",
			"set k 0 0 1\r\na\r\nset k 0 0 2\r\nabcd\r\nget k\r\n",
			"STORED\r\nCLIENT_ERROR bad data chunk\r\nERROR\r\nVALUE k 0 1\r\na\r\nEND\r\n"),
		one("bad data chunk with noreply",
			"set k 0 0 1 noreply\r\nab\r\nget k\r\n",
			"ERROR\r\nEND\r\n"),
		one("negative length",
			"set k 0 0 -1\r\nget k\r\n",
			"CLIENT_ERROR bad command line format\r\nEND\r\n"),
		one("missing arguments",
			"set k 0 0\r\nget k\r\n",
			"ERROR\r\nEND\r\n"),
		one("bad flags",
			"set k x 0 1\r\na\r\nget k\r\n",
			"CLIENT_ERROR bad command line format\r\nERROR\r\nEND\r\n"),
		one("key too long",
			"set "+strings.Repeat("k", 251)+" 0 0 1\r\na\r\nset "+strings.Repeat("k", 250)+" 0 0 1\r\nb\r\n",
			"CLIENT_ERROR bad command line format\r\nERROR\r\nSTORED\r\n"),
		one("too large, and the old item is gone",
			"set k 0 0 1\r\na\r\nset k 0 0 "+strconv.Itoa(len(big))+"\r\n"+big+"\r\nget k\r\n",
			"STORED\r\nSERVER_ERROR object too large for cache\r\nEND\r\n"),
		one("too large add leaves the old item",
			"set k 0 0 1\r\na\r\nadd k 0 0 "+strconv.Itoa(len(big))+"\r\n"+big+"\r\nget k\r\n",
			"STORED\r\nSERVER_ERROR object too large for cache\r\nVALUE k 0 1\r\na\r\nEND\r\n"),
		one("too large with noreply",
			"set k 0 0 1\r\na\r\nset k 0 0 "+strconv.Itoa(len(big))+" noreply\r\n"+big+"\r\nget k\r\n",
			"STORED\r\nEND\r\n"),
		// 48 (item header) + 1 (key) + 1 + 1048516 + 2 + 8 (CAS) = 1 MiB.
		one("largest value that fits",
			"set k 0 0 1048516\r\n"+big[:1048516]+"\r\nget k\r\n",
			"STORED\r\nVALUE k 0 1048516\r\n"+big[:1048516]+"\r\nEND\r\n"),
		{name: "append past the item size limit",
			steps: []step{{
				send: "set k 0 0 1048516\r\n" + big[:1048516] + "\r\nappend k 0 0 1\r\nx\r\nprepend k 0 0 1\r\nx\r\nget k\r\n",
				want: "STORED\r\nNOT_STORED\r\nNOT_STORED\r\nVALUE k 0 1048516\r\n" + big[:1048516] + "\r\nEND\r\n"}}},
		one("one byte more is too large",
			"set k 0 0 1048517\r\n"+big[:1048517]+"\r\nget k\r\n",
			"SERVER_ERROR object too large for cache\r\nEND\r\n"),
		one("negative exptime stores an expired item",
			"set k 0 -1 1\r\na\r\nget k\r\n",
			"STORED\r\nEND\r\n"),
		{name: "exptime expires",
			steps: []step{
				{send: "set k 0 10 1\r\na\r\nset forever 0 0 1\r\nf\r\nget k\r\n", want: "STORED\r\nSTORED\r\nVALUE k 0 1\r\na\r\nEND\r\n"},
				{advance: 9, send: "get k\r\n", want: "VALUE k 0 1\r\na\r\nEND\r\n"},
				{advance: 1, send: "get k forever\r\n", want: "VALUE forever 0 1\r\nf\r\nEND\r\n"},
				{send: "add k 0 0 1\r\nb\r\n", want: "STORED\r\n"},
			}},
		{name: "absolute exptime",
			steps: []step{
				{send: "set k 0 " + strconv.Itoa(epoch+100) + " 1\r\na\r\nget k\r\n", want: "STORED\r\nVALUE k 0 1\r\na\r\nEND\r\n"},
				{advance: 100, send: "get k\r\n", want: "END\r\n"},
			}},
		{name: "cas disabled",
			opts: opts{noCAS: true},
			steps: []step{
				{send: "set k 0 0 1\r\na\r\ngets k\r\ncas k 0 0 1 0\r\nb\r\ncas k 0 0 1 1\r\nb\r\n",
					want: "STORED\r\nVALUE k 0 1 0\r\na\r\nEND\r\nEXISTS\r\nEXISTS\r\n"},
			}},
	})
}

// TestStorageOutOfMemory checks -M: with a tiny -m, stores fail with
// memcached's SERVER_ERROR once memory is full, nothing is evicted, and
// deleting makes room again.
func TestStorageOutOfMemory(t *testing.T) {
	srv := start(t, opts{memoryMB: 2, noEvict: true})
	c := dial(t, srv.addr)
	value := strings.Repeat("v", 100_000)
	stored := 0
	for ; stored < 200; stored++ {
		c.send("set k" + strconv.Itoa(stored) + " 0 0 " + strconv.Itoa(len(value)) + "\r\n" + value + "\r\n")
		line := string(c.readUntil("\r\n"))
		if line == "STORED\r\n" {
			continue
		}
		if line != "SERVER_ERROR out of memory storing object\r\n" {
			t.Fatalf("set k%d: got %q, want STORED or SERVER_ERROR out of memory storing object", stored, line)
		}
		break
	}
	if stored == 0 || stored == 200 {
		t.Fatalf("%d sets of 100 KB stored with -m 2 -M, want some and then SERVER_ERROR", stored)
	}
	t.Logf("%d items stored before out of memory", stored)
	// Nothing was evicted.
	for i := range stored {
		c.send("mg k" + strconv.Itoa(i) + " s\r\n")
		c.expect("mg k"+strconv.Itoa(i), "HD s100000\r\n")
	}
	// The failed set stored nothing.
	c.send("get k" + strconv.Itoa(stored) + "\r\n")
	c.expect("get of the failed key", "END\r\n")
	// Room is made by deleting, not by evicting.
	c.send("delete k0\r\ndelete k1\r\n")
	c.expect("delete", "DELETED\r\nDELETED\r\n")
	c.send("set again 0 0 " + strconv.Itoa(len(value)) + "\r\n" + value + "\r\n")
	c.expect("set after delete", "STORED\r\n")
}
