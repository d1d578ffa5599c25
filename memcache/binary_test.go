package memcache_test

import (
	"encoding/binary"
	"strings"
	"testing"
)

// Binary protocol frames, built by hand from doc/protocol-binary.txt
// (not with package protocol/binary, so that its encoders are not used
// to check themselves).

// Opcodes.
const (
	opGet       = 0x00
	opSet       = 0x01
	opAdd       = 0x02
	opReplace   = 0x03
	opDelete    = 0x04
	opIncr      = 0x05
	opDecr      = 0x06
	opQuit      = 0x07
	opFlush     = 0x08
	opGetQ      = 0x09
	opNoop      = 0x0a
	opVersion   = 0x0b
	opGetK      = 0x0c
	opGetKQ     = 0x0d
	opAppend    = 0x0e
	opPrepend   = 0x0f
	opStat      = 0x10
	opSetQ      = 0x11
	opAddQ      = 0x12
	opReplaceQ  = 0x13
	opDeleteQ   = 0x14
	opIncrQ     = 0x15
	opDecrQ     = 0x16
	opQuitQ     = 0x17
	opFlushQ    = 0x18
	opAppendQ   = 0x19
	opPrependQ  = 0x1a
	opTouch     = 0x1c
	opGAT       = 0x1d
	opGATQ      = 0x1e
	opSASLList  = 0x20
	opSASLAuth  = 0x21
	opSASLStep  = 0x22
	opGATK      = 0x23
	opGATKQ     = 0x24
	opUnknown   = 0x50
	magicReq    = 0x80
	magicRes    = 0x81
	headerBytes = 24
)

// Statuses, with memcached's messages.
const (
	stOK           = 0x00
	stNotFound     = 0x01
	stExists       = 0x02
	stTooLarge     = 0x03
	stInvalid      = 0x04
	stNotStored    = 0x05
	stBadDelta     = 0x06
	stAuthError    = 0x20
	stAuthContinue = 0x21
	stUnknown      = 0x81
	stNoMemory     = 0x82
)

var statusMessage = map[uint16]string{
	stNotFound:  "Not found",
	stExists:    "Data exists for key.",
	stTooLarge:  "Too large.",
	stInvalid:   "Invalid arguments",
	stNotStored: "Not stored.",
	stBadDelta:  "Non-numeric server-side value for incr or decr",
	stAuthError: "Auth failure.",
	stUnknown:   "Unknown command",
	stNoMemory:  "Out of memory",
}

func frame(magic, op byte, status uint16, opaque uint32, cas uint64, extras, key, value string) string {
	h := make([]byte, headerBytes, headerBytes+len(extras)+len(key)+len(value))
	h[0], h[1] = magic, op
	binary.BigEndian.PutUint16(h[2:], uint16(len(key)))
	h[4] = byte(len(extras))
	binary.BigEndian.PutUint16(h[6:], status)
	binary.BigEndian.PutUint32(h[8:], uint32(len(extras)+len(key)+len(value)))
	binary.BigEndian.PutUint32(h[12:], opaque)
	binary.BigEndian.PutUint64(h[16:], cas)
	return string(h) + extras + key + value
}

// req is a request frame.
func req(op byte, opaque uint32, cas uint64, extras, key, value string) string {
	return frame(magicReq, op, 0, opaque, cas, extras, key, value)
}

// res is a response frame.
func res(op byte, status uint16, opaque uint32, cas uint64, extras, key, value string) string {
	return frame(magicRes, op, status, opaque, cas, extras, key, value)
}

// errRes is an error response with memcached's message.
func errRes(op byte, status uint16, opaque uint32) string {
	msg, ok := statusMessage[status]
	if !ok {
		panic("no message for status")
	}
	return res(op, status, opaque, 0, "", "", msg)
}

func u32(v uint32) string { return string(binary.BigEndian.AppendUint32(nil, v)) }
func u64(v uint64) string { return string(binary.BigEndian.AppendUint64(nil, v)) }

// store is a SET/ADD/REPLACE request's extras: flags and exptime.
func store(flags, exptime uint32) string { return u32(flags) + u32(exptime) }

// arith is an INCR/DECR request's extras: delta, initial, exptime
// (0xffffffff: do not create).
func arith(delta, initial uint64, exptime uint32) string {
	return u64(delta) + u64(initial) + u32(exptime)
}

// item is a GET response: flags, then the key (GETK), then the value.
func item(op byte, opaque uint32, cas uint64, flags uint32, key, value string) string {
	return res(op, stOK, opaque, cas, u32(flags), key, value)
}

const noCreate = 0xffffffff

// TestBinary covers the binary protocol's commands, their quiet forms and
// error statuses.
func TestBinary(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	setK := req(opSet, 1, 0, store(5, 0), "k", "v")
	setKOK := res(opSet, stOK, 1, 1, "", "", "")
	run(t, []transcript{
		one("get miss", req(opGet, 7, 0, "", "k", ""), errRes(opGet, stNotFound, 7)),
		one("getk miss returns the key",
			req(opGetK, 7, 0, "", "k", ""),
			res(opGetK, stNotFound, 7, 0, "", "k", "")),
		one("set then get, getk",
			setK+req(opGet, 2, 0, "", "k", "")+req(opGetK, 3, 0, "", "k", ""),
			setKOK+item(opGet, 2, 1, 5, "", "v")+item(opGetK, 3, 1, 5, "k", "v")),
		one("set is seen by the text protocol's store",
			setK+req(opSet, 2, 0, store(0, 0), "k", "w")+req(opGet, 3, 0, "", "k", ""),
			setKOK+res(opSet, stOK, 2, 2, "", "", "")+item(opGet, 3, 2, 0, "", "w")),
		one("add",
			req(opAdd, 1, 0, store(0, 0), "k", "a")+req(opAdd, 2, 0, store(0, 0), "k", "b")+req(opGet, 3, 0, "", "k", ""),
			res(opAdd, stOK, 1, 1, "", "", "")+errRes(opAdd, stExists, 2)+item(opGet, 3, 1, 0, "", "a")),
		one("replace",
			req(opReplace, 1, 0, store(0, 0), "k", "a")+setK+req(opReplace, 2, 0, store(9, 0), "k", "b")+req(opGet, 3, 0, "", "k", ""),
			errRes(opReplace, stNotFound, 1)+setKOK+res(opReplace, stOK, 2, 2, "", "", "")+item(opGet, 3, 2, 9, "", "b")),
		one("append and prepend",
			setK+req(opAppend, 2, 0, "", "k", "z")+req(opPrepend, 3, 0, "", "k", "a")+req(opGet, 4, 0, "", "k", ""),
			setKOK+res(opAppend, stOK, 2, 2, "", "", "")+res(opPrepend, stOK, 3, 3, "", "", "")+item(opGet, 4, 3, 5, "", "avz")),
		one("append and prepend to a missing key",
			req(opAppend, 2, 0, "", "k", "z")+req(opPrepend, 3, 0, "", "k", "a"),
			errRes(opAppend, stNotStored, 2)+errRes(opPrepend, stNotStored, 3)),
		// memcached checks an append's CAS only against an item that
		// exists: a missing key is NOT_STORED, CAS or not (a SET, ADD or
		// REPLACE with a CAS becomes a cas command: NOT_FOUND).
		one("append and prepend with a CAS to a missing key",
			req(opAppend, 2, 12345, "", "k", "z")+req(opPrepend, 3, 12345, "", "k", "a")+
				req(opAdd, 4, 12345, store(0, 0), "k", "v"),
			errRes(opAppend, stNotStored, 2)+errRes(opPrepend, stNotStored, 3)+errRes(opAdd, stNotFound, 4)),
		one("set with a CAS",
			setK+req(opSet, 2, 9, store(0, 0), "k", "x")+req(opSet, 3, 1, store(0, 0), "k", "y")+req(opSet, 4, 1, store(0, 0), "nope", "y")+req(opGet, 5, 0, "", "k", ""),
			setKOK+errRes(opSet, stExists, 2)+res(opSet, stOK, 3, 2, "", "", "")+errRes(opSet, stNotFound, 4)+item(opGet, 5, 2, 0, "", "y")),
		one("delete",
			setK+req(opDelete, 2, 0, "", "k", "")+req(opGet, 3, 0, "", "k", "")+req(opDelete, 4, 0, "", "k", ""),
			setKOK+res(opDelete, stOK, 2, 0, "", "", "")+errRes(opGet, stNotFound, 3)+errRes(opDelete, stNotFound, 4)),
		one("delete with a CAS",
			setK+req(opDelete, 2, 9, "", "k", "")+req(opDelete, 3, 1, "", "k", "")+req(opGet, 4, 0, "", "k", ""),
			setKOK+errRes(opDelete, stExists, 2)+res(opDelete, stOK, 3, 0, "", "", "")+errRes(opGet, stNotFound, 4)),
		one("incr and decr create, count and floor",
			req(opIncr, 1, 0, arith(1, 10, 0), "n", "")+
				req(opIncr, 2, 0, arith(5, 0, 0), "n", "")+
				req(opDecr, 3, 0, arith(100, 0, 0), "n", "")+
				req(opGet, 4, 0, "", "n", ""),
			res(opIncr, stOK, 1, 1, "", "", u64(10))+
				res(opIncr, stOK, 2, 2, "", "", u64(15))+
				res(opDecr, stOK, 3, 3, "", "", u64(0))+
				item(opGet, 4, 3, 0, "", "0 ")),
		one("incr of a miss without create",
			req(opIncr, 1, 0, arith(1, 10, noCreate), "n", "")+req(opDecr, 2, 0, arith(1, 10, noCreate), "n", ""),
			errRes(opIncr, stNotFound, 1)+errRes(opDecr, stNotFound, 2)),
		one("incr of a non-numeric value",
			setK+req(opIncr, 2, 0, arith(1, 0, 0), "k", ""),
			setKOK+errRes(opIncr, stBadDelta, 2)),
		one("incr wraps at 2^64",
			req(opIncr, 1, 0, arith(1, 1<<64-1, 0), "n", "")+req(opIncr, 2, 0, arith(1, 0, 0), "n", ""),
			res(opIncr, stOK, 1, 1, "", "", u64(1<<64-1))+res(opIncr, stOK, 2, 2, "", "", u64(0))),
		one("incr with a CAS",
			req(opIncr, 1, 0, arith(1, 5, 0), "n", "")+req(opIncr, 2, 9, arith(1, 0, 0), "n", "")+req(opIncr, 3, 1, arith(1, 0, 0), "n", ""),
			res(opIncr, stOK, 1, 1, "", "", u64(5))+errRes(opIncr, stExists, 2)+res(opIncr, stOK, 3, 2, "", "", u64(6))),
		one("quiet stores say nothing on success",
			req(opSetQ, 1, 0, store(0, 0), "a", "1")+
				req(opAddQ, 2, 0, store(0, 0), "b", "2")+
				req(opReplaceQ, 3, 0, store(0, 0), "a", "3")+
				req(opAppendQ, 4, 0, "", "a", "4")+
				req(opPrependQ, 5, 0, "", "a", "5")+
				req(opIncrQ, 6, 0, arith(1, 7, 0), "n", "")+
				req(opDecrQ, 7, 0, arith(1, 0, 0), "n", "")+
				req(opDeleteQ, 8, 0, "", "b", "")+
				req(opNoop, 9, 0, "", "", "")+
				req(opGet, 10, 0, "", "a", "")+req(opGet, 11, 0, "", "n", ""),
			res(opNoop, stOK, 9, 0, "", "", "")+
				item(opGet, 10, 5, 0, "", "534")+item(opGet, 11, 7, 0, "", "6")),
		one("quiet commands still report errors",
			req(opSetQ, 1, 0, store(0, 0), "a", "x")+
				req(opAddQ, 2, 0, store(0, 0), "a", "2")+
				req(opReplaceQ, 3, 0, store(0, 0), "b", "3")+
				req(opAppendQ, 4, 0, "", "b", "4")+
				req(opIncrQ, 5, 0, arith(1, 0, 0), "a", "")+
				req(opDeleteQ, 6, 0, "", "b", "")+
				req(opNoop, 7, 0, "", "", ""),
			errRes(opAddQ, stExists, 2)+errRes(opReplaceQ, stNotFound, 3)+errRes(opAppendQ, stNotStored, 4)+
				errRes(opIncrQ, stBadDelta, 5)+errRes(opDeleteQ, stNotFound, 6)+res(opNoop, stOK, 7, 0, "", "", "")),
		one("quiet gets answer hits only",
			setK+req(opGetQ, 2, 0, "", "nope", "")+req(opGetQ, 3, 0, "", "k", "")+req(opGetKQ, 4, 0, "", "nope", "")+
				req(opGetKQ, 5, 0, "", "k", "")+req(opNoop, 6, 0, "", "", ""),
			setKOK+item(opGetQ, 3, 1, 5, "", "v")+item(opGetKQ, 5, 1, 5, "k", "v")+res(opNoop, stOK, 6, 0, "", "", "")),
		one("touch, gat, gatk",
			setK+req(opTouch, 2, 0, u32(100), "k", "")+req(opGAT, 3, 0, u32(100), "k", "")+req(opGATK, 4, 0, u32(100), "k", "")+
				req(opTouch, 5, 0, u32(100), "nope", "")+req(opGAT, 6, 0, u32(100), "nope", "")+
				req(opGATQ, 7, 0, u32(100), "nope", "")+req(opGATKQ, 8, 0, u32(100), "k", "")+req(opNoop, 9, 0, "", "", ""),
			setKOK+item(opTouch, 2, 1, 5, "", "")+item(opGAT, 3, 1, 5, "", "v")+item(opGATK, 4, 1, 5, "k", "v")+
				errRes(opTouch, stNotFound, 5)+errRes(opGAT, stNotFound, 6)+
				item(opGATKQ, 8, 1, 5, "k", "v")+res(opNoop, stOK, 9, 0, "", "", "")),
		{name: "touch moves the exptime",
			steps: []step{
				{send: req(opSet, 1, 0, store(0, 10), "k", "v") + req(opTouch, 2, 0, u32(100), "k", ""),
					want: res(opSet, stOK, 1, 1, "", "", "") + item(opTouch, 2, 1, 0, "", "")},
				{advance: 99, send: req(opGet, 3, 0, "", "k", ""), want: item(opGet, 3, 1, 0, "", "v")},
				{advance: 1, send: req(opGet, 4, 0, "", "k", ""), want: errRes(opGet, stNotFound, 4)},
			}},
		one("flush",
			setK+req(opFlush, 2, 0, "", "", "")+req(opGet, 3, 0, "", "k", "")+
				req(opSet, 4, 0, store(0, 0), "a", "1")+req(opFlushQ, 5, 0, "", "", "")+req(opGet, 6, 0, "", "a", ""),
			setKOK+res(opFlush, stOK, 2, 0, "", "", "")+errRes(opGet, stNotFound, 3)+
				res(opSet, stOK, 4, 3, "", "", "")+errRes(opGet, stNotFound, 6)), // flush_all takes a CAS unique
		{name: "flush with a delay",
			steps: []step{
				{send: setK + req(opFlush, 2, 0, u32(10), "", "") + req(opGet, 3, 0, "", "k", ""),
					want: setKOK + res(opFlush, stOK, 2, 0, "", "", "") + item(opGet, 3, 1, 5, "", "v")},
				{advance: 10, send: req(opGet, 4, 0, "", "k", ""), want: errRes(opGet, stNotFound, 4)},
			}},
		{name: "flush disabled",
			opts: opts{noFlush: true},
			steps: []step{{send: setK + req(opFlush, 2, 0, "", "", "") + req(opGet, 3, 0, "", "k", ""),
				want: setKOK + errRes(opFlush, stAuthError, 2) + item(opGet, 3, 1, 5, "", "v")}}},
		one("noop", req(opNoop, 0xdeadbeef, 0, "", "", ""), res(opNoop, stOK, 0xdeadbeef, 0, "", "", "")),
		one("version", req(opVersion, 3, 0, "", "", ""), res(opVersion, stOK, 3, 0, "", "", version())),
		one("unknown opcode, then the connection goes on",
			req(opUnknown, 3, 0, "", "", "")+req(opNoop, 4, 0, "", "", ""),
			errRes(opUnknown, stUnknown, 3)+res(opNoop, stOK, 4, 0, "", "", "")),
		one("too large, and the old item is gone",
			setK+req(opSet, 2, 0, store(0, 0), "k", big)+req(opGet, 3, 0, "", "k", ""),
			setKOK+errRes(opSet, stTooLarge, 2)+errRes(opGet, stNotFound, 3)),
		one("too large add leaves the old item",
			setK+req(opAdd, 2, 0, store(0, 0), "k", big)+req(opGet, 3, 0, "", "k", ""),
			setKOK+errRes(opAdd, stTooLarge, 2)+item(opGet, 3, 1, 5, "", "v")),
		{name: "key too long closes the connection",
			steps: []step{{send: req(opGet, 1, 0, "", strings.Repeat("k", 251), ""),
				want: errRes(opGet, stInvalid, 1)}},
			closes: true},
		{name: "set without its extras closes the connection",
			steps:  []step{{send: req(opSet, 1, 0, "", "k", "v"), want: errRes(opSet, stInvalid, 1)}},
			closes: true},
		{name: "quit answers and closes",
			steps:  []step{{send: req(opQuit, 5, 0, "", "", ""), want: res(opQuit, stOK, 5, 0, "", "", "")}},
			closes: true},
		{name: "quitq closes silently",
			steps:  []step{{send: req(opNoop, 1, 0, "", "", "") + req(opQuitQ, 5, 0, "", "", ""), want: res(opNoop, stOK, 1, 0, "", "", "")}},
			closes: true},
		{name: "cas disabled",
			opts: opts{noCAS: true},
			steps: []step{{send: setK + req(opGet, 2, 0, "", "k", "") + req(opSet, 3, 99, store(0, 0), "k", "w") + req(opGet, 4, 0, "", "k", ""),
				want: res(opSet, stOK, 1, 0, "", "", "") + item(opGet, 2, 0, 5, "", "v") + res(opSet, stOK, 3, 0, "", "", "") + item(opGet, 4, 0, 0, "", "w")}}},
	})
}

// TestBinaryStat covers the binary protocol's STAT: one packet per
// statistic, ended by an empty one; the key names the group.
func TestBinaryStat(t *testing.T) {
	end := func(opaque uint32) string { return res(opStat, stOK, opaque, 0, "", "", "") }
	run(t, []transcript{
		one("unknown group", req(opStat, 1, 0, "", "bogus", ""), errRes(opStat, stNotFound, 1)),
		one("reset", req(opStat, 2, 0, "", "reset", ""), end(2)),
		one("detail dump", req(opStat, 3, 0, "", "detail dump", ""), res(opStat, stOK, 3, 0, "", "detailed", "END\r\n")+end(3)),
		one("detail on, then a dump",
			req(opStat, 1, 0, "", "detail on", "")+req(opSet, 2, 0, store(0, 0), "p:1", "v")+req(opGet, 3, 0, "", "p:1", "")+
				req(opStat, 4, 0, "", "detail dump", ""),
			end(1)+res(opSet, stOK, 2, 1, "", "", "")+item(opGet, 3, 1, 0, "", "v")+
				res(opStat, stOK, 4, 0, "", "detailed", "PREFIX p get 1 hit 1 set 1 del 0\r\nEND\r\n")+end(4)),
		one("detail usage", req(opStat, 4, 0, "", "detail bogus", ""), errRes(opStat, stNotFound, 4)),
		{name: "settings",
			opts: opts{settings: func(add func(name, value string)) {
				add("maxbytes", "67108864")
				add("evictions", "on")
			}},
			steps: []step{{send: req(opStat, 5, 0, "", "settings", ""),
				want: res(opStat, stOK, 5, 0, "", "maxbytes", "67108864") + res(opStat, stOK, 5, 0, "", "evictions", "on") + end(5)}}},
	})
}

// TestBinaryStatGeneral checks the general STAT: packets with the opaque,
// the names every client reads, the values that do not vary.
func TestBinaryStatGeneral(t *testing.T) {
	srv := start(t, opts{})
	c := dial(t, srv.addr)
	c.send(req(opSet, 1, 0, store(0, 0), "k", "v") + req(opGet, 2, 0, "", "k", "") + req(opGet, 3, 0, "", "nope", ""))
	c.expect("workload", res(opSet, stOK, 1, 1, "", "", "")+item(opGet, 2, 1, 0, "", "v")+errRes(opGet, stNotFound, 3))
	c.send(req(opStat, 77, 0, "", "", ""))
	var names []string
	v := map[string]string{}
	for {
		h := c.read(headerBytes)
		body := string(c.read(int(binary.BigEndian.Uint32(h[8:]))))
		if h[0] != magicRes || h[1] != opStat || binary.BigEndian.Uint16(h[6:]) != stOK || binary.BigEndian.Uint32(h[12:]) != 77 || h[4] != 0 {
			t.Fatalf("STAT packet %s, want opcode STAT, status OK, opaque 77, no extras", show(h))
		}
		kl := int(binary.BigEndian.Uint16(h[2:]))
		if kl == 0 {
			if body != "" {
				t.Fatalf("terminating packet has a body %q", body)
			}
			break
		}
		names = append(names, body[:kl])
		v[body[:kl]] = body[kl:]
	}
	if missing, ordered := inOrder(names, generalStatsOrder); len(missing) > 0 || !ordered {
		t.Errorf("STAT: missing %v, in memcached's order: %v; got %v", missing, ordered, names)
	}
	for name, want := range map[string]string{"version": version(), "cmd_get": "2", "get_hits": "1", "get_misses": "1", "cmd_set": "1", "curr_items": "1"} {
		if v[name] != want {
			t.Errorf("STAT %s = %q, want %q", name, v[name], want)
		}
	}
}
