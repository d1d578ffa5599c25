package memcache

import (
	"bytes"
	"errors"

	"github.com/mnemo-cache/mnemo/cache"
	"github.com/mnemo-cache/mnemo/engine"
	"github.com/mnemo-cache/mnemo/protocol/binary"
	"github.com/mnemo-cache/mnemo/protocol/text"
	"github.com/mnemo-cache/mnemo/server"
)

// binSession is one binary-protocol connection's state. It executes each
// request with the same cache.Session methods as the text protocol. Its
// binWork (the request and the cache session) is given back while the
// connection is parked; the decoder and the authentication state stay.
type binSession struct {
	h      *Handler
	dec    binary.Decoder
	noCAS  bool
	authed bool
	sasl   saslState
	*binWork
}

// binWork is a binary session's working state, pooled by the Handler.
type binWork struct {
	cs   *cache.Session
	req  binary.Request
	peek []byte // the value of a lookup made only for a watcher (watch.go)
	// lastValue is the size of the last value read (see roomFor).
	lastValue int
}

func (h *Handler) newBinarySession() *binSession {
	opts := h.cfg.Cache.Options()
	s := &binSession{h: h, noCAS: opts.DisableCAS}
	s.dec = binary.Decoder{
		ItemSizeMax: h.cfg.ItemSizeMax,
		NoCAS:       opts.DisableCAS,
		SASL:        h.cfg.SASL,
		RequireAuth: h.cfg.SASL,
	}
	s.wake()
	return s
}

// wake takes a binWork and a cache session for the connection.
func (s *binSession) wake() {
	w, _ := s.h.binPool.Get().(*binWork)
	if w == nil {
		w = new(binWork)
	}
	w.cs = s.h.cfg.Cache.NewSession()
	s.binWork = w
}

// Park gives the working state back while the connection is parked; the
// cache session's counters fold into the cache's totals as it closes.
func (s *binSession) Park(*server.Conn) {
	if s.binWork != nil {
		s.release()
	}
}

func (s *binSession) release() {
	w := s.binWork
	s.binWork = nil
	w.cs.Close()
	*w = binWork{}
	s.h.binPool.Put(w)
}

// Close releases the session's state when the connection ends.
func (s *binSession) Close() {
	if s.binWork != nil {
		s.release()
	}
	s.sasl = saslState{}
}

// Serve decodes and executes every complete request at the start of in.
// Replies are appended to c.Out and written once the batch is done, so a
// pipeline of quiet gets ended by NOOP is answered with one write, or
// earlier once they pass flushThreshold.
func (s *binSession) Serve(c *server.Conn, in []byte) (consumed, need int, err error) {
	if s.binWork == nil {
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
		if derr != nil {
			var perr *binary.Error
			if !errors.As(derr, &perr) {
				return consumed, 0, derr
			}
			if errors.Is(perr, binary.ErrBodyTooLarge) {
				// A refused set removes the old item: read its key
				// first, as memcached does.
				if _, store := binaryStoreMode(s.req.Opcode.Base()); store && s.req.Key == nil {
					at := consumed - n
					key, need := binary.FrameKey(in[at:], &s.req.Header)
					if key == nil {
						return at, need, nil
					}
					s.req.Key = key
				}
			}
			if vv && consumed-start >= binary.HeaderLen {
				s.h.vdump('<', c.ID(), "Read binary protocol data:", "   ", in[start:start+binary.HeaderLen])
			}
			s.protocolError(c, perr)
			if vv {
				s.h.vbinReplies(c.ID(), c.Out, mark)
			}
			if perr.Close {
				return consumed, 0, server.ErrClose
			}
			continue
		}
		if n == 0 {
			return consumed, need, nil
		}
		if s.req.Empty() {
			continue
		}
		if vv {
			s.h.vbinRequest(c.ID(), in[start:consumed], &s.req)
		}
		err := s.execute(c, &s.req)
		if vv {
			s.h.vbinReplies(c.ID(), c.Out, mark)
		}
		if t = s.h.observeBinary(c, &s.req, t, mark); err != nil {
			return consumed, 0, err
		}
	}
	return consumed, 0, nil
}

// protocolError answers a frame the decoder refused.
func (s *binSession) protocolError(c *server.Conn, e *binary.Error) {
	r := &s.req
	if errors.Is(e, binary.ErrTooLarge) || errors.Is(e, binary.ErrBodyTooLarge) {
		if mode, ok := binaryStoreMode(r.Opcode.Base()); ok {
			s.cs.RefuseTooLarge(r.Key, mode)
		} else {
			s.cs.StoreTooLarge.Add(1)
		}
	}
	if e.Close {
		s.h.cfg.Logger.Debug("binary protocol error, closing connection", "conn", c.ID(), "opcode", r.Opcode.String(), "err", e.Error())
	}
	c.Out = e.AppendReply(c.Out, r)
}

// ok appends a success response with no body unless the command is quiet.
func (s *binSession) ok(c *server.Conn, r *binary.Request, cas uint64) {
	if !r.Opcode.Quiet() {
		c.Out = binary.AppendResponse(c.Out, r.Opcode, binary.StatusOK, r.Opaque, cas, nil, nil, nil)
	}
}

// fail appends an error response (errors are sent even for quiet
// commands).
func (s *binSession) fail(c *server.Conn, r *binary.Request, st binary.Status, msg string) {
	c.Out = binary.AppendError(c.Out, r.Opcode, st, r.Opaque, msg)
}

// engineErr answers an engine or cache error. noMemory is the command's
// out-of-memory message.
func (s *binSession) engineErr(c *server.Conn, r *binary.Request, err error, noMemory string) {
	c.Out = s.h.appendBinaryFailure(c.Out, r, err, noMemory)
}

// execute runs one decoded request.
func (s *binSession) execute(c *server.Conn, r *binary.Request) error {
	switch r.Opcode.Base() {
	case binary.OpGet, binary.OpGetK, binary.OpGAT, binary.OpGATK, binary.OpTouch:
		s.get(c, r)
	case binary.OpSet, binary.OpAdd, binary.OpReplace, binary.OpAppend, binary.OpPrepend:
		s.store(c, r)
	case binary.OpDelete:
		if s.h.logs.on(logFetchers) {
			s.h.peekLogged(c.ID(), s.cs, r.Key, &s.peek)
		}
		s.h.detail.recordDelete(r.Key)
		st, err := s.cs.Delete(r.Key, r.CAS)
		switch {
		case err != nil:
			s.engineErr(c, r, err, "")
		case st == cache.Deleted:
			s.ok(c, r, 0)
		case st == cache.Exists:
			s.fail(c, r, binary.StatusKeyExists, "")
		default:
			s.fail(c, r, binary.StatusKeyNotFound, "")
		}
	case binary.OpIncrement, binary.OpDecrement:
		s.arith(c, r)
	case binary.OpQuit:
		s.ok(c, r, 0)
		return server.ErrClose
	case binary.OpFlush:
		if err := s.cs.Cache().FlushAll(int64(r.Exptime)); err != nil {
			// memcached answers a disabled flush (-F) so.
			s.fail(c, r, binary.StatusAuthError, "")
			return nil
		}
		s.cs.CmdFlush.Add(1)
		s.ok(c, r, 0)
	case binary.OpNoop:
		s.ok(c, r, 0)
	case binary.OpVersion:
		c.Out = binary.AppendStringResponse(c.Out, r.Opcode, binary.StatusOK, r.Opaque, 0, Version)
	case binary.OpStat:
		return s.stat(c, r)
	case binary.OpSASLListMechs:
		s.setAuthed(false)
		c.Out = binary.AppendStringResponse(c.Out, r.Opcode, binary.StatusOK, r.Opaque, 0, SASLMechanisms)
	case binary.OpSASLAuth, binary.OpSASLStep:
		s.saslAuth(c, r)
	default:
		// The decoder refuses every other opcode.
		s.fail(c, r, binary.StatusUnknownCommand, "")
	}
	return nil
}

// get answers GET, GETK, GAT, GATK, TOUCH and their quiet forms. The
// value is copied from the cache straight into the reply buffer, after
// room for the response header.
func (s *binSession) get(c *server.Conn, r *binary.Request) {
	base := r.Opcode.Base()
	withKey := base == binary.OpGetK || base == binary.OpGATK
	var key []byte
	if withKey {
		key = r.Key
	}
	var (
		m   engine.Meta
		ok  bool
		err error
	)
	start := len(c.Out)
	room := binary.ItemHeaderLen(len(key))
	out := roomFor(c, room, s.lastValue)
	if base == binary.OpGet || base == binary.OpGetK {
		m, out, ok, err = s.cs.Get(r.Key, out)
	} else {
		m, out, ok, err = s.cs.GetAndTouch(r.Key, out, int64(r.Exptime))
	}
	s.h.detail.recordGet(r.Key, ok)
	if s.h.logs.on(logFetchers) && err == nil {
		s.h.logGet(c.ID(), r.Key, ok, len(out)-start-room, m.Flags)
	}
	c.Out = out[:start]
	switch {
	case err != nil:
		s.engineErr(c, r, err, "")
	case ok:
		n := len(out) - start - room
		s.lastValue = n
		if base == binary.OpTouch {
			n = 0 // TOUCH answers without the value
		}
		hdr := binary.AppendItemHeader(out[start:start], r.Opcode, r.Opaque, m.CAS, m.Flags, key, n)
		c.Out = closeGap(out, start, len(hdr), room, n)
	case r.Opcode.Quiet():
		// Quiet gets say nothing on a miss.
	case withKey:
		c.Out = binary.AppendResponse(c.Out, r.Opcode, binary.StatusKeyNotFound, r.Opaque, 0, nil, r.Key, nil)
	default:
		s.fail(c, r, binary.StatusKeyNotFound, "")
	}
}

// store answers SET, ADD, REPLACE, APPEND, PREPEND and their quiet forms.
func (s *binSession) store(c *server.Conn, r *binary.Request) {
	base := r.Opcode.Base()
	mode, _ := binaryStoreMode(base)
	casv := r.CAS
	if s.noCAS {
		casv = 0 // memcached -C ignores the CAS of a request
	}
	s.h.detail.recordSet(r.Key)
	var (
		found  bool
		oldLen int
	)
	watched := s.h.logs.on(logFetchers | logMutations)
	if watched {
		found, oldLen, _ = s.h.peekLogged(c.ID(), s.cs, r.Key, &s.peek)
	}
	st, meta, err := s.cs.Store(mode, r.Key, r.Flags, int64(r.Exptime), r.Value, casv)
	if watched && s.h.logs.on(logMutations) {
		s.logBinaryStore(c, r, mode, casv, found, oldLen, st, meta, err)
	}
	if err != nil {
		s.engineErr(c, r, err, "Out of memory allocating item")
		return
	}
	switch st {
	case cache.Stored:
		s.ok(c, r, meta.CAS)
	case cache.Exists:
		s.fail(c, r, binary.StatusKeyExists, "")
	case cache.NotFound:
		s.fail(c, r, binary.StatusKeyNotFound, "")
	default: // NotStored
		switch base {
		case binary.OpAdd:
			s.fail(c, r, binary.StatusKeyExists, "")
		case binary.OpReplace:
			s.fail(c, r, binary.StatusKeyNotFound, "")
		default:
			s.fail(c, r, binary.StatusNotStored, "")
		}
	}
}

// binaryStoreMode returns the store mode of a storage opcode (its base).
// With a CAS, cache.Session.Store makes set, add and replace a cas
// command, as memcached does.
func binaryStoreMode(base binary.Opcode) (cache.StoreMode, bool) {
	switch base {
	case binary.OpSet:
		return cache.ModeSet, true
	case binary.OpAdd:
		return cache.ModeAdd, true
	case binary.OpReplace:
		return cache.ModeReplace, true
	case binary.OpAppend:
		return cache.ModeAppend, true
	case binary.OpPrepend:
		return cache.ModePrepend, true
	}
	return 0, false
}

// arith answers INCREMENT and DECREMENT and their quiet forms.
func (s *binSession) arith(c *server.Conn, r *binary.Request) {
	a := cache.Arith{Incr: r.Opcode.Base() == binary.OpIncrement, Delta: r.Delta, CAS: r.CAS}
	if r.Exptime != binary.NoCreate {
		a.Create, a.Initial, a.Exptime = true, r.Initial, int64(r.Exptime)
	}
	found, watched := true, s.h.logs.on(logFetchers|logMutations)
	if watched {
		found, _, _ = s.h.peekLogged(c.ID(), s.cs, r.Key, &s.peek)
	}
	st, v, meta, err := s.cs.Arith(r.Key, a)
	if watched && !found && a.Create && err == nil && st == cache.Stored {
		s.logCreatedCounter(c, r, v, meta)
	}
	switch {
	case err != nil:
		s.engineErr(c, r, err, "Out of memory incrementing value")
	case st == cache.Stored:
		if !r.Opcode.Quiet() {
			c.Out = binary.AppendCounter(c.Out, r.Opcode, r.Opaque, meta.CAS, v)
		}
	case st == cache.NonNumeric:
		s.fail(c, r, binary.StatusDeltaBadval, "")
	case st == cache.Exists:
		s.fail(c, r, binary.StatusKeyExists, "")
	default:
		s.fail(c, r, binary.StatusKeyNotFound, "")
	}
}

// stat answers STAT: one packet per statistic, then an empty one. The key
// names the group as the text "stats" argument does.
func (s *binSession) stat(c *server.Conn, r *binary.Request) error {
	opaque := r.Opaque
	add := func(name, value string) { c.Out = binary.AppendStat(c.Out, opaque, name, value) }
	group := r.Key
	eng := s.cs.Cache().Engine()
	// memcached matches the group names by prefix (strncmp).
	switch {
	case len(group) == 0:
		// The text protocol's code path, with binary packets.
		(&session{h: s.h, textWork: &textWork{cs: s.cs}}).generalStats(c, add)
	case bytes.HasPrefix(group, []byte("reset")):
		s.h.resetStats(s.cs.Cache())
	case bytes.HasPrefix(group, []byte("settings")):
		s.h.settings(add)
	case bytes.HasPrefix(group, []byte("detail")):
		switch sub := group[len("detail"):]; {
		case bytes.HasPrefix(sub, []byte(" dump")):
			// One packet whose value is the text dump, written out as
			// it grows.
			d := s.h.detail.snapshot()
			const name = "detailed"
			c.Out = binary.AppendHeader(c.Out, binary.OpStat, binary.StatusOK, opaque, 0, 0, len(name), d.size()+len(text.End))
			c.Out = append(c.Out, name...)
			if err := d.write(c); err != nil {
				return err
			}
			c.Out = append(c.Out, text.End...)
		case bytes.HasPrefix(sub, []byte(" on")):
			s.h.detail.setEnabled(true)
		case bytes.HasPrefix(sub, []byte(" off")):
			s.h.detail.setEnabled(false)
		default:
			s.fail(c, r, binary.StatusKeyNotFound, "")
			return nil
		}
	case string(group) == "conns":
		if err := (&session{h: s.h, textWork: &textWork{cs: s.cs}}).connStats(c, add); err != nil {
			return err
		}
	case string(group) == "hotkeys", string(group) == "sizes":
		// The text protocol's report, one packet per STAT line; an
		// error there (hot keys not tracked) is KEY_ENOENT here.
		if err := s.h.StatGroup(string(group), add); err != nil {
			s.fail(c, r, binary.StatusKeyNotFound, "")
			return nil
		}
	default:
		gs, ok := eng.(engine.GroupStater)
		if g := string(group); g == "slabs" || g == "items" {
			// With the per-class command counters, as the text protocol.
			add = (&session{h: s.h, textWork: &textWork{cs: s.cs}}).classCounters(add)
		}
		if !ok || !gs.GroupStats(string(group), add) {
			s.fail(c, r, binary.StatusKeyNotFound, "")
			return nil
		}
	}
	add("", "")
	return nil
}

// setAuthed records whether the connection has authenticated.
func (s *binSession) setAuthed(ok bool) {
	if !s.h.cfg.SASL {
		return
	}
	s.authed = ok
	s.dec.RequireAuth = !ok
}

// credentials reads the SASL password database.
func (s *binSession) credentials() (*Credentials, error) {
	path := s.h.cfg.SASLPasswordFile
	if path == "" {
		return nil, errors.New("memcache: no SASL password database configured")
	}
	return loadPWDB(path)
}

// saslAuth answers SASL_AUTH and SASL_STEP. Like memcached, every attempt
// first drops an earlier authentication.
func (s *binSession) saslAuth(c *server.Conn, r *binary.Request) {
	s.setAuthed(false)
	var (
		res       saslResult
		challenge []byte
		err       error
	)
	if r.Opcode == binary.OpSASLAuth {
		res, challenge, err = s.sasl.start(s.credentials, r.Key, r.Value)
	} else {
		res, challenge, err = s.sasl.step(s.credentials, r.Value)
	}
	if err != nil {
		// Never log what the client sent: it holds credentials.
		s.h.cfg.Logger.Warn("SASL password database unreadable", "err", err)
	}
	switch res {
	case saslOK:
		s.setAuthed(true)
		s.cs.AuthCmds.Add(1)
		c.Out = binary.AppendStringResponse(c.Out, r.Opcode, binary.StatusOK, r.Opaque, 0, "Authenticated")
	case saslContinue:
		c.Out = binary.AppendResponse(c.Out, r.Opcode, binary.StatusAuthContinue, r.Opaque, 0, nil, nil, challenge)
	default:
		s.cs.AuthCmds.Add(1)
		s.cs.AuthErrors.Add(1)
		s.h.cfg.Logger.Info("SASL authentication failed", "conn", c.ID(), "mech", safeMech(r))
		s.fail(c, r, binary.StatusAuthError, "")
	}
}

// safeMech returns the mechanism name for logs when it is one mnemo
// knows, and "other" otherwise (a client could put anything there).
func safeMech(r *binary.Request) string {
	switch string(r.Key) {
	case "PLAIN", "CRAM-MD5":
		return string(r.Key)
	}
	return "other"
}
