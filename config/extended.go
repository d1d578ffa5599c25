package config

import "time"

// ExtendedKeys lists every -o key that memcached 1.6.18 (Debian's build,
// with extstore and TLS) accepts, in the order of memcached's option table.
// Parse accepts exactly these.
var ExtendedKeys = []string{
	"maxconns_fast", "hashpower", "no_hashexpand", "slab_reassign",
	"slab_automove", "slab_automove_ratio", "slab_automove_window",
	"tail_repair_time", "hash_algorithm", "lru_crawler", "lru_crawler_sleep",
	"lru_crawler_tocrawl", "lru_maintainer", "hot_lru_pct", "warm_lru_pct",
	"hot_max_factor", "warm_max_factor", "temporary_ttl", "idle_timeout",
	"watcher_logbuf_size", "worker_logbuf_size", "slab_sizes",
	"slab_chunk_max", "track_sizes", "no_inline_ascii_resp", "modern",
	"no_modern", "no_chunked_items", "no_slab_reassign", "no_slab_automove",
	"no_maxconns_fast", "inline_ascii_resp", "no_lru_crawler",
	"no_lru_maintainer", "no_drop_privileges", "drop_privileges",
	"resp_obj_mem_limit", "read_buf_mem_limit",
	"ssl_chain_cert", "ssl_key", "ssl_verify_mode", "ssl_keyformat",
	"ssl_ciphers", "ssl_ca_cert", "ssl_wbuf_size", "ssl_session_cache",
	"ssl_kernel_tls", "ssl_min_version",
	"sock_cookie_id",
	"ext_page_size", "ext_wbuf_size", "ext_threads", "ext_io_depth",
	"ext_path", "ext_item_size", "ext_item_age", "ext_low_ttl",
	"ext_recache_rate", "ext_compact_under", "ext_drop_under",
	"ext_max_sleep", "ext_max_frag", "ext_drop_unread",
	"slab_automove_freeratio",
}

// setExtended applies one -o key. Keys that take no value ignore one, as
// memcached's getsubopt does. Ranges are checked by Validate.
func (c *Config) setExtended(key, val string, hasVal bool) error {
	flag := "-o " + key
	need := func() error {
		if !hasVal || val == "" {
			return usageErr(flag, "missing value")
		}
		return nil
	}
	bad := func(err error) error {
		return usageErr(flag, "invalid value %q: %v", val, err)
	}
	setInt := func(p *int) error {
		if err := need(); err != nil {
			return err
		}
		n, err := parseInt(val)
		if err != nil {
			return bad(err)
		}
		*p = n
		return nil
	}
	setUint32 := func(p *uint32) error {
		if err := need(); err != nil {
			return err
		}
		n, err := parseUint32(val)
		if err != nil {
			return bad(err)
		}
		*p = n
		return nil
	}
	// setScaled sets *p to an unsigned 32-bit count of units, in bytes.
	setScaled := func(p *int64, unit int64) error {
		var n uint32
		if err := setUint32(&n); err != nil {
			return err
		}
		*p = int64(n) * unit
		return nil
	}
	setScaledInt := func(p *int, unit int64) error {
		var n int64
		if err := setScaled(&n, unit); err != nil {
			return err
		}
		*p = int(n)
		return nil
	}
	setFloat := func(p *float64) error {
		if err := need(); err != nil {
			return err
		}
		f, err := parseFloat(val)
		if err != nil {
			return bad(err)
		}
		*p = f
		return nil
	}
	setString := func(p *string) error {
		if err := need(); err != nil {
			return err
		}
		*p = val
		return nil
	}

	switch key {
	case "maxconns_fast":
		c.MaxConnsFast = true
	case "no_maxconns_fast":
		c.MaxConnsFast = false
	case "hashpower":
		return setInt(&c.HashPower)
	case "no_hashexpand":
		c.NoHashExpand = true
	case "slab_reassign":
		c.SlabReassign = true
	case "no_slab_reassign":
		c.SlabReassign = false
	case "slab_automove":
		if !hasVal {
			c.SlabAutomove = 1
			return nil
		}
		return setInt(&c.SlabAutomove)
	case "no_slab_automove":
		c.SlabAutomove = 0
	case "slab_automove_ratio":
		return setFloat(&c.SlabAutomoveRatio)
	case "slab_automove_window":
		return setInt(&c.SlabAutomoveWindow)
	case "slab_automove_freeratio":
		return setFloat(&c.SlabAutomoveFreeRatio)
	case "tail_repair_time":
		return setInt(&c.TailRepairTime)
	case "hash_algorithm":
		if err := need(); err != nil {
			return err
		}
		switch val {
		case "jenkins", "murmur3", "xxh3":
			c.HashAlgorithm = val
		default:
			return usageErr(flag, "unknown hash algorithm %q (jenkins, murmur3, xxh3)", val)
		}
	case "lru_crawler":
		c.LRUCrawler = true
	case "no_lru_crawler":
		c.LRUCrawler = false
	case "lru_crawler_sleep":
		return setInt(&c.LRUCrawlerSleep)
	case "lru_crawler_tocrawl":
		return setUint32(&c.LRUCrawlerToCrawl)
	case "lru_maintainer":
		c.LRUMaintainer = true
	case "no_lru_maintainer":
		c.LRUMaintainer = false
	case "hot_lru_pct":
		return setInt(&c.HotLRUPct)
	case "warm_lru_pct":
		return setInt(&c.WarmLRUPct)
	case "hot_max_factor":
		return setFloat(&c.HotMaxFactor)
	case "warm_max_factor":
		return setFloat(&c.WarmMaxFactor)
	case "temporary_ttl":
		c.TempLRU = true
		return setInt(&c.TemporaryTTL)
	case "idle_timeout":
		var secs int
		if err := setInt(&secs); err != nil {
			return err
		}
		c.IdleTimeout = time.Duration(secs) * time.Second
	case "watcher_logbuf_size":
		return setScaledInt(&c.WatcherLogbufSize, 1<<10)
	case "worker_logbuf_size":
		return setScaledInt(&c.WorkerLogbufSize, 1<<10)
	case "read_buf_mem_limit":
		if err := setScaled(&c.ReadBufMemLimit, 1<<20); err != nil {
			return err
		}
		c.readBufUnlimited = c.ReadBufMemLimit == 0
	case "slab_sizes":
		return setString(&c.SlabSizes)
	case "slab_chunk_max":
		c.slabChunkMaxSet = true
		return setInt(&c.SlabChunkMax)
	case "no_chunked_items":
		c.SlabChunkMax = slabPageSize
	case "track_sizes":
		c.TrackSizes = true
	case "inline_ascii_resp", "no_inline_ascii_resp", "modern":
		// No effect in memcached 1.6.18 either.
	case "no_modern":
		// memcached 1.4's defaults.
		if !c.slabChunkMaxSet {
			c.SlabChunkMax = slabPageSize
		}
		c.SlabReassign = false
		c.SlabAutomove = 0
		c.MaxConnsFast = false
		c.LRUMaintainer = false
		c.HashAlgorithm = "jenkins"
		c.LRUCrawler = false
	case "drop_privileges":
		c.DropPrivileges = true
	case "no_drop_privileges":
		c.DropPrivileges = false
	case "resp_obj_mem_limit":
		c.Warnings = append(c.Warnings, "DEPRECATED: resp_obj_mem_limit no longer used. See read_buf_mem_limit")
	case "sock_cookie_id":
		return setUint32(&c.SockCookieID)

	// The ssl_* options answer in memcached's words.
	case "ssl_chain_cert", "ssl_key", "ssl_ciphers", "ssl_ca_cert":
		if !hasVal || val == "" {
			return usageErr(flag, "Missing %s argument", key)
		}
		switch key {
		case "ssl_chain_cert":
			c.TLSOptions.ChainCert = val
		case "ssl_key":
			c.TLSOptions.Key = val
		case "ssl_ciphers":
			c.TLSOptions.Ciphers = val
		default:
			c.TLSOptions.CACert = val
		}
	case "ssl_verify_mode", "ssl_keyformat", "ssl_min_version", "ssl_wbuf_size":
		if !hasVal || val == "" {
			return usageErr(flag, "Missing %s argument", key)
		}
		n, err := parseInt(val)
		if err != nil || (key == "ssl_wbuf_size" && (n < 0 || int64(n) > 1<<32-1)) {
			return usageErr(flag, "could not parse argument to %s", key)
		}
		switch key {
		case "ssl_verify_mode":
			if n < 0 || n > 3 {
				return usageErr(flag, "Invalid ssl_verify_mode. Use help to see valid options.")
			}
			c.TLSOptions.VerifyMode = n
		case "ssl_min_version":
			if n < 0 || n > 3 {
				return usageErr(flag, "Invalid ssl_min_version. Use help to see valid options.")
			}
			c.TLSOptions.MinVersion = n
		case "ssl_keyformat":
			// Any number parses; one crypto/tls cannot read is refused
			// when the key is loaded, as OpenSSL does.
			c.TLSOptions.KeyFormat = n
		default:
			c.TLSOptions.WbufSize = n << 10
		}
	case "ssl_session_cache":
		c.TLSOptions.SessionCache = true
	case "ssl_kernel_tls":
		c.TLSOptions.KernelTLS = true

	case "ext_page_size":
		if len(c.Ext.Path) > 0 {
			return usageErr(flag, "must be given before any ext_path")
		}
		return setScaled(&c.Ext.PageSize, 1<<20)
	case "ext_wbuf_size":
		return setScaled(&c.Ext.WbufSize, 1<<20)
	case "ext_threads":
		return setUint32(&c.Ext.Threads)
	case "ext_io_depth":
		return setUint32(&c.Ext.IODepth)
	case "ext_path":
		if err := need(); err != nil {
			return usageErr(flag, "missing value, e.g. ext_path=/d/file:5G")
		}
		c.Ext.Path = append(c.Ext.Path, val)
	case "ext_item_size":
		return setUint32(&c.Ext.ItemSize)
	case "ext_item_age":
		return setUint32(&c.Ext.ItemAge)
	case "ext_low_ttl":
		return setUint32(&c.Ext.LowTTL)
	case "ext_recache_rate":
		return setUint32(&c.Ext.RecacheRate)
	case "ext_compact_under":
		return setUint32(&c.Ext.CompactUnder)
	case "ext_drop_under":
		return setUint32(&c.Ext.DropUnder)
	case "ext_max_sleep":
		return setUint32(&c.Ext.MaxSleep)
	case "ext_max_frag":
		return setFloat(&c.Ext.MaxFrag)
	case "ext_drop_unread":
		c.Ext.DropUnread = true

	default:
		return usageErr("-o", "unknown extended option %q", key)
	}
	return nil
}

// slabPageSize is memcached's slab page size, which no_modern and
// no_chunked_items make the largest chunk.
const slabPageSize = 1 << 20

// quoteOrNull formats an optional string the way memcached's settings do.
func quoteOrNull(s, null string) string {
	if s == "" {
		return null
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
