package memcache_test

import "testing"

// TestDelete covers delete over the text protocol.
func TestDelete(t *testing.T) {
	run(t, []transcript{
		one("delete a hit, and the item is gone",
			"set k 0 0 1\r\na\r\ndelete k\r\nget k\r\ndelete k\r\n",
			"STORED\r\nDELETED\r\nEND\r\nNOT_FOUND\r\n"),
		one("delete a miss", "delete k\r\n", "NOT_FOUND\r\n"),
		one("delete noreply",
			"set k 0 0 1\r\na\r\ndelete k noreply\r\ndelete k noreply\r\nget k\r\n",
			"STORED\r\nEND\r\n"),
		one("delete with a zero time",
			"set k 0 0 1\r\na\r\ndelete k 0\r\nset k 0 0 1\r\na\r\ndelete k 0 noreply\r\nget k\r\n",
			"STORED\r\nDELETED\r\nSTORED\r\nEND\r\n"),
		one("delete with a time",
			"set k 0 0 1\r\na\r\ndelete k 5\r\nget k\r\n",
			"STORED\r\nCLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\nVALUE k 0 1\r\na\r\nEND\r\n"),
		one("delete without a key, or with too many arguments",
			"delete\r\ndelete k x y z\r\n",
			"ERROR\r\nERROR\r\n"),
		one("delete leaves other keys",
			"set a 0 0 1\r\na\r\nset b 0 0 1\r\nb\r\ndelete a\r\nget a b\r\n",
			"STORED\r\nSTORED\r\nDELETED\r\nVALUE b 0 1\r\nb\r\nEND\r\n"),
		{name: "delete of an expired item is a miss",
			steps: []step{
				{send: "set k 0 1 1\r\na\r\n", want: "STORED\r\n"},
				{advance: 1, send: "delete k\r\n", want: "NOT_FOUND\r\n"},
			}},
	})
}

// TestIncrDecr covers incr and decr over the text protocol, with
// memcached's rules for the value's text.
func TestIncrDecr(t *testing.T) {
	run(t, []transcript{
		one("incr and decr",
			"set k 0 0 2\r\n10\r\nincr k 5\r\ndecr k 3\r\nget k\r\n",
			"STORED\r\n15\r\n12\r\nVALUE k 0 2\r\n12\r\nEND\r\n"),
		one("incr and decr of a miss",
			"incr k 1\r\ndecr k 1\r\nget k\r\n",
			"NOT_FOUND\r\nNOT_FOUND\r\nEND\r\n"),
		one("incr grows the value's length",
			"set k 0 0 2\r\n99\r\nincr k 1\r\nget k\r\n",
			"STORED\r\n100\r\nVALUE k 0 3\r\n100\r\nEND\r\n"),
		one("decr pads a shorter number with spaces",
			"set k 0 0 3\r\n100\r\ndecr k 1\r\nget k\r\n",
			"STORED\r\n99\r\nVALUE k 0 3\r\n99 \r\nEND\r\n"),
		one("decr stops at zero",
			"set k 0 0 1\r\n5\r\ndecr k 10\r\ndecr k 1\r\nget k\r\n",
			"STORED\r\n0\r\n0\r\nVALUE k 0 1\r\n0\r\nEND\r\n"),
		one("incr wraps at 2^64",
			"set k 0 0 20\r\n18446744073709551615\r\nincr k 1\r\nget k\r\nincr k 18446744073709551615\r\n",
			"STORED\r\n0\r\nVALUE k 0 20\r\n0                   \r\nEND\r\n18446744073709551615\r\n"),
		one("incr keeps the flags and takes a new CAS unique",
			"set k 7 0 1\r\n9\r\nincr k 1\r\ngets k\r\n",
			"STORED\r\n10\r\nVALUE k 7 2 2\r\n10\r\nEND\r\n"),
		one("incr of a non-numeric value",
			"set k 0 0 3\r\nabc\r\nincr k 1\r\ndecr k 1\r\nget k\r\n",
			"STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n"+
				"CLIENT_ERROR cannot increment or decrement non-numeric value\r\nVALUE k 0 3\r\nabc\r\nEND\r\n"),
		one("incr of an empty or negative value",
			"set e 0 0 0\r\n\r\nincr e 1\r\nset n 0 0 2\r\n-5\r\nincr n 1\r\n",
			"STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n"+
				"STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n"),
		one("incr of a number with spaces around it",
			"set a 0 0 3\r\n  5\r\nincr a 1\r\nget a\r\nset b 0 0 3\r\n5  \r\nincr b 1\r\nget b\r\nset c 0 0 3\r\n5 5\r\nincr c 1\r\n",
			"STORED\r\n6\r\nVALUE a 0 3\r\n6  \r\nEND\r\nSTORED\r\n6\r\nVALUE b 0 3\r\n6  \r\nEND\r\nSTORED\r\n6\r\n"),
		one("incr of a 20-digit number with leading zeros",
			"set k 0 0 20\r\n00000000000000000007\r\nincr k 1\r\nget k\r\n",
			"STORED\r\n8\r\nVALUE k 0 20\r\n8                   \r\nEND\r\n"),
		one("incr of a number over 2^64",
			"set k 0 0 20\r\n18446744073709551616\r\nincr k 1\r\n",
			"STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n"),
		one("bad deltas",
			"set k 0 0 1\r\n1\r\nincr k x\r\nincr k -1\r\nincr k 18446744073709551616\r\nincr k\r\nget k\r\n",
			"STORED\r\nCLIENT_ERROR invalid numeric delta argument\r\nCLIENT_ERROR invalid numeric delta argument\r\n"+
				"CLIENT_ERROR invalid numeric delta argument\r\nERROR\r\nVALUE k 0 1\r\n1\r\nEND\r\n"),
		one("noreply silences the error replies",
			"set k 0 0 1\r\nx\r\nincr k 1 noreply\r\nincr k x noreply\r\ntouch k x noreply\r\nset k x 0 1 noreply\r\na\r\nmn\r\n",
			"STORED\r\nERROR\r\nMN\r\n"),
		one("incr and decr noreply",
			"set k 0 0 1\r\n5\r\nincr k 5 noreply\r\ndecr k 2 noreply\r\nincr nope 1 noreply\r\nget k nope\r\n",
			"STORED\r\nVALUE k 0 2\r\n8 \r\nEND\r\n"),
	})
}

// TestTouch covers touch over the text protocol.
func TestTouch(t *testing.T) {
	run(t, []transcript{
		one("touch hit and miss",
			"touch k 10\r\nset k 0 0 1\r\na\r\ntouch k 10\r\nget k\r\n",
			"NOT_FOUND\r\nSTORED\r\nTOUCHED\r\nVALUE k 0 1\r\na\r\nEND\r\n"),
		one("touch errors",
			"set k 0 0 1\r\na\r\ntouch k x\r\ntouch k\r\nget k\r\n",
			"STORED\r\nCLIENT_ERROR invalid exptime argument\r\nERROR\r\nVALUE k 0 1\r\na\r\nEND\r\n"),
		one("touch noreply",
			"set k 0 0 1\r\na\r\ntouch k 10 noreply\r\ntouch nope 10 noreply\r\nget k\r\n",
			"STORED\r\nVALUE k 0 1\r\na\r\nEND\r\n"),
		one("touch with a negative exptime expires the item",
			"set k 0 0 1\r\na\r\ntouch k -1\r\nget k\r\n",
			"STORED\r\nTOUCHED\r\nEND\r\n"),
		{name: "touch moves the exptime",
			steps: []step{
				{send: "set short 0 10 1\r\na\r\nset long 0 10 1\r\nb\r\ntouch short 5\r\ntouch long 100\r\n", want: "STORED\r\nSTORED\r\nTOUCHED\r\nTOUCHED\r\n"},
				{advance: 5, send: "get short long\r\n", want: "VALUE long 0 1\r\nb\r\nEND\r\n"},
				{advance: 94, send: "get long\r\n", want: "VALUE long 0 1\r\nb\r\nEND\r\n"},
				{advance: 1, send: "get long\r\ntouch long 100\r\n", want: "END\r\nNOT_FOUND\r\n"},
			}},
	})
}
