package memory

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
)

func TestRecSize(t *testing.T) {
	for _, tc := range []struct {
		klen, vlen int
		exp, flags uint32
		want       int64
	}{
		{1, 0, 0, 0, 20},
		{1, 3, 0, 0, 20},
		{1, 4, 0, 0, 24},
		{15, 100, 0, 0, 132},
		{15, 100, 1, 0, 136},
		{15, 100, 0, 1, 136},
		{15, 100, 1, 1, 140},
		{1, formVlen, 0, 0, (hdrMin + 1 + formVlen + 3) &^ 3},
		{1, formVlen + 1, 0, 0, (hdrMin + 4 + 1 + formVlen + 1 + 3) &^ 3},
		{250, 1 << 20, 7, 7, (hdrMax - 4 + 250 + 1<<20 + 3) &^ 3},
	} {
		if got := recSizeOf(tc.klen, tc.vlen, tc.exp, tc.flags, false); got != tc.want {
			t.Errorf("recSizeOf(%d, %d, %d, %d) = %d, want %d", tc.klen, tc.vlen, tc.exp, tc.flags, got, tc.want)
		}
		// A record with a CRC (a restartable file's) is 4 bytes more.
		if got := recSizeOf(tc.klen, tc.vlen, tc.exp, tc.flags, true); got != tc.want+4 {
			t.Errorf("recSizeOf(%d, %d, %d, %d, crc) = %d, want %d", tc.klen, tc.vlen, tc.exp, tc.flags, got, tc.want+4)
		}
	}
}

func TestExpWord(t *testing.T) {
	for _, tc := range []struct {
		in   int64
		want uint32
	}{{0, 0}, {-5, 1}, {1, 1}, {1_700_000_000, 1_700_000_000}, {1<<32 - 1, 1<<32 - 1}, {1 << 32, 1<<32 - 1}, {1 << 62, 1<<32 - 1}} {
		if got := expWord(tc.in); got != tc.want {
			t.Errorf("expWord(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		key   string
		value string
		cas   uint64
		exp   uint32
		flags uint32
		atime uint32
		bits  uint8
	}{
		{"small", "k", "v", 1, 0, 0, 0, 0},
		{"empty value", "key", "", 7, 1_700_000_100, 0xdeadbeef, 1_700_000_000, engine.BitStale},
		{"binary", "\x00\xff", "\r\n\x00", 1 << 63, 1, 0xffffffff, 1<<32 - 1, bitsMeta | freqMask},
		{"flags only", "f", "value", 3, 0, 5, 9, 0},
		{"exptime only", "e", "value", 3, 1<<32 - 1, 0, 9, 0},
		{"long key", string(bytes.Repeat([]byte("k"), 250)), string(bytes.Repeat([]byte("v"), 1000)), 42, 77, 1, 2, 0},
		{"inline length limit", "k", string(bytes.Repeat([]byte("v"), formVlen)), 42, 0, 0, 2, 0},
		{"long value", "k", string(bytes.Repeat([]byte("v"), formVlen+1)), 42, 0, 0, 2, 0},
		{"long value, all fields", "kk", string(bytes.Repeat([]byte("w"), 70000)), 42, 1234, 99, 2, engine.BitFetched},
	} {
		for _, withCRC := range []bool{false, true} {
			name := tc.name
			if withCRC {
				name += ", crc"
			}
			t.Run(name, func(t *testing.T) {
				recordRoundTrip(t, tc.key, tc.value, tc.cas, tc.exp, tc.flags, tc.atime, tc.bits, withCRC)
			})
		}
	}
}

func recordRoundTrip(t *testing.T, key, value string, cas uint64, exp, flags, atime uint32, bits uint8, withCRC bool) {
	tc := struct {
		key, value string
		cas        uint64
		exp, flags uint32
		atime      uint32
		bits       uint8
	}{key, value, cas, exp, flags, atime, bits}
	{
		{
			size := recSizeOf(len(tc.key), len(tc.value), tc.exp, tc.flags, withCRC)
			buf := make([]byte, size+8)
			for i := range buf {
				buf[i] = 0xAA // padding must be cleared
			}
			writeRecord(buf[:size], []byte(tc.key), []byte(tc.value), tc.cas, tc.exp, tc.flags, tc.atime, tc.bits, withCRC)
			r := rec{b: buf}
			if r.size() != size || r.klen() != len(tc.key) || r.vlen() != len(tc.value) {
				t.Fatalf("size %d klen %d vlen %d", r.size(), r.klen(), r.vlen())
			}
			if string(r.key()) != tc.key || string(r.value()) != tc.value {
				t.Fatalf("key %q value %q", r.key(), r.value())
			}
			if r.cas() != tc.cas || r.exptime() != int64(tc.exp) || r.flags() != tc.flags || r.atime() != tc.atime || infoBits(r.info()) != tc.bits {
				t.Fatalf("meta cas %d exp %d flags %d atime %d bits %#x", r.cas(), r.exptime(), r.flags(), r.atime(), infoBits(r.info()))
			}
			h := formHdr(infoForm(r.info()))
			for i := h + len(tc.key) + len(tc.value); i < int(size); i++ {
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
			if r.hasCRC() != withCRC {
				t.Fatalf("hasCRC %v, written with %v", r.hasCRC(), withCRC)
			}
			if r.valid(h + len(tc.key) + len(tc.value) - 1) {
				t.Fatal("record valid although it overruns the limit")
			}
			// Mutable fields are outside the CRC.
			r.setAtime(12345)
			r.touchBits()
			r.setBits(0)
			if !r.valid(len(buf)) {
				t.Fatal("touching the record broke its CRC")
			}
			// Rewriting the metadata in place keeps the shape.
			if r.fitsMeta(tc.exp, tc.flags) {
				r.writeMeta(tc.cas+1, tc.exp, tc.flags)
				r.sealCRC()
				if r.cas() != tc.cas+1 || r.exptime() != int64(tc.exp) || r.flags() != tc.flags || string(r.value()) != tc.value || !r.valid(len(buf)) {
					t.Fatal("writeMeta broke the record")
				}
			} else {
				t.Fatal("a record has no room for its own metadata")
			}
			if got := r.fitsMeta(5, 0); got != (tc.exp != 0) {
				t.Errorf("fitsMeta(exptime) = %v with exptime %d", got, tc.exp)
			}
			if got := r.fitsMeta(0, 5); got != (tc.flags != 0) {
				t.Errorf("fitsMeta(flags) = %v with flags %d", got, tc.flags)
			}
			// Moving it keeps it valid.
			moved := bytes.Clone(buf[:size])
			if !(rec{b: moved}).valid(len(moved)) {
				t.Fatal("a copied record is not valid")
			}
			if !withCRC {
				return
			}
			// Any flipped bit in a covered byte is detected.
			for _, i := range []int{offCAS, offCAS + 7, hdrMin + 4, h - 1, offInfo, offForm, offForm + 1, h, h + len(tc.key) - 1, h + len(tc.key) + len(tc.value) - 1} {
				if i >= h+len(tc.key)+len(tc.value) {
					continue // an empty value
				}
				c := bytes.Clone(buf[:size])
				c[i] ^= 1
				if (rec{b: c}).valid(len(c)) {
					t.Errorf("flipping a bit of byte %d went unnoticed", i)
				}
			}
			// So is a record of another format version.
			c := bytes.Clone(buf[:size])
			binary.LittleEndian.PutUint32(c[hdrMin:], crc32.Update(crcSeed^1, castagnoli, nil))
			if (rec{b: c}).valid(len(c)) {
				t.Error("a record with a foreign CRC is valid")
			}
		}
	}
}

func TestTouchBits(t *testing.T) {
	buf := make([]byte, 64)
	writeRecord(buf, []byte("k"), nil, 1, 0, 0, 0, engine.BitStale, true)
	r := rec{b: buf}
	for i, want := range []uint8{1, 2, 3, 3, 3} {
		r.touchBits()
		b := infoBits(r.info())
		if b>>freqShift != want || b&bitsMeta != engine.BitStale|engine.BitFetched {
			t.Fatalf("after %d touches bits = %#x", i+1, b)
		}
	}
	if r.klen() != 1 || infoForm(r.info()) != formC || !r.valid(len(buf)) {
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
