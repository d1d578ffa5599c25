package memcache

import (
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mnemo-cache/mnemo/cache"
	"github.com/mnemo-cache/mnemo/engine"
	"github.com/mnemo-cache/mnemo/protocol/binary"
	"github.com/mnemo-cache/mnemo/protocol/text"
	"github.com/mnemo-cache/mnemo/server"
)

// Log streams (memcached 1.6.18's LOG_* bits in logger.h). A watcher
// asks for some; an event is formatted only when some watcher wants its
// stream.
const (
	logSysevents   = 1 << 1
	logFetchers    = 1 << 2
	logMutations   = 1 << 3
	logConnevents  = 1 << 5
	logEvictions   = 1 << 6
	logRawcmds     = 1 << 9
	logProxyreqs   = 1 << 10
	logProxyevents = 1 << 11
	logProxyuser   = 1 << 12
)

// watchStream returns the stream bit of a name "watch" accepts, as
// memcached 1.6.18's process_watch_command does (it accepts the proxy
// streams' names even when built without the proxy), or 0.
func watchStream(name []byte) uint32 {
	switch string(name) {
	case "rawcmds":
		return logRawcmds
	case "evictions":
		return logEvictions
	case "fetchers":
		return logFetchers
	case "mutations":
		return logMutations
	case "sysevents":
		return logSysevents
	case "connevents":
		return logConnevents
	case "proxyreqs":
		return logProxyreqs
	case "proxyevents":
		return logProxyevents
	case "proxyuser":
		return logProxyuser
	}
	return 0
}

// watcherLimit is memcached's WATCHER_LIMIT.
const watcherLimit = 20

// skipRoom is what memcached keeps free in a watcher's buffer beyond a
// line, for a "skipped=N" line before it.
const skipRoom = 128

// defaultWatcherBuf is memcached's LOGGER_WATCHER_BUF_SIZE (256 KiB).
const defaultWatcherBuf = 256 << 10

// logHub holds the watchers and hands each event to those that want it.
// The request path checks flags, one atomic load, before it formats
// anything: with no watcher, that load is the whole cost of logging.
type logHub struct {
	flags atomic.Uint32 // union of the watchers' streams
	gid   atomic.Uint64 // memcached's logger gid: one per logged event

	bufSize int // bytes a watcher may hold unsent (-o watcher_logbuf_size)

	mu       sync.Mutex
	watchers []*watcher

	// written counts the lines made (memcached's log_worker_written;
	// mnemo has no per-thread log buffer to drop them from, so its
	// log_worker_dropped stays 0); sent and skipped the lines given to
	// and dropped for watchers.
	written, sent, skipped atomic.Uint64
}

// watcher is one "watch" connection's bounded buffer of unsent lines.
type watcher struct {
	streams uint32
	ready   chan struct{} // one token: lines are waiting

	mu      sync.Mutex
	buf     []byte
	skipped uint64
}

// on reports whether some watcher wants stream.
func (l *logHub) on(stream uint32) bool { return l.flags.Load()&stream != 0 }

// add registers a watcher of streams, with memcached's "OK\r\n" first in
// its buffer; nil when there are watcherLimit watchers already.
func (l *logHub) add(streams uint32) *watcher {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.watchers) >= watcherLimit {
		return nil
	}
	w := &watcher{streams: streams, ready: make(chan struct{}, 1)}
	w.buf = append(make([]byte, 0, 4096), "OK\r\n"...)
	w.ready <- struct{}{}
	l.watchers = append(l.watchers, w)
	l.setFlagsLocked()
	return w
}

// remove unregisters w.
func (l *logHub) remove(w *watcher) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, x := range l.watchers {
		if x == w {
			l.watchers = append(l.watchers[:i], l.watchers[i+1:]...)
			break
		}
	}
	l.setFlagsLocked()
}

func (l *logHub) setFlagsLocked() {
	var f uint32
	for _, w := range l.watchers {
		f |= w.streams
	}
	l.flags.Store(f)
}

// lineMax bounds one formatted line (memcached's LOGGER_PARSE_SCRATCH).
const lineMax = 4096

// begin starts a line with memcached's "ts=SEC.USEC gid=N " prefix (the
// microseconds not zero-padded, as memcached prints them).
func (l *logHub) begin(b []byte) []byte {
	now := time.Now()
	b = append(b, "ts="...)
	b = strconv.AppendInt(b, now.Unix(), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(now.Nanosecond()/1000), 10)
	b = append(b, " gid="...)
	b = strconv.AppendUint(b, l.gid.Add(1), 10)
	return append(b, ' ')
}

// LogStats returns memcached's log figures for "stats": the watchers
// connected (log_watchers), the lines given to watchers (log_watcher_sent)
// and the lines dropped because a watcher's buffer was full
// (log_watcher_skipped).
func (h *Handler) LogStats() (watchers int, sent, skipped uint64) {
	h.logs.mu.Lock()
	watchers = len(h.logs.watchers)
	h.logs.mu.Unlock()
	return watchers, h.logs.sent.Load(), h.logs.skipped.Load()
}

// publish gives a finished line (ending in "\n") to every watcher of
// stream. A watcher whose buffer has no room loses the line and counts
// it; its next line that fits is preceded by "skipped=N\n", as memcached
// writes it. publish never waits for a watcher's client.
func (l *logHub) publish(stream uint32, line []byte) {
	if len(line) >= lineMax {
		return // memcached drops a line it cannot flatten
	}
	l.written.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range l.watchers {
		if w.streams&stream == 0 {
			continue
		}
		w.mu.Lock()
		if len(w.buf)+len(line)+skipRoom > l.bufSize {
			w.skipped++
			w.mu.Unlock()
			l.skipped.Add(1)
			continue
		}
		if w.skipped > 0 {
			w.buf = append(w.buf, "skipped="...)
			w.buf = strconv.AppendUint(w.buf, w.skipped, 10)
			w.buf = append(w.buf, '\n')
			w.skipped = 0
		}
		w.buf = append(w.buf, line...)
		w.mu.Unlock()
		l.sent.Add(1)
		select {
		case w.ready <- struct{}{}:
		default:
		}
	}
}

// appendURIKey appends key as memcached's uriencode writes it: every byte
// but ASCII letters, digits and "-._~" as %XX.
func appendURIKey(b, key []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, c := range key {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hex[c>>4], hex[c&15])
	}
	return b
}

// itemClass is the slab class memcached would store an item in: its
// header, key, value and the optional flags and CAS words.
func (h *Handler) itemClass(klen, vlen int, flags uint32) int {
	size := itemHeaderSize + klen + 1 + vlen + 2
	if flags != 0 {
		size += 4
	}
	if !h.cfg.Cache.Options().DisableCAS {
		size += 8
	}
	return slabClass(size)
}

// getStatus names memcached's item_get outcomes that mnemo tells apart
// (its engines hide expired and flushed items as missing).
var getStatus = [...]string{0: "not_found", 1: "found"}

// logGet writes memcached's item_get line: the lookup of key by
// connection id, found with a value of vlen bytes and client flags.
func (h *Handler) logGet(id uint64, key []byte, found bool, vlen int, flags uint32) {
	var arr [512]byte
	b := h.logs.begin(arr[:0])
	b = append(b, "type=item_get key="...)
	b = appendURIKey(b, key)
	b = append(b, " status="...)
	cls, st := 0, 0
	if found {
		st = 1
	}
	b = append(b, getStatus[st]...)
	b = append(b, " clsid="...)
	if found {
		cls = h.itemClass(len(key), vlen, flags)
	} else {
		vlen = 0
	}
	b = strconv.AppendInt(b, int64(cls), 10)
	b = append(b, " cfd="...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, " size="...)
	b = strconv.AppendInt(b, int64(vlen), 10)
	b = append(b, '\n')
	h.logs.publish(logFetchers, b)
}

// storeCmd and storeStatus are memcached's words in item_store lines.
var (
	storeCmd = [...]string{
		text.CmdSet: "set", text.CmdAdd: "add", text.CmdReplace: "replace",
		text.CmdAppend: "append", text.CmdPrepend: "prepend", text.CmdCas: "cas",
	}
	storeStatus = [...]string{
		cache.Stored: "stored", cache.NotStored: "not_stored",
		cache.Exists: "exists", cache.NotFound: "not_found",
	}
)

// peekLogged writes the item_get line memcached writes when a command
// other than a retrieval looks key up (a store, delete, incr, touch, a
// meta command), from a lookup that neither touches the item nor counts
// as a get. It is called only while someone watches fetchers or
// mutations, and returns whether the item was there, its value length
// and flags.
func (s *session) peekLogged(c *server.Conn, key []byte) (found bool, vlen int, flags uint32) {
	return s.h.peekLogged(c.ID(), s.cs, key, &s.peek)
}

// peekLogged is session.peekLogged for any protocol: buf holds the
// session's buffer for the value.
func (h *Handler) peekLogged(id uint64, cs *cache.Session, key []byte, buf *[]byte) (found bool, vlen int, flags uint32) {
	m, v, ok, err := cs.Cache().Engine().Get(key, (*buf)[:0], 0)
	if err != nil {
		ok = false
	}
	if cap(v) <= 64<<10 {
		*buf = v[:0] // keep a small buffer for the next lookup
	}
	if ok {
		vlen, flags = len(v), m.Flags
	}
	if h.logs.on(logFetchers) {
		h.logGet(id, key, ok, vlen, flags)
	}
	return ok, vlen, flags
}

// storeWatched is the storage commands' path while someone watches
// fetchers or mutations: it writes memcached's item_get line for the
// lookup of the old item, then the item_store line.
func (s *session) storeWatched(c *server.Conn, r *text.Request) {
	found, oldLen, _ := s.peekLogged(c, r.Key)
	s.h.detail.recordSet(r.Key)
	st, meta, err := s.cs.Store(storeModes[r.Cmd], r.Key, r.Flags, r.Exptime, r.Data, r.CAS)
	if s.h.logs.on(logMutations) {
		status, vlen, ttl, flags := "no_memory", len(r.Data), s.h.ttlOf(r.Exptime), r.Flags
		switch {
		case err != nil && errors.Is(err, engine.ErrTooLarge):
			status = "too_large"
		case err == nil && int(st) < len(storeStatus) && storeStatus[st] != "":
			status = storeStatus[st]
		}
		if st == cache.Stored {
			// The stored item's own: an append keeps the old exptime and
			// flags.
			ttl, flags = s.h.ttlLeft(meta.Exptime), meta.Flags
			if found && (r.Cmd == text.CmdAppend || r.Cmd == text.CmdPrepend) {
				vlen += oldLen
			}
		}
		s.h.logStore(c.ID(), r.Key, status, storeCmd[r.Cmd], ttl, vlen, flags)
	}
	if err != nil {
		s.replyErr(c, r, err, text.OutOfMemoryStoring)
		return
	}
	s.reply(c, r, statusReplies[st])
}

// logStore writes memcached's item_store line. status is memcached's
// word (stored, not_stored, exists, not_found, too_large, no_memory);
// ttl the seconds left (0: none); vlen the stored value's length.
func (h *Handler) logStore(id uint64, key []byte, status, cmd string, ttl uint32, vlen int, flags uint32) {
	var arr [512]byte
	b := h.logs.begin(arr[:0])
	b = append(b, "type=item_store key="...)
	b = appendURIKey(b, key)
	b = append(b, " status="...)
	b = append(b, status...)
	b = append(b, " cmd="...)
	b = append(b, cmd...)
	b = append(b, " ttl="...)
	b = strconv.AppendUint(b, uint64(ttl), 10)
	b = append(b, " clsid="...)
	b = strconv.AppendInt(b, int64(h.itemClass(len(key), vlen, flags)), 10)
	b = append(b, " cfd="...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, " size="...)
	b = strconv.AppendInt(b, int64(vlen), 10)
	b = append(b, '\n')
	h.logs.publish(logMutations, b)
}

// storeModeCmd names a cache.StoreMode as memcached's item_store lines.
var storeModeCmd = [...]string{
	cache.ModeSet: "set", cache.ModeAdd: "add", cache.ModeReplace: "replace",
	cache.ModeAppend: "append", cache.ModePrepend: "prepend", cache.ModeCAS: "cas",
}

// logMetaSet writes the item_store line of an ms (memcached logs an ms
// with a C flag as cmd=cas).
func (s *session) logMetaSet(c *server.Conn, r *text.Request, o cache.MetaSetOpts, st cache.Status, meta engine.Meta, size int, err error) {
	cmd := "set"
	if o.HasCAS {
		cmd = "cas"
	} else if int(o.Mode) < len(storeModeCmd) {
		cmd = storeModeCmd[o.Mode]
	}
	status, vlen, ttl, flags := "no_memory", len(r.Data), s.h.ttlOf(o.Exptime), o.Flags
	switch {
	case err != nil && errors.Is(err, engine.ErrTooLarge):
		status = "too_large"
	case err == nil && int(st) < len(storeStatus) && storeStatus[st] != "":
		status = storeStatus[st]
		if st == cache.Stored {
			vlen, ttl, flags = size, s.h.ttlLeft(meta.Exptime), meta.Flags
		}
	}
	s.h.logStore(c.ID(), r.Key, status, cmd, ttl, vlen, flags)
}

// ttlOf is the ttl memcached prints for a client's exptime: the seconds
// left, 0 for none, wrapping as memcached's %u does for an item already
// expired.
func (h *Handler) ttlOf(exptime int64) uint32 {
	if exptime == 0 {
		return 0
	}
	if exptime > 0 && exptime <= 60*60*24*30 {
		return uint32(exptime)
	}
	now := h.cfg.Cache.Now()
	if exptime < 0 {
		return uint32(1 - now) // memcached: realtime() gives 1 (long past)
	}
	return uint32(exptime - now)
}

// logBinaryStore writes the item_store line of a binary store (a
// request with a CAS is cmd=cas, as in memcached).
func (s *binSession) logBinaryStore(c *server.Conn, r *binary.Request, mode cache.StoreMode, casv uint64, found bool, oldLen int,
	st cache.Status, meta engine.Meta, err error) {
	cmd := storeModeCmd[mode]
	if casv != 0 {
		cmd = "cas"
	}
	status, vlen, ttl, flags := "no_memory", len(r.Value), s.h.ttlOf(int64(r.Exptime)), r.Flags
	switch {
	case err != nil && errors.Is(err, engine.ErrTooLarge):
		status = "too_large"
	case err == nil && int(st) < len(storeStatus) && storeStatus[st] != "":
		status = storeStatus[st]
		if st == cache.Stored {
			ttl, flags = s.h.ttlLeft(meta.Exptime), meta.Flags
			if found && (mode == cache.ModeAppend || mode == cache.ModePrepend) {
				vlen += oldLen
			}
		}
	}
	s.h.logStore(c.ID(), r.Key, status, cmd, ttl, vlen, flags)
}

// logCreatedCounter writes the lines memcached writes when a binary
// INCREMENT or DECREMENT creates its counter: the second lookup (of the
// add that stores the initial value) and that add.
func (s *binSession) logCreatedCounter(c *server.Conn, r *binary.Request, v uint64, meta engine.Meta) {
	vlen := len(strconv.AppendUint(nil, v, 10))
	if s.h.logs.on(logFetchers) {
		s.h.logGet(c.ID(), r.Key, false, 0, 0)
	}
	if s.h.logs.on(logMutations) {
		s.h.logStore(c.ID(), r.Key, "stored", "add", s.h.ttlLeft(meta.Exptime), vlen, meta.Flags)
	}
}

// ttlLeft is the ttl memcached prints for an item's absolute exptime.
func (h *Handler) ttlLeft(exptime int64) uint32 {
	if exptime == 0 {
		return 0
	}
	return uint32(exptime - h.cfg.Cache.Now())
}

// logEviction writes memcached's eviction line for an item the engine
// dropped to make room (engine.EvictionNotifier).
func (h *Handler) logEviction(key []byte, m *engine.Meta, vlen int) {
	if !h.logs.on(logEvictions) {
		return
	}
	var arr [512]byte
	now := h.cfg.Cache.Now()
	b := h.logs.begin(arr[:0])
	b = append(b, "type=eviction key="...)
	b = appendURIKey(b, key)
	if m.Bits&engine.BitFetched != 0 {
		b = append(b, " fetch=yes"...)
	} else {
		b = append(b, " fetch=no"...)
	}
	b = append(b, " ttl="...)
	if m.Exptime > 0 {
		b = strconv.AppendInt(b, m.Exptime-now, 10)
	} else {
		b = append(b, "-1"...)
	}
	b = append(b, " la="...)
	b = strconv.AppendInt(b, int64(int32(now-m.Atime)), 10)
	b = append(b, " clsid="...)
	b = strconv.AppendInt(b, int64(h.itemClass(len(key), vlen, m.Flags)), 10)
	b = append(b, " size="...)
	b = strconv.AppendInt(b, int64(vlen), 10)
	b = append(b, '\n')
	h.logs.publish(logEvictions, b)
}

// logConn writes memcached's conn_new line, or with a reason ("normal",
// "idle_timeout") its conn_close line.
func (h *Handler) logConn(id uint64, addr net.Addr, reason string) {
	var arr [256]byte
	b := h.logs.begin(arr[:0])
	closed := reason != ""
	if closed {
		b = append(b, "type=conn_close"...)
	} else {
		b = append(b, "type=conn_new"...)
	}
	rip, rport, transport := "unix", 0, "local"
	if ta, ok := addr.(*net.TCPAddr); ok {
		rip, rport, transport = ta.IP.String(), ta.Port, "tcp"
	}
	b = append(b, " rip="...)
	b = append(b, rip...)
	b = append(b, " rport="...)
	b = strconv.AppendInt(b, int64(rport), 10)
	b = append(b, " transport="...)
	b = append(b, transport...)
	if closed {
		b = append(b, " reason="...)
		b = append(b, reason...)
	}
	b = append(b, " cfd="...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, '\n')
	h.logs.publish(logConnevents, b)
}

// Replies of the watch command (memcached's process_watch_command).
var (
	watchDisabled = []byte("CLIENT_ERROR watch commands not allowed\r\n")
	watchTooMany  = []byte("WATCHER_TOO_MANY log watcher limit reached\r\n")
)

// watch runs "watch [stream...]": the connection becomes a watcher and
// receives the lines of the streams it named (fetchers when it named
// none) until it closes or the server stops. Its session's goroutine
// writes them; the request path only appends to the watcher's bounded
// buffer.
func (s *session) watch(c *server.Conn, r *text.Request) error {
	if r.Noreply {
		// memcached reads "noreply" as a stream name, refuses it with
		// ERROR and, the request being noreply, says nothing.
		return nil
	}
	if s.h.cfg.DisableWatch {
		c.Out = append(c.Out, watchDisabled...)
		return nil
	}
	var streams uint32
	for _, a := range r.Args {
		f := watchStream(a)
		if f == 0 {
			c.Out = append(c.Out, text.ErrorReply...)
			return nil
		}
		streams |= f
	}
	if streams == 0 {
		streams = logFetchers
	}
	w := s.h.logs.add(streams)
	if w == nil {
		c.Out = append(c.Out, watchTooMany...)
		return nil
	}
	defer s.h.logs.remove(w)
	if err := c.Flush(); err != nil {
		return err
	}
	// The client's bytes from now on only tell that it closed (memcached
	// reads and drops them); a watcher is never idle.
	nc := c.NetConn()
	if c.Server().Config().IdleTimeout > 0 {
		nc.SetReadDeadline(time.Time{})
	}
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		var b [512]byte
		for {
			if _, err := nc.Read(b[:]); err != nil {
				return
			}
		}
	}()
	var spare []byte
	for {
		select {
		case <-w.ready:
		case <-gone:
			return server.ErrClose
		}
		w.mu.Lock()
		out := w.buf
		w.buf = spare[:0]
		w.mu.Unlock()
		if len(out) == 0 {
			spare = out
			continue
		}
		c.Out = append(c.Out[:0], out...)
		spare = out
		if err := c.Flush(); err != nil {
			return err
		}
	}
}
