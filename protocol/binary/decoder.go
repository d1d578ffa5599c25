package binary

// memcached's item header arithmetic on a 64-bit host (item_size_ok), the
// same as package text's.
const (
	itemHeader = 48
	casSize    = 8
	flagsSize  = 4
	// maxValue is the largest value length memcached handles: it holds
	// the length in an int, which turns negative from 2^31 on.
	maxValue = 1<<31 - 1
)

// Decoder decodes request frames. Its zero value is ready to use with
// memcached's defaults; one Decoder serves one connection.
type Decoder struct {
	// ItemSizeMax is the item size limit (memcached -I, counting its item
	// header); 0 means DefaultItemSizeMax. It bounds every value the
	// decoder buffers.
	ItemSizeMax int
	// NoCAS: CAS is disabled (memcached -C), which makes items 8 bytes
	// smaller in the item size arithmetic.
	NoCAS bool
	// RequireAuth refuses every opcode but the SASL ones and VERSION with
	// ErrAuth (SASL is on and the connection has not authenticated).
	RequireAuth bool
	// SASL enables the SASL opcodes; without it they are ErrUnknownCommand.
	SASL bool

	skip uint64 // bytes of the current frame still to be discarded
}

// Skipping returns how many bytes of an earlier frame the decoder will
// still discard before it decodes the next one.
func (d *Decoder) Skipping() uint64 { return d.skip }

// Decode decodes the request at the start of buf into req. It returns:
//
//   - n > 0, err == nil: n bytes were consumed; req holds a request unless
//     req.Empty() (the bytes only finished skipping an earlier frame).
//   - n == 0, err == nil: buf holds an incomplete frame; need is the
//     number of bytes required from the start of buf (0: unknown, any
//     more).
//   - err != nil: an *Error; n bytes were consumed and req's header (and
//     for ErrTooLarge its key) says which request it answers. The caller
//     replies (Error.AppendReply) and closes the connection if Error.Close
//     is set.
//
// A request's bytes after what the opcode uses, and the value of a request
// refused with ErrTooLarge, ErrMechTooLong, ErrSASLTooLarge or
// ErrUnknownCommand, are discarded by this and later calls as they arrive.
func (d *Decoder) Decode(buf []byte, req *Request) (n, need int, err error) {
	if d.skip > 0 {
		k := min(uint64(len(buf)), d.skip)
		d.skip -= k
		*req = Request{}
		return int(k), 0, nil
	}
	if len(buf) == 0 {
		*req = Request{}
		return 0, HeaderLen, nil
	}
	if buf[0] != MagicRequest {
		*req = Request{}
		return 0, 0, ErrBadMagic
	}
	if len(buf) < HeaderLen {
		*req = Request{}
		return 0, HeaderLen, nil
	}
	*req = Request{Header: ParseHeader(buf)}
	h := &req.Header
	keyLen, extLen, bodyLen := int(h.KeyLen), int(h.ExtLen), uint64(h.BodyLen)
	if uint64(keyLen+extLen) > bodyLen {
		return HeaderLen, 0, ErrBadLength
	}
	info := &ops[h.Opcode]
	if d.RequireAuth && !preAuth(h.Opcode) {
		return HeaderLen, 0, ErrAuth
	}
	if keyLen > KeyMax {
		return HeaderLen, 0, ErrKeyTooLong
	}
	if !info.known || validShape(info.class, keyLen, extLen, bodyLen) {
		if bodyLen-uint64(keyLen+extLen) > maxValue {
			return HeaderLen, 0, ErrBodyTooLarge
		}
	}
	if !info.known {
		return d.discard(buf, HeaderLen, bodyLen, ErrUnknownCommand)
	}
	if !validShape(info.class, keyLen, extLen, bodyLen) {
		return HeaderLen, 0, ErrBadFormat
	}
	if info.class == classSASL && !d.SASL || h.Opcode == OpSASLListMechs && !d.SASL {
		return d.discard(buf, HeaderLen, bodyLen, ErrUnknownCommand)
	}
	fixed := HeaderLen + extLen + keyLen
	if len(buf) < fixed {
		*req = Request{}
		return 0, fixed, nil
	}
	req.Extras = buf[HeaderLen : HeaderLen+extLen : HeaderLen+extLen]
	req.Key = buf[HeaderLen+extLen : fixed : fixed]
	req.parseExtras()
	vlen := bodyLen - uint64(extLen+keyLen)
	switch info.class {
	case classStore, classConcat:
		if !d.fits(keyLen, req.Flags, vlen) {
			return d.discard(buf, fixed, vlen, ErrTooLarge)
		}
	case classSASL:
		if keyLen > MechMax {
			return d.discard(buf, fixed, vlen, ErrMechTooLong)
		}
		if !d.fits(keyLen, 0, vlen) {
			return d.discard(buf, fixed, vlen, ErrSASLTooLarge)
		}
	default:
		// The opcode uses no value: skip whatever body is left.
		n, _, _ := d.discard(buf, fixed, vlen, nil)
		return n, 0, nil
	}
	total := fixed + int(vlen) // vlen fits: bounded by the item size limit
	if len(buf) < total {
		*req = Request{}
		return 0, total, nil
	}
	req.Value = buf[fixed:total:total]
	return total, 0, nil
}

// FrameKey returns the key of the request frame at the start of buf whose
// header is h (as Decode parsed it), once buf holds the header, extras and
// key; otherwise it returns nil and the number of bytes from buf's start
// that it needs. Decode refuses a frame with ErrBodyTooLarge on its header
// alone; a server that removes the old item of a refused SET, as
// memcached does, reads the key with FrameKey.
func FrameKey(buf []byte, h *Header) (key []byte, need int) {
	fixed := HeaderLen + int(h.ExtLen) + int(h.KeyLen)
	if len(buf) < fixed {
		return nil, fixed
	}
	return buf[fixed-int(h.KeyLen) : fixed : fixed], 0
}

// discard consumes the first at bytes of buf (at <= len(buf)) and as much
// of the following rest bytes as buf holds, and remembers to skip the
// remainder.
func (d *Decoder) discard(buf []byte, at int, rest uint64, err error) (int, int, error) {
	k := min(uint64(len(buf)-at), rest)
	d.skip = rest - k
	return at + int(k), 0, err
}

// fits reports whether an item with a key of nkey bytes, the flags and a
// value of vlen bytes fits in the item size limit (memcached's
// item_size_ok, with the value's "\r\n").
func (d *Decoder) fits(nkey int, flags uint32, vlen uint64) bool {
	limit := d.ItemSizeMax
	if limit <= 0 {
		limit = DefaultItemSizeMax
	}
	if vlen+2 > uint64(limit) {
		return false
	}
	size := itemHeader + nkey + 1 + int(vlen) + 2
	if flags != 0 {
		size += flagsSize
	}
	if !d.NoCAS {
		size += casSize
	}
	return size <= limit
}

// preAuth reports whether op is allowed before SASL authentication.
func preAuth(op Opcode) bool {
	switch op {
	case OpSASLListMechs, OpSASLAuth, OpSASLStep, OpVersion:
		return true
	}
	return false
}

// validShape applies memcached's per-opcode checks of the extras, key and
// body lengths.
func validShape(c opClass, key, ext int, body uint64) bool {
	k, e := uint64(key), uint64(ext)
	switch c {
	case classEmpty:
		return ext == 0 && key == 0 && body == 0
	case classFlush:
		return key == 0 && body == e && (ext == 0 || ext == 4)
	case classStore:
		return ext == 8 && key != 0 && body >= k+8
	case classConcat:
		return ext == 0 && key != 0
	case classGet:
		return ext == 0 && key != 0 && body == k
	case classArith:
		return ext == 20 && key != 0 && body == k+20
	case classStat:
		return ext == 0
	case classSASL:
		return ext == 0 && key != 0
	case classTouch:
		return ext == 4 && key != 0
	}
	return false
}
