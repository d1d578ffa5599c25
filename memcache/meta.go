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
	if cap(s.val) > flushThreshold {
		s.val = nil // a big value was read: do not keep its buffer
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
	res, val, err := s.cs.MetaGet(r.Key, s.val[:0], o)
	s.val = val
	if err != nil {
		s.metaErr(c, err, text.OutOfMemoryStoring)
		return
	}
	if m.OpaqueTooLong() {
		c.Out = text.ErrMetaOpaqueTooLong.AppendReply(c.Out)
		return
	}
	out := c.Out
	if !res.Found {
		if m.Quiet {
			return
		}
		out = append(out, metaEN...)
		out = appendOpaqueKey(out, r)
		c.Out = append(out, crlf...)
		return
	}
	if m.Has('v') {
		out = append(out, "VA "...)
		out = strconv.AppendUint(out, uint64(len(val)), 10)
	} else {
		out = append(out, metaHD...)
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
			out = append(out, " s"...)
			out = strconv.AppendUint(out, uint64(len(val)), 10)
		case 't':
			out = append(out, " t"...)
			out = appendTTL(out, exp, res.Now)
		case 'c':
			out = append(out, " c"...)
			out = strconv.AppendUint(out, res.Meta.CAS, 10)
		case 'f':
			out = append(out, " f"...)
			out = strconv.AppendUint(out, uint64(res.Meta.Flags), 10)
		case 'l':
			out = append(out, " l"...)
			out = strconv.AppendUint(out, uint64(uint32(res.Now-res.Meta.Atime)), 10)
		case 'h':
			if res.Meta.Bits&engine.BitFetched != 0 {
				out = append(out, " h1"...)
			} else {
				out = append(out, " h0"...)
			}
		case 'O':
			out = append(out, ' ')
			out = append(out, t...)
		case 'k':
			out = text.AppendMetaKey(out, r.Key, m.Base64)
		}
	}
	if res.WinSent {
		out = append(out, " Z"...)
	}
	if res.Stale {
		out = append(out, " X"...)
	}
	if res.Won {
		out = append(out, " W"...)
	}
	out = append(out, crlf...)
	if m.Has('v') {
		out = append(out, val...)
		out = append(out, crlf...)
	}
	c.Out = out
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
	st, meta, _, err := s.cs.MetaSet(r.Key, r.Data, o)
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
	meta, val, ok, err := s.cs.MetaDebug(r.Key, s.val[:0])
	s.val = val
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
	size := itemHeaderSize + len(r.Key) + 1 + len(val) + 2
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
