package memcache

import (
	"errors"
	"strconv"

	"github.com/mnemo-cache/mnemo/cache"
	"github.com/mnemo-cache/mnemo/engine"
	"github.com/mnemo-cache/mnemo/protocol/text"
	"github.com/mnemo-cache/mnemo/server"
)

// flushThreshold is the reply size past which a multi-get writes what it
// has so far instead of buffering more.
const flushThreshold = 256 << 10

// session is one connection's protocol state.
type session struct {
	h   *Handler
	cs  *cache.Session
	dec *text.Decoder
	req text.Request
	val []byte // value scratch for gets
}

// Close releases the session's state when the connection ends.
func (s *session) Close() {
	s.cs.Close()
	s.val = nil
}

// Serve decodes and executes every complete request at the start of in.
func (s *session) Serve(c *server.Conn, in []byte) (consumed, need int, err error) {
	for consumed < len(in) {
		n, need, derr := s.dec.Decode(in[consumed:], &s.req)
		consumed += n
		if derr != nil {
			var perr *text.Error
			if !errors.As(derr, &perr) {
				return consumed, 0, derr
			}
			c.Out = perr.AppendReply(c.Out)
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
		if err := s.execute(c, &s.req); err != nil {
			return consumed, 0, err
		}
	}
	return consumed, 0, nil
}

// reply appends a fixed reply unless the request asked for none.
func (s *session) reply(c *server.Conn, r *text.Request, b []byte) {
	if !r.Noreply {
		c.Out = append(c.Out, b...)
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
		s.h.detail.recordSet(r.Key)
		st, _, err := s.cs.Store(storeModes[r.Cmd], r.Key, r.Flags, r.Exptime, r.Data, r.CAS)
		if err != nil {
			s.replyErr(c, r, err, text.OutOfMemoryStoring)
			return nil
		}
		s.reply(c, r, statusReplies[st])
	case text.CmdDelete:
		s.h.detail.recordDelete(r.Key)
		st, err := s.cs.Delete(r.Key, 0)
		if err != nil {
			s.replyErr(c, r, err, text.OutOfMemoryStoring)
			return nil
		}
		s.reply(c, r, statusReplies[st])
	case text.CmdIncr, text.CmdDecr:
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
		st, err := s.cs.Touch(r.Key, r.Exptime)
		if err != nil {
			s.replyErr(c, r, err, text.OutOfMemoryStoring)
			return nil
		}
		s.reply(c, r, statusReplies[st])
	case text.CmdMetaGet, text.CmdMetaSet, text.CmdMetaDelete, text.CmdMetaArith, text.CmdMetaNoop, text.CmdMetaDebug:
		return s.meta(c, r)
	default:
		return s.admin(c, r)
	}
	return nil
}

// get answers get, gets, gat and gats.
func (s *session) get(c *server.Conn, r *text.Request) error {
	withCAS := r.Cmd == text.CmdGets || r.Cmd == text.CmdGats
	touch := r.Cmd == text.CmdGat || r.Cmd == text.CmdGats
	for _, key := range r.Keys {
		var (
			m   engine.Meta
			ok  bool
			err error
		)
		if touch {
			m, s.val, ok, err = s.cs.GetAndTouch(key, s.val[:0], r.Exptime)
		} else {
			m, s.val, ok, err = s.cs.Get(key, s.val[:0])
		}
		s.h.detail.recordGet(key, ok)
		if err != nil {
			s.replyErr(c, r, err, text.OutOfMemoryStoring)
			return nil
		}
		if ok {
			c.Out = text.AppendValue(c.Out, key, m.Flags, s.val, m.CAS, withCAS)
			if len(c.Out) > flushThreshold {
				if err := c.Flush(); err != nil {
					return err
				}
			}
		}
	}
	if cap(s.val) > flushThreshold {
		s.val = nil // a big value was read: do not keep its buffer
	}
	c.Out = append(c.Out, text.End...)
	return nil
}
