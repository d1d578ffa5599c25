package memcache

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	case "sizes", "sizes_enable", "sizes_disable":
		return s.statsSizes(c, group)
	case "extstore":
		// memcached without an external store: nothing but END.
	case "slabs", "items":
		gs, ok := eng.(engine.GroupStater)
		if !ok || !gs.GroupStats(group, s.classCounters(add)) {
			c.Out = append(c.Out, text.ErrorReply...)
			return nil
		}
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

// slabCounters are the per-class command counters of "stats slabs", with
// the cache counter each one is (memcached's slab_stats: its general
// get_hits, cmd_set, ... are their sums over the classes).
var slabCounters = [][2]string{
	{"get_hits", "get_hits"}, {"cmd_set", "cmd_set"}, {"delete_hits", "delete_hits"},
	{"incr_hits", "incr_hits"}, {"decr_hits", "decr_hits"}, {"cas_hits", "cas_hits"},
	{"cas_badval", "cas_badval"}, {"touch_hits", "touch_hits"},
}

// lruHits are the per-class hit counters of "stats items" (memcached's
// lru_hits, whose sum is get_hits): mnemo's one queue is memcached's COLD
// LRU, where memcached keeps every item when its LRU is not segmented.
var lruHits = [][2]string{
	{"hits_to_hot", ""}, {"hits_to_warm", ""}, {"hits_to_cold", "get_hits"}, {"hits_to_temp", ""},
}

// classCounters wraps add for an engine's "stats slabs" or "stats items":
// after each class's N:free_chunks_end and items:N:direct_reclaims it
// adds the class's command counters, counted by the cache where the
// commands run. The engines show one class, which has them all (see
// engine.GroupStater).
func (s *session) classCounters(add func(name, value string)) func(name, value string) {
	var counts map[string]uint64
	load := func() {
		if counts == nil {
			counts = map[string]uint64{}
			s.cs.Cache().Stats(func(name string, v uint64) { counts[name] = v })
		}
	}
	emit := func(prefix string, list [][2]string) {
		load()
		for _, c := range list {
			var v uint64
			if c[1] != "" {
				v = counts[c[1]]
			}
			add(prefix+c[0], strconv.FormatUint(v, 10))
		}
	}
	return func(name, value string) {
		add(name, value)
		if p, ok := strings.CutSuffix(name, ":free_chunks_end"); ok {
			emit(p+":", slabCounters)
		} else if p, ok := strings.CutSuffix(name, ":direct_reclaims"); ok && strings.HasPrefix(p, "items:") {
			emit(p+":", lruHits)
		}
	}
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
		default:
			if v, ok := h.st.tunedValue(name); ok {
				value = v
			}
		}
		add(name, value)
	})
}

// statsState is what the stats and admin commands keep besides the
// counters of the cache and the engine.
type statsState struct {
	// mu guards base: the server's counters at the last "stats reset",
	// which the general stats subtract (package server's counters only
	// grow).
	mu   sync.Mutex
	base server.Stats

	// tuned are the settings that "slabs automove" and "lru" set, by
	// their "stats settings" names; they replace Config.Settings' values.
	tunedMu sync.Mutex
	tuned   map[string]string
}

// tune records a setting a command changed.
func (st *statsState) tune(name, value string) {
	st.tunedMu.Lock()
	if st.tuned == nil {
		st.tuned = map[string]string{}
	}
	st.tuned[name] = value
	st.tunedMu.Unlock()
}

// tunedValue returns the value a command set for name, if any.
func (st *statsState) tunedValue(name string) (string, bool) {
	st.tunedMu.Lock()
	defer st.tunedMu.Unlock()
	v, ok := st.tuned[name]
	return v, ok
}

// serverStats returns the server's statistics with its counters taken
// from the last "stats reset".
func (h *Handler) serverStats(c *server.Conn) server.Stats {
	var st server.Stats
	if srv := c.Server(); srv != nil {
		st = srv.Stats()
	}
	h.st.mu.Lock()
	b := h.st.base
	h.st.mu.Unlock()
	sub := func(v, base uint64) uint64 {
		if v < base {
			return 0
		}
		return v - base
	}
	st.TotalConns = sub(st.TotalConns, b.TotalConns)
	st.RejectedConns = sub(st.RejectedConns, b.RejectedConns)
	st.BytesRead = sub(st.BytesRead, b.BytesRead)
	st.BytesWritten = sub(st.BytesWritten, b.BytesWritten)
	st.ReadBufOOM = sub(st.ReadBufOOM, b.ReadBufOOM)
	st.AcceptPauses = sub(st.AcceptPauses, b.AcceptPauses)
	st.AcceptPausedTime = max(st.AcceptPausedTime-b.AcceptPausedTime, 0)
	st.IdleKicks = sub(st.IdleKicks, b.IdleKicks)
	return st
}

// generalOrder is the order of memcached 1.6.18's general statistics
// (idle_kicks only with -o idle_timeout). Mnemo prints every one of them
// (see generalStats for the meaning of each in mnemo's model), then the
// engine's own.
var generalOrder = []string{
	"pid", "uptime", "time", "version", "libevent", "pointer_size", "rusage_user", "rusage_system",
	"max_connections", "curr_connections", "total_connections", "rejected_connections",
	"connection_structures", "response_obj_oom", "response_obj_count", "response_obj_bytes",
	"read_buf_count", "read_buf_bytes", "read_buf_bytes_free", "read_buf_oom", "reserved_fds",
	"cmd_get", "cmd_set", "cmd_flush", "cmd_touch", "cmd_meta", "get_hits", "get_misses",
	"get_expired", "get_flushed", "delete_misses", "delete_hits", "incr_misses", "incr_hits",
	"decr_misses", "decr_hits", "cas_misses", "cas_hits", "cas_badval", "touch_hits",
	"touch_misses", "store_too_large", "store_no_memory", "auth_cmds", "auth_errors",
	"idle_kicks", "bytes_read", "bytes_written", "limit_maxbytes", "accepting_conns",
	"listen_disabled_num", "time_in_listen_disabled_us", "threads", "conn_yields",
	"hash_power_level", "hash_bytes", "hash_is_expanding", "slab_reassign_rescues",
	"slab_reassign_chunk_rescues", "slab_reassign_evictions_nomem", "slab_reassign_inline_reclaim",
	"slab_reassign_busy_items", "slab_reassign_busy_deletes", "slab_reassign_running",
	"slabs_moved", "lru_crawler_running", "lru_crawler_starts", "lru_maintainer_juggles",
	"malloc_fails", "log_worker_dropped", "log_worker_written", "log_watcher_skipped",
	"log_watcher_sent", "log_watchers",
	"ssl_new_sessions", "ssl_handshake_errors", "time_since_server_cert_refresh", // with -Z only
	"unexpected_napi_ids", "round_robin_fallback",
	"bytes", "curr_items", "total_items", "slab_global_page_pool", "expired_unfetched",
	"evicted_unfetched", "evicted_active", "evictions", "reclaimed", "crawler_reclaimed",
	"crawler_items_checked", "lrutail_reflocked", "moves_to_cold", "moves_to_warm",
	"moves_within_lru", "direct_reclaims", "lru_bumps_dropped",
}

// zeroStats are general statistics that are 0 in mnemo's model unless the
// engine reports them: mnemo has no slab mover (slab_reassign_*,
// slabs_moved; "slabs reassign" moves nothing), no NAPI ids, no LRU bump
// queue to drop from (lru_bumps_dropped), and memory it cannot allocate
// stops the Go runtime rather than failing a malloc (malloc_fails); the
// engine's figures (hash_*, lru_crawler_*, crawler_*, moves_*, ...) are 0
// for an engine that does not report them.
var zeroStats = []string{
	"conn_yields", "hash_power_level", "hash_bytes", "hash_is_expanding",
	"slab_reassign_rescues", "slab_reassign_chunk_rescues", "slab_reassign_evictions_nomem",
	"slab_reassign_inline_reclaim", "slab_reassign_busy_items", "slab_reassign_busy_deletes",
	"slab_reassign_running", "slabs_moved", "lru_crawler_running", "lru_crawler_starts",
	"lru_maintainer_juggles", "malloc_fails", "unexpected_napi_ids", "round_robin_fallback",
	"slab_global_page_pool", "get_expired", "get_flushed", "expired_unfetched",
	"evicted_unfetched", "evicted_active", "evictions", "reclaimed", "crawler_reclaimed",
	"crawler_items_checked", "lrutail_reflocked", "moves_to_cold", "moves_to_warm",
	"moves_within_lru", "direct_reclaims", "lru_bumps_dropped",
}

// generalStats writes memcached's general statistics, in its order, then
// the engine's own. Where a figure means something else in mnemo's model
// the README's stats section says so: libevent is the Go runtime's
// version (mnemo's event loop is the Go runtime's poller); reserved_fds
// the descriptors open for anything but client connections (mnemo
// reserves none: listeners, engine files, the poller); connection
// structures are the client connections; conn_yields is 0 (a connection
// is served until its pipelined requests are done: -R only shows in
// stats settings).
func (s *session) generalStats(c *server.Conn, add func(name, value string)) {
	v := make(map[string]string, len(generalOrder)+16)
	u := func(name string, n uint64) { v[name] = strconv.FormatUint(n, 10) }
	for _, name := range zeroStats {
		v[name] = "0"
	}
	// The engine's figures first: the cache's and the server's replace
	// them (total_items counts the items commands stored).
	var engOrder []string
	s.cs.Cache().Engine().Stats(func(name, value string) {
		if !slices.Contains(generalOrder, name) && !slices.Contains(engOrder, name) {
			engOrder = append(engOrder, name)
		}
		v[name] = value
	})
	now := time.Now()
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	tv := func(t syscall.Timeval) string { return fmt.Sprintf("%d.%06d", t.Sec, t.Usec) }
	st := s.h.serverStats(c)
	v["pid"] = strconv.Itoa(s.h.pid)
	u("uptime", uint64(now.Sub(s.h.started)/time.Second))
	u("time", uint64(s.cs.Cache().Now()))
	v["version"] = Version
	v["libevent"] = runtime.Version()
	v["pointer_size"] = strconv.Itoa(strconv.IntSize)
	v["rusage_user"] = tv(ru.Utime)
	v["rusage_system"] = tv(ru.Stime)
	u("max_connections", uint64(st.MaxConns))
	u("curr_connections", st.CurrConns)
	u("total_connections", st.TotalConns)
	u("rejected_connections", st.RejectedConns)
	u("connection_structures", st.CurrConns)
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
	u("reserved_fds", reservedFDs(st.CurrConns))
	s.cs.Cache().Stats(func(name string, n uint64) { u(name, n) })
	if st.IdleTimeout > 0 {
		// memcached prints it only with -o idle_timeout.
		u("idle_kicks", st.IdleKicks)
	}
	u("bytes_read", st.BytesRead)
	u("bytes_written", st.BytesWritten)
	v["accepting_conns"] = "1"
	if c.Server() != nil && !st.Accepting {
		v["accepting_conns"] = "0" // out of file descriptors
	}
	u("listen_disabled_num", st.AcceptPauses)
	u("time_in_listen_disabled_us", uint64(st.AcceptPausedTime/time.Microsecond))
	u("threads", uint64(max(s.h.cfg.Threads, 1)))
	watchers, sent, skipped := s.h.LogStats()
	u("log_worker_dropped", 0)
	u("log_worker_written", s.h.logs.written.Load())
	u("log_watcher_skipped", skipped)
	u("log_watcher_sent", sent)
	u("log_watchers", uint64(watchers))
	s.h.tlsStats(st, func(name, value string) { v[name] = value })
	for _, name := range generalOrder {
		if value, ok := v[name]; ok {
			add(name, value)
		}
	}
	for _, name := range engOrder {
		add(name, v[name])
	}
}

// boundServer returns the server the handler serves (nil before the
// first connection).
func (h *Handler) boundServer() *server.Server {
	h.srvMu.Lock()
	defer h.srvMu.Unlock()
	return h.srv
}

// reservedFDs returns the descriptors the process has open for anything
// but its conns client connections, counted in /proc/self/fd with a
// fixed buffer (a server may hold many thousands).
func reservedFDs(conns uint64) uint64 {
	f, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0
	}
	defer f.Close()
	var buf [8 << 10]byte
	n := uint64(0)
	for {
		got, err := syscall.ReadDirent(int(f.Fd()), buf[:])
		if err != nil || got <= 0 {
			break
		}
		// linux_dirent64: ino (8), off (8), reclen (2), type (1), name.
		for b := buf[:got]; len(b) >= 19; {
			reclen := int(binary.NativeEndian.Uint16(b[16:18]))
			if reclen < 19 || reclen > len(b) {
				break
			}
			if name := b[19:reclen]; name[0] != '.' {
				n++
			}
			b = b[reclen:]
		}
	}
	n-- // the descriptor reading the directory
	if n < conns || n > 1<<31 {
		return 0
	}
	return n - conns
}

// connStats writes "stats conns": one group of lines per connection,
// written out as they pass flushThreshold; TLS listeners and connections
// have a line "<id>:tls yes" more than memcached writes.
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
		if ci.TLS {
			// mnemo's line: memcached's stats conns does not tell TLS
			// connections and listeners from plaintext ones.
			add(id+":tls", "yes")
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
// command counters, the engine's counters, the per-prefix counters, and
// the server's counters that memcached resets (total_connections,
// rejected_connections, bytes_read, bytes_written, read_buf_oom,
// listen_disabled_num, time_in_listen_disabled_us, idle_kicks; not the
// gauges) and the log counters.
func (h *Handler) resetStats(c *cache.Cache) {
	if srv := h.boundServer(); srv != nil {
		st := srv.Stats()
		h.st.mu.Lock()
		h.st.base = st
		h.st.mu.Unlock()
	}
	for _, n := range []*atomic.Uint64{&h.logs.written, &h.logs.sent, &h.logs.skipped} {
		n.Store(0)
	}
	c.ResetStats()
	if rs, ok := c.Engine().(engine.StatsResetter); ok {
		rs.ResetStats()
	}
	h.detail.reset()
}
