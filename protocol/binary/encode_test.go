package binary

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

// The expected frames are written out by hand from protocol-binary.txt's
// examples.
func TestEncode(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"get hit", AppendItem(nil, OpGet, 0, 1, 0xdeadbeef, nil, []byte("World")),
			"81 00 0000 04 00 0000 00000009 00000000 0000000000000001 deadbeef 576f726c64"},
		{"getk hit", AppendItem(nil, OpGetK, 0, 1, 0xdeadbeef, []byte("Hello"), []byte("World")),
			"81 0c 0005 04 00 0000 0000000e 00000000 0000000000000001 deadbeef 48656c6c6f 576f726c64"},
		{"get miss", AppendError(nil, OpGet, StatusKeyNotFound, 0, ""),
			"81 00 0000 00 00 0001 00000009 00000000 0000000000000000 4e6f7420666f756e64"},
		{"getk miss", AppendResponse(nil, OpGetK, StatusKeyNotFound, 3, 0, nil, []byte("Hello"), nil),
			"81 0c 0005 00 00 0001 00000005 00000003 0000000000000000 48656c6c6f"},
		{"incr", AppendCounter(nil, OpIncrement, 0, 5, 0),
			"81 05 0000 00 00 0000 00000008 00000000 0000000000000005 0000000000000000"},
		{"stat", AppendStat(nil, 9, "pid", "42"),
			"81 10 0003 00 00 0000 00000005 00000009 0000000000000000 706964 3432"},
		{"stat end", AppendStat(nil, 9, "", ""),
			"81 10 0000 00 00 0000 00000000 00000009 0000000000000000"},
		{"version", AppendStringResponse(nil, OpVersion, StatusOK, 0, 0, "1.3.1"),
			"81 0b 0000 00 00 0000 00000005 00000000 0000000000000000 312e332e31"},
		{"request", AppendRequest(nil, OpAdd, 0, 0, []byte{0xde, 0xad, 0xbe, 0xef, 0, 0, 0x0e, 0x10}, []byte("Hello"), []byte("World")),
			"80 02 0005 08 00 0000 00000012 00000000 0000000000000000 deadbeef00000e10 48656c6c6f 576f726c64"},
	}
	for _, tt := range tests {
		if want := unhex(tt.want); !bytes.Equal(tt.got, want) {
			t.Errorf("%s:\n got  %x\n want %x", tt.name, tt.got, want)
		}
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	h := Header{Magic: MagicRequest, Opcode: OpGATKQ, KeyLen: 0x1234, ExtLen: 4, DataType: 1, VBucket: 0xabcd, BodyLen: 0x01020304, Opaque: 0xdeadbeef, CAS: 0x0102030405060708}
	b := h.Append(nil)
	if len(b) != HeaderLen || ParseHeader(b) != h {
		t.Fatalf("round trip: %x -> %+v", b, ParseHeader(b))
	}
}

func TestEncodeAllocs(t *testing.T) {
	dst := make([]byte, 0, 4096)
	key, val := []byte("key"), []byte("value")
	allocs := testing.AllocsPerRun(100, func() {
		d := AppendItem(dst[:0], OpGetK, 1, 2, 3, key, val)
		d = AppendError(d, OpGet, StatusKeyNotFound, 1, "")
		d = AppendCounter(d, OpIncrement, 1, 2, 3)
		d = AppendStat(d, 1, "pid", "1")
		_ = AppendResponse(d, OpNoop, StatusOK, 1, 0, nil, nil, nil)
	})
	if allocs != 0 {
		t.Fatalf("encoders allocate %v times per run", allocs)
	}
}

func BenchmarkDecodeGetKQ(b *testing.B) {
	var in []byte
	for i := range 100 {
		in = AppendRequest(in, OpGetKQ, uint32(i), 0, nil, []byte("key:000000"), nil)
	}
	in = AppendRequest(in, OpNoop, 0, 0, nil, nil, nil)
	var dec Decoder
	var req Request
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		for p := in; len(p) > 0; {
			n, _, _ := dec.Decode(p, &req)
			p = p[n:]
		}
	}
}

func BenchmarkAppendItem(b *testing.B) {
	dst := make([]byte, 0, 4096)
	key, val := []byte("key:000000"), make([]byte, 100)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendItem(dst[:0], OpGetK, 1, 2, 3, key, val)
	}
}
