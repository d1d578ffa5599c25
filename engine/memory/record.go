package memory

import (
	"encoding/binary"
	"hash/crc32"
	"math/bits"
	"sync/atomic"
	"unsafe"

	"github.com/mnemo-cache/mnemo/engine"
)

// Record layout. Every item is one packed record in the arena, 4-byte
// aligned, never spanning two segments: a 16-byte fixed header, up to four
// optional 4-byte fields, the key and the value:
//
//	 0        4  5  6    8                16
//	+--------+--+--+----+----------------+-------+-------+-------+-------+-----+-------+---+
//	| atime  |kl|bt|form|      cas       |  crc  |exptime| flags | vlen  | key | value |pad|
//	+--------+--+--+----+----------------+-------+-------+-------+-------+-----+-------+---+
//	 uint32   info word   uint64 LE       u32 LE  u32 LE  u32 LE  u32 LE
//	                                      if C    if E    if F    if L
//
//	atime   unix seconds of the last store or touching read; a host-order
//	        word updated with atomic stores under a shard read lock.
//	info    host-order uint32 word, read and written atomically:
//	        kl = key length (1..250), bt = bits (engine.Bit* in bits 0-2,
//	        the restartable file's record state in bits 3-4, the eviction
//	        frequency counter in bits 6-7), form = which optional fields
//	        follow (bit 15 E: exptime, bit 14 F: client flags, bit 13 L:
//	        value length, bit 12 C: CRC) and, when L is clear, the value
//	        length itself in bits 0-11 (values under 4 KiB).
//	crc     CRC-32C (Castagnoli), seeded with recVersion, of klen and form,
//	        then the cas and the bytes from exptime (or whatever follows
//	        the crc) to the end of the value. It excludes itself and the
//	        mutable fields (atime, bits), so it stays valid while reads
//	        touch the item and when the record is moved to another
//	        segment; a record of another format version fails it. Present
//	        (C) in every record of a restartable file (format.go), where
//	        the recovery scan needs it to tell a whole record from a torn
//	        one, and in no record of an anonymous arena, where nothing
//	        reads a record the process did not finish writing: 4 bytes and
//	        a pass over the value saved per store.
//	exptime unix seconds (1 for any time in the past, 2^32-1 for any time
//	        after 2106), present only when not 0 (never expires).
//	flags   the client flags, present only when not 0 (memcached's
//	        ITEM_CFLAGS does the same).
//
// A 15-byte key with a 100-byte value and neither flags nor exptime takes
// 132 bytes in an anonymous arena (136 in a file), 136 with an exptime. A
// metadata update (touch) that gives a record a field it has no room for
// rewrites the record (see Update).
//
// A record is written completely (CRC last, when it has one) before its
// offset is published in the index. Reclaim walks a segment record by
// record, and the invariant checks verify the lengths of every indexed
// record and the CRC of those that carry one. In a restartable file
// bits 3-4 of the bits byte hold the record's state (pending, live,
// dead) and a zero info word ends a segment's records; the recovery scan
// (recover.go) indexes the live records whose CRC checks.
//
// Format version 3 (version 2 had a 20-byte header with the CRC always
// present, at offset 0).
const (
	offAtime   = 0
	offInfo    = 4
	offForm    = 6
	offCAS     = 8
	hdrMin     = 16
	hdrMax     = hdrMin + 16
	recAlign   = 4
	recVersion = 3

	formE       = 1 << 15
	formF       = 1 << 14
	formL       = 1 << 13
	formC       = 1 << 12
	formVlen    = formC - 1 // the inline value length
	formOptBits = 12        // form >> formOptBits is the C, L, F, E bits

	// bits byte: the low three are engine.BitFetched, BitStale, BitWinSent;
	// the top two are the eviction frequency counter.
	bitsMeta  = 0x07
	freqShift = 6
	freqMax   = 3
	freqMask  = freqMax << freqShift
)

var (
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
	crcSeed    = crc32.Checksum([]byte{recVersion}, castagnoli)
)

// expWord converts an exptime to the record's 32-bit field: 0 stays 0
// (never), a time before 1970 becomes 1 (expired either way), a time after
// 2106 becomes the largest.
func expWord(x int64) uint32 {
	switch {
	case x == 0:
		return 0
	case x < 0:
		return 1
	case x > 1<<32-1:
		return 1<<32 - 1
	}
	return uint32(x)
}

// makeForm returns the form field of a record with these contents, with
// a CRC field if crc.
func makeForm(vlen int, exp, flags uint32, crc bool) uint32 {
	var f uint32
	if crc {
		f |= formC
	}
	if exp != 0 {
		f |= formE
	}
	if flags != 0 {
		f |= formF
	}
	if vlen > formVlen {
		f |= formL
	} else {
		f |= uint32(vlen)
	}
	return f
}

// formHdrs[f>>formOptBits] is the header size of a record with form f.
var formHdrs = func() (t [16]uint8) {
	for i := range t {
		t[i] = uint8(hdrMin + 4*bits.OnesCount8(uint8(i)))
	}
	return t
}()

// formHdr is the header size of a record with form f.
func formHdr(f uint32) int {
	return int(formHdrs[f>>formOptBits&15])
}

// expAt and flagsAt are the offsets of the exptime and flags fields of a
// record with form f (when it has them): after the CRC, if any, and the
// exptime, if any.
func expAt(f uint32) int   { return hdrMin + int(f>>12&1)*4 }
func flagsAt(f uint32) int { return expAt(f) + int(f>>15)*4 }

// recSizeOf is the arena footprint of a record with a klen-byte key, a
// vlen-byte value, exptime field exp and client flags, with a CRC if crc.
func recSizeOf(klen, vlen int, exp, flags uint32, crc bool) int64 {
	return alignRec(formHdr(makeForm(vlen, exp, flags, crc)) + klen + vlen)
}

// recSize is the footprint of a record with neither exptime nor flags nor
// CRC (an anonymous arena's).
func recSize(klen, vlen int) int64 { return recSizeOf(klen, vlen, 0, 0, false) }

func alignRec(n int) int64 { return int64(n+recAlign-1) &^ (recAlign - 1) }

// makeInfo packs the info word.
func makeInfo(klen int, bits uint8, form uint32) uint32 {
	return uint32(klen) | uint32(bits)<<8 | form<<16
}

func infoKlen(w uint32) int   { return int(w & 0xff) }
func infoBits(w uint32) uint8 { return uint8(w >> 8) }
func infoForm(w uint32) uint32 {
	return w >> 16
}

// rec is a view of the record at offset off of the arena mem. It never
// allocates; its accessors read the fields in place.
type rec struct {
	b []byte // from the record's start to the end of its segment (at least)
}

func recAt(mem []byte, off int64) rec { return rec{b: mem[off:]} }

func (r rec) word(at int) *uint32 { return (*uint32)(unsafe.Pointer(&r.b[at])) }

func (r rec) info() uint32  { return atomic.LoadUint32(r.word(offInfo)) }
func (r rec) klen() int     { return infoKlen(r.info()) }
func (r rec) cas() uint64   { return binary.LittleEndian.Uint64(r.b[offCAS:]) }
func (r rec) atime() uint32 { return atomic.LoadUint32(r.word(offAtime)) }
func (r rec) crc() uint32   { return binary.LittleEndian.Uint32(r.b[hdrMin:]) }

// hasCRC reports whether the record carries a CRC (form bit C).
func (r rec) hasCRC() bool { return infoForm(r.info())&formC != 0 }
func (r rec) vlen() int    { return formVlenOf(r, infoForm(r.info())) }
func (r rec) size() int64 {
	w := r.info()
	f := infoForm(w)
	return alignRec(formHdr(f) + infoKlen(w) + formVlenOf(r, f))
}

// formVlenOf reads the value length of r, whose form is f.
func formVlenOf(r rec, f uint32) int {
	if f&formL == 0 {
		return int(f & formVlen)
	}
	return int(binary.LittleEndian.Uint32(r.b[formHdr(f)-4:]))
}

// meta reads the record's metadata with one load of the info word.
func (r rec) meta(m *engine.Meta) {
	w := r.info()
	f := infoForm(w)
	m.CAS = r.cas()
	m.Atime = int64(r.atime())
	m.Bits = infoBits(w) & bitsMeta
	m.Exptime, m.Flags = 0, 0
	if f&formE != 0 {
		m.Exptime = int64(binary.LittleEndian.Uint32(r.b[expAt(f):]))
	}
	if f&formF != 0 {
		m.Flags = binary.LittleEndian.Uint32(r.b[flagsAt(f):])
	}
}

// exptime returns the exptime field (0 when absent).
func (r rec) exptime() int64 {
	f := infoForm(r.info())
	if f&formE == 0 {
		return 0
	}
	return int64(binary.LittleEndian.Uint32(r.b[expAt(f):]))
}

// flags returns the client flags (0 when absent).
func (r rec) flags() uint32 {
	f := infoForm(r.info())
	if f&formF == 0 {
		return 0
	}
	return binary.LittleEndian.Uint32(r.b[flagsAt(f):])
}

func (r rec) key() []byte {
	w := r.info()
	h, k := formHdr(infoForm(w)), infoKlen(w)
	return r.b[h : h+k : h+k]
}

func (r rec) value() []byte {
	w := r.info()
	f := infoForm(w)
	h, k, v := formHdr(f), infoKlen(w), formVlenOf(r, f)
	return r.b[h+k : h+k+v : h+k+v]
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

// crcStep feeds one byte to a CRC-32C, as crc32.Update would (without a
// slice that would escape through crc32's dispatch).
func crcStep(c uint32, b byte) uint32 {
	c = ^c
	c = castagnoli[byte(c)^b] ^ c>>8
	return ^c
}

// computeCRC returns the CRC of the record's immutable fields, key and
// value (of a record with a CRC field).
func (r rec) computeCRC() uint32 {
	w := r.info()
	f := infoForm(w)
	c := crcStep(crcSeed, byte(infoKlen(w)))
	c = crcStep(c, byte(f))
	c = crcStep(c, byte(f>>8))
	end := formHdr(f) + infoKlen(w) + formVlenOf(r, f)
	c = crc32.Update(c, castagnoli, r.b[offCAS:hdrMin])
	return crc32.Update(c, castagnoli, r.b[hdrMin+4:end])
}

// sealCRC computes and stores the CRC, if the record has one.
func (r rec) sealCRC() {
	if r.hasCRC() {
		binary.LittleEndian.PutUint32(r.b[hdrMin:], r.computeCRC())
	}
}

// fitsMeta reports whether the record has room for exptime field exp and
// client flags (a zero needs no room).
func (r rec) fitsMeta(exp, flags uint32) bool {
	f := infoForm(r.info())
	return (exp == 0 || f&formE != 0) && (flags == 0 || f&formF != 0)
}

// writeMeta stores the mutable-under-write-lock header fields; the record
// must have room for them (fitsMeta).
func (r rec) writeMeta(cas uint64, exp, flags uint32) {
	f := infoForm(r.info())
	binary.LittleEndian.PutUint64(r.b[offCAS:], cas)
	if f&formE != 0 {
		binary.LittleEndian.PutUint32(r.b[expAt(f):], exp)
	}
	if f&formF != 0 {
		binary.LittleEndian.PutUint32(r.b[flagsAt(f):], flags)
	}
}

// writeRecord writes a complete record at the start of dst (which must
// hold recSizeOf(len(key), len(value), exp, flags, crc) bytes) and, with
// crc, seals it with its CRC.
func writeRecord(dst []byte, key, value []byte, cas uint64, exp, flags uint32, atime uint32, bits uint8, crc bool) {
	r := rec{b: dst}
	f := makeForm(len(value), exp, flags, crc)
	h := formHdr(f)
	atomic.StoreUint32(r.word(offAtime), atime)
	atomic.StoreUint32(r.word(offInfo), makeInfo(len(key), bits, f))
	r.writeMeta(cas, exp, flags)
	if f&formL != 0 {
		binary.LittleEndian.PutUint32(dst[h-4:], uint32(len(value)))
	}
	n := copy(dst[h:], key)
	n += copy(dst[h+n:], value)
	// Zero the alignment padding, so a segment's bytes depend only on its
	// records (no leftovers of a record that used the space before).
	end := int(alignRec(h + n))
	clear(dst[h+n : end])
	r.sealCRC()
}

// valid reports whether the record at the start of r looks complete: a
// key length in range, a value inside limit bytes and, if it has a CRC,
// a matching one (which also rejects other format versions). The
// invariant checks use it, and so does the recovery scan of a
// restartable file (which also requires the CRC).
func (r rec) valid(limit int) bool {
	limit = min(limit, len(r.b))
	if limit < hdrMin {
		return false
	}
	w := r.info()
	f := infoForm(w)
	if infoKlen(w) == 0 || infoKlen(w) > 250 || formHdr(f) > limit {
		return false
	}
	if int64(formHdr(f))+int64(infoKlen(w))+int64(formVlenOf(r, f)) > int64(limit) {
		return false
	}
	return f&formC == 0 || r.crc() == r.computeCRC()
}
