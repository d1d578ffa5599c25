package memory

import (
	"bytes"
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
)

func TestRecSize(t *testing.T) {
	for _, tc := range []struct {
		klen, vlen int
		want       int64
	}{
		{1, 0, 40},
		{1, 3, 40},
		{1, 4, 44},
		{15, 100, 152},
		{250, 1 << 20, (hdrSize + 250 + 1<<20 + 3) &^ 3},
	} {
		if got := recSize(tc.klen, tc.vlen); got != tc.want {
			t.Errorf("recSize(%d, %d) = %d, want %d", tc.klen, tc.vlen, got, tc.want)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		key     string
		value   string
		cas     uint64
		exptime int64
		flags   uint32
		atime   uint32
		bits    uint8
	}{
		{"small", "k", "v", 1, 0, 0, 0, 0},
		{"empty value", "key", "", 7, 1_700_000_100, 0xdeadbeef, 1_700_000_000, engine.BitStale},
		{"binary", "\x00\xff", "\r\n\x00", 1 << 63, -5, 0xffffffff, 1<<32 - 1, bitsMeta | freqMask},
		{"long key", string(bytes.Repeat([]byte("k"), 250)), string(bytes.Repeat([]byte("v"), 1000)), 42, 1 << 40, 1, 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			size := recSize(len(tc.key), len(tc.value))
			buf := make([]byte, size+8)
			for i := range buf {
				buf[i] = 0xAA // padding must be cleared
			}
			writeRecord(buf[:size], []byte(tc.key), []byte(tc.value), tc.cas, tc.exptime, tc.flags, tc.atime, tc.bits)
			r := rec{b: buf}
			if r.size() != size || r.klen() != len(tc.key) || r.vlen() != len(tc.value) {
				t.Fatalf("size %d klen %d vlen %d", r.size(), r.klen(), r.vlen())
			}
			if string(r.key()) != tc.key || string(r.value()) != tc.value {
				t.Fatalf("key %q value %q", r.key(), r.value())
			}
			if r.cas() != tc.cas || r.exptime() != tc.exptime || r.flags() != tc.flags || r.atime() != tc.atime || infoBits(r.info()) != tc.bits {
				t.Fatalf("meta cas %d exp %d flags %d atime %d bits %#x", r.cas(), r.exptime(), r.flags(), r.atime(), infoBits(r.info()))
			}
			if infoVersion(r.info()) != recVersion {
				t.Fatalf("version %d", infoVersion(r.info()))
			}
			for i := hdrSize + len(tc.key) + len(tc.value); i < int(size); i++ {
				if buf[i] != 0 {
					t.Fatalf("padding byte %d = %#x", i, buf[i])
				}
			}
			if buf[size] != 0xAA {
				t.Fatal("wrote past the record")
			}
			if !r.valid(len(buf)) {
				t.Fatal("fresh record is not valid")
			}
			// Mutable fields are outside the CRC.
			r.setAtime(12345)
			r.touchBits()
			r.setBits(0)
			if !r.valid(len(buf)) {
				t.Fatal("touching the record broke its CRC")
			}
			// Moving it keeps it valid.
			moved := bytes.Clone(buf[:size])
			if !(rec{b: moved}).valid(len(moved)) {
				t.Fatal("a copied record is not valid")
			}
			// Any flipped bit in a covered byte is detected.
			for _, i := range []int{offCAS, offExptime + 7, offFlags, offVlen, offInfo, offInfo + 2, hdrSize, int(size) - 1 - (int(size) - hdrSize - len(tc.key) - len(tc.value))} {
				c := bytes.Clone(buf[:size])
				c[i] ^= 1
				if (rec{b: c}).valid(len(c)) {
					t.Errorf("flipping a bit of byte %d went unnoticed", i)
				}
			}
		})
	}
}

func TestTouchBits(t *testing.T) {
	buf := make([]byte, 64)
	writeRecord(buf, []byte("k"), nil, 1, 0, 0, 0, engine.BitStale)
	r := rec{b: buf}
	for i, want := range []uint8{1, 2, 3, 3, 3} {
		r.touchBits()
		b := infoBits(r.info())
		if b>>freqShift != want || b&bitsMeta != engine.BitStale|engine.BitFetched {
			t.Fatalf("after %d touches bits = %#x", i+1, b)
		}
	}
	if r.klen() != 1 || infoVersion(r.info()) != recVersion {
		t.Fatal("touchBits changed other bytes of the info word")
	}
}

func TestEntry(t *testing.T) {
	for _, tc := range []struct {
		tag uint64
		off int64
	}{{0, 0}, {tagMask, 0}, {1, 4}, {tagMask, maxArena - recAlign}, {12345, 1 << 30}} {
		e := makeEntry(tc.tag, tc.off)
		if e == 0 || entryTag(e) != tc.tag || entryOff(e) != tc.off {
			t.Errorf("makeEntry(%d, %d) = %#x -> tag %d off %d", tc.tag, tc.off, e, entryTag(e), entryOff(e))
		}
	}
}
