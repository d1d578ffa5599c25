package memory

import (
	"encoding/binary"
	"hash/crc32"
	"sync/atomic"
	"unsafe"
)

// Record layout. Every item is one packed record in the arena, 4-byte
// aligned, never spanning two segments:
//
//	 0        4        8                16               24       28       32 33 34 35 36
//	+--------+--------+----------------+----------------+--------+--------+--+--+--+--+------+--------+---+
//	|  crc   | atime  |      cas       |    exptime     | flags  |  vlen  |kl|bt|vr|rs| key  | value  |pad|
//	+--------+--------+----------------+----------------+--------+--------+--+--+--+--+------+--------+---+
//	 uint32   uint32   uint64 LE        int64 LE         u32 LE   u32 LE   info word
//
//	crc     CRC-32C (Castagnoli) of cas, exptime, flags, vlen, klen and
//	        version (as the little-endian bytes 8..31, then klen, version),
//	        then key and value. It excludes itself and the mutable fields
//	        (atime, bits), so it stays valid while reads touch the item and
//	        when the record is moved to another segment.
//	atime   unix seconds of the last store or touching read; a host-order
//	        word updated with atomic stores under a shard read lock.
//	info    host-order uint32 word, read and written atomically:
//	        kl = key length (1..250), bt = bits (engine.Bit* in bits 0-2,
//	        the eviction frequency counter in bits 6-7), vr = recVersion,
//	        rs = reserved (0).
//
// A record is written completely (CRC last) before its offset is published
// in the index, so a scan of a segment (the restartable mode) can rebuild
// the index from records whose CRC checks.
const (
	offCRC     = 0
	offAtime   = 4
	offCAS     = 8
	offExptime = 16
	offFlags   = 24
	offVlen    = 28
	offInfo    = 32
	hdrSize    = 36
	recAlign   = 4
	recVersion = 1

	// bits byte: the low three are engine.BitFetched, BitStale, BitWinSent;
	// the top two are the eviction frequency counter.
	bitsMeta  = 0x07
	freqShift = 6
	freqMax   = 3
	freqMask  = freqMax << freqShift
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recSize is the arena footprint of a record with a klen-byte key and a
// vlen-byte value.
func recSize(klen, vlen int) int64 {
	return int64(hdrSize+klen+vlen+recAlign-1) &^ (recAlign - 1)
}

// makeInfo packs the info word.
func makeInfo(klen int, bits uint8) uint32 {
	return uint32(klen) | uint32(bits)<<8 | recVersion<<16
}

func infoKlen(w uint32) int      { return int(w & 0xff) }
func infoBits(w uint32) uint8    { return uint8(w >> 8) }
func infoVersion(w uint32) uint8 { return uint8(w >> 16) }

// rec is a view of the record at offset off of the arena mem. It never
// allocates; its accessors read the fields in place.
type rec struct {
	b []byte // from the record's start to the end of its segment (at least)
}

func recAt(mem []byte, off int64) rec { return rec{b: mem[off:]} }

func (r rec) word(at int) *uint32 { return (*uint32)(unsafe.Pointer(&r.b[at])) }

func (r rec) info() uint32   { return atomic.LoadUint32(r.word(offInfo)) }
func (r rec) klen() int      { return infoKlen(r.info()) }
func (r rec) vlen() int      { return int(binary.LittleEndian.Uint32(r.b[offVlen:])) }
func (r rec) cas() uint64    { return binary.LittleEndian.Uint64(r.b[offCAS:]) }
func (r rec) exptime() int64 { return int64(binary.LittleEndian.Uint64(r.b[offExptime:])) }
func (r rec) flags() uint32  { return binary.LittleEndian.Uint32(r.b[offFlags:]) }
func (r rec) atime() uint32  { return atomic.LoadUint32(r.word(offAtime)) }
func (r rec) crc() uint32    { return binary.LittleEndian.Uint32(r.b[offCRC:]) }
func (r rec) size() int64    { return recSize(r.klen(), r.vlen()) }

func (r rec) key() []byte {
	k := r.klen()
	return r.b[hdrSize : hdrSize+k : hdrSize+k]
}

func (r rec) value() []byte {
	k, v := r.klen(), r.vlen()
	return r.b[hdrSize+k : hdrSize+k+v : hdrSize+k+v]
}

// setAtime stores t as the access time unless it is already t.
func (r rec) setAtime(t uint32) {
	p := r.word(offAtime)
	if atomic.LoadUint32(p) != t {
		atomic.StoreUint32(p, t)
	}
}

// touchBits sets BitFetched and bumps the frequency counter (saturating),
// writing only when something changes.
func (r rec) touchBits() {
	p := r.word(offInfo)
	for {
		old := atomic.LoadUint32(p)
		b := infoBits(old)
		nb := b | 1 // engine.BitFetched
		if f := b >> freqShift; f < freqMax {
			nb = nb&^freqMask | (f+1)<<freqShift
		}
		if nb == b {
			return
		}
		if atomic.CompareAndSwapUint32(p, old, old&^0xff00|uint32(nb)<<8) {
			return
		}
	}
}

// setBits replaces the whole bits byte.
func (r rec) setBits(bits uint8) {
	p := r.word(offInfo)
	for {
		old := atomic.LoadUint32(p)
		if atomic.CompareAndSwapUint32(p, old, old&^0xff00|uint32(bits)<<8) {
			return
		}
	}
}

// klenVersion[k] is the byte pair (k, recVersion) that the CRC covers
// after the fixed fields; a global so that computeCRC never allocates (a
// stack buffer would escape through crc32's dispatch).
var klenVersion = func() (t [256][2]byte) {
	for k := range t {
		t[k] = [2]byte{byte(k), recVersion}
	}
	return t
}()

// computeCRC returns the CRC of the record's immutable fields, key and
// value. A record whose version is not recVersion gets a CRC that cannot
// match (valid checks the version first).
func (r rec) computeCRC() uint32 {
	w := r.info()
	k, v := infoKlen(w), r.vlen()
	c := crc32.Update(0, castagnoli, r.b[offCAS:offInfo])
	c = crc32.Update(c, castagnoli, klenVersion[k][:])
	return crc32.Update(c, castagnoli, r.b[hdrSize:hdrSize+k+v])
}

// sealCRC computes and stores the CRC.
func (r rec) sealCRC() {
	binary.LittleEndian.PutUint32(r.b[offCRC:], r.computeCRC())
}

// writeMeta stores the mutable-under-write-lock header fields.
func (r rec) writeMeta(cas uint64, exptime int64, flags uint32) {
	binary.LittleEndian.PutUint64(r.b[offCAS:], cas)
	binary.LittleEndian.PutUint64(r.b[offExptime:], uint64(exptime))
	binary.LittleEndian.PutUint32(r.b[offFlags:], flags)
}

// writeRecord writes a complete record at the start of dst (which must
// hold recSize(len(key), len(value)) bytes) and seals it with its CRC.
func writeRecord(dst []byte, key, value []byte, cas uint64, exptime int64, flags uint32, atime uint32, bits uint8) {
	r := rec{b: dst}
	r.writeMeta(cas, exptime, flags)
	binary.LittleEndian.PutUint32(dst[offVlen:], uint32(len(value)))
	atomic.StoreUint32(r.word(offAtime), atime)
	atomic.StoreUint32(r.word(offInfo), makeInfo(len(key), bits))
	n := copy(dst[hdrSize:], key)
	n += copy(dst[hdrSize+n:], value)
	// Zero the alignment padding so segment scans see deterministic bytes.
	end := int(recSize(len(key), len(value)))
	clear(dst[hdrSize+n : end])
	r.sealCRC()
}

// valid reports whether the record at the start of r looks complete: a
// known version, a key length in range, a value inside limit bytes and a
// matching CRC. It is what a scan that rebuilds the index would check.
func (r rec) valid(limit int) bool {
	if len(r.b) < hdrSize {
		return false
	}
	w := r.info()
	if infoVersion(w) != recVersion || infoKlen(w) == 0 {
		return false
	}
	if int64(hdrSize)+int64(infoKlen(w))+int64(r.vlen()) > int64(min(limit, len(r.b))) {
		return false
	}
	return r.crc() == r.computeCRC()
}
