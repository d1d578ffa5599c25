package binary

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

type decodeTest struct {
	name string
	dec  Decoder
	in   []byte
	want []string
}

var decodeTests = []decodeTest{
	{name: "get", in: frame(OpGet, 1, 0, "", "foo", ""),
		want: []string{`GET opaque=1 cas=0 key="foo"`}},
	{name: "getkq pipeline", in: cat(frame(OpGetKQ, 1, 0, "", "a", ""), frame(OpGetKQ, 2, 0, "", "b", ""), frame(OpNoop, 3, 0, "", "", "")),
		want: []string{`GETKQ opaque=1 cas=0 key="a"`, `GETKQ opaque=2 cas=0 key="b"`, `NOOP opaque=3 cas=0 key=""`}},
	{name: "set", in: frame(OpSet, 9, 77, setExtras(5, 60), "k", "hello"),
		want: []string{`SET opaque=9 cas=77 key="k" flags=5 exptime=60 delta=0 initial=0 value="hello"`}},
	{name: "set empty value", in: frame(OpSetQ, 9, 0, setExtras(0, 0), "k", ""),
		want: []string{`SETQ opaque=9 cas=0 key="k" flags=0 exptime=0 delta=0 initial=0 value=""`}},
	{name: "append", in: frame(OpAppend, 1, 0, "", "k", "tail"),
		want: []string{`APPEND opaque=1 cas=0 key="k" value="tail"`}},
	{name: "incr", in: frame(OpIncrement, 1, 0, arithExtras(3, 10, NoCreate), "n", ""),
		want: []string{`INCREMENT opaque=1 cas=0 key="n" flags=0 exptime=4294967295 delta=3 initial=10`}},
	{name: "touch", in: frame(OpGATKQ, 1, 0, u32(100), "k", ""),
		want: []string{`GATKQ opaque=1 cas=0 key="k" flags=0 exptime=100 delta=0 initial=0`}},
	{name: "flush delay", in: frame(OpFlushQ, 1, 0, u32(30), "", ""),
		want: []string{`FLUSHQ opaque=1 cas=0 key="" flags=0 exptime=30 delta=0 initial=0`}},
	{name: "flush", in: frame(OpFlush, 1, 0, "", "", ""),
		want: []string{`FLUSH opaque=1 cas=0 key=""`}},
	{name: "stat group", in: frame(OpStat, 1, 0, "", "settings", ""),
		want: []string{`STAT opaque=1 cas=0 key="settings"`}},
	{name: "stat extra body skipped", in: cat(rawFrame(0x80, OpStat, 0, 0, 3, "xyz"), frame(OpNoop, 2, 0, "", "", "")),
		want: []string{`STAT opaque=7 cas=0 key=""`, `NOOP opaque=2 cas=0 key=""`}},
	{name: "version quit", in: cat(frame(OpVersion, 1, 0, "", "", ""), frame(OpQuitQ, 2, 0, "", "", "")),
		want: []string{`VERSION opaque=1 cas=0 key=""`, `QUITQ opaque=2 cas=0 key=""`}},

	{name: "bad magic", in: []byte("get foo\r\n"), want: []string{`err invalid magic op=GET opaque=0 key=""`, "close"}},
	{name: "response magic", in: rawFrame(0x81, OpGet, 0, 0, 0, ""), want: []string{`err invalid magic op=GET opaque=0 key=""`, "close"}},
	{name: "key beyond body", in: rawFrame(0x80, OpGet, 5, 0, 3, "abc"),
		want: []string{`err key and extras longer than the body op=GET opaque=7 key=""`, "close"}},
	{name: "extras beyond body", in: rawFrame(0x80, OpSet, 1, 8, 8, "abcdefgh"),
		want: []string{`err key and extras longer than the body op=SET opaque=7 key=""`, "close"}},
	{name: "key too long", in: rawFrame(0x80, OpGet, 251, 0, 251, strings.Repeat("k", 251)),
		want: []string{`err key too long op=GET opaque=7 key=""`, "close"}},
	{name: "get with extras", in: rawFrame(0x80, OpGet, 1, 4, 5, "xxxxk"),
		want: []string{`err invalid extras, key or body length for the opcode op=GET opaque=7 key=""`, "close"}},
	{name: "get without key", in: rawFrame(0x80, OpGet, 0, 0, 0, ""),
		want: []string{`err invalid extras, key or body length for the opcode op=GET opaque=7 key=""`, "close"}},
	{name: "set short extras", in: rawFrame(0x80, OpSet, 1, 4, 5, "xxxxk"),
		want: []string{`err invalid extras, key or body length for the opcode op=SET opaque=7 key=""`, "close"}},
	{name: "incr short extras", in: rawFrame(0x80, OpIncrement, 1, 8, 9, "xxxxxxxxk"),
		want: []string{`err invalid extras, key or body length for the opcode op=INCREMENT opaque=7 key=""`, "close"}},
	{name: "noop with body", in: rawFrame(0x80, OpNoop, 0, 0, 1, "x"),
		want: []string{`err invalid extras, key or body length for the opcode op=NOOP opaque=7 key=""`, "close"}},
	{name: "flush extras 8", in: rawFrame(0x80, OpFlush, 0, 8, 8, "xxxxxxxx"),
		want: []string{`err invalid extras, key or body length for the opcode op=FLUSH opaque=7 key=""`, "close"}},
	{name: "get body 2^32-1", in: rawFrame(0x80, OpGet, 1, 0, 1<<32-1, "k"),
		want: []string{`err invalid extras, key or body length for the opcode op=GET opaque=7 key=""`, "close"}},

	{name: "unknown opcode", in: cat(rawFrame(0x80, 0x50, 1, 0, 4, "kxyz"), frame(OpNoop, 2, 0, "", "", "")),
		want: []string{`err unknown command op=0x50 opaque=7 key=""`, `NOOP opaque=2 cas=0 key=""`}},
	{name: "unknown opcode huge body", in: cat(rawFrame(0x80, 0xfe, 0, 0, 1<<32-1, "abc")),
		want: []string{`err body too large op=0xfe opaque=7 key=""`, "close"}},
	{name: "unknown opcode large body", in: cat(rawFrame(0x80, 0xfe, 0, 0, 1<<31-1, "abc")),
		want: []string{`err unknown command op=0xfe opaque=7 key=""`, "skipping 2147483644"}},
	{name: "stat body 2^31", in: cat(rawFrame(0x80, OpStat, 0, 0, 1<<31, "abc")),
		want: []string{`err body too large op=STAT opaque=7 key=""`, "close"}},
	{name: "sasl off", in: cat(frame(OpSASLListMechs, 1, 0, "", "", ""), frame(OpSASLAuth, 2, 0, "", "PLAIN", "\x00u\x00p"), frame(OpNoop, 3, 0, "", "", "")),
		want: []string{`err unknown command op=SASL_LIST_MECHS opaque=1 key=""`, `err unknown command op=SASL_AUTH opaque=2 key=""`, `NOOP opaque=3 cas=0 key=""`}},
	{name: "sasl on", dec: Decoder{SASL: true}, in: cat(frame(OpSASLListMechs, 1, 0, "", "", ""), frame(OpSASLAuth, 2, 0, "", "PLAIN", "\x00u\x00p")),
		want: []string{`SASL_LIST_MECHS opaque=1 cas=0 key=""`, `SASL_AUTH opaque=2 cas=0 key="PLAIN" value="\x00u\x00p"`}},
	{name: "sasl mech too long", dec: Decoder{SASL: true}, in: cat(frame(OpSASLAuth, 2, 0, "", strings.Repeat("M", 33), "data"), frame(OpNoop, 3, 0, "", "", "")),
		want: []string{`err SASL mechanism name too long op=SASL_AUTH opaque=2 key="` + strings.Repeat("M", 33) + `"`, `NOOP opaque=3 cas=0 key=""`}},
	{name: "sasl too large", dec: Decoder{SASL: true, ItemSizeMax: 1024}, in: cat(frame(OpSASLAuth, 2, 0, "", "PLAIN", strings.Repeat("x", 2000)), frame(OpNoop, 3, 0, "", "", "")),
		want: []string{`err SASL data too large op=SASL_AUTH opaque=2 key="PLAIN"`, `NOOP opaque=3 cas=0 key=""`}},
	{name: "auth required", dec: Decoder{SASL: true, RequireAuth: true}, in: cat(frame(OpVersion, 1, 0, "", "", ""), frame(OpGet, 2, 0, "", "k", "")),
		want: []string{`VERSION opaque=1 cas=0 key=""`, `err not authenticated op=GET opaque=2 key=""`, "close"}},
	{name: "auth before length check", dec: Decoder{SASL: true, RequireAuth: true}, in: rawFrame(0x80, OpGet, 300, 0, 300, ""),
		want: []string{`err not authenticated op=GET opaque=7 key=""`, "close"}},

	{name: "set too large", dec: Decoder{ItemSizeMax: 1024}, in: cat(frame(OpSet, 4, 0, setExtras(0, 0), "big", strings.Repeat("v", 1000)), frame(OpGet, 5, 0, "", "big", "")),
		want: []string{`err item too large op=SET opaque=4 key="big"`, `GET opaque=5 cas=0 key="big"`}},
	{name: "set fits exactly", dec: Decoder{ItemSizeMax: 1024}, in: frame(OpSet, 4, 0, setExtras(0, 0), "k", strings.Repeat("v", 1024-48-2-2-8)),
		want: []string{`SET opaque=4 cas=0 key="k" flags=0 exptime=0 delta=0 initial=0 value="` + strings.Repeat("v", 1024-48-2-2-8) + `"`}},
	{name: "set one too many", dec: Decoder{ItemSizeMax: 1024}, in: frame(OpSet, 4, 0, setExtras(0, 0), "k", strings.Repeat("v", 1024-48-2-2-8+1)),
		want: []string{`err item too large op=SET opaque=4 key="k"`}},
	{name: "set body 2^32-1", in: append(rawFrame(0x80, OpSet, 1, 8, 1<<32-1, setExtras(1, 2)+"k"), "vvvv"...),
		want: []string{`err body too large op=SET opaque=7 key=""`, "close"}},
	{name: "set value 2^31", in: append(rawFrame(0x80, OpSet, 1, 8, 1<<31+9, setExtras(1, 2)+"k"), "vvvv"...),
		want: []string{`err body too large op=SET opaque=7 key=""`, "close"}},
	{name: "set value 2^31-1", in: append(rawFrame(0x80, OpSet, 1, 8, 1<<31-1+9, setExtras(1, 2)+"k"), "vvvv"...),
		want: []string{`err item too large op=SET opaque=7 key="k"`, "skipping 2147483643"}},
	{name: "appendq too large", dec: Decoder{ItemSizeMax: 1024}, in: frame(OpAppendQ, 4, 0, "", "k", strings.Repeat("v", 2000)),
		want: []string{`err item too large op=APPENDQ opaque=4 key="k"`}},
}

func TestDecode(t *testing.T) {
	for _, tt := range decodeTests {
		t.Run(tt.name, func(t *testing.T) {
			dec := tt.dec
			got := run(t, &dec, [][]byte{tt.in})
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got\n  %q\nwant\n  %q", got, tt.want)
			}
		})
	}
}

// TestDecodeSplitEverywhere feeds every test input split at every offset,
// and byte by byte, and expects the same requests as in one piece.
func TestDecodeSplitEverywhere(t *testing.T) {
	for _, tt := range decodeTests {
		t.Run(tt.name, func(t *testing.T) {
			for at := 1; at < len(tt.in); at++ {
				dec := tt.dec
				got := run(t, &dec, [][]byte{tt.in[:at], tt.in[at:]})
				if !slices.Equal(got, tt.want) {
					t.Fatalf("split@%d: got\n  %q\nwant\n  %q", at, got, tt.want)
				}
			}
			bytewise := make([][]byte, len(tt.in))
			for i := range tt.in {
				bytewise[i] = tt.in[i : i+1]
			}
			dec := tt.dec
			if got := run(t, &dec, bytewise); !slices.Equal(got, tt.want) {
				t.Fatalf("bytewise: got\n  %q\nwant\n  %q", got, tt.want)
			}
		})
	}
}

// TestDecodeNeed checks that an incomplete frame asks for exactly the
// bytes it lacks, so that a connection reads no more than the frame.
func TestDecodeNeed(t *testing.T) {
	f := frame(OpSet, 1, 0, setExtras(0, 0), "key", "value")
	var dec Decoder
	var req Request
	for at := 0; at < len(f); at++ {
		n, need, err := dec.Decode(f[:at], &req)
		if n != 0 || err != nil {
			t.Fatalf("at %d: n=%d err=%v", at, n, err)
		}
		want := HeaderLen
		switch {
		case at >= HeaderLen+8+3:
			want = len(f)
		case at >= HeaderLen:
			want = HeaderLen + 8 + 3
		}
		if need != want {
			t.Fatalf("at %d: need %d, want %d", at, need, want)
		}
	}
}

// TestDecodeTooLargeKeepsNothing checks that an announced 2 GiB value is
// skipped as it arrives: the decoder consumes every byte it is given and
// never asks for more than a header.
func TestDecodeTooLargeKeepsNothing(t *testing.T) {
	var dec Decoder
	var req Request
	f := append(rawFrame(0x80, OpSetQ, 1, 8, 1<<31-1, setExtras(0, 0)+"k"), make([]byte, 1000)...)
	n, need, err := dec.Decode(f, &req)
	if !errors.Is(err, ErrTooLarge) || n != len(f) || need != 0 {
		t.Fatalf("Decode = %d, %d, %v", n, need, err)
	}
	chunk := make([]byte, 64<<10)
	for range 10 {
		n, need, err = dec.Decode(chunk, &req)
		if err != nil || n != len(chunk) || need != 0 || !req.Empty() {
			t.Fatalf("skip: %d, %d, %v", n, need, err)
		}
	}
	if want := uint64(1<<31-1) - 9 - 1000 - 10*uint64(len(chunk)); dec.Skipping() != want {
		t.Fatalf("Skipping = %d, want %d", dec.Skipping(), want)
	}
}

func TestErrorReply(t *testing.T) {
	req := Request{Header: Header{Opcode: OpSetQ, Opaque: 0xdeadbeef}}
	got := ErrTooLarge.AppendReply(nil, &req)
	want := AppendError(nil, OpSetQ, StatusTooLarge, 0xdeadbeef, "Too large.")
	if !bytes.Equal(got, want) {
		t.Fatalf("got %x want %x", got, want)
	}
	if got := ErrBadMagic.AppendReply(nil, &req); len(got) != 0 {
		t.Fatalf("bad magic replied %x", got)
	}
}

func TestOpcodes(t *testing.T) {
	for op, base := range map[Opcode]Opcode{OpGetQ: OpGet, OpGetKQ: OpGetK, OpSetQ: OpSet, OpGATKQ: OpGATK, OpFlushQ: OpFlush, OpGet: OpGet, OpStat: OpStat} {
		if op.Base() != base || op.Quiet() != (op != base) {
			t.Errorf("%s: base %s quiet %v", op, op.Base(), op.Quiet())
		}
	}
	if Opcode(0x1b).Known() || Opcode(0x1b).String() != "0x1b" {
		t.Errorf("0x1b: known %v, %s", Opcode(0x1b).Known(), Opcode(0x1b))
	}
}

func TestDecodeAllocs(t *testing.T) {
	in := cat(frame(OpGetKQ, 1, 0, "", "a", ""), frame(OpSet, 2, 0, setExtras(1, 2), "k", "value"), frame(OpNoop, 3, 0, "", "", ""))
	var dec Decoder
	var req Request
	allocs := testing.AllocsPerRun(100, func() {
		b := in
		for len(b) > 0 {
			n, _, err := dec.Decode(b, &req)
			if err != nil || n == 0 {
				t.Fatal(n, err)
			}
			b = b[n:]
		}
	})
	if allocs != 0 {
		t.Fatalf("Decode allocates %v times per run", allocs)
	}
}
