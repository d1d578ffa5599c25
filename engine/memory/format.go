package memory

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"sync/atomic"
	"unsafe"
)

// The restartable arena file (-e FILE), format version 2 (version 1 had
// records of format version 2, whose 20-byte header held the CRC first;
// a version 1 file starts empty). The engine's
// arena is the tail of the file, mapped MAP_SHARED; everything before it
// is a few pages of metadata:
//
//	page 0        page 1        page 2        page 3 ...            segBase
//	+-------------+-------------+-------------+---------------------+-----------+-----------+--
//	| file header |   meta 0    |   meta 1    |   segment table     | segment 0 | segment 1 | ...
//	+-------------+-------------+-------------+---------------------+-----------+-----------+--
//	  written once  the two copies (bbolt)     nsegs × uint64 gen,    nsegs × segSize bytes of
//	  at creation   of the engine's meta       rounded up to a page   records (record.go)
//
// File header (page 0), written once when the file is created:
//
//	 0                8        12       16       20
//	+----------------+--------+--------+--------+
//	|  "mnemoarn"    |version | pagesz |  crc   |
//	+----------------+--------+--------+--------+
//	  magic, 8 bytes   uint32 LE fields; crc is the CRC-32C of bytes 0-15
//
// Meta page (pages 1 and 2, bbolt's meta0/meta1). A meta is written whole
// to the copy that does not hold the newest valid meta, with txid one
// more; the CRC, stored last, is the commit. A torn or stale copy fails
// its CRC or has the smaller txid, so readers take the valid copy with
// the larger txid and a crash while writing one leaves the other intact:
//
//	 0      4      8              16             24     28     32     36
//	+------+------+--------------+--------------+------+------+------+------+
//	|magic |vers  |     txid     |   segSize    |nsegs |itemMx|settng|state |
//	+------+------+--------------+--------------+------+------+------+------+
//	 40             48             56             64             72             80
//	+--------------+--------------+--------------+--------------+--------------+------+
//	| flush PastAt |flush PastCAS | flush PendAt |  CAS high    |  gen high    | crc  |
//	+--------------+--------------+--------------+--------------+--------------+------+
//	 all little-endian; crc (at 80) is the CRC-32C of bytes 0-79
//
//	segSize, nsegs, itemMx  the arena geometry and -I: a start with other
//	         values cannot reuse the file (must match, with settings);
//	settng   settings that must match: bit 0 = -C (no CAS);
//	state    bit 0 = clean: set by the meta a graceful Close writes last,
//	         cleared by the first meta a start writes;
//	flush    the engine's flush mark (engine.FlushMark), written before a
//	         Flush returns: flush_all is acknowledged after its meta commits;
//	CAS high the CAS counter when the meta was written (the flush mark's
//	         CAS included). After a crash the counter restarts above the
//	         largest of this and every checksummed record's CAS;
//	gen high the largest segment generation handed out when written (a
//	         crash may leave larger ones in the segment table: the scan
//	         takes the maximum).
//
// Segment table: one uint64 per segment, the segment's generation: 0 for
// a segment never used, else a number larger than any before it, stored
// (one aligned 8-byte atomic store, which a process death cannot tear)
// each time the segment becomes a write head or a reclaim's destination.
// Generations order segments: of two live records of one key the one in
// the younger segment, or later in the same segment, is the newer (see
// Recovery below). The table lives apart from the segments so that a
// segment keeps its whole size for records (a record of -I bytes still
// fits).
//
// Records (record.go) are the anonymous arena's records plus their CRC
// field (form bit C): 4 bytes per record, the only per-record cost of
// restartability; a record without one is damage to the scan. Two more
// things make the file readable after a crash:
//
//   - The chain. Records in a segment are walked from offset 0 by their
//     sizes (info word, and the value length word for long values); a
//     record whose info word is 0 (a key length of 0, which no record
//     has) is the end of the segment's records. The allocator keeps the
//     chain whole at every instruction: under the stripe lock it first
//     stores 0 into the info word just past the new allocation (the new
//     end), then the new record's info word and value length word, and
//     only then lets another allocation follow (allocFrame). A segment
//     that becomes a head again gets 0 stored in its first info word
//     before its new generation: one store ends its old chain, so a
//     reused segment's old tail is never walked (the role pebble's
//     recyclable log numbers play, at no cost per record).
//   - The state. Two bits of the record's bits byte (outside the CRC, next
//     to the frequency counter) say pending (0), live or dead. A record is
//     written pending; once it is complete and sealed with its CRC, the
//     store that publishes it (under the shard lock) first stores live.
//     Every removal of a record from the index (delete, overwrite,
//     eviction, expiry or flush met by a lookup, the sweep or a reclaim,
//     the source of a reclaim move) stores dead before the index changes.
//     States only go pending→live→dead or pending→dead. A scan recovers
//     exactly the records that are live and whose CRC checks.
//
// Recovery walks the segments in generation order and every chain within
// them, and indexes each live, checksummed record; when a key already has
// one, the later record wins and the earlier is stored dead. Expired and
// flushed records are left to the engine's lazy expiry and sweep, with
// the flush mark of the newest meta.
const (
	fileMagic   = "mnemoarn"
	fileVersion = 2
	filePage    = pageSize

	fhMagic   = 0
	fhVersion = 8
	fhPage    = 12
	fhCRC     = 16
	fhSize    = 20

	metaPage0  = 1 // page numbers of the two meta copies
	metaPage1  = 2
	segTabPage = 3

	metaMagic     = 0x4d455441 // "META" read as a little-endian word
	mMagic        = 0
	mVersion      = 4
	mTxid         = 8
	mSegSize      = 16
	mNsegs        = 24
	mItemMax      = 28
	mSettings     = 32
	mState        = 36
	mFlushPastAt  = 40
	mFlushPastCAS = 48
	mFlushPendAt  = 56
	mCASHigh      = 64
	mGenHigh      = 72
	mCRC          = 80
	metaSize      = 84

	settingNoCAS = 1 << 0
	stateClean   = 1 << 0

	// Record state, in bits 3-4 of the record's bits byte (record.go).
	stateShift = 3
	stateMask  = 3 << stateShift
	stPending  = 0 << stateShift
	stLive     = 1 << stateShift
	stDead     = 2 << stateShift
)

// Errors decoding a file's header or meta pages.
var (
	errBadMagic    = errors.New("memory: not a mnemo arena file")
	errBadVersion  = errors.New("memory: arena file of another format version")
	errBadChecksum = errors.New("memory: arena file page fails its checksum")
	errNoMeta      = errors.New("memory: neither meta page of the arena file is valid")
)

// fileLayout is the geometry of an arena file.
type fileLayout struct {
	segSize int64
	nsegs   int
}

// segTabOff is the file offset of the segment table.
func (l fileLayout) segTabOff() int64 { return segTabPage * filePage }

// segBase is the file offset of segment 0.
func (l fileLayout) segBase() int64 {
	end := l.segTabOff() + 8*int64(l.nsegs)
	return (end + filePage - 1) &^ (filePage - 1)
}

// size is the file's length.
func (l fileLayout) size() int64 { return l.segBase() + int64(l.nsegs)*l.segSize }

// encodeFileHeader writes the file header into b (at least fhSize bytes).
func encodeFileHeader(b []byte) {
	copy(b[fhMagic:], fileMagic)
	binary.LittleEndian.PutUint32(b[fhVersion:], fileVersion)
	binary.LittleEndian.PutUint32(b[fhPage:], filePage)
	binary.LittleEndian.PutUint32(b[fhCRC:], crc32.Checksum(b[:fhCRC], castagnoli))
}

// decodeFileHeader checks the file header in b.
func decodeFileHeader(b []byte) error {
	if len(b) < fhSize || string(b[fhMagic:fhMagic+8]) != fileMagic {
		return errBadMagic
	}
	if binary.LittleEndian.Uint32(b[fhCRC:]) != crc32.Checksum(b[:fhCRC], castagnoli) {
		return errBadChecksum
	}
	if binary.LittleEndian.Uint32(b[fhVersion:]) != fileVersion ||
		binary.LittleEndian.Uint32(b[fhPage:]) != filePage {
		return errBadVersion
	}
	return nil
}

// fileMeta is one meta page, decoded.
type fileMeta struct {
	txid     uint64
	segSize  int64
	nsegs    int
	itemMax  int
	settings uint32
	state    uint32
	flush    flushMark
	casHigh  uint64
	genHigh  uint64
}

// encode writes m into b (at least metaSize bytes), CRC last.
func (m *fileMeta) encode(b []byte) {
	le := binary.LittleEndian
	le.PutUint32(b[mMagic:], metaMagic)
	le.PutUint32(b[mVersion:], fileVersion)
	le.PutUint64(b[mTxid:], m.txid)
	le.PutUint64(b[mSegSize:], uint64(m.segSize))
	le.PutUint32(b[mNsegs:], uint32(m.nsegs))
	le.PutUint32(b[mItemMax:], uint32(m.itemMax))
	le.PutUint32(b[mSettings:], m.settings)
	le.PutUint32(b[mState:], m.state)
	le.PutUint64(b[mFlushPastAt:], uint64(m.flush.PastAt))
	le.PutUint64(b[mFlushPastCAS:], m.flush.PastCAS)
	le.PutUint64(b[mFlushPendAt:], uint64(m.flush.PendAt))
	le.PutUint64(b[mCASHigh:], m.casHigh)
	le.PutUint64(b[mGenHigh:], m.genHigh)
	le.PutUint32(b[mCRC:], crc32.Checksum(b[:mCRC], castagnoli))
}

// decodeMeta reads the meta page in b.
func decodeMeta(b []byte) (fileMeta, error) {
	var m fileMeta
	le := binary.LittleEndian
	if len(b) < metaSize || le.Uint32(b[mMagic:]) != metaMagic {
		return m, errBadMagic
	}
	if le.Uint32(b[mCRC:]) != crc32.Checksum(b[:mCRC], castagnoli) {
		return m, errBadChecksum
	}
	if le.Uint32(b[mVersion:]) != fileVersion {
		return m, errBadVersion
	}
	m.txid = le.Uint64(b[mTxid:])
	m.segSize = int64(le.Uint64(b[mSegSize:]))
	m.nsegs = int(le.Uint32(b[mNsegs:]))
	m.itemMax = int(le.Uint32(b[mItemMax:]))
	m.settings = le.Uint32(b[mSettings:])
	m.state = le.Uint32(b[mState:])
	m.flush.PastAt = int64(le.Uint64(b[mFlushPastAt:]))
	m.flush.PastCAS = le.Uint64(b[mFlushPastCAS:])
	m.flush.PendAt = int64(le.Uint64(b[mFlushPendAt:]))
	m.casHigh = le.Uint64(b[mCASHigh:])
	m.genHigh = le.Uint64(b[mGenHigh:])
	return m, nil
}

// pickMeta returns the valid meta of the two copies with the larger txid
// and which copy it is (0 or 1). With neither valid it returns the error
// of copy 0 wrapped in errNoMeta.
func pickMeta(p0, p1 []byte) (fileMeta, int, error) {
	m0, err0 := decodeMeta(p0)
	m1, err1 := decodeMeta(p1)
	switch {
	case err0 != nil && err1 != nil:
		return fileMeta{}, -1, errors.Join(errNoMeta, err0)
	case err1 != nil:
		return m0, 0, nil
	case err0 != nil:
		return m1, 1, nil
	case m1.txid > m0.txid:
		return m1, 1, nil
	}
	return m0, 0, nil
}

// nextMetaCopy is the copy the next meta write goes to: the one not
// holding the current meta.
func nextMetaCopy(current int) int { return 1 - max(current, 0) }

// word64 is the aligned 8-byte word at b[0:8].
func word64(b []byte) *uint64 { return (*uint64)(unsafe.Pointer(&b[0])) }

// segGen reads segment id's generation from the segment table tab.
func segGen(tab []byte, id int) uint64 { return atomic.LoadUint64(word64(tab[8*id:])) }

// setSegGen stores segment id's generation (one atomic store).
func setSegGen(tab []byte, id int, gen uint64) { atomic.StoreUint64(word64(tab[8*id:]), gen) }

// state returns the record's state bits (stPending, stLive or stDead).
func (r rec) state() uint8 { return infoBits(r.info()) & stateMask }

// setState stores the record's state, keeping the other bits (readers
// may update them concurrently under a shard read lock).
func (r rec) setState(st uint8) {
	p := r.word(offInfo)
	for {
		old := atomic.LoadUint32(p)
		nb := infoBits(old)&^stateMask | st
		if atomic.CompareAndSwapUint32(p, old, old&^0xff00|uint32(nb)<<8) {
			return
		}
	}
}

// markEnd stores the end of a segment's chain at arena offset off (a
// record's start within its segment; at a segment's offset 0 it empties
// that segment's chain): a zero info word, if a record header still fits
// before the segment's end.
func markEnd(mem []byte, off, segSize int64) {
	if segSize-off%segSize < hdrMin {
		return
	}
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&mem[off+offInfo])), 0)
}

// allocFrame extends a segment's chain by the record of size size at
// arena offset off (whose key is klen bytes and whose value vlen bytes,
// with exptime field exp and flags, and a CRC, as every record in a
// file): the new end first, then the new
// record's info word (pending) and value length word. Called while the
// allocation is still exclusive (the stripe lock, or amu for a reclaim's
// destination), before the next allocation in the segment.
func allocFrame(mem []byte, off, size, segSize int64, klen, vlen int, exp, flags uint32) {
	if end := off + size; end%segSize != 0 {
		// (An allocation that fills its segment has no end to mark: the
		// offset past it is the next segment's first record.)
		markEnd(mem, end, segSize)
	}
	f := makeForm(vlen, exp, flags, true)
	r := rec{b: mem[off:]}
	if f&formL != 0 {
		atomic.StoreUint32(r.word(formHdr(f)-4), uint32(vlen))
	}
	atomic.StoreUint32(r.word(offInfo), makeInfo(klen, stPending, f))
}

// startChain empties segment id's chain (its first info word becomes 0)
// and then gives it generation gen: its old records are no longer walked.
func startChain(mem, tab []byte, id int, segSize int64, gen uint64) {
	markEnd(mem, int64(id)*segSize, segSize)
	setSegGen(tab, id, gen)
}

// storeMeta writes m into the meta page p in the commit order: every
// field first, then the CRC with one atomic store, so that a process
// dying at any instruction leaves p either with its old CRC (now failing,
// or still matching if nothing changed yet) or the new meta whole.
func storeMeta(p []byte, m *fileMeta) {
	var b [metaSize]byte
	m.encode(b[:])
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&p[mCRC])), 0)
	copy(p[:mCRC], b[:mCRC])
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&p[mCRC])), binary.LittleEndian.Uint32(b[mCRC:]))
}

// moveRecord copies the record of size bytes at arena offset from to the
// allocation at to (framed by allocFrame with the same key, value and
// fields), leaving the copy pending with the bits byte bits (state bits
// ignored); publishRecord(mem, to, from, true) then makes it live and the
// source dead. The info word is not copied, so the copy is never live
// while its body is being written.
func moveRecord(mem []byte, to, from, size int64, bits uint8) {
	copy(mem[to:to+offInfo], mem[from:from+offInfo])
	copy(mem[to+offInfo+4:to+size], mem[from+offInfo+4:from+size])
	recAt(mem, to).setBits(bits &^ stateMask)
}
