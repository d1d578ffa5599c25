package memcache

import (
	"strconv"

	"github.com/mnemo-cache/mnemo/engine"
	"github.com/mnemo-cache/mnemo/internal/number"
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
		if s.hotKeysStats(c, r) {
			return nil
		}
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
	case "slabs":
		s.slabs(c, r)
		return nil
	case "lru":
		s.lru(c, r)
		return nil
	case "watch":
		return s.watch(c, r)
	case "extstore":
		s.extstore(c, r)
		return nil
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

// Replies of slabs and lru, memcached's words.
var (
	slabsReassignOff = []byte("CLIENT_ERROR slab reassignment disabled\r\n")
	slabsBadClass    = []byte("BADCLASS invalid src or dst class id\r\n")
	slabsSame        = []byte("SAME src and dst class are identical\r\n")
	slabsNoSpare     = []byte("NOSPARE source class has no spare pages\r\n")
	lruPctTooLarge   = []byte("ERROR hot and warm pcts must not exceed 80\r\n")
	lruBadFactor     = []byte("ERROR hot/warm age factors must be greater than 0\r\n")
)

// setting returns the "stats settings" value of name: what a command set,
// else the configuration's.
func (h *Handler) setting(name string) string {
	if v, ok := h.st.tunedValue(name); ok {
		return v
	}
	var value string
	if h.cfg.Settings != nil {
		h.cfg.Settings(func(n, v string) {
			if n == name {
				value = v
			}
		})
	}
	return value
}

// slabs answers "slabs reassign <src> <dst>" and "slabs automove
// <0|1|2>|ratio <r>" with memcached 1.6.18's replies and argument checks
// (process_slabs_command; memcached counts the terminating token, so its
// ntokens is len(Args)+2).
//
// Mnemo shows its arena as one slab class, 1, whose segments all serve
// it, and an empty global page pool, 0: there is never a page to move. So
// reassign answers SAME when src and dst are equal (memcached checks that
// first), NOSPARE between 0 and 1, and BADCLASS for any other class id
// (memcached's valid ids go up to its largest class, 39 by default) and
// for -1 ("any class with a spare page", which finds none); never OK. automove takes memcached's values and shows
// them in "stats settings" (slab_automove, slab_automove_ratio); with one
// class it has nothing to move.
func (s *session) slabs(c *server.Conn, r *text.Request) {
	args := r.Args
	switch {
	case len(args) == 3 && string(args[0]) == "reassign":
		if s.h.setting("slab_reassign") == "no" {
			c.Out = append(c.Out, slabsReassignOff...)
			return
		}
		src, ok1 := number.ParseInt32(args[1])
		dst, ok2 := number.ParseInt32(args[2])
		switch {
		case !ok1 || !ok2:
			c.Out = text.ErrBadFormat.AppendReply(c.Out)
		case src == dst:
			c.Out = append(c.Out, slabsSame...)
		case src < 0 || src > 1 || dst < 0 || dst > 1:
			// -1 (any class with a spare page) finds none.
			c.Out = append(c.Out, slabsBadClass...)
		default:
			c.Out = append(c.Out, slabsNoSpare...)
		}
	case len(args) >= 2 && string(args[0]) == "automove":
		if string(args[1]) == "ratio" {
			ratio, ok := 0.0, len(args) >= 3
			if ok {
				ratio, ok = parseDouble(args[2])
			}
			if !ok {
				s.reply(c, r, text.ErrorReply)
				return
			}
			s.h.st.tune("slab_automove_ratio", strconv.FormatFloat(ratio, 'f', 2, 64))
			s.reply(c, r, text.OK)
			return
		}
		level, ok := number.ParseUint32(args[1])
		switch {
		case !ok:
			if !r.Noreply {
				c.Out = text.ErrBadFormat.AppendReply(c.Out)
			}
		case level > 2:
			s.reply(c, r, text.ErrorReply)
		default:
			s.h.st.tune("slab_automove", strconv.FormatUint(uint64(level), 10))
			s.reply(c, r, text.OK)
		}
	default:
		c.Out = append(c.Out, text.ErrorReply...)
	}
}

// lru answers "lru tune <hot_pct> <warm_pct> <hot_factor> <warm_factor>",
// "lru mode flat|segmented" and "lru temp_ttl <ttl>" with memcached
// 1.6.18's replies and checks (process_lru_command). The values are
// recorded and shown in "stats settings" (hot_lru_pct, warm_lru_pct,
// hot_max_factor, warm_max_factor, lru_segmented, temp_lru,
// temporary_ttl); they change nothing else, because the memory engine has
// no segmented LRU to tune: one FIFO queue with reinsertion (see package
// engine/memory), and no temporary LRU.
func (s *session) lru(c *server.Conn, r *text.Request) {
	args := r.Args
	maintainer := s.h.setting("lru_maintainer_thread") != "no"
	switch {
	case string(args[0]) == "tune" && len(args) >= 5:
		hot, ok1 := number.ParseUint32(args[1])
		warm, ok2 := number.ParseUint32(args[2])
		hotFactor, ok3 := parseDouble(args[3])
		factor, ok4 := parseDouble(args[4])
		switch {
		case !ok1 || !ok2 || !ok3 || !ok4:
			s.reply(c, r, text.ErrorReply)
		case hot+warm > 80: // uint32, as memcached adds them
			s.reply(c, r, lruPctTooLarge)
		case factor <= 0 || hotFactor <= 0:
			s.reply(c, r, lruBadFactor)
		default:
			st := &s.h.st
			// memcached prints them with %d.
			st.tune("hot_lru_pct", strconv.Itoa(int(int32(hot))))
			st.tune("warm_lru_pct", strconv.Itoa(int(int32(warm))))
			st.tune("hot_max_factor", strconv.FormatFloat(hotFactor, 'f', 2, 64))
			st.tune("warm_max_factor", strconv.FormatFloat(factor, 'f', 2, 64))
			s.reply(c, r, text.OK)
		}
	case string(args[0]) == "mode" && len(args) >= 2 && maintainer:
		switch string(args[1]) {
		case "flat":
			s.h.st.tune("lru_segmented", "no")
			s.reply(c, r, text.OK)
		case "segmented":
			s.h.st.tune("lru_segmented", "yes")
			s.reply(c, r, text.OK)
		default:
			s.reply(c, r, text.ErrorReply)
		}
	case string(args[0]) == "temp_ttl" && len(args) >= 2 && maintainer:
		ttl, ok := number.ParseInt32(args[1])
		switch {
		case !ok:
			s.reply(c, r, text.ErrorReply)
		case ttl < 0:
			s.h.st.tune("temp_lru", "no")
			s.reply(c, r, text.OK)
		default:
			s.h.st.tune("temp_lru", "yes")
			s.h.st.tune("temporary_ttl", strconv.FormatInt(int64(ttl), 10))
			s.reply(c, r, text.OK)
		}
	default:
		s.reply(c, r, text.ErrorReply)
	}
}

// parseDouble parses a number as memcached's safe_strtod: strtod must
// take the whole token (it is already split at spaces).
func parseDouble(b []byte) (float64, bool) {
	if len(b) == 0 || number.IsSpace(b[0]) {
		// strtod skips leading space, but a token has none.
		return 0, false
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return 0, false // memcached refuses ERANGE too
	}
	return f, true
}
