package text

import "github.com/mnemo-cache/mnemo/internal/number"

// storage decodes the line of set, add, replace, append, prepend and cas
// (tokens in d.toks[:nt]) and the data block that follows it in buf at
// offset consumed.
func (d *Decoder) storage(buf []byte, consumed, nt int, noreply bool, req *Request) (n, need int, err error) {
	withCAS := req.Cmd == CmdCas
	want := 5
	if withCAS {
		want = 6
	}
	if nt != want && nt != want+1 {
		return consumed, 0, ErrUnknownCommand
	}
	// memcached notes noreply before it validates anything.
	req.Noreply = noreply
	key := d.toks[1]
	if len(key) > KeyMax {
		return consumed, 0, ErrBadFormat.silenced(noreply)
	}
	req.Key = key
	flags, ok1 := number.ParseUint32(d.toks[2])
	exptime, ok2 := number.ParseInt32(d.toks[3])
	vlen, ok3 := number.ParseInt32(d.toks[4])
	if !ok1 || !ok2 || !ok3 {
		return consumed, 0, ErrBadFormat.silenced(noreply)
	}
	req.Flags = flags
	req.Exptime = int64(exptime)
	if withCAS {
		cas, ok := number.ParseUint64(d.toks[5])
		if !ok {
			return consumed, 0, ErrBadFormat.silenced(noreply)
		}
		req.CAS = cas
	}
	if vlen < 0 || vlen > maxValueLen {
		return consumed, 0, ErrBadFormat.silenced(noreply)
	}
	block := int(vlen) + 2 // the value and its "\r\n"

	if !d.fits(len(key), flags, block) {
		// Swallow the data block without buffering it.
		k := min(block, len(buf)-consumed)
		d.swallow = block - k
		return consumed + k, 0, ErrTooLarge.silenced(noreply)
	}
	total := consumed + block
	if len(buf) < total {
		*req = Request{}
		return 0, total, nil
	}
	if buf[total-2] != '\r' || buf[total-1] != '\n' {
		return total, 0, ErrBadDataChunk.silenced(noreply)
	}
	req.Data = buf[consumed : total-2]
	return total, 0, nil
}

// fits reports whether an item with a key of nkey bytes, the given flags
// and a data block (value and "\r\n") of block bytes fits in the item size
// limit, computed as memcached's item_size_ok does on a 64-bit host.
func (d *Decoder) fits(nkey int, flags uint32, block int) bool {
	limit := d.itemSizeMax
	if limit <= 0 {
		limit = DefaultItemSizeMax
	}
	if block > limit {
		return false // and no sum below can overflow
	}
	size := itemHeader + nkey + 1 + block
	if flags != 0 {
		size += flagsSize
	}
	if !d.NoCAS {
		size += casSize
	}
	return size <= limit
}

// arithmetic decodes incr and decr: <key> <delta> [noreply].
func (d *Decoder) arithmetic(nt int, noreply bool, req *Request) error {
	if nt != 3 && nt != 4 {
		return ErrUnknownCommand
	}
	req.Noreply = noreply
	if len(d.toks[1]) > KeyMax {
		return ErrBadFormat.silenced(noreply)
	}
	req.Key = d.toks[1]
	delta, ok := number.ParseUint64(d.toks[2])
	if !ok {
		return ErrInvalidDelta.silenced(noreply)
	}
	req.Delta = delta
	return nil
}

// touch decodes touch: <key> <exptime> [noreply].
func (d *Decoder) touch(nt int, noreply bool, req *Request) error {
	if nt != 3 && nt != 4 {
		return ErrUnknownCommand
	}
	req.Noreply = noreply
	if len(d.toks[1]) > KeyMax {
		return ErrBadFormat.silenced(noreply)
	}
	req.Key = d.toks[1]
	exp, ok := number.ParseInt32(d.toks[2])
	if !ok {
		return ErrInvalidExptime.silenced(noreply)
	}
	req.Exptime = int64(exp)
	return nil
}

// delete decodes delete: <key> [0] [noreply]. memcached accepts a literal
// "0" hold time for old clients and nothing else.
func (d *Decoder) delete(nt int, noreply bool, req *Request) error {
	if nt < 2 || nt > 4 {
		return ErrUnknownCommand
	}
	if nt > 2 {
		req.Noreply = noreply
		zero := string(d.toks[2]) == "0"
		valid := (nt == 3 && (zero || noreply)) || (nt == 4 && zero && noreply)
		if !valid {
			return ErrDeleteFormat.silenced(noreply)
		}
	}
	if len(d.toks[1]) > KeyMax {
		return ErrBadFormat.silenced(req.Noreply)
	}
	req.Key = d.toks[1]
	return nil
}

// flushAll decodes flush_all: [delay] [noreply].
func (d *Decoder) flushAll(nt int, noreply bool, req *Request) error {
	if nt > 3 {
		return ErrUnknownCommand
	}
	req.Noreply = noreply
	if d.FlushDisabled {
		return ErrFlushDisabled.silenced(noreply)
	}
	bare := 1
	if noreply {
		bare = 2
	}
	if nt != bare {
		exp, ok := number.ParseInt32(d.toks[1])
		if !ok {
			return ErrInvalidExptime.silenced(noreply)
		}
		req.Exptime = int64(exp)
	}
	return nil
}

// verbosity decodes verbosity: <level> [noreply].
func (d *Decoder) verbosity(nt int, noreply bool, req *Request) error {
	return d.uint32Arg(nt, noreply, req, ErrBadFormat)
}

// memlimit decodes cache_memlimit: <megabytes> [noreply]. memcached answers
// a bad number with ERROR.
func (d *Decoder) memlimit(nt int, noreply bool, req *Request) error {
	return d.uint32Arg(nt, noreply, req, ErrUnknownCommand)
}

// uint32Arg decodes "<name> <uint32> [noreply]" into req.Num; bad is the
// error for an argument that is not a number.
func (d *Decoder) uint32Arg(nt int, noreply bool, req *Request, bad *Error) error {
	if nt != 2 && nt != 3 {
		return ErrUnknownCommand
	}
	req.Noreply = noreply
	v, ok := number.ParseUint32(d.toks[1])
	if !ok {
		return bad.silenced(noreply)
	}
	req.Num = v
	return nil
}
