package memcache

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

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
			s.replyString(c, r, "CLIENT_ERROR flush_all not allowed")
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
		s.stats(c, r)
	case text.CmdMisc:
		c.Out = append(c.Out, text.ErrorReply...)
	default:
		c.Out = append(c.Out, text.ErrorReply...)
	}
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
		s.replyString(c, r, "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m")
	case mb > 1000000000:
		s.replyString(c, r, "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes")
	default:
		ml, can := s.cs.Cache().Engine().(engine.MemoryLimiter)
		if !can || ml.SetMemoryLimit(int64(mb)<<20) != nil {
			s.replyString(c, r, "MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust")
			return
		}
		s.reply(c, r, text.OK)
	}
}

// stats answers the stats command and its groups.
func (s *session) stats(c *server.Conn, r *text.Request) {
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
		s.cs.Cache().ResetStats()
		if rs, ok := eng.(engine.StatsResetter); ok {
			rs.ResetStats()
		}
		c.Out = append(c.Out, "RESET\r\n"...)
		return
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
			c.Out = s.h.detail.dump(c.Out)
			c.Out = append(c.Out, text.End...)
		default:
			c.Out = append(c.Out, "CLIENT_ERROR usage: stats detail on|off|dump\r\n"...)
		}
		return
	case "settings":
		if s.h.cfg.Settings != nil {
			s.h.cfg.Settings(add)
		}
	case "conns":
		s.connStats(c, add)
	case "cachedump":
		if s.h.cfg.DisableDumping {
			c.Out = append(c.Out, "CLIENT_ERROR stats cachedump not allowed\r\n"...)
			return
		}
		s.cachedump(c, r)
		return
	default:
		gs, ok := eng.(engine.GroupStater)
		if !ok || !gs.GroupStats(group, add) {
			c.Out = append(c.Out, text.ErrorReply...)
			return
		}
	}
	c.Out = append(c.Out, text.End...)
}

// maxSlabClasses is memcached's MAX_NUMBER_OF_SLAB_CLASSES: the class ids
// "stats cachedump" accepts.
const maxSlabClasses = 64

// cachedumpLimit bounds a cachedump reply, as memcached's 2 MB.
const cachedumpLimit = 2 << 20

// cachedump answers "stats cachedump <class> <limit>". The memory engine
// has one class, 1; its items are listed in no particular order, at most
// limit of them (0: as many as fit in 2 MB).
func (s *session) cachedump(c *server.Conn, r *text.Request) {
	if len(r.Args) < 3 {
		c.Out = append(c.Out, "CLIENT_ERROR bad command line\r\n"...)
		return
	}
	id, ok1 := parseUint32(r.Args[1])
	limit, ok2 := parseUint32(r.Args[2])
	switch {
	case !ok1 || !ok2:
		c.Out = append(c.Out, "CLIENT_ERROR bad command line format\r\n"...)
		return
	case id >= maxSlabClasses:
		c.Out = append(c.Out, "CLIENT_ERROR Illegal slab id\r\n"...)
		return
	}
	if id == 1 {
		start, n := len(c.Out), uint32(0)
		s.cs.Cache().Engine().Iterate(func(key []byte, it *engine.Item) bool {
			line := fmt.Appendf(nil, "ITEM %s [%d b; %d s]\r\n", key, len(it.Value), it.Exptime)
			if len(c.Out)-start+len(line) > cachedumpLimit {
				return false
			}
			c.Out = append(c.Out, line...)
			n++
			return limit == 0 || n < limit
		})
	}
	c.Out = append(c.Out, text.End...)
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
	var totalItems uint64
	s.cs.Cache().Stats(func(name string, v uint64) {
		if name == "total_items" {
			totalItems = v
			return
		}
		u(name, v)
	})
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
	add("accepting_conns", "1")
	u("threads", uint64(max(s.h.cfg.Threads, 1)))
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

// connStats writes "stats conns": one group of lines per connection.
func (s *session) connStats(c *server.Conn, add func(name, value string)) {
	c.Server().EachConn(func(ci server.ConnInfo) {
		id := strconv.FormatUint(ci.ID, 10)
		if ci.Listening {
			add(id+":addr", addrString(ci.LocalAddr))
		} else {
			add(id+":addr", addrString(ci.RemoteAddr))
			add(id+":listen_addr", addrString(ci.ListenAddr))
		}
		add(id+":state", ci.State)
		add(id+":secs_since_last_cmd", strconv.FormatInt(ci.SecsSinceLastCmd, 10))
	})
}

// detailStats are memcached's per-prefix counters ("stats detail").
type detailStats struct {
	delim   byte
	mu      sync.Mutex
	enabled bool
	on      atomic.Bool
	prefix  map[string]*prefixCounts
}

type prefixCounts struct{ get, hit, set, del uint64 }

func (d *detailStats) setEnabled(on bool) {
	d.mu.Lock()
	d.enabled = on
	d.on.Store(on)
	d.mu.Unlock()
}

func (d *detailStats) record(key []byte, f func(*prefixCounts)) {
	if !d.on.Load() {
		return
	}
	i := bytes.IndexByte(key, d.delim)
	if i < 0 {
		return
	}
	d.mu.Lock()
	if d.prefix == nil {
		d.prefix = map[string]*prefixCounts{}
	}
	p := d.prefix[string(key[:i])]
	if p == nil {
		p = &prefixCounts{}
		d.prefix[string(key[:i])] = p
	}
	f(p)
	d.mu.Unlock()
}

func (d *detailStats) recordGet(key []byte, hit bool) {
	d.record(key, func(p *prefixCounts) {
		p.get++
		if hit {
			p.hit++
		}
	})
}

func (d *detailStats) recordSet(key []byte)    { d.record(key, func(p *prefixCounts) { p.set++ }) }
func (d *detailStats) recordDelete(key []byte) { d.record(key, func(p *prefixCounts) { p.del++ }) }

func (d *detailStats) dump(dst []byte) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	names := make([]string, 0, len(d.prefix))
	for n := range d.prefix {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := d.prefix[n]
		dst = fmt.Appendf(dst, "PREFIX %s get %d hit %d set %d del %d\r\n", n, p.get, p.hit, p.set, p.del)
	}
	return dst
}
