// Package config owns mnemo's command line and start-up configuration: the
// Config struct with memcached 1.6.18's defaults, parsing of memcached's
// flags (getopt style, on its own pflag.FlagSet), the -h usage text,
// Validate, the Unsupported check for flags that belong to later work, and
// the "stats settings" listing.
//
// # Compatibility
//
// Mnemo takes memcached 1.6.18's command line: every short and long flag of
// `memcached -h` and every -o key that Debian's memcached 1.6.18 accepts
// (its build includes extstore and TLS). Flags parse as getopt does:
// -p11211, -p 11211, --port=11211, --port 11211, -vv, -vvv, combined short
// flags (-vAp11211), repeated -o and -l, and -o lists (-o a=1,b=2).
//
// Deliberate differences from memcached:
//
//   - The default listen address is DefaultListen (127.0.0.1); memcached
//     listens on every interface unless -l is given. Use -l '*' or
//     -l 0.0.0.0 to listen on every interface.
//   - Numbers are parsed strictly: "-m 1g" or "-p 11211x" is an error, where
//     memcached's atoi silently reads 1 or 11211. -I takes memcached's k and
//     m suffixes (any case) and plain bytes.
//   - Arguments that are not flags are an error; memcached ignores them.
//   - -i (license) prints mnemo's license notice and returns ErrHelp.
//   - -D also has the long name --delimiter (pflag needs one); --napi_ids,
//     as memcached's -h spells it, parses as well as --napi-ids.
//   - "stats settings" reports inter as the effective listen list (so
//     DefaultListen when -l was not given) where memcached prints NULL.
//
// # Accepted, no effect
//
// These flags are accepted, validated with memcached's rules and reported
// by "stats settings" and String, but change nothing in mnemo, whose design
// has no slab allocator, no worker-thread pool and no hash table of
// memcached's shape:
//
//	flag                        why it has no effect
//	-f, -n                      no slab classes (items are stored by exact size)
//	-R                          one goroutine per connection; no event batching
//	-b                          Go listens with the kernel's somaxconn
//	-t                          connections run on goroutines, not a thread pool;
//	                            reported as num_threads (the daemon may use it
//	                            as a parallelism hint)
//	-r                          core dump limits are left to the environment
//	-N                          no NAPI-ID thread selection
//	-o slab_reassign, slab_automove, slab_automove_ratio, slab_automove_window,
//	   slab_chunk_max, slab_sizes, no_chunked_items, slab_automove_freeratio
//	                            no slab allocator
//	-o lru_crawler, lru_crawler_sleep, lru_crawler_tocrawl, lru_maintainer,
//	   hot_lru_pct, warm_lru_pct, hot_max_factor, warm_max_factor,
//	   temporary_ttl, tail_repair_time
//	                            eviction and expiry are the engine's own
//	-o hash_algorithm, no_hashexpand
//	                            the engine picks its hash and grows its index
//	-o ssl_wbuf_size, ssl_kernel_tls
//	                            Go's crypto/tls writes records from the reply
//	                            buffer and has no kernel offload
//	-o track_sizes, inline_ascii_resp, no_inline_ascii_resp, modern,
//	   no_modern, resp_obj_mem_limit, drop_privileges, no_drop_privileges,
//	   sock_cookie_id, worker_logbuf_size
//	                            no counterpart in mnemo
//	                            (watcher_logbuf_size bounds each watch
//	                            connection's buffer, as in memcached)
//	-o ext_page_size, ext_wbuf_size, ext_threads, ext_io_depth, ext_item_size,
//	   ext_item_age, ext_low_ttl, ext_recache_rate, ext_compact_under,
//	   ext_drop_under, ext_max_sleep, ext_max_frag, ext_drop_unread
//	                            extstore tuning; extstore itself (ext_path) is
//	                            not supported, see Unsupported
//
// The flags that name features mnemo does not have yet (-e, -L, -k, -o
// ext_path) parse, and Unsupported reports them; -h marks them. -Z and the
// -o ssl_* options are served with Go's crypto/tls (see tls.go for what
// each ssl_* option means in mnemo). -U with a port other than 0 is accepted but UDP is not
// served (the daemon logs it): memcached 1.6 turns UDP off by default and
// the scripts that pass -U PORT (memcached's own test helper, init
// scripts written for 1.4) do not use it, so refusing to start would
// break them for nothing.
//
// # Authentication
//
// -S turns on binary-protocol SASL (mechanisms PLAIN and CRAM-MD5). Where
// memcached asks cyrus-sasl, mnemo reads the password database memcached
// reads when built with --enable-sasl-pwdb: a file of user:password lines
// named by MEMCACHED_SASL_PWDB, or by mnemo's --sasl-pwdb flag, which wins.
// -S without either is an error. -Y FILE is memcached's ascii
// authentication, with a file of the same form.
package config

import (
	"errors"
	"os"
	"time"
)

// Version is mnemo's own version, printed by -V, -h and -i. Clients see
// memcached's version instead (memcache.Version).
var Version = "0.1.0"

// MemcachedVersion is the memcached release whose command line, defaults
// and "stats settings" this package follows.
const MemcachedVersion = "1.6.18"

// DefaultListen is the address mnemo listens on when no -l is given. This
// is a deliberate difference from memcached, which listens on every
// interface by default: a cache without authentication should not be
// reachable from the network unless asked to.
const DefaultListen = "127.0.0.1"

// Limits on the item size (-I), as memcached's ITEM_SIZE_MAX_LOWER_LIMIT and
// ITEM_SIZE_MAX_UPPER_LIMIT.
const (
	ItemSizeMaxLower = 1024
	ItemSizeMaxUpper = 1 << 30
)

// Errors returned by Parse, Validate and Unsupported. Test them with
// errors.Is.
var (
	// ErrHelp: Parse printed the -h usage (or the -i license) and the
	// program should exit successfully.
	ErrHelp = errors.New("config: help requested")
	// ErrVersion: Parse printed the -V version line and the program should
	// exit successfully.
	ErrVersion = errors.New("config: version requested")
	// ErrUsage: the command line is malformed: an unknown flag, a missing
	// or unparsable value, an unknown -o key, a stray argument.
	ErrUsage = errors.New("config: bad command line")
	// ErrInvalid: a setting is out of its range or conflicts with another
	// (Validate).
	ErrInvalid = errors.New("config: invalid setting")
	// ErrUnsupported: a flag names a feature mnemo does not have yet
	// (Unsupported).
	ErrUnsupported = errors.New("mnemo: not supported yet")
)

// Config is mnemo's whole start-up configuration. Default returns it with
// memcached 1.6.18's defaults (the "default:" of each field below); a zero
// Config is not valid. Sizes are in bytes even where the flag takes
// megabytes or kilobytes.
type Config struct {
	// Port is the TCP port (-p, --port); default 11211. 0 disables TCP,
	// as in memcached. When -U is given without -p, Port takes the UDP
	// port, as in memcached.
	Port int
	// UDPPort is the UDP port (-U, --udp-port); default 0 (off). Mnemo
	// does not serve UDP: a port other than 0 is accepted, shown in
	// "stats settings" as udpport and logged as not served.
	UDPPort int
	// Listen holds the -l (--listen) entries in order, each one address
	// (Parse splits on ',' and ';' and drops repeats). Empty means
	// DefaultListen. See Listeners for the accepted forms.
	Listen []string
	// UnixSocket is the unix socket path (-s, --unix-socket); default ""
	// (none). A unix socket disables TCP and UDP, as in memcached.
	UnixSocket string
	// UnixMask is the unix socket's access mask (-a, --unix-mask, octal);
	// default 0700.
	UnixMask os.FileMode
	// Backlog is the listen backlog (-b, --listen-backlog); default 1024.
	Backlog int
	// MaxConns is the connection limit (-c, --conn-limit); default 1024.
	MaxConns int
	// MaxConnsFast closes connections over MaxConns at once instead of
	// delaying accept (-o maxconns_fast / no_maxconns_fast); default true.
	MaxConnsFast bool
	// IdleTimeout closes connections idle this long (-o idle_timeout,
	// seconds); default 0 (never).
	IdleTimeout time.Duration
	// ReadBufMemLimit limits, across all connections, the memory that
	// holds unfinished requests: read buffers grown past their base size
	// for a large value or a long line (-o read_buf_mem_limit, megabytes,
	// kept in bytes). 0 means not given: mnemo then applies
	// DefaultReadBufLimit (see ReadBufLimit), because it buffers a value
	// being uploaded outside -m, where memcached reads it into item
	// memory inside -m. An explicit read_buf_mem_limit=0 means unlimited,
	// as in memcached.
	ReadBufMemLimit int64
	// Protocol is the binding protocol (-B, --protocol): "auto" (default),
	// "ascii" or "binary".
	Protocol string
	// Threads is the worker count (-t, --threads); default 4.
	Threads int
	// ReqsPerEvent is the requests served per connection per event (-R,
	// --max-reqs-per-event); default 20.
	ReqsPerEvent int
	// NapiIDs is the number of NAPI ids (-N, --napi-ids); default 0.
	NapiIDs int

	// MemoryLimit is the item memory (-m, --memory-limit, megabytes);
	// default 64 MiB.
	MemoryLimit int64
	// NoEvict returns an error on full memory instead of evicting (-M,
	// --disable-evictions); default false.
	NoEvict bool
	// ItemSizeMax is the largest item (-I, --max-item-size, with k or m
	// suffix); default 1 MiB.
	ItemSizeMax int
	// Factor is the slab growth factor (-f, --slab-growth-factor); default
	// 1.25.
	Factor float64
	// ChunkSize is the smallest slab chunk (-n, --slab-min-size); default 48.
	ChunkSize int
	// LargePages asks for large memory pages (-L, --enable-largepages).
	LargePages bool
	// LockMemory locks all paged memory (-k, --lock-memory).
	LockMemory bool
	// MemoryFile is the file mmap'd for restartable item memory (-e,
	// --memory-file); default "" (none).
	MemoryFile string
	// HashPower is the initial hash table power (-o hashpower); default 0
	// (engine's choice); otherwise 12..32.
	HashPower int
	// NoHashExpand disables hash table growth (-o no_hashexpand).
	NoHashExpand bool
	// HashAlgorithm is -o hash_algorithm: "murmur3" (default), "jenkins"
	// or "xxh3".
	HashAlgorithm string
	// SlabReassign is -o slab_reassign / no_slab_reassign; default true.
	SlabReassign bool
	// SlabAutomove is -o slab_automove (0..2); default 1.
	SlabAutomove int
	// SlabAutomoveRatio is -o slab_automove_ratio (0..1]; default 0.8.
	SlabAutomoveRatio float64
	// SlabAutomoveWindow is -o slab_automove_window (>= 3); default 30.
	SlabAutomoveWindow int
	// SlabAutomoveFreeRatio is -o slab_automove_freeratio; default 0.01.
	SlabAutomoveFreeRatio float64
	// SlabChunkMax is -o slab_chunk_max; default 524288. memcached 1.6.18's
	// help says kilobytes but it stores the number as given (bytes); so
	// does mnemo.
	SlabChunkMax int
	// SlabSizes is -o slab_sizes, a '-' separated list of increasing sizes;
	// default "" (use Factor).
	SlabSizes string
	// LRUCrawler runs the LRU crawler (-o lru_crawler / no_lru_crawler);
	// default true. mnemo has no crawler thread (its engines sweep on
	// their own); false starts with the crawl, metadump and mgdump
	// subcommands of lru_crawler refused until "lru_crawler enable", as
	// memcached does.
	LRUCrawler bool
	// LRUCrawlerSleep is -o lru_crawler_sleep in microseconds (0..1000000);
	// default 100.
	LRUCrawlerSleep int
	// LRUCrawlerToCrawl is -o lru_crawler_tocrawl; default 0 (unlimited).
	LRUCrawlerToCrawl uint32
	// LRUMaintainer runs the LRU maintainer and segments the LRU (-o
	// lru_maintainer / no_lru_maintainer); default true.
	LRUMaintainer bool
	// HotLRUPct is -o hot_lru_pct (1..79); default 20.
	HotLRUPct int
	// WarmLRUPct is -o warm_lru_pct (1..79); default 40.
	WarmLRUPct int
	// HotMaxFactor is -o hot_max_factor (> 0); default 0.2.
	HotMaxFactor float64
	// WarmMaxFactor is -o warm_max_factor (> 0); default 2.0.
	WarmMaxFactor float64
	// TempLRU is set by -o temporary_ttl; default false.
	TempLRU bool
	// TemporaryTTL is -o temporary_ttl in seconds; default 61.
	TemporaryTTL int
	// TailRepairTime is -o tail_repair_time in seconds (0 or >= 10);
	// default 0 (off).
	TailRepairTime int
	// TrackSizes is -o track_sizes.
	TrackSizes bool
	// WatcherLogbufSize is -o watcher_logbuf_size (kilobytes); default
	// 256 KiB.
	WatcherLogbufSize int
	// WorkerLogbufSize is -o worker_logbuf_size (kilobytes); default 64 KiB.
	WorkerLogbufSize int

	// Verbose is the verbosity (-v, -vv, -vvv; --verbose); default 0.
	Verbose int
	// EnableShutdown enables the ascii "shutdown" command (-A,
	// --enable-shutdown).
	EnableShutdown bool
	// DisableFlush disables flush_all (-F, --disable-flush-all).
	DisableFlush bool
	// DisableCAS disables CAS (-C, --disable-cas).
	DisableCAS bool
	// DisableDumping disables stats cachedump and lru_crawler metadump
	// (-X, --disable-dumping).
	DisableDumping bool
	// DisableWatch disables the watch command (-W, --disable-watch).
	DisableWatch bool
	// Delimiter separates key prefixes from ids for per-prefix stats (-D);
	// default ':'. Giving -D also sets DetailEnabled.
	Delimiter byte
	// DetailEnabled turns per-prefix stats on from the start; default
	// false ("stats detail on" turns it on at run time).
	DetailEnabled bool

	// SASL enables SASL authentication (-S, --enable-sasl).
	SASL bool
	// AuthFile enables ascii authentication with this user:pass file (-Y,
	// --auth-file); default "" (off).
	AuthFile string
	// SASLPwdb is the SASL password database, a file of user:password
	// lines (--sasl-pwdb, long only; when not given, Parse takes the
	// MEMCACHED_SASL_PWDB environment variable, as memcached does);
	// default "". -S requires it.
	SASLPwdb string
	// TLS enables TLS (-Z, --enable-ssl).
	TLS bool
	// TLSOptions holds the -o ssl_* options.
	TLSOptions TLSOptions

	// User is the identity to assume when started as root (-u, --user).
	User string
	// PidFile is where to write the process id (-P, --pidfile); default
	// "" (none). As in memcached, a pid file that cannot be written is
	// logged and the server goes on.
	PidFile string
	// PortFile is where to write the bound TCP ports, one "TCP INET: <port>"
	// or "TCP INET6: <port>" line per listener, as memcached does; Parse
	// takes it from MEMCACHED_PORT_FILENAME (there is no flag). Default ""
	// (none).
	PortFile string
	// Daemonize runs as a daemon (-d, --daemon): the process starts a
	// detached copy of itself and exits once that copy serves.
	Daemonize bool
	// EnableCoredumps maximizes the core file limit (-r,
	// --enable-coredumps).
	EnableCoredumps bool
	// DropPrivileges is -o drop_privileges / no_drop_privileges; default
	// false.
	DropPrivileges bool
	// SockCookieID is -o sock_cookie_id; default 0.
	SockCookieID uint32

	// Ext holds the extstore (-o ext_*) options.
	Ext ExtOptions

	// Engine is the storage engine's name (--engine, long only); default
	// "memory".
	Engine string
	// EngineConfig is the engine's configuration string (--engine-config,
	// long only); default "".
	EngineConfig string
	// Pprof is a loopback address on which to serve net/http/pprof
	// (--pprof, long only); default "" (off).
	Pprof string
	// MetricsListen is the host:port on which to serve Prometheus
	// /metrics over HTTP, its own listener, never the memcached port
	// (--metrics-listen, long only); default "" (off). Any address may
	// be given: the endpoint shows statistics (and, with HotKeys, key
	// names) to whoever can reach it.
	MetricsListen string
	// HotKeys is the number of hot keys reported per ranking by "stats
	// hotkeys" and /metrics (--hotkeys, long only; 1 to 100); default 0
	// (off: no tracking, no cost).
	HotKeys int
	// HotKeysWindow is the sliding window of the hot-key report
	// (--hotkeys-window, a Go duration, 4s to 24h); default 60s.
	HotKeysWindow time.Duration
	// HotKeysSample counts 1 request in HotKeysSample for the hot keys
	// (--hotkeys-sample, 1 to 65536); default 16.
	HotKeysSample int

	// Warnings collects what Parse would have memcached print to stderr
	// and carry on: a deprecated option, a thread count above 64. The
	// caller logs them.
	Warnings []string

	// slabChunkMaxSet records that -o slab_chunk_max was given, so that a
	// later no_modern keeps it (as memcached does).
	slabChunkMaxSet bool
	// readBufUnlimited records an explicit -o read_buf_mem_limit=0.
	readBufUnlimited bool
}

// DefaultReadBufLimit returns the bound on the memory of unfinished
// requests that applies when -o read_buf_mem_limit is not given: the item
// memory (-m), but at least four of the largest items (-I), so that a
// small -m still takes a few large uploads at once. With it a server's
// memory is bounded by about twice -m plus the per-connection base
// buffers, where memcached's is bounded by -m.
func DefaultReadBufLimit(memoryLimit int64, itemSizeMax int) int64 {
	return max(memoryLimit, 4*int64(itemSizeMax))
}

// ReadBufLimit returns the bound in force on the memory of unfinished
// requests, in bytes (0: unlimited): -o read_buf_mem_limit when given,
// else DefaultReadBufLimit.
func (c *Config) ReadBufLimit() int64 {
	switch {
	case c.ReadBufMemLimit > 0:
		return c.ReadBufMemLimit
	case c.readBufUnlimited:
		return 0
	}
	return DefaultReadBufLimit(c.MemoryLimit, c.ItemSizeMax)
}

// TLSOptions are memcached's -o ssl_* options; they apply with -Z (TLS).
// See the TLS section of tls.go for what each means in mnemo.
type TLSOptions struct {
	// ChainCert is -o ssl_chain_cert, the PEM certificate chain; default
	// "". Required with -Z.
	ChainCert string
	// Key is -o ssl_key, the private key; default "": the key is read
	// from ChainCert (memcached requires ssl_key).
	Key string
	// KeyFormat is -o ssl_keyformat (OpenSSL's SSL_FILETYPE_*); default 1
	// (PEM).
	KeyFormat int
	// VerifyMode is -o ssl_verify_mode: 0 none (default), 1 request,
	// 2 require, 3 once.
	VerifyMode int
	// Ciphers is -o ssl_ciphers; default "".
	Ciphers string
	// CACert is -o ssl_ca_cert; default "".
	CACert string
	// WbufSize is -o ssl_wbuf_size (kilobytes); default 16 KiB. No
	// effect in mnemo.
	WbufSize int
	// SessionCache is -o ssl_session_cache.
	SessionCache bool
	// KernelTLS is -o ssl_kernel_tls (accepted; crypto/tls has no
	// kernel offload).
	KernelTLS bool
	// MinVersion is -o ssl_min_version: 0 TLS 1.0, 1 TLS 1.1, 2 TLS 1.2
	// (default), 3 TLS 1.3.
	MinVersion int
}

// ExtOptions are memcached's extstore options (-o ext_*). Mnemo has no
// extstore: Path selects the persistent engine with a disk budget (see
// applyExtPath); the rest are accepted, shown in "stats settings" as
// memcached shows them, and have no effect (README: extstore).
type ExtOptions struct {
	// Path holds the -o ext_path entries (file:size), in order.
	Path []string
	// PageSize is -o ext_page_size (megabytes); default 64 MiB.
	PageSize int64
	// WbufSize is -o ext_wbuf_size (megabytes); default 4 MiB.
	WbufSize int64
	// Threads is -o ext_threads; default 1.
	Threads uint32
	// IODepth is -o ext_io_depth; default 1.
	IODepth uint32
	// ItemSize is -o ext_item_size (bytes); default 512.
	ItemSize uint32
	// ItemAge is -o ext_item_age (seconds); default 4294967295 (no limit).
	ItemAge uint32
	// LowTTL is -o ext_low_ttl (seconds); default 0.
	LowTTL uint32
	// RecacheRate is -o ext_recache_rate; default 2000.
	RecacheRate uint32
	// CompactUnder is -o ext_compact_under (pages); default 0 (a quarter
	// of the storage).
	CompactUnder uint32
	// DropUnder is -o ext_drop_under (pages); default 0 (a quarter of the
	// storage).
	DropUnder uint32
	// MaxSleep is -o ext_max_sleep (microseconds); default 1000000.
	MaxSleep uint32
	// MaxFrag is -o ext_max_frag; default 0.8.
	MaxFrag float64
	// DropUnread is -o ext_drop_unread.
	DropUnread bool
}

// Default returns a Config with memcached 1.6.18's defaults, except that
// Listen is empty and so means DefaultListen, and with mnemo's engine
// "memory".
func Default() *Config {
	return &Config{
		Port:               11211,
		UnixMask:           0o700,
		Backlog:            1024,
		MaxConns:           1024,
		MaxConnsFast:       true,
		Protocol:           "auto",
		Threads:            4,
		ReqsPerEvent:       20,
		MemoryLimit:        64 << 20,
		ItemSizeMax:        1 << 20,
		Factor:             1.25,
		ChunkSize:          48,
		HashAlgorithm:      "murmur3",
		SlabReassign:       true,
		SlabAutomove:       1,
		SlabAutomoveRatio:  0.8,
		SlabAutomoveWindow: 30,
		// Set here, not in Ext, because memcached lists it among the
		// slab settings; it is an extstore option all the same.
		SlabAutomoveFreeRatio: 0.01,
		SlabChunkMax:          512 << 10,
		LRUCrawler:            true,
		LRUCrawlerSleep:       100,
		LRUMaintainer:         true,
		HotLRUPct:             20,
		WarmLRUPct:            40,
		HotMaxFactor:          0.2,
		WarmMaxFactor:         2.0,
		TemporaryTTL:          61,
		WatcherLogbufSize:     256 << 10,
		WorkerLogbufSize:      64 << 10,
		Delimiter:             ':',
		TLSOptions: TLSOptions{
			KeyFormat:  1,
			WbufSize:   16 << 10,
			MinVersion: 2,
		},
		Ext: ExtOptions{
			PageSize:    64 << 20,
			WbufSize:    4 << 20,
			Threads:     1,
			IODepth:     1,
			ItemSize:    512,
			ItemAge:     ^uint32(0),
			RecacheRate: 2000,
			MaxSleep:    1000000,
			MaxFrag:     0.8,
		},
		Engine:        "memory",
		HotKeysWindow: time.Minute,
		HotKeysSample: 16,
	}
}
