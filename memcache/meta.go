package memcache

import (
	"strconv"

	"github.com/mnemo-cache/mnemo/cache"
	"github.com/mnemo-cache/mnemo/engine"
	"github.com/mnemo-cache/mnemo/protocol/text"
	"github.com/mnemo-cache/mnemo/server"
)

// The meta commands: mg, ms, md, ma, mn and me, executed with package
// cache and answered byte for byte as memcached 1.6.18 answers them.
// Return flags are written in the order the request sent them. The q flag
// suppresses what memcached suppresses: EN of mg, HD of ms and md, and the
// HD or VA of an ma that changed an existing item; errors are always sent.

var (
	metaEN = []byte("EN")
	metaHD = []byte("HD")
	metaNS = []byte("NS")
	metaEX = []byte("EX")
	metaNF = []byte("NF")
	crlf   = []byte("\r\n")
)

// meta runs one meta command.
func (s *session) meta(c *server.Conn, r *text.Request) error {
	switch r.Cmd {
	case text.CmdMetaNoop:
		// mn ends a pipeline: memcached writes everything out now.
		c.Out = append(c.Out, text.MN...)
		return c.Flush()
	case text.CmdMetaGet:
		s.metaGet(c, r)
	case text.CmdMetaSet:
		s.metaSet(c, r)
	case text.CmdMetaDelete:
		s.metaDelete(c, r)
	case text.CmdMetaArith:
		s.metaArith(c, r)
	case text.CmdMetaDebug:
		s.metaDebug(c, r)
	}
	return nil
}

// seq returns the TTL-changing flags T, N and R in the order sent.
func seq(m *text.MetaFlags) (q [3]byte) {
	i := 0
	for _, t := range m.Tokens {
		switch t[0] {
		case 'T', 'N', 'R':
			if i < len(q) {
				q[i] = t[0]
				i++
			}
		}
	}
	return q
}

// appendOpaqueKey appends the O and k flags of r in order (the flags of
// a miss or failure).
func appendOpaqueKey(dst []byte, r *text.Request) []byte {
	m := &r.Meta
	if !m.Has('O') && !m.Has('k') {
		return dst
	}
	for _, t := range m.Tokens {
		switch t[0] {
		case 'O':
			dst = append(dst, ' ')
			dst = append(dst, t...)
		case 'k':
			dst = text.AppendMetaKey(dst, r.Key, m.Base64)
		}
	}
	return dst
}

// appendTTL appends a t flag's value: the seconds left, or -1 for an item
// that never expires (as memcached, an unsigned 32-bit number).
func appendTTL(dst []byte, exptime, now int64) []byte {
	if exptime == 0 {
		return append(dst, "-1"...)
	}
	return strconv.AppendUint(dst, uint64(uint32(exptime-now)), 10)
}

// metaErr replies to an engine error; meta errors ignore q. noMemory is
// the command's out-of-memory line.
func (s *session) metaErr(c *server.Conn, err error, noMemory []byte) {
	c.Out = s.h.appendFailure(c.Out, err, noMemory)
}

// metaGet answers mg.
func (s *session) metaGet(c *server.Conn, r *text.Request) {
	m := &r.Meta
	o := cache.MetaGetOpts{
		Value:      m.Has('v') || m.Has('s'),
		NoBump:     m.Has('u'),
		TTL:        m.Has('T'),
		TTLValue:   m.TTL,
		Vivify:     m.Has('N'),
		VivifyTTL:  m.VivifyTTL,
		Recache:    m.Has('R'),
		RecacheTTL: m.RecacheTTL,
		NewCAS:     m.NewCAS,
	}
	if o.TTL || o.Vivify || o.Recache {
		o.Seq = seq(m)
	}
	// The value goes straight into the reply buffer, after room for the
	// header line.
	start := len(c.Out)
	room := metaHeaderMax(r)
	res, out, err := s.cs.MetaGet(r.Key, roomFor(c, room, s.lastValue), o)
	c.Out = out[:start]
	if err != nil {
		s.metaErr(c, err, text.OutOfMemoryStoring)
		return
	}
	if m.OpaqueTooLong() {
		c.Out = text.ErrMetaOpaqueTooLong.AppendReply(c.Out)
		return
	}
	if !res.Found {
		if m.Quiet {
			return
		}
		out = append(c.Out, metaEN...)
		out = appendOpaqueKey(out, r)
		c.Out = append(out, crlf...)
		return
	}
	n := len(out) - start - room
	if n > 0 {
		s.lastValue = n
	}
	hdr := out[start:start]
	if m.Has('v') {
		hdr = append(hdr, "VA "...)
		hdr = strconv.AppendUint(hdr, uint64(n), 10)
	} else {
		hdr = append(hdr, metaHD...)
	}
	exp := res.Meta.Exptime
	for _, t := range m.Tokens {
		switch t[0] {
		case 'T':
			exp = res.TTLExptime
		case 'N':
			if res.Created {
				exp = res.VivifyExptime
			}
		case 's':
			hdr = append(hdr, " s"...)
			hdr = strconv.AppendUint(hdr, uint64(n), 10)
		case 't':
			hdr = append(hdr, " t"...)
			hdr = appendTTL(hdr, exp, res.Now)
		case 'c':
			hdr = append(hdr, " c"...)
			hdr = strconv.AppendUint(hdr, res.Meta.CAS, 10)
		case 'f':
			hdr = append(hdr, " f"...)
			hdr = strconv.AppendUint(hdr, uint64(res.Meta.Flags), 10)
		case 'l':
			hdr = append(hdr, " l"...)
			hdr = strconv.AppendUint(hdr, uint64(uint32(res.Now-res.Meta.Atime)), 10)
		case 'h':
			if res.Meta.Bits&engine.BitFetched != 0 {
				hdr = append(hdr, " h1"...)
			} else {
				hdr = append(hdr, " h0"...)
			}
		case 'O':
			hdr = append(hdr, ' ')
			hdr = append(hdr, t...)
		case 'k':
			hdr = text.AppendMetaKey(hdr, r.Key, m.Base64)
		}
	}
	if res.WinSent {
		hdr = append(hdr, " Z"...)
	}
	if res.Stale {
		hdr = append(hdr, " X"...)
	}
	if res.Won {
		hdr = append(hdr, " W"...)
	}
	hdr = append(hdr, crlf...)
	if !m.Has('v') {
		n = 0 // s without v: the value was read for its size only
	}
	out = closeGap(out, start, len(hdr), room, n)
	if m.Has('v') {
		out = append(out, crlf...)
	}
	c.Out = out
}

// metaHeaderMax bounds the header line of an mg hit for r: "VA <size>",
// each return flag at its longest, the Z, X and W flags and "\r\n".
func metaHeaderMax(r *text.Request) int {
	n := len("VA ") + 20 + len(" Z X W") + 2
	for _, t := range r.Meta.Tokens {
		switch t[0] {
		case 'k':
			// " k" and the key, in base64 with " b" when b was sent.
			n += 2 + max(len(r.Key), (len(r.Key)+2)/3*4) + 2
		case 'O':
			n += 1 + len(t)
		default:
			n += 2 + 20 // " s", " t", " c", " f", " l", " h" and a number
		}
	}
	return n
}

// metaSetModes maps ms's M flag to a store mode.
func metaSetMode(mode byte) cache.StoreMode {
	switch mode {
	case 'E':
		return cache.ModeAdd
	case 'A':
		return cache.ModeAppend
	case 'P':
		return cache.ModePrepend
	case 'R':
		return cache.ModeReplace
	}
	return cache.ModeSet
}

// metaSet answers ms.
func (s *session) metaSet(c *server.Conn, r *text.Request) {
	m := &r.Meta
	if m.TooLarge {
		s.cs.RefuseMetaTooLarge(r.Key)
		c.Out = append(c.Out, text.TooLarge...)
		return
	}
	s.h.detail.recordSet(r.Key)
	o := cache.MetaSetOpts{
		Mode:       metaSetMode(m.Mode),
		Flags:      m.ClientFlags,
		Exptime:    m.TTL,
		HasCAS:     m.Has('C'),
		CAS:        m.CompareCAS,
		Invalidate: m.Has('I'),
		NewCAS:     m.NewCAS,
		Vivify:     m.Has('N'),
		VivifyTTL:  m.VivifyTTL,
	}
	st, meta, size, err := s.cs.MetaSet(r.Key, r.Data, o)
	if s.h.logs.on(logMutations) {
		s.logMetaSet(c, r, o, st, meta, size, err)
	}
	if err != nil {
		s.metaErr(c, err, text.OutOfMemoryStoring)
		return
	}
	var code []byte
	switch st {
	case cache.Stored:
		if m.Quiet {
			return
		}
		code = metaHD
	case cache.Exists:
		code = metaEX
	case cache.NotFound:
		code = metaNF
	default:
		code = metaNS
	}
	out := append(c.Out, code...)
	for _, t := range m.Tokens {
		switch t[0] {
		case 'O':
			out = append(out, ' ')
			out = append(out, t...)
		case 'k':
			out = text.AppendMetaKey(out, r.Key, m.Base64)
		case 'c':
			out = append(out, " c"...)
			if st == cache.Stored {
				out = strconv.AppendUint(out, meta.CAS, 10)
			} else {
				out = append(out, '0')
			}
		case 's':
			out = append(out, " s"...)
			out = strconv.AppendUint(out, uint64(size), 10)
		}
	}
	c.Out = append(out, crlf...)
}

// metaDelete answers md.
func (s *session) metaDelete(c *server.Conn, r *text.Request) {
	m := &r.Meta
	s.h.detail.recordDelete(r.Key)
	st, err := s.cs.MetaDelete(r.Key, cache.MetaDeleteOpts{
		HasCAS:      m.Has('C'),
		CAS:         m.CompareCAS,
		Invalidate:  m.Has('I'),
		TTL:         m.Has('T'),
		Exptime:     m.TTL,
		NewCAS:      m.NewCAS,
		RemoveValue: m.Has('x'),
		Flags:       m.ClientFlags,
	})
	if err != nil {
		s.metaErr(c, err, text.OutOfMemory)
		return
	}
	var code []byte
	switch st {
	case cache.Deleted:
		if m.Quiet {
			return
		}
		code = metaHD
	case cache.Exists:
		code = metaEX
	default:
		code = metaNF
	}
	out := append(c.Out, code...)
	out = appendOpaqueKey(out, r)
	c.Out = append(out, crlf...)
}

// metaArith answers ma.
func (s *session) metaArith(c *server.Conn, r *text.Request) {
	m := &r.Meta
	o := cache.MetaArithOpts{
		Incr:      m.Mode != 'D' && m.Mode != '-',
		Delta:     m.Delta,
		CAS:       m.CompareCAS,
		Vivify:    m.Has('N'),
		VivifyTTL: m.VivifyTTL,
		Initial:   m.Initial,
		TTL:       m.Has('T'),
		TTLValue:  m.TTL,
		NewCAS:    m.NewCAS,
	}
	if o.TTL || o.Vivify {
		o.Seq = seq(m)
	}
	res, err := s.cs.MetaArith(r.Key, o)
	if err != nil {
		s.metaErr(c, err, text.OutOfMemory)
		return
	}
	if res.Status == cache.NonNumeric {
		c.Out = append(c.Out, text.NonNumeric...)
		return
	}
	if m.OpaqueTooLong() {
		c.Out = text.ErrMetaOpaqueTooLong.AppendReply(c.Out)
		return
	}
	out := c.Out
	switch res.Status {
	case cache.Stored:
		// memcached honours q for a changed item, not for a created one.
		if m.Quiet && !res.Created {
			return
		}
	case cache.Exists:
		out = append(out, metaEX...)
		out = appendOpaqueKey(out, r)
		c.Out = append(out, crlf...)
		return
	default:
		out = append(out, metaNF...)
		out = appendOpaqueKey(out, r)
		c.Out = append(out, crlf...)
		return
	}
	var num [20]byte
	digits := strconv.AppendUint(num[:0], res.Value, 10)
	if m.Has('v') {
		out = append(out, "VA "...)
		out = strconv.AppendUint(out, uint64(len(digits)), 10)
	} else {
		out = append(out, metaHD...)
	}
	exp := res.Exptime
	for _, t := range m.Tokens {
		switch t[0] {
		case 'c':
			out = append(out, " c"...)
			out = strconv.AppendUint(out, res.Meta.CAS, 10)
		case 't':
			out = append(out, " t"...)
			out = appendTTL(out, exp, res.Now)
		case 'T':
			exp = res.TTLExptime
		case 'N':
			if res.Created {
				exp = res.VivifyExptime
			}
		case 'O':
			out = append(out, ' ')
			out = append(out, t...)
		case 'k':
			out = text.AppendMetaKey(out, r.Key, m.Base64)
		}
	}
	out = append(out, crlf...)
	if m.Has('v') {
		out = append(out, digits...)
		out = append(out, crlf...)
	}
	c.Out = out
}

// metaDebug answers me with memcached's debug line. The slab class and
// size are those memcached would use for the item with its default slab
// settings (-n 48 -f 1.25).
func (s *session) metaDebug(c *server.Conn, r *text.Request) {
	// The value is read only for its size, into the reply buffer's spare
	// room (where it is not part of the reply).
	meta, val, ok, err := s.cs.MetaDebug(r.Key, c.Out[len(c.Out):])
	vlen := len(val)
	if err != nil {
		s.metaErr(c, err, text.OutOfMemory)
		return
	}
	if !ok {
		c.Out = append(append(c.Out, metaEN...), crlf...)
		return
	}
	now := s.cs.Cache().Now()
	out := append(c.Out, "ME "...)
	if r.Meta.Base64 {
		out = text.AppendBase64(out, r.Key)
	} else {
		out = append(out, r.Key...)
	}
	out = append(out, " exp="...)
	if meta.Exptime == 0 {
		out = append(out, "-1"...)
	} else {
		out = strconv.AppendInt(out, int64(int32(now-meta.Exptime)), 10)
	}
	out = append(out, " la="...)
	out = strconv.AppendUint(out, uint64(uint32(now-meta.Atime)), 10)
	out = append(out, " cas="...)
	out = strconv.AppendUint(out, meta.CAS, 10)
	if meta.Bits&engine.BitFetched != 0 {
		out = append(out, " fetch=yes"...)
	} else {
		out = append(out, " fetch=no"...)
	}
	size := itemHeaderSize + len(r.Key) + 1 + vlen + 2
	if meta.Flags != 0 {
		size += 4
	}
	if !s.cs.Cache().Options().DisableCAS {
		size += 8
	}
	out = append(out, " cls="...)
	out = strconv.AppendUint(out, uint64(slabClass(size)), 10)
	out = append(out, " size="...)
	out = strconv.AppendUint(out, uint64(size), 10)
	c.Out = append(out, crlf...)
}

// itemHeaderSize is memcached's sizeof(item) on a 64-bit host.
const itemHeaderSize = 48

// slabSizes are memcached's default slab class chunk sizes (class 1 is
// slabSizes[1]): from 96 bytes, growing by 1.25 and aligned to 8, up to
// the 512 KiB chunk limit.
var slabSizes = func() []int {
	const (
		chunkMax = 512 << 10
		factor   = 1.25
	)
	sizes := []int{0}
	size := uint32(itemHeaderSize + 48)
	for len(sizes) < 63 {
		if float64(size) >= chunkMax/factor {
			break
		}
		if size%8 != 0 {
			size += 8 - size%8
		}
		sizes = append(sizes, int(size))
		size = uint32(float64(size) * factor)
	}
	return append(sizes, chunkMax)
}()

// slabClass returns the slab class memcached stores an item of size bytes
// in (the largest class for chunked items).
func slabClass(size int) int {
	for i := 1; i < len(slabSizes); i++ {
		if size <= slabSizes[i] {
			return i
		}
	}
	return len(slabSizes) - 1
}
