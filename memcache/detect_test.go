package memcache_test

import "testing"

// TestProtocolDetection covers how a connection's protocol is chosen: from
// its first byte (0x80: binary), or fixed by -B.
func TestProtocolDetection(t *testing.T) {
	noop := req(opNoop, 1, 0, "", "", "")
	noopOK := res(opNoop, stOK, 1, 0, "", "", "")
	run(t, []transcript{
		one("text first byte speaks text", "version\r\n", "VERSION "+version()+"\r\n"),
		one("0x80 first byte speaks binary", noop+req(opVersion, 2, 0, "", "", ""), noopOK+res(opVersion, stOK, 2, 0, "", "", version())),
		// The choice is made once: a later 0x80 is text, a later text line
		// a bad magic.
		one("a text connection stays text",
			"mn\r\n\x80\r\n",
			"MN\r\nERROR\r\n"),
		{name: "a binary connection stays binary",
			// memcached reads a whole header before it checks the magic.
			steps:  []step{{send: noop + "version\r\nversion\r\nversion\r\n", want: noopOK}},
			closes: true},
		// The NOOP frame's second byte is '\n': memcached's text parser
		// sees "\x80", then a line that a NUL ends.
		{name: "-B ascii reads a binary frame as text",
			opts:  opts{protocol: "ascii"},
			steps: []step{{send: noop + "\r\nversion\r\n", want: "ERROR\r\nERROR\r\nVERSION " + version() + "\r\n"}}},
		{name: "-B binary closes a text connection without a reply",
			opts:   opts{protocol: "binary"},
			steps:  []step{{send: "version\r\nversion\r\nversion\r\n", want: ""}},
			closes: true},
		{name: "-B binary speaks binary",
			opts:  opts{protocol: "binary"},
			steps: []step{{send: noop, want: noopOK}}},
		{name: "-B auto detects",
			opts:  opts{protocol: "auto"},
			steps: []step{{send: noop, want: noopOK}}},
	})
}

// TestProtocolSharedData checks that text and binary connections to one
// server see the same items, CAS uniques included.
func TestProtocolSharedData(t *testing.T) {
	srv := start(t, opts{})
	text, bin := dial(t, srv.addr), dial(t, srv.addr)
	text.send("set k 3 0 2\r\nhi\r\n")
	text.expect("text set", "STORED\r\n")
	bin.send(req(opGetK, 1, 0, "", "k", "") + req(opAppend, 2, 0, "", "k", "!"))
	bin.expect("binary getk and append", item(opGetK, 1, 1, 3, "k", "hi")+res(opAppend, stOK, 2, 2, "", "", ""))
	text.send("gets k\r\n")
	text.expect("text gets", "VALUE k 3 3 2\r\nhi!\r\nEND\r\n")
}

// TestProtocolSplitFirstByte checks that the protocol is chosen once the
// first byte has arrived, whatever the reads the request comes in.
func TestProtocolSplitFirstByte(t *testing.T) {
	srv := start(t, opts{})
	noop := req(opNoop, 9, 0, "", "", "")
	b := dial(t, srv.addr)
	b.send(noop[:1])
	b.send(noop[1:])
	b.expect("binary split after its first byte", res(opNoop, stOK, 9, 0, "", "", ""))
	tx := dial(t, srv.addr)
	tx.send("m")
	tx.send("n\r\n")
	tx.expect("text split after its first byte", "MN\r\n")
}

// TestListenerProtocols checks that Config.ListenerProtocols fixes the
// protocol of one listener's connections (memcached's
// -l proto[binary]:ADDR) and leaves the others to Config.Protocol.
func TestListenerProtocols(t *testing.T) {
	srv := start(t, opts{secondListener: true, listenerProtocols: map[string]string{"second": "binary"}})
	c := dial(t, srv.addr)
	c.send("version\r\n")
	c.expect("text on the auto listener", "VERSION "+version()+"\r\n")
	c = dial(t, srv.second)
	c.send(req(opNoop, 1, 0, "", "", ""))
	c.expect("binary on the binary listener", res(opNoop, stOK, 1, 0, "", "", ""))
	c = dial(t, srv.second)
	c.send("version\r\n")
	if rest := c.rest(false); len(rest) != 0 {
		t.Errorf("text on the binary listener: got %s, want the connection closed", show(rest))
	}

	srv = start(t, opts{protocol: "binary", secondListener: true, listenerProtocols: map[string]string{"second": "ascii"}})
	c = dial(t, srv.second)
	c.send("mn\r\n")
	c.expect("text on the ascii listener of a binary server", "MN\r\n")
	c = dial(t, srv.addr)
	c.send("mn\r\n")
	if rest := c.rest(false); len(rest) != 0 {
		t.Errorf("text on the binary listener: got %s, want the connection closed", show(rest))
	}
}
