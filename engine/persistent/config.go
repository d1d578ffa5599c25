package persistent

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mnemo-cache/mnemo/engine"
)

// Durability says when a write is acknowledged.
type Durability uint8

const (
	// Async acknowledges a write once it is in memory and in the
	// write-behind queue; the queue is committed (with fsync) once its
	// oldest write is Interval old, and writers wait while one is 5
	// Intervals old, so a crash loses at most the writes of the last 5
	// Intervals plus one commit (see the package documentation).
	Async Durability = iota
	// Sync acknowledges a write only after the batch holding it has been
	// committed with fsync; concurrent writers share one commit (group
	// commit).
	Sync
)

// String returns "async" or "sync".
func (d Durability) String() string {
	if d == Sync {
		return "sync"
	}
	return "async"
}

// Defaults of Config's zero values.
const (
	DefaultInterval      = 100 * time.Millisecond
	DefaultSweepInterval = time.Second
	DefaultSweepBatch    = 10000
	DefaultCacheSize     = 16 << 20
	minQueue             = 4 << 20
	maxDefaultQueue      = 64 << 20
)

// Config is the engine's configuration string, parsed. Its zero value,
// with Path set, means the defaults documented on each field.
type Config struct {
	// Path is the data directory, created if missing. Required.
	Path string
	// Durability is Async (the default) or Sync.
	Durability Durability
	// Interval is the age at which a queued write is committed in Async
	// mode (the loss window is at most 5 Intervals plus one commit). 0
	// means DefaultInterval (100ms).
	Interval time.Duration
	// Queue bounds the write-behind queue in bytes (keys and records);
	// a writer that finds it full waits. 0 means a quarter of the memory
	// limit, at least 4 MiB and at most 64 MiB.
	Queue int64
	// SweepInterval is how often the background sweep removes a batch of
	// expired and flushed items from disk. 0 means one second; negative
	// turns the sweep off.
	SweepInterval time.Duration
	// SweepBatch is how many stored items one sweep step looks at. 0
	// means 10000.
	SweepBatch int
	// NoWarmup turns off loading the stored items into memory at start.
	NoWarmup bool
	// CacheSize is Pebble's block cache in bytes (outside -m). 0 means
	// 16 MiB.
	CacheSize int64
	// DiskSize is the disk budget in bytes: when the store's size on disk
	// passes it, the oldest written items are evicted from the disk (see
	// budget.go). 0 means no budget (the store keeps every item until it
	// expires or is deleted). At least 4 MiB.
	DiskSize int64
}

// configKeys lists the keys ParseConfig knows, for its errors.
const configKeys = "path, durability, interval, queue, sweep_interval, sweep_batch, warmup, cache, disk_size"

// ParseConfig parses "path=DIR,durability=async|sync,interval=DUR,
// queue=BYTES,sweep_interval=DUR,sweep_batch=N,warmup=true|false,
// cache=BYTES,disk_size=SIZE" (SIZE: bytes, or a number with K, M, G or
// T, see ParseSize). Unknown keys and bad values are errors wrapping
// engine.ErrBadConfig. Defaults are resolved by Validate, not here.
func ParseConfig(s string) (Config, error) {
	var c Config
	pairs, err := engine.ParseConfig(s)
	if err != nil {
		return c, err
	}
	bad := func(k, v, want string) error {
		return fmt.Errorf("%w: %s=%q: want %s", engine.ErrBadConfig, k, v, want)
	}
	for _, kv := range pairs {
		k, v := kv[0], kv[1]
		switch k {
		case "path":
			if v == "" || v == "true" {
				return c, bad(k, v, "a directory")
			}
			c.Path = v
		case "durability":
			switch strings.ToLower(v) {
			case "async":
				c.Durability = Async
			case "sync":
				c.Durability = Sync
			default:
				return c, bad(k, v, "async or sync")
			}
		case "interval", "sweep_interval":
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 || (k == "interval" && d == 0) {
				return c, bad(k, v, "a positive duration such as 100ms")
			}
			if k == "interval" {
				c.Interval = d
			} else {
				if d == 0 {
					d = -1
				}
				c.SweepInterval = d
			}
		case "queue", "cache":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return c, bad(k, v, "a positive byte count")
			}
			if k == "queue" {
				c.Queue = n
			} else {
				c.CacheSize = n
			}
		case "disk_size":
			n, err := ParseSize(v)
			if err != nil || (n != 0 && n < minDiskSize) {
				return c, bad(k, v, "a size of at least 4m (bytes, or a number with K, M, G or T), or 0 for none")
			}
			c.DiskSize = n
		case "sweep_batch":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return c, bad(k, v, "a positive integer")
			}
			c.SweepBatch = n
		case "warmup":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return c, bad(k, v, "true or false")
			}
			c.NoWarmup = !b
		default:
			return c, fmt.Errorf("%w: unknown key %q (known: %s)", engine.ErrBadConfig, k, configKeys)
		}
	}
	return c, nil
}

// Validate checks c and resolves its zero values for a memory limit of
// memLimit bytes.
func (c *Config) Validate(memLimit int64) error {
	if c.Path == "" {
		return fmt.Errorf("%w: path=DIR is required (the data directory)", engine.ErrBadConfig)
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Queue == 0 {
		c.Queue = min(max(memLimit/4, minQueue), maxDefaultQueue)
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	if c.SweepBatch == 0 {
		c.SweepBatch = DefaultSweepBatch
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	return nil
}

// String renders the configuration, for stats settings.
func (c Config) String() string {
	return fmt.Sprintf("path=%s,durability=%s,interval=%s,queue=%d,sweep_interval=%s,sweep_batch=%d,warmup=%t,cache=%d,disk_size=%d",
		c.Path, c.Durability, c.Interval, c.Queue, c.SweepInterval, c.SweepBatch, !c.NoWarmup, c.CacheSize, c.DiskSize)
}
