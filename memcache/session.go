package memcache

import (
	"errors"
	"strconv"

	"github.com/mnemo-cache/mnemo/cache"
	"github.com/mnemo-cache/mnemo/engine"
	"github.com/mnemo-cache/mnemo/protocol/text"
	"github.com/mnemo-cache/mnemo/server"
)

// flushThreshold is the size of pending replies past which a session
// writes them out (server.Conn.Flush) before it executes more: after each
// request, and within a command whose own reply can pass it (a multi-key
// get, stats detail dump, stats conns). The write blocks only the
// connection's goroutine while the client does not read, and reading from
// that client pauses with it, so a connection's pending replies never
// exceed flushThreshold plus one reply: one item, or one stats cachedump
// (at most cachedumpLimit).
const flushThreshold = 256 << 10

// flushIfFull writes the pending replies out once they pass
// flushThreshold.
func flushIfFull(c *server.Conn) error {
	if len(c.Out) > flushThreshold {
		return c.Flush()
	}
	return nil
}

// session is one connection's protocol state. It holds no value buffer:
// values are copied from the cache straight into the reply buffer. What
// it needs only while its connection is active (the decoder, the request,
// the cache session) is its textWork, which it gives back when the
// connection parks and takes again when bytes arrive: a parked text
// connection keeps only this struct.
type session struct {
	h *Handler
	*textWork
}

// textWork is a text session's working state, pooled by the Handler.
type textWork struct {
	cs   *cache.Session
	dec  text.Decoder
	req  text.Request
	peek []byte // the value of a lookup made only for a watcher (watch.go)
	// lastValue is the size of the last value read, the guess for the
	// next one (see roomFor).
	lastValue int

	// A get's View (see frame): its connection, key and kind, and the
	// size of the value framed; frameFn is w.frame, made once.
	vc      *server.Conn
	vkey    []byte
	vcas    bool
	vlast   bool // the request's last key: frame may send END with it
	vlone   bool // ... and the batch's last request: nothing follows it
	vend    bool // frame sent (or appended) END
	vn      int
	frameFn func(engine.Meta, []byte)
}

// writeThroughMin is the size from which a get's last value goes from
// item memory straight to the socket (server.Conn.WriteThrough), behind
// the pending replies, in one writev, instead of being copied into the
// reply buffer first, wherever the get stands in a batch. Below it, a get
// followed by more buffered requests copies its value: the batch's
// replies go out together in one write, and a writev of its own would
// cost a system call more.
const writeThroughMin = 64 << 10

// writeThroughLone is the size from which the last value of the last
// request buffered (a get at pipeline 1, or the end of a pipelined batch)
// goes from item memory to the socket: the batch's replies are written
// right after it anyway, so the writev takes the place of that write
// and saves the value's copy into the reply buffer (at 16 KB, pipeline
// 1: 1.3 µs less user time per request, BENCHMARKS.md "Large values").
// Small values are copied: for them the copy costs less than writev's
// extra iovecs.
const writeThroughLone = 8 << 10

// newTextWork is the Handler's pool constructor: a decoder with the
// handler's settings.
func (h *Handler) newTextWork() any {
	w := &textWork{dec: *text.NewDecoder(h.cfg.ItemSizeMax)}
	opts := h.cfg.Cache.Options()
	w.dec.NoCAS, w.dec.FlushDisabled = opts.DisableCAS, opts.DisableFlush
	w.frameFn = w.frame
	return w
}

// wake takes a textWork and a cache session for the connection.
func (s *session) wake() {
	s.textWork = s.h.textPool.Get().(*textWork)
	s.cs = s.h.cfg.Cache.NewSession()
}

// Park gives the working state back while the connection is parked,
// unless the decoder is still discarding a refused request. The cache
// session's counters fold into the cache's totals as it closes.
func (s *session) Park(*server.Conn) {
	if s.textWork == nil || !s.dec.Resting() {
		return
	}
	s.release()
}

func (s *session) release() {
	w := s.textWork
	s.textWork = nil
	w.cs.Close()
	w.cs = nil
	w.req = text.Request{}
	s.h.textPool.Put(w)
}

// Close releases the session's state when the connection ends.
func (s *session) Close() {
	if s.textWork != nil {
		s.release()
	}
}

// Serve decodes and executes every complete request at the start of in.
func (s *session) Serve(c *server.Conn, in []byte) (consumed, need int, err error) {
	if s.textWork == nil {
		s.wake()
	}
	t := s.h.batchStart()
	vv := s.h.verbose()
	for consumed < len(in) {
		if err := flushIfFull(c); err != nil {
			return consumed, 0, err
		}
		start, mark := consumed, len(c.Out)
		n, need, derr := s.dec.Decode(in[consumed:], &s.req)
		consumed += n
		s.vlone = consumed == len(in)
		if vv && n > 0 {
			s.h.vcommand(c.ID(), in[start:consumed])
		}
		if derr != nil {
			var perr *text.Error
			if !errors.As(derr, &perr) {
				return consumed, 0, derr
			}
			c.Out = perr.AppendReply(c.Out)
			if vv {
				s.h.vreply(c.ID(), &s.req, c.Out, mark)
			}
			if errors.Is(perr, text.ErrTooLarge) && s.req.Cmd.IsStorage() {
				s.cs.RefuseTooLarge(s.req.Key, storeModes[s.req.Cmd])
			}
			if perr.Close {
				return consumed, 0, server.ErrClose
			}
			continue
		}
		if n == 0 {
			return consumed, need, nil
		}
		err := s.execute(c, &s.req)
		if vv {
			s.h.vreply(c.ID(), &s.req, c.Out, mark)
		}
		if t = s.observe(c, &s.req, t, mark); err != nil {
			return consumed, 0, err
		}
	}
	return consumed, 0, nil
}

// reply appends a fixed reply unless the request asked for none.
func (s *session) reply(c *server.Conn, r *text.Request, b []byte) {
	if !r.Noreply {
		c.Out = append(c.Out, b...)
	} else if s.h.verbose() {
		s.h.vnoreply(c.ID(), b)
	}
}

// replyErr appends the reply to a command that failed with err, unless the
// request asked for none. noMemory is the command's out-of-memory line.
func (s *session) replyErr(c *server.Conn, r *text.Request, err error, noMemory []byte) {
	if !r.Noreply {
		c.Out = s.h.appendFailure(c.Out, err, noMemory)
	}
}

var storeModes = [...]cache.StoreMode{
	text.CmdSet:     cache.ModeSet,
	text.CmdAdd:     cache.ModeAdd,
	text.CmdReplace: cache.ModeReplace,
	text.CmdAppend:  cache.ModeAppend,
	text.CmdPrepend: cache.ModePrepend,
	text.CmdCas:     cache.ModeCAS,
}

var statusReplies = [...][]byte{
	cache.Stored:    text.Stored,
	cache.NotStored: text.NotStored,
	cache.Exists:    text.Exists,
	cache.NotFound:  text.NotFound,
	cache.Deleted:   text.Deleted,
	cache.Touched:   text.Touched,
}

// execute runs one decoded request.
func (s *session) execute(c *server.Conn, r *text.Request) error {
	switch r.Cmd {
	case text.CmdNone:
	case text.CmdGet, text.CmdGets, text.CmdGat, text.CmdGats:
		return s.get(c, r)
	case text.CmdSet, text.CmdAdd, text.CmdReplace, text.CmdAppend, text.CmdPrepend, text.CmdCas:
		if s.h.logs.on(logFetchers | logMutations) {
			s.storeWatched(c, r)
			return nil
		}
		s.h.detail.recordSet(r.Key)
		st, _, err := s.cs.Store(storeModes[r.Cmd], r.Key, r.Flags, r.Exptime, r.Data, r.CAS)
		if err != nil {
			s.replyErr(c, r, err, text.OutOfMemoryStoring)
			return nil
		}
		s.reply(c, r, statusReplies[st])
	case text.CmdDelete:
		if s.h.logs.on(logFetchers) {
			s.peekLogged(c, r.Key)
		}
		s.h.detail.recordDelete(r.Key)
		st, err := s.cs.Delete(r.Key, 0)
		if err != nil {
			s.replyErr(c, r, err, text.OutOfMemoryStoring)
			return nil
		}
		s.reply(c, r, statusReplies[st])
	case text.CmdIncr, text.CmdDecr:
		if s.h.logs.on(logFetchers) {
			s.peekLogged(c, r.Key)
		}
		st, v, _, err := s.cs.Arith(r.Key, cache.Arith{Incr: r.Cmd == text.CmdIncr, Delta: r.Delta})
		switch {
		case err != nil:
			s.replyErr(c, r, err, text.OutOfMemory)
		case st == cache.NonNumeric:
			s.reply(c, r, text.NonNumeric)
		case st == cache.Stored:
			if !r.Noreply {
				c.Out = strconv.AppendUint(c.Out, v, 10)
				c.Out = append(c.Out, "\r\n"...)
			}
		default:
			s.reply(c, r, statusReplies[st])
		}
	case text.CmdTouch:
		if s.h.logs.on(logFetchers) {
			s.peekLogged(c, r.Key)
		}
		st, err := s.cs.Touch(r.Key, r.Exptime)
		if err != nil {
			s.replyErr(c, r, err, text.OutOfMemoryStoring)
			return nil
		}
		s.reply(c, r, statusReplies[st])
	case text.CmdMetaGet, text.CmdMetaSet, text.CmdMetaDelete, text.CmdMetaArith, text.CmdMetaNoop, text.CmdMetaDebug:
		if r.Cmd != text.CmdMetaNoop && s.h.logs.on(logFetchers) {
			s.peekLogged(c, r.Key)
		}
		return s.meta(c, r)
	default:
		return s.admin(c, r)
	}
	return nil
}

// get answers get, gets, gat and gats. Each value is copied from the
// cache straight into the reply buffer, after room for its header.
func (s *session) get(c *server.Conn, r *text.Request) error {
	withCAS := r.Cmd == text.CmdGets || r.Cmd == text.CmdGats
	touch := r.Cmd == text.CmdGat || r.Cmd == text.CmdGats
	for i, key := range r.Keys {
		if err := flushIfFull(c); err != nil {
			return err
		}
		var (
			m   engine.Meta
			ok  bool
			err error
		)
		if !touch {
			if err := s.getOne(c, r, key, withCAS, i == len(r.Keys)-1); err != nil {
				return err
			}
			if s.vend {
				return nil
			}
			continue
		}
		start := len(c.Out)
		room := valueHeaderMax(len(key))
		out := roomFor(c, room, s.lastValue)
		m, out, ok, err = s.cs.GetAndTouch(key, out, r.Exptime)
		s.h.detail.recordGet(key, ok)
		s.h.recordGet(key, max(len(out)-start-room, 0))
		if s.h.logs.on(logFetchers) && err == nil {
			s.h.logGet(c.ID(), key, ok, len(out)-start-room, m.Flags)
		}
		c.Out = out[:start]
		if err != nil {
			s.replyErr(c, r, err, text.OutOfMemoryStoring)
			return nil
		}
		if ok {
			n := len(out) - start - room
			s.lastValue = n
			hdr := text.AppendValueHeader(out[start:start], key, m.Flags, n, m.CAS, withCAS)
			out = closeGap(out, start, len(hdr), room, n)
			c.Out = append(out, crlf...)
		}
	}
	c.Out = append(c.Out, text.End...)
	return nil
}

// getOne answers one key of a get or gets: the engine hands the value to
// frame, which writes the reply's header and then the value behind it,
// one copy.
func (s *session) getOne(c *server.Conn, r *text.Request, key []byte, withCAS, last bool) error {
	// Room for a value like the last one, made before the engine's
	// locks are taken (frame grows Out only for a larger one).
	if s.lastValue < writeThroughMin && !(last && s.vlone && s.lastValue >= writeThroughLone) {
		roomFor(c, valueHeaderMax(len(key)), s.lastValue)
	}
	// (-vv reads the reply back from Out: no write-through then.)
	s.vc, s.vkey, s.vcas, s.vlast, s.vend, s.vn = c, key, withCAS, last && !s.h.verbose(), false, 0
	m, ok, err := s.cs.View(key, s.frameFn)
	s.vc, s.vkey = nil, nil
	n := s.vn
	s.h.detail.recordGet(key, ok)
	s.h.recordGet(key, n)
	if s.h.logs.on(logFetchers) && err == nil {
		s.h.logGet(c.ID(), key, ok, n, m.Flags)
	}
	if err != nil {
		s.replyErr(c, r, err, text.OutOfMemoryStoring)
		return nil
	}
	if ok {
		s.lastValue = n
	}
	return nil
}

// frame is the View function of getOne: it appends "VALUE <key> <flags>
// <bytes>[ <cas>]\r\n", the value and "\r\n" to the reply.
func (w *textWork) frame(m engine.Meta, v []byte) {
	c := w.vc
	w.vn = len(v)
	if w.vlast && (len(v) >= writeThroughMin || w.vlone && len(v) >= writeThroughLone) {
		// A large value, the request's last: the pending replies,
		// the header, the value and "\r\nEND\r\n" go out in one
		// writev, as far as the socket takes them now; the rest is
		// copied into Out.
		c.GrowOut(valueHeaderMax(len(w.vkey)))
		c.Out = text.AppendValueHeader(c.Out, w.vkey, m.Flags, len(v), m.CAS, w.vcas)
		n := c.WriteThrough(v, crlfEnd)
		if n < len(v) {
			c.GrowOut(len(v) - n + len(crlfEnd))
			c.Out = append(c.Out, v[n:]...)
			n = len(v)
		}
		c.Out = append(c.Out, crlfEnd[n-len(v):]...)
		w.vend = true
		return
	}
	c.GrowOut(valueHeaderMax(len(w.vkey)) + len(v) + len(crlf))
	out := text.AppendValueHeader(c.Out, w.vkey, m.Flags, len(v), m.CAS, w.vcas)
	out = append(out, v...)
	c.Out = append(out, crlf...)
}

// crlfEnd ends the last value of a get reply, and the reply.
var crlfEnd = []byte("\r\nEND\r\n")

// valueHeaderMax is the longest "VALUE <key> <flags> <bytes> <cas>\r\n"
// line for a key of klen bytes.
func valueHeaderMax(klen int) int {
	return len("VALUE ") + klen + 1 + 10 + 1 + 20 + 1 + 20 + 2
}

// roomFor returns c.Out with room more bytes (of undefined content) for a
// reply header, and capacity after them for a value of about guess bytes
// (the last value's size), so that the engine copies a value of that
// size in without growing the buffer; large values then reuse the
// server's pooled large reply buffers (server.Conn.GrowOut).
func roomFor(c *server.Conn, room, guess int) []byte {
	c.GrowOut(room + guess + len(crlf))
	return c.Out[:len(c.Out)+room]
}

// closeGap finishes a reply built in out from start: a header of hlen
// bytes written at out[start:] over the room bytes left for it, and the
// value of n bytes after the room. It moves the value to follow the header
// and returns out up to the value's end. A header longer than its room
// would have overwritten the value: that is a bug.
func closeGap(out []byte, start, hlen, room, n int) []byte {
	if hlen > room {
		panic("memcache: reply header longer than the room left for it")
	}
	v := start + room
	if hlen < room {
		copy(out[start+hlen:], out[v:v+n])
	}
	return out[:start+hlen+n]
}
