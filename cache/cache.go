// Package cache owns memcached's command semantics: add, replace, cas,
// append, prepend, incr, decr, touch, get-and-touch, delete and flush_all,
// with memcached's exptime rules and its command statistics. It executes
// them, once for every protocol and every engine, on top of the engine
// primitives (engine.Engine's Get and atomic Update).
//
// It also owns the rules for a command that fails: Classify says which of
// memcached's error families an error belongs to (each protocol words it
// its own way), and a store that cannot allocate its item drops the key's
// stale item where memcached does (set, every ms).
//
// A Cache wraps one engine. Each connection takes a Session, which holds the
// reusable state (mutators, scratch buffers, counters) that keeps the
// request path free of allocations; a Session is used by one goroutine at a
// time. Counters are kept per session, like memcached's per-thread stats,
// and summed when someone asks for them.
package cache

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/mnemo-cache/mnemo/engine"
)

// Status is the outcome of a command, one per memcached reply.
type Status uint8

const (
	// StatusNone: no outcome (the command failed with an error).
	StatusNone Status = iota
	// Stored: the item was stored (STORED).
	Stored
	// NotStored: the condition of add, replace, append or prepend failed
	// (NOT_STORED).
	NotStored
	// Exists: the CAS value did not match (EXISTS).
	Exists
	// NotFound: the key is absent (NOT_FOUND).
	NotFound
	// Deleted: the item was removed (DELETED).
	Deleted
	// Touched: the expiry was changed (TOUCHED).
	Touched
	// NonNumeric: incr or decr on a value that is not a decimal number.
	NonNumeric
)

// Options are the memcached settings that change command semantics.
type Options struct {
	// DisableCAS makes every CAS value 0 (memcached -C): gets reports 0
	// and cas commands never match.
	DisableCAS bool
	// DisableFlush refuses flush_all (memcached -F).
	DisableFlush bool
}

// ErrFlushDisabled is returned by FlushAll when flush_all is disabled.
var ErrFlushDisabled = errors.New("cache: flush_all not allowed")

// Cache executes memcached commands on an engine.
type Cache struct {
	eng   engine.Engine
	clock engine.Clock
	opts  Options
	// started is the unix time the cache was created, for exptime
	// conversion (memcached's process_started).
	started int64

	mu       sync.Mutex
	sessions map[*Session]struct{}
	closed   Counters // counts of sessions that have ended

	// pool holds closed sessions for NewSession to reuse: their counters
	// folded into closed and zeroed, their mutators cleared.
	pool sync.Pool
}

// New returns a Cache over eng. clock must be the clock eng was opened
// with.
func New(eng engine.Engine, clock engine.Clock, opts Options) *Cache {
	if clock == nil {
		clock = engine.SystemClock{}
	}
	return &Cache{
		eng:      eng,
		clock:    clock,
		opts:     opts,
		started:  clock.Now(),
		sessions: map[*Session]struct{}{},
	}
}

// Engine returns the engine the cache runs on.
func (c *Cache) Engine() engine.Engine { return c.eng }

// Now returns the clock's time in unix seconds.
func (c *Cache) Now() int64 { return c.clock.Now() }

// Options returns the options the cache was created with.
func (c *Cache) Options() Options { return c.opts }

// realtimeMaxDelta is the largest exptime taken as relative to now:
// 30 days (memcached's REALTIME_MAXDELTA).
const realtimeMaxDelta = 60 * 60 * 24 * 30

// Expiry converts an exptime as clients send it into an absolute unix
// time for the engine, with memcached's rules: 0 never expires; up to 30
// days is relative to now; larger values are unix times; negative values
// are already expired.
func Expiry(exptime, now int64) int64 {
	switch {
	case exptime == 0:
		return 0
	case exptime < 0:
		return 1 // in the past: expired at once
	case exptime > realtimeMaxDelta:
		if exptime <= now {
			return 1
		}
		return exptime
	default:
		return now + exptime
	}
}

// FlushAll invalidates every item, at once (delay <= 0) or after delay
// seconds, like memcached's flush_all; a delay over 30 days is a unix
// time, as for exptime.
func (c *Cache) FlushAll(delay int64) error {
	if c.opts.DisableFlush {
		return ErrFlushDisabled
	}
	now := c.clock.Now()
	at := now
	if delay > 0 {
		at = Expiry(delay, now)
		if at == 1 {
			at = now
		}
	}
	return c.eng.Flush(at)
}

// NewSession returns a session for one connection. Close it when the
// connection ends, or when the connection goes idle and may do without
// one for a while (a parked connection): closed sessions are reused, so
// NewSession costs no allocation in steady state.
func (c *Cache) NewSession() *Session {
	s, _ := c.pool.Get().(*Session)
	if s == nil {
		s = &Session{c: c}
	}
	c.mu.Lock()
	c.sessions[s] = struct{}{}
	c.mu.Unlock()
	return s
}

// Counters are memcached's command statistics.
type Counters struct {
	CmdGet, CmdSet, CmdFlush, CmdTouch, CmdMeta atomic.Uint64
	GetHits, GetMisses                          atomic.Uint64
	DeleteHits, DeleteMisses                    atomic.Uint64
	IncrHits, IncrMisses, DecrHits, DecrMisses  atomic.Uint64
	CasHits, CasMisses, CasBadval               atomic.Uint64
	TouchHits, TouchMisses                      atomic.Uint64
	StoreTooLarge, StoreNoMemory                atomic.Uint64
	AuthCmds, AuthErrors                        atomic.Uint64
	// TotalItems counts items stored by commands (memcached's
	// total_items): an incr or decr that rewrites its value in place
	// stores no new item.
	TotalItems atomic.Uint64
	_          [64]byte // keep sessions' counters off each other's cache lines
}

// fields lists the counters with their memcached stat names, in the order
// memcached prints them (total_items, which memcached prints among the
// item figures, last). get_expired and get_flushed are the engine's
// (engine.Engine's Stats): only the engine sees why a lookup missed.
func (k *Counters) fields() []struct {
	name string
	v    *atomic.Uint64
} {
	return []struct {
		name string
		v    *atomic.Uint64
	}{
		{"cmd_get", &k.CmdGet}, {"cmd_set", &k.CmdSet}, {"cmd_flush", &k.CmdFlush},
		{"cmd_touch", &k.CmdTouch}, {"cmd_meta", &k.CmdMeta},
		{"get_hits", &k.GetHits}, {"get_misses", &k.GetMisses},
		{"delete_misses", &k.DeleteMisses}, {"delete_hits", &k.DeleteHits},
		{"incr_misses", &k.IncrMisses}, {"incr_hits", &k.IncrHits},
		{"decr_misses", &k.DecrMisses}, {"decr_hits", &k.DecrHits},
		{"cas_misses", &k.CasMisses}, {"cas_hits", &k.CasHits}, {"cas_badval", &k.CasBadval},
		{"touch_hits", &k.TouchHits}, {"touch_misses", &k.TouchMisses},
		{"store_too_large", &k.StoreTooLarge}, {"store_no_memory", &k.StoreNoMemory},
		{"auth_cmds", &k.AuthCmds}, {"auth_errors", &k.AuthErrors},
		{"total_items", &k.TotalItems},
	}
}

// Stats reports the command counters of all sessions, live and ended, by
// their memcached names (cmd_get, get_hits, ..., and total_items last).
func (c *Cache) Stats(add func(name string, value uint64)) {
	var total Counters
	tf := total.fields()
	c.mu.Lock()
	sum := func(k *Counters) {
		for i, f := range k.fields() {
			tf[i].v.Add(f.v.Load())
		}
	}
	sum(&c.closed)
	for s := range c.sessions {
		sum(&s.Counters)
	}
	c.mu.Unlock()
	for _, f := range tf {
		add(f.name, f.v.Load())
	}
}

// ResetStats zeroes the command counters ("stats reset").
func (c *Cache) ResetStats() {
	c.mu.Lock()
	defer c.mu.Unlock()
	reset := func(k *Counters) {
		for _, f := range k.fields() {
			f.v.Store(0)
		}
	}
	reset(&c.closed)
	for s := range c.sessions {
		reset(&s.Counters)
	}
}
