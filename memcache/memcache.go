package memcache

import (
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mnemo-cache/mnemo/cache"
	"github.com/mnemo-cache/mnemo/engine"
	"github.com/mnemo-cache/mnemo/protocol/text"
	"github.com/mnemo-cache/mnemo/server"
)

// Version is the version string mnemo reports in "version" (text and
// binary) and "stats": the memcached release whose protocol and stats it
// follows, exactly as memcached prints it, because clients parse it
// (node's memcached client wants N.N.N at the end, others compare it to
// decide on features). mnemo's own version (config.Version) is printed
// by -V and -h, where it breaks nothing.
var Version = "1.6.18"

// Config configures a Handler.
type Config struct {
	// Cache executes the commands. Required.
	Cache *cache.Cache
	// ItemSizeMax is the largest item (memcached -I). 0 means 1 MiB.
	ItemSizeMax int
	// EnableShutdown allows the shutdown command (memcached -A).
	EnableShutdown bool
	// Shutdown is called by the shutdown command (with graceful true for
	// "shutdown graceful"). It must not block.
	Shutdown func(graceful bool)
	// Threads is reported as "threads" in stats.
	Threads int
	// PrefixDelimiter separates key prefixes for "stats detail"
	// (memcached -D); 0 means ':'.
	PrefixDelimiter byte
	// DetailEnabled turns "stats detail" on from the start (memcached -D).
	DetailEnabled bool
	// Settings reports "stats settings"; nil reports nothing.
	Settings func(add func(name, value string))
	// DisableWatch and DisableDumping refuse "watch" and "lru_crawler
	// metadump" (memcached -W, -X).
	DisableWatch, DisableDumping bool
	// WatcherBufSize is the bytes a watch connection may hold unsent
	// before its lines are dropped (memcached -o watcher_logbuf_size); 0
	// means 256 KiB.
	WatcherBufSize int
	// VerboseOut receives memcached's -vv lines (each client command and
	// reply, connection events); nil means os.Stderr.
	VerboseOut io.Writer
	// CrawlerDisabled starts with the lru_crawler commands crawl,
	// metadump and mgdump refused until "lru_crawler enable", as
	// memcached -o no_lru_crawler does.
	CrawlerDisabled bool
	// SetVerbosity, when not nil, is called with the level of each
	// verbosity command (0 to 2), to change what the server logs.
	SetVerbosity func(level int)
	// Logger receives the handler's log records; nil means slog.Default().
	Logger *slog.Logger

	// Protocol restricts the protocols a connection may speak (memcached
	// -B): "auto" or "" detects it from each connection's first byte
	// (0x80: binary, anything else: text), "ascii" speaks only text,
	// "binary" only binary. SASL forces "binary".
	Protocol string
	// ListenerProtocols overrides Protocol for the connections of some
	// listeners (memcached's -l proto[ascii|binary]:ADDR), keyed by the
	// listener's address as net.Addr.String() gives it.
	ListenerProtocols map[string]string
	// SASL requires binary-protocol SASL authentication (memcached -S):
	// until a connection authenticates, every command but the SASL ones
	// and VERSION answers AUTH_ERROR and closes it.
	SASL bool
	// SASLPasswordFile is the SASL password database, "user:password"
	// lines (memcached's MEMCACHED_SASL_PWDB). It is read at each
	// authentication, as memcached does, so edits take effect at once.
	SASLPasswordFile string
	// AuthCredentials, when not nil, turn on memcached's ascii
	// authentication (-Y) for the text protocol: a connection must first
	// send "set <key> <flags> <exptime> <bytes>" with the data
	// "<user> <password>".
	AuthCredentials *Credentials
	// Instruments are the optional request-path measurements (latency
	// histograms, hot keys); the zero value measures nothing.
	Instruments Instruments
	// TLS, when not nil, is the server's TLS (memcached -Z), for
	// refresh_certs and the TLS lines of stats.
	TLS TLS
}

// Handler is the memcached application. It implements server.Handler.
type Handler struct {
	// authCreds are the ascii authentication credentials in force
	// (Config.AuthCredentials until SetAuthCredentials).
	authCreds atomic.Pointer[Credentials]
	sizes     sizesState // stats sizes (sizes.go)
	cfg       Config
	started   time.Time
	pid       int

	// Verbosity is the level set by the verbosity command (and -v): at 2
	// and above, each client command and reply is written to
	// Config.VerboseOut (verbose.go).
	Verbosity atomic.Int32

	logs logHub // watch streams (watch.go)
	vmu  sync.Mutex
	vout io.Writer

	// engineErrAt (unix ns) and engineErrQuiet rate-limit the log of
	// engine errors (failure.go).
	engineErrAt    atomic.Int64
	engineErrQuiet atomic.Uint64

	detail  detailStats
	crawler crawlerState // lru_crawler enable/disable
	// maxBytes is the memory limit cache_memlimit last set, in bytes;
	// 0 until it succeeds once. "stats settings" shows it as maxbytes.
	maxBytes atomic.Int64
	// st holds what the stats and the slabs/lru commands keep: the
	// server counters' baseline of "stats reset", the log counters and
	// the settings those commands change (stats.go).
	st statsState

	// textPool holds the working state of parked and closed text
	// sessions (*textWork).
	textPool sync.Pool
	// binPool holds those of binary sessions (*binWork).
	binPool sync.Pool

	srvMu sync.Mutex
	srv   *server.Server
}

var _ server.Handler = (*Handler)(nil)

// NewHandler returns the memcached application for cfg.
func NewHandler(cfg Config) *Handler {
	if cfg.ItemSizeMax == 0 {
		cfg.ItemSizeMax = 1 << 20
	}
	if cfg.PrefixDelimiter == 0 {
		cfg.PrefixDelimiter = ':'
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SASL {
		cfg.Protocol = "binary"
	}
	if cfg.WatcherBufSize <= 0 {
		cfg.WatcherBufSize = defaultWatcherBuf
	}
	if cfg.VerboseOut == nil {
		cfg.VerboseOut = os.Stderr
	}
	h := &Handler{cfg: cfg, started: time.Now(), pid: os.Getpid(), vout: cfg.VerboseOut}
	h.authCreds.Store(cfg.AuthCredentials)
	h.logs.bufSize = cfg.WatcherBufSize
	if en, ok := cfg.Cache.Engine().(engine.EvictionNotifier); ok {
		en.NotifyEvictions(h.logEviction)
	}
	h.detail.delim = cfg.PrefixDelimiter
	h.detail.setEnabled(cfg.DetailEnabled)
	h.crawler.disabled.Store(cfg.CrawlerDisabled)
	h.textPool.New = h.newTextWork
	return h
}

// SetAuthCredentials replaces the ascii authentication credentials (-Y)
// for the logins that follow, as memcached's reload of its -Y file on
// SIGHUP. It does nothing when the handler was made without
// Config.AuthCredentials (ascii authentication is off) or c is nil.
func (h *Handler) SetAuthCredentials(c *Credentials) {
	if h.cfg.AuthCredentials != nil && c != nil {
		h.authCreds.Store(c)
	}
}

// MaxRequestSize is the largest request a session asks the server to
// buffer: the largest item with its command line. Give it to
// server.Config.MaxRequestSize.
func (h *Handler) MaxRequestSize() int {
	return max(h.cfg.ItemSizeMax+text.MaxLine, text.DefaultMaxGetLine) + 2
}

// rejectMessage is memcached's reply to a connection beyond its -c limit.
const rejectMessage = "ERROR Too many open connections\r\n"

// RejectMessage is what memcached writes to a connection beyond its -c
// limit before closing it. Give it to server.Config.RejectMessage.
func (h *Handler) RejectMessage() []byte { return []byte(rejectMessage) }

// connStateNames are memcached's names for the server's connection states,
// as "stats conns" prints them.
var connStateNames = [...]string{
	server.StateListening:   "conn_listening",
	server.StateWaiting:     "conn_waiting",
	server.StateReading:     "conn_read",
	server.StateReadingNeed: "conn_nread",
	server.StateServing:     "conn_parse_cmd",
	server.StateWriting:     "conn_mwrite",
	server.StateClosing:     "conn_closing",
}

// connStateName is memcached's name for a connection state.
func connStateName(st server.State) string {
	if int(st) < len(connStateNames) && connStateNames[st] != "" {
		return connStateNames[st]
	}
	return "conn_" + st.String()
}

// NewSession starts the protocol state of one connection.
func (h *Handler) NewSession(c *server.Conn) server.Session {
	h.srvMu.Lock()
	if h.srv == nil {
		h.srv = c.Server()
	}
	h.srvMu.Unlock()
	proto := h.cfg.Protocol
	if len(h.cfg.ListenerProtocols) > 0 && !h.cfg.SASL {
		if la := c.ListenAddr(); la != nil {
			if p, ok := h.cfg.ListenerProtocols[la.String()]; ok {
				proto = p
			}
		}
	}
	var sess server.Session
	switch proto {
	case "binary":
		sess = h.newBinarySession()
	case "ascii":
		sess = h.newTextSession()
	default:
		sess = &detectSession{h: h}
	}
	return h.connOpened(c, proto, sess)
}

// newTextSession returns a text-protocol session, behind memcached's ascii
// authentication when it is on.
func (h *Handler) newTextSession() server.Session {
	s := &session{h: h}
	s.wake()
	if h.cfg.AuthCredentials != nil {
		return &asciiAuthSession{text: s}
	}
	return s
}

// readBufOOM is memcached's reply when it cannot grow a connection's read
// buffer for a request (memcached.c try_read_network); the connection is
// then closed.
const readBufOOM = "SERVER_ERROR out of memory reading request\r\n"

// Refuse answers a request the server will not buffer for lack of read
// buffer memory (-o read_buf_mem_limit), as memcached does when it cannot
// grow a read buffer; the server then closes the connection.
func (s *session) Refuse(c *server.Conn, _ error) { c.Out = append(c.Out, readBufOOM...) }

// Refuse answers in the chosen protocol: the text protocol with
// memcached's words; a binary connection is closed without a word, as
// memcached closes one it has no read buffer for.
func (d *detectSession) Refuse(c *server.Conn, err error) {
	if r, ok := d.inner.(server.Refuser); ok {
		r.Refuse(c, err)
	}
}

// Refuse answers with the text protocol's words, authenticated or not.
func (a *asciiAuthSession) Refuse(c *server.Conn, err error) { a.text.Refuse(c, err) }

var (
	_ server.Parker  = (*session)(nil)
	_ server.Parker  = (*binSession)(nil)
	_ server.Parker  = (*detectSession)(nil)
	_ server.Parker  = (*asciiAuthSession)(nil)
	_ server.Refuser = (*session)(nil)
	_ server.Refuser = (*detectSession)(nil)
	_ server.Refuser = (*asciiAuthSession)(nil)
)
