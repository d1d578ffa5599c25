package binary

import enc "encoding/binary"

// The response encoders append whole frames to dst and allocate nothing
// when dst has room. Each echoes the request's opcode and opaque; the data
// type is always 0 (raw bytes), as in memcached.

// AppendHeader appends a response header for a body of extLen bytes of
// extras, keyLen bytes of key and valueLen bytes of value.
func AppendHeader(dst []byte, op Opcode, status Status, opaque uint32, cas uint64, extLen, keyLen, valueLen int) []byte {
	dst = append(dst, MagicResponse, byte(op))
	dst = enc.BigEndian.AppendUint16(dst, uint16(keyLen))
	dst = append(dst, byte(extLen), 0)
	dst = enc.BigEndian.AppendUint16(dst, uint16(status))
	dst = enc.BigEndian.AppendUint32(dst, uint32(extLen+keyLen+valueLen))
	dst = enc.BigEndian.AppendUint32(dst, opaque)
	return enc.BigEndian.AppendUint64(dst, cas)
}

// AppendResponse appends a response with the given extras, key and value
// (any may be empty).
func AppendResponse(dst []byte, op Opcode, status Status, opaque uint32, cas uint64, extras, key, value []byte) []byte {
	dst = AppendHeader(dst, op, status, opaque, cas, len(extras), len(key), len(value))
	dst = append(dst, extras...)
	dst = append(dst, key...)
	return append(dst, value...)
}

// AppendStringResponse appends a response whose body is the value s.
func AppendStringResponse(dst []byte, op Opcode, status Status, opaque uint32, cas uint64, s string) []byte {
	dst = AppendHeader(dst, op, status, opaque, cas, 0, 0, len(s))
	return append(dst, s...)
}

// AppendError appends an error response whose body is msg, or the
// status's Message when msg is empty. Its CAS is 0.
func AppendError(dst []byte, op Opcode, status Status, opaque uint32, msg string) []byte {
	if msg == "" {
		msg = status.Message()
	}
	return AppendStringResponse(dst, op, status, opaque, 0, msg)
}

// AppendItem appends a successful GET, GETK, GAT, GATK or TOUCH response:
// the flags as 4 bytes of extras, then key (for GETK and GATK; nil
// otherwise) and value (nil for TOUCH).
func AppendItem(dst []byte, op Opcode, opaque uint32, cas uint64, flags uint32, key, value []byte) []byte {
	dst = AppendItemHeader(dst, op, opaque, cas, flags, key, len(value))
	return append(dst, value...)
}

// ItemHeaderLen is the length of what AppendItemHeader appends for a key
// of keyLen bytes: the header, the 4 bytes of flags and the key.
func ItemHeaderLen(keyLen int) int { return HeaderLen + 4 + keyLen }

// AppendItemHeader appends what precedes the value of valueLen bytes in
// an AppendItem response: the header, the flags and the key (nil for
// GET and GAT), ItemHeaderLen(len(key)) bytes in all. The caller appends
// the value.
func AppendItemHeader(dst []byte, op Opcode, opaque uint32, cas uint64, flags uint32, key []byte, valueLen int) []byte {
	dst = AppendHeader(dst, op, StatusOK, opaque, cas, 4, len(key), valueLen)
	dst = enc.BigEndian.AppendUint32(dst, flags)
	return append(dst, key...)
}

// AppendCounter appends a successful INCREMENT or DECREMENT response: the
// new value as 8 bytes.
func AppendCounter(dst []byte, op Opcode, opaque uint32, cas uint64, v uint64) []byte {
	dst = AppendHeader(dst, op, StatusOK, opaque, cas, 0, 0, 8)
	return enc.BigEndian.AppendUint64(dst, v)
}

// AppendStat appends one STAT response: the statistic's name as the key
// and its value as the value. The empty name and value make the
// terminating packet that ends a STAT reply.
func AppendStat(dst []byte, opaque uint32, name, value string) []byte {
	dst = AppendHeader(dst, OpStat, StatusOK, opaque, 0, 0, len(name), len(value))
	dst = append(dst, name...)
	return append(dst, value...)
}

// AppendRequest appends a request frame: for clients and tests.
func AppendRequest(dst []byte, op Opcode, opaque uint32, cas uint64, extras, key, value []byte) []byte {
	h := Header{
		Magic:   MagicRequest,
		Opcode:  op,
		KeyLen:  uint16(len(key)),
		ExtLen:  uint8(len(extras)),
		BodyLen: uint32(len(extras) + len(key) + len(value)),
		Opaque:  opaque,
		CAS:     cas,
	}
	dst = h.Append(dst)
	dst = append(dst, extras...)
	dst = append(dst, key...)
	return append(dst, value...)
}
