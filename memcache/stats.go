package memcache

import (
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/mnemo-cache/mnemo/cache"
	"github.com/mnemo-cache/mnemo/engine"
	"github.com/mnemo-cache/mnemo/internal/number"
	"github.com/mnemo-cache/mnemo/protocol/text"
	"github.com/mnemo-cache/mnemo/server"
)

// The stats command: memcached's general statistics, its groups (the
// engine answers items, slabs, sizes and its own), settings, conns,
// cachedump and reset. The binary protocol's STAT reuses these writers
// with its own packets.

// stats answers the stats command and its groups.
func (s *session) stats(c *server.Conn, r *text.Request) error {
	add := func(name, value string) { c.Out = text.AppendStat(c.Out, name, value) }
	group := ""
	if len(r.Args) > 0 {
		group = string(r.Args[0])
	}
	eng := s.cs.Cache().Engine()
	switch group {
	case "":
		s.generalStats(c, add)
	case "reset":
		s.h.resetStats(s.cs.Cache())
		c.Out = append(c.Out, text.Reset...)
		return nil
	case "detail":
		sub := ""
		if len(r.Args) > 1 {
			sub = string(r.Args[1])
		}
		switch sub {
		case "on":
			s.h.detail.setEnabled(true)
			c.Out = append(c.Out, text.OK...)
		case "off":
			s.h.detail.setEnabled(false)
			c.Out = append(c.Out, text.OK...)
		case "dump":
			if err := s.h.detail.snapshot().write(c); err != nil {
				return err
			}
			c.Out = append(c.Out, text.End...)
		default:
			c.Out = append(c.Out, "CLIENT_ERROR usage: stats detail on|off|dump\r\n"...)
		}
		return nil
	case "settings":
		s.h.settings(add)
	case "conns":
		if err := s.connStats(c, add); err != nil {
			return err
		}
	case "cachedump":
		if s.h.cfg.DisableDumping {
			c.Out = append(c.Out, "CLIENT_ERROR stats cachedump not allowed\r\n"...)
			return nil
		}
		s.cachedump(c, r)
		return nil
	default:
		gs, ok := eng.(engine.GroupStater)
		if !ok || !gs.GroupStats(group, add) {
			c.Out = append(c.Out, text.ErrorReply...)
			return nil
		}
	}
	c.Out = append(c.Out, text.End...)
	return nil
}

// maxSlabClasses is memcached's MAX_NUMBER_OF_SLAB_CLASSES: the class ids
// "stats cachedump" accepts.
const maxSlabClasses = 64

// cachedumpLimit bounds a cachedump reply, as memcached's 2 MB. The reply
// is built whole (the engine's iteration cannot pause for a write), so it
// is the largest reply a connection holds besides an item.
const cachedumpLimit = 2 << 20

// cachedump answers "stats cachedump <class> <limit>". The memory engine
// has one class, 1; its items are listed in no particular order, at most
// limit of them (0: as many as fit in 2 MB), one line each:
//
//	ITEM <key> [<bytes> b; <exptime> s]
//
// A key that would break the line (a binary or base64 key with control
// bytes, spaces or DEL; memcached writes those raw) is shown in base64,
// with " b" at the end of the line, the way the meta protocol's b flag
// marks a base64 key: "mg <key> b" reads it.
func (s *session) cachedump(c *server.Conn, r *text.Request) {
	if len(r.Args) < 3 {
		c.Out = append(c.Out, "CLIENT_ERROR bad command line\r\n"...)
		return
	}
	// memcached reads both with safe_strtoul.
	id, ok1 := number.ParseUint32(r.Args[1])
	limit, ok2 := number.ParseUint32(r.Args[2])
	switch {
	case !ok1 || !ok2:
		c.Out = text.ErrBadFormat.AppendReply(c.Out)
		return
	case id >= maxSlabClasses:
		c.Out = append(c.Out, "CLIENT_ERROR Illegal slab id\r\n"...)
		return
	}
	if id == 1 {
		start, n := len(c.Out), uint32(0)
		s.cs.Cache().Engine().Iterate(func(key []byte, it *engine.Item) bool {
			end := len(c.Out)
			c.Out = appendDumpLine(c.Out, key, len(it.Value), it.Exptime)
			if len(c.Out)-start > cachedumpLimit {
				c.Out = c.Out[:end]
				return false
			}
			n++
			return limit == 0 || n < limit
		})
	}
	c.Out = append(c.Out, text.End...)
}

// appendDumpLine appends one line of stats cachedump.
func appendDumpLine(dst, key []byte, size int, exptime int64) []byte {
	dst = append(dst, "ITEM "...)
	b64 := !printableKey(key)
	if b64 {
		dst = text.AppendBase64(dst, key)
	} else {
		dst = append(dst, key...)
	}
	dst = append(dst, " ["...)
	dst = strconv.AppendInt(dst, int64(size), 10)
	dst = append(dst, " b; "...)
	dst = strconv.AppendInt(dst, exptime, 10)
	dst = append(dst, " s]"...)
	if b64 {
		dst = append(dst, " b"...)
	}
	return append(dst, "\r\n"...)
}

// settings reports "stats settings": what Config.Settings adds, with the
// values that commands change at run time (maxbytes after cache_memlimit,
// detail_enabled after "stats detail on|off") replaced by the live ones,
// as memcached does.
func (h *Handler) settings(add func(name, value string)) {
	if h.cfg.Settings == nil {
		return
	}
	h.cfg.Settings(func(name, value string) {
		switch name {
		case "maxbytes":
			if n := h.maxBytes.Load(); n != 0 {
				value = strconv.FormatInt(n, 10)
			}
		case "detail_enabled":
			value = "no"
			if h.detail.on.Load() {
				value = "yes"
			}
		}
		add(name, value)
	})
}

// generalStats writes memcached's general statistics, in its order.
func (s *session) generalStats(c *server.Conn, add func(name, value string)) {
	u := func(name string, v uint64) { add(name, strconv.FormatUint(v, 10)) }
	now := time.Now()
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	tv := func(t syscall.Timeval) string { return fmt.Sprintf("%d.%06d", t.Sec, t.Usec) }
	var st server.Stats
	if srv := c.Server(); srv != nil {
		st = srv.Stats()
	}
	add("pid", strconv.Itoa(s.h.pid))
	u("uptime", uint64(now.Sub(s.h.started)/time.Second))
	u("time", uint64(s.cs.Cache().Now()))
	add("version", Version)
	add("pointer_size", "64")
	add("rusage_user", tv(ru.Utime))
	add("rusage_system", tv(ru.Stime))
	u("max_connections", uint64(st.MaxConns))
	u("curr_connections", uint64(st.CurrConns))
	u("total_connections", st.TotalConns)
	u("rejected_connections", st.RejectedConns)
	u("connection_structures", uint64(st.CurrConns))
	// Connection memory, under memcached's names: its response objects
	// are mnemo's reply buffers, its read buffers mnemo's (pooled or grown
	// for an unfinished request). Mnemo's free buffers sit in a sync.Pool
	// that the garbage collector empties, and replies are never refused
	// for memory: read_buf_bytes_free and response_obj_oom are 0.
	u("response_obj_oom", 0)
	u("response_obj_count", st.ReplyBufCount)
	u("response_obj_bytes", st.ReplyBufBytes)
	u("read_buf_count", st.ReadBufCount)
	u("read_buf_bytes", st.ReadBufBytes)
	u("read_buf_bytes_free", 0)
	u("read_buf_oom", st.ReadBufOOM)
	var totalItems uint64
	s.cs.Cache().Stats(func(name string, v uint64) {
		if name == "total_items" {
			totalItems = v
			return
		}
		u(name, v)
	})
	if st.IdleTimeout > 0 {
		// memcached prints it only with -o idle_timeout.
		u("idle_kicks", st.IdleKicks)
	}
	u("bytes_read", st.BytesRead)
	u("bytes_written", st.BytesWritten)
	engStats := map[string]string{}
	var engOrder []string
	s.cs.Cache().Engine().Stats(func(name, value string) {
		if _, dup := engStats[name]; !dup {
			engOrder = append(engOrder, name)
		}
		engStats[name] = value
	})
	printed := map[string]bool{"total_items": true}
	emit := func(name string) {
		if v, ok := engStats[name]; ok && !printed[name] {
			add(name, v)
			printed[name] = true
		}
	}
	emit("limit_maxbytes")
	accepting := "1"
	if c.Server() != nil && !st.Accepting {
		accepting = "0" // out of file descriptors
	}
	add("accepting_conns", accepting)
	u("listen_disabled_num", st.AcceptPauses)
	u("time_in_listen_disabled_us", uint64(st.AcceptPausedTime/time.Microsecond))
	u("threads", uint64(max(s.h.cfg.Threads, 1)))
	s.h.tlsStats(st, add)
	// The item figures, in memcached's order, then the engine's own.
	emit("bytes")
	emit("curr_items")
	u("total_items", totalItems)
	for _, name := range engineStatsOrder {
		emit(name)
	}
	for _, name := range engOrder {
		emit(name)
	}
}

// engineStatsOrder is the order in which memcached prints the item
// statistics that follow total_items.
var engineStatsOrder = []string{
	"expired_unfetched", "evicted_unfetched", "evicted_active", "evictions", "reclaimed",
}

// connStats writes "stats conns": one group of lines per connection,
// written out as they pass flushThreshold.
func (s *session) connStats(c *server.Conn, add func(name, value string)) error {
	var werr error
	c.Server().EachConn(func(ci server.ConnInfo) {
		if werr == nil {
			werr = flushIfFull(c)
		}
		id := strconv.FormatUint(ci.ID, 10)
		if ci.Listening {
			add(id+":addr", addrString(ci.LocalAddr))
		} else {
			add(id+":addr", addrString(ci.RemoteAddr))
			add(id+":listen_addr", addrString(ci.ListenAddr))
		}
		add(id+":state", connStateName(ci.State))
		add(id+":secs_since_last_cmd", strconv.FormatInt(int64(ci.SinceLastRequest/time.Second), 10))
	})
	return werr
}

// addrString formats a connection address the way memcached's
// "stats conns" does: "tcp:host:port" or "unix:path".
func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	switch a.Network() {
	case "unix":
		return "unix:" + a.String()
	default:
		return "tcp:" + a.String()
	}
}

// resetStats answers "stats reset" (and the binary STAT "reset"): the
// command counters, the engine's counters and the per-prefix counters.
func (h *Handler) resetStats(c *cache.Cache) {
	c.ResetStats()
	if rs, ok := c.Engine().(engine.StatsResetter); ok {
		rs.ResetStats()
	}
	h.detail.reset()
}
