package persistent

import (
	"encoding/binary"
	"errors"
	"hash/crc32"

	"github.com/mnemo-cache/mnemo/engine"
)

// Keys in the durable store. Items live under prefixData followed by the
// client's key; the engine's own metadata lives under prefixMeta followed
// by a name. Keeping the two apart lets scans of items use the bounds
// [dataLower, dataUpper).
const (
	prefixData = 'd'
	prefixMeta = 'm'
)

var (
	dataLower = []byte{prefixData}
	dataUpper = []byte{prefixData + 1}
)

// An item record is the value stored under prefixData+key: a 32-byte
// header, then the item's value. Integers are little-endian. The CRC-32C
// (Castagnoli) covers header bytes 0..27, the key and the value, so a
// record read back under the wrong key, torn or bit-flipped never passes.
//
//	 0         1         2         4                             8
//	 +---------+---------+---------+-----------------------------+
//	 | version |  bits   | 0 (pad) |  client flags (uint32)      |
//	 +---------+---------+---------+-----------------------------+
//	 8                                                          16
//	 |  exptime (int64, absolute unix seconds, 0 = never)        |
//	 +-----------------------------------------------------------+
//	16                                                          24
//	 |  CAS (uint64, never 0)                                    |
//	 +-----------------------------+-----------------------------+
//	24                            28                            32
//	 |  atime (uint32, unix s of   |  CRC-32C of bytes 0..27,    |
//	 |  the last store or touch)   |  the key and the value      |
//	 +-----------------------------+-----------------------------+
//	32
//	 |  value (the rest of the record)                           |
//	 +-----------------------------------------------------------+
//
// The version is recVersion; a reader rejects any other. Bits holds the
// engine.Bit* flags (BitFetched, BitStale, BitWinSent).
const (
	recVersion = 1

	offVersion = 0
	offBits    = 1
	offFlags   = 4
	offExptime = 8
	offCAS     = 16
	offAtime   = 24
	offCRC     = 28
	recHdrSize = 32

	recBitsMask = engine.BitFetched | engine.BitStale | engine.BitWinSent
)

// A meta record is the value stored under prefixMeta+name: a version
// byte, a fixed payload, and a CRC-32C of the name, the version byte and
// the payload (so a payload stored under the wrong name never passes).
//
//	0         1                            1+n          5+n
//	+---------+----------------------------+------------+
//	| version |  payload (n bytes)         |  CRC-32C   |
//	+---------+----------------------------+------------+
//
// Names and payloads:
//
//	"format"  16 bytes: formatMagic. Written when the store is created;
//	          a store without it (but with items) or with another
//	          version is refused at start.
//	"cas"     8 bytes: the CAS high-water mark, uint64. Every CAS the
//	          engine hands out is below it; it is raised (synchronously)
//	          before the counter reaches it, so CAS values stay unique
//	          and increasing across restarts and crashes.
//	"flush"   24 bytes: the flush mark, int64 PastAt, uint64 PastCAS,
//	          int64 PendAt (see engine.FlushMark).
const (
	metaVersion = 1

	metaFormat = "format"
	metaCAS    = "cas"
	metaFlush  = "flush"

	formatMagic = "mnemo-persist-v1"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errBadRecord reports a record that fails its checks.
var errBadRecord = errors.New("persistent: damaged record")

// appendRecord appends the record for an item to dst.
func appendRecord(dst, key []byte, m *engine.Meta, atime int64, value []byte) []byte {
	n := len(dst)
	if cap(dst)-n < recHdrSize+len(value) {
		// One allocation of the record's size (appending the header and
		// then the value to a nil dst allocated twice, on every queued
		// write).
		dst = append(make([]byte, 0, n+recHdrSize+len(value)), dst...)
	}
	dst = dst[:n+recHdrSize]
	h := dst[n:]
	clear(h)
	h[offVersion] = recVersion
	h[offBits] = m.Bits & recBitsMask
	binary.LittleEndian.PutUint32(h[offFlags:], m.Flags)
	binary.LittleEndian.PutUint64(h[offExptime:], uint64(m.Exptime))
	binary.LittleEndian.PutUint64(h[offCAS:], m.CAS)
	binary.LittleEndian.PutUint32(h[offAtime:], clampTime(atime))
	dst = append(dst, value...)
	h = dst[n:]
	crc := crc32.Update(crc32.Update(crc32.Checksum(h[:offCRC], castagnoli), castagnoli, key), castagnoli, h[recHdrSize:])
	binary.LittleEndian.PutUint32(h[offCRC:], crc)
	return dst
}

// recordMeta decodes a record's header into m, without checking the CRC.
// It fails on a short record or an unknown version.
func recordMeta(rec []byte, m *engine.Meta) error {
	if len(rec) < recHdrSize || rec[offVersion] != recVersion {
		return errBadRecord
	}
	m.Bits = rec[offBits] & recBitsMask
	m.Flags = binary.LittleEndian.Uint32(rec[offFlags:])
	m.Exptime = int64(binary.LittleEndian.Uint64(rec[offExptime:]))
	m.CAS = binary.LittleEndian.Uint64(rec[offCAS:])
	m.Atime = int64(binary.LittleEndian.Uint32(rec[offAtime:]))
	return nil
}

// decodeRecord checks rec, stored under key, and decodes it: the metadata
// into m, and the value, which aliases rec.
func decodeRecord(key, rec []byte, m *engine.Meta) ([]byte, error) {
	if err := recordMeta(rec, m); err != nil {
		return nil, err
	}
	crc := crc32.Update(crc32.Update(crc32.Checksum(rec[:offCRC], castagnoli), castagnoli, key), castagnoli, rec[recHdrSize:])
	if crc != binary.LittleEndian.Uint32(rec[offCRC:]) || m.CAS == 0 {
		return nil, errBadRecord
	}
	return rec[recHdrSize:], nil
}

// appendMeta appends the meta record for name with payload to dst.
func appendMeta(dst []byte, name string, payload []byte) []byte {
	n := len(dst)
	dst = append(dst, metaVersion)
	dst = append(dst, payload...)
	crc := crc32.Update(crc32.Checksum([]byte(name), castagnoli), castagnoli, dst[n:])
	return binary.LittleEndian.AppendUint32(dst, crc)
}

// decodeMeta checks the meta record rec stored under name and returns its
// payload, which must be size bytes long.
func decodeMeta(name string, rec []byte, size int) ([]byte, error) {
	if len(rec) != 1+size+4 || rec[0] != metaVersion {
		return nil, errBadRecord
	}
	crc := crc32.Update(crc32.Checksum([]byte(name), castagnoli), castagnoli, rec[:1+size])
	if crc != binary.LittleEndian.Uint32(rec[1+size:]) {
		return nil, errBadRecord
	}
	return rec[1 : 1+size], nil
}

// metaKey returns the store key of the meta record name.
func metaKey(name string) []byte {
	return append([]byte{prefixMeta}, name...)
}

// clampTime converts a unix time to the record's uint32 atime.
func clampTime(t int64) uint32 {
	if t < 0 {
		return 0
	}
	if t > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(t)
}
