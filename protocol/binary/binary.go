package binary

import (
	enc "encoding/binary"
	"strconv"
)

// Frame constants.
const (
	// HeaderLen is the length of every request and response header.
	HeaderLen = 24
	// MagicRequest is the first byte of every request.
	MagicRequest = 0x80
	// MagicResponse is the first byte of every response.
	MagicResponse = 0x81
	// KeyMax is the longest key memcached accepts (KEY_MAX_LENGTH).
	KeyMax = 250
	// MechMax is the longest SASL mechanism name (MAX_SASL_MECH_LEN).
	MechMax = 32
	// DefaultItemSizeMax is memcached's default item size limit (-I 1m).
	DefaultItemSizeMax = 1 << 20
	// NoCreate is the incr/decr expiration that means "do not create a
	// missing counter".
	NoCreate = 0xffffffff
)

// Opcode is a command's opcode.
type Opcode uint8

// The opcodes memcached 1.6 handles.
const (
	OpGet           Opcode = 0x00
	OpSet           Opcode = 0x01
	OpAdd           Opcode = 0x02
	OpReplace       Opcode = 0x03
	OpDelete        Opcode = 0x04
	OpIncrement     Opcode = 0x05
	OpDecrement     Opcode = 0x06
	OpQuit          Opcode = 0x07
	OpFlush         Opcode = 0x08
	OpGetQ          Opcode = 0x09
	OpNoop          Opcode = 0x0a
	OpVersion       Opcode = 0x0b
	OpGetK          Opcode = 0x0c
	OpGetKQ         Opcode = 0x0d
	OpAppend        Opcode = 0x0e
	OpPrepend       Opcode = 0x0f
	OpStat          Opcode = 0x10
	OpSetQ          Opcode = 0x11
	OpAddQ          Opcode = 0x12
	OpReplaceQ      Opcode = 0x13
	OpDeleteQ       Opcode = 0x14
	OpIncrementQ    Opcode = 0x15
	OpDecrementQ    Opcode = 0x16
	OpQuitQ         Opcode = 0x17
	OpFlushQ        Opcode = 0x18
	OpAppendQ       Opcode = 0x19
	OpPrependQ      Opcode = 0x1a
	OpTouch         Opcode = 0x1c
	OpGAT           Opcode = 0x1d
	OpGATQ          Opcode = 0x1e
	OpSASLListMechs Opcode = 0x20
	OpSASLAuth      Opcode = 0x21
	OpSASLStep      Opcode = 0x22
	OpGATK          Opcode = 0x23
	OpGATKQ         Opcode = 0x24
)

// opInfo describes an opcode: its loud twin, whether it is quiet, and the
// shape of its body.
type opInfo struct {
	name  string
	known bool
	base  Opcode // the loud opcode (itself when not quiet)
	quiet bool
	class opClass
}

// opClass is the body shape an opcode allows (memcached's dispatch checks).
type opClass uint8

const (
	classNone   opClass = iota // unknown opcode
	classEmpty                 // no extras, key or body (NOOP, VERSION, QUIT, SASL_LIST_MECHS)
	classFlush                 // extras 0 or 4, no key, body == extras
	classStore                 // extras 8, key, value (SET, ADD, REPLACE)
	classConcat                // no extras, key, value (APPEND, PREPEND)
	classGet                   // no extras, key, body == key (GET*, DELETE)
	classArith                 // extras 20, key, body == extras + key
	classStat                  // no extras, optional key
	classSASL                  // no extras, key (mechanism), value
	classTouch                 // extras 4, key
)

var ops [256]opInfo

func init() {
	def := func(op Opcode, name string, base Opcode, class opClass) {
		ops[op] = opInfo{name: name, known: true, base: base, quiet: base != op, class: class}
	}
	def(OpGet, "GET", OpGet, classGet)
	def(OpGetQ, "GETQ", OpGet, classGet)
	def(OpGetK, "GETK", OpGetK, classGet)
	def(OpGetKQ, "GETKQ", OpGetK, classGet)
	def(OpSet, "SET", OpSet, classStore)
	def(OpSetQ, "SETQ", OpSet, classStore)
	def(OpAdd, "ADD", OpAdd, classStore)
	def(OpAddQ, "ADDQ", OpAdd, classStore)
	def(OpReplace, "REPLACE", OpReplace, classStore)
	def(OpReplaceQ, "REPLACEQ", OpReplace, classStore)
	def(OpDelete, "DELETE", OpDelete, classGet)
	def(OpDeleteQ, "DELETEQ", OpDelete, classGet)
	def(OpIncrement, "INCREMENT", OpIncrement, classArith)
	def(OpIncrementQ, "INCREMENTQ", OpIncrement, classArith)
	def(OpDecrement, "DECREMENT", OpDecrement, classArith)
	def(OpDecrementQ, "DECREMENTQ", OpDecrement, classArith)
	def(OpQuit, "QUIT", OpQuit, classEmpty)
	def(OpQuitQ, "QUITQ", OpQuit, classEmpty)
	def(OpFlush, "FLUSH", OpFlush, classFlush)
	def(OpFlushQ, "FLUSHQ", OpFlush, classFlush)
	def(OpNoop, "NOOP", OpNoop, classEmpty)
	def(OpVersion, "VERSION", OpVersion, classEmpty)
	def(OpAppend, "APPEND", OpAppend, classConcat)
	def(OpAppendQ, "APPENDQ", OpAppend, classConcat)
	def(OpPrepend, "PREPEND", OpPrepend, classConcat)
	def(OpPrependQ, "PREPENDQ", OpPrepend, classConcat)
	def(OpStat, "STAT", OpStat, classStat)
	def(OpTouch, "TOUCH", OpTouch, classTouch)
	def(OpGAT, "GAT", OpGAT, classTouch)
	def(OpGATQ, "GATQ", OpGAT, classTouch)
	def(OpGATK, "GATK", OpGATK, classTouch)
	def(OpGATKQ, "GATKQ", OpGATK, classTouch)
	def(OpSASLListMechs, "SASL_LIST_MECHS", OpSASLListMechs, classEmpty)
	def(OpSASLAuth, "SASL_AUTH", OpSASLAuth, classSASL)
	def(OpSASLStep, "SASL_STEP", OpSASLStep, classSASL)
}

// Known reports whether memcached 1.6 handles the opcode.
func (o Opcode) Known() bool { return ops[o].known }

// Quiet reports whether o is the quiet form of a command (GETQ, SETQ, ...).
func (o Opcode) Quiet() bool { return ops[o].quiet }

// Base returns the loud form of a quiet opcode (GET for GETQ), or o.
func (o Opcode) Base() Opcode {
	if !ops[o].known {
		return o
	}
	return ops[o].base
}

// String returns the opcode's name in memcached's spelling, or its number
// in hex.
func (o Opcode) String() string {
	if ops[o].known {
		return ops[o].name
	}
	return "0x" + strconv.FormatUint(uint64(o), 16)
}

// Status is a response status.
type Status uint16

// The response statuses memcached 1.6 sends.
const (
	StatusOK             Status = 0x00
	StatusKeyNotFound    Status = 0x01
	StatusKeyExists      Status = 0x02
	StatusTooLarge       Status = 0x03
	StatusInvalid        Status = 0x04
	StatusNotStored      Status = 0x05
	StatusDeltaBadval    Status = 0x06
	StatusAuthError      Status = 0x20
	StatusAuthContinue   Status = 0x21
	StatusUnknownCommand Status = 0x81
	StatusNoMemory       Status = 0x82
)

// Message returns the body memcached sends with an error status when it
// has no more specific text.
func (s Status) Message() string {
	switch s {
	case StatusNoMemory:
		return "Out of memory"
	case StatusUnknownCommand:
		return "Unknown command"
	case StatusKeyNotFound:
		return "Not found"
	case StatusInvalid:
		return "Invalid arguments"
	case StatusKeyExists:
		return "Data exists for key."
	case StatusTooLarge:
		return "Too large."
	case StatusDeltaBadval:
		return "Non-numeric server-side value for incr or decr"
	case StatusNotStored:
		return "Not stored."
	case StatusAuthError:
		return "Auth failure."
	}
	return ""
}

// Header is a decoded frame header.
type Header struct {
	Magic    uint8
	Opcode   Opcode
	KeyLen   uint16
	ExtLen   uint8
	DataType uint8
	// VBucket is the vBucket of a request, the status of a response.
	VBucket uint16
	BodyLen uint32
	Opaque  uint32
	CAS     uint64
}

// ParseHeader decodes the first HeaderLen bytes of b, which must be at
// least that long.
func ParseHeader(b []byte) Header {
	_ = b[HeaderLen-1]
	return Header{
		Magic:    b[0],
		Opcode:   Opcode(b[1]),
		KeyLen:   enc.BigEndian.Uint16(b[2:]),
		ExtLen:   b[4],
		DataType: b[5],
		VBucket:  enc.BigEndian.Uint16(b[6:]),
		BodyLen:  enc.BigEndian.Uint32(b[8:]),
		Opaque:   enc.BigEndian.Uint32(b[12:]),
		CAS:      enc.BigEndian.Uint64(b[16:]),
	}
}

// Append appends the header's 24 bytes to dst.
func (h *Header) Append(dst []byte) []byte {
	dst = append(dst, h.Magic, byte(h.Opcode))
	dst = enc.BigEndian.AppendUint16(dst, h.KeyLen)
	dst = append(dst, h.ExtLen, h.DataType)
	dst = enc.BigEndian.AppendUint16(dst, h.VBucket)
	dst = enc.BigEndian.AppendUint32(dst, h.BodyLen)
	dst = enc.BigEndian.AppendUint32(dst, h.Opaque)
	return enc.BigEndian.AppendUint64(dst, h.CAS)
}

// Request is one decoded request. Its slices point into the buffer given
// to Decode and are valid until that buffer is reused.
type Request struct {
	Header
	// Extras, Key and Value are the parts of the body. Value is set only
	// for the opcodes that carry one (storage and SASL commands).
	Extras, Key, Value []byte
	// Flags is the item's flags (SET, ADD, REPLACE).
	Flags uint32
	// Exptime is the expiration of SET, ADD, REPLACE, TOUCH, GAT*,
	// INCREMENT and DECREMENT (NoCreate: do not create), or the delay of
	// FLUSH; 0 when absent.
	Exptime uint32
	// Delta and Initial are the operands of INCREMENT and DECREMENT.
	Delta, Initial uint64
}

// Empty reports whether the request holds no frame: Decode only skipped
// bytes of an earlier frame.
func (r *Request) Empty() bool { return r.Magic == 0 }

// parseExtras fills the numeric fields from the extras.
func (r *Request) parseExtras() {
	e := r.Extras
	switch ops[r.Opcode].class {
	case classStore:
		r.Flags = enc.BigEndian.Uint32(e)
		r.Exptime = enc.BigEndian.Uint32(e[4:])
	case classTouch:
		r.Exptime = enc.BigEndian.Uint32(e)
	case classFlush:
		if len(e) == 4 {
			r.Exptime = enc.BigEndian.Uint32(e)
		}
	case classArith:
		r.Delta = enc.BigEndian.Uint64(e)
		r.Initial = enc.BigEndian.Uint64(e[8:])
		r.Exptime = enc.BigEndian.Uint32(e[16:])
	}
}
