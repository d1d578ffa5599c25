// Package binary owns memcached's binary protocol on the wire
// (doc/protocol-binary.txt of memcached): the frame layout, the opcodes and
// status codes, a streaming decoder of request frames and zero-allocation
// encoders of response frames. It knows nothing of engines, caches or
// connections: the memcached application (package memcache) executes what
// it decodes.
//
// # Frames
//
// Every request and response is a 24-byte header followed by a body of
// extras, key and value, in that order. Numbers are big-endian.
//
//	byte  0        1        2        3
//	    +--------+--------+--------+--------+
//	  0 | magic  | opcode |     key length  |
//	    +--------+--------+--------+--------+
//	  4 | extlen | dtype  | vbucket / status|
//	    +--------+--------+--------+--------+
//	  8 |        total body length          |
//	    +--------+--------+--------+--------+
//	 12 |             opaque                |
//	    +--------+--------+--------+--------+
//	 16 |               CAS                 |
//	 20 |                                   |
//	    +--------+--------+--------+--------+
//	 24 | extras (extlen) | key (key length) | value (the rest of the body)
//
// The magic is 0x80 in requests and 0x81 in responses; the third 16-bit
// field is the vBucket in a request and the status in a response. The
// response echoes the request's opcode and opaque.
//
// # Decoding
//
// Decoder.Decode is a split-safe state machine over the bytes a connection
// has buffered: it decodes one request whose bytes are all present, or says
// how many bytes it needs, and never copies (Request's slices point into
// the buffer). It checks a frame in memcached 1.6's order: the magic (a
// wrong one closes the connection without a reply), the lengths (key and
// extras longer than the body: UNKNOWN_COMMAND and close), authentication
// when SASL is on (AUTH_ERROR and close), the key length (over 250:
// EINVAL and close), the extras, key and body lengths each opcode allows
// (EINVAL and close). An unknown opcode answers UNKNOWN_COMMAND and its
// body is skipped.
//
// Only the opcodes that carry a value (the storage commands and the SASL
// ones) have their value buffered, and only up to the item size limit: a
// larger value is answered E2BIG (ENOMEM for SASL) and skipped as it
// arrives, without being buffered, as memcached swallows it. Any other
// body beyond what the opcode uses is skipped the same way. A value part
// of 2^31 bytes or more (an announced body of 2^32-1 bytes, say) is
// answered E2BIG and the connection is closed.
//
// # Deliberate differences from memcached
//
//   - memcached swallows the whole body length after an unknown opcode even
//     though it has already read the key and extras, eating bytes of the
//     next request; the decoder skips exactly the frame.
//   - Where memcached ignores body bytes an opcode does not use (STAT,
//     TOUCH, GAT) and then reads them as the next request, the decoder
//     skips them as part of the frame.
//   - A key longer than 250 bytes, or key and extras longer than the body,
//     are refused as soon as the header is read, without waiting for the
//     key's bytes.
//   - memcached holds a value's length in an int: from 2^31 bytes on it
//     turns negative, memcached answers E2BIG, swallows nothing and reads
//     the value as the next request (in practice closing on its bad magic
//     before the reply is sent). The decoder answers E2BIG and closes.
package binary
