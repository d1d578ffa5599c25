package memcache_test

import (
	"strings"
	"testing"
)

// TestRetrieval covers get, gets, gat and gats over the text protocol.
func TestRetrieval(t *testing.T) {
	const setAB = "set a 1 0 2\r\naa\r\nset b 2 0 3\r\nbbb\r\n"
	const storedAB = "STORED\r\nSTORED\r\n"
	run(t, []transcript{
		one("get miss", "get k\r\n", "END\r\n"),
		one("gets miss", "gets k\r\n", "END\r\n"),
		one("get hit", setAB+"get a\r\n", storedAB+"VALUE a 1 2\r\naa\r\nEND\r\n"),
		one("multi-key get in request order, misses left out",
			setAB+"get b nope a nope2\r\n",
			storedAB+"VALUE b 2 3\r\nbbb\r\nVALUE a 1 2\r\naa\r\nEND\r\n"),
		one("multi-key get of misses only", "get x y z\r\n", "END\r\n"),
		one("a repeated key is answered each time",
			setAB+"get a a\r\n",
			storedAB+"VALUE a 1 2\r\naa\r\nVALUE a 1 2\r\naa\r\nEND\r\n"),
		one("gets shows the CAS unique",
			setAB+"gets a b\r\n",
			storedAB+"VALUE a 1 2 1\r\naa\r\nVALUE b 2 3 2\r\nbbb\r\nEND\r\n"),
		one("get and gets without a key", "get\r\ngets\r\n", "ERROR\r\nERROR\r\n"),
		one("key too long",
			"get "+strings.Repeat("k", 251)+"\r\nget "+strings.Repeat("k", 250)+"\r\n",
			"CLIENT_ERROR bad command line format\r\nEND\r\n"),
		one("extra spaces between keys",
			setAB+"get   a    b  \r\n",
			storedAB+"VALUE a 1 2\r\naa\r\nVALUE b 2 3\r\nbbb\r\nEND\r\n"),
		one("line ending without CR",
			setAB+"get a\n",
			storedAB+"VALUE a 1 2\r\naa\r\nEND\r\n"),
		one("gat hit and miss",
			setAB+"gat 100 a nope b\r\n",
			storedAB+"VALUE a 1 2\r\naa\r\nVALUE b 2 3\r\nbbb\r\nEND\r\n"),
		one("gats shows the CAS unique",
			setAB+"gats 0 b\r\n",
			storedAB+"VALUE b 2 3 2\r\nbbb\r\nEND\r\n"),
		one("gat without a key", "gat 10\r\ngat\r\n", "END\r\nERROR\r\n"),
		one("gat with a bad exptime", "gat x a\r\n", "CLIENT_ERROR invalid exptime argument\r\n"),
		one("gat with a negative exptime expires the item",
			setAB+"gat -1 a\r\nget a\r\n",
			storedAB+"VALUE a 1 2\r\naa\r\nEND\r\nEND\r\n"),
		{name: "gat sets a new exptime",
			steps: []step{
				{send: "set k 0 10 1\r\nv\r\nset l 0 10 1\r\nw\r\ngat 100 k\r\n", want: "STORED\r\nSTORED\r\nVALUE k 0 1\r\nv\r\nEND\r\n"},
				{advance: 50, send: "get k l\r\n", want: "VALUE k 0 1\r\nv\r\nEND\r\n"},
				{advance: 50, send: "get k\r\n", want: "END\r\n"},
			}},
		{name: "gat 0 makes an item never expire",
			steps: []step{
				{send: "set k 0 10 1\r\nv\r\ngats 0 k\r\n", want: "STORED\r\nVALUE k 0 1 1\r\nv\r\nEND\r\n"},
				{advance: 1000, send: "get k\r\n", want: "VALUE k 0 1\r\nv\r\nEND\r\n"},
			}},
		{name: "expired items are misses",
			steps: []step{
				{send: "set k 0 2 1\r\nv\r\n", want: "STORED\r\n"},
				{advance: 1, send: "get k\r\n", want: "VALUE k 0 1\r\nv\r\nEND\r\n"},
				{advance: 1, send: "get k\r\ngets k\r\ngat 100 k\r\n", want: "END\r\nEND\r\nEND\r\n"},
			}},
		{name: "gets with CAS disabled (-C) shows 0",
			opts:  opts{noCAS: true},
			steps: []step{{send: setAB + "gets a b\r\n", want: storedAB + "VALUE a 1 2 0\r\naa\r\nVALUE b 2 3 0\r\nbbb\r\nEND\r\n"}}},
		one("values of changing sizes, larger and smaller than the last",
			"set s 0 0 1\r\nx\r\nset m 4294967295 0 20\r\n"+strings.Repeat("m", 20)+"\r\nset l 7 0 20000\r\n"+strings.Repeat("L", 20000)+"\r\nset e 0 0 0\r\n\r\n"+
				"get s l m\r\ngets e s l\r\nget l\r\n",
			"STORED\r\nSTORED\r\nSTORED\r\nSTORED\r\n"+
				"VALUE s 0 1\r\nx\r\nVALUE l 7 20000\r\n"+strings.Repeat("L", 20000)+"\r\nVALUE m 4294967295 20\r\n"+strings.Repeat("m", 20)+"\r\nEND\r\n"+
				"VALUE e 0 0 4\r\n\r\nVALUE s 0 1 1\r\nx\r\nVALUE l 7 20000 3\r\n"+strings.Repeat("L", 20000)+"\r\nEND\r\n"+
				"VALUE l 7 20000\r\n"+strings.Repeat("L", 20000)+"\r\nEND\r\n"),
		one("pipelined gets",
			"set a 0 0 1\r\n1\r\nget a\r\nget b\r\nget a\r\n",
			"STORED\r\nVALUE a 0 1\r\n1\r\nEND\r\nEND\r\nVALUE a 0 1\r\n1\r\nEND\r\n"),
	})
}

// TestRetrievalLarge checks a multi-get whose reply is larger than the
// server's buffers: every value arrives whole and in order.
func TestRetrievalLarge(t *testing.T) {
	srv := start(t, opts{})
	c := dial(t, srv.addr)
	value := strings.Repeat("0123456789", 50_000) // 500 KB
	var keys, want strings.Builder
	for i := range 8 {
		k := "key" + string(rune('a'+i))
		c.send("set " + k + " 0 0 500000 noreply\r\n" + value + "\r\n")
		keys.WriteString(" " + k)
		want.WriteString("VALUE " + k + " 0 500000\r\n" + value + "\r\n")
	}
	want.WriteString("END\r\n")
	c.send("get" + keys.String() + "\r\n")
	c.expect("8 x 500 KB multi-get", want.String())
}

// TestRetrievalWriteThrough covers large values sent from item memory
// straight to the socket (server.Conn.WriteThrough): single-key gets of
// values past writeThroughMin, behind pending replies, mixed with small
// ones and misses; values past writeThroughLone (16 KB), which go through
// only as the last value of the last request buffered, alone, at the end
// of a batch, in a batch's middle and in multi-gets; first while the
// client reads, then with the client reading nothing until it has sent
// every request, so that the socket fills and the rest of a value is
// copied into the reply buffer.
func TestRetrievalWriteThrough(t *testing.T) {
	srv := start(t, opts{})
	c := dial(t, srv.addr)
	big := make([]byte, 300_000)
	for i := range big {
		big[i] = byte('a' + i%23)
	}
	mid := strings.Repeat("m", 70_000)
	k16 := string(big[:16384])
	c.send("set big 5 0 300000\r\n" + string(big) + "\r\nset mid 0 0 70000\r\n" + mid + "\r\nset s 0 0 1\r\nx\r\n" +
		"set k16 7 0 16384\r\n" + k16 + "\r\n")
	c.expect("sets", "STORED\r\nSTORED\r\nSTORED\r\nSTORED\r\n")
	bigReply := "VALUE big 5 300000\r\n" + string(big) + "\r\nEND\r\n"
	k16Reply := "VALUE k16 7 16384\r\n" + k16 + "\r\nEND\r\n"
	for _, tc := range []struct{ send, want string }{
		{"get big\r\n", bigReply},
		{"get s\r\nget big\r\nget nope\r\n", "VALUE s 0 1\r\nx\r\nEND\r\n" + bigReply + "END\r\n"},
		{"get big s\r\n", "VALUE big 5 300000\r\n" + string(big) + "\r\nVALUE s 0 1\r\nx\r\nEND\r\n"},
		{"get s big\r\n", "VALUE s 0 1\r\nx\r\n" + bigReply},
		{"get big nope\r\n", "VALUE big 5 300000\r\n" + string(big) + "\r\nEND\r\n"},
		{"gets mid\r\n", "VALUE mid 0 70000 2\r\n" + mid + "\r\nEND\r\n"},
		{"get mid\r\nget big\r\nget mid\r\n", "VALUE mid 0 70000\r\n" + mid + "\r\nEND\r\n" + bigReply + "VALUE mid 0 70000\r\n" + mid + "\r\nEND\r\n"},
		{"get k16\r\n", k16Reply},
		{"gets k16\r\n", "VALUE k16 7 16384 4\r\n" + k16 + "\r\nEND\r\n"},
		{"get s\r\nget k16\r\n", "VALUE s 0 1\r\nx\r\nEND\r\n" + k16Reply},
		{"get k16\r\nget s\r\n", k16Reply + "VALUE s 0 1\r\nx\r\nEND\r\n"},
		{"get k16\r\nget k16\r\nget k16\r\n", k16Reply + k16Reply + k16Reply},
		{"get k16 k16\r\n", "VALUE k16 7 16384\r\n" + k16 + "\r\n" + k16Reply},
		{"get k16 s\r\n", "VALUE k16 7 16384\r\n" + k16 + "\r\nVALUE s 0 1\r\nx\r\nEND\r\n"},
		{"get k16 nope\r\n", k16Reply},
	} {
		c.send(tc.send)
		c.expect(tc.send, tc.want)
	}

	// 60 gets of 300 KB (18 MB) sent before reading anything.
	const n = 60
	var req, want strings.Builder
	for i := range n {
		if i%3 == 0 {
			req.WriteString("get s\r\n")
			want.WriteString("VALUE s 0 1\r\nx\r\nEND\r\n")
		}
		req.WriteString("get big\r\nget k16\r\n")
		want.WriteString(bigReply + k16Reply)
	}
	c.send(req.String())
	c.expect("60 pipelined gets of 300 KB and of 16 KB read late", want.String())
}
