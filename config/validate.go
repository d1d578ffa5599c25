package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Validate checks every setting against memcached 1.6.18's rules (the same
// limits, in memcached's words where it has them) and mnemo's own
// (--engine, --pprof, --metrics-listen, --hotkeys*). It reports every problem, joined; each wraps
// ErrInvalid and is an *Error.
func (c *Config) Validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, &Error{Flag: flag, Msg: fmt.Sprintf(format, args...), Err: ErrInvalid})
	}

	if c.Port < 0 || c.Port > 65535 {
		bad("-p", "invalid port number %d", c.Port)
	}
	if c.UDPPort < 0 || c.UDPPort > 65535 {
		bad("-U", "invalid port number %d", c.UDPPort)
	}
	if _, err := c.Listeners(); err != nil {
		errs = append(errs, err)
	}
	if c.UnixMask > 0o777 {
		bad("-a", "access mask %o is not within 000 to 777", uint32(c.UnixMask))
	}
	if c.Backlog < 0 {
		bad("-b", "backlog must not be negative")
	}
	if c.MaxConns <= 0 {
		bad("-c", "maximum connections must be greater than 0")
	}
	if c.IdleTimeout < 0 {
		bad("-o idle_timeout", "must not be negative")
	}
	if c.ReadBufMemLimit < 0 {
		bad("-o read_buf_mem_limit", "must not be negative")
	}
	switch c.Protocol {
	case "auto", "ascii", "binary":
	default:
		bad("-B", "invalid value for binding protocol: %q -- should be one of auto, binary, or ascii", c.Protocol)
	}
	if c.Threads <= 0 {
		bad("-t", "number of threads must be greater than 0")
	}
	if c.ReqsPerEvent <= 0 {
		bad("-R", "number of requests per event must be greater than 0")
	}
	if c.NapiIDs < 0 {
		bad("-N", "maximum number of NAPI IDs must be greater than 0")
	} else if c.NapiIDs > c.Threads && c.Threads > 0 {
		bad("-N", "number of napi_ids(%d) cannot be greater than number of threads(%d)", c.NapiIDs, c.Threads)
	}

	if c.MemoryLimit <= 0 {
		bad("-m", "memory limit must be greater than 0")
	}
	switch {
	case c.ItemSizeMax < ItemSizeMaxLower:
		bad("-I", "item max size cannot be less than %d bytes", ItemSizeMaxLower)
	case int64(c.ItemSizeMax) > c.MemoryLimit/2:
		bad("-I", "cannot set item size limit higher than 1/2 of memory max")
	case c.ItemSizeMax > ItemSizeMaxUpper:
		bad("-I", "cannot set item size limit higher than a gigabyte")
	}
	if !(c.Factor > 1.0) {
		bad("-f", "factor must be greater than 1")
	}
	if c.ChunkSize <= 0 {
		bad("-n", "chunk size must be greater than 0")
	}
	if c.HashPower != 0 && c.HashPower < 12 {
		bad("-o hashpower", "initial hashtable multiplier of %d is too low", c.HashPower)
	} else if c.HashPower > 32 {
		bad("-o hashpower", "initial hashtable multiplier of %d is too high; choose a value based on \"STAT hash_power_level\" from a running instance", c.HashPower)
	}
	switch c.HashAlgorithm {
	case "jenkins", "murmur3", "xxh3":
	default:
		bad("-o hash_algorithm", "unknown hash algorithm %q (jenkins, murmur3, xxh3)", c.HashAlgorithm)
	}
	if c.SlabAutomove < 0 || c.SlabAutomove > 2 {
		bad("-o slab_automove", "must be between 0 and 2")
	}
	if !(c.SlabAutomoveRatio > 0 && c.SlabAutomoveRatio <= 1) {
		bad("-o slab_automove_ratio", "must be > 0 and <= 1")
	}
	if c.SlabAutomoveWindow < 3 {
		bad("-o slab_automove_window", "must be > 2")
	}
	if c.SlabAutomoveFreeRatio < 0 {
		bad("-o slab_automove_freeratio", "must not be negative")
	}
	if c.SlabChunkMax <= 0 {
		bad("-o slab_chunk_max", "must be greater than 0")
	}
	if c.SlabSizes != "" {
		if err := checkSlabSizes(c.SlabSizes, c.ChunkSize, c.SlabChunkMax); err != nil {
			bad("-o slab_sizes", "%v", err)
		}
	}
	if c.TailRepairTime != 0 && c.TailRepairTime < 10 {
		bad("-o tail_repair_time", "cannot set tail_repair_time to less than 10 seconds")
	}
	if c.LRUCrawlerSleep < 0 || c.LRUCrawlerSleep > 1000000 {
		bad("-o lru_crawler_sleep", "LRU crawler sleep must be between 0 and 1 second")
	}
	if c.HotLRUPct < 1 || c.HotLRUPct >= 80 {
		bad("-o hot_lru_pct", "must be >= 1 and < 80")
	}
	if c.WarmLRUPct < 1 || c.WarmLRUPct >= 80 {
		bad("-o warm_lru_pct", "must be >= 1 and < 80")
	}
	if c.HotLRUPct+c.WarmLRUPct > 80 {
		bad("-o hot_lru_pct", "hot_lru_pct + warm_lru_pct cannot be more than 80%% combined")
	}
	if !(c.HotMaxFactor > 0) {
		bad("-o hot_max_factor", "must be > 0")
	}
	if !(c.WarmMaxFactor > 0) {
		bad("-o warm_max_factor", "must be > 0")
	}
	if c.TempLRU && !c.LRUMaintainer {
		bad("-o temporary_ttl", "temporary_ttl requires lru_maintainer to be enabled")
	}
	if c.WatcherLogbufSize < 0 || c.WorkerLogbufSize < 0 {
		bad("-o watcher_logbuf_size", "log buffer sizes must not be negative")
	}
	if c.Verbose < 0 {
		bad("-v", "verbosity must not be negative")
	}
	if c.Delimiter == 0 {
		bad("-D", "no delimiter specified")
	}

	if c.SASL {
		if c.Protocol != "binary" {
			bad("-S", "you cannot allow the ASCII protocol while using SASL")
		}
		if c.UDPPort != 0 {
			bad("-S", "cannot enable UDP while using binary SASL authentication")
		}
		if c.SASLPwdb == "" {
			bad("-S", "no SASL password database: set MEMCACHED_SASL_PWDB or --sasl-pwdb to a file of user:password lines")
		}
	}
	if c.AuthFile != "" && c.Protocol != "ascii" {
		bad("-Y", "you cannot allow the BINARY protocol while using ascii authentication tokens")
	}
	c.validateTLS(bad)
	if len(c.Ext.Path) > 0 && c.UDPPort != 0 {
		bad("-o ext_path", "cannot use UDP with extstore enabled (-U 0 to disable)")
	}

	if c.Engine == "" {
		bad("--engine", "no engine named")
	}
	if c.Pprof != "" {
		if err := checkLoopback(c.Pprof); err != nil {
			bad("--pprof", "%v", err)
		}
	}
	if c.MetricsListen != "" {
		if err := checkHostPort(c.MetricsListen); err != nil {
			bad("--metrics-listen", "%v", err)
		}
	}
	if c.HotKeys < 0 || c.HotKeys > 100 {
		bad("--hotkeys", "%d is out of range (0 to 100)", c.HotKeys)
	}
	if c.HotKeysWindow < 4*time.Second || c.HotKeysWindow > 24*time.Hour {
		bad("--hotkeys-window", "%v is out of range (4s to 24h)", c.HotKeysWindow)
	}
	if c.HotKeysSample < 1 || c.HotKeysSample > 65536 {
		bad("--hotkeys-sample", "%d is out of range (1 to 65536)", c.HotKeysSample)
	}
	return errors.Join(errs...)
}

// checkSlabSizes applies memcached's rules to a -o slab_sizes list.
func checkSlabSizes(s string, min, max int) error {
	last := 0
	n := 0
	for f := range strings.SplitSeq(s, "-") {
		size, err := strconv.Atoi(f)
		if err != nil || size < min || size > max {
			return fmt.Errorf("slab size %q is out of valid range (%d to %d)", f, min, max)
		}
		if size <= last {
			return fmt.Errorf("slab size %d cannot be lower than or equal to a previous class size", size)
		}
		if size <= last+8 {
			return fmt.Errorf("slab size %d must be at least 8 bytes larger than previous class", size)
		}
		last = size
		if n++; n >= 63 {
			return errors.New("too many slab classes specified")
		}
	}
	return nil
}

// checkLoopback accepts host:port where host is "localhost" or a loopback
// IP address.
func checkLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: invalid port", addr)
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address (use 127.0.0.1:PORT, [::1]:PORT or localhost:PORT)", addr)
	}
	return nil
}

// checkHostPort accepts host:port with a valid port; an empty host
// listens on every address.
func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: invalid port", addr)
	}
	return nil
}

// UnsupportedError names a flag that belongs to later work. It wraps
// ErrUnsupported.
type UnsupportedError struct {
	// Flag is the flag as written: "-S", "-o ssl_key".
	Flag string
	// Feature is what the flag enables: "SASL", "TLS".
	Feature string
}

// Error implements error.
func (e *UnsupportedError) Error() string {
	return "mnemo: " + e.Flag + " (" + e.Feature + ") is not supported yet"
}

// Unwrap returns ErrUnsupported.
func (e *UnsupportedError) Unwrap() error { return ErrUnsupported }

// Unsupported reports each set flag that names a feature mnemo does not
// have yet, one *UnsupportedError per flag, joined; nil when there is
// none. The caller prints it and exits non-zero. Flags that are accepted
// but have no effect are not reported (see the package documentation).
func (c *Config) Unsupported() error {
	var errs []error
	add := func(set bool, flag, feature string) {
		if set {
			errs = append(errs, &UnsupportedError{Flag: flag, Feature: feature})
		}
	}
	add(c.LargePages, "-L", "large memory pages")
	add(c.LockMemory, "-k", "lock memory")
	return errors.Join(errs...)
}
