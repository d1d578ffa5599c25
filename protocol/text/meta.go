package text

// Decoding of the meta commands mg, ms, md, ma, mn and me, with memcached
// 1.6.18's rules (proto_text.c): flags are tokens whose first byte names
// the flag and whose rest is its argument; a flag may appear once; the
// line may hold at most 19 tokens (20 with memcached's terminal token).

import "github.com/mnemo-cache/mnemo/internal/number"

// Limits of the meta commands.
const (
	// MaxOpaque is the longest opaque (O) token, its 'O' included.
	MaxOpaque = 32
	// metaMaxTokens is memcached's MFLAG_MAX_OPT_LENGTH: a meta line may
	// hold fewer tokens than this, counting the terminal token memcached
	// adds.
	metaMaxTokens = 20
)

// MetaFlags are the decoded flags of a meta command. Fields of flags that
// are absent are zero, except Delta, which is 1.
type MetaFlags struct {
	// Tokens are the flag tokens in the order sent (after the key, or after
	// the data length of ms). A token's first byte is its flag, the rest
	// its argument. Replies echo the return flags in this order. Tokens
	// alias the decoded buffer.
	Tokens [][]byte
	// Base64: the b flag was set; Request.Key holds the decoded key and
	// replies echo it base64-encoded.
	Base64 bool
	// Quiet: the q flag (noreply semantics for nominal replies).
	Quiet bool
	// Mode is the argument of the M flag (0 when absent).
	Mode byte
	// ClientFlags is the argument of F.
	ClientFlags uint32
	// TTL, VivifyTTL and RecacheTTL are the arguments of T, N and R, as
	// sent (exptimes, truncated to 32 bits like memcached).
	TTL, VivifyTTL, RecacheTTL int64
	// CompareCAS is the argument of C, NewCAS the argument of E.
	CompareCAS, NewCAS uint64
	// Delta is the argument of D (1 when absent), Initial the argument of
	// J.
	Delta, Initial uint64
	// TooLarge is set on an ms whose item would not fit in the item size
	// limit: the decoder swallows its data block (Data is nil) and the
	// caller replies "SERVER_ERROR object too large for cache" and removes
	// the key, as memcached does.
	TooLarge bool

	set uint64
}

// metaBit returns the bit of flag c in MetaFlags.set ('A' to 'z').
func metaBit(c byte) uint64 {
	if c < 'A' || c > 'z' {
		return 0
	}
	return 1 << (c - 'A')
}

// Has reports whether the flag was sent.
func (m *MetaFlags) Has(flag byte) bool {
	b := metaBit(flag)
	return b != 0 && m.set&b != 0
}

// OpaqueTooLong reports whether an O token is longer than MaxOpaque.
// memcached checks it while it writes the reply of mg and ma, after the
// command has run, so the decoder leaves that check to the caller for
// those two (reply ErrMetaOpaqueTooLong); it refuses ms and md itself.
func (m *MetaFlags) OpaqueTooLong() bool {
	if !m.Has('O') {
		return false
	}
	for _, t := range m.Tokens {
		if t[0] == 'O' && len(t) > MaxOpaque {
			return true
		}
	}
	return false
}

// meta decodes the meta command req.Cmd; d.toks[:nt] hold the line's
// tokens.
func (d *Decoder) meta(buf []byte, consumed, nt int, req *Request) (n, need int, err error) {
	switch req.Cmd {
	case CmdMetaNoop:
		return consumed, 0, nil
	case CmdMetaDebug:
		return consumed, 0, d.metaDebug(nt, req)
	case CmdMetaSet:
		return d.metaSet(buf, consumed, nt, req)
	}
	if nt < 2 {
		return consumed, 0, ErrUnknownCommand
	}
	if len(d.toks[1]) > KeyMax {
		return consumed, 0, ErrBadFormat
	}
	req.Key = d.toks[1]
	if nt+1 > metaMaxTokens {
		if req.Cmd == CmdMetaGet {
			return consumed, 0, ErrMetaFlagsTooLong
		}
		return consumed, 0, ErrMetaOptionsTooLong
	}
	if ferr := d.metaFlags(2, nt, req); ferr != nil {
		if req.Cmd == CmdMetaGet {
			return consumed, 0, ferr
		}
		return consumed, 0, ErrMetaInvalidOrDuplicate
	}
	m := &req.Meta
	switch req.Cmd {
	case CmdMetaDelete:
		if m.OpaqueTooLong() {
			return consumed, 0, ErrMetaOpaqueTooLong
		}
	case CmdMetaArith:
		switch m.Mode {
		case 0, 'I', '+', 'D', '-':
		default:
			return consumed, 0, ErrMetaArithMode
		}
	}
	return consumed, 0, nil
}

// metaSet decodes ms <key> <datalen> <flags>* and its data block. Errors
// found once the data length is known swallow the data block, as
// memcached does.
func (d *Decoder) metaSet(buf []byte, consumed, nt int, req *Request) (n, need int, err error) {
	if nt < 2 {
		return consumed, 0, ErrUnknownCommand
	}
	if len(d.toks[1]) > KeyMax || nt == 2 {
		return consumed, 0, ErrBadFormat
	}
	req.Key = d.toks[1]
	if nt+1 > metaMaxTokens {
		return consumed, 0, ErrMetaOptionsTooLong
	}
	vlen, ok := number.ParseInt32(d.toks[2])
	if !ok || vlen < 0 || vlen > maxValueLen {
		return consumed, 0, ErrBadFormat
	}
	block := int(vlen) + 2
	ferr := d.metaFlags(3, nt, req)
	if ferr == nil {
		switch req.Meta.Mode {
		case 0, 'E', 'A', 'P', 'R', 'S':
			if req.Meta.OpaqueTooLong() {
				ferr = ErrMetaOpaqueTooLong
			}
		default:
			ferr = ErrMetaSetMode
		}
	}
	if ferr != nil {
		return d.swallowBlock(buf, consumed, block), 0, ferr
	}
	if !d.fits(len(req.Key), req.Meta.ClientFlags, block) {
		req.Meta.TooLarge = true
		return d.swallowBlock(buf, consumed, block), 0, nil
	}
	total := consumed + block
	if len(buf) < total {
		*req = Request{}
		return 0, total, nil
	}
	if buf[total-2] != '\r' || buf[total-1] != '\n' {
		return total, 0, ErrBadDataChunk
	}
	req.Data = buf[consumed : total-2]
	return total, 0, nil
}

// swallowBlock consumes what buf holds of a data block of block bytes
// that starts at consumed, and remembers the rest for later calls.
func (d *Decoder) swallowBlock(buf []byte, consumed, block int) int {
	k := min(block, len(buf)-consumed)
	d.swallow = block - k
	return consumed + k
}

// metaDebug decodes me <key> [b].
func (d *Decoder) metaDebug(nt int, req *Request) error {
	if nt < 2 || len(d.toks[1]) > KeyMax {
		return ErrBadFormat
	}
	req.Key = d.toks[1]
	if nt >= 3 && len(d.toks[2]) == 1 && d.toks[2][0] == 'b' {
		n, ok := decodeBase64(d.keyBuffer(), req.Key)
		if !ok {
			return ErrBadFormat
		}
		req.Key = d.keybuf[:n]
		req.Meta.Base64 = true
		req.Meta.set |= metaBit('b')
	}
	return nil
}

// metaFlags parses the flag tokens d.toks[start:nt] into req.Meta, as
// memcached's _meta_flag_preparse: a duplicate or unknown flag stops the
// parse at once; a bad argument is remembered and the parse goes on, the
// last error found being the one returned.
func (d *Decoder) metaFlags(start, nt int, req *Request) *Error {
	m := &req.Meta
	m.Delta = 1
	if start < nt {
		m.Tokens = d.toks[start:nt]
	}
	var (
		seen   [2]uint64
		ferr   *Error
		failed bool
	)
	for _, tok := range m.Tokens {
		o := tok[0]
		if o >= 127 || seen[o>>6]&(1<<(o&63)) != 0 {
			return ErrMetaDuplicateFlag
		}
		seen[o>>6] |= 1 << (o & 63)
		arg := tok[1:]
		switch o {
		case 'b':
			n, ok := decodeBase64(d.keyBuffer(), req.Key)
			if !ok {
				ferr, failed = ErrMetaKeyDecode, true
			}
			req.Key = d.keybuf[:n]
			m.Base64 = true
		case 'N', 'T', 'R':
			v, ok := number.ParseInt32(arg)
			if !ok {
				ferr, failed = ErrMetaBadToken, true
				break
			}
			switch o {
			case 'N':
				m.VivifyTTL = int64(v)
			case 'T':
				m.TTL = int64(v)
			default:
				m.RecacheTTL = int64(v)
			}
		case 'F':
			v, ok := number.ParseUint32(arg)
			if !ok {
				failed = true
			}
			m.ClientFlags = v
		case 'C', 'E':
			v, ok := number.ParseUint64(arg)
			if !ok {
				ferr, failed = ErrMetaBadToken, true
				break
			}
			if o == 'C' {
				m.CompareCAS = v
			} else {
				m.NewCAS = v
			}
		case 'M':
			if len(tok) != 2 {
				ferr, failed = ErrMetaModeLength, true
				break
			}
			m.Mode = tok[1]
		case 'J':
			v, ok := number.ParseUint64(arg)
			if !ok {
				ferr, failed = ErrMetaInitial, true
			}
			m.Initial = v
		case 'D':
			v, ok := number.ParseUint64(arg)
			if !ok {
				ferr, failed = ErrMetaDelta, true
			}
			m.Delta = v
		case 'q':
			m.Quiet = true
		case 'O', 'P', 'L', 'k', 's', 't', 'c', 'f', 'v', 'h', 'l', 'u', 'I', 'x':
		default:
			return ErrMetaInvalidFlag
		}
		m.set |= metaBit(o)
	}
	if failed {
		if ferr == nil {
			ferr = ErrBadFormat
		}
		return ferr
	}
	return nil
}

// base64Invalid marks bytes outside the base64 alphabet in base64Table.
const base64Invalid = 0x80

// base64Table maps a byte to its base64 value ('=' is 0), or base64Invalid.
var base64Table = func() (t [256]byte) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := range t {
		t[i] = base64Invalid
	}
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	t['='] = 0
	return t
}()

// decodeBase64 decodes a base64 key into dst the way memcached 1.6.18
// does: bytes outside the alphabet are skipped; the rest must be a
// non-zero multiple of 4; decoding stops after the first group holding
// padding, which may hold at most two '='. It reports false where
// memcached fails (returns 0). dst must hold len(src)*3/4 bytes.
func decodeBase64(dst, src []byte) (int, bool) {
	count := 0
	for _, c := range src {
		if base64Table[c] != base64Invalid {
			count++
		}
	}
	if count == 0 || count%4 != 0 || count/4*3 > len(dst) {
		return 0, false
	}
	var block [4]byte
	pos, n, pad := 0, 0, 0
	for _, c := range src {
		v := base64Table[c]
		if v == base64Invalid {
			continue
		}
		if c == '=' {
			pad++
		}
		block[n] = v
		n++
		if n < 4 {
			continue
		}
		dst[pos] = block[0]<<2 | block[1]>>4
		dst[pos+1] = block[1]<<4 | block[2]>>2
		dst[pos+2] = block[2]<<6 | block[3]
		pos += 3
		n = 0
		if pad > 0 {
			if pad > 2 {
				return 0, false
			}
			pos -= pad
			break
		}
	}
	return pos, pos > 0
}

// AppendMetaKey appends a meta reply's key flag: " k<key>", or
// " k<base64 key> b" when the key was sent in base64.
func AppendMetaKey(dst, key []byte, b64 bool) []byte {
	dst = append(dst, " k"...)
	if !b64 {
		return append(dst, key...)
	}
	dst = AppendBase64(dst, key)
	return append(dst, " b"...)
}

// AppendBase64 appends key in standard base64 with padding.
func AppendBase64(dst, key []byte) []byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := 0
	for ; len(key)-i >= 3; i += 3 {
		v := uint(key[i])<<16 | uint(key[i+1])<<8 | uint(key[i+2])
		dst = append(dst, alphabet[v>>18&63], alphabet[v>>12&63], alphabet[v>>6&63], alphabet[v&63])
	}
	switch len(key) - i {
	case 1:
		v := uint(key[i]) << 16
		dst = append(dst, alphabet[v>>18&63], alphabet[v>>12&63], '=', '=')
	case 2:
		v := uint(key[i])<<16 | uint(key[i+1])<<8
		dst = append(dst, alphabet[v>>18&63], alphabet[v>>12&63], alphabet[v>>6&63], '=')
	}
	return dst
}
