package config

import (
	"fmt"
	"io"
	"strings"
)

// Usage writes the -h text: every flag in memcached 1.6.18's `memcached -h`
// layout and wording, with mnemo's defaults, a note on each flag that is not
// supported yet (or, as -U, accepted without effect), and mnemo's long-only
// flags at the end. engines lists the
// engine names for --engine (none: the line names only the default);
// engineHelp is a block printed after --engine-config, as given.
func Usage(w io.Writer, engines []string, engineHelp string) {
	d := Default()
	const ns = " (not supported yet)"
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	p("mnemo %s (memcached %s compatible)\n", Version, MemcachedVersion)
	p("-p, --port=<num>          TCP port to listen on (default: %d)\n", d.Port)
	p("-U, --udp-port=<num>      UDP port to listen on (default: %d, off)\n", d.UDPPort)
	p("                          (accepted and shown in stats settings; mnemo does\n")
	p("                          not serve UDP)\n")
	p("-s, --unix-socket=<file>  UNIX socket to listen on (disables network support)\n")
	p("-a, --unix-mask=<mask>    access mask for UNIX socket, in octal (default: %o)\n", uint32(d.UnixMask))
	p("-A, --enable-shutdown     enable ascii \"shutdown\" command\n")
	p("-l, --listen=<addr>       interface to listen on (default: %s)\n", DefaultListen)
	p("                          comma separated or repeated; <ip>, <ip>:<port>,\n")
	p("                          [<ipv6>]:<port> or * (every interface)\n")
	p("                          if TLS/SSL is enabled, 'notls' prefix can be used to\n")
	p("                          disable for specific listeners (-l notls:<ip>:<port>)\n")
	p("-d, --daemon              run as a daemon\n")
	p("-r, --enable-coredumps    maximize core file limit\n")
	p("-u, --user=<user>         assume identity of <username> (only when run as root;\n")
	p("                          required then)\n")
	p("-m, --memory-limit=<num>  item memory in megabytes (default: %d)\n", d.MemoryLimit>>20)
	p("-M, --disable-evictions   return error on memory exhausted instead of evicting\n")
	p("-c, --conn-limit=<num>    max simultaneous connections (default: %d)\n", d.MaxConns)
	p("-k, --lock-memory         lock down all paged memory%s\n", ns)
	p("-v, --verbose             verbose (print errors/warnings while in event loop)\n")
	p("-vv                       very verbose (also print client commands/responses)\n")
	p("-vvv                      extremely verbose (internal state transitions)\n")
	p("-h, --help                print this help and exit\n")
	p("-i, --license             print license and exit\n")
	p("-V, --version             print version and exit\n")
	p("-P, --pidfile=<file>      save PID in <file> (with or without -d)\n")
	p("-f, --slab-growth-factor=<num> chunk size growth factor (default: %.2f)\n", d.Factor)
	p("-n, --slab-min-size=<bytes> min space used for key+value+flags (default: %d)\n", d.ChunkSize)
	p("-L, --enable-largepages   try to use large memory pages (if available)%s\n", ns)
	p("-D <char>     Use <char> as the delimiter between key prefixes and IDs.\n")
	p("              This is used for per-prefix stats reporting. The default is\n")
	p("              \"%c\" (colon). If this option is specified, stats collection\n", d.Delimiter)
	p("              is turned on automatically; if not, then it may be turned on\n")
	p("              by sending the \"stats detail on\" command to the server.\n")
	p("-t, --threads=<num>       number of threads to use (default: %d)\n", d.Threads)
	p("-R, --max-reqs-per-event  maximum number of requests per event, limits the\n")
	p("                          requests processed per connection to prevent\n")
	p("                          starvation (default: %d)\n", d.ReqsPerEvent)
	p("-C, --disable-cas         disable use of CAS\n")
	p("-b, --listen-backlog=<num> set the backlog queue limit (default: %d)\n", d.Backlog)
	p("-B, --protocol=<name>     protocol - one of ascii, binary, or auto (default: %s)\n", protocolText(d.Protocol))
	p("-I, --max-item-size=<num> adjusts max item size\n")
	p("                          (default: %dm, min: %dk, max: %dm)\n", d.ItemSizeMax>>20, ItemSizeMaxLower>>10, ItemSizeMaxUpper>>20)
	p("-S, --enable-sasl         turn on Sasl authentication (see --sasl-pwdb)\n")
	p("-F, --disable-flush-all   disable flush_all command\n")
	p("-X, --disable-dumping     disable stats cachedump and lru_crawler metadump\n")
	p("-W, --disable-watch       disable watch commands (live logging)\n")
	p("-Y, --auth-file=<file>    (EXPERIMENTAL) enable ASCII protocol authentication. format:\n")
	p("                          user:pass\\nuser2:pass2\\n\n")
	p("-e, --memory-file=<file>  (EXPERIMENTAL) mmap a file for item memory.\n")
	p("                          use only in ram disks or persistent memory mounts!\n")
	p("                          enables restartable cache (stop with SIGUSR1)%s\n", ns)
	p("-Z, --enable-ssl          enable TLS/SSL (not supported yet: this build has no TLS)\n")
	p("-o, --extended            comma separated list of extended options\n")
	p("                          most options have a 'no_' prefix to disable\n")
	p("   - maxconns_fast:       immediately close new connections after limit (default: %s)\n", enabledDisabled(d.MaxConnsFast))
	p("   - hashpower:           an integer multiplier for how large the hash\n")
	p("                          table should be. normally grows at runtime. (default starts at: %d)\n", d.HashPower)
	p("                          set based on \"STAT hash_power_level\"\n")
	p("   - tail_repair_time:    time in seconds for how long to wait before\n")
	p("                          forcefully killing LRU tail item.\n")
	p("                          disabled by default; very dangerous option.\n")
	p("   - hash_algorithm:      the hash table algorithm\n")
	p("                          default is murmur3 hash. options: jenkins, murmur3, xxh3\n")
	p("   - no_lru_crawler:      disable LRU Crawler background thread.\n")
	p("   - lru_crawler_sleep:   microseconds to sleep between items\n")
	p("                          default is %d.\n", d.LRUCrawlerSleep)
	p("   - lru_crawler_tocrawl: max items to crawl per slab per run\n")
	p("                          default is %d (unlimited)\n", d.LRUCrawlerToCrawl)
	p("   - read_buf_mem_limit:  limit in megabytes for the read buffers that hold\n")
	p("                          unfinished requests (values being uploaded).\n")
	p("                          0 means unlimited (default: the -m value, at\n")
	p("                          least 4 x -I; memcached's default is 0)\n")
	p("   - no_lru_maintainer:   disable new LRU system + background thread.\n")
	p("   - hot_lru_pct:         pct of slab memory to reserve for hot lru.\n")
	p("                          (requires lru_maintainer, default pct: %d)\n", d.HotLRUPct)
	p("   - warm_lru_pct:        pct of slab memory to reserve for warm lru.\n")
	p("                          (requires lru_maintainer, default pct: %d)\n", d.WarmLRUPct)
	p("   - hot_max_factor:      items idle > cold lru age * drop from hot lru. (default: %.2f)\n", d.HotMaxFactor)
	p("   - warm_max_factor:     items idle > cold lru age * this drop from warm. (default: %.2f)\n", d.WarmMaxFactor)
	p("   - temporary_ttl:       TTL's below get separate LRU, can't be evicted.\n")
	p("                          (requires lru_maintainer, default: %d)\n", d.TemporaryTTL)
	p("   - idle_timeout:        timeout for idle connections. (default: %d, no timeout)\n", int64(d.IdleTimeout.Seconds()))
	p("   - slab_chunk_max:      (EXPERIMENTAL) maximum slab size in kilobytes. use extreme care. (default: %d)\n", d.SlabChunkMax>>10)
	p("   - watcher_logbuf_size: size in kilobytes of per-watcher write buffer. (default: %d)\n", d.WatcherLogbufSize>>10)
	p("   - worker_logbuf_size:  size in kilobytes of per-worker-thread buffer\n")
	p("                          read by background thread, then written to watchers. (default: %d)\n", d.WorkerLogbufSize>>10)
	p("   - track_sizes:         enable dynamic reports for 'stats sizes' command.\n")
	p("   - no_hashexpand:       disables hash table expansion (dangerous)\n")
	p("   - modern:              enables options which will be default in future.\n")
	p("                          currently: nothing\n")
	p("   - no_modern:           uses defaults of previous major version (1.4.x)\n")
	p("   - sock_cookie_id:      attributes an ID to a socket for ip filtering/firewalls\n")
	p("\n   - External storage (ext_*) related options (see: https://memcached.org/extstore)\n")
	p("   - ext_path:            file to write to for external storage.%s\n", ns)
	p("                          ie: ext_path=/mnt/d1/extstore:1G\n")
	p("   - ext_page_size:       size in megabytes of storage pages. (default: %d)\n", d.Ext.PageSize>>20)
	p("   - ext_wbuf_size:       size in megabytes of page write buffers. (default: %d)\n", d.Ext.WbufSize>>20)
	p("   - ext_threads:         number of IO threads to run. (default: %d)\n", d.Ext.Threads)
	p("   - ext_item_size:       store items larger than this (bytes, default %d)\n", d.Ext.ItemSize)
	p("   - ext_item_age:        store items idle at least this long (seconds, default: no age limit)\n")
	p("   - ext_low_ttl:         consider TTLs lower than this specially (default: %d)\n", d.Ext.LowTTL)
	p("   - ext_drop_unread:     don't re-write unread values during compaction (default: %s)\n", enabledDisabled(d.Ext.DropUnread))
	p("   - ext_recache_rate:    recache an item every N accesses (default: %d)\n", d.Ext.RecacheRate)
	p("   - ext_compact_under:   compact when fewer than this many free pages\n")
	p("                          (default: 1/4th of the assigned storage)\n")
	p("   - ext_drop_under:      drop COLD items when fewer than this many free pages\n")
	p("                          (default: 1/4th of the assigned storage)\n")
	p("   - ext_max_frag:        max page fragmentation to tolerate (default: %.2f)\n", d.Ext.MaxFrag)
	p("   - ext_max_sleep:       max sleep time of background threads in us (default: %d)\n", d.Ext.MaxSleep)
	p("   - slab_automove_freeratio: ratio of memory to hold free as buffer.\n")
	p("                          (see doc/storage.txt for more info, default: %.3f)\n", d.SlabAutomoveFreeRatio)
	p("   - ssl_chain_cert:      certificate chain file in PEM format%s\n", ns)
	p("   - ssl_key:             private key, if not part of the -ssl_chain_cert\n")
	p("   - ssl_keyformat:       private key format (PEM, DER or ENGINE) (default: PEM)\n")
	p("   - ssl_verify_mode:     peer certificate verification mode, default is 0(None).\n")
	p("                          valid values are 0(None), 1(Request), 2(Require)\n")
	p("                          or 3(Once)\n")
	p("   - ssl_ciphers:         specify cipher list to be used\n")
	p("   - ssl_ca_cert:         PEM format file of acceptable client CA's\n")
	p("   - ssl_wbuf_size:       size in kilobytes of per-connection SSL output buffer\n")
	p("                          (default: %d)\n", d.TLSOptions.WbufSize>>10)
	p("   - ssl_session_cache:   enable server-side SSL session cache, to support session\n")
	p("                          resumption\n")
	p("   - ssl_kernel_tls:      enable kernel TLS offload\n")
	p("   - ssl_min_version:     minimum protocol version to accept (default: %s)\n", tlsVersionText(d.TLSOptions.MinVersion))
	p("                          valid values are 0(tlsv1.0), 1(tlsv1.1), 2(tlsv1.2), or 3(tlsv1.3).\n")
	p("-N, --napi-ids=<num>      number of napi ids. see doc/napi_ids.txt for more details\n")
	p("\nmnemo options (long only):\n")
	p("--engine=<name>           storage engine (default: %s)\n", d.Engine)
	if len(engines) > 0 {
		p("                          one of: %s\n", strings.Join(engines, ", "))
	}
	p("--engine-config=<string>  the engine's configuration string (default: none)\n")
	if engineHelp != "" {
		b.WriteString(engineHelp)
		if !strings.HasSuffix(engineHelp, "\n") {
			b.WriteByte('\n')
		}
	}
	p("--pprof=<addr>            serve net/http/pprof on <addr>, a loopback address\n")
	p("                          such as 127.0.0.1:6060 (default: off)\n")
	p("--sasl-pwdb=<file>        SASL password database for -S: user:password lines\n")
	p("                          (default: $MEMCACHED_SASL_PWDB)\n")
	_, _ = io.WriteString(w, b.String())
}

func enabledDisabled(b bool) string {
	if b {
		return "enabled"
	}
	return "disabled"
}

// printLicense writes the -i text.
func printLicense(w io.Writer) {
	fmt.Fprintf(w, "mnemo %s\n\n", Version)
	fmt.Fprintf(w, "mnemo is a memcached-compatible cache server written in Go.\n")
	fmt.Fprintf(w, "It contains no memcached code; its command line, protocols and\n")
	fmt.Fprintf(w, "statistics follow memcached %s's documented behaviour.\n", MemcachedVersion)
	fmt.Fprintf(w, "See the LICENSE file distributed with mnemo for its terms.\n")
}
