package memcache

import (
	"github.com/mnemo-cache/mnemo/engine"
	"github.com/mnemo-cache/mnemo/protocol/text"
	"github.com/mnemo-cache/mnemo/server"
)

// admin runs the commands that do not touch items: flush_all, version,
// verbosity, quit, shutdown, cache_memlimit, stats and the rest.
func (s *session) admin(c *server.Conn, r *text.Request) error {
	switch r.Cmd {
	case text.CmdFlushAll:
		s.cs.CmdFlush.Add(1)
		if err := s.cs.Cache().FlushAll(r.Exptime); err != nil {
			// The decoder refuses flush_all under -F first; this is the
			// cache's word for the same rule.
			if !r.Noreply {
				c.Out = text.ErrFlushDisabled.AppendReply(c.Out)
			}
			return nil
		}
		s.reply(c, r, text.OK)
	case text.CmdVersion:
		c.Out = append(c.Out, "VERSION "+Version+"\r\n"...)
	case text.CmdVerbosity:
		level := min(r.Num, 2)
		s.h.Verbosity.Store(int32(level))
		if s.h.cfg.SetVerbosity != nil {
			s.h.cfg.SetVerbosity(int(level))
		}
		s.reply(c, r, text.OK)
	case text.CmdQuit:
		return server.ErrClose
	case text.CmdShutdown:
		return s.shutdown(c, r)
	case text.CmdCacheMemlimit:
		s.memlimit(c, r)
	case text.CmdStats:
		return s.stats(c, r)
	case text.CmdMisc:
		return s.misc(c, r)
	default:
		c.Out = append(c.Out, text.ErrorReply...)
	}
	return nil
}

// misc runs the administrative commands the decoder passes on by name
// (text.CmdMisc); a name with no case here answers ERROR.
func (s *session) misc(c *server.Conn, r *text.Request) error {
	switch string(r.Name) {
	case "lru_crawler":
		return s.lruCrawler(c, r)
	case "refresh_certs":
		s.refreshCerts(c, r)
		return nil
	}
	c.Out = append(c.Out, text.ErrorReply...)
	return nil
}

func (s *session) shutdown(c *server.Conn, r *text.Request) error {
	if !s.h.cfg.EnableShutdown {
		c.Out = text.ErrShutdownDisabled.AppendReply(c.Out)
		return nil
	}
	graceful, ok := r.ShutdownMode()
	if !ok {
		c.Out = text.ErrShutdownMode.AppendReply(c.Out)
		return nil
	}
	if s.h.cfg.Shutdown != nil {
		s.h.cfg.Shutdown(graceful)
	}
	return server.ErrClose
}

func (s *session) memlimit(c *server.Conn, r *text.Request) {
	mb := r.Num
	switch {
	case mb < 8:
		s.reply(c, r, text.MemlimitTooSmall)
	case mb > 1000000000:
		s.reply(c, r, text.MemlimitNotBytes)
	default:
		ml, can := s.cs.Cache().Engine().(engine.MemoryLimiter)
		if !can || ml.SetMemoryLimit(int64(mb)<<20) != nil {
			s.reply(c, r, text.MemlimitFailed)
			return
		}
		s.h.maxBytes.Store(int64(mb) << 20)
		s.reply(c, r, text.OK)
	}
}
