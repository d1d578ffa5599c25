package memory

import (
	"bytes"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/mnemo-cache/mnemo/engine"
)

func crcOf(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

func TestFileHeaderRoundTrip(t *testing.T) {
	b := make([]byte, filePage)
	encodeFileHeader(b)
	if err := decodeFileHeader(b); err != nil {
		t.Fatalf("decode: %v", err)
	}
	for i := 0; i < fhSize; i++ {
		c := bytes.Clone(b)
		c[i] ^= 0x10
		err := decodeFileHeader(c)
		if err == nil {
			t.Fatalf("byte %d flipped: header still decodes", i)
		}
		if i >= 8 && !errors.Is(err, errBadChecksum) {
			t.Fatalf("byte %d flipped: %v, want a checksum failure", i, err)
		}
	}
	if err := decodeFileHeader(make([]byte, filePage)); !errors.Is(err, errBadMagic) {
		t.Fatalf("zero page: %v, want errBadMagic", err)
	}
}

func TestFileHeaderOtherVersion(t *testing.T) {
	b := make([]byte, filePage)
	encodeFileHeader(b)
	b[fhVersion]++
	// Re-seal: a well-formed header of another version.
	c := b[:fhCRC]
	sum := crcOf(c)
	b[fhCRC], b[fhCRC+1], b[fhCRC+2], b[fhCRC+3] = byte(sum), byte(sum>>8), byte(sum>>16), byte(sum>>24)
	if err := decodeFileHeader(b); !errors.Is(err, errBadVersion) {
		t.Fatalf("version %d: %v, want errBadVersion", fileVersion+1, err)
	}
}

func sampleMeta(txid uint64) fileMeta {
	return fileMeta{
		txid: txid, segSize: 1 << 20, nsegs: 64, itemMax: 1 << 20,
		settings: settingNoCAS, state: stateClean,
		flush:   flushMark{PastAt: 1700000000, PastCAS: 12345, PendAt: 1700000100},
		casHigh: 99999, genHigh: 777,
	}
}

func TestMetaRoundTrip(t *testing.T) {
	m := sampleMeta(7)
	b := make([]byte, filePage)
	storeMeta(b, &m)
	got, err := decodeMeta(b)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if got != m {
		t.Fatalf("round trip: got %+v, want %+v", got, m)
	}
	for i := 0; i < metaSize; i++ {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		if _, err := decodeMeta(c); err == nil {
			t.Fatalf("byte %d flipped: meta still decodes", i)
		}
	}
}

// TestMetaTornFallsBack writes a newer meta over the older of two copies
// and checks, for a write torn after every byte (in storeMeta's order:
// the CRC cleared, the fields in ascending or descending order, the CRC),
// that pickMeta returns the other, intact copy until the CRC is stored.
func TestMetaTornFallsBack(t *testing.T) {
	old0, old1, next := sampleMeta(5), sampleMeta(4), sampleMeta(6)
	next.casHigh, next.state = 123456, 0
	p0, p1 := make([]byte, filePage), make([]byte, filePage)
	storeMeta(p0, &old0)
	storeMeta(p1, &old1)
	m, which, err := pickMeta(p0, p1)
	if err != nil || which != 0 || m != old0 {
		t.Fatalf("pickMeta = %+v, %d, %v; want copy 0", m, which, err)
	}
	to := nextMetaCopy(which)
	if to != 1 {
		t.Fatalf("next copy %d, want 1", to)
	}
	var want [metaSize]byte
	next.encode(want[:])
	for _, desc := range []bool{false, true} {
		for k := 0; k <= mCRC; k++ {
			torn := bytes.Clone(p1)
			torn[mCRC], torn[mCRC+1], torn[mCRC+2], torn[mCRC+3] = 0, 0, 0, 0
			for i := 0; i < k; i++ {
				j := i
				if desc {
					j = mCRC - 1 - i
				}
				torn[j] = want[j]
			}
			m, which, err := pickMeta(p0, torn)
			if err != nil || which != 0 || m != old0 {
				t.Fatalf("torn after %d bytes (desc %v): pickMeta = %+v, %d, %v; want copy 0", k, desc, m, which, err)
			}
		}
	}
	storeMeta(p1, &next)
	m, which, err = pickMeta(p0, p1)
	if err != nil || which != 1 || m != next {
		t.Fatalf("after the write: pickMeta = %+v, %d, %v; want copy 1", m, which, err)
	}
	// Copy 1 damaged later: copy 0 (older) still answers.
	p1[mTxid] ^= 1
	if m, which, err = pickMeta(p0, p1); err != nil || which != 0 || m != old0 {
		t.Fatalf("copy 1 damaged: pickMeta = %+v, %d, %v; want copy 0", m, which, err)
	}
	p0[mSegSize] ^= 1
	if _, _, err = pickMeta(p0, p1); !errors.Is(err, errNoMeta) {
		t.Fatalf("both damaged: %v, want errNoMeta", err)
	}
}

func TestFileLayout(t *testing.T) {
	for _, l := range []fileLayout{{1 << 20, 2}, {1 << 20, 512}, {1 << 20, 513}, {4 << 20, 100000}} {
		if l.segBase()%filePage != 0 || l.segBase() < l.segTabOff()+8*int64(l.nsegs) {
			t.Fatalf("%+v: segBase %d", l, l.segBase())
		}
		if l.size() != l.segBase()+int64(l.nsegs)*l.segSize {
			t.Fatalf("%+v: size %d", l, l.size())
		}
	}
}

func TestSegGen(t *testing.T) {
	tab := make([]byte, 8*4)
	setSegGen(tab, 2, 1<<40+3)
	if segGen(tab, 2) != 1<<40+3 || segGen(tab, 1) != 0 || segGen(tab, 3) != 0 {
		t.Fatal("segment table store/load")
	}
}

// TestRecordStateAndChain checks allocFrame's chain and the state bits
// against the readers of record.go: the state survives touches, and is
// invisible to the record's metadata and CRC.
func TestRecordStateAndChain(t *testing.T) {
	const segSize = 16384
	mem := make([]byte, 2*segSize)
	for i := range mem {
		mem[i] = 0xa5 // a previous generation's leftovers
	}
	startChain(mem, make([]byte, 16), 0, segSize, 1)
	if rec := recAt(mem, 0); rec.info() != 0 {
		t.Fatalf("new chain: first info word %#x, want 0", rec.info())
	}
	key, val := []byte("k1"), bytes.Repeat([]byte("v"), 9000) // a long value: the L form
	size := recSizeOf(len(key), len(val), 7, 9, true)
	allocFrame(mem, 0, size, segSize, len(key), len(val), 7, 9)
	r := recAt(mem, 0)
	if infoForm(r.info())&formL == 0 || r.vlen() != len(val) {
		t.Fatalf("framed: form %#x vlen %d, want the L form and %d", infoForm(r.info()), r.vlen(), len(val))
	}
	if r.size() != size || r.state() != stPending {
		t.Fatalf("framed: size %d state %d, want %d pending", r.size(), r.state(), size)
	}
	if recAt(mem, size).info() != 0 {
		t.Fatal("allocFrame did not end the chain after the new record")
	}
	writeRecord(mem[:size], key, val, 42, 7, 9, 100, 0, true)
	if !r.valid(segSize) || r.state() != stPending {
		t.Fatal("written record: not valid or not pending")
	}
	crc := r.crc()
	r.setState(stLive)
	r.touchBits()
	if r.state() != stLive || r.computeCRC() != crc {
		t.Fatalf("live+touched: state %d, crc changed %v", r.state(), r.computeCRC() != crc)
	}
	var m engine.Meta
	r.meta(&m)
	if m.Bits&stateMask != 0 {
		t.Fatalf("state leaks into engine.Meta bits: %#x", m.Bits)
	}
	r.setState(stDead)
	if r.state() != stDead || infoBits(r.info())&freqMask == 0 {
		t.Fatal("dead: state or frequency counter lost")
	}
	// A record that ends within hdrMin of the segment end leaves no marker.
	markEnd(mem, segSize-hdrMin+4, segSize)
	if recAt(mem, segSize).info() == 0 {
		t.Fatal("markEnd wrote into the next segment")
	}
}

// TestAllocFrameFillsSegment: an allocation that ends exactly at its
// segment's end must not touch the next segment (whose first info word
// would be the end of its chain, losing every record in it).
func TestAllocFrameFillsSegment(t *testing.T) {
	const segSize = 4096
	mem := make([]byte, 2*segSize)
	startChain(mem, make([]byte, 16), 1, segSize, 1)
	key := []byte("next")
	size := recSizeOf(len(key), 10, 0, 0, true)
	allocFrame(mem, segSize, size, segSize, len(key), 10, 0, 0)
	writeRecord(mem[segSize:segSize+size], key, []byte("0123456789"), 1, 0, 0, 1, 0, true)
	before := recAt(mem, segSize).info()
	vlen := segSize - hdrMin - 4 - 1 - 2 // a record (with its CRC) of exactly segSize bytes
	full := recSizeOf(1, vlen, 0, 0, true)
	if full != segSize {
		t.Fatalf("test record is %d bytes, want %d", full, segSize)
	}
	allocFrame(mem, 0, full, segSize, 1, vlen, 0, 0)
	if got := recAt(mem, segSize).info(); got != before {
		t.Fatalf("filling segment 0 changed segment 1's first info word: %#x, was %#x", got, before)
	}
}
