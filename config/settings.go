package config

import (
	"strconv"
	"strings"
)

// Settings calls add for each line of "stats settings", with memcached
// 1.6.18's names, order and formats (Debian's build, which has extstore
// and TLS), followed by mnemo's "engine" and "engine_config". Values come
// from c; settings that only exist at run time print memcached's start-up
// value (oldest 0). Where memcached prints a NULL string, Settings prints
// what memcached prints: "NULL" or "(null)".
//
// Differences: inter is the effective listen list (DefaultListen when no
// -l was given) where memcached prints NULL, and num_napi_ids is the
// number when -N is given (memcached 1.6.18 prints "(null)" for its
// default of 0, which Settings copies).
func (c *Config) Settings(add func(name, value string)) {
	i := strconv.Itoa
	u32 := func(n uint32) string { return strconv.FormatUint(uint64(n), 10) }
	f2 := func(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) }

	add("maxbytes", strconv.FormatInt(c.MemoryLimit, 10))
	add("maxconns", i(c.MaxConns))
	add("tcpport", i(c.Port))
	add("udpport", i(c.UDPPort))
	add("inter", c.inter())
	add("verbosity", i(c.Verbose))
	add("oldest", "0")
	if c.NoEvict {
		add("evictions", "off")
	} else {
		add("evictions", "on")
	}
	add("domain_socket", quoteOrNull(c.UnixSocket, "NULL"))
	add("umask", strconv.FormatUint(uint64(c.UnixMask), 8))
	add("shutdown_command", yesNo(c.EnableShutdown))
	add("growth_factor", f2(c.Factor))
	add("chunk_size", i(c.ChunkSize))
	add("num_threads", i(c.Threads))
	if len(c.Listen) > 1 {
		add("num_threads_per_udp", "1")
	} else {
		add("num_threads_per_udp", i(c.Threads))
	}
	add("stat_key_prefix", string(rune(c.Delimiter)))
	add("detail_enabled", yesNo(c.DetailEnabled))
	add("reqs_per_event", i(c.ReqsPerEvent))
	add("cas_enabled", yesNo(!c.DisableCAS))
	add("tcp_backlog", i(c.Backlog))
	add("binding_protocol", protocolText(c.Protocol))
	add("auth_enabled_sasl", yesNo(c.SASL))
	add("auth_enabled_ascii", quoteOrNull(c.AuthFile, "no"))
	add("item_size_max", i(c.ItemSizeMax))
	add("maxconns_fast", yesNo(c.MaxConnsFast))
	add("hashpower_init", i(c.HashPower))
	add("slab_reassign", yesNo(c.SlabReassign))
	add("slab_automove", i(c.SlabAutomove))
	add("slab_automove_ratio", f2(c.SlabAutomoveRatio))
	add("slab_automove_window", i(c.SlabAutomoveWindow))
	add("slab_chunk_max", i(c.SlabChunkMax))
	add("lru_crawler", yesNo(c.LRUCrawler))
	add("lru_crawler_sleep", i(c.LRUCrawlerSleep))
	add("lru_crawler_tocrawl", u32(c.LRUCrawlerToCrawl))
	add("tail_repair_time", i(c.TailRepairTime))
	add("flush_enabled", yesNo(!c.DisableFlush))
	add("dump_enabled", yesNo(!c.DisableDumping))
	add("hash_algorithm", c.HashAlgorithm)
	add("lru_maintainer_thread", yesNo(c.LRUMaintainer))
	add("lru_segmented", yesNo(c.LRUMaintainer))
	add("hot_lru_pct", i(c.HotLRUPct))
	add("warm_lru_pct", i(c.WarmLRUPct))
	add("hot_max_factor", f2(c.HotMaxFactor))
	add("warm_max_factor", f2(c.WarmMaxFactor))
	add("temp_lru", yesNo(c.TempLRU))
	add("temporary_ttl", i(c.TemporaryTTL))
	add("idle_timeout", strconv.FormatInt(int64(c.IdleTimeout.Seconds()), 10))
	add("watcher_logbuf_size", i(c.WatcherLogbufSize))
	add("worker_logbuf_size", i(c.WorkerLogbufSize))
	add("read_buf_mem_limit", strconv.FormatInt(c.ReadBufMemLimit, 10))
	add("track_sizes", yesNo(c.TrackSizes))
	add("inline_ascii_response", "no")
	add("ext_item_size", u32(c.Ext.ItemSize))
	add("ext_item_age", u32(c.Ext.ItemAge))
	add("ext_low_ttl", u32(c.Ext.LowTTL))
	add("ext_recache_rate", u32(c.Ext.RecacheRate))
	add("ext_wbuf_size", strconv.FormatInt(c.Ext.WbufSize, 10))
	add("ext_compact_under", u32(c.Ext.CompactUnder))
	add("ext_drop_under", u32(c.Ext.DropUnder))
	add("ext_max_sleep", u32(c.Ext.MaxSleep))
	add("ext_max_frag", f2(c.Ext.MaxFrag))
	add("slab_automove_freeratio", strconv.FormatFloat(c.SlabAutomoveFreeRatio, 'f', 3, 64))
	add("ext_drop_unread", yesNo(c.Ext.DropUnread))
	t := c.TLSOptions
	add("ssl_enabled", yesNo(c.TLS))
	add("ssl_chain_cert", quoteOrNull(t.ChainCert, "(null)"))
	add("ssl_key", quoteOrNull(t.Key, "(null)"))
	add("ssl_verify_mode", i(sslVerifyBits(t.VerifyMode)))
	add("ssl_keyformat", i(t.KeyFormat))
	add("ssl_ciphers", quoteOrNull(t.Ciphers, "NULL"))
	add("ssl_ca_cert", quoteOrNull(t.CACert, "NULL"))
	add("ssl_wbuf_size", i(t.WbufSize))
	add("ssl_session_cache", yesNo(t.SessionCache))
	add("ssl_kernel_tls", yesNo(t.KernelTLS))
	add("ssl_min_version", tlsVersionText(t.MinVersion))
	if c.NapiIDs == 0 {
		add("num_napi_ids", "(null)")
	} else {
		add("num_napi_ids", i(c.NapiIDs))
	}
	add("memory_file", quoteOrNull(c.MemoryFile, "(null)"))
	add("engine", c.Engine)
	add("engine_config", c.EngineConfig)
}

// inter is the listen list as "stats settings" shows it.
func (c *Config) inter() string {
	if len(c.Listen) == 0 {
		return DefaultListen
	}
	return strings.Join(c.Listen, ",")
}

// protocolText is memcached's prot_text.
func protocolText(p string) string {
	if p == "auto" {
		return "auto-negotiate"
	}
	return p
}

// sslVerifyBits maps ssl_verify_mode 0..3 to the OpenSSL SSL_VERIFY_* bits
// memcached stores and prints.
func sslVerifyBits(mode int) int {
	switch mode {
	case 1:
		return 1 // SSL_VERIFY_PEER
	case 2:
		return 1 | 2 // | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
	case 3:
		return 1 | 2 | 4 // | SSL_VERIFY_CLIENT_ONCE
	}
	return 0
}

func tlsVersionText(v int) string {
	switch v {
	case 0:
		return "tlsv1.0"
	case 1:
		return "tlsv1.1"
	case 3:
		return "tlsv1.3"
	}
	return "tlsv1.2"
}

// String lists every setting, one "name value" line each: the "stats
// settings" lines (see Settings), then the settings that "stats settings"
// does not show (listen addresses, process options, mnemo's own), so that
// a log line shows the whole configuration.
func (c *Config) String() string {
	var b strings.Builder
	line := func(name, value string) {
		b.WriteString(name)
		b.WriteByte(' ')
		b.WriteString(value)
		b.WriteByte('\n')
	}
	c.Settings(line)
	line("listen_addrs", strings.Join(c.ListenAddrs(), ","))
	line("watch_enabled", yesNo(!c.DisableWatch))
	line("hashexpand", yesNo(!c.NoHashExpand))
	line("slab_sizes", c.SlabSizes)
	line("user", c.User)
	line("pidfile", c.PidFile)
	line("daemonize", yesNo(c.Daemonize))
	line("enable_coredumps", yesNo(c.EnableCoredumps))
	line("large_pages", yesNo(c.LargePages))
	line("lock_memory", yesNo(c.LockMemory))
	line("drop_privileges", yesNo(c.DropPrivileges))
	line("sock_cookie_id", strconv.FormatUint(uint64(c.SockCookieID), 10))
	line("ext_path", strings.Join(c.Ext.Path, ","))
	line("ext_page_size", strconv.FormatInt(c.Ext.PageSize, 10))
	line("ext_threads", strconv.FormatUint(uint64(c.Ext.Threads), 10))
	line("ext_io_depth", strconv.FormatUint(uint64(c.Ext.IODepth), 10))
	line("pprof", c.Pprof)
	line("metrics_listen", c.MetricsListen)
	line("hotkeys", strconv.Itoa(c.HotKeys))
	line("hotkeys_window", c.HotKeysWindow.String())
	line("hotkeys_sample", strconv.Itoa(c.HotKeysSample))
	return b.String()
}
