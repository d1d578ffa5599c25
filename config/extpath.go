package config

import (
	"os"
	"strconv"
	"strings"
)

// ExtPathEngine is the engine -o ext_path selects.
const ExtPathEngine = "persistent"

// applyExtPath maps memcached's -o ext_path=PATH:SIZE (extstore) onto
// the persistent engine, so that an extstore user switches by changing
// the binary: the engine becomes "persistent" and its configuration
// starts with path=PATH,disk_size=BYTES (the rest of --engine-config
// follows). PATH is the engine's data directory (memcached's is a file).
// engineSet tells whether --engine was given.
//
// Refused: an explicit --engine other than persistent, a path= or
// disk_size= in --engine-config as well, more than one ext_path (the
// engine has one directory; memcached spreads pages over its files), a
// size without memcached's unit or below 4m, and a PATH that is a
// regular file (memcached's extstore file: mnemo needs a directory).
// Tokens after the size (memcached's bucket names, ":compact" and so on)
// are ignored with a warning.
func (c *Config) applyExtPath(engineSet bool) error {
	if len(c.Ext.Path) == 0 {
		return nil
	}
	const flag = "-o ext_path"
	if len(c.Ext.Path) > 1 {
		return usageErr(flag, "given %d times: mnemo's persistent engine keeps one data directory; give one ext_path=DIR:SIZE with the total size", len(c.Ext.Path))
	}
	if engineSet && c.Engine != ExtPathEngine {
		return usageErr(flag, "selects the persistent engine (extstore's place in mnemo); it cannot be combined with --engine %s", c.Engine)
	}
	parts := strings.Split(c.Ext.Path[0], ":")
	if len(parts) < 2 || parts[0] == "" {
		return usageErr(flag, "must supply size to ext_path, ie: ext_path=/f/e:64m")
	}
	size, ok := parseExtSize(parts[1])
	if !ok {
		return usageErr(flag, "could not parse size %q for ext_path (a number with k, m, g or t, ie: 64m)", parts[1])
	}
	if size < 4<<20 {
		return usageErr(flag, "size %q is below the persistent engine's smallest disk budget, 4m", parts[1])
	}
	if len(parts) > 2 {
		c.Warnings = append(c.Warnings, "-o ext_path: "+strings.Join(parts[2:], ":")+" ignored: the persistent engine has no extstore buckets")
	}
	for kv := range strings.SplitSeq(c.EngineConfig, ",") {
		k, _, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if k == "path" || k == "disk_size" {
			return usageErr(flag, "sets the persistent engine's path and disk_size: --engine-config must not set %s too", k)
		}
	}
	if fi, err := os.Stat(parts[0]); err == nil && !fi.IsDir() {
		return usageErr(flag, "%s is a file (memcached's extstore file?): mnemo's persistent engine keeps a directory there; remove the file or give another path", parts[0])
	}
	c.Engine = ExtPathEngine
	ec := "path=" + parts[0] + ",disk_size=" + strconv.FormatInt(size, 10)
	if c.EngineConfig != "" {
		ec += "," + c.EngineConfig
	}
	c.EngineConfig = ec
	return nil
}

// parseExtSize parses an ext_path size as memcached does (a number with
// an m, g or t unit, any case), and also takes k and a plain byte count.
func parseExtSize(s string) (int64, bool) {
	shift := 0
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			shift = 10
		case 'm', 'M':
			shift = 20
		case 'g', 'G':
			shift = 30
		case 't', 'T':
			shift = 40
		}
		if shift > 0 {
			s = s[:n-1]
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)>>shift {
		return 0, false
	}
	return n << shift, true
}
